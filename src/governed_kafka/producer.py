"""The governed producer: durable by construction, refusing what a contract forbids.

``GovernedProducer`` always runs with idempotence, ``acks=all``, at most five
requests in flight and the Java-compatible ``murmur2_random`` partitioner; an
override that would weaken any of these is refused at construction. Every send is
checked against the topic's contract before anything is queued: a refused send
raises and leaves the topic untouched.

Delivery reports are served without the caller ever polling: the sending thread
serves them in passing while it sends, and a background thread serves them when it
does not. ``send()`` returns a :class:`DeliveryFuture`; a full local queue blocks
the sender for at most ``max_block_s`` (backpressure) and then raises
:class:`~governed_kafka.errors.BackpressureTimeout`; nothing is dropped silently.
"""

from __future__ import annotations

import datetime
import functools
import itertools
import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal, cast

import attrs
import tenacity as _t

from . import _config, _kafka, cluster, profiles
from ._config import Overrides
from .avro import EVENT_TYPE_HEADER, AvroWriter, load_schema
from .compatibility import TIMESTAMP_UNITS, check_versions, mode_of, timestamp_field_problem
from .contracts import Catalog, TopicContract
from .errors import (
    BackpressureTimeout,
    ClosedError,
    ContractError,
    DeliveryError,
    GovernanceViolation,
    SerializationError,
)
from .hooks import (
    BackpressureDetails,
    DeliveryDetails,
    HookChain,
    SendDetails,
    _Observer,
)
from .policy import Compatibility
from .registry import LocalSchemaRegistry, SchemaRegistry, subject_name
from .skew import SkewPolicy, SkewReport, _SkewTracker

__all__ = [
    "DEFAULT_MAX_BLOCK_S",
    "DEFAULT_SKEW_POLICY",
    "DeliveryFuture",
    "GovernedProducer",
    "RecordMetadata",
]

_log = logging.getLogger("governed_kafka.producer")

#: How long ``send()`` may block on a full local queue before raising
#: ``BackpressureTimeout`` (seconds). The Java client's ``max.block.ms`` default.
DEFAULT_MAX_BLOCK_S: Final = 60.0

#: The sending thread serves delivery reports once every 64 sends.
_SERVE_MASK: Final = 63

#: The skew watch's default policy (see :mod:`governed_kafka.skew`).
DEFAULT_SKEW_POLICY: Final = SkewPolicy()

#: The background thread stays idle while the sending thread served reports this recently.
_FOREGROUND_WINDOW_S: Final = 0.002

#: Longest single wait of the background thread inside librdkafka's poll.
_POLL_SLICE_S: Final = 0.01

#: Bytes a record batch adds around one record (batch header and record framing).
_RECORD_OVERHEAD: Final = 90

#: How many failed deliveries nobody looked at are kept for ``close()`` to report ...
_MAX_KEPT_FAILURES: Final = 1000

#: ... and how many bytes of their keys at most (values are never kept).
_MAX_KEPT_FAILURE_BYTES: Final = 4 * 1024 * 1024

Headers = Mapping[str, str | bytes | None] | Sequence[tuple[str, str | bytes | None]]
_HeaderList = list[tuple[str, str | bytes | None]]


@attrs.frozen
class RecordMetadata:
    """Where a delivered record landed."""

    topic: str
    partition: int
    #: The record's offset, or ``None`` when the broker did not say. That happens when a
    #: retried batch was already written (its first acknowledgement was lost): the broker
    #: answers DUPLICATE_SEQUENCE_NUMBER, the record is in the log exactly once, and some
    #: brokers do not say at which offset. A wrong offset is never reported instead.
    offset: int | None
    #: Record timestamp in milliseconds since the epoch, or ``None`` if the broker sent none.
    timestamp: int | None
    #: Seconds from ``send()`` to the broker's acknowledgement, as librdkafka measured it.
    latency_s: float | None = None


# One lock for every future's slow paths (waiting, adding callbacks). Resolving a
# future never takes it: the resolver publishes the outcome, then looks for waiters;
# a waiter registers, then looks at the outcome; one of the two always sees the other.
_FUTURE_LOCK = threading.Lock()

_PENDING, _DELIVERED, _FAILED = 0, 1, 2


class _Waiters:
    """Who waits on a future: created only when someone does."""

    __slots__ = ("callbacks", "event")

    def __init__(self) -> None:
        self.callbacks: list[Callable[[DeliveryFuture], object]] = []
        self.event: threading.Event | None = None

    def fire(self, future: DeliveryFuture) -> None:
        event = self.event
        if event is not None:
            event.set()
        callbacks = self.callbacks
        while callbacks:
            try:
                callback = callbacks.pop(0)  # atomic: each callback runs exactly once
            except IndexError:
                return
            future._mark_observed()
            try:
                callback(future)
            except Exception:
                _log.exception("a DeliveryFuture done-callback raised; the delivery stands")


