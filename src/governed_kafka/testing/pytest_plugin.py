"""pytest plugin: real brokers for the test session, and one behind a fault proxy.

Registered through the ``pytest11`` entry point, so installing governed_kafka is
enough. Nothing starts unless a test asks for ``kafka_broker``,
``proxied_kafka_broker`` or ``kafka_cluster``.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator

import pytest

from ._broker import LocalBroker
from ._cluster import KafkaCluster
from ._proxy import FaultProxy

#: The session's KafkaCluster, once a test asked for it.
_CLUSTER = pytest.StashKey[KafkaCluster]()


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``apache_kafka`` marker."""
    config.addinivalue_line(
        "markers",
        "apache_kafka: runs against real Apache Kafka (the kafka_cluster fixture: "
        "Java 17+, and Maven on the first run to fetch the broker's jars)",
    )


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[LocalBroker]:
    """A running :class:`~governed_kafka.testing.LocalBroker`, shared by the session.

    Its ``bootstrap_servers`` is ready for clients; it is stopped after the last test,
    failed or not.
    """
    broker = LocalBroker()
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def proxied_kafka_broker() -> Iterator[LocalBroker]:
    """A fresh :class:`~governed_kafka.testing.LocalBroker` of this test's own, behind a
    :class:`~governed_kafka.testing.FaultProxy` (``broker.proxy``, seed 0).

    Every client connection goes through the proxy; the test may also pause, kill or
    restart the broker. Both are stopped after the test.
    """
    broker = LocalBroker(proxy=FaultProxy(seed=0))
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_cluster(request: pytest.FixtureRequest) -> Iterator[KafkaCluster]:
    """A running three-node :class:`~governed_kafka.testing.KafkaCluster`, shared by the
    session; its nodes are in racks ``a``, ``b`` and ``c`` (``cluster.racks``), so
    consumers with ``client_rack`` fetch from the replica in their rack.

    A test may kill, stop or pause nodes: after each test every node is brought back
    and the cluster is ready again before the next one starts. Isolate tests by topic
    and group names. Without Java (or, on the first run, Maven) the fixture raises
    :class:`~governed_kafka.testing.KafkaClusterUnavailable`, which fails the test
    instead of skipping it.
    """
    cluster = KafkaCluster(brokers=3, racks=("a", "b", "c"))
    cluster.start()
    request.config.stash[_CLUSTER] = cluster
    try:
        yield cluster
    finally:
        del request.config.stash[_CLUSTER]
        cluster.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, object, object]:
    """After a test and its fixtures: restart every node of the session cluster it took down."""
    result = yield
    cluster = item.config.stash.get(_CLUSTER, None)
    if cluster is not None:
        cluster.restore()
    return result
