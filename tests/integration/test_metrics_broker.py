"""OpenTelemetry metrics from real producers and consumers, read by the SDK's in-memory reader."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from conftest import CatalogFactory
from governed_kafka import (
    CommitStrategy,
    DeliveryError,
    GovernedConsumer,
    GovernedProducer,
    Record,
    RetryPolicy,
)
from governed_kafka.hooks import Hook, StatisticsDetails
from governed_kafka.metrics import OpenTelemetryMetrics
from governed_kafka.skew import SkewPolicy
from governed_kafka.testing import LocalBroker
from kafka_helpers import create_topics

CONSUMER_OVERRIDES = {"session.timeout.ms": 6000}


def _topic(name: str, *, partitions: int = 1, dead_letters: bool = False) -> str:
    body = f"""
    [[topics]]
    name = "{name}"
    owner = "team-test"
    partitions = {partitions}
    replication_factor = 1
    retention_ms = 3600000
    producers = ["checkout"]
    consumers = ["billing"]
    """
    if dead_letters:
        body += f"""
    dead_letter_topic = "{name}.dlq"

    [[topics]]
    name = "{name}.dlq"
    owner = "team-test"
    partitions = 1
    replication_factor = 1
    retention_ms = 3600000
    key = "optional"
    producers = ["billing"]
    consumers = ["ops"]
    """
    return body


@pytest.fixture
def reader() -> InMemoryMetricReader:
    """An in-memory reader of a fresh SDK meter provider (see ``metrics``)."""
    return InMemoryMetricReader()


@pytest.fixture
def metrics(reader: InMemoryMetricReader) -> OpenTelemetryMetrics:
    """A metrics hook recording every duration, read by ``reader``."""
    return OpenTelemetryMetrics(
        meter_provider=MeterProvider(metric_readers=[reader]), duration_sample_every=1
    )


def _points(reader: InMemoryMetricReader, name: str) -> list[Any]:
    data = reader.get_metrics_data()
    if data is None:
        return []
    return [
        point
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == name
        for point in metric.data.data_points
    ]


def _where(points: list[Any], **attributes: object) -> list[Any]:
    wanted = {k.replace("__", "."): v for k, v in attributes.items()}
    return [p for p in points if all(p.attributes.get(k) == v for k, v in wanted.items())]


def _produce(bootstrap: str, catalog: Any, topic: str, count: int) -> None:
    """Send ``count`` records one request at a time (see the broker facts on lag)."""
    with GovernedProducer(catalog, service="checkout", bootstrap_servers=bootstrap) as producer:
        for i in range(count):
            producer.send_and_wait(topic, f"v{i}", key=f"k{i}")


def _consumer(bootstrap: str, catalog: Any, topic: str, hook: object, **options: Any) -> Any:
    overrides = {**CONSUMER_OVERRIDES, **options.pop("overrides", {})}
    return GovernedConsumer(
        catalog,
        service="billing",
        group_id=options.pop("group_id", f"g-{uuid.uuid4().hex[:8]}"),
        topics=topic,
        bootstrap_servers=bootstrap,
        hooks=[hook],
        overrides=overrides,
        **options,
    )


def test_sent_records_are_counted_per_partition(
    kafka_broker: LocalBroker,
    provisioned: CatalogFactory,
    topic_name: str,
    metrics: OpenTelemetryMetrics,
    reader: InMemoryMetricReader,
) -> None:
    """messaging.client.sent.messages counts each delivered record under its partition."""
    catalog = provisioned(_topic(topic_name, partitions=3))
    with GovernedProducer(
        catalog,
        service="checkout",
        bootstrap_servers=kafka_broker.bootstrap_servers,
        hooks=[metrics],
    ) as producer:
        futures = [producer.send(topic_name, b"v", key=f"k{i}") for i in range(30)]
        landed = Counter(str(f.result(10).partition) for f in futures)
    points = _where(_points(reader, "messaging.client.sent.messages"), messaging__system="kafka")
    counted = {p.attributes["messaging.destination.partition.id"]: p.value for p in points}
    assert counted == dict(landed)
    assert all(p.attributes["messaging.destination.name"] == topic_name for p in points)
    assert all("error.type" not in p.attributes for p in points)


def test_send_to_delivery_latency_is_recorded_per_record(
    kafka_broker: LocalBroker,
    provisioned: CatalogFactory,
    topic_name: str,
    metrics: OpenTelemetryMetrics,
    reader: InMemoryMetricReader,
) -> None:
    """With duration_sample_every=1 the send latency histogram holds one value per record."""
    catalog = provisioned(_topic(topic_name))
    with GovernedProducer(
        catalog,
        service="checkout",
        bootstrap_servers=kafka_broker.bootstrap_servers,
        hooks=[metrics],
    ) as producer:
        for i in range(20):
            producer.send_and_wait(topic_name, b"v", key=f"k{i}")
    [point] = _where(
        _points(reader, "messaging.client.operation.duration"), messaging__operation__name="send"
    )
    assert point.count == 20
    assert 0 < point.sum < 20 * 10  # seconds


def test_send_latency_is_sampled_one_record_in_n(
    kafka_broker: LocalBroker,
    provisioned: CatalogFactory,
    topic_name: str,
    reader: InMemoryMetricReader,
) -> None:
    """With duration_sample_every=16, 40 deliveries record 3 latencies but count 40 records."""
    catalog = provisioned(_topic(topic_name))
    hook = OpenTelemetryMetrics(
        meter_provider=MeterProvider(metric_readers=[reader]), duration_sample_every=16
    )
    with GovernedProducer(
        catalog,
        service="checkout",
        bootstrap_servers=kafka_broker.bootstrap_servers,
        hooks=[hook],
    ) as producer:
        for future in [producer.send(topic_name, b"v", key=b"k") for _ in range(40)]:
            future.result(10)
    [latency] = _points(reader, "messaging.client.operation.duration")
    [sent] = _points(reader, "messaging.client.sent.messages")
    assert latency.count == 3  # deliveries 1, 17 and 33
    assert sent.value == 40


def test_delivery_errors_are_counted_by_error_code(
    provisioned: CatalogFactory,
    topic_name: str,
    metrics: OpenTelemetryMetrics,
    reader: InMemoryMetricReader,
) -> None:
    """A record that times out is counted as sent with error.type = its error code."""
    with LocalBroker() as broker:
        catalog = provisioned(_topic(topic_name), create=False)
        create_topics(broker.bootstrap_servers, [(topic_name, 1, {})])
        producer = GovernedProducer(
            catalog,
            service="checkout",
            bootstrap_servers=broker.bootstrap_servers,
            hooks=[metrics],
            overrides={"delivery.timeout.ms": 1500},
        )
        producer.send_and_wait(topic_name, b"warm-up", key=b"k")
        broker.pause()
        try:
            error = producer.send(topic_name, b"lost", key=b"k").exception(15)
        finally:
            broker.resume()
        producer.close()
    assert isinstance(error, DeliveryError)
    points = _points(reader, "messaging.client.sent.messages")
    assert {p.attributes.get("error.type"): p.value for p in points} == {
        None: 1,
        "_MSG_TIMED_OUT": 1,
    }


def test_consumed_records_and_handler_time_are_measured(
    kafka_broker: LocalBroker,
    provisioned: CatalogFactory,
    topic_name: str,
    metrics: OpenTelemetryMetrics,
    reader: InMemoryMetricReader,
) -> None:
    """consumed.messages counts the records per partition; process.duration times each one."""
    catalog = provisioned(_topic(topic_name))
    _produce(kafka_broker.bootstrap_servers, catalog, topic_name, 8)
    with _consumer(kafka_broker.bootstrap_servers, catalog, topic_name, metrics) as consumer:
        consumer.run(lambda r: time.sleep(0.01), max_records=8, timeout=30)
    [consumed] = _points(reader, "messaging.client.consumed.messages")
    assert consumed.value == 8
    assert consumed.attributes["messaging.destination.partition.id"] == "0"
    assert consumed.attributes["messaging.consumer.group.name"].startswith("g-")
    [handled] = _points(reader, "messaging.process.duration")
    assert handled.count == 8
    assert handled.sum >= 8 * 0.01


def test_commit_latency_is_recorded(
    kafka_broker: LocalBroker,
    provisioned: CatalogFactory,
    topic_name: str,
    metrics: OpenTelemetryMetrics,
    reader: InMemoryMetricReader,
) -> None:
    """Each per-record commit adds one commit duration to the operation histogram."""
    catalog = provisioned(_topic(topic_name))
    _produce(kafka_broker.bootstrap_servers, catalog, topic_name, 5)
    with _consumer(
        kafka_broker.bootstrap_servers,
        catalog,
        topic_name,
        metrics,
        commit=CommitStrategy.per_record(),
    ) as consumer:
        consumer.run(lambda r: None, max_records=5, timeout=30)
    [commits] = _where(
        _points(reader, "messaging.client.operation.duration"),
        messaging__operation__name="commit",
    )
    assert commits.count == 5
    assert commits.attributes["messaging.operation.type"] == "settle"
    assert commits.sum > 0


def test_lag_is_the_distance_from_the_committed_position_to_the_high_watermark(
    kafka_broker: LocalBroker,
    provisioned: CatalogFactory,
    topic_name: str,
    metrics: OpenTelemetryMetrics,
    reader: InMemoryMetricReader,
) -> None:
    """After 4 of 10 records are processed and committed, the lag gauge reads 6."""
    catalog = provisioned(_topic(topic_name))
    _produce(kafka_broker.bootstrap_servers, catalog, topic_name, 10)
    with _consumer(
        kafka_broker.bootstrap_servers,
        catalog,
        topic_name,
        metrics,
        commit=CommitStrategy.manual(),
    ) as consumer:
        consumer.run(lambda r: None, max_records=4, timeout=30)
        consumer.commit()  # manual: the application commits
        [lag] = _points(reader, "governed_kafka.consumer.lag")
    assert lag.value == 6
    assert lag.attributes["messaging.destination.name"] == topic_name
    assert lag.attributes["messaging.destination.partition.id"] == "0"


def test_revoked_partitions_leave_the_lag_gauge(
    kafka_broker: LocalBroker,
    provisioned: CatalogFactory,
    topic_name: str,
    metrics: OpenTelemetryMetrics,
    reader: InMemoryMetricReader,
) -> None:
    """Once the consumer closes (revoking its partitions), the lag gauge reports nothing."""
    catalog = provisioned(_topic(topic_name))
    _produce(kafka_broker.bootstrap_servers, catalog, topic_name, 3)
    with _consumer(kafka_broker.bootstrap_servers, catalog, topic_name, metrics) as consumer:
        consumer.run(lambda r: None, max_records=3, timeout=30)
        before = _points(reader, "governed_kafka.consumer.lag")
    assert [p.value for p in before] == [0]
    assert _points(reader, "governed_kafka.consumer.lag") == []


def test_librdkafka_statistics_feed_the_lag_gauge(
    kafka_broker: LocalBroker,
    provisioned: CatalogFactory,
    topic_name: str,
    metrics: OpenTelemetryMetrics,
    reader: InMemoryMetricReader,
) -> None:
    """With statistics.interval.ms set, lag is known before this consumer's first commit."""
    catalog = provisioned(_topic(topic_name))
    bootstrap = kafka_broker.bootstrap_servers
    group = f"g-{uuid.uuid4().hex[:8]}"
    _produce(bootstrap, catalog, topic_name, 10)
    with GovernedConsumer(
        catalog,
        service="billing",
        group_id=group,
        topics=topic_name,
        bootstrap_servers=bootstrap,
        overrides=CONSUMER_OVERRIDES,
    ) as first:
        first.run(lambda r: None, max_records=10, timeout=30)  # the group commits 10
    _produce(bootstrap, catalog, topic_name, 5)
    with _consumer(
        bootstrap,
        catalog,
        topic_name,
        metrics,
        group_id=group,
        commit=CommitStrategy.manual(),
        max_in_flight=1,
        overrides={"statistics.interval.ms": 100},
    ) as consumer:
        deadline = time.monotonic() + 20
        while not consumer.poll_batch(max_records=2, timeout=0.5):
            assert time.monotonic() < deadline, "no record arrived"
        assert consumer.paused  # nothing more is consumed: only statistics can move the gauge
        for _ in range(5):
            consumer.poll_batch(timeout=0.2)
        points = _points(reader, "governed_kafka.consumer.lag")
    assert [p.value for p in points] == [5]


