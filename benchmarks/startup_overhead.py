"""What the runtime topic gate costs a producer at start-up, against the raw client.

Same broker, same librdkafka settings. Each timed run builds and closes ``--messages``
producers (the option counts start-ups here) for a catalog of ``TOPICS`` topics the
service produces to; the gate reads Metadata and DescribeConfigs for all of them once
per start-up.

Variants:
  raw             confluent_kafka.Producer(config), then flush(0)
  governed        GovernedProducer(..., verify_topics=False), then close()
  governed+gate   GovernedProducer(..., verify_topics=True), then close()

No target: start-up happens once per process; the figure says how long the check adds.

    python benchmarks/startup_overhead.py [--messages 50] [--repeats 5]
"""

from __future__ import annotations

import statistics
import time
import uuid

import confluent_kafka

import harness
from governed_kafka import Catalog, GovernedProducer, profiles
from governed_kafka._config import producer_config

TOPICS = 5
PARTITIONS = 3


def _catalog(bootstrap: str) -> Catalog:
    names = [f"bench.startup.t{uuid.uuid4().hex[:10]}.v1" for _ in range(TOPICS)]
    admin = confluent_kafka.admin.AdminClient({"bootstrap.servers": bootstrap})
    configs = {"cleanup.policy": "delete", "retention.ms": "3600000"}
    new = [
        confluent_kafka.admin.NewTopic(
            n, num_partitions=PARTITIONS, replication_factor=1, config=configs
        )
        for n in names
    ]
    for future in admin.create_topics(new).values():
        future.result(10)
    topics = [
        {
            "name": name,
            "partitions": PARTITIONS,
            "replication_factor": 1,
            "retention_ms": 3_600_000,
            "producers": ["bench"],
        }
        for name in names
    ]
    return Catalog.from_dict({"topics": topics})


def raw(bootstrap: str, count: int) -> float:
    config = producer_config(
        bootstrap_servers=bootstrap, client_id="bench", profile=profiles.DURABLE, overrides=None
    )
    started = time.perf_counter()
    for _ in range(count):
        producer = confluent_kafka.Producer(config)
        producer.flush(0)
        del producer
    return count / (time.perf_counter() - started)


def governed(bootstrap: str, catalog: Catalog, count: int, *, verify: bool) -> float:
    started = time.perf_counter()
    for _ in range(count):
        producer = GovernedProducer(
            catalog, service="bench", bootstrap_servers=bootstrap, verify_topics=verify
        )
        producer.close()
    return count / (time.perf_counter() - started)


def main() -> None:
    args = harness.arguments(__doc__.splitlines()[0], messages=50).parse_args()
    harness.print_environment()
    with harness.broker(args.bootstrap_servers) as bootstrap:
        catalog = _catalog(bootstrap)
        rates = harness.compare(
            {
                "raw": lambda: raw(bootstrap, args.messages),
                "governed": lambda: governed(bootstrap, catalog, args.messages, verify=False),
                "governed+gate": lambda: governed(bootstrap, catalog, args.messages, verify=True),
            },
            repeats=args.repeats,
        )
    print(f"{args.messages} start-ups per run, {TOPICS} topics of {PARTITIONS} partitions")
    harness.report(rates, baseline="raw", unit="start-ups/s", json_path=args.json_path)
    gated, ungated = (statistics.median(rates[v]) for v in ("governed+gate", "governed"))
    added_ms = 1000 / gated - 1000 / ungated
    print(f"the gate adds {added_ms:.1f} ms per start-up (median)")


if __name__ == "__main__":
    main()
