"""Retry tiers against a real broker: a failed record waits in its tier and comes back when
due, without holding up its partition; after the last tier, the dead letters."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from test_consumer import FAST, _committed, fast

from conftest import Broker, CatalogFactory
from governed_kafka import (
    Catalog,
    ConfigError,
    GovernanceViolation,
    GovernedConsumer,
    GovernedProducer,
    Record,
    RetryPolicy,
)
from governed_kafka.aio import AsyncGovernedConsumer
from kafka_helpers import read_all


def tier_contracts(
    topic: str,
    *,
    partitions: int = 3,
    delays: tuple[str, ...] = ("1s", "2s"),
    ordering: str = "none",
) -> str:
    """A keyed topic with one tier per delay, then a dead-letter topic, all with its
    partition count; billing consumes and writes them."""
    tiers = [f"{topic}.retry-{i + 1}" for i in range(len(delays))]
    text = f"""
    [[topics]]
    name = "{topic}"
    partitions = {partitions}
    replication_factor = 1
    retention_ms = 3600000
    key = "required"
    ordering = "{ordering}"
    producers = ["checkout"]
    consumers = ["billing"]
    retry_topics = {tiers!r}
    retry_delays = {list(delays)!r}
    dead_letter_topic = "{topic}.dlq"

    [[topics]]
    name = "{topic}.dlq"
    partitions = {partitions}
    replication_factor = 1
    retention_ms = 3600000
    producers = ["billing"]
    consumers = ["ops"]
    """
    for tier in tiers:
        text += f"""
    [[topics]]
    name = "{tier}"
    partitions = {partitions}
    replication_factor = 1
    retention_ms = 3600000
    producers = ["billing"]
    consumers = ["billing"]
    """
    return text


def tiered_consumer(
    catalog: Catalog, bootstrap: str, topic: str, group: str, **options: Any
) -> GovernedConsumer:
    """A consumer of ``topic`` (and so of its tiers) that tries each record once in place."""
    return GovernedConsumer(
        catalog,
        service="billing",
        group_id=group,
        topics=[topic],
        bootstrap_servers=bootstrap,
        retry=options.pop("retry", RetryPolicy.never()),
        overrides=options.pop("overrides", FAST),
        **options,
    )


def produce(catalog: Catalog, bootstrap: str, topic: str, values: list[tuple[str, str]]) -> None:
    """Send ``(key, value)`` pairs in order."""
    with GovernedProducer(catalog, service="checkout", bootstrap_servers=bootstrap) as producer:
        for key, value in values:
            producer.send(topic, value.encode(), key=key)


def run_until(consumer: GovernedConsumer, done: Any, handler: Any, timeout: float) -> None:
    """Run ``consumer`` in short slices until ``done()`` or ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        consumer.run(handler, timeout=0.5)


