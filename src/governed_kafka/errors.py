"""Every error governed_kafka raises, in one tree.

::

    GovernedKafkaError                  base of everything below
    ├── ContractError (ValueError)      the contracts file is malformed: file, topic, key
    ├── GovernanceViolation (ValueError)
    │   │                               a rule refused an action: rule, topic, field, value
    │   └── AccessDenied                the cluster does not grant the service's principal
    │                                   a right it needs (rule ``acl.missing``): principal,
    │                                   resource, operation
    ├── ConfigError (ValueError)        a refused configuration key: key, value
    ├── SerializationError (ValueError) a value or key does not fit its schema: topic, field path
    ├── DeserializationError (ValueError)
    │                                   consumed bytes cannot be decoded: topic, partition,
    │                                   offset, raw bytes
    ├── DeliveryError                   an accepted record was not delivered: topic, partition,
    │   │                               key, broker error code
    │   └── TransactionError            a transaction could not be begun, committed or aborted
    │       │                           (or was aborted): transactional id, operation, code,
    │       │                           whether it was aborted
    │       └── ProducerFenced          another producer took over the transactional id (or its
    │                                   epoch is no longer valid): this one can do nothing more
    ├── BackpressureTimeout (TimeoutError)
    │                                   the local queue stayed full past the deadline
    ├── BrokerError                     the cluster refused or failed an operation (admin,
    │                                   commit, metadata): operation, error code
    ├── RegistryError                   the schema registry refused or failed an operation:
    │                                   operation, subject, HTTP status, registry error code
    ├── ClosedError (RuntimeError)      the client was used after ``close()`` (or, for the
    │                                   asyncio clients, before ``start()``)
    ├── RetriesExhausted                ``RetryPolicy.call()``/``acall()`` gave up: the last
    │                                   error, the attempts made
    │
    │   defined in governed_kafka.testing, raised only by its brokers:
    ├── BrokerNotFoundError (FileNotFoundError)
    │                                   no embedded broker binary was found: how to get one
    ├── BrokerStartError (RuntimeError) a broker did not start or answer in time: its log
    └── KafkaClusterUnavailable (RuntimeError)
                                        Java, Maven or the Kafka jars are missing: what to
                                        install

Foreign exceptions (``confluent_kafka.KafkaException``, ``fastavro`` errors, TOML
parse errors) are translated into these with ``raise ... from exc``, so the original
stays available as ``__cause__``; librdkafka's are translated in one place, the
private ``governed_kafka._kafka`` package. Each error carries, as attributes, the data
a caller needs to act on it; ``str(error)`` is a sentence that names the same data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

__all__ = [
    "AccessDenied",
    "BackpressureTimeout",
    "BrokerError",
    "ClosedError",
    "ConfigError",
    "ContractError",
    "ContractProblem",
    "DeliveryError",
    "DeserializationError",
    "GovernanceViolation",
    "GovernedKafkaError",
    "ProducerFenced",
    "RegistryError",
    "RetriesExhausted",
    "SerializationError",
    "TransactionError",
]


class GovernedKafkaError(Exception):
    """Base class of every error raised by governed_kafka."""

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only payloads do not survive the default pickling of exceptions;
        # errors cross process boundaries (multiprocessing, test runners), so keep them whole.
        return (_rebuild, (type(self), self.args, self.__dict__))


def _rebuild(
    cls: type[GovernedKafkaError], args: tuple[Any, ...], state: dict[str, Any]
) -> GovernedKafkaError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


@attrs.frozen
class ContractProblem:
    """One problem found while loading a contracts file."""

    message: str
    topic: str | None = None
    key: str | None = None
    #: The ``[services.NAME]`` table the problem is in, for problems outside topics.
    service: str | None = None


class ContractError(GovernedKafkaError, ValueError):
    """The contracts file cannot be loaded.

    ``path``, ``topic`` (or ``service``) and ``key`` locate the first problem;
    ``problems`` lists every problem found, so one run of the loader reports all of them.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str,
        topic: str | None = None,
        key: str | None = None,
        problems: Sequence[ContractProblem] = (),
        service: str | None = None,
    ) -> None:
        super().__init__(message)
        self.path = path
        self.topic = topic
        self.key = key
        self.service = service
        self.problems = tuple(problems) or (
            ContractProblem(message, topic=topic, key=key, service=service),
        )


class GovernanceViolation(GovernedKafkaError, ValueError):
    """A governance rule refused an action; nothing was sent.

    ``rule`` is a stable identifier (``"producer.not-listed"``, ``"key.required"`` ...)
    that callers and dashboards can match on; ``field`` names the contract field or
    record field involved and ``value`` the offending value, where there is one.
    """

    def __init__(
        self,
        message: str,
        *,
        rule: str,
        topic: str | None = None,
        field: str | None = None,
        value: object = None,
    ) -> None:
        super().__init__(message)
        self.rule = rule
        self.topic = topic
        self.field = field
        self.value = value


class AccessDenied(GovernanceViolation):
    """The cluster does not grant the client's principal a right the service needs.

    Always rule ``acl.missing``. ``principal`` is the one the service's
    ``[services.NAME]`` table names (or ``None`` when it has none);
    ``resource_type`` (``"topic"``, ``"group"``...), ``resource`` and ``operation``
    (``"write"``, ``"read"``) say what is missing; ``topic`` is set for topics.
    """

    def __init__(
        self,
        message: str,
        *,
        principal: str | None,
        resource_type: str,
        resource: str,
        operation: str,
    ) -> None:
        super().__init__(
            message,
            rule="acl.missing",
            topic=resource if resource_type == "topic" else None,
            field=operation,
            value=principal,
        )
        self.principal = principal
        self.resource_type = resource_type
        self.resource = resource
        self.operation = operation