class DeliveryFuture:
    """The outcome of one ``send()``: :class:`RecordMetadata`, or a :class:`DeliveryError`.

    Shaped like :class:`concurrent.futures.Future` (``result``, ``exception``, ``done``,
    ``add_done_callback``). A send cannot be cancelled once librdkafka holds the record,
    so ``cancel()`` always returns ``False``. Done-callbacks run on whichever thread
    served the delivery report (the sending thread or the producer's background thread);
    they should be quick and must not block.
    """

    # _message, _error, _observed, _offset_unknown and _ticket are set only when there
    # is something to say. A failed record keeps no message: its value is released.
    __slots__ = (
        "_error",
        "_message",
        "_observed",
        "_offset_unknown",
        "_state",
        "_status",
        "_ticket",
        "_waiters",
    )

    _error: DeliveryError
    _message: _kafka.Message
    _observed: bool
    _offset_unknown: bool
    _ticket: int

    def __init__(self, state: _ProducerState) -> None:
        self._state = state
        self._status = _PENDING
        self._waiters: _Waiters | None = None

    def __call__(self, err: _kafka.KafkaError | None, msg: _kafka.Message) -> None:
        """librdkafka's delivery report for this record (runs on the thread that polled)."""
        if err is None:
            self._message = msg
            state = self._state
            if state.duplicate_acks.active or msg.offset() is None:
                self._offset_unknown = state.duplicate_acks.offset_unknown(msg)
            self._status = _DELIVERED
        else:
            self._error = _kafka.delivery_error(err, msg)
            self._state.note_failure(self)  # before the status: an observer may come at once
            self._status = _FAILED
        waiters = self._waiters
        if waiters is not None:
            waiters.fire(self)

    def _offset(self) -> int | None:
        """The delivered record's offset, ``None`` where the broker did not give it."""
        if getattr(self, "_offset_unknown", False):
            return None
        offset: int | None = self._message.offset()
        return offset

    def _mark_observed(self) -> None:
        """Someone looked at the outcome: a failure is theirs to report, not ``close()``'s."""
        if self._status == _FAILED and not getattr(self, "_observed", False):
            self._state.note_observed(self)

    def _register(self) -> _Waiters:
        with _FUTURE_LOCK:
            waiters = self._waiters
            if waiters is None:
                waiters = self._waiters = _Waiters()
            return waiters

    def done(self) -> bool:
        """Whether the delivery report arrived (delivered or failed)."""
        return self._status != _PENDING

    def running(self) -> bool:
        """Whether the record is still on its way."""
        return self._status == _PENDING

    def cancelled(self) -> bool:
        """Always ``False``: a record handed to librdkafka cannot be cancelled."""
        return False

    def cancel(self) -> bool:
        """Always ``False``: a record handed to librdkafka cannot be cancelled."""
        return False

    def _wait(self, timeout: float | None) -> None:
        if self._status != _PENDING:
            return
        waiters = self._register()
        with _FUTURE_LOCK:
            if waiters.event is None:
                waiters.event = threading.Event()
            event = waiters.event
        if self._status != _PENDING:
            return
        self._state.wake()
        if not event.wait(timeout):
            msg = f"no delivery report within {timeout} s; the record is still on its way"
            raise TimeoutError(msg)

    def result(self, timeout: float | None = None) -> RecordMetadata:
        """Wait for the delivery report; return where the record landed or raise its error.

        Raises :class:`DeliveryError` if the record was not delivered, and
        :class:`TimeoutError` if no report arrived within ``timeout`` seconds (the record
        may still be delivered later).
        """
        self._wait(timeout)
        self._mark_observed()
        if self._status == _FAILED:
            raise self._error
        msg = self._message
        timestamp_type, timestamp = msg.timestamp()
        return RecordMetadata(
            topic=msg.topic() or "",
            partition=msg.partition() or 0,
            offset=self._offset(),
            timestamp=timestamp if timestamp_type else None,
            latency_s=msg.latency(),
        )

    def exception(self, timeout: float | None = None) -> DeliveryError | None:
        """Wait for the delivery report; return its error, or ``None`` if delivered."""
        self._wait(timeout)
        self._mark_observed()
        return self._error if self._status == _FAILED else None

    def add_done_callback(self, fn: Callable[[DeliveryFuture], object]) -> None:
        """Call ``fn(future)`` once the delivery report arrives (at once if it has)."""
        waiters = self._register()
        waiters.callbacks.append(fn)
        if self._status != _PENDING:
            waiters.fire(self)  # the report may have come first; fire() runs each once

    def __repr__(self) -> str:
        status = {_PENDING: "pending", _DELIVERED: "delivered", _FAILED: "failed"}[self._status]
        return f"<DeliveryFuture {status}>"


class _SkewTicket:
    """Where a sampled send counts for the skew watch: its tracker, topic and window."""

    __slots__ = ("topic", "tracker", "window")

    def __init__(self, tracker: _SkewTracker, topic: str) -> None:
        self.tracker = tracker
        self.topic = topic
        self.window = tracker.sample(topic)

    def abandon(self) -> None:
        """The record was never queued: it counts nowhere."""
        self.tracker.failed(self.topic, self.window)

    def settle(self, err: _kafka.KafkaError | None, msg: _kafka.Message) -> None:
        try:
            if err is None:
                self.tracker.delivered(self.topic, self.window, msg.partition() or 0, msg.key())
            else:
                self.tracker.failed(self.topic, self.window)
        except Exception:  # pragma: no cover - counting must never cost a delivery
            _log.exception("counting a delivery for the skew watch failed; the delivery stands")


class _SampledDelivery(_SkewTicket):
    """A delivery callback that resolves the future, then counts the record for skew."""

    __slots__ = ("future",)

    def __init__(self, future: DeliveryFuture, tracker: _SkewTracker, topic: str) -> None:
        super().__init__(tracker, topic)
        self.future = future

    def __call__(self, err: _kafka.KafkaError | None, msg: _kafka.Message) -> None:
        self.future(err, msg)
        self.settle(err, msg)


def _not_queued(
    callback: Callable[[Any, Any], None], topic: str, key: bytes | None, error: Exception
) -> None:
    """A record was refused before librdkafka took it: settle what its callback awaited.

    No delivery report will come, so a skew ticket is settled as failed, and delivery
    observers (a send span) hear of the failure now.
    """
    if isinstance(callback, _SampledDelivery):
        callback.abandon()
    elif isinstance(callback, _ObservedDelivery):
        if callback.skew is not None:
            callback.skew.abandon()
        if callback.observers:
            failure = (
                error
                if isinstance(error, DeliveryError)
                else DeliveryError(
                    f"record for {topic!r} not queued: {error}",
                    topic=topic,
                    key=key,
                    code=type(error).__name__,
                )
            )
            details = DeliveryDetails(
                topic=topic,
                partition=None,
                offset=None,
                key=key,
                latency_s=None,
                error=failure,
                client_id=callback.client_id,
            )
            callback.hooks.observe(callback.observers, details)


