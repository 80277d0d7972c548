"""Hooks on a real broker: failing hooks cost nothing, and events carry what they promise."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from conftest import CatalogFactory
from governed_kafka import CommitStrategy, GovernedConsumer, GovernedProducer, Record
from governed_kafka.hooks import (
    CommitDetails,
    ConsumeDetails,
    DeliveryDetails,
    Hook,
    ProcessDetails,
    RebalanceDetails,
    SendDetails,
)
from governed_kafka.testing import LocalBroker
from kafka_helpers import read_all, values

CONSUMER_OVERRIDES = {"session.timeout.ms": 6000}


def _topic(name: str, *, partitions: int = 1) -> str:
    return f"""
    [[topics]]
    name = "{name}"
    owner = "team-test"
    partitions = {partitions}
    replication_factor = 1
    retention_ms = 3600000
    producers = ["checkout"]
    consumers = ["billing"]
    """


def _committed(bootstrap: str, group: str, topic: str, partitions: int) -> list[int]:
    """The group's committed offsets, read with a raw client."""
    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "log_level": 0})
    try:
        found = reader.committed([TopicPartition(topic, p) for p in range(partitions)], 10)
    finally:
        reader.close()
    return [tp.offset for tp in found]


def _produce(bootstrap: str, catalog: Any, topic: str, count: int) -> None:
    with GovernedProducer(catalog, service="checkout", bootstrap_servers=bootstrap) as producer:
        for i in range(count):
            producer.send_and_wait(topic, f"v{i}", key=f"k{i}")


class _RaisingEverywhere(Hook):
    """A hook whose every method fails, including what it hands back."""

    def on_send(self, details: SendDetails) -> Any:
        raise RuntimeError("on_send bug")

    def on_delivery(self, details: DeliveryDetails) -> None:
        raise RuntimeError("on_delivery bug")

    def on_consume(self, details: ConsumeDetails) -> None:
        raise RuntimeError("on_consume bug")

    def on_process(self, details: ProcessDetails) -> contextlib.AbstractContextManager[None]:
        class Broken(contextlib.AbstractContextManager[None]):
            def __exit__(self, *exc_info: Any) -> None:
                raise RuntimeError("process exit bug")

        return Broken()

    def on_commit(self, details: CommitDetails) -> None:
        raise RuntimeError("on_commit bug")

    def on_rebalance(self, details: RebalanceDetails) -> None:
        raise RuntimeError("on_rebalance bug")


class _ObserverRaises(Hook):
    def on_send(self, details: SendDetails) -> Any:
        def observer(delivery: DeliveryDetails) -> None:
            raise RuntimeError("observer bug")

        return observer


