"""pytest plugin: a real broker for the whole test session.

Registered through the ``pytest11`` entry point, so installing governed_kafka is
enough. Nothing starts unless a test asks for ``kafka_broker``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ._broker import LocalBroker


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
