"""librdkafka's producer, and what its delivery reports say.

The send path calls librdkafka's own ``produce`` (:attr:`ProducerClient.produce`), with
no wrapper around it, and hands it the record's delivery callback; what it raises is
translated afterwards (:meth:`ProducerClient.refusal`). librdkafka calls
that back with an error (``None`` when delivered) and the message as delivered: an
opaque :class:`Report` above the border, which the record's future keeps and reads
through the functions here when someone asks (:func:`delivered`, :func:`reported`,
:func:`failed`). Only its offset is read on the spot, to recognise duplicate
acknowledgements (:class:`DuplicateAcks`).
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Callable, Mapping
from typing import Any, Protocol, cast

from confluent_kafka import KafkaError, KafkaException, Message, Producer, TopicPartition

from ..errors import DeliveryError, TransactionError
from ._clients import OnStats, OnThrottle, construct, with_callbacks
from ._consumer import GroupMetadata, Offsets
from ._errors import (
    FATAL,
    FENCED,
    Failure,
    broker_error,
    delivery_error,
    failure,
    fenced,
    transaction_error,
)

_log = logging.getLogger("governed_kafka")

__all__ = [
    "DeliveryCallback",
    "DuplicateAcks",
    "Produce",
    "ProducerClient",
    "Report",
    "delivered",
    "failed",
    "reported",
]

#: A header list as librdkafka takes it.
_Headers = list[tuple[str, str | bytes | None]]


class Report(Protocol):
    """The message of a delivery report, opaque above the border but for its offset."""

    def offset(self) -> int | None:
        """Where the record landed; ``None`` when librdkafka does not know."""
        ...


#: What librdkafka calls once per record: ``(error or None, report)``.
DeliveryCallback = Callable[[Any, Report], None]


class Produce(Protocol):
    """librdkafka's ``produce``, in the positional form the send path calls it."""

    def __call__(  # noqa: PLR0917 - librdkafka's positional form, for speed
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None,
        partition: int,
        on_delivery: DeliveryCallback,
        callback: None,
        timestamp: int,
        headers: _Headers | None,
        /,
    ) -> None:
        """Queue one record; ``BufferError`` when the local queue is full."""
        ...


