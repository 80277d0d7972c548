"""Shared fixtures: the real brokers come from governed_kafka's own pytest plugin.

``kafka_broker`` is parametrized over both brokers: every test that takes it runs on
the embedded Tansu broker (the default tier) and on the session's three-node Apache
Kafka cluster (the ``apache_kafka`` tier, ``python -m pytest -m apache_kafka -n 1``). Tests
that need what only one of them has take ``tansu_broker`` or ``kafka_cluster``.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from governed_kafka import Catalog
from governed_kafka.testing import KafkaCluster, LocalBroker
from kafka_helpers import create_topics, unique_topic, write_catalog

pytest_plugins = ["pytester"]

CatalogFactory = Callable[..., Catalog]

#: Either broker; both offer ``bootstrap_servers`` and ``create_topic()``.
Broker = LocalBroker | KafkaCluster

#: Why the Apache Kafka tier refuses to run on several pytest-xdist workers.
ONE_WORKER = (
    "the Apache Kafka tier shares one three-node cluster per session; on {workers} "
    "pytest-xdist workers each would start its own (three JVMs each, on this machine): "
    "run it on one worker, python -m pytest -m apache_kafka -n 1"
)


@pytest.fixture(scope="session")
def tansu_broker() -> Iterator[LocalBroker]:
    """The session's embedded broker, for tests of what only it has (pause, restart)."""
    with LocalBroker() as broker:
        yield broker


@pytest.fixture(
    scope="session",
    params=[
        pytest.param("tansu", id="tansu"),
        pytest.param("apache-kafka", id="apache-kafka", marks=pytest.mark.apache_kafka),
    ],
)
def kafka_broker(request: pytest.FixtureRequest) -> Broker:
    """The embedded broker, or the session's Apache Kafka cluster: the test runs on both."""
    if request.param == "tansu":
        broker: Broker = request.getfixturevalue("tansu_broker")
    else:
        broker = request.getfixturevalue("kafka_cluster")
    return broker


@pytest.fixture(
    params=[
        pytest.param("classic", id="classic"),
        pytest.param("consumer", id="kip848", marks=pytest.mark.apache_kafka),
    ]
)
def group_protocol(request: pytest.FixtureRequest) -> str:
    """A consumer group protocol: classic, and on Apache Kafka also KIP-848's ``consumer``.

    The embedded broker speaks only the classic protocol: its pairing with ``consumer`` is
    never generated (deselected at collection).
    """
    protocol: str = request.param
    return protocol


def on_apache_kafka(broker: Broker) -> bool:
    """Whether ``broker`` is the Apache Kafka cluster (replication, CreatePartitions ...)."""
    return isinstance(broker, KafkaCluster)


def _impossible(item: pytest.Item) -> bool:
    params = getattr(item, "callspec", None)
    chosen = params.params if params is not None else {}
    return chosen.get("kafka_broker") == "tansu" and chosen.get("group_protocol") == "consumer"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Drop pairings no broker can run."""
    impossible = [item for item in items if _impossible(item)]
    if impossible:
        config.hook.pytest_deselected(items=impossible)
        items[:] = [item for item in items if not _impossible(item)]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Fail an Apache Kafka test run on several xdist workers before any cluster starts.

    Each worker is a pytest session of its own, with its own session-scoped cluster:
    four workers would start twelve JVMs on two cores, and nodes then miss their startup
    deadline. (Grouping the tier onto one worker with ``xdist_group`` and ``--dist
    loadgroup`` silently stopped grouping on pytest 9.2: pytest-xdist#1386.)
    """
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1 and item.get_closest_marker("apache_kafka") is not None:
        pytest.fail(ONE_WORKER.format(workers=workers), pytrace=False)


@pytest.fixture
def topic_name() -> str:
    """A fresh topic name for this test."""
    return unique_topic()


@pytest.fixture
def provisioned(kafka_broker: Broker, tmp_path: Path) -> CatalogFactory:
    """Write a contracts file, create its topics on the broker, and return the catalog.

    Call with the TOML text of the ``[[topics]]`` tables; a permissive local policy is
    prepended.
    """

    def make(topics_toml: str, *, create: bool = True) -> Catalog:
        policy = """
            [policy]
            min_replication_factor = 1
            min_insync_replicas = 1
            """
        path = write_catalog(tmp_path, textwrap.dedent(policy) + textwrap.dedent(topics_toml))
        catalog = Catalog.load(path)
        if create:
            create_topics(
                kafka_broker.bootstrap_servers,
                [(t.name, t.partitions, t.topic_configs()) for t in catalog],
            )
        return catalog

    return make


Report = Callable[[str], None]


@pytest.fixture
def fault_report(request: pytest.FixtureRequest) -> Report:
    """Attach a line to this test's report: shown in the run's summary and the JUnit XML.

    For figures a test observes but must not assert on (a raw client's duplicates).
    """

    def report(line: str) -> None:
        request.node.user_properties.append(("fault_report", line))

    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print every ``fault_report`` line after the run, with the test it came from."""
    lines = [
        f"{report.nodeid}: {value}"
        for reports in terminalreporter.stats.values()
        for report in reports
        if isinstance(report, pytest.TestReport) and report.when == "call"
        for name, value in report.user_properties
        if name == "fault_report"
    ]
    if lines:
        terminalreporter.section("fault reports")
        for line in lines:
            terminalreporter.write_line(line)