class _ObservedDelivery:
    """A delivery callback that resolves the future, then tells the hooks."""

    __slots__ = ("client_id", "future", "hooks", "observers", "skew")

    def __init__(
        self,
        future: DeliveryFuture,
        observers: list[_Observer] | None,
        hooks: HookChain,
        client_id: str,
    ) -> None:
        self.future = future
        self.observers = observers
        self.hooks = hooks
        self.client_id = client_id
        self.skew: _SkewTicket | None = None

    def __call__(self, err: _kafka.KafkaError | None, msg: _kafka.Message) -> None:
        future = self.future
        future(err, msg)
        if self.skew is not None:
            self.skew.settle(err, msg)
        partition = msg.partition()
        raw_key: object = msg.key()
        details = DeliveryDetails(
            topic=msg.topic() or "",
            partition=partition if partition is not None and partition >= 0 else None,
            offset=future._offset() if err is None else None,
            key=raw_key.encode() if isinstance(raw_key, str) else cast("bytes | None", raw_key),
            latency_s=msg.latency(),
            error=future._error if err is not None else None,
            client_id=self.client_id,
        )
        if self.observers:
            self.hooks.observe(self.observers, details)
        if self.hooks.delivery:
            self.hooks.emit("on_delivery", details)


class _DuplicateAcks:
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

    def offset_unknown(self, msg: _kafka.Message) -> bool:
        """Whether ``msg``, just delivered, has no known offset (and follow the run)."""
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


class _ProducerState:
    """What the producer shares with its background thread (never the producer itself)."""

    def __init__(self) -> None:
        self.stopping = False
        self.last_foreground_serve = 0.0
        self.wakeup = threading.Event()
        #: Failures nobody looked at yet, oldest first, by ticket: at most
        #: _MAX_KEPT_FAILURES of them and _MAX_KEPT_FAILURE_BYTES of their keys.
        self.failures: dict[int, DeliveryError] = {}
        self._kept_bytes = 0
        self._tickets = itertools.count()
        self.failure_count = 0
        # Failures whose future somebody looked at, counted exactly: the kept list is
        # bounded, so it cannot say how many failures went unobserved in all.
        self.observed_failure_count = 0
        self.fatal: _kafka.KafkaError | None = None
        self.duplicate_acks = _DuplicateAcks()
        # Delivery reports are served by whichever thread polls, possibly two at once.
        self._count_lock = threading.Lock()

    def wake(self) -> None:
        """Make the background thread serve delivery reports now."""
        self.last_foreground_serve = 0.0
        self.wakeup.set()

    def note_failure(self, future: DeliveryFuture) -> None:
        error = future._error
        with self._count_lock:
            self.failure_count += 1
            ticket = future._ticket = next(self._tickets)
            self.failures[ticket] = error
            self._kept_bytes += len(error.key or b"")
            failures = self.failures
            while failures and (
                len(failures) > _MAX_KEPT_FAILURES or self._kept_bytes > _MAX_KEPT_FAILURE_BYTES
            ):
                oldest = failures.pop(next(iter(failures)))
                self._kept_bytes -= len(oldest.key or b"")

    def note_observed(self, future: DeliveryFuture) -> None:
        with self._count_lock:
            if not getattr(future, "_observed", False):
                future._observed = True
                self.observed_failure_count += 1
                kept = self.failures.pop(getattr(future, "_ticket", -1), None)
                if kept is not None:
                    self._kept_bytes -= len(kept.key or b"")

    def take_unobserved_failures(self) -> tuple[int, list[DeliveryError]]:
        """How many failures nobody looked at, and the most recent of them, no longer kept."""
        with self._count_lock:
            count = self.failure_count - self.observed_failure_count
            kept = list(self.failures.values())
            self.failures.clear()
            self._kept_bytes = 0
        return count, kept


def _serve_in_background(client: _kafka.Producer, state: _ProducerState) -> None:
    """Serve delivery reports whenever the sending thread is not doing it."""
    while not state.stopping:
        if time.monotonic() - state.last_foreground_serve < _FOREGROUND_WINDOW_S:
            state.wakeup.wait(_FOREGROUND_WINDOW_S)
            state.wakeup.clear()
            continue
        try:
            client.poll(_POLL_SLICE_S)
        except Exception:  # pragma: no cover - a callback's error must not kill delivery
            _log.exception("serving delivery reports raised; continuing")


def _stop_background(state: _ProducerState, thread: threading.Thread) -> None:
    state.stopping = True
    state.wakeup.set()
    if thread is not threading.current_thread():
        thread.join(timeout=5)


