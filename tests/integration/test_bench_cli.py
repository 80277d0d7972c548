"""``governed-kafka bench`` on the embedded broker: every profile and the raw row, every figure."""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib.image
import pytest
from click.testing import CliRunner

from governed_kafka import profiles
from governed_kafka.cli import main
from governed_kafka.cli._bench_run import RAW

FIGURES = {
    "produce_msgs_per_s",
    "produce_mb_per_s",
    "delivery_p50_ms",
    "delivery_p95_ms",
    "delivery_p99_ms",
    "e2e_p50_ms",
    "e2e_p99_ms",
    "consume_msgs_per_s",
}


def test_bench_writes_every_profile_and_the_raw_baseline(tmp_path: Path) -> None:
    """bench without servers starts a broker and reports each profile plus raw, all figures set."""
    out, png = tmp_path / "out.json", tmp_path / "bench.png"
    result = CliRunner().invoke(
        main,
        [
            "bench",
            "--messages",
            "2000",
            "--repeats",
            "2",
            "--latency-messages",
            "200",
            "--latency-rate",
            "1000",
            "--json",
            str(out),
            "--plot",
            str(png),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "started the embedded broker" in result.output
    report = json.loads(out.read_text())
    names = [row["name"] for row in report["rows"]]
    assert names == [*profiles.PROFILES, RAW]
    for row in report["rows"]:
        assert set(row) == FIGURES | {"name"}
        for figure in FIGURES:
            value = row[figure]
            assert len(value["runs"]) == 2
            assert value["min"] <= value["median"] <= value["max"]
            assert not math.isnan(value["median"]), (row["name"], figure)
            assert value["median"] > 0, (row["name"], figure)
    assert report["settings"]["messages"] == 2000
    assert report["environment"]["cpus"] >= 1
    image = matplotlib.image.imread(png)
    assert image.shape[0] > 300
    assert image.shape[1] > 400


def test_bench_avro_encodes_and_decodes_through_the_contract(tmp_path: Path) -> None:
    """--format avro measures schema-checked Avro records for profiles and raw alike."""
    out = tmp_path / "avro.json"
    result = CliRunner().invoke(
        main,
        [
            "bench",
            "--format",
            "avro",
            "--value-size",
            "300",
            "--profiles",
            "durable,low-latency",
            "--messages",
            "2000",
            "--repeats",
            "1",
            "--latency-messages",
            "200",
            "--latency-rate",
            "1000",
            "--json",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "300 B Avro" in result.output
    report = json.loads(out.read_text())
    assert report["settings"]["value_format"] == "avro"
    assert [row["name"] for row in report["rows"]] == ["durable", "low-latency", RAW]
    for row in report["rows"]:
        for figure in FIGURES:
            assert row[figure]["median"] > 0, (row["name"], figure)


@pytest.mark.apache_kafka
def test_bench_on_a_replicated_apache_kafka_cluster_it_starts_itself(tmp_path: Path) -> None:
    """--apache-kafka 3 starts three Kafka nodes, measures there on RF 3 / min ISR 2 topics,
    and stops them."""
    out = tmp_path / "out.json"
    result = CliRunner().invoke(
        main,
        [
            "bench",
            "--apache-kafka",
            "3",
            "--profiles",
            "durable",
            "--messages",
            "1000",
            "--repeats",
            "1",
            "--latency-messages",
            "100",
            "--json",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "started Apache Kafka" in result.output
    report = json.loads(out.read_text())
    assert [row["name"] for row in report["rows"]] == ["durable", RAW]
    assert (
        report["settings"]["replication_factor"],
        report["settings"]["min_insync_replicas"],
    ) == (
        3,
        2,
    )
    assert "3 node(s)" in report["broker"]
    assert all(row["produce_msgs_per_s"]["median"] > 0 for row in report["rows"])


def test_bench_takes_servers_or_a_cluster_to_start_not_both() -> None:
    """--bootstrap-servers with --apache-kafka is refused in one line."""
    result = CliRunner().invoke(
        main, ["bench", "--bootstrap-servers", "127.0.0.1:1", "--apache-kafka", "3"]
    )
    assert result.exit_code != 0
    assert "not both" in result.output
