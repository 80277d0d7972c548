"""GovernedProducer.send against raw confluent_kafka.Producer.produce, same run.

Same broker, same librdkafka settings (the governed ones plus the DURABLE profile),
same payloads: 100-byte values over 1,000 distinct keys into a 6-partition topic.
Each timed run sends ``--messages`` records and waits until all are delivered.

Variants:
  raw           produce() with no per-record delivery callback, poll(0) every 1,000
  raw+callback  produce() with a per-record on_delivery callback, poll(0) every 1,000
  governed      GovernedProducer.send(), a DeliveryFuture per record
  governed+headers  the same with two headers per record (each name and value checked)

Target: governed >= 0.8x raw.

    python benchmarks/produce_overhead.py [--messages 200000] [--repeats 5]
"""

from __future__ import annotations

import time
import uuid

import confluent_kafka

import harness
from governed_kafka import Catalog, GovernedProducer, profiles
from governed_kafka._config import producer_config

PARTITIONS = 6
KEYS = [f"customer-{i:04d}".encode() for i in range(1000)]
VALUE = b"v" * 100
HEADERS = [("trace-id", b"0123456789abcdef"), ("source", "checkout")]


def _new_topic(bootstrap: str, rf: int) -> tuple[str, Catalog]:
    name = f"bench.produce.t{uuid.uuid4().hex[:10]}.v1"
    harness.create_topic(bootstrap, name, PARTITIONS, rf)
    catalog = Catalog.from_dict(
        {
            "topics": [
                {
                    "name": name,
                    "partitions": PARTITIONS,
                    "replication_factor": rf,
                    "key": "required",
                    "producers": ["bench"],
                }
            ]
        }
    )
    return name, catalog


def raw(bootstrap: str, messages: int, *, callback: bool, rf: int) -> float:
    topic, _ = _new_topic(bootstrap, rf)
    # The very settings a GovernedProducer runs with, handed to the raw client.
    config = producer_config(
        bootstrap_servers=bootstrap, client_id="bench", profile=profiles.DURABLE, overrides=None
    )
    producer = confluent_kafka.Producer(config)
    producer.produce(topic, b"warm-up", KEYS[0])
    producer.flush(10)
    delivered = 0

    def on_delivery(err: object, msg: object) -> None:
        nonlocal delivered
        delivered += 1

    produce = producer.produce
    poll = producer.poll
    keys = KEYS
    n_keys = len(keys)
    started = time.perf_counter()
    for i in range(messages):
        while True:
            try:
                if callback:
                    produce(topic, VALUE, keys[i % n_keys], on_delivery=on_delivery)
                else:
                    produce(topic, VALUE, keys[i % n_keys])
                break
            except BufferError:
                poll(0.005)
        if not i % 1000:
            poll(0)
    producer.flush()
    elapsed = time.perf_counter() - started
    if callback:
        assert delivered == messages, (delivered, messages)
    return messages / elapsed


def governed(bootstrap: str, messages: int, rf: int, *, headers: bool = False) -> float:
    topic, catalog = _new_topic(bootstrap, rf)
    producer = GovernedProducer(
        catalog, service="bench", bootstrap_servers=bootstrap, profile=profiles.DURABLE
    )
    producer.send_and_wait(topic, b"warm-up", key=KEYS[0])
    send = producer.send
    keys = KEYS
    n_keys = len(keys)
    started = time.perf_counter()
    if headers:
        for i in range(messages):
            send(topic, VALUE, key=keys[i % n_keys], headers=HEADERS)
    else:
        for i in range(messages):
            send(topic, VALUE, key=keys[i % n_keys])
    producer.flush()
    elapsed = time.perf_counter() - started
    producer.close()
    return messages / elapsed


def main() -> None:
    args = harness.arguments(__doc__.splitlines()[0], messages=200_000).parse_args()
    harness.print_environment()
    rf = args.replication_factor
    with harness.broker(args.bootstrap_servers) as bootstrap:
        rates = harness.compare(
            {
                "raw": lambda: raw(bootstrap, args.messages, callback=False, rf=rf),
                "raw+callback": lambda: raw(bootstrap, args.messages, callback=True, rf=rf),
                "governed": lambda: governed(bootstrap, args.messages, rf),
                "governed+headers": lambda: governed(bootstrap, args.messages, rf, headers=True),
            },
            repeats=args.repeats,
        )
    print(
        f"{args.messages:,} records of {len(VALUE)} bytes, {len(KEYS):,} keys, "
        f"{PARTITIONS} partitions (RF {rf}), {args.repeats} runs each"
    )
    harness.report(
        rates, baseline="raw", unit="msg/s", target=("governed", 0.8), json_path=args.json_path
    )


if __name__ == "__main__":
    main()
