"""Kafka producers and consumers whose defaults are governed.

Import these instead of raw ``confluent_kafka``: producers that cannot be configured
into losing or duplicating data, topic contracts checked in CI and at runtime, and
errors that say what was refused and why.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from . import errors, profiles
from .contracts import Catalog, TopicContract
from .errors import (
    BackpressureTimeout,
    BrokerError,
    ClosedError,
    ConfigError,
    ContractError,
    DeliveryError,
    DeserializationError,
    GovernanceViolation,
    GovernedKafkaError,
    SerializationError,
)
from .policy import Policy, Violation
from .producer import DeliveryFuture, GovernedProducer, RecordMetadata

try:
    __version__ = version("governed-kafka")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "BackpressureTimeout",
    "BrokerError",
    "Catalog",
    "ClosedError",
    "ConfigError",
    "ContractError",
    "DeliveryError",
    "DeliveryFuture",
    "DeserializationError",
    "GovernanceViolation",
    "GovernedKafkaError",
    "GovernedProducer",
    "Policy",
    "RecordMetadata",
    "SerializationError",
    "TopicContract",
    "Violation",
    "__version__",
    "errors",
    "profiles",
]
