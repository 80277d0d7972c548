"""Tracing with OpenTelemetry: a span per send and per processed record, linked across Kafka.

:class:`OpenTelemetryHook` needs only ``opentelemetry-api``; spans are recorded and
exported by whatever SDK the application configures (none: nothing is recorded, and
the hook stays off the send path). It follows the OpenTelemetry messaging semantic
conventions (version 1.44, :data:`SCHEMA_URL`; the Kafka page of the messaging
conventions):

- **send**: a ``PRODUCER`` span ``send <topic>`` per record, started in ``send()``
  and ended when the record's delivery report arrives, with the partition and offset
  it landed at, or an error status and ``error.type`` (the broker's error code) when
  it was not delivered. Its context is injected into the record's headers through
  the *global* propagator (W3C ``traceparent``/``tracestate`` and ``baggage`` unless
  the application configured others).
- **process**: a ``CONSUMER`` span ``process <topic>`` around each handler call, whose
  parent is the context extracted from the record's headers, so a consumer's work is
  a child of the send that produced the record, across the broker. A batch handler
  gets one span with a link to every record's context instead. Empty polls make no
  span.
- **transaction**: an ``INTERNAL`` span ``transaction <transactional id>`` per
  transaction of a transactional producer, from its begin to its commit or abort, with a
  link to the send span of each record sent in it (the first
  :data:`MAX_TRANSACTION_LINKS`); an aborted one has an error status. Its attributes
  say how many records it held and which consumer offsets it committed.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Any, Final, Literal

from opentelemetry import context as _context
from opentelemetry import propagate as _propagate
from opentelemetry import trace as _trace
from opentelemetry.propagators.textmap import Getter, Setter
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from ._routes import HeaderList
from .hooks import (
    BatchDetails,
    DeliveryDetails,
    Hook,
    ProcessDetails,
    SendDetails,
    TransactionAbortDetails,
    TransactionBeginDetails,
    TransactionCommitDetails,
)

__all__ = ["MAX_TRANSACTION_LINKS", "SCHEMA_URL", "OpenTelemetryHook"]

#: The semantic-conventions version the spans follow.
SCHEMA_URL: Final = "https://opentelemetry.io/schemas/1.44.0"

#: ``wants_send`` questions between two looks at whether an SDK was configured, while
#: none is (the look costs about a microsecond; producers ask every 64 sends).
_RECHECK_EVERY: Final = 64

# Attribute names of the messaging semantic conventions (the ``semconv`` package is
# not a dependency: these strings are the contract).
MESSAGING_SYSTEM: Final = "messaging.system"
MESSAGING_OPERATION_NAME: Final = "messaging.operation.name"
MESSAGING_OPERATION_TYPE: Final = "messaging.operation.type"
MESSAGING_DESTINATION_NAME: Final = "messaging.destination.name"
MESSAGING_DESTINATION_PARTITION_ID: Final = "messaging.destination.partition.id"
MESSAGING_CLIENT_ID: Final = "messaging.client.id"
MESSAGING_CONSUMER_GROUP_NAME: Final = "messaging.consumer.group.name"
MESSAGING_BATCH_MESSAGE_COUNT: Final = "messaging.batch.message_count"
MESSAGING_MESSAGE_BODY_SIZE: Final = "messaging.message.body.size"
MESSAGING_KAFKA_MESSAGE_KEY: Final = "messaging.kafka.message.key"
MESSAGING_KAFKA_OFFSET: Final = "messaging.kafka.offset"
MESSAGING_KAFKA_MESSAGE_TOMBSTONE: Final = "messaging.kafka.message.tombstone"
ERROR_TYPE: Final = "error.type"
#: Not a convention: which attempt of the handler a process span covers (1, 2, ...).
GOVERNED_KAFKA_ATTEMPT: Final = "governed_kafka.attempt"
#: Not conventions: a transaction span's producer, number, records and offsets.
GOVERNED_KAFKA_TRANSACTIONAL_ID: Final = "governed_kafka.transactional_id"
GOVERNED_KAFKA_TRANSACTION_SEQUENCE: Final = "governed_kafka.transaction.sequence"
GOVERNED_KAFKA_TRANSACTION_RECORDS: Final = "governed_kafka.transaction.records"
GOVERNED_KAFKA_TRANSACTION_OFFSETS: Final = "governed_kafka.transaction.offsets"
GOVERNED_KAFKA_TRANSACTION_OUTCOME: Final = "governed_kafka.transaction.outcome"
GOVERNED_KAFKA_TRANSACTION_REASON: Final = "governed_kafka.transaction.reason"

#: Links a transaction span keeps to the send spans of its records, at most: the SDK's
#: default span limit, and a bound on what an open transaction holds in memory.
MAX_TRANSACTION_LINKS: Final = 128


class _HeaderSetter(Setter[HeaderList]):
    """Writes propagation fields into a record's header list, replacing older ones."""

    def set(self, carrier: HeaderList, key: str, value: str) -> None:
        carrier[:] = [(name, v) for name, v in carrier if name != key]
        carrier.append((key, value.encode()))


