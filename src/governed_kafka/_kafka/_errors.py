"""librdkafka's errors, translated into governed_kafka's, in one place.

Every other module of the border runs its librdkafka calls inside :func:`translated`
(or hands an error to :func:`broker_error`), so a ``KafkaException`` never leaves the
border: it becomes a :class:`~governed_kafka.errors.BrokerError` naming the operation,
raised ``from`` the original. A :class:`Failure` is a librdkafka error as plain values,
for errors that arrive in callbacks rather than as exceptions.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
from collections.abc import Iterator
from typing import Any, Final

import attrs
from confluent_kafka import KafkaError, KafkaException

from ..errors import (
    AccessDenied,
    BrokerError,
    ConfigError,
    DeliveryError,
    ProducerFenced,
    TransactionError,
)

#: Error names meaning the cluster could not be reached at all.
UNREACHABLE: Final = frozenset({"_TRANSPORT", "_TIMED_OUT", "_ALL_BROKERS_DOWN", "_RESOLVE"})

#: Error name of a request the broker does not implement.
UNSUPPORTED: Final = "_UNSUPPORTED_FEATURE"

#: Error codes meaning "this message will never be delivered by retrying it as is".
PURGED: Final = frozenset({KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT})

#: The code produce() answers with once the producer had a fatal error.
FATAL: Final = KafkaError._FATAL

#: Error names meaning another producer with the same transactional id took over.
FENCED: Final = frozenset({"_FENCED", "PRODUCER_FENCED", "INVALID_PRODUCER_EPOCH"})


@attrs.frozen
class Failure:
    """A librdkafka error as plain values: its name, its text, whether to retry."""

    #: The error's name (``"_TRANSPORT"``, ``"OUT_OF_ORDER_SEQUENCE_NUMBER"`` ...).
    code: str
    #: librdkafka's description of it.
    reason: str
    retriable: bool = False
    fatal: bool = False

    def __str__(self) -> str:
        return self.reason

    def broker_error(self, operation: str) -> BrokerError:
        """This error as the failure of ``operation``."""
        message = f"{operation} failed: {self.code}: {self.reason}"
        return BrokerError(
            message,
            operation=operation,
            code=self.code,
            retriable=self.retriable,
            fatal=self.fatal,
        )


def failure(err: KafkaError) -> Failure:
    """``err`` as plain values."""
    return Failure(code=err.name(), reason=err.str(), retriable=err.retriable(), fatal=err.fatal())


def _error_of(exc: BaseException) -> KafkaError | None:
    err = exc.args[0] if isinstance(exc, KafkaException) and exc.args else None
    return err if isinstance(err, KafkaError) else None


def broker_error(exc: BaseException | KafkaError, operation: str) -> BrokerError:
    """Translate a ``KafkaException`` (or a bare ``KafkaError``) raised by ``operation``."""
    err = exc if isinstance(exc, KafkaError) else _error_of(exc)
    if err is not None:
        return failure(err).broker_error(operation)
    return BrokerError(f"{operation} failed: {exc}", operation=operation)


def unreachable(operation: str, timeout: float) -> BrokerError:
    """The cluster did not answer ``operation`` within ``timeout`` seconds."""
    message = (
        f"{operation} failed: no answer from the cluster within {timeout:g} s "
        "(are the bootstrap servers right and reachable?)"
    )
    return BrokerError(message, operation=operation, code="_TIMED_OUT", retriable=True)


@contextlib.contextmanager
def translated(operation: str, *, timeout: float | None = None) -> Iterator[None]:
    """Run librdkafka calls whose errors become :class:`BrokerError` naming ``operation``.

    With ``timeout``, a wait that ran out (an admin future's ``result(timeout)``) is the
    cluster not answering: :func:`unreachable`.
    """
    try:
        yield
    except KafkaException as exc:
        raise broker_error(exc, operation) from exc
    except (TimeoutError, concurrent.futures.TimeoutError) as exc:
        if timeout is None:
            raise
        raise unreachable(operation, timeout) from exc


def code_of(exc: BaseException) -> int | None:
    """The librdkafka error code of a ``KafkaException``, ``None`` for anything else."""
    err = _error_of(exc)
    return err.code() if err is not None else None


def delivery_error(
    err: KafkaError, *, topic: str | None, partition: int | None, key: bytes | None
) -> DeliveryError:
    """A failed delivery report as a :class:`DeliveryError`."""
    if partition is not None and partition < 0:
        partition = None
    code = err.name()
    if err.code() in PURGED:
        reason = (
            "purged from the producer's queue before delivery (the producer closed, or its "
            "transaction was aborted)"
        )
    else:
        reason = err.str()
    where = topic if partition is None else f"{topic}[{partition}]"
    message = f"record for {where} not delivered: {code}: {reason}"
    return DeliveryError(
        message,
        topic=topic,
        partition=partition,
        key=key,
        code=code,
        retriable=err.retriable(),
        fatal=err.fatal(),
    )


def wait_for(future: Any, timeout: float, operation: str) -> Any:
    """The result of an admin future, waiting at most ``timeout`` seconds."""
    try:
        return future.result(timeout)
    except (concurrent.futures.TimeoutError, TimeoutError):
        msg = f"{operation} failed: _TIMED_OUT: no answer within {timeout:.0f} s"
        raise BrokerError(msg, operation=operation, code="_TIMED_OUT", retriable=True) from None


def fenced(transactional_id: str, operation: str, failure: Failure) -> ProducerFenced:
    """The producer ``transactional_id`` was fenced (``failure`` says how)."""
    message = (
        f"transactional producer {transactional_id!r} was fenced during {operation}: "
        f"{failure.code}: {failure.reason}; another producer with the same transactional "
        "id took over (a newer instance, or a restart of this one), so this one can send, "
        "commit or abort nothing more: close it"
    )
    return ProducerFenced(
        message,
        transactional_id=transactional_id,
        operation=operation,
        code=failure.code,
        fatal=True,
    )


def transaction_error(
    exc: BaseException, operation: str, *, transactional_id: str, principal: str | None = None
) -> Exception:
    """Translate what a transactional call of librdkafka raised.

    Fencing becomes :class:`ProducerFenced`; a missing right on the transactional id
    :class:`AccessDenied`; a timeout the brokers refuse :class:`ConfigError`; anything
    else :class:`TransactionError`, saying whether it may be retried, must be aborted,
    or is fatal (librdkafka's words: what is neither retriable nor abortable is fatal).
    """
    err = _error_of(exc)
    if err is None:
        message = f"{operation} of transactional producer {transactional_id!r} failed: {exc}"
        return TransactionError(message, transactional_id=transactional_id, operation=operation)
    code = err.name()
    if code in FENCED:
        return fenced(transactional_id, operation, failure(err))
    if code == "TRANSACTIONAL_ID_AUTHORIZATION_FAILED":
        message = (
            f"the cluster refused {principal or 'this producer'} on transactional id "
            f"{transactional_id!r} ({operation}): {code}; the service needs WRITE and "
            "DESCRIBE on it (declare it in [services.NAME].transactional_ids and apply)"
        )
        return AccessDenied(
            message,
            principal=principal,
            resource_type="transactional_id",
            resource=transactional_id,
            operation="write",
        )
    if code == "INVALID_TRANSACTION_TIMEOUT":
        message = (
            f"the cluster refused the transaction timeout of {transactional_id!r}: {code}: "
            f"{err.str()}; lower transaction.timeout.ms to at most the brokers' "
            "transaction.max.timeout.ms"
        )
        return ConfigError(message, key="transaction.timeout.ms")
    abortable = err.txn_requires_abort()
    retriable = err.retriable()
    fatal = err.fatal() or not (abortable or retriable)
    if code == UNSUPPORTED:
        why = "the cluster does not support transactions (Kafka 0.11 or later is needed)"
    elif code == "_TIMED_OUT":
        why = "no answer from the transaction coordinator in time"
    else:
        why = err.str()
    then = (
        "the transaction must be aborted"
        if abortable
        else "it may be called again"
        if retriable
        else "the producer can do nothing more: close it"
    )
    message = (
        f"{operation} of transactional producer {transactional_id!r} failed: {code}: {why}; {then}"
    )
    return TransactionError(
        message,
        transactional_id=transactional_id,
        operation=operation,
        code=code,
        retriable=retriable,
        fatal=fatal,
        abortable=abortable,
    )
