"""Benchmark settings and the plot, without a broker."""

from __future__ import annotations

import importlib.metadata
import platform
import time
from pathlib import Path

import confluent_kafka
import matplotlib.image
import pytest

from governed_kafka import LocalSchemaRegistry, profiles
from governed_kafka._stats import summarize
from governed_kafka.avro import AvroReader, parse_schema
from governed_kafka.cli._bench_run import (
    AVRO_SCHEMA,
    RAW,
    BenchReport,
    BenchRow,
    BenchSettings,
    _catalog,
    _Values,
    environment,
    plot,
)


def _row(name: str, rate: float, p99: float) -> BenchRow:
    figure = summarize([1.0, 2.0, 3.0])
    return BenchRow(
        name=name,
        produce_msgs_per_s=summarize([rate * 0.9, rate, rate * 1.1]),
        produce_mb_per_s=figure,
        delivery_p50_ms=figure,
        delivery_p95_ms=figure,
        delivery_p99_ms=summarize([p99 * 0.9, p99, p99 * 1.2]),
        e2e_p50_ms=figure,
        e2e_p99_ms=figure,
        consume_msgs_per_s=figure,
    )


def test_plot_labels_every_row(tmp_path: Path) -> None:
    """The plot draws one labelled point per profile and the raw row, and saves a PNG."""
    rows = tuple(
        _row(name, 1e5 * (i + 1), 5.0 * (i + 1)) for i, name in enumerate(profiles.PROFILES)
    )
    report = BenchReport(
        settings=BenchSettings(), rows=(*rows, _row(RAW, 5e5, 4.0)), environment={}, broker="x"
    )
    path = tmp_path / "plot.png"
    labels = plot(report, str(path))
    assert labels == [*profiles.PROFILES, RAW]
    assert matplotlib.image.imread(path).shape[2] in (3, 4)


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("value_size", 4, "value_size"),
        ("messages", 0, "messages"),
        ("repeats", 0, "repeats"),
        ("latency_rate", 0, "latency_rate"),
        ("value_format", "json", "value_format"),
    ],
)
def test_settings_refuse_nonsense(field: str, value: object, fragment: str) -> None:
    """Settings that cannot be measured are refused with the field named."""
    with pytest.raises(ValueError, match=fragment):
        BenchSettings(**{field: value})  # type: ignore[arg-type]


def test_environment_names_the_installed_client_versions() -> None:
    found = environment()
    assert found["confluent-kafka"] == importlib.metadata.version("confluent-kafka")
    assert found["librdkafka"] == confluent_kafka.libversion()[0]
    assert found["python"] == platform.python_version()


@pytest.mark.parametrize("size", [60, 200, 1024, 5000])
def test_avro_values_are_wire_format_of_the_requested_size(tmp_path: Path, size: int) -> None:
    """The raw row's Avro bytes are what the governed reader decodes, at the asked size."""
    settings = BenchSettings(value_format="avro", value_size=size, partitions=3)
    values = _Values(settings, tmp_path)
    sent = time.monotonic_ns()  # what the benchmark sends: a send time on this clock
    value = values.value(sent)
    assert values.encode is not None
    assert values.decode is not None
    data = values.encode(value)
    assert len(data) == size
    assert values.sent_ns(values.decode(data)) == sent
    assert values.schema is not None
    registry = LocalSchemaRegistry.from_catalog(_catalog("bench.t", settings, values.schema))
    reader = AvroReader(registry, topic="bench.t", reader_schema=parse_schema(AVRO_SCHEMA))
    assert reader.decode(data) == value


def test_byte_values_carry_their_send_time(tmp_path: Path) -> None:
    values = _Values(BenchSettings(value_size=100), tmp_path)
    value = values.value(42)
    assert isinstance(value, bytes)
    assert len(value) == 100
    assert values.sent_ns(value) == 42
    assert values.encode is None
    assert values.schema is None


def test_settings_never_show_secret_overrides() -> None:
    """Bench settings redact secret overrides in repr and in the report's JSON."""
    import json

    settings = BenchSettings(
        producer_overrides=(("sasl.password", "hunter2"), ("linger.ms", 5)),
        consumer_overrides=(("sasl.oauthbearer.client.secret", "hunter3"),),
    )
    assert "hunter" not in repr(settings)
    report = BenchReport(settings=settings, rows=(), environment={}, broker="b")
    shown = json.dumps(report.to_dict())
    assert "hunter" not in shown
    assert '"linger.ms": 5' in shown
    assert dict(settings.producer_overrides)["sasl.password"] == "hunter2"  # still usable
