"""Shared fixtures: the real broker comes from governed_kafka's own pytest plugin."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from governed_kafka import Catalog
from governed_kafka.testing import LocalBroker
from kafka_helpers import create_topics, unique_topic, write_catalog

pytest_plugins = ["pytester"]

CatalogFactory = Callable[..., Catalog]


@pytest.fixture
def topic_name() -> str:
    """A fresh topic name for this test."""
    return unique_topic()


@pytest.fixture
def provisioned(kafka_broker: LocalBroker, tmp_path: Path) -> CatalogFactory:
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