class _HeaderGetter(Getter[Sequence[tuple[str, "bytes | None"]]]):
    """Reads propagation fields from a consumed record's headers."""

    def get(self, carrier: Sequence[tuple[str, bytes | None]], key: str) -> list[str] | None:
        found = [
            value.decode("utf-8", "replace")
            for name, value in carrier
            if name == key and value is not None
        ]
        return found or None

    def keys(self, carrier: Sequence[tuple[str, bytes | None]]) -> list[str]:
        return [name for name, _ in carrier]


_SETTER: Final = _HeaderSetter()
_GETTER: Final = _HeaderGetter()


def _key_attribute(key: object) -> str | None:
    """The key as the conventions want it: its text, or nothing if it is not text."""
    if not isinstance(key, bytes):
        return None
    try:
        return key.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _live(provider: object) -> bool:
    """Whether spans from ``provider`` may be recorded (an SDK, not the API's stand-ins)."""
    return not isinstance(provider, (_trace.ProxyTracerProvider, _trace.NoOpTracerProvider))


class _SendSpan:
    """Ends a send span when its record's delivery report arrives."""

    __slots__ = ("span",)

    def __init__(self, span: Span) -> None:
        self.span = span

    def __call__(self, details: DeliveryDetails) -> None:
        span = self.span
        if details.partition is not None:
            span.set_attribute(MESSAGING_DESTINATION_PARTITION_ID, str(details.partition))
        if details.error is None:
            if details.offset is not None:
                span.set_attribute(MESSAGING_KAFKA_OFFSET, details.offset)
        else:
            span.set_attribute(ERROR_TYPE, details.error.code or type(details.error).__name__)
            span.set_status(Status(StatusCode.ERROR, str(details.error)))
        span.end()


class _ProcessSpan(contextlib.AbstractContextManager[Span]):
    """Makes a process span current around a handler call, and ends it after."""

    def __init__(self, span: Span) -> None:
        self.span = span
        self.token: object = None

    @classmethod
    def around(cls, span: Span) -> _ProcessSpan | None:
        """Span the handler, unless there is nothing to record or pass on (no SDK)."""
        if not span.is_recording() and not span.get_span_context().is_valid:
            return None
        return cls(span)

    def __enter__(self) -> Span:
        self.token = _context.attach(_trace.set_span_in_context(self.span))
        return self.span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        span = self.span
        try:
            if exc is not None and span.is_recording():
                span.record_exception(exc)
                span.set_attribute(ERROR_TYPE, f"{type(exc).__module__}.{type(exc).__qualname__}")
                span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        finally:
            _context.detach(self.token)  # type: ignore[arg-type]
            span.end()
        return False


class _OpenTransaction:
    """A transaction between its begin and its end: when it began, its records' spans."""

    __slots__ = ("began_ns", "links", "sequence")

    def __init__(self, sequence: int) -> None:
        self.sequence = sequence
        self.began_ns = time.time_ns()
        self.links: list[Link] = []