class ConfigError(GovernedKafkaError, ValueError):
    """A configuration key or value was refused at construction."""

    def __init__(self, message: str, *, key: str, value: object = None) -> None:
        super().__init__(message)
        self.key = key
        self.value = value


class SerializationError(GovernedKafkaError, ValueError):
    """A key or value could not be serialized for its topic; nothing was sent.

    ``field`` is the path of the offending field inside the record
    (``"items[2].price"``), or ``None`` when the whole value is wrong.
    """

    def __init__(
        self,
        message: str,
        *,
        topic: str,
        field: str | None = None,
        value: object = None,
    ) -> None:
        super().__init__(message)
        self.topic = topic
        self.field = field
        self.value = value


class DeserializationError(GovernedKafkaError, ValueError):
    """Consumed bytes could not be decoded; ``data`` holds them untouched."""

    def __init__(
        self,
        message: str,
        *,
        topic: str,
        partition: int | None = None,
        offset: int | None = None,
        data: bytes | None = None,
        schema_id: int | None = None,
    ) -> None:
        super().__init__(message)
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.data = data
        self.schema_id = schema_id


class DeliveryError(GovernedKafkaError):
    """A record accepted by ``send()`` was not delivered.

    ``code`` is the broker or client error name (``"MSG_SIZE_TOO_LARGE"``,
    ``"_MSG_TIMED_OUT"`` ...). When raised by ``close()``, the message counts every
    record that was not delivered and whose outcome nobody had looked at, and
    ``failures`` holds one ``DeliveryError`` for each of the most recent of them (at most
    1000, holding at most 4 MiB of keys in all).
    """

    def __init__(
        self,
        message: str,
        *,
        topic: str | None,
        partition: int | None = None,
        key: bytes | None = None,
        code: str | None = None,
        retriable: bool = False,
        fatal: bool = False,
        failures: Sequence[DeliveryError] = (),
    ) -> None:
        super().__init__(message)
        self.topic = topic
        self.partition = partition
        self.key = key
        self.code = code
        self.retriable = retriable
        self.fatal = fatal
        self.failures = tuple(failures)


class TransactionError(DeliveryError):
    """A transaction of a transactional producer failed.

    ``transactional_id`` names the producer, ``operation`` what failed
    (``"init_transactions"``, ``"commit_transaction"`` ...) and ``code`` the error. When
    ``aborted`` is true the transaction was aborted: none of its records (nor the
    consumer offsets sent to it) will ever be visible to ``read_committed`` readers, and
    the producer can begin a new one. ``fatal`` errors leave the producer unusable
    (:class:`ProducerFenced` is the usual one); ``retriable`` ones may succeed when
    called again. ``failures`` holds the transaction's first records that were not
    delivered (often why its commit failed).
    """

    def __init__(
        self,
        message: str,
        *,
        transactional_id: str,
        operation: str,
        code: str | None = None,
        retriable: bool = False,
        fatal: bool = False,
        aborted: bool = False,
        abortable: bool = False,
        failures: Sequence[DeliveryError] = (),
    ) -> None:
        super().__init__(
            message, topic=None, code=code, retriable=retriable, fatal=fatal, failures=failures
        )
        self.transactional_id = transactional_id
        self.operation = operation
        self.aborted = aborted
        #: Whether the transaction must be aborted before the producer can go on.
        self.abortable = abortable


class ProducerFenced(TransactionError):
    """Another producer with the same transactional id took over (``PRODUCER_FENCED``,
    ``INVALID_PRODUCER_EPOCH``): this producer is a zombie and can send, commit or abort
    nothing more. Always ``fatal``; close it. A consumer whose transactional strategy
    uses it stops with this error.
    """


class BackpressureTimeout(GovernedKafkaError, TimeoutError):
    """The producer's local queue stayed full for longer than ``max_block_s``.

    The record was not accepted: nothing of it is queued, so retrying the send is safe.
    """

    def __init__(self, message: str, *, topic: str, waited_s: float) -> None:
        super().__init__(message)
        self.topic = topic
        self.waited_s = waited_s


class BrokerError(GovernedKafkaError):
    """The cluster refused or failed an operation other than a delivery."""

    def __init__(
        self,
        message: str,
        *,
        operation: str,
        code: str | None = None,
        retriable: bool = False,
        fatal: bool = False,
    ) -> None:
        super().__init__(message)
        self.operation = operation
        self.code = code
        self.retriable = retriable
        self.fatal = fatal


class RegistryError(GovernedKafkaError):
    """The schema registry refused or failed an operation (lookup, register, fetch).

    ``status`` is the HTTP status and ``code`` the registry's own error code, when the
    registry answered; both are ``None`` when it could not be reached.
    """

    def __init__(
        self,
        message: str,
        *,
        operation: str,
        subject: str | None = None,
        status: int | None = None,
        code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.operation = operation
        self.subject = subject
        self.status = status
        self.code = code


class ClosedError(GovernedKafkaError, RuntimeError):
    """The producer or consumer was used after ``close()``, or an asyncio client before
    ``start()``."""


class RetriesExhausted(GovernedKafkaError):
    """A :class:`~governed_kafka.retry.RetryPolicy` gave up on a call.

    Raised by ``RetryPolicy.call()`` and ``acall()`` when the attempts run out or an
    error is not one to retry: ``error`` is the last error, ``attempts`` how many attempts
    were made (the first included). The consumers catch it and dead-letter the record.
    """

    def __init__(self, error: BaseException, attempts: int) -> None:
        super().__init__(error)
        self.error = error
        self.attempts = attempts