def test_raising_producer_hooks_lose_no_record(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """With hooks failing in on_send, on_delivery and in their delivery observer, every
    record is delivered and its future resolves."""
    catalog = provisioned(_topic(topic_name))
    with GovernedProducer(
        catalog,
        service="checkout",
        bootstrap_servers=kafka_broker.bootstrap_servers,
        hooks=[_RaisingEverywhere(), _ObserverRaises()],
    ) as producer:
        futures = [producer.send(topic_name, f"v{i}", key=b"k") for i in range(20)]
        offsets = [f.result(10).offset for f in futures]
        failures = producer.hook_failures
    assert offsets == list(range(20))
    assert failures == 60  # on_send, on_delivery and the observer, for each of 20 records
    assert values(read_all(kafka_broker.bootstrap_servers, topic_name)) == [
        f"v{i}".encode() for i in range(20)
    ]


def test_raising_consumer_hooks_block_no_commit(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """With hooks failing in on_consume, on_process, on_commit and on_rebalance, every record
    is handled once and its offset committed."""
    catalog = provisioned(_topic(topic_name, partitions=2))
    _produce(kafka_broker.bootstrap_servers, catalog, topic_name, 12)
    group = f"g-{uuid.uuid4().hex[:8]}"
    handled: list[Record] = []
    with GovernedConsumer(
        catalog,
        service="billing",
        group_id=group,
        topics=topic_name,
        bootstrap_servers=kafka_broker.bootstrap_servers,
        commit=CommitStrategy.per_record(),
        hooks=[_RaisingEverywhere()],
        overrides=CONSUMER_OVERRIDES,
    ) as consumer:
        summary = consumer.run(handled.append, max_records=12, timeout=30)
        failures = consumer.hook_failures
    assert summary.records == 12
    assert sorted(r.value for r in handled) == sorted(f"v{i}".encode() for i in range(12))
    assert failures > 12
    committed = _committed(kafka_broker.bootstrap_servers, group, topic_name, 2)
    by_partition = [sum(1 for r in handled if r.partition == p) for p in range(2)]
    assert committed == by_partition


def test_asynchronous_commits_are_reported_when_the_broker_answers(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """A batched (asynchronous) commit reaches on_commit once answered, with its duration."""
    catalog = provisioned(_topic(topic_name))
    _produce(kafka_broker.bootstrap_servers, catalog, topic_name, 6)
    commits: list[CommitDetails] = []

    class Commits(Hook):
        def on_commit(self, details: CommitDetails) -> None:
            commits.append(details)

    with GovernedConsumer(
        catalog,
        service="billing",
        group_id=f"g-{uuid.uuid4().hex[:8]}",
        topics=topic_name,
        bootstrap_servers=kafka_broker.bootstrap_servers,
        commit=CommitStrategy.batched(max_records=3, max_interval_s=60),
        hooks=[Commits()],
        overrides=CONSUMER_OVERRIDES,
    ) as consumer:
        consumer.run(lambda r: None, max_records=6, timeout=30)
        consumer.poll_batch(timeout=1.0)  # serves the last asynchronous answers
    answered = [c for c in commits if not c.synchronous]
    assert answered, commits
    assert all(c.error is None and c.duration_s > 0 for c in answered)
    assert answered[0].offsets == ((topic_name, 0, 3),)
    assert answered[0].client_id == "billing"


def test_consume_details_carry_the_fetched_high_watermark(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """on_consume reports, per partition in the batch, the high watermark the fetch saw."""
    catalog = provisioned(_topic(topic_name))
    _produce(kafka_broker.bootstrap_servers, catalog, topic_name, 10)
    consumed: list[ConsumeDetails] = []

    class Consumes(Hook):
        def on_consume(self, details: ConsumeDetails) -> None:
            consumed.append(details)

    with GovernedConsumer(
        catalog,
        service="billing",
        group_id=f"g-{uuid.uuid4().hex[:8]}",
        topics=topic_name,
        bootstrap_servers=kafka_broker.bootstrap_servers,
        commit=CommitStrategy.manual(),
        hooks=[Consumes()],
        overrides=CONSUMER_OVERRIDES,
    ) as consumer:
        consumer.run(lambda r: None, max_records=10, timeout=30)
    assert sum(c.count for c in consumed) == 10
    last = consumed[-1].lag[0]
    assert (last.topic, last.partition, last.high_watermark) == (topic_name, 0, 10)
    assert consumed[0].client_id == "billing"


def test_a_send_hook_that_wakes_up_is_called_within_64_sends(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """A hook answering wants_send() False is left out of sends until it says True; the
    producer asks again every 64 sends."""
    catalog = provisioned(_topic(topic_name))

    class Waking(Hook):
        def __init__(self) -> None:
            self.awake = False
            self.sent: list[SendDetails] = []

        def wants_send(self) -> bool:
            return self.awake

        def on_send(self, details: SendDetails) -> None:
            self.sent.append(details)

    hook = Waking()
    with GovernedProducer(
        catalog,
        service="checkout",
        bootstrap_servers=kafka_broker.bootstrap_servers,
        hooks=[hook],
        skew=None,
    ) as producer:
        futures = [producer.send(topic_name, b"v", key=b"k") for _ in range(100)]
        hook.awake = True
        futures += [producer.send(topic_name, b"v", key=b"k") for _ in range(100)]
        for future in futures:
            future.result(10)
    # Sends 1-128 went by unobserved (the question was asked at 64 and 128, and at 128
    # the hook woke after send 100); sends 129-200 were observed.
    assert len(hook.sent) == 72