class _Route:
    """A topic this producer may write to, with its contract's checks made ready."""

    __slots__ = (
        "codec",
        "compacted",
        "contract",
        "key_forbidden",
        "key_required",
        "max_bytes",
        "topic",
    )

    def __init__(self, contract: TopicContract, codec: _AvroCodec | None = None) -> None:
        self.contract = contract
        self.topic = contract.name
        self.compacted = contract.is_compacted
        self.key_required = contract.key == "required" or self.compacted
        self.key_forbidden = contract.key == "forbidden"
        #: How values (and keys) are checked and encoded; ``None`` for raw-bytes topics.
        self.codec = codec
        #: The topic's ``max.message.bytes`` when the contract pins it.
        self.max_bytes: int | None = None
        pinned = dict(contract.configs).get("max.message.bytes")
        if pinned is not None and pinned.isdigit():
            self.max_bytes = int(pinned)

    def check_size(
        self, key: bytes | None, value: bytes | None, headers: _HeaderList | None
    ) -> None:
        """Refuse a record the broker would reject as larger than ``max.message.bytes``."""
        assert self.max_bytes is not None
        size = _RECORD_OVERHEAD + len(key or b"") + len(value or b"")
        for name, raw in headers or ():
            size += len(name) + len(raw or b"")
        if size > self.max_bytes:
            msg = (
                f"record for topic {self.topic!r} is about {size} bytes as a batch, above the "
                f"topic's max.message.bytes ({self.max_bytes}) in its contract: the broker "
                "would reject it; nothing was sent"
            )
            raise GovernanceViolation(
                msg, rule="message.too-large", topic=self.topic, field="value", value=size
            )

    def key(self, key: object) -> bytes | None:
        if key is None:
            if self.key_required:
                raise self._missing_key()
            return None
        if self.key_forbidden:
            msg = (
                f"topic {self.topic!r} forbids keys (contract key = 'forbidden'); send without key="
            )
            raise GovernanceViolation(
                msg, rule="key.forbidden", topic=self.topic, field="key", value=key
            )
        if type(key) is bytes:
            return key
        if isinstance(key, str):
            try:
                return key.encode()
            except UnicodeEncodeError:
                raise _not_utf8(key, self.topic, "key", "the key") from None
        if isinstance(key, (bytearray, memoryview)):
            return bytes(key)
        msg = (
            f"key for topic {self.topic!r} must be bytes or str, got {type(key).__name__}; "
            "encode it explicitly so every producer of the topic hashes the same bytes"
        )
        raise SerializationError(msg, topic=self.topic, field="key", value=key)

    def _missing_key(self) -> GovernanceViolation:
        if self.compacted:
            why = (
                f"topic {self.topic!r} is compacted ({self.contract.cleanup_policy}): "
                "a keyless record can never be compacted or deleted"
            )
        else:
            why = f"topic {self.topic!r} requires a key (contract key = 'required')"
        return GovernanceViolation(
            f"{why}; pass key=", rule="key.required", topic=self.topic, field="key"
        )

    def value(self, value: object) -> bytes | None:
        if type(value) is bytes:
            return value
        if isinstance(value, str):
            try:
                return value.encode()
            except UnicodeEncodeError:
                raise _not_utf8(value, self.topic, None, "the value") from None
        if value is None:
            if self.compacted:
                return None
            msg = (
                f"topic {self.topic!r} is not compacted (cleanup_policy = "
                f"{self.contract.cleanup_policy!r}): a tombstone (value None) deletes nothing there"
            )
            raise GovernanceViolation(
                msg, rule="tombstone.not-compacted", topic=self.topic, field="value"
            )
        if isinstance(value, (bytearray, memoryview)):
            return bytes(value)
        msg = (
            f"topic {self.topic!r} carries raw bytes (its contract has no value_schema): "
            f"send bytes or str, not {type(value).__name__}"
        )
        raise SerializationError(msg, topic=self.topic, field=None, value=value)


_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
_ONE_MS = datetime.timedelta(milliseconds=1)


class _AvroCodec:
    """A schema topic's checks: value (and key) writers, allowed event types, event time."""

    __slots__ = (
        "allowed",
        "event_headers",
        "key_writer",
        "timestamp_default",
        "timestamp_field",
        "timestamp_scale",
        "topic",
        "value_writer",
    )

    def __init__(
        self,
        contract: TopicContract,
        *,
        value_writer: AvroWriter | None,
        key_writer: AvroWriter | None,
    ) -> None:
        self.topic = contract.name
        self.value_writer = value_writer
        self.key_writer = key_writer
        self.allowed = frozenset(contract.event_types) if contract.event_types else None
        self.event_headers: dict[str, bytes] = {}
        self.timestamp_field = None if value_writer is None else contract.timestamp_field
        self.timestamp_scale = 1.0
        self.timestamp_default: object = None
        if value_writer is None:
            return
        schema = value_writer.schema
        self.event_headers = {name: name.encode() for name in schema.event_types}
        if self.timestamp_field is not None:
            record = schema.record(schema.event_types[0])
            field = next(f for f in record["fields"] if f["name"] == self.timestamp_field)
            logical = field["type"].get("logicalType") if isinstance(field["type"], dict) else None
            self.timestamp_scale = TIMESTAMP_UNITS[logical]
            self.timestamp_default = field.get("default")

    def key(self, route: _Route, key: object) -> bytes | None:
        if key is None or self.key_writer is None:
            return route.key(key)
        if route.key_forbidden:
            route.key(key)  # raises
        return self.key_writer.encode(key)

    def value(self, value: object) -> tuple[bytes, str | None, int]:
        """Check and encode ``value``; return its bytes, event type and timestamp (0: now)."""
        assert self.value_writer is not None
        data, event_type = self.value_writer.encode_event(value)
        allowed = self.allowed
        if allowed is not None and event_type not in allowed:
            listed = ", ".join(sorted(allowed))
            msg = (
                f"topic {self.topic!r} does not allow event type {event_type!r} "
                f"(contract event_types: {listed}); nothing was sent"
            )
            raise GovernanceViolation(
                msg,
                rule="event-type.not-allowed",
                topic=self.topic,
                field="event_types",
                value=event_type,
            )
        if self.timestamp_field is None:
            return data, event_type, 0
        return data, event_type, self._timestamp(value)

    def _timestamp(self, value: object) -> int:
        field = self.timestamp_field
        assert field is not None
        raw = cast("dict[str, object]", value).get(field, self.timestamp_default)
        if isinstance(raw, datetime.datetime):
            aware = raw if raw.tzinfo is not None else raw.replace(tzinfo=datetime.timezone.utc)
            millis = (aware - _EPOCH) // _ONE_MS
        else:
            millis = int(cast(int, raw) * self.timestamp_scale)
        if millis <= 0:
            msg = (
                f"topic {self.topic!r}: event time {field!r} = {raw!r} is not after "
                "1970-01-01T00:00:00Z, so it cannot be a Kafka record timestamp; nothing was sent"
            )
            raise SerializationError(msg, topic=self.topic, field=field, value=raw)
        return millis


