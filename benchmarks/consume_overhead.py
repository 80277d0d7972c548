"""GovernedConsumer against a raw confluent_kafka Consumer with fastavro decoding, same run.

One topic of Avro records (4 fields, Confluent wire format, written by a
GovernedProducer) is read back from the beginning by a fresh consumer group per run:

  raw       Consumer.consume(500) + fastavro.schemaless_reader after the 5-byte header,
            an asynchronous commit after every batch
  governed  GovernedConsumer.run(): decode by schema id, Record objects, offset tracking,
            CommitStrategy.batched(max_records=500)

The rate counts records from the first one received to the last (the group join is not
timed). Target: governed >= 0.8x raw.

    python benchmarks/consume_overhead.py [--messages 200000] [--repeats 5]
"""

from __future__ import annotations

import io
import json
import tempfile
import time
import uuid
from pathlib import Path

import confluent_kafka
import fastavro

import harness
from governed_kafka import Catalog, CommitStrategy, GovernedConsumer, GovernedProducer, profiles

PARTITIONS = 6
SCHEMA = {
    "type": "record",
    "name": "Order",
    "namespace": "bench",
    "fields": [
        {"name": "order_id", "type": "string"},
        {"name": "amount_cents", "type": "long"},
        {"name": "currency", "type": "string"},
        {"name": "paid", "type": "boolean"},
    ],
}
SESSION = {"session.timeout.ms": 6000}


def _catalog(directory: Path, topic: str, rf: int) -> Catalog:
    (directory / "order.avsc").write_text(json.dumps(SCHEMA), encoding="utf-8")
    return Catalog.from_dict(
        {
            "topics": [
                {
                    "name": topic,
                    "partitions": PARTITIONS,
                    "replication_factor": rf,
                    "key": "required",
                    "value_schema": "order.avsc",
                    "producers": ["bench"],
                    "consumers": ["bench"],
                }
            ]
        },
        path=directory / "governance.toml",
    )


def fill(bootstrap: str, catalog: Catalog, topic: str, messages: int) -> None:
    harness.create_topic(bootstrap, topic, PARTITIONS, catalog.topic(topic).replication_factor)
    with GovernedProducer(
        catalog, service="bench", bootstrap_servers=bootstrap, profile=profiles.HIGH_THROUGHPUT
    ) as producer:
        for i in range(messages):
            producer.send(
                topic,
                {"order_id": f"o-{i:08d}", "amount_cents": i, "currency": "EUR", "paid": True},
                key=f"customer-{i % 1000}",
            )


def raw(bootstrap: str, topic: str, messages: int) -> float:
    parsed = fastavro.parse_schema(SCHEMA)
    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"raw-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "log_level": 3,
            **SESSION,
        }
    )
    consumer.subscribe([topic])
    seen = 0
    first = 0.0
    reader = fastavro.schemaless_reader
    try:
        while seen < messages:
            batch = consumer.consume(500, 1.0)
            for msg in batch:
                if msg.error() is not None:
                    continue
                if not seen:
                    first = time.perf_counter()
                reader(io.BytesIO(msg.value()[5:]), parsed, None)
                seen += 1
            if batch:
                consumer.commit(asynchronous=True)
        return (seen - 1) / (time.perf_counter() - first)
    finally:
        consumer.close()


def governed(bootstrap: str, catalog: Catalog, topic: str, messages: int) -> float:
    seen = 0
    first = 0.0

    def handler(record: object) -> None:
        nonlocal seen, first
        if not seen:
            first = time.perf_counter()
        seen += 1

    with GovernedConsumer(
        catalog,
        service="bench",
        group_id=f"governed-{uuid.uuid4().hex}",
        topics=[topic],
        bootstrap_servers=bootstrap,
        commit=CommitStrategy.batched(max_records=500),
        overrides=SESSION,
        verify_topics=False,
    ) as consumer:
        while seen < messages:
            consumer.run(handler, max_records=messages - seen, timeout=5)
        return (seen - 1) / (time.perf_counter() - first)


def main() -> None:
    args = harness.arguments(__doc__.splitlines()[0], messages=200_000).parse_args()
    harness.print_environment()
    with harness.broker(args.bootstrap_servers) as bootstrap, tempfile.TemporaryDirectory() as tmp:
        topic = f"bench.consume.t{uuid.uuid4().hex[:10]}.v1"
        catalog = _catalog(Path(tmp), topic, args.replication_factor)
        fill(bootstrap, catalog, topic, args.messages)
        rates = harness.compare(
            {
                "raw": lambda: raw(bootstrap, topic, args.messages),
                "governed": lambda: governed(bootstrap, catalog, topic, args.messages),
            },
            repeats=args.repeats,
        )
    print(
        f"{args.messages:,} Avro records (4 fields), {PARTITIONS} partitions "
        f"(RF {args.replication_factor}), "
        f"{args.repeats} runs each, fresh group per run"
    )
    harness.report(
        rates, baseline="raw", unit="rec/s", target=("governed", 0.8), json_path=args.json_path
    )


if __name__ == "__main__":
    main()
