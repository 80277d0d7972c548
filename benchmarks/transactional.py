"""The governed exactly-once processor against a hand-written confluent-kafka
consume-transform-produce loop, same batch size, same run.

One input topic of keyed records is read from the beginning by a fresh consumer group
(and a fresh transactional id) per run; each input becomes one output record, written in
the transaction that also commits the input's offsets:

  raw       Consumer.consume(BATCH) (read_committed), then begin_transaction(), one
            produce() per record, send_offsets_to_transaction() with the consumer's
            group metadata and commit_transaction(): a transaction per batch
  governed  GovernedConsumer.run() with CommitStrategy.transactional(producer,
            max_records=BATCH), the handler calling GovernedProducer.send()

Both use the DURABLE profile's producer and consumer settings. The rate counts records
from the first one received to the end of the last commit (the group join and
init_transactions are not timed); commit latency is, per transaction, the time from
sending its offsets to the coordinator's answer to its commit (what librdkafka's commit
waits for: the batch's outstanding records, then EndTxn). Target: governed >= 0.8x raw.

    python benchmarks/transactional.py [--messages 50000] [--batch 500] [--repeats 5]
        [--bootstrap-servers B --replication-factor 3]
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import confluent_kafka

import harness
from governed_kafka import (
    Catalog,
    CommitStrategy,
    GovernedConsumer,
    GovernedProducer,
    Record,
    hooks,
    profiles,
)

PARTITIONS = 6
SESSION = {"session.timeout.ms": 6000}
SERVICE = "bench"


def _catalog(directory: Path, source: str, sink: str, rf: int) -> Catalog:
    common = {"partitions": PARTITIONS, "replication_factor": rf, "key": "required"}
    return Catalog.from_dict(
        {
            "topics": [
                {"name": source, **common, "producers": [SERVICE], "consumers": [SERVICE]},
                {
                    "name": sink,
                    **common,
                    "exactly_once": True,
                    "producers": [SERVICE],
                    "consumers": ["auditor"],
                },
            ]
        },
        path=directory / "governance.toml",
    )


def fill(bootstrap: str, catalog: Catalog, source: str, sink: str, messages: int) -> None:
    rf = catalog.topic(source).replication_factor
    harness.create_topic(bootstrap, source, PARTITIONS, rf)
    harness.create_topic(bootstrap, sink, PARTITIONS, rf)
    with GovernedProducer(
        catalog, service=SERVICE, bootstrap_servers=bootstrap, profile=profiles.HIGH_THROUGHPUT
    ) as producer:
        for i in range(messages):
            producer.send(source, f"order-{i:08d}".encode() * 8, key=f"customer-{i % 1000}")


def _percentiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    if len(ordered) < 2:
        return (ordered[0], ordered[0]) if ordered else (float("nan"), float("nan"))
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return cuts[49], cuts[98]


def raw(
    bootstrap: str, source: str, sink: str, *, messages: int, batch: int, latencies: list[float]
) -> float:
    """A consume-transform-produce loop written against confluent-kafka directly."""
    group = f"raw-{uuid.uuid4().hex}"
    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "partition.assignment.strategy": "cooperative-sticky",
            "log_level": 3,
            **profiles.DURABLE.to_librdkafka("consumer"),
            **SESSION,
        }
    )
    producer = confluent_kafka.Producer(
        {
            "bootstrap.servers": bootstrap,
            "transactional.id": group,
            "enable.idempotence": True,
            "acks": "all",
            "log_level": 3,
            **profiles.DURABLE.to_librdkafka(),
        }
    )
    producer.init_transactions(30)
    consumer.subscribe([source])
    seen = 0
    first = 0.0
    try:
        while seen < messages:
            records = [m for m in consumer.consume(batch, 1.0) if m.error() is None]
            if not records:
                continue
            if not seen:
                first = time.perf_counter()
            producer.begin_transaction()
            positions: dict[tuple[str, int], int] = {}
            for msg in records:
                producer.produce(sink, msg.value(), msg.key())
                positions[(msg.topic(), msg.partition())] = msg.offset() + 1  # type: ignore[operator]
            started = time.perf_counter()
            producer.send_offsets_to_transaction(
                [confluent_kafka.TopicPartition(t, p, o) for (t, p), o in positions.items()],
                consumer.consumer_group_metadata(),
            )
            producer.commit_transaction()
            latencies.append(time.perf_counter() - started)
            seen += len(records)
        return seen / (time.perf_counter() - first)
    finally:
        consumer.close()
        producer.flush(30)


class _Commits(hooks.Hook):
    """The commit latency of each transaction, from the producer's hook."""

    def __init__(self, latencies: list[float]) -> None:
        self.latencies = latencies
        self.last_end = 0.0

    def on_transaction_commit(self, details: hooks.TransactionCommitDetails) -> None:
        self.latencies.append(details.commit_s)
        self.last_end = time.perf_counter()


