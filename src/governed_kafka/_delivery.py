"""Delivery futures, the one delivery callback, and the serving of delivery reports.

``send()`` returns a :class:`DeliveryFuture`. The object behind it is a
:class:`Delivery`, the one delivery callback librdkafka gets for the record: the report
resolves the future, then tells whatever else waits for it (its :class:`Watch`: a skew
sample, the delivery hooks and the send hooks' observers). A record refused before
librdkafka took it settles its watch through :func:`not_queued`.

Reports are served without the caller ever polling: the sending thread serves them in
passing, and the producer's background thread (:func:`serve_in_background`) whenever
the sending thread does not. :class:`ProducerState` is what the two share.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar, Final

import attrs

from . import _kafka
from .errors import DeliveryError
from .hooks import DeliveryDetails, HookChain, Observers

if TYPE_CHECKING:
    from .skew import _SkewTracker, _Window

__all__ = [
    "Delivery",
    "DeliveryFuture",
    "ProducerState",
    "RecordMetadata",
    "Watch",
    "deliveries_of",
    "not_queued",
    "serve_in_background",
    "stop_background",
]

_log = logging.getLogger("governed_kafka.producer")

#: The background thread stays idle while the sending thread served reports this recently.
_FOREGROUND_WINDOW_S: Final = 0.002

#: Longest single wait of the background thread inside librdkafka's poll.
_POLL_SLICE_S: Final = 0.01

#: How many failed deliveries nobody looked at are kept for ``close()`` to report ...
_MAX_KEPT_FAILURES: Final = 1000

#: ... and how many bytes of their keys at most (values are never kept).
_MAX_KEPT_FAILURE_BYTES: Final = 4 * 1024 * 1024

#: How many failed records of one transaction its failed commit names, at most.
_MAX_TRANSACTION_FAILURES: Final = 10


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


class _Then:
    """What waits for a future besides its caller: made only when something does.

    Done-callbacks and an event for :meth:`DeliveryFuture.result` (who waits), and the
    record's :class:`Watch` (what else the report is for).
    """

    __slots__ = ("callbacks", "event", "watch")

    def __init__(self) -> None:
        self.callbacks: list[Callable[[DeliveryFuture], object]] = []
        self.event: threading.Event | None = None
        self.watch: Watch | None = None

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
        "_status",
        "_then",
        "_ticket",
    )

    #: The producer's state: a class attribute of each producer's own
    #: :func:`deliveries_of` class, so that making a future stores two fields only.
    _state: ClassVar[ProducerState]
    _error: DeliveryError
    _message: _kafka.Report
    _observed: bool
    _offset_unknown: bool
    _status: int
    _then: _Then | None
    _ticket: int

    def _offset(self) -> int | None:
        """The delivered record's offset, ``None`` where the broker did not give it."""
        if getattr(self, "_offset_unknown", False):
            return None
        return self._message.offset()

    def _mark_observed(self) -> None:
        """Someone looked at the outcome: a failure is theirs to report, not ``close()``'s."""
        if self._status == _FAILED and not getattr(self, "_observed", False):
            self._state.note_observed(self)

    def _register(self) -> _Then:
        with _FUTURE_LOCK:
            then = self._then
            if then is None:
                then = self._then = _Then()
            return then

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
        then = self._register()
        with _FUTURE_LOCK:
            if then.event is None:
                then.event = threading.Event()
            event = then.event
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
        topic, partition, offset, timestamp, latency = _kafka.delivered(
            self._message, offset_unknown=getattr(self, "_offset_unknown", False)
        )
        return RecordMetadata(
            topic=topic, partition=partition, offset=offset, timestamp=timestamp, latency_s=latency
        )

    def exception(self, timeout: float | None = None) -> DeliveryError | None:
        """Wait for the delivery report; return its error, or ``None`` if delivered."""
        self._wait(timeout)
        self._mark_observed()
        return self._error if self._status == _FAILED else None

    def add_done_callback(self, fn: Callable[[DeliveryFuture], object]) -> None:
        """Call ``fn(future)`` once the delivery report arrives (at once if it has)."""
        then = self._register()
        then.callbacks.append(fn)
        if self._status != _PENDING:
            then.fire(self)  # the report may have come first; fire() runs each once

    def __repr__(self) -> str:
        status = {_PENDING: "pending", _DELIVERED: "delivered", _FAILED: "failed"}[self._status]
        return f"<DeliveryFuture {status}>"


class Delivery(DeliveryFuture):
    """The one delivery callback librdkafka gets per record: the record's future itself.

    librdkafka calls it with the delivery report; it resolves the future, wakes who
    waits, then tells the record's :class:`Watch`, if it has one. A producer makes its
    deliveries from its own subclass (:func:`deliveries_of`), which holds its state.
    """

    __slots__ = ()

    def __init__(self) -> None:
        self._status = _PENDING
        #: Who waits and what else the report is for; ``None`` for most records.
        self._then = None

    def __call__(self, err: object, report: _kafka.Report) -> None:
        """librdkafka's delivery report for this record (runs on the thread that polled)."""
        if err is None:
            self._message = report
            acks = self._state.duplicate_acks
            if acks.active or report.offset() is None:
                self._offset_unknown = acks.offset_unknown(report)
            self._status = _DELIVERED
        else:
            self._error = _kafka.failed(err, report)
            self._state.note_failure(self)  # before the status: an observer may come at once
            self._status = _FAILED
        then = self._then
        if then is not None:
            then.fire(self)
            watch = then.watch
            if watch is not None:
                watch.reported(self, err, report)

    def watched(self, watching: Watching) -> Watch:
        """The record's watch, made on first use (before librdkafka has the record)."""
        then = self._register()
        watch = then.watch
        if watch is None:
            watch = then.watch = Watch(watching)
        return watch

    @property
    def watch(self) -> Watch | None:
        """The record's watch, if it has one."""
        then = self._then
        return None if then is None else then.watch