class OpenTelemetryHook(Hook):
    """Producer and consumer spans on the OpenTelemetry API, linked through record headers.

    :param tracer_provider: where spans go; by default the global one, so the hook
        works with whatever SDK the application sets up, even after the hook was made.

    Without an SDK the API records nothing, and the hook stays out of the way: it
    answers ``wants_send()`` with ``False``, so producers leave it out of their sends
    (no span, no header, no cost per send) and ask again every 64 sends; an SDK
    configured after the hook was made is noticed within a few thousand sends.
    Consumers still make a record's incoming context current around the handler,
    for whatever other instrumentation runs there.
    """

    def __init__(self, *, tracer_provider: _trace.TracerProvider | None = None) -> None:
        from . import __version__

        self._tracer = _trace.get_tracer(
            "governed_kafka",
            __version__,
            tracer_provider=tracer_provider,
            schema_url=SCHEMA_URL,
        )
        self._provider = tracer_provider
        self._live = _live(tracer_provider if tracer_provider is not None else _global_provider())
        self._until_recheck = _RECHECK_EVERY
        #: Open transactions by transactional id.
        self._transactions: dict[str, _OpenTransaction] = {}
        self._transactions_lock = threading.Lock()

    # ------------------------------------------------------------------ producer side

    def wants_send(self) -> bool:
        """Whether sends need spans: whether an SDK is configured (asked every few sends)."""
        if self._live or self._provider is not None:
            return self._live
        until = self._until_recheck = self._until_recheck - 1
        if until <= 0:
            self._until_recheck = _RECHECK_EVERY
            self._live = _live(_global_provider())
        return self._live

    def on_send(self, details: SendDetails) -> _SendSpan | None:
        """Start the send span and write its context into the record's headers."""
        topic = details.topic
        attributes: dict[str, AttributeValue] = {
            MESSAGING_SYSTEM: "kafka",
            MESSAGING_OPERATION_NAME: "send",
            MESSAGING_OPERATION_TYPE: "send",
            MESSAGING_DESTINATION_NAME: topic,
            MESSAGING_CLIENT_ID: details.client_id,
            MESSAGING_MESSAGE_BODY_SIZE: details.value_size,
        }
        key = _key_attribute(details.key)
        if key is not None:
            attributes[MESSAGING_KAFKA_MESSAGE_KEY] = key
        if details.tombstone:
            attributes[MESSAGING_KAFKA_MESSAGE_TOMBSTONE] = True
        span = self._tracer.start_span(
            f"send {topic}", kind=SpanKind.PRODUCER, attributes=attributes
        )
        _propagate.inject(details.headers, context=_trace.set_span_in_context(span), setter=_SETTER)
        if details.transactional_id is not None:
            self._in_transaction(details.transactional_id, span, topic)
        return _SendSpan(span) if span.is_recording() else None

    def _in_transaction(self, transactional_id: str, span: Span, topic: str) -> None:
        """Link the open transaction of ``transactional_id`` to a send span of its own."""
        open_transaction = self._transactions.get(transactional_id)
        context = span.get_span_context()
        if open_transaction is None or not context.is_valid:
            return
        links = open_transaction.links
        if len(links) < MAX_TRANSACTION_LINKS:
            links.append(Link(context, attributes={MESSAGING_DESTINATION_NAME: topic}))

    # ------------------------------------------------------------------ transactions

    def on_transaction_begin(self, details: TransactionBeginDetails) -> None:
        """Remember the transaction, to span it when it ends."""
        with self._transactions_lock:
            self._transactions[details.transactional_id] = _OpenTransaction(details.sequence)

    def on_transaction_commit(self, details: TransactionCommitDetails) -> None:
        """One span for the committed transaction, linked to its records' send spans."""
        span = self._transaction_span(details.transactional_id, details.client_id, details)
        if span is None:
            return
        span.set_attribute(GOVERNED_KAFKA_TRANSACTION_OFFSETS, len(details.offsets))
        if details.group_id is not None:
            span.set_attribute(MESSAGING_CONSUMER_GROUP_NAME, details.group_id)
        span.end()

    def on_transaction_abort(self, details: TransactionAbortDetails) -> None:
        """One span for the aborted transaction, with an error status saying why."""
        span = self._transaction_span(details.transactional_id, details.client_id, details)
        if span is None:
            return
        error = details.error
        why = details.reason if error is None else f"{type(error).__name__}: {error}"
        if error is not None:
            span.set_attribute(ERROR_TYPE, f"{type(error).__module__}.{type(error).__qualname__}")
        span.set_status(Status(StatusCode.ERROR, f"aborted: {why}"))
        span.end()

    def _transaction_span(
        self,
        transactional_id: str,
        client_id: str,
        details: TransactionCommitDetails | TransactionAbortDetails,
    ) -> Span | None:
        """The span of a transaction that just ended, from its begin, not yet ended."""
        with self._transactions_lock:
            ended = self._transactions.pop(transactional_id, None)
        if ended is None or ended.sequence != details.sequence:
            return None  # began before the hook listened
        outcome = "commit" if isinstance(details, TransactionCommitDetails) else "abort"
        attributes: dict[str, AttributeValue] = {
            MESSAGING_SYSTEM: "kafka",
            MESSAGING_CLIENT_ID: client_id,
            GOVERNED_KAFKA_TRANSACTIONAL_ID: transactional_id,
            GOVERNED_KAFKA_TRANSACTION_SEQUENCE: details.sequence,
            GOVERNED_KAFKA_TRANSACTION_RECORDS: details.records,
            GOVERNED_KAFKA_TRANSACTION_OUTCOME: outcome,
            GOVERNED_KAFKA_TRANSACTION_REASON: details.reason,
        }
        return self._tracer.start_span(
            f"transaction {transactional_id}",
            kind=SpanKind.INTERNAL,
            attributes=attributes,
            links=ended.links,
            start_time=ended.began_ns,
        )

    # ------------------------------------------------------------------ consumer side

    def on_process(self, details: ProcessDetails) -> _ProcessSpan | None:
        """A span around the handler, child of the context the record carries."""
        record = details.record
        parent = _propagate.extract(record.headers, getter=_GETTER)
        attributes: dict[str, AttributeValue] = {
            MESSAGING_SYSTEM: "kafka",
            MESSAGING_OPERATION_NAME: "process",
            MESSAGING_OPERATION_TYPE: "process",
            MESSAGING_DESTINATION_NAME: record.topic,
            MESSAGING_DESTINATION_PARTITION_ID: str(record.partition),
            MESSAGING_KAFKA_OFFSET: record.offset,
            MESSAGING_CONSUMER_GROUP_NAME: details.group_id,
            GOVERNED_KAFKA_ATTEMPT: details.attempt,
        }
        if details.client_id:
            attributes[MESSAGING_CLIENT_ID] = details.client_id
        key = _key_attribute(record.key if record.raw_key is None else record.raw_key)
        if key is not None:
            attributes[MESSAGING_KAFKA_MESSAGE_KEY] = key
        if record.raw_value is None:
            attributes[MESSAGING_KAFKA_MESSAGE_TOMBSTONE] = True
        else:
            attributes[MESSAGING_MESSAGE_BODY_SIZE] = len(record.raw_value)
        span = self._tracer.start_span(
            f"process {record.topic}",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes=attributes,
        )
        return _ProcessSpan.around(span)

    def on_process_batch(self, details: BatchDetails) -> _ProcessSpan | None:
        """One span around a batch handler, linked to the context of every record."""
        records = details.records
        topics = {r.topic for r in records}
        partitions = {(r.topic, r.partition) for r in records}
        attributes: dict[str, AttributeValue] = {
            MESSAGING_SYSTEM: "kafka",
            MESSAGING_OPERATION_NAME: "process",
            MESSAGING_OPERATION_TYPE: "process",
            MESSAGING_BATCH_MESSAGE_COUNT: len(records),
            MESSAGING_CONSUMER_GROUP_NAME: details.group_id,
        }
        if details.client_id:
            attributes[MESSAGING_CLIENT_ID] = details.client_id
        if len(topics) == 1:
            attributes[MESSAGING_DESTINATION_NAME] = next(iter(topics))
        if len(partitions) == 1:
            attributes[MESSAGING_DESTINATION_PARTITION_ID] = str(next(iter(partitions))[1])
        name = f"process {next(iter(topics))}" if len(topics) == 1 else "process"
        span = self._tracer.start_span(
            name, kind=SpanKind.CONSUMER, attributes=attributes, links=list(_links(records))
        )
        return _ProcessSpan.around(span)


def _links(records: Iterable[Any]) -> Iterable[Link]:
    for record in records:
        span_context = _trace.get_current_span(
            _propagate.extract(record.headers, getter=_GETTER)
        ).get_span_context()
        if span_context.is_valid:
            yield Link(
                span_context,
                attributes={
                    MESSAGING_DESTINATION_NAME: record.topic,
                    MESSAGING_DESTINATION_PARTITION_ID: str(record.partition),
                    MESSAGING_KAFKA_OFFSET: record.offset,
                },
            )


def _global_provider() -> object:
    return _trace.get_tracer_provider()
