"""pytest plugin: a real broker for the whole test session, and one behind a fault proxy.

Registered through the ``pytest11`` entry point, so installing governed_kafka is
enough. Nothing starts unless a test asks for ``kafka_broker`` or
``proxied_kafka_broker``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ._broker import LocalBroker
from ._proxy import FaultProxy


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
