"""The border with confluent-kafka: the only package that imports ``confluent_kafka``.

Everything above it deals in plain values and governed errors. It creates librdkafka's
clients from the governed configuration dicts (:mod:`._clients`), translates
``KafkaError``/``KafkaException`` into governed_kafka's errors in one place, always
with ``raise ... from exc`` (:mod:`._errors`, :func:`translated`), and offers small
typed clients:

- :class:`ProducerClient` (:mod:`._producer`): ``produce`` is librdkafka's own, called
  directly on the send path; a fatal error is kept and named by every later refusal;
  the transactional calls (init, begin, send offsets, commit, abort), their errors as
  ``TransactionError``/``ProducerFenced``;
  delivery reports stay opaque (:class:`Report`) and are read through
  :func:`delivered`, :func:`reported` and :func:`failed`;
- :class:`ConsumerClient` (:mod:`._consumer`): records built from librdkafka's messages
  (:meth:`ConsumerClient.read`, the consume path), commits, committed offsets,
  watermarks, pause and resume, seek, the group metadata transactions need,
  rebalances as lists of ``(topic, partition)``;
- :class:`Admin` (:mod:`._admin`): topics, configs, partitions, group offsets, and
  ACLs and the rights of this client's principal (:mod:`._acls`);
- :class:`LogReader` (:mod:`._reader`): bounded reads of partitions without a group, and
  a group's offsets fetched and committed without joining it (retry tiers' parked keys,
  ``governed-kafka dlq``);
- :class:`RegistryClient` (:mod:`._registry`): confluent-kafka's schema-registry client,
  schemas of every format in and out as plain values (:class:`Registered`,
  :class:`Reference`);
- :func:`raw_producer` and :func:`raw_consumer` (:mod:`._raw`): the unwrapped clients,
  for the benchmark's raw baseline.

No confluent type appears in a signature above this package.
"""

from __future__ import annotations

from ._acls import AUTHORIZATION_ERRORS, AclSpec
from ._admin import Admin, TopicSpec, recent_keys
from ._clients import LIBRDKAFKA_LOGGER, client_versions
from ._consumer import (
    CommitAnswer,
    ConsumerClient,
    GroupMetadata,
    Key,
    Lane,
    Lanes,
    Offsets,
    Rejected,
)
from ._errors import UNREACHABLE, UNSUPPORTED, Failure, translated, unreachable
from ._producer import (
    DeliveryCallback,
    DuplicateAcks,
    Produce,
    ProducerClient,
    Report,
    delivered,
    failed,
    reported,
)
from ._raw import RawConsumer, RawMessage, RawProducer, raw_consumer, raw_producer
from ._reader import LogEntry, LogReader
from ._registry import Reference, Registered, RegistryClient

__all__ = [
    "AUTHORIZATION_ERRORS",
    "LIBRDKAFKA_LOGGER",
    "UNREACHABLE",
    "UNSUPPORTED",
    "AclSpec",
    "Admin",
    "CommitAnswer",
    "ConsumerClient",
    "DeliveryCallback",
    "DuplicateAcks",
    "Failure",
    "GroupMetadata",
    "Key",
    "Lane",
    "Lanes",
    "LogEntry",
    "LogReader",
    "Offsets",
    "Produce",
    "ProducerClient",
    "RawConsumer",
    "RawMessage",
    "RawProducer",
    "Reference",
    "Registered",
    "RegistryClient",
    "Rejected",
    "Report",
    "TopicSpec",
    "client_versions",
    "delivered",
    "failed",
    "raw_consumer",
    "raw_producer",
    "recent_keys",
    "reported",
    "translated",
    "unreachable",
]
