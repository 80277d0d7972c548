"""``governed-kafka lag`` reports any group's committed offsets against the log end."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from test_consumer import FAST, _contracts

from conftest import Broker, CatalogFactory, on_apache_kafka
from governed_kafka import CommitStrategy, GovernedConsumer, GovernedProducer, profiles
from governed_kafka.cli import main
from governed_kafka.testing import LocalBroker


def test_lag_command_reports_committed_and_log_end(
    kafka_broker: Broker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """For a group that committed 7 of 10 records, lag shows 10, 7 and a lag of 3."""
    catalog = provisioned(_contracts(topic_name, partitions=1))
    bootstrap = kafka_broker.bootstrap_servers
    group = f"lag-{topic_name}"
    with GovernedProducer(
        catalog, service="checkout", bootstrap_servers=bootstrap, profile=profiles.DURABLE
    ) as producer:
        if on_apache_kafka(kafka_broker):
            # Real ListOffsets: the records go in multi-record batches.
            futures = [producer.send(topic_name, str(i).encode(), key=b"k") for i in range(10)]
            assert producer.flush(10) == 0
            assert len({f.result().offset for f in futures}) == 10
        else:
            for i in range(10):  # one record per request (see the broker facts in DESIGN.md)
                producer.send_and_wait(topic_name, str(i).encode(), key=b"k")
    with GovernedConsumer(
        catalog,
        service="billing",
        group_id=group,
        topics=[topic_name],
        bootstrap_servers=bootstrap,
        commit=CommitStrategy.manual(),
        overrides=FAST,
    ) as consumer:
        records = []
        while len(records) < 10:
            records += consumer.poll_batch(max_records=10, timeout=1)
        for record in records[:7]:
            consumer.mark_processed(record)
    runner = CliRunner()
    result = runner.invoke(
        main, ["lag", "--group", group, "--bootstrap-servers", bootstrap, "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["partitions"] == [
        {
            "topic": topic_name,
            "partition": 0,
            "high_watermark": 10,
            "committed": 7,
            "processed": None,
            "commit_lag": 3,
            "processing_lag": None,
            "replay_exposure": None,
        }
    ]
    table = runner.invoke(main, ["lag", "--group", group, "--bootstrap-servers", bootstrap])
    assert table.exit_code == 0
    assert topic_name in table.output
    assert "total commit lag: 3 records" in table.output


def test_lag_of_an_unknown_group_says_so() -> None:
    """A group with no committed offsets is reported as such, not as an error."""
    # Uses its own broker so that no other test's groups are visible.
    with LocalBroker() as broker:
        result = CliRunner().invoke(
            main, ["lag", "--group", "nobody", "--bootstrap-servers", broker.bootstrap_servers]
        )
    assert result.exit_code == 0
    assert "has committed no offsets" in result.output


def test_lag_against_an_unreachable_cluster_is_a_clean_error() -> None:
    """An unreachable cluster gives a one-line error and exit code 1, not a traceback."""
    result = CliRunner().invoke(
        main,
        ["lag", "--group", "g", "--bootstrap-servers", "127.0.0.1:1", "--timeout", "2"],
    )
    assert result.exit_code == 1
    assert "error:" in result.output
    assert "Traceback" not in result.output


def test_lag_takes_the_cluster_from_a_config_file(
    kafka_broker: LocalBroker, tmp_path: Path
) -> None:
    """lag reads bootstrap.servers (and any client setting) from --config-file."""
    properties = tmp_path / "client.properties"
    properties.write_text(
        f"bootstrap.servers={kafka_broker.bootstrap_servers}\nsocket.timeout.ms=5000\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        main, ["lag", "--group", "nobody-here", "--config-file", str(properties), "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["partitions"] == []
