"""Kafka producers and consumers whose defaults are governed.

Import these instead of raw ``confluent_kafka``: producers that cannot be configured
into losing or duplicating data, topic contracts checked in CI and at runtime, and
errors that say what was refused and why.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from . import acls, avro, compatibility, errors, health, hooks, profiles, registry
from .commit import CommitStrategy
from .consumer import GovernedConsumer, Record, RunSummary
from .contracts import Catalog, ServiceContract, TopicContract
from .errors import (
    AccessDenied,
    BackpressureTimeout,
    BrokerError,
    ClosedError,
    ConfigError,
    ContractError,
    DeliveryError,
    DeserializationError,
    GovernanceViolation,
    GovernedKafkaError,
    ProducerFenced,
    RegistryError,
    RetriesExhausted,
    SerializationError,
    TransactionError,
)
from .health import HealthReport, PartitionHealth
from .lag import LagReport, PartitionLag
from .policy import Policy, Violation
from .producer import DeliveryFuture, GovernedProducer, RecordMetadata
from .registry import ConfluentSchemaRegistry, LocalSchemaRegistry, SchemaRegistry
from .retry import RetryPolicy

try:
    __version__ = version("governed-kafka")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "AccessDenied",
    "BackpressureTimeout",
    "BrokerError",
    "Catalog",
    "ClosedError",
    "CommitStrategy",
    "ConfigError",
    "ConfluentSchemaRegistry",
    "ContractError",
    "DeliveryError",
    "DeliveryFuture",
    "DeserializationError",
    "GovernanceViolation",
    "GovernedConsumer",
    "GovernedKafkaError",
    "GovernedProducer",
    "HealthReport",
    "LagReport",
    "LocalSchemaRegistry",
    "PartitionHealth",
    "PartitionLag",
    "Policy",
    "ProducerFenced",
    "Record",
    "RecordMetadata",
    "RegistryError",
    "RetriesExhausted",
    "RetryPolicy",
    "RunSummary",
    "SchemaRegistry",
    "SerializationError",
    "ServiceContract",
    "TopicContract",
    "TransactionError",
    "Violation",
    "__version__",
    "acls",
    "avro",
    "compatibility",
    "errors",
    "health",
    "hooks",
    "profiles",
    "registry",
]