def deliveries_of(state: ProducerState) -> type[Delivery]:
    """The class of one producer's deliveries: :class:`Delivery` with its state."""

    class _ProducerDelivery(Delivery):
        __slots__ = ()
        _state = state

    return _ProducerDelivery


class Watching:
    """A producer's listeners to deliveries: the delivery hooks and the skew watch."""

    __slots__ = ("client_id", "hooks", "skew")

    def __init__(self, hooks: HookChain, client_id: str, skew: _SkewTracker | None) -> None:
        self.hooks = hooks
        self.client_id = client_id
        self.skew = skew


class Watch:
    """What waits for one record's delivery report besides its future.

    The send hooks' observers of the record, the delivery hooks, and, for a sampled
    send, the skew watch's window it counts in.
    """

    __slots__ = ("observers", "topic", "watching", "window")

    def __init__(self, watching: Watching) -> None:
        self.watching = watching
        #: The send hooks' observers of this record.
        self.observers: Observers | None = None
        #: The skew window a sampled send counts in (``None``: not sampled).
        self.window: _Window | None = None
        self.topic = ""

    def sample(self, topic: str) -> None:
        """Count this send for the skew watch, in its current window."""
        skew = self.watching.skew
        assert skew is not None
        self.topic = topic
        self.window = skew.sample(topic)

    def reported(self, delivery: Delivery, err: object, report: _kafka.Report) -> None:
        """The record's delivery report came (``err`` is ``None`` when delivered)."""
        watching = self.watching
        hooks = watching.hooks
        if self.window is None and not self.observers and hooks.delivery is None:
            return
        topic, partition, key, latency = _kafka.reported(report)
        if self.window is not None:
            self._count(err is None, partition or 0, key)
        if not self.observers and hooks.delivery is None:
            return
        details = DeliveryDetails(
            topic=topic,
            partition=partition,
            offset=delivery._offset() if err is None else None,
            key=key,
            latency_s=latency,
            error=delivery._error if err is not None else None,
            client_id=watching.client_id,
        )
        if self.observers:
            hooks.observe(self.observers, details)
        if hooks.delivery is not None:
            hooks.delivery(details)

    def _count(self, delivered: bool, partition: int, key: bytes | None) -> None:
        skew = self.watching.skew
        assert skew is not None
        assert self.window is not None
        try:
            if delivered:
                skew.delivered(self.topic, self.window, partition, key)
            else:
                skew.failed(self.topic, self.window)
        except Exception:  # pragma: no cover - counting must never cost a delivery
            _log.exception("counting a delivery for the skew watch failed; the delivery stands")


def not_queued(delivery: Delivery, topic: str, key: bytes | None, error: Exception) -> None:
    """A record was refused before librdkafka took it: settle what its watch awaited.

    No delivery report will come, so a skew sample counts as failed, and the send
    hooks' observers (a send span) hear of the failure now.
    """
    watch = delivery.watch
    if watch is None:
        return
    watching = watch.watching
    if watch.window is not None:
        assert watching.skew is not None
        watching.skew.failed(topic, watch.window)
    if watch.observers:
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
            client_id=watching.client_id,
        )
        watching.hooks.observe(watch.observers, details)


class ProducerState:
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
        self.duplicate_acks = _kafka.DuplicateAcks()
        #: Whether the producer is transactional: a failed record then fails its
        #: transaction, whose commit (or abort) reports it, and ``close()`` does not.
        self.transactional = False
        #: The first failed records of the open transaction (its commit names them).
        self.transaction_failures: list[DeliveryError] = []
        # Delivery reports are served by whichever thread polls, possibly two at once.
        self._count_lock = threading.Lock()

    def wake(self) -> None:
        """Make the background thread serve delivery reports now."""
        self.last_foreground_serve = 0.0
        self.wakeup.set()

    def note_failure(self, future: DeliveryFuture) -> None:
        """A record failed: keep its error for ``close()`` until someone looks at it."""
        error = future._error
        with self._count_lock:
            self.failure_count += 1
            if self.transactional:
                future._observed = True
                self.observed_failure_count += 1
                if len(self.transaction_failures) < _MAX_TRANSACTION_FAILURES:
                    self.transaction_failures.append(error)
                return
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
        """Someone looked at a failed record's future: the failure is theirs to report."""
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


def serve_in_background(client: _kafka.ProducerClient, state: ProducerState) -> None:
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


def stop_background(state: ProducerState, thread: threading.Thread) -> None:
    """Let the background thread end, and wait for it (unless it is the caller)."""
    state.stopping = True
    state.wakeup.set()
    if thread is not threading.current_thread():
        thread.join(timeout=5)
