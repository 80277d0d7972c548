"""Throughput when 1% of records fail once: retry topics against in-place retries, same run.

One raw-bytes topic of 6 partitions is read from the beginning by a fresh group per run;
the handler fails the first attempt at every hundredth record and succeeds on the
second. The wait before the second attempt is the same in both variants (``--wait``):

  no-failures  the same records, none failing (the ceiling)
  in-place     RetryPolicy(attempts=2, initial_backoff_s=WAIT, jitter 0): the partition
               waits for the backoff, blocking every record behind it
  retry-topic  RetryPolicy.never(), so the failed record goes to the topic's retry topic
               (delay WAIT) and is handled again when due; the partition goes on

Every run reads a topic (and retry topic) of its own, filled before the runs.

The rate counts records successfully handled, from the first handled to the last (the
last tier record included, so its delay is paid once at the end).

    python benchmarks/retry_tiers.py [--messages 20000] [--repeats 3] [--wait 0.1]
"""

from __future__ import annotations

import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import harness
from governed_kafka import (
    Catalog,
    GovernedConsumer,
    GovernedProducer,
    Record,
    RetryPolicy,
    profiles,
)

PARTITIONS = 6
SESSION = {"session.timeout.ms": 6000}


def _catalog(
    directory: Path, topics: list[str], tiered: set[str], rf: int, wait_s: float
) -> Catalog:
    """Each of ``topics`` with a dead-letter topic; those ``tiered`` with a retry topic
    (delay ``wait_s``) before it."""
    tables: list[dict[str, object]] = []
    for topic in topics:
        tier = {
            "name": f"{topic}.retry",
            "partitions": PARTITIONS,
            "replication_factor": rf,
            "producers": ["bench"],
            "consumers": ["bench"],
        }
        dlq = {**tier, "name": f"{topic}.dlq", "consumers": []}
        source = {
            "name": topic,
            "partitions": PARTITIONS,
            "replication_factor": rf,
            "key": "required",
            "producers": ["bench"],
            "consumers": ["bench"],
            "dead_letter_topic": dlq["name"],
        }
        tables += [source, dlq]
        if topic in tiered:
            source["retry_topics"] = [tier["name"]]
            source["retry_delays"] = [f"{round(wait_s * 1000)}ms"]
            tables.append(tier)
    return Catalog.from_dict({"topics": tables}, path=directory / "governance.toml")


def fill(bootstrap: str, catalog: Catalog, topics: list[str], messages: int) -> None:
    for contract in catalog:
        harness.create_topic(bootstrap, contract.name, PARTITIONS, contract.replication_factor)
    with GovernedProducer(
        catalog, service="bench", bootstrap_servers=bootstrap, profile=profiles.HIGH_THROUGHPUT
    ) as producer:
        for topic in topics:
            for i in range(messages):
                producer.send(topic, str(i).encode(), key=f"customer-{i % 1000}")


def consume(
    bootstrap: str, catalog: Catalog, topic: str, messages: int, *, retry: RetryPolicy, fail: bool
) -> float:
    """Read ``topic`` (a fresh one, with its own tier) from the start with a fresh group."""
    done: set[int] = set()
    failed: set[int] = set()
    first = last = 0.0

    def handler(record: Record) -> None:
        nonlocal first, last
        i = int(record.value)
        if fail and i % 100 == 0 and i not in failed:
            failed.add(i)
            raise ValueError("fails once")
        if not first:
            first = time.perf_counter()
        done.add(i)
        last = time.perf_counter()

    with GovernedConsumer(
        catalog,
        service="bench",
        group_id=f"bench-{uuid.uuid4().hex}",
        topics=[topic],
        bootstrap_servers=bootstrap,
        retry=retry,
        overrides=SESSION,
        verify_topics=False,
    ) as consumer:
        deadline = time.monotonic() + 600
        while len(done) < messages and time.monotonic() < deadline:
            consumer.run(handler, timeout=1)
    assert len(done) == messages, f"{len(done)} of {messages} handled"
    return (messages - 1) / (last - first)


def main() -> None:
    parser = harness.arguments(__doc__.splitlines()[0], messages=20_000, repeats=3)
    parser.add_argument("--wait", type=float, default=0.1, help="seconds before the 2nd attempt")
    args = parser.parse_args()
    harness.print_environment()
    runs = args.repeats + 1  # the warm-up too
    variants = ("no-failures", "in-place", "retry-topic")
    with harness.broker(args.bootstrap_servers) as bootstrap, tempfile.TemporaryDirectory() as tmp:
        base = f"bench.retry.t{uuid.uuid4().hex[:10]}"
        # A topic of its own (and tier) for every run of every variant: a tier holds
        # what earlier runs wrote, which a fresh group would read again.
        topics = {v: [f"{base}.{v}.r{n}.v1" for n in range(runs)] for v in variants}
        catalog = _catalog(
            Path(tmp),
            [t for ts in topics.values() for t in ts],
            set(topics["retry-topic"]),
            args.replication_factor,
            args.wait,
        )
        fill(bootstrap, catalog, [t for ts in topics.values() for t in ts], args.messages)
        in_place = RetryPolicy(attempts=2, initial_backoff_s=args.wait, jitter_s=0)
        policies = {
            "no-failures": (in_place, False),
            "in-place": (in_place, True),
            "retry-topic": (RetryPolicy.never(), True),
        }

        def variant(name: str) -> Callable[[], float]:
            left = iter(topics[name])
            retry, fail = policies[name]
            return lambda: consume(
                bootstrap, catalog, next(left), args.messages, retry=retry, fail=fail
            )

        rates = harness.compare({name: variant(name) for name in variants}, repeats=args.repeats)
    print(
        f"{args.messages:,} records, {PARTITIONS} partitions (RF {args.replication_factor}), "
        f"1% failing once, {args.wait:.2f} s before the second attempt, "
        f"{args.repeats} runs each, fresh group per run"
    )
    harness.report(rates, baseline="no-failures", unit="rec/s", json_path=args.json_path)


if __name__ == "__main__":
    main()