def _writer(
    contract: TopicContract,
    *,
    role: Literal["value", "key"],
    path: Path,
    versions: tuple[Path, ...],
    registry: SchemaRegistry,
    policy_mode: Compatibility,
    auto_register: bool,
) -> AvroWriter:
    """Resolve a topic's current schema at construction: check it, find (or register) its id."""
    key = f"{role}_schema"
    current = load_schema(path, topic=contract.name, key=key)
    for earlier in versions[:-1]:
        load_schema(earlier, topic=contract.name, key=key)  # every listed version must parse
    subject = subject_name(contract.name, role)
    registered = registry.versions(subject)
    # Versions registered after the current one (a newer deploy) are not its to judge.
    if current in registered:
        registered = registered[: registered.index(current)]
    problems = check_versions(current, registered, policy_mode)
    if problems:
        shown = "\n  ".join(str(p) for p in problems)
        first = problems[0]
        msg = (
            f"topic {contract.name!r}: schema {current} is not {policy_mode} compatible with "
            f"the registered versions of subject {subject!r}; the producer was not started:\n  "
            f"{shown}"
        )
        raise GovernanceViolation(
            msg,
            rule="schema.compatibility",
            topic=contract.name,
            field=first.field or key,
            value=policy_mode,
        )
    schema_id = registry.lookup(subject, current)
    if schema_id is None:
        if not auto_register:
            msg = (
                f"topic {contract.name!r}: schema {current} is not registered under subject "
                f"{subject!r} in {registry!r}; register it first (governed-kafka apply), or "
                "opt in with GovernedProducer(..., auto_register=True)"
            )
            raise GovernanceViolation(
                msg, rule="schema.not-registered", topic=contract.name, field=key, value=subject
            )
        schema_id = registry.register(subject, current)
    return AvroWriter(current, schema_id, topic=contract.name, role=role)


def _codec(
    contract: TopicContract,
    *,
    registry: SchemaRegistry,
    mode: Compatibility,
    auto_register: bool,
    catalog_path: Path,
) -> _AvroCodec | None:
    """The checks of a schema topic, or ``None`` for a raw-bytes topic."""
    current = contract.current_value_schema
    if current is None and contract.key_schema is None:
        return None
    common: dict[str, Any] = {
        "registry": registry,
        "policy_mode": mode,
        "auto_register": auto_register,
    }
    value_writer = None
    if current is not None:
        value_writer = _writer(
            contract, role="value", path=current, versions=contract.value_schema, **common
        )
    key_writer = None
    if contract.key_schema is not None:
        key_writer = _writer(
            contract,
            role="key",
            path=contract.key_schema,
            versions=(contract.key_schema,),
            **common,
        )
    if contract.timestamp_field is not None and value_writer is not None:
        problem = timestamp_field_problem(value_writer.schema, contract.timestamp_field)
        if problem is not None:
            msg = f"{catalog_path}: topic {contract.name!r}: key 'timestamp_field': {problem}"
            raise ContractError(
                msg, path=str(catalog_path), topic=contract.name, key="timestamp_field"
            )
    return _AvroCodec(contract, value_writer=value_writer, key_writer=key_writer)


def _not_utf8(text: str, topic: str, field: str | None, what: str) -> SerializationError:
    """The refusal of a str that cannot be UTF-8 (it holds a lone surrogate)."""
    msg = (
        f"{what} for topic {topic!r} is a str that cannot be UTF-8 (it holds a lone "
        "surrogate); nothing was sent"
    )
    return SerializationError(msg, topic=topic, field=field, value=text)


def _header_name(topic: str, name: object) -> str:
    """Check a header name before librdkafka sees it: a non-empty str, UTF-8, without NUL.

    librdkafka takes names as C strings: a NUL would silently cut the name (so that
    ``"event-type\x00"`` arrived as ``event-type``), and confluent-kafka crashes the
    process on a name that cannot be UTF-8.
    """
    if not isinstance(name, str) or not name:
        msg = f"header names are non-empty str, got {name!r} (topic {topic!r})"
        raise SerializationError(msg, topic=topic, field="headers", value=name)
    if not name.isascii():
        try:
            name.encode()
        except UnicodeEncodeError:
            msg = (
                f"header name {name!r} for topic {topic!r} cannot be UTF-8 (it holds a lone "
                "surrogate); nothing was sent"
            )
            raise SerializationError(
                msg, topic=topic, field=f"headers[{name!r}]", value=name
            ) from None
    if "\x00" in name:
        msg = (
            f"header name {name!r} for topic {topic!r} holds NUL, where librdkafka would cut "
            "the name short; nothing was sent"
        )
        raise SerializationError(msg, topic=topic, field=f"headers[{name!r}]", value=name)
    return name


def _sendable_header_name(name: object) -> bool:
    """Whether ``send()`` takes ``name`` as a header name (records of other clients may
    carry names it does not, such as an empty one)."""
    try:
        _header_name("", name)
    except SerializationError:
        return False
    return True


def _headers(topic: str, headers: Headers | None) -> _HeaderList | None:
    """Headers as librdkafka takes them, every name and value checked first.

    ``field`` of a refusal is ``headers.NAME`` for a bad value, ``headers['NAME']`` for a
    bad name, ``headers`` when the headers as a whole are malformed.
    """
    if headers is None:
        return None
    try:
        items: Iterable[Any] = headers.items() if isinstance(headers, Mapping) else iter(headers)
    except TypeError:
        msg = (
            f"headers for {topic!r} must be a mapping or (name, value) pairs, "
            f"got {type(headers).__name__}"
        )
        raise SerializationError(msg, topic=topic, field="headers", value=headers) from None
    result: _HeaderList = []
    for item in items:
        if not (isinstance(item, tuple) and len(item) == 2):
            msg = f"headers for {topic!r} must be a mapping or (name, value) pairs, got {item!r}"
            raise SerializationError(msg, topic=topic, field="headers", value=item)
        name, raw = item
        name = _header_name(topic, name)
        value: bytes | None
        if raw is None or type(raw) is bytes:
            value = raw
        elif isinstance(raw, str):
            try:
                value = raw.encode()
            except UnicodeEncodeError:
                raise _not_utf8(raw, topic, f"headers.{name}", f"header {name!r}") from None
        elif isinstance(raw, (bytearray, memoryview)):
            value = bytes(raw)
        else:
            msg = (
                f"header {name!r} for topic {topic!r} must be bytes, str or None, "
                f"got {type(raw).__name__}"
            )
            raise SerializationError(msg, topic=topic, field=f"headers.{name}", value=raw)
        result.append((name, value))
    return result