def test_producer_statistics_feed_the_queue_gauge(
    kafka_broker: LocalBroker,
    provisioned: CatalogFactory,
    topic_name: str,
    metrics: OpenTelemetryMetrics,
    reader: InMemoryMetricReader,
) -> None:
    """With statistics enabled, the queue gauge reads the last statistics' msg_cnt."""
    catalog = provisioned(_topic(topic_name))
    seen: list[StatisticsDetails] = []

    class Statistics(Hook):
        def on_statistics(self, details: StatisticsDetails) -> None:
            seen.append(details)

    with GovernedProducer(
        catalog,
        service="checkout",
        bootstrap_servers=kafka_broker.bootstrap_servers,
        hooks=[metrics, Statistics()],
        overrides={"statistics.interval.ms": 100},
    ) as producer:
        for _ in range(50):
            producer.send(topic_name, b"v", key=b"k")
        deadline = time.monotonic() + 10
        while len(seen) < 3:
            assert time.monotonic() < deadline, "no statistics arrived"
            time.sleep(0.1)
    [queue] = _points(reader, "governed_kafka.producer.queue.messages")
    assert queue.attributes["messaging.client.id"] == "checkout"
    assert queue.value == seen[-1].stats["msg_cnt"]


def test_retries_and_dead_letters_are_counted(
    kafka_broker: LocalBroker,
    provisioned: CatalogFactory,
    topic_name: str,
    metrics: OpenTelemetryMetrics,
    reader: InMemoryMetricReader,
) -> None:
    """A handler that always fails costs one retry and one dead letter per record."""
    catalog = provisioned(_topic(topic_name, dead_letters=True))
    _produce(kafka_broker.bootstrap_servers, catalog, topic_name, 3)

    def failing(record: Record) -> None:
        raise ValueError("cannot handle")

    with _consumer(
        kafka_broker.bootstrap_servers,
        catalog,
        topic_name,
        metrics,
        retry=RetryPolicy(attempts=2, initial_backoff_s=0, jitter_s=0),
    ) as consumer:
        consumer.run(failing, max_records=3, timeout=30)
    [retries] = _points(reader, "governed_kafka.consumer.retries")
    [letters] = _points(reader, "governed_kafka.consumer.dead_letters")
    assert retries.value == 3
    assert letters.value == 3
    assert letters.attributes["governed_kafka.dead_letter_topic"] == f"{topic_name}.dlq"
    assert letters.attributes["error.type"] == "builtins.ValueError"


