"""Partition skew and hot keys, watched by a producer sending to a real broker."""

from __future__ import annotations

import random

import pytest

from conftest import CatalogFactory
from governed_kafka import DeliveryError, GovernedProducer
from governed_kafka.hooks import Hook, SkewDetails
from governed_kafka.skew import SkewPolicy
from governed_kafka.testing import LocalBroker
from murmur2 import java_partition

PARTITIONS = 6


def _topic(name: str) -> str:
    return f"""
    [[topics]]
    name = "{name}"
    owner = "team-test"
    partitions = {PARTITIONS}
    replication_factor = 1
    retention_ms = 3600000
    producers = ["checkout"]
    consumers = ["billing"]
    """


class _Alarms(Hook):
    def __init__(self) -> None:
        self.alarms: list[SkewDetails] = []

    def on_skew(self, details: SkewDetails) -> None:
        self.alarms.append(details)


def _send_all(producer: GovernedProducer, topic: str, keys: list[bytes]) -> None:
    futures = [producer.send(topic, b"v", key=key) for key in keys]
    for future in futures:
        future.result(30)


def _skewed_keys(count: int, *, hot_share: float, seed: int = 1) -> list[bytes]:
    rng = random.Random(seed)
    return [
        b"customer-hot" if rng.random() < hot_share else f"customer-{rng.randrange(500)}".encode()
        for _ in range(count)
    ]


def test_a_hot_key_fires_the_skew_hook_naming_it_first(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """With 80% of sends on one key, on_skew fires for that key's partition, key first."""
    catalog = provisioned(_topic(topic_name))
    hook = _Alarms()
    policy = SkewPolicy(sample_every=1, window_samples=500, min_samples=100)
    with GovernedProducer(
        catalog,
        service="checkout",
        bootstrap_servers=kafka_broker.bootstrap_servers,
        hooks=[hook],
        skew=policy,
    ) as producer:
        _send_all(producer, topic_name, _skewed_keys(1000, hot_share=0.8))
    assert len(hook.alarms) == 2  # two full windows of 500 samples
    alarm = hook.alarms[0]
    assert alarm.topic == topic_name
    assert alarm.partition == java_partition(b"customer-hot", PARTITIONS)
    assert alarm.heavy_keys[0][0] == b"customer-hot"
    assert alarm.share >= 0.75
    assert alarm.partitions == PARTITIONS
    assert alarm.window_sends == 500
    assert alarm.threshold == policy.threshold(PARTITIONS)


def test_uniform_keys_fire_no_skew_alarm(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """Keys spread evenly over 1,000 values close several windows without an alarm."""
    catalog = provisioned(_topic(topic_name))
    hook = _Alarms()
    with GovernedProducer(
        catalog,
        service="checkout",
        bootstrap_servers=kafka_broker.bootstrap_servers,
        hooks=[hook],
        skew=SkewPolicy(sample_every=1, window_samples=500, min_samples=100),
    ) as producer:
        _send_all(producer, topic_name, [f"customer-{i % 1000}".encode() for i in range(2000)])
        report = producer.skew().topic(topic_name)
    assert hook.alarms == []
    assert not report.skewed
    assert report.share < report.threshold


def test_sampling_one_send_in_eight_still_finds_the_hot_key(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """At one sample in eight, a key with 30% of 8,000 sends is still the top of the alarm."""
    catalog = provisioned(_topic(topic_name))
    hook = _Alarms()
    with GovernedProducer(
        catalog,
        service="checkout",
        bootstrap_servers=kafka_broker.bootstrap_servers,
        hooks=[hook],
        skew=SkewPolicy(sample_every=8, window_samples=500, min_samples=100),
    ) as producer:
        _send_all(producer, topic_name, _skewed_keys(8000, hot_share=0.3, seed=2))
    assert hook.alarms
    assert hook.alarms[0].sample_every == 8
    assert hook.alarms[0].heavy_keys[0][0] == b"customer-hot"


def test_the_skew_report_shows_where_sampled_sends_landed(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """producer.skew() counts every sampled delivery by its partition, hot key first."""
    catalog = provisioned(_topic(topic_name))
    keys = _skewed_keys(400, hot_share=0.5, seed=3)
    with GovernedProducer(
        catalog,
        service="checkout",
        bootstrap_servers=kafka_broker.bootstrap_servers,
        skew=SkewPolicy(sample_every=1, window_samples=1000, min_samples=100),
    ) as producer:
        _send_all(producer, topic_name, keys)
        report = producer.skew()
    view = report.topic(topic_name)
    expected: dict[int, int] = {}
    for key in keys:
        partition = java_partition(key, PARTITIONS)
        expected[partition] = expected.get(partition, 0) + 1
    assert view.samples == 400
    assert dict(view.partition_counts) == expected
    assert view.hottest_partition == java_partition(b"customer-hot", PARTITIONS)
    assert view.heavy_keys[0].key == b"customer-hot"
    assert view.skewed
    assert report.skewed == (view,)


def test_default_sampling_counts_one_send_in_sixty_four(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """With the default policy, 1,280 sends put 20 samples in the report."""
    catalog = provisioned(_topic(topic_name))
    with GovernedProducer(
        catalog, service="checkout", bootstrap_servers=kafka_broker.bootstrap_servers
    ) as producer:
        _send_all(producer, topic_name, [f"k{i}".encode() for i in range(1280)])
        report = producer.skew()
    assert report.policy == SkewPolicy()
    assert SkewPolicy().sample_every == 64
    assert report.topic(topic_name).samples == 20


def test_skew_none_turns_the_watch_off(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """With skew=None nothing is sampled and the report is empty."""
    catalog = provisioned(_topic(topic_name))
    with GovernedProducer(
        catalog,
        service="checkout",
        bootstrap_servers=kafka_broker.bootstrap_servers,
        skew=None,
    ) as producer:
        _send_all(producer, topic_name, [b"hot"] * 200)
        report = producer.skew()
    assert report.policy is None
    assert len(report) == 0


def test_a_raising_skew_hook_loses_no_record(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """An on_skew hook that raises is contained: every record is still delivered."""
    catalog = provisioned(_topic(topic_name))

    class Broken(Hook):
        def on_skew(self, details: SkewDetails) -> None:
            raise RuntimeError("skew hook bug")

    with GovernedProducer(
        catalog,
        service="checkout",
        bootstrap_servers=kafka_broker.bootstrap_servers,
        hooks=[Broken()],
        skew=SkewPolicy(sample_every=1, window_samples=100, min_samples=100),
    ) as producer:
        futures = [producer.send(topic_name, b"v", key=b"hot") for _ in range(300)]
        delivered = [f.result(30) for f in futures]
        failures = producer.hook_failures
    assert len(delivered) == 300
    assert failures == 3


def test_a_refused_send_does_not_hold_its_window_open(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """A sampled record refused before it was queued settles its window, which is judged."""
    catalog = provisioned(_topic(topic_name))
    hook = _Alarms()
    with GovernedProducer(
        catalog,
        service="checkout",
        bootstrap_servers=kafka_broker.bootstrap_servers,
        hooks=[hook],
        overrides={"message.max.bytes": 10_000},
        skew=SkewPolicy(sample_every=1, window_samples=100, min_samples=50),
    ) as producer:
        futures = [producer.send(topic_name, b"v", key=b"hot") for _ in range(99)]
        with pytest.raises(DeliveryError):
            producer.send(topic_name, b"x" * 20_000, key=b"hot")
        for future in futures:
            future.result(30)
    assert len(hook.alarms) == 1
    assert hook.alarms[0].window_sends == 99