class ProducerClient:
    """librdkafka's producer: the calls a governed producer makes, errors translated.

    :attr:`produce` is librdkafka's own method, called directly on the hot path; what it
    raises is translated by :meth:`refusal`. A fatal error of the producer (an idempotent
    producer that can no longer keep its guarantees) is kept as :attr:`fatal`.
    """

    def __init__(
        self,
        config: Mapping[str, object],
        *,
        on_throttle: OnThrottle | None = None,
        on_stats: OnStats | None = None,
    ) -> None:
        self._fatal: Failure | None = None
        tid = config.get("transactional.id")
        #: The producer's transactional id; ``None`` for a producer without transactions.
        self.transactional_id: str | None = None if tid is None else str(tid)
        #: The principal named when the cluster refuses the transactional id.
        self.principal: str | None = None
        full = with_callbacks(
            config,
            "producer",
            on_fatal=self._on_fatal,
            on_throttle=on_throttle,
            on_stats=on_stats,
        )
        self._client: Producer = construct(Producer, full)
        #: Queue one record (:class:`Produce`).
        self.produce: Produce = self._client.produce

    def _on_fatal(self, error: Failure) -> None:
        if self._fatal is None:
            self._fatal = error

    def _served(self, exc: KafkaException) -> None:
        """A poll or flush raised: librdkafka reports a fatal error that way, once."""
        err = exc.args[0] if exc.args else None
        if not isinstance(err, KafkaError) or not err.fatal():
            raise broker_error(exc, "serve delivery reports") from exc
        _log.error("producer fatal error: %s", err.str())
        self._on_fatal(failure(err))

    def poll(self, timeout: float) -> int:
        """Serve delivery reports for at most ``timeout`` seconds; return how many.

        A fatal error (librdkafka raises it from one poll) is kept as :attr:`fatal` and
        logged, not raised: from then on every record is refused naming it.
        """
        try:
            served: int = self._client.poll(timeout)
        except KafkaException as exc:
            self._served(exc)
            return 0
        return served

    @property
    def fatal(self) -> Failure | None:
        """The fatal error the producer had, if any: it can send nothing more."""
        return self._fatal

    def refusal(self, exc: BaseException, topic: str, key: bytes | None) -> DeliveryError | None:
        """The governed error of a ``produce`` that raised ``exc``, or ``None`` when
        ``exc`` is not librdkafka's (it is raised as it is).

        After a fatal error librdkafka refuses every record with ``_FATAL``; the error
        names the fatal error itself (its callback is served first if it was not yet).
        """
        err = exc.args[0] if exc.args else None
        if not isinstance(err, KafkaError):
            return None
        if err.code() == FATAL:
            if self._fatal is None:
                self.poll(0)  # the poll that reports the fatal error may not have come yet
            fatal = self._fatal
            if fatal is not None and self.transactional_id is not None:
                return self._fatal_transaction_error(f"send to {topic!r}", fatal)
            if fatal is not None:
                message = (
                    f"record for {topic!r} not queued: the producer had a fatal error "
                    f"({fatal.code}: {fatal.reason}) and can send nothing more; close it "
                    "and create a new one"
                )
                return DeliveryError(message, topic=topic, key=key, code=fatal.code, fatal=True)
        message = f"record for {topic!r} refused by the client: {err.name()}: {err.str()}"
        return DeliveryError(
            message,
            topic=topic,
            key=key,
            code=err.name(),
            retriable=err.retriable(),
            fatal=err.fatal(),
        )

    # ------------------------------------------------------------------ transactions

    def _fatal_transaction_error(self, operation: str, fatal: Failure) -> TransactionError:
        """The error of a transactional producer that had the fatal error ``fatal``."""
        assert self.transactional_id is not None
        if fatal.code in FENCED:
            return fenced(self.transactional_id, operation, fatal)
        message = (
            f"transactional producer {self.transactional_id!r} had a fatal error "
            f"({fatal.code}: {fatal.reason}) and can do nothing more ({operation} refused); "
            "close it and create a new one"
        )
        return TransactionError(
            message,
            transactional_id=self.transactional_id,
            operation=operation,
            code=fatal.code,
            fatal=True,
        )

    def fatal_transaction_error(self, operation: str) -> TransactionError | None:
        """The error every transactional call now raises, if the producer had a fatal one."""
        if self._fatal is None:
            return None
        return self._fatal_transaction_error(operation, self._fatal)

    def _transactional(self, operation: str, call: Callable[[], object]) -> None:
        """Run one transactional call of librdkafka; its errors translated (a fatal one kept)."""
        assert self.transactional_id is not None
        try:
            call()
        except KafkaException as exc:
            err = exc.args[0] if exc.args else None
            if isinstance(err, KafkaError) and err.fatal():
                self._on_fatal(failure(err))
            error = transaction_error(
                exc, operation, transactional_id=self.transactional_id, principal=self.principal
            )
            if isinstance(error, TransactionError) and error.fatal:
                self._on_fatal(Failure(code=error.code or "_FATAL", reason=str(error), fatal=True))
            raise error from exc

    def init_transactions(self, timeout: float) -> None:
        """Register the transactional id with its coordinator (fencing older producers that
        used it, aborting their open transaction); wait at most ``timeout`` seconds."""
        self._transactional("init_transactions", lambda: self._client.init_transactions(timeout))

    def begin_transaction(self) -> None:
        """Start a transaction: the records produced from now on belong to it."""
        self._transactional("begin_transaction", self._client.begin_transaction)

    def send_offsets_to_transaction(
        self, offsets: Offsets, group: GroupMetadata, timeout: float
    ) -> None:
        """Make committing ``offsets`` for the consumer group of ``group`` part of the open
        transaction: they are committed with it, or not at all."""
        partitions = [TopicPartition(t, p, o) for t, p, o in offsets]
        self._transactional(
            "send_offsets_to_transaction",
            lambda: self._client.send_offsets_to_transaction(partitions, group, timeout),
        )

    def commit_transaction(self, timeout: float) -> None:
        """Deliver what the transaction holds and commit it; wait at most ``timeout`` s."""
        self._transactional("commit_transaction", lambda: self._client.commit_transaction(timeout))

    def abort_transaction(self, timeout: float) -> None:
        """Abort the open transaction: its records are never visible to ``read_committed``
        readers; records still queued are purged. Wait at most ``timeout`` seconds."""
        self._transactional("abort_transaction", lambda: self._client.abort_transaction(timeout))

    def queued(self) -> int:
        """Records in the local queue, not yet delivered or failed."""
        return len(self._client)

    def flush(self, timeout: float) -> int:
        """Serve reports until the queue is empty or ``timeout`` s pass (-1: no limit).

        Returns how many records are still queued. A fatal error is kept, as by :meth:`poll`.
        """
        try:
            remaining: int = self._client.flush(timeout)
        except KafkaException as exc:
            self._served(exc)
            remaining = len(self._client)
        return remaining

    def purge(self) -> None:
        """Drop every record still queued or in flight; their reports fail (purged)."""
        self._client.purge(in_queue=True, in_flight=True, blocking=False)

    def close(self) -> None:
        """Release librdkafka's producer.

        A transactional producer's open transaction was aborted before this, or cannot
        be (after a fatal error, or an ``init_transactions`` that never finished), and
        that was raised or logged then: the abort confluent-kafka tries on close would
        only fail again, and its warning is not repeated.
        """
        if self.transactional_id is None:
            self._client.close()
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            self._client.close()