def test_pauses_are_counted(
    kafka_broker: LocalBroker,
    provisioned: CatalogFactory,
    topic_name: str,
    metrics: OpenTelemetryMetrics,
    reader: InMemoryMetricReader,
) -> None:
    """Going over max_in_flight counts one pause, and working it off one resume."""
    catalog = provisioned(_topic(topic_name))
    _produce(kafka_broker.bootstrap_servers, catalog, topic_name, 6)
    with _consumer(
        kafka_broker.bootstrap_servers,
        catalog,
        topic_name,
        metrics,
        max_in_flight=2,
        commit=CommitStrategy.manual(),
    ) as consumer:
        records: list[Record] = []
        deadline = time.monotonic() + 20
        while len(records) < 3:
            assert time.monotonic() < deadline, "no records arrived"
            records += consumer.poll_batch(max_records=3, timeout=0.5)
        for record in records:
            consumer.mark_processed(record)
    points = _points(reader, "governed_kafka.backpressure.events")
    kinds = {p.attributes["governed_kafka.backpressure.kind"]: p.value for p in points}
    assert kinds == {"pause": 1, "resume": 1}


def test_skew_alarms_are_counted_per_partition(
    kafka_broker: LocalBroker,
    provisioned: CatalogFactory,
    topic_name: str,
    metrics: OpenTelemetryMetrics,
    reader: InMemoryMetricReader,
) -> None:
    """A window dominated by one key's partition counts one skew alarm for it."""
    catalog = provisioned(_topic(topic_name, partitions=4))
    with GovernedProducer(
        catalog,
        service="checkout",
        bootstrap_servers=kafka_broker.bootstrap_servers,
        hooks=[metrics],
        skew=SkewPolicy(sample_every=1, window_samples=100, min_samples=100),
    ) as producer:
        futures = [producer.send(topic_name, b"v", key=b"hot") for _ in range(100)]
        partition = futures[0].result(10).partition
        for future in futures:
            future.result(10)
    [alarms] = _points(reader, "governed_kafka.producer.skew.alarms")
    assert alarms.value == 1
    assert alarms.attributes["messaging.destination.partition.id"] == str(partition)
