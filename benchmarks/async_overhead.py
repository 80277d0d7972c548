"""AsyncGovernedProducer against the sync GovernedProducer, same run.

Same broker, same governed settings (DURABLE profile), same payloads: 100-byte values
over 1,000 distinct keys into a 6-partition topic. Each timed run sends ``--messages``
records and waits until every one is delivered. Construction is not timed.

Variants:
  sync                GovernedProducer.send() per record, then flush()
  sync, outcomes      the same, then DeliveryFuture.result() of every record (what the
                      async variants hand back: each record's RecordMetadata)
  async send_nowait   AsyncGovernedProducer.send_nowait() per record (pipelined), then
                      await every future
  async await x1000   1,000 tasks, each awaiting AsyncGovernedProducer.send() in turn
                      (a service answering 1,000 concurrent requests)
  confluent aio       confluent_kafka.aio.AIOProducer.produce() per record, then await
                      every future (no governance; for reference)

No target: the async variants pay for an asyncio future per record (created, resolved on
the loop, awaited), which the sync producer does not; the figures say how much.

    python benchmarks/async_overhead.py [--messages 100000] [--repeats 5]
"""

from __future__ import annotations

import asyncio
import time
import uuid

import confluent_kafka
from confluent_kafka.aio import AIOProducer

import harness
from governed_kafka import Catalog, GovernedProducer, profiles
from governed_kafka._config import producer_config
from governed_kafka.aio import AsyncGovernedProducer

PARTITIONS = 6
KEYS = [f"customer-{i:04d}".encode() for i in range(1000)]
VALUE = b"v" * 100
TASKS = 1000


def _new_topic(bootstrap: str) -> tuple[str, Catalog]:
    name = f"bench.aio.t{uuid.uuid4().hex[:10]}.v1"
    admin = confluent_kafka.admin.AdminClient({"bootstrap.servers": bootstrap})
    topic = confluent_kafka.admin.NewTopic(name, num_partitions=PARTITIONS, replication_factor=1)
    for future in admin.create_topics([topic]).values():
        future.result(10)
    catalog = Catalog.from_dict(
        {
            "topics": [
                {
                    "name": name,
                    "partitions": PARTITIONS,
                    "replication_factor": 1,
                    "key": "required",
                    "producers": ["bench"],
                }
            ]
        }
    )
    return name, catalog


def sync(bootstrap: str, messages: int, *, outcomes: bool = False) -> float:
    topic, catalog = _new_topic(bootstrap)
    producer = GovernedProducer(
        catalog, service="bench", bootstrap_servers=bootstrap, profile=profiles.DURABLE
    )
    producer.send_and_wait(topic, b"warm-up", key=KEYS[0])
    send = producer.send
    keys = KEYS
    n_keys = len(keys)
    started = time.perf_counter()
    if outcomes:
        futures = [send(topic, VALUE, key=keys[i % n_keys]) for i in range(messages)]
        producer.flush()
        for future in futures:
            future.result()
    else:
        for i in range(messages):
            send(topic, VALUE, key=keys[i % n_keys])
        producer.flush()
    elapsed = time.perf_counter() - started
    producer.close()
    return messages / elapsed


async def _nowait(bootstrap: str, messages: int) -> float:
    topic, catalog = _new_topic(bootstrap)
    async with AsyncGovernedProducer(
        catalog, service="bench", bootstrap_servers=bootstrap, profile=profiles.DURABLE
    ) as producer:
        await producer.send(topic, b"warm-up", key=KEYS[0])
        send = producer.send_nowait
        keys = KEYS
        n_keys = len(keys)
        started = time.perf_counter()
        futures = [send(topic, VALUE, key=keys[i % n_keys]) for i in range(messages)]
        await asyncio.gather(*futures)
        elapsed = time.perf_counter() - started
    return messages / elapsed


async def _awaited(bootstrap: str, messages: int) -> float:
    topic, catalog = _new_topic(bootstrap)
    async with AsyncGovernedProducer(
        catalog, service="bench", bootstrap_servers=bootstrap, profile=profiles.DURABLE
    ) as producer:
        await producer.send(topic, b"warm-up", key=KEYS[0])
        per_task = messages // TASKS

        async def requests(task: int) -> None:
            for i in range(per_task):
                await producer.send(topic, VALUE, key=KEYS[(task * per_task + i) % len(KEYS)])

        started = time.perf_counter()
        await asyncio.gather(*(requests(t) for t in range(TASKS)))
        elapsed = time.perf_counter() - started
    return per_task * TASKS / elapsed


async def _confluent(bootstrap: str, messages: int) -> float:
    topic, _ = _new_topic(bootstrap)
    config = producer_config(
        bootstrap_servers=bootstrap, client_id="bench", profile=profiles.DURABLE, overrides=None
    )
    producer = AIOProducer(dict(config))
    try:
        await (await producer.produce(topic, b"warm-up", KEYS[0]))
        keys = KEYS
        n_keys = len(keys)
        started = time.perf_counter()
        futures = [await producer.produce(topic, VALUE, keys[i % n_keys]) for i in range(messages)]
        await asyncio.gather(*futures)
        elapsed = time.perf_counter() - started
    finally:
        await producer.close()
    return messages / elapsed


def main() -> None:
    args = harness.arguments(__doc__.splitlines()[0], messages=100_000).parse_args()
    harness.print_environment()
    with harness.broker(args.bootstrap_servers) as bootstrap:
        rates = harness.compare(
            {
                "sync": lambda: sync(bootstrap, args.messages),
                "sync, outcomes": lambda: sync(bootstrap, args.messages, outcomes=True),
                "async send_nowait": lambda: asyncio.run(_nowait(bootstrap, args.messages)),
                "async await x1000": lambda: asyncio.run(_awaited(bootstrap, args.messages)),
                "confluent aio": lambda: asyncio.run(_confluent(bootstrap, args.messages)),
            },
            repeats=args.repeats,
        )
    print(
        f"{args.messages:,} records of {len(VALUE)} bytes, {len(KEYS):,} keys, "
        f"{PARTITIONS} partitions, {args.repeats} runs each"
    )
    harness.report(rates, baseline="sync", unit="msg/s", json_path=args.json_path)


if __name__ == "__main__":
    main()
