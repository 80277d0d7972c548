"""Real parts for testing services that use governed_kafka.

- :class:`LocalBroker`: a real Kafka-protocol broker process (Tansu) on a free
  loopback port, started and stopped by your tests.
- :class:`FaultProxy`: a loopback TCP proxy in front of a broker that drops
  responses, adds latency, stalls or refuses connections on command
  (``LocalBroker(proxy=FaultProxy(seed=7))``).
- The pytest plugin (loaded automatically once governed_kafka is installed) gives a
  session-scoped ``kafka_broker`` fixture and a per-test ``proxied_kafka_broker``.
"""

from ._broker import (
    BINARY_ENV,
    BrokerNotFoundError,
    BrokerStartError,
    LocalBroker,
    find_broker_binary,
)
from ._proxy import ApiKey, FaultProxy, FaultStats

__all__ = [
    "BINARY_ENV",
    "ApiKey",
    "BrokerNotFoundError",
    "BrokerStartError",
    "FaultProxy",
    "FaultStats",
    "LocalBroker",
    "find_broker_binary",
]