def governed(
    bootstrap: str,
    catalog: Catalog,
    source: str,
    sink: str,
    *,
    messages: int,
    batch: int,
    latencies: list[float],
) -> float:
    """GovernedConsumer with CommitStrategy.transactional and a GovernedProducer."""
    group = f"governed-{uuid.uuid4().hex}"
    commits = _Commits(latencies)
    out = GovernedProducer(
        catalog,
        service=SERVICE,
        bootstrap_servers=bootstrap,
        transactional_id=group,
        hooks=[commits],
        verify_topics=False,
    )
    seen = 0
    first = 0.0
    send = out.send

    def handler(record: Record) -> None:
        nonlocal seen, first
        if not seen:
            first = time.perf_counter()
        seen += 1
        send(sink, record.value, key=record.key)

    try:
        with GovernedConsumer(
            catalog,
            service=SERVICE,
            group_id=group,
            topics=[source],
            bootstrap_servers=bootstrap,
            commit=CommitStrategy.transactional(out, max_records=batch, max_interval_s=60),
            overrides=SESSION,
            verify_topics=False,
        ) as consumer:
            while seen < messages:
                consumer.run(handler, max_records=messages - seen, timeout=30)
        return seen / (commits.last_end - first)
    finally:
        out.close()


def main() -> None:
    parser = harness.arguments(__doc__.splitlines()[0], messages=50_000)
    parser.add_argument("--batch", type=int, default=500, help="records per transaction")
    args = parser.parse_args()
    harness.print_environment()
    latencies: dict[str, list[float]] = {"raw": [], "governed": []}
    with harness.broker(args.bootstrap_servers) as bootstrap, tempfile.TemporaryDirectory() as tmp:
        suffix = uuid.uuid4().hex[:10]
        source, sink = f"bench.eos.in{suffix}.v1", f"bench.eos.out{suffix}.v1"
        catalog = _catalog(Path(tmp), source, sink, args.replication_factor)
        fill(bootstrap, catalog, source, sink, args.messages)
        rates = harness.compare(
            {
                "raw": lambda: raw(
                    bootstrap,
                    source,
                    sink,
                    messages=args.messages,
                    batch=args.batch,
                    latencies=latencies["raw"],
                ),
                "governed": lambda: governed(
                    bootstrap,
                    catalog,
                    source,
                    sink,
                    messages=args.messages,
                    batch=args.batch,
                    latencies=latencies["governed"],
                ),
            },
            repeats=args.repeats,
        )
    print(
        f"{args.messages:,} keyed records of 136 bytes in, one out each, {PARTITIONS} "
        f"partitions (RF {args.replication_factor}), {args.batch} records per transaction, "
        f"{args.repeats} runs each (plus one warm-up), fresh group and transactional id per run"
    )
    result = harness.report(
        rates,
        baseline="raw",
        unit="rec/s",
        target=("governed", 0.8),
    )
    timed = {}
    for name, values in latencies.items():
        p50, p99 = _percentiles(values)
        timed[name] = {"transactions": len(values), "p50_ms": p50 * 1000, "p99_ms": p99 * 1000}
        print(
            f"commit latency {name:<8}  p50 {p50 * 1000:7.1f} ms  p99 {p99 * 1000:7.1f} ms  "
            f"({len(values)} transactions, warm-up included)"
        )
    if args.json_path:
        result["commit_latency"] = timed
        result["batch"] = args.batch
        result["messages"] = args.messages
        result["replication_factor"] = args.replication_factor
        Path(args.json_path).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