def _key(raw: object) -> bytes | None:
    return raw.encode() if isinstance(raw, str) else cast("bytes | None", raw)


def delivered(
    report: Report, *, offset_unknown: bool
) -> tuple[str, int, int | None, int | None, float | None]:
    """``(topic, partition, offset, timestamp, latency)`` of a delivered record.

    The offset is ``None`` where it is not known (``offset_unknown``); the timestamp
    ``None`` when the broker gave none.
    """
    msg = cast(Message, report)
    timestamp_type, timestamp = msg.timestamp()
    offset = None if offset_unknown else msg.offset()
    return (
        msg.topic() or "",
        msg.partition() or 0,
        offset,
        timestamp if timestamp_type else None,
        msg.latency(),
    )


def reported(report: Report) -> tuple[str, int | None, bytes | None, float | None]:
    """``(topic, partition, key, latency)`` of a report; partition ``None`` if unassigned."""
    msg = cast(Message, report)
    partition = msg.partition()
    return (
        msg.topic() or "",
        partition if partition is not None and partition >= 0 else None,
        _key(msg.key()),
        msg.latency(),
    )


def failed(err: object, report: Report) -> DeliveryError:
    """The :class:`DeliveryError` of a failed delivery report."""
    msg = cast(Message, report)
    return delivery_error(
        cast(KafkaError, err), topic=msg.topic(), partition=msg.partition(), key=_key(msg.key())
    )


class DuplicateAcks:
    """Recognises delivered records whose offset librdkafka cannot know.

    When the broker acknowledges a retried batch with DUPLICATE_SEQUENCE_NUMBER (the
    batch was written before; its first acknowledgement was lost) without the original
    offset, librdkafka numbers the batch's records from a base offset of -1: the first
    reports no offset, the next ones 0, 1, 2, ... which are other records' offsets. The
    reports of one batch are served consecutively on one thread, so after a record
    without offset, the records of the same partition served next on that thread with
    offsets 0, 1, 2, ... belong to the same batch. A genuine offset cannot continue
    that run: the batch itself sits in the log before any later record, so every later
    record's offset is at least the batch's length, which the run never reaches.
    """

    def __init__(self) -> None:
        #: Whether any thread may be inside such a run; keeps the usual path to one check.
        self.active = False
        self._runs = threading.local()

    def offset_unknown(self, report: Report) -> bool:
        """Whether ``report``, just delivered, has no known offset (and follow the run)."""
        msg = cast(Message, report)
        runs: dict[tuple[str | None, int | None], int] | None = getattr(
            self._runs, "by_partition", None
        )
        offset = msg.offset()
        if offset is None:
            if runs is None:
                runs = self._runs.by_partition = {}
            runs[(msg.topic(), msg.partition())] = 0
            self.active = True
            return True
        if not runs:
            return False
        key = (msg.topic(), msg.partition())
        expected = runs.get(key)
        if expected is None:
            return False
        if offset == expected:
            runs[key] = expected + 1
            return True
        del runs[key]
        return False
