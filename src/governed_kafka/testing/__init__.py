"""Real parts for testing services that use governed_kafka.

- :class:`LocalBroker`: a real Kafka-protocol broker process (Tansu) on a free
  loopback port, started and stopped by your tests.
- The pytest plugin (loaded automatically once governed_kafka is installed) gives a
  session-scoped ``kafka_broker`` fixture.
"""

from ._broker import (
    BINARY_ENV,
    BrokerNotFoundError,
    BrokerStartError,
    LocalBroker,
    find_broker_binary,
)

__all__ = [
    "BINARY_ENV",
    "BrokerNotFoundError",
    "BrokerStartError",
    "LocalBroker",
    "find_broker_binary",
]