class GovernedProducer:
    """Send records to governed topics with durability and contracts enforced.

    :param catalog: the loaded contracts.
    :param service: this service's name; it must be a listed producer of every topic
        it sends to. Also the default ``client.id``.
    :param bootstrap_servers: ``"host:port,host:port"`` or a list of them.
    :param profile: batching, linger, compression and queue sizes
        (:mod:`governed_kafka.profiles`); never durability.
    :param hooks: observers of sends, deliveries, backpressure, throttling
        (:mod:`governed_kafka.hooks`).
    :param overrides: further librdkafka settings (TLS, SASL, timeouts, ...). Unknown
        keys, consumer keys, keys the library owns and anything that weakens a governed
        setting raise :class:`~governed_kafka.errors.ConfigError` naming the key.
    :param max_block_s: how long ``send()`` may wait for room in a full local queue.
    :param registry: where schema ids come from (:mod:`governed_kafka.registry`); by
        default a :class:`~governed_kafka.registry.LocalSchemaRegistry` built from the
        catalog. Every schema topic's current schema is looked up and checked against
        the registered versions under the topic's compatibility mode here, at
        construction: an incompatible or unregistered schema raises
        :class:`~governed_kafka.errors.GovernanceViolation` before anything is sent.
    :param auto_register: register a current schema the registry does not have instead
        of refusing it. Off by default: registration is a deployment step (``apply``).
    :param verify_topics: check at construction, before any traffic, that every topic this
        service may produce to exists on the cluster and matches its contract
        (partitions, cleanup policy, min ISR); a mismatch raises
        :class:`~governed_kafka.errors.GovernanceViolation` (``topic.missing``,
        ``topic.drift``). ``None`` follows :attr:`Catalog.verify_topics
        <governed_kafka.contracts.Catalog.verify_topics>`: on, except in the ``local``
        environment, unless the policy says otherwise.
    :param skew: how to watch for partition skew and hot keys
        (:class:`~governed_kafka.skew.SkewPolicy`); ``None`` turns the watch off.
    """

    def __init__(
        self,
        catalog: Catalog,
        *,
        service: str,
        bootstrap_servers: str | list[str] | tuple[str, ...],
        profile: profiles.Profile = profiles.DURABLE,
        hooks: Sequence[object] = (),
        overrides: Overrides | None = None,
        max_block_s: float = DEFAULT_MAX_BLOCK_S,
        registry: SchemaRegistry | None = None,
        auto_register: bool = False,
        verify_topics: bool | None = None,
        skew: SkewPolicy | None = DEFAULT_SKEW_POLICY,
    ) -> None:
        if not isinstance(service, str) or not service.strip():
            msg = f"service must be a non-empty name, got {service!r}"
            raise ValueError(msg)
        if not isinstance(cast(object, profile), profiles.Profile):
            msg = f"profile must be a governed_kafka.profiles.Profile, got {profile!r}"
            raise TypeError(msg)
        if max_block_s < 0:
            msg = f"max_block_s must be >= 0, got {max_block_s!r}"
            raise ValueError(msg)
        if skew is not None and not isinstance(cast(object, skew), SkewPolicy):
            msg = f"skew must be a governed_kafka.skew.SkewPolicy or None, got {skew!r}"
            raise TypeError(msg)
        self.catalog = catalog
        self.service = service
        self.profile = profile
        self.max_block_s = max_block_s
        self._config = _config.producer_config(
            bootstrap_servers=bootstrap_servers,
            client_id=service,
            profile=profile,
            overrides=overrides,
        )
        produced = catalog.produced_by(service)
        if registry is None and any(c.value_schema or c.key_schema for c in produced):
            registry = LocalSchemaRegistry.from_catalog(catalog)
        #: Where schema ids come from (``None`` when no topic of this producer has a schema).
        self.registry = registry
        self.auto_register = auto_register
        self._routes = self._build_routes(produced)
        self.client_id = str(self._config["client.id"])
        #: Routes whose rights on the cluster are checked at their first send: a
        #: service with a principal whose topics were not verified at construction.
        self._unchecked: dict[str, _Route] = {}
        if self._routes and (catalog.verify_topics if verify_topics is None else verify_topics):
            live = cluster.Cluster._from_client_config(self._config, cluster.DEFAULT_TIMEOUT_S)
            if catalog.service(service) is not None:
                # First: without rights, the topics would look missing or unreadable.
                live.verify_access(catalog, service=service, writes=self._routes)
            live.verify(catalog, self._routes)
        elif catalog.service(service) is not None:
            # Off the hot path: send() finds no route, and _refusal() checks, then routes.
            self._unchecked, self._routes = self._routes, {}
        self._hooks = HookChain(hooks)
        self._send_gate = self._hooks.send_gate
        #: Whether sends are observed: re-decided every few sends when hooks can say no.
        self._observing = self._hooks.delivery or (self._hooks.send and self._sends_wanted())
        self._watch_skew(skew)
        self._state = _ProducerState()
        self._client = _kafka.new_producer(
            self._config,
            on_fatal=self._on_fatal,
            **self._hooks.client_callbacks(client_id=self.client_id, role="producer"),
        )
        self._produce = self._client.produce
        self._sends = 0
        self._closed = False
        self._close_lock = threading.Lock()
        self._thread = threading.Thread(
            target=_serve_in_background,
            args=(self._client, self._state),
            name=f"governed-kafka-producer[{service}]",
            daemon=True,
        )
        self._thread.start()
        self._finalizer = weakref.finalize(self, _stop_background, self._state, self._thread)

    def _build_routes(self, produced: Sequence[TopicContract]) -> dict[str, _Route]:
        """A route per topic this service may write, schemas resolved and checked now."""
        routes: dict[str, _Route] = {}
        for contract in produced:
            codec = None
            if self.registry is not None:
                codec = _codec(
                    contract,
                    registry=self.registry,
                    mode=mode_of(contract, self.catalog.policy),
                    auto_register=self.auto_register,
                    catalog_path=self.catalog.path,
                )
            routes[contract.name] = _Route(contract, codec)
        return routes

    def _watch_skew(self, skew: SkewPolicy | None) -> None:
        self._skew: _SkewTracker | None = None
        #: Sends whose number has none of these bits set are "ticks": sampled for skew
        #: and/or serving delivery reports. One bit test per send decides.
        self._tick_mask = _SERVE_MASK
        self._sample_mask = 0
        if skew is not None:
            alarm = functools.partial(self._hooks.emit, "on_skew") if self._hooks.skew else None
            self._skew = _SkewTracker(
                skew,
                partitions={name: r.contract.partitions for name, r in self._routes.items()},
                on_skew=alarm,
            )
            self._sample_mask = skew.sample_every - 1
            self._tick_mask = min(self._sample_mask, _SERVE_MASK)

    def _on_fatal(self, err: _kafka.KafkaError) -> None:
        self._state.fatal = err

    @property
    def config(self) -> dict[str, str | int | float | bool]:
        """The librdkafka configuration in force (governed keys included).

        The value of every secret-bearing key (passwords, keys, tokens) reads
        ``"[redacted]"``.
        """
        return _config.redacted(self._config)

    @property
    def hook_failures(self) -> int:
        """How many times this producer's hooks raised (each failure was contained)."""
        return self._hooks.hook_failures()

    # ------------------------------------------------------------------ sending

    def send(
        self,
        topic: str,
        value: object,
        *,
        key: object = None,
        headers: Headers | None = None,
    ) -> DeliveryFuture:
        """Queue one record for ``topic``; return a future of its delivery.

        Refused before anything is queued, with :class:`GovernanceViolation`, when the
        topic has no contract, this service is not one of its producers, a required key
        is missing, a key is given on a ``forbidden`` topic, or ``value`` is ``None``
        (a tombstone) on a topic that is not compacted. A value or key of the wrong type
        raises :class:`SerializationError`.
        """
        route = self._routes.get(topic)
        if route is None:
            route = self._route_now(topic)
        codec = route.codec
        timestamp = 0
        event_type = None
        if codec is None:
            if type(key) is not bytes or route.key_forbidden:
                key = route.key(key)
            if type(value) is not bytes:
                value = route.value(value)
            header_list = None if headers is None else _headers(topic, headers)
        else:
            key, value, event_type, timestamp, header_list = self._encode(
                route, codec, key, value, headers
            )
        if route.max_bytes is not None:
            route.check_size(key, value, header_list)
        future = DeliveryFuture(self._state)
        callback: Callable[[Any, Any], None] = future
        if self._observing:
            callback, header_list = self._observe(
                route, key, value, header_list, future, event_type=event_type
            )
        sends = self._sends = self._sends + 1
        if not sends & self._tick_mask:
            callback = self._tick(sends, topic, callback)
        try:
            try:
                self._produce(topic, value, key, -1, callback, None, timestamp, header_list)
            except BufferError:
                self._produce_when_room(
                    topic, value, key, callback, header_list, timestamp=timestamp
                )
            except _kafka.KafkaException as exc:
                raise self._produce_error(exc, topic, key) from exc
        except Exception as refused:
            if callback is not future:
                _not_queued(callback, topic, key, refused)
            raise
        return future

    def _tick(
        self, sends: int, topic: str, callback: Callable[[Any, Any], None]
    ) -> Callable[[Any, Any], None]:
        """Every few sends: serve delivery reports, ask idle hooks again, sample for skew."""
        if not sends & _SERVE_MASK:
            self._client.poll(0)
            self._state.last_foreground_serve = time.monotonic()
            if self._send_gate is not None:
                self._observing = self._sends_wanted()
        skew = self._skew
        if skew is None or sends & self._sample_mask:
            return callback
        if isinstance(callback, DeliveryFuture):
            return _SampledDelivery(callback, skew, topic)
        if isinstance(callback, _ObservedDelivery):
            callback.skew = _SkewTicket(skew, topic)
        return callback

    def _sends_wanted(self) -> bool:
        """Ask the send hooks whether the coming sends need them (``wants_send``)."""
        gate = self._send_gate
        if gate is None:
            return True
        try:
            return gate()
        except Exception:
            return self._hooks.gate_failed()

    def skew(self) -> SkewReport:
        """Partition skew and hot keys of the recent sends, per topic (see :mod:`~.skew`)."""
        if self._skew is None:
            return SkewReport(policy=None)
        return self._skew.report()

    def _encode(
        self,
        route: _Route,
        codec: _AvroCodec,
        key: object,
        value: object,
        headers: Headers | None,
    ) -> tuple[bytes | None, bytes | None, str | None, int, _HeaderList | None]:
        """Check and encode a schema topic's record: key, value, event type, time, headers."""
        topic = route.topic
        encoded_key = codec.key(route, key)
        header_list = None if headers is None else _headers(topic, headers)
        if header_list and any(name == EVENT_TYPE_HEADER for name, _ in header_list):
            msg = (
                f"header {EVENT_TYPE_HEADER!r} for topic {topic!r} is set by the producer "
                "from the value's schema; do not pass it"
            )
            raise SerializationError(
                msg, topic=topic, field=f"headers.{EVENT_TYPE_HEADER}", value=headers
            )
        if value is None or codec.value_writer is None:
            return encoded_key, route.value(value), None, 0, header_list
        data, event_type, timestamp = codec.value(value)
        if event_type is not None:
            header = (EVENT_TYPE_HEADER, codec.event_headers[event_type])
            header_list = [*header_list, header] if header_list else [header]
        return encoded_key, data, event_type, timestamp, header_list

    def _observe(
        self,
        route: _Route,
        key: bytes | None,
        value: bytes | None,
        header_list: _HeaderList | None,
        future: DeliveryFuture,
        *,
        event_type: str | None,
    ) -> tuple[Callable[[Any, Any], None], _HeaderList | None]:
        """Run the send hooks; return the delivery callback and the headers to send."""
        observers = None
        if self._hooks.send:
            header_list = header_list if header_list is not None else []
            details = SendDetails(
                topic=route.topic,
                key=key,
                value_size=0 if value is None else len(value),
                headers=header_list,
                client_id=self.client_id,
                event_type=event_type,
                tombstone=value is None,
            )
            observers = self._hooks.observers(details)
        if observers or self._hooks.delivery:
            return _ObservedDelivery(future, observers, self._hooks, self.client_id), (
                header_list or None
            )
        return future, header_list or None

    def send_and_wait(
        self,
        topic: str,
        value: object,
        *,
        key: object = None,
        headers: Headers | None = None,
        timeout: float | None = None,
    ) -> RecordMetadata:
        """Send one record and wait for its delivery; raise :class:`DeliveryError` if it failed."""
        return self.send(topic, value, key=key, headers=headers).result(timeout)

    def _refusal(self, topic: str) -> Exception:
        if self._closed:
            return ClosedError(f"producer for service {self.service!r} is closed")
        contract = self.catalog.topic(topic)  # raises for a topic without contract
        listed = ", ".join(contract.producers) or "nobody"
        msg = (
            f"service {self.service!r} is not a producer of topic {topic!r} "
            f"(contract producers: {listed})"
        )
        return GovernanceViolation(
            msg, rule="producer.not-listed", topic=topic, field="producers", value=self.service
        )

    def _route_now(self, topic: str) -> _Route:
        """The route of a topic :meth:`send` did not find: refused, or, at the first send
        to it of a service with a principal whose rights were not checked at
        construction, checked now (:class:`AccessDenied` when the cluster does not grant
        WRITE) and routed like the others from then on."""
        route = self._unchecked.get(topic)
        if route is None or self._closed:
            raise self._refusal(topic)
        live = cluster.Cluster._from_client_config(self._config, cluster.DEFAULT_TIMEOUT_S)
        live.verify_access(self.catalog, service=self.service, writes=[topic])
        self._routes[topic] = self._unchecked.pop(topic)
        return route

    def _produce_when_room(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None,
        callback: Callable[[Any, Any], None],
        headers: _HeaderList | None,
        *,
        timestamp: int = 0,
    ) -> None:
        """The local queue is full: serve delivery reports until there is room, or time out."""
        started = time.monotonic()
        self._queue_full(topic)
        retrying = _t.Retrying(
            retry=_t.retry_if_exception_type(BufferError),
            stop=_t.stop_after_delay(self.max_block_s),
            wait=_t.wait_exponential(multiplier=0.001, max=0.1),
            sleep=self._serve_for,  # waiting serves reports, which is what frees the queue
            reraise=False,
        )
        try:
            for attempt in retrying:
                with attempt:
                    self._produce(topic, value, key, -1, callback, None, timestamp, headers)
        except _t.RetryError:
            raise self._backpressure_timeout(topic, time.monotonic() - started) from None
        except _kafka.KafkaException as exc:
            raise self._produce_error(exc, topic, key) from exc

    def _queue_full(self, topic: str) -> None:
        """Tell the hooks that a record for ``topic`` found the local queue full."""
        if self._hooks.backpressure:
            self._hooks.emit(
                "on_backpressure",
                BackpressureDetails(
                    kind="queue-full",
                    in_flight=len(self._client),
                    limit=self.profile.queue_max_messages,
                    topic=topic,
                ),
            )

    def _backpressure_timeout(self, topic: str, waited: float) -> BackpressureTimeout:
        """The refusal of a record that waited ``waited`` seconds for room in vain."""
        msg = (
            f"local queue full for {waited:.1f} s (max_block_s={self.max_block_s}): "
            f"record for {topic!r} not accepted; the broker is not keeping up or is "
            f"unreachable (queue limit: {self.profile.queue_max_messages} records)"
        )
        return BackpressureTimeout(msg, topic=topic, waited_s=waited)

    def _serve_for(self, seconds: float) -> None:
        self._client.poll(seconds)

    def _produce_error(
        self, exc: _kafka.KafkaException, topic: str, key: bytes | None
    ) -> DeliveryError:
        err = exc.args[0]
        error = _kafka.delivery_error(err, None)
        message = f"record for {topic!r} refused by the client: {err.name()}: {err.str()}"
        return DeliveryError(
            message,
            topic=topic,
            key=key,
            code=error.code,
            retriable=error.retriable,
            fatal=error.fatal,
        )

    # ------------------------------------------------------------------ lifecycle

    def flush(self, timeout: float | None = None) -> int:
        """Wait until every queued record is delivered or failed; return how many remain."""
        remaining: int = self._client.flush(-1 if timeout is None else timeout)
        self._state.last_foreground_serve = time.monotonic()
        return remaining

    def close(self, timeout: float | None = None) -> None:
        """Deliver what was accepted, then release the producer.

        Waits up to ``timeout`` seconds (default: until librdkafka's
        ``delivery.timeout.ms`` has settled every record). Records still queued after
        that are purged and their futures fail. Raises :class:`DeliveryError` counting
        every record that was not delivered and whose future nobody looked at (its
        ``failures`` lists the most recent of them: at most 1000, holding at most 4 MiB
        of keys; no values are kept); the failures of futures that were looked at are
        theirs to report.
        """
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
            self._routes = {}
            remaining = self.flush(timeout)
            if remaining:
                _log.warning(
                    "close(): %d records not delivered within %s s; purging them",
                    remaining,
                    timeout,
                )
                self._client.purge(in_queue=True, in_flight=True, blocking=False)
                self._client.flush(5)
            self._finalizer()
            self._client.close()
        unobserved, failures = self._state.take_unobserved_failures()
        if unobserved:
            lost = self._state.failure_count
            shown = "\n  ".join(str(f) for f in failures[:10])
            more = f"\n  ... and {unobserved - 10} more" if unobserved > 10 else ""
            kept = (
                f"; the last {len(failures)} are in .failures" if len(failures) < unobserved else ""
            )
            msg = (
                f"{unobserved} accepted records were not delivered and nobody checked "
                f"their futures ({lost} failed in all{kept}):\n  {shown}{more}"
            )
            first = failures[0] if failures else None
            raise DeliveryError(
                msg,
                topic=first.topic if first else None,
                code=first.code if first else None,
                failures=failures,
            )

    def __enter__(self) -> GovernedProducer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.close()
            return
        # Do not mask the error that ended the block; report undelivered records in the log.
        try:
            self.close()
        except DeliveryError as undelivered:
            _log.error("while handling %r: %s", exc, undelivered)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (
            f"<GovernedProducer service={self.service!r} profile={self.profile.name!r} "
            f"topics={sorted(self._routes) if not self._closed else []} {state}>"
        )