def test_a_failed_record_waits_in_its_tier_and_is_handled_when_due(
    kafka_broker: Broker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """A record failing once reaches the handler again from the first tier no sooner than
    its delay, carrying its origin and attempt, while the records after it go on."""
    catalog = provisioned(tier_contracts(topic_name, partitions=1, delays=("2s", "4s")))
    bootstrap = kafka_broker.bootstrap_servers
    produce(catalog, bootstrap, topic_name, [("k1", "fail-once"), ("k2", "a"), ("k3", "b")])
    seen: list[tuple[str, str, float]] = []
    failed_at: dict[str, float] = {}

    def handler(record: Record) -> None:
        value = record.value.decode()
        seen.append((record.topic, value, time.monotonic()))
        if value == "fail-once" and value not in failed_at:
            failed_at[value] = time.monotonic()
            raise ValueError("not yet")

    with tiered_consumer(catalog, bootstrap, topic_name, f"g-{topic_name}") as consumer:
        run_until(consumer, lambda: len(seen) >= 4, handler, 30)
        summary = consumer.run(handler, timeout=0.5)
    assert [(t, v) for t, v, _ in seen[:3]] == [
        (topic_name, "fail-once"),
        (topic_name, "a"),
        (topic_name, "b"),
    ]
    tier_topic, value, handled_at = seen[3]
    assert (tier_topic, value) == (f"{topic_name}.retry-1", "fail-once")
    assert handled_at - failed_at["fail-once"] >= 2.0 - 0.05
    assert summary.records == 0  # nothing left over
    (tiered,) = read_all(bootstrap, f"{topic_name}.retry-1")
    headers = dict(tiered.headers() or [])
    assert headers["retry.origin.topic"] == topic_name.encode()
    assert headers["retry.origin.offset"] == b"0"
    assert headers["retry.attempt"] == b"1"
    assert headers["retry.error.type"] == b"builtins.ValueError"
    assert headers["retry.error.message"] == b"not yet"
    assert read_all(bootstrap, f"{topic_name}.dlq") == []


def test_after_the_last_tier_a_record_is_dead_lettered_with_its_origin(
    kafka_broker: Broker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """A record that always fails passes every tier in turn, then goes to the dead-letter
    topic naming its original topic, partition and offset and every attempt made."""
    catalog = provisioned(tier_contracts(topic_name, partitions=1, delays=("1s", "1s")))
    bootstrap = kafka_broker.bootstrap_servers
    produce(catalog, bootstrap, topic_name, [("k1", "ok"), ("k2", "always")])
    seen: list[str] = []

    def handler(record: Record) -> None:
        seen.append(record.topic)
        if record.value == b"always":
            raise RuntimeError("broken for good")

    with tiered_consumer(
        catalog, bootstrap, topic_name, f"g-{topic_name}", retry=RetryPolicy(attempts=2)
    ) as consumer:
        run_until(
            consumer, lambda: len(read_all(bootstrap, f"{topic_name}.dlq", timeout=5)), handler, 40
        )
    (letter,) = read_all(bootstrap, f"{topic_name}.dlq")
    headers = dict(letter.headers() or [])
    assert headers["dlq.original.topic"] == topic_name.encode()
    assert headers["dlq.original.offset"] == b"1"
    assert headers["dlq.attempts"] == b"6"  # two in place at the source and at each tier
    assert headers["dlq.error.message"] == b"broken for good"
    assert not any(name.startswith("retry.") for name in headers)
    assert letter.key() == b"k2"
    assert seen.count(f"{topic_name}.retry-1") == 2
    assert seen.count(f"{topic_name}.retry-2") == 2


def test_a_waiting_tier_does_not_hold_up_the_source(
    kafka_broker: Broker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """While a tier's head waits for its delay, records produced to the source are handled
    at once: the poll loop goes on, only the tier partition is paused."""
    catalog = provisioned(tier_contracts(topic_name, partitions=1, delays=("5s",)))
    bootstrap = kafka_broker.bootstrap_servers
    produce(catalog, bootstrap, topic_name, [("k1", "fail")])
    handled: dict[str, float] = {}

    def handler(record: Record) -> None:
        value = record.value.decode()
        if value == "fail" and record.topic == topic_name:
            raise ValueError("later")
        handled[value] = time.monotonic()

    with tiered_consumer(catalog, bootstrap, topic_name, f"g-{topic_name}") as consumer:
        run_until(
            consumer,
            lambda: bool(read_all(bootstrap, f"{topic_name}.retry-1", timeout=5)),
            handler,
            20,
        )
        sent = time.monotonic()
        produce(catalog, bootstrap, topic_name, [("k2", "fresh")])
        run_until(consumer, lambda: "fresh" in handled, handler, 10)
        assert handled["fresh"] - sent < 2.0
        assert "fail" not in handled  # still waiting in its tier
        run_until(consumer, lambda: "fail" in handled, handler, 15)
    assert "fail" in handled


def test_each_partition_of_a_tier_waits_for_its_own_head(
    kafka_broker: Broker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """Records reach the tier in order and leave it in order, each no sooner than due."""
    catalog = provisioned(tier_contracts(topic_name, partitions=3, delays=("1s",)))
    bootstrap = kafka_broker.bootstrap_servers
    values = [(f"k{i}", f"v{i}") for i in range(30)]
    produce(catalog, bootstrap, topic_name, values)
    first: dict[str, float] = {}
    again: dict[str, float] = {}
    order: dict[int, list[str]] = defaultdict(list)

    def handler(record: Record) -> None:
        value = record.value.decode()
        if record.topic == topic_name:
            first[value] = time.monotonic()
            raise ValueError("once")
        again[value] = time.monotonic()
        order[record.partition].append(value)

    with tiered_consumer(catalog, bootstrap, topic_name, f"g-{topic_name}") as consumer:
        run_until(consumer, lambda: len(again) == 30, handler, 40)
    assert set(again) == {v for _, v in values}
    assert all(again[v] - first[v] >= 1.0 - 0.05 for v in again)
    for partition, seen in order.items():
        assert seen == sorted(seen, key=lambda v: int(v[1:])), partition


def test_key_order_holds_over_10000_records_while_chosen_ones_fail_twice(
    kafka_broker: Broker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """10,000 records over 100 keys, chosen records failing twice: each key's records reach
    the handler in produced order, a failing key's later records wait behind it in the
    tiers, and every other key's records are handled straight from the source, in offset
    order."""
    catalog = provisioned(tier_contracts(topic_name, partitions=3, ordering="key"))
    bootstrap = kafka_broker.bootstrap_servers
    total, keys = 10_000, 100
    produce(catalog, bootstrap, topic_name, [(f"k{i % keys}", str(i)) for i in range(total)])
    chosen = {key: key + keys * turn for turn, key in enumerate((3, 17, 42, 58, 77, 91), 5)}
    failures: dict[int, int] = defaultdict(int)
    done: dict[int, list[int]] = defaultdict(list)
    from_source: dict[int, list[tuple[int, int]]] = defaultdict(list)
    from_tiers: set[int] = set()

    def handler(record: Record) -> None:
        i = int(record.value)
        if i in chosen.values() and failures[i] < 2:
            failures[i] += 1
            raise ValueError(f"record {i} fails twice")
        done[i % keys].append(i)
        if record.topic == topic_name:
            from_source[record.partition].append((record.offset, i))
        else:
            from_tiers.add(i)

    with tiered_consumer(catalog, bootstrap, topic_name, f"g-{topic_name}") as consumer:
        deadline = time.monotonic() + 180
        while sum(map(len, done.values())) < total and time.monotonic() < deadline:
            consumer.run(handler, timeout=0.5)
    assert sum(map(len, done.values())) == total
    for key in range(keys):
        assert done[key] == list(range(key, total, keys)), f"key k{key} out of order"
    assert all(failures[i] == 2 for i in chosen.values())
    behind = {i for key, first in chosen.items() for i in range(first, total, keys)}
    assert from_tiers == behind  # the failed ones, and their keys' later records, parked
    straight = {i for pairs in from_source.values() for _, i in pairs}
    assert straight == set(range(total)) - behind
    for pairs in from_source.values():
        assert pairs == sorted(pairs)  # other keys went on, in offset order


def test_parked_keys_are_rebuilt_from_the_tiers_after_a_restart(
    kafka_broker: Broker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """A consumer that restarts while a key waits in a tier parks that key's new records
    behind it: the key's order holds across the restart."""
    catalog = provisioned(tier_contracts(topic_name, partitions=1, delays=("4s",), ordering="key"))
    bootstrap = kafka_broker.bootstrap_servers
    group = f"g-{topic_name}"
    produce(catalog, bootstrap, topic_name, [("k", "1"), ("k", "2"), ("other", "x")])
    seen: list[str] = []
    failed: set[str] = set()

    def handler(record: Record) -> None:
        value = record.value.decode()
        if value == "1" and value not in failed:
            failed.add(value)
            raise ValueError("first one fails")
        seen.append(value)

    with tiered_consumer(catalog, bootstrap, topic_name, group) as consumer:
        run_until(consumer, lambda: "x" in seen, handler, 20)
    assert seen == ["x"]  # 1 waits in the tier, 2 parked behind it
    produce(catalog, bootstrap, topic_name, [("k", "3")])
    parked = 0
    with tiered_consumer(catalog, bootstrap, topic_name, group) as consumer:
        deadline = time.monotonic() + 30
        while len(seen) < 4 and time.monotonic() < deadline:
            parked += consumer.run(handler, timeout=0.5).parked
    assert seen == ["x", "1", "2", "3"]
    assert parked == 1  # 3 found its key parked: rebuilt from what the tier held


def test_two_members_each_hold_whole_lanes_and_keep_key_order(
    kafka_broker: Broker, provisioned: CatalogFactory, topic_name: str, group_protocol: str
) -> None:
    """Two members of a key-ordered group (classic, and KIP-848's protocol on Apache
    Kafka): each holds a partition of the topic together with the same partition of its
    tier, and every key's records reach the handler in the order they were produced."""
    catalog = provisioned(tier_contracts(topic_name, partitions=2, delays=("1s",), ordering="key"))
    bootstrap = kafka_broker.bootstrap_servers
    group = f"g-{topic_name}"
    values = [(f"k{i % 20}", str(i)) for i in range(400)]
    failing = {str(i) for i in range(0, 400, 37)}
    seen: dict[str, list[int]] = defaultdict(list)
    failed: set[str] = set()

    def handler(record: Record) -> None:
        value = record.value.decode()
        if value in failing and value not in failed:
            failed.add(value)
            raise ValueError(f"{value} fails once")
        seen[record.key.decode()].append(int(value))

    def member() -> GovernedConsumer:
        return tiered_consumer(
            catalog,
            bootstrap,
            topic_name,
            group,
            overrides=fast(group_protocol),
            group_protocol=group_protocol,
        )

    with member() as first, member() as second:
        deadline = time.monotonic() + 60  # both hold their lanes before anything is sent
        while not (first.assignment and second.assignment) and time.monotonic() < deadline:
            first.run(handler, timeout=0.3)
            second.run(handler, timeout=0.3)
        produce(catalog, bootstrap, topic_name, values)
        deadline = time.monotonic() + 90
        while sum(map(len, seen.values())) < len(values) and time.monotonic() < deadline:
            first.run(handler, timeout=0.3)
            second.run(handler, timeout=0.3)
        lanes = [sorted(first.assignment), sorted(second.assignment)]
    tier = f"{topic_name}.retry-1"
    assert sorted(lanes) == [
        [(topic_name, 0), (tier, 0)],
        [(topic_name, 1), (tier, 1)],
    ]
    produced: dict[str, list[int]] = defaultdict(list)
    for key, value in values:
        produced[key].append(int(value))
    assert dict(seen) == dict(produced)
    assert failed == failing


CRASH_CHILD = Path(__file__).with_name("crash_tier_consumer.py")


def test_sigkill_between_the_tier_write_and_the_commit_loses_nothing(
    kafka_broker: Broker, provisioned: CatalogFactory, topic_name: str, tmp_path: Path
) -> None:
    """A consumer killed after a failed record reached its tier and before the source
    offset was committed: the restarted consumer handles every record, the failed one
    from the source again and from its tier (at least once, never lost)."""
    catalog = provisioned(tier_contracts(topic_name, partitions=1, delays=("1s",)))
    bootstrap = kafka_broker.bootstrap_servers
    group = f"g-{topic_name}"
    produce(catalog, bootstrap, topic_name, [("k1", "a"), ("k2", "fail"), ("k3", "stall")])
    output = tmp_path / "child.log"
    child = subprocess.Popen(
        [
            sys.executable,
            str(CRASH_CHILD),
            bootstrap,
            str(catalog.path),
            topic_name,
            group,
            str(output),
        ]
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "stalling" not in (
            output.read_text() if output.exists() else ""
        ):
            time.sleep(0.05)
        assert "stalling" in output.read_text(), "the child never reached the stalling record"
        deadline = time.monotonic() + 20  # the tier write is acknowledged in the background
        while not read_all(bootstrap, f"{topic_name}.retry-1") and time.monotonic() < deadline:
            time.sleep(0.1)
        (tiered,) = read_all(bootstrap, f"{topic_name}.retry-1")
        assert tiered.value() == b"fail"
        assert _committed(bootstrap, group, topic_name, 1) == {}  # the crash comes before
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert output.read_text().splitlines() == ["handled a", "stalling"]

    handled: list[tuple[str, str]] = []

    def handler(record: Record) -> None:
        handled.append((record.topic, record.value.decode()))

    with tiered_consumer(catalog, bootstrap, topic_name, group) as consumer:
        run_until(consumer, lambda: (f"{topic_name}.retry-1", "fail") in handled, handler, 60)
    assert [v for t, v in handled if t == topic_name] == ["a", "fail", "stall"]
    assert (f"{topic_name}.retry-1", "fail") in handled


def test_the_asyncio_consumer_keeps_key_order_through_its_tiers(
    kafka_broker: Broker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """An asyncio consumer sends a failed record to its tier, parks its key's later records
    behind it and handles them, in order, when it is due; other keys go on."""
    catalog = provisioned(tier_contracts(topic_name, partitions=1, delays=("1s",), ordering="key"))
    bootstrap = kafka_broker.bootstrap_servers
    produce(catalog, bootstrap, topic_name, [("k", "1"), ("k", "2"), ("o", "x"), ("k", "3")])
    handled: list[str] = []
    failed: set[str] = set()

    async def handler(record: Record) -> None:
        value = record.value.decode()
        if value == "1" and not failed:
            failed.add(value)
            raise ValueError("first one fails")
        handled.append(value)

    async def scenario() -> tuple[int, int]:
        tiered = parked = 0
        async with AsyncGovernedConsumer(
            catalog,
            service="billing",
            group_id=f"g-{topic_name}",
            topics=[topic_name],
            bootstrap_servers=bootstrap,
            retry=RetryPolicy.never(),
            overrides=FAST,
        ) as consumer:
            deadline = time.monotonic() + 30
            while len(handled) < 4 and time.monotonic() < deadline:
                summary = await consumer.run(handler, timeout=0.5)
                tiered += summary.tiered
                parked += summary.parked
        return tiered, parked

    tiered, parked = asyncio.run(scenario())
    assert handled == ["x", "1", "2", "3"]
    assert tiered == 1
    assert parked >= 2  # 2 and 3 waited behind 1


def test_a_consumer_refuses_tiers_it_may_not_write_and_key_order_without_range(
    kafka_broker: Broker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """A service that is not a producer of a retry topic, or key order with another
    assignor, is refused at construction, naming the topic or the key."""
    text = tier_contracts(topic_name, partitions=1, delays=("1s",), ordering="key")
    catalog = provisioned(text)
    bootstrap = kafka_broker.bootstrap_servers
    with pytest.raises(ConfigError, match="needs the range assignor") as refused:
        tiered_consumer(
            catalog,
            bootstrap,
            topic_name,
            f"g-{topic_name}",
            overrides={**FAST, "partition.assignment.strategy": "cooperative-sticky"},
        )
    assert refused.value.key == "partition.assignment.strategy"
    with GovernedConsumer(
        catalog,
        service="billing",
        group_id=f"g-{topic_name}",
        topics=[topic_name],
        bootstrap_servers=bootstrap,
        overrides=FAST,
    ) as consumer:
        assert consumer.config["partition.assignment.strategy"] == "range"
    other = f"{topic_name}.b"
    unwritable = tier_contracts(other, partitions=1, delays=("1s",)).replace(
        'producers = ["billing"]\n    consumers = ["billing"]',
        'producers = ["ops"]\n    consumers = ["billing"]',
    )
    catalog = provisioned(unwritable)
    with pytest.raises(GovernanceViolation, match="not a producer of its retry topic") as denied:
        tiered_consumer(catalog, bootstrap, other, f"g-{other}")
    assert (denied.value.rule, denied.value.topic) == ("retry.rights", f"{other}.retry-1")
