"""Real parts for testing services that use governed_kafka.

- :class:`LocalBroker`: a real Kafka-protocol broker process (Tansu) on a free
  loopback port, started and stopped by your tests.
- :class:`KafkaCluster`: real Apache Kafka in KRaft mode, one or several nodes, each
  its own JVM (needs Java 17+, and Maven on the first run to fetch the jars).
- :class:`FaultProxy`: a loopback TCP proxy in front of a broker that drops
  responses, adds latency, stalls or refuses connections on command
  (``LocalBroker(proxy=FaultProxy(seed=7))``).
- The pytest plugin (loaded automatically once governed_kafka is installed) gives a
  session-scoped ``kafka_broker`` fixture, a per-test ``proxied_kafka_broker``, a
  session-scoped three-node ``kafka_cluster`` and the ``apache_kafka`` marker.
"""

from ._broker import (
    BINARY_ENV,
    BrokerNotFoundError,
    BrokerStartError,
    LocalBroker,
    find_broker_binary,
)
from ._cluster import DEFAULT_JVM_OPTIONS, KafkaCluster
from ._kafka_dist import DEFAULT_VERSION, HOME_ENV, KafkaClusterUnavailable
from ._proxy import ApiKey, FaultProxy, FaultStats

__all__ = [
    "BINARY_ENV",
    "DEFAULT_JVM_OPTIONS",
    "DEFAULT_VERSION",
    "HOME_ENV",
    "ApiKey",
    "BrokerNotFoundError",
    "BrokerStartError",
    "FaultProxy",
    "FaultStats",
    "KafkaCluster",
    "KafkaClusterUnavailable",
    "LocalBroker",
    "find_broker_binary",
]
