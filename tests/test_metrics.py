"""The metrics hook fed details directly: events no test broker can produce (throttling),
and the parsing of librdkafka's statistics."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from governed_kafka.hooks import (
    StatisticsDetails,
    ThrottleDetails,
    TransactionAbortDetails,
    TransactionCommitDetails,
)
from governed_kafka.metrics import OpenTelemetryMetrics


def _hook() -> tuple[OpenTelemetryMetrics, InMemoryMetricReader]:
    reader = InMemoryMetricReader()
    return OpenTelemetryMetrics(meter_provider=MeterProvider(metric_readers=[reader])), reader


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


def _partition(**fields: object) -> dict[str, object]:
    entry: dict[str, object] = {
        "fetch_state": "active",
        "hi_offset": 100,
        "committed_offset": 40,
        "consumer_lag": 60,
    }
    entry.update(fields)
    return entry


def _consumer_stats(partitions: dict[str, dict[str, object]]) -> StatisticsDetails:
    """Statistics shaped like librdkafka's JSON for a consumer (only the fields read)."""
    return StatisticsDetails(
        client_id="billing",
        role="consumer",
        stats={"type": "consumer", "topics": {"orders": {"partitions": partitions}}},
        group_id="g",
    )


def test_duration_sample_every_must_be_positive() -> None:
    """A sampling rate below one is refused, naming the parameter."""
    with pytest.raises(ValueError, match="duration_sample_every must be >= 1"):
        OpenTelemetryMetrics(duration_sample_every=0)


def test_throttle_time_is_recorded_per_broker() -> None:
    """A broker's throttle report lands in the throttle histogram under its broker id."""
    hook, reader = _hook()
    hook.on_throttle(
        ThrottleDetails(broker="b:9092/3", broker_id=3, throttle_time_s=0.25, client_id="c")
    )
    [point] = _points(reader, "governed_kafka.throttle.duration")
    assert (point.count, point.sum) == (1, 0.25)
    assert point.attributes["governed_kafka.broker.id"] == 3


def test_statistics_set_the_lag_of_each_fetched_partition() -> None:
    """consumer_lag of an active partition becomes its lag gauge value."""
    hook, reader = _hook()
    hook.on_statistics(_consumer_stats({"0": _partition(), "1": _partition(consumer_lag=7)}))
    points = _points(reader, "governed_kafka.consumer.lag")
    lags = {p.attributes["messaging.destination.partition.id"]: p.value for p in points}
    assert lags == {"0": 60, "1": 7}


@pytest.mark.parametrize(
    ("number", "entry"),
    [
        ("-1", _partition()),  # librdkafka's unassigned pseudo-partition
        ("0", _partition(fetch_state="none")),  # not fetched by this consumer
        ("0", _partition(consumer_lag=-1)),  # lag unknown
        ("0", _partition(committed_offset=-1001)),  # nothing committed
    ],
)
def test_statistics_without_a_known_lag_are_ignored(number: str, entry: dict[str, object]) -> None:
    """Partitions librdkafka cannot give a lag for put nothing in the gauge."""
    hook, reader = _hook()
    hook.on_statistics(_consumer_stats({number: entry}))
    assert _points(reader, "governed_kafka.consumer.lag") == []


def test_transactions_are_counted_by_outcome_and_timed() -> None:
    """Commits and aborts count under their outcome (aborts by reason); the transaction's
    duration and the commit's own latency are histograms."""
    hook, reader = _hook()
    common: dict[str, Any] = {"transactional_id": "tx-1", "client_id": "enricher", "group_id": "g"}
    for sequence in (1, 2):
        hook.on_transaction_commit(
            TransactionCommitDetails(
                **common,
                sequence=sequence,
                records=10,
                offsets=(("in", 0, 10),),
                reason="routine",
                duration_s=0.5,
                commit_s=0.04,
            )
        )
    hook.on_transaction_abort(
        TransactionAbortDetails(
            **common,
            sequence=3,
            records=4,
            reason="handler-error",
            duration_s=0.2,
            error=ValueError("x"),
        )
    )
    counts = {
        (
            p.attributes["governed_kafka.transaction.outcome"],
            p.attributes.get("governed_kafka.transaction.reason"),
        ): p.value
        for p in _points(reader, "governed_kafka.producer.transactions")
    }
    assert counts == {("commit", None): 2, ("abort", "handler-error"): 1}
    [commit_latency] = _points(reader, "governed_kafka.producer.transaction.commit.duration")
    assert commit_latency.count == 2
    assert commit_latency.sum == pytest.approx(0.08)
    durations = {
        p.attributes["governed_kafka.transaction.outcome"]: p.count
        for p in _points(reader, "governed_kafka.producer.transaction.duration")
    }
    assert durations == {"commit": 2, "abort": 1}
