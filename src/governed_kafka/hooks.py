"""Hooks: see every send, delivery, record, commit, rebalance, pause, retry, dead letter
and transaction.

A hook is any object with some of the ``on_*`` methods of :class:`Hook`; subclass
:class:`Hook` to inherit no-op defaults for the rest. Each method takes one frozen
details record. Pass hooks to a producer or consumer with ``hooks=[...]``; they run
in order, on the thread where the event happens.

Events with a duration let the hook return something that spans it:

- ``on_send`` may return a callable; it is called with the :class:`DeliveryDetails`
  of that record when its delivery report arrives (a producer span ends there);
- ``on_process`` and ``on_process_batch`` may return a context manager, entered
  around the handler call (a consumer span, a timer).

Sending is the hot path. A hook whose ``on_send`` may have nothing to do for a while
(a tracer with no SDK configured) may also define ``wants_send()``. A producer asks it
when it starts and again every 64 sends; while every ``on_send`` hook answers
``False``, sends build no details record and call no hook at all. While sends are
observed, each hook is also asked before its ``on_send`` is called, and skipped if it
answers ``False``. Hooks listening to ``on_delivery`` see every record regardless.

A hook that raises never breaks delivery, processing or commits: the error is logged
once per hook and event (with its traceback), later ones are counted silently, and the
hook keeps being called.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, runtime_checkable

import attrs

if TYPE_CHECKING:
    from ._records import Record
    from ._routes import HeaderList
    from .errors import DeliveryError
    from .lag import PartitionLag

__all__ = [
    "BackpressureDetails",
    "BatchDetails",
    "CommitDetails",
    "ConsumeDetails",
    "DeadLetterDetails",
    "DeliveryDetails",
    "DeliveryObserver",
    "Hook",
    "HookProtocol",
    "ProcessDetails",
    "RebalanceDetails",
    "RetryDetails",
    "SendDetails",
    "SkewDetails",
    "SlowHandlerDetails",
    "StatisticsDetails",
    "ThrottleDetails",
    "TransactionAbortDetails",
    "TransactionBeginDetails",
    "TransactionCommitDetails",
]

_log = logging.getLogger("governed_kafka.hooks")

# ---------------------------------------------------------------- details records


@attrs.frozen
class SendDetails:
    """A record about to be queued by a producer.

    ``headers`` is the record's header list: a hook may append to it (trace context)
    and the record is sent with what it holds when the hooks return.
    """

    topic: str
    key: bytes | None
    value_size: int
    headers: HeaderList
    client_id: str
    event_type: str | None = None
    #: Whether the value is ``None`` (a tombstone on a compacted topic).
    tombstone: bool = False
    #: The producer's transactional id when it sends inside a transaction, else ``None``.
    transactional_id: str | None = None


@attrs.frozen
class DeliveryDetails:
    """The outcome of one send: where it landed, or why it did not."""

    topic: str
    partition: int | None
    offset: int | None
    key: bytes | None
    #: Seconds from send to the broker's answer, as librdkafka measured it.
    latency_s: float | None
    error: DeliveryError | None
    client_id: str


@attrs.frozen
class ConsumeDetails:
    """A non-empty batch of records came back from a poll."""

    group_id: str
    count: int
    #: Records per ``(topic, partition)`` in the batch.
    partitions: tuple[tuple[str, int, int], ...]
    client_id: str = ""
    #: Offsets of each partition in the batch as of this poll: the high watermark of the
    #: latest fetch response, the position this consumer last committed (``None`` before
    #: its first commit) and the end of its processed prefix.
    lag: tuple[PartitionLag, ...] = ()


@attrs.frozen
class ProcessDetails:
    """A handler is about to process one record (attempt 1, 2, ...)."""

    group_id: str
    record: Record
    attempt: int
    client_id: str = ""


@attrs.frozen
class BatchDetails:
    """A batch handler is about to process several records."""

    group_id: str
    records: tuple[Record, ...]
    client_id: str = ""


@attrs.frozen
class CommitDetails:
    """A commit of processed offsets was answered by the broker (or failed).

    Synchronous commits are reported when they return; asynchronous ones when the
    broker's answer is served, on the consumer's thread during a later poll.
    """

    group_id: str
    #: ``(topic, partition, offset)`` committed; offset is the next record to read.
    offsets: tuple[tuple[str, int, int], ...]
    #: ``"routine"`` (the strategy), ``"manual"``, ``"revoke"`` or ``"close"``.
    reason: str
    synchronous: bool
    #: Seconds from the commit request to the broker's answer.
    duration_s: float
    error: Exception | None = None
    client_id: str = ""


@attrs.frozen
class RebalanceDetails:
    """Partitions were assigned, revoked, or lost (session expired: nothing committed)."""

    group_id: str
    kind: Literal["assign", "revoke", "lost"]
    partitions: tuple[tuple[str, int], ...]


@attrs.frozen
class BackpressureDetails:
    """The client slowed its intake.

    Consumers pause their partitions above ``max_in_flight`` records held (taken and not
    yet committable: unprocessed, or processed behind an unprocessed one of their
    partition; ``in_flight`` counts them) (``"pause"``) and resume below the low
    watermark (``"resume"``); producers report a full local queue (``"queue-full"``)
    before they block.
    """

    kind: Literal["pause", "resume", "queue-full"]
    in_flight: int
    limit: int
    partitions: tuple[tuple[str, int], ...] = ()
    topic: str | None = None


@attrs.frozen
class RetryDetails:
    """A handler failed and the record will be tried again after ``wait_s``."""

    group_id: str
    record: Record
    attempt: int
    error: BaseException
    wait_s: float


@attrs.frozen
class DeadLetterDetails:
    """A record was published to its dead-letter topic and counts as processed."""

    group_id: str
    record: Record | None
    topic: str
    partition: int
    offset: int
    dead_letter_topic: str
    error: BaseException
    attempts: int


@attrs.frozen
class ThrottleDetails:
    """A broker throttled this client (quota exceeded)."""

    broker: str
    broker_id: int
    throttle_time_s: float
    client_id: str


@attrs.frozen
class SkewDetails:
    """One partition took more than its share of a producer's recent sends."""

    topic: str
    partition: int
    #: Fraction of the topic's sends in the window that went to ``partition``.
    share: float
    #: Heaviest keys of ``partition`` in the window, heaviest first:
    #: ``(key, sampled count)``; a count is at most a small bounded error below the truth.
    heavy_keys: tuple[tuple[bytes | None, int], ...]
    #: Sampled deliveries of the topic in the window (one send in ``sample_every``).
    window_sends: int
    #: Partitions of the topic (the contract's count, or more if deliveries showed more).
    partitions: int
    #: The share above which a partition counts as skewed, for this many partitions.
    threshold: float = 0.0
    #: One send in this many was sampled: multiply counts by it to estimate sends.
    sample_every: int = 1


@attrs.frozen
class SlowHandlerDetails:
    """The consumer has not polled for a large part of ``max.poll.interval.ms``.

    Past that interval the group evicts the member and rebalances its partitions.
    """

    group_id: str
    elapsed_s: float
    max_poll_interval_s: float
    record: Record | None


@attrs.frozen
class StatisticsDetails:
    """librdkafka's statistics (``statistics.interval.ms``), parsed from its JSON."""

    client_id: str
    role: Literal["producer", "consumer"]
    stats: dict[str, Any]
    #: The consumer's group (``None`` for producers).
    group_id: str | None = None


@attrs.frozen
class TransactionBeginDetails:
    """A transactional producer began a transaction."""

    transactional_id: str
    client_id: str
    #: Which transaction of this producer it is: 1 for its first, then 2, 3 ...
    sequence: int


@attrs.frozen
class TransactionCommitDetails:
    """A transaction was committed: its records and offsets are visible together."""

    transactional_id: str
    client_id: str
    sequence: int
    #: Records sent in the transaction.
    records: int
    #: The consumer group whose offsets were committed in it (``None``: no offsets).
    group_id: str | None
    #: ``(topic, partition, offset)`` committed for ``group_id``: the next records to read.
    offsets: tuple[tuple[str, int, int], ...]
    #: ``"user"`` (a ``with producer.transaction()`` block), or a consumer's commit
    #: reason: ``"routine"``, ``"manual"``, ``"revoke"``, ``"close"``.
    reason: str
    #: Seconds from the transaction's begin to the coordinator's answer to the commit.
    duration_s: float
    #: Seconds the commit itself took: offsets sent, records delivered, commit answered.
    commit_s: float


@attrs.frozen
class TransactionAbortDetails:
    """A transaction was aborted: none of its records or offsets will ever be visible to
    ``read_committed`` readers."""

    transactional_id: str
    client_id: str
    sequence: int
    #: Records sent in the transaction (all of them discarded).
    records: int
    #: The consumer group whose offsets the transaction would have committed.
    group_id: str | None
    #: Why: ``"user"`` (an exception left a ``with producer.transaction()`` block),
    #: ``"handler-error"``, ``"commit-failed"``, ``"lost"`` (partitions lost), ``"close"``.
    reason: str
    #: Seconds from the transaction's begin to the end of the abort.
    duration_s: float
    #: What made it abort (``None`` when nothing failed, e.g. a close).
    error: BaseException | None


DeliveryObserver = Callable[[DeliveryDetails], object]

#: The delivery observers the ``on_send`` hooks returned for one record, each with the
#: listener that returned it (a failing observer counts against that hook).
Observers = list[tuple[Callable[[Any], Any], DeliveryObserver]]


# ---------------------------------------------------------------- the protocol


@runtime_checkable
class HookProtocol(Protocol):
    """What the clients call; every method is optional on a concrete hook."""

    def wants_send(self) -> bool: ...
    def on_send(self, details: SendDetails) -> DeliveryObserver | None: ...
    def on_delivery(self, details: DeliveryDetails) -> None: ...
    def on_consume(self, details: ConsumeDetails) -> None: ...
    def on_process(
        self, details: ProcessDetails
    ) -> contextlib.AbstractContextManager[Any] | None: ...
    def on_process_batch(
        self, details: BatchDetails
    ) -> contextlib.AbstractContextManager[Any] | None: ...
    def on_commit(self, details: CommitDetails) -> None: ...
    def on_rebalance(self, details: RebalanceDetails) -> None: ...
    def on_backpressure(self, details: BackpressureDetails) -> None: ...
    def on_retry(self, details: RetryDetails) -> None: ...
    def on_dead_letter(self, details: DeadLetterDetails) -> None: ...
    def on_throttle(self, details: ThrottleDetails) -> None: ...
    def on_skew(self, details: SkewDetails) -> None: ...
    def on_slow_handler(self, details: SlowHandlerDetails) -> None: ...
    def on_statistics(self, details: StatisticsDetails) -> None: ...
    def on_transaction_begin(self, details: TransactionBeginDetails) -> None: ...
    def on_transaction_commit(self, details: TransactionCommitDetails) -> None: ...
    def on_transaction_abort(self, details: TransactionAbortDetails) -> None: ...


class Hook:
    """Base class with a no-op for every event: override the ones you need."""

    def wants_send(self) -> bool:
        """Whether ``on_send`` has work for the coming sends; ``False`` skips them.

        Asked when a producer starts, every 64 sends, and before each ``on_send`` call
        while sends are observed, so it must be cheap. Not overriding it means always.
        """
        return True

    def on_send(self, details: SendDetails) -> DeliveryObserver | None:
        """A record is about to be queued; may add headers; may return a delivery observer."""
        return None

    def on_delivery(self, details: DeliveryDetails) -> None:
        """A delivery report arrived (success or failure)."""

    def on_consume(self, details: ConsumeDetails) -> None:
        """A poll returned records."""

    def on_process(self, details: ProcessDetails) -> contextlib.AbstractContextManager[Any] | None:
        """A record is about to be handled; may return a context manager around the handler."""
        return None

    def on_process_batch(
        self, details: BatchDetails
    ) -> contextlib.AbstractContextManager[Any] | None:
        """A batch is about to be handled; may return a context manager around the handler."""
        return None

    def on_commit(self, details: CommitDetails) -> None:
        """Offsets were committed (or the commit failed)."""

    def on_rebalance(self, details: RebalanceDetails) -> None:
        """Partitions were assigned, revoked or lost."""

    def on_backpressure(self, details: BackpressureDetails) -> None:
        """Intake paused, resumed, or the producer queue filled up."""

    def on_retry(self, details: RetryDetails) -> None:
        """A failed record will be retried."""

    def on_dead_letter(self, details: DeadLetterDetails) -> None:
        """A record went to its dead-letter topic."""

    def on_throttle(self, details: ThrottleDetails) -> None:
        """A broker throttled the client."""

    def on_skew(self, details: SkewDetails) -> None:
        """A partition took more than its share of the sends."""

    def on_slow_handler(self, details: SlowHandlerDetails) -> None:
        """The consumer is close to being evicted for not polling."""

    def on_statistics(self, details: StatisticsDetails) -> None:
        """librdkafka emitted statistics."""

    def on_transaction_begin(self, details: TransactionBeginDetails) -> None:
        """A transactional producer began a transaction."""

    def on_transaction_commit(self, details: TransactionCommitDetails) -> None:
        """A transaction was committed."""

    def on_transaction_abort(self, details: TransactionAbortDetails) -> None:
        """A transaction was aborted."""


_EVENTS = (
    "on_send",
    "on_delivery",
    "on_consume",
    "on_process",
    "on_process_batch",
    "on_commit",
    "on_rebalance",
    "on_backpressure",
    "on_retry",
    "on_dead_letter",
    "on_throttle",
    "on_skew",
    "on_slow_handler",
    "on_statistics",
    "on_transaction_begin",
    "on_transaction_commit",
    "on_transaction_abort",
)

D = TypeVar("D")

#: Calls every listener of one event with its details record, each failure contained.
Emit = Callable[[D], None]

#: Enters the context managers the listeners of one event return, exits them together.
Around = Callable[[D], contextlib.ExitStack]


def _implements(hook: object, event: str) -> bool:
    method = getattr(type(hook), event, None)
    if method is None:
        return False
    return method is not getattr(Hook, event)  # an inherited no-op is not worth calling


class HookChain:
    """The hooks of one client, sorted by event; events nobody listens to cost nothing.

    Each event is one typed attribute: the callable that runs its listeners, or ``None``
    when nobody listens, so a client pays one check where the event happens::

        if hooks.commit is not None:
            hooks.commit(CommitDetails(...))
    """

    #: ``on_send``: run the send hooks that want this send; their delivery observers.
    send: Callable[[SendDetails], Observers | None] | None
    delivery: Emit[DeliveryDetails] | None
    consume: Emit[ConsumeDetails] | None
    #: ``on_process``: the listeners' context managers around one handler call.
    process: Around[ProcessDetails] | None
    process_batch: Around[BatchDetails] | None
    commit: Emit[CommitDetails] | None
    rebalance: Emit[RebalanceDetails] | None
    backpressure: Emit[BackpressureDetails] | None
    retry: Emit[RetryDetails] | None
    dead_letter: Emit[DeadLetterDetails] | None
    throttle: Emit[ThrottleDetails] | None
    skew: Emit[SkewDetails] | None
    slow_handler: Emit[SlowHandlerDetails] | None
    statistics: Emit[StatisticsDetails] | None
    transaction_begin: Emit[TransactionBeginDetails] | None
    transaction_commit: Emit[TransactionCommitDetails] | None
    transaction_abort: Emit[TransactionAbortDetails] | None
    #: Asked every few sends when every ``on_send`` hook can say it has nothing to do.
    send_gate: Callable[[], bool] | None

    def __init__(self, hooks: Sequence[object]) -> None:
        for hook in hooks:
            if not any(hasattr(hook, event) for event in _EVENTS):
                msg = f"{hook!r} is not a hook: it has none of the on_* methods of hooks.Hook"
                raise TypeError(msg)
        self.hooks = tuple(hooks)
        self._listeners: dict[str, tuple[Callable[[Any], Any], ...]] = {
            event: tuple(getattr(h, event) for h in self.hooks if _implements(h, event))
            for event in _EVENTS
        }
        #: Each ``on_send`` listener with its hook's own ``wants_send`` (or ``None``).
        senders: list[Any] = [h for h in self.hooks if _implements(h, "on_send")]
        self._senders: tuple[tuple[Callable[[Any], Any], Callable[[], bool] | None], ...] = tuple(
            (h.on_send, h.wants_send if _implements(h, "wants_send") else None) for h in senders
        )
        self._failures: dict[tuple[int, str], int] = {}
        self.send = self.observers if self._senders else None
        self.delivery = self._emitter("on_delivery")
        self.consume = self._emitter("on_consume")
        self.process = self._around("on_process")
        self.process_batch = self._around("on_process_batch")
        self.commit = self._emitter("on_commit")
        self.rebalance = self._emitter("on_rebalance")
        self.backpressure = self._emitter("on_backpressure")
        self.retry = self._emitter("on_retry")
        self.dead_letter = self._emitter("on_dead_letter")
        self.throttle = self._emitter("on_throttle")
        self.skew = self._emitter("on_skew")
        self.slow_handler = self._emitter("on_slow_handler")
        self.statistics = self._emitter("on_statistics")
        self.transaction_begin = self._emitter("on_transaction_begin")
        self.transaction_commit = self._emitter("on_transaction_commit")
        self.transaction_abort = self._emitter("on_transaction_abort")
        self.send_gate = self._send_gate()

    def _emitter(self, event: str) -> Emit[Any] | None:
        """The runner of ``event``'s listeners, or ``None`` when it has none."""
        listeners = self._listeners[event]
        if not listeners:
            return None
        failed = self._failed

        def emit(details: object) -> None:
            for listener in listeners:
                try:
                    listener(details)
                except Exception:
                    failed(listener, event)

        return emit

    def _around(self, event: str) -> Around[Any] | None:
        """The runner of ``event``'s context-manager listeners, or ``None`` when it has none."""
        listeners = self._listeners[event]
        if not listeners:
            return None

        def around(details: object) -> contextlib.ExitStack:
            stack = contextlib.ExitStack()
            for listener in listeners:
                try:
                    manager = listener(details)
                    if manager is not None:
                        stack.enter_context(_Contained(manager, self, listener, event))
                except Exception:
                    self._failed(listener, event)
            return stack

        return around

    def _send_gate(self) -> Callable[[], bool] | None:
        """The question to ask now and then, or ``None`` when every send must be observed.

        ``None`` unless every ``on_send`` hook has a ``wants_send()`` of its own and no
        hook listens to ``on_delivery`` (which needs every record observed).
        """
        senders: list[Any] = [h for h in self.hooks if _implements(h, "on_send")]
        if not senders or self.delivery is not None:
            return None
        if not all(_implements(h, "wants_send") for h in senders):
            return None
        gates: tuple[Callable[[], bool], ...] = tuple(h.wants_send for h in senders)
        if len(gates) == 1:
            return gates[0]

        def any_wants_send() -> bool:
            wanted = False
            for gate in gates:
                try:
                    wanted = gate() or wanted
                except Exception:
                    self._failed(gate, "wants_send")
                    wanted = True
            return wanted

        return any_wants_send

    def gate_failed(self) -> bool:
        """``send_gate`` raised: log it like any hook failure; the send is observed."""
        if self.send_gate is not None:
            self._failed(self.send_gate, "wants_send")
        return True

    def __bool__(self) -> bool:
        return any(self._listeners.values())

    def _failed(self, listener: Callable[..., Any], event: str) -> None:
        owner = getattr(listener, "__self__", listener)
        key = (id(owner), event)
        count = self._failures.get(key, 0) + 1
        self._failures[key] = count
        if count == 1:
            _log.exception(
                "hook %r raised in %s; the client carries on and will not log this again "
                "(later failures are counted: the client's hook_failures)",
                owner,
                event,
            )

    def hook_failures(self) -> int:
        """How many times hooks raised, in all."""
        return sum(self._failures.values())

    def client_callbacks(
        self, *, client_id: str, role: Literal["producer", "consumer"], group_id: str | None = None
    ) -> dict[str, Callable[..., None]]:
        """librdkafka's throttle and statistics callbacks, for the events someone listens to."""
        callbacks: dict[str, Callable[..., None]] = {}
        throttled = self.throttle
        if throttled is not None:

            def on_throttle(broker: str, broker_id: int, throttle_time_s: float) -> None:
                throttled(
                    ThrottleDetails(
                        broker=broker,
                        broker_id=broker_id,
                        throttle_time_s=throttle_time_s,
                        client_id=client_id,
                    )
                )

            callbacks["on_throttle"] = on_throttle
        statistics = self.statistics
        if statistics is not None:

            def on_stats(stats: dict[str, Any]) -> None:
                statistics(
                    StatisticsDetails(
                        client_id=client_id, role=role, stats=stats, group_id=group_id
                    )
                )

            callbacks["on_stats"] = on_stats
        return callbacks

    def observers(self, details: SendDetails) -> Observers | None:
        """Run ``on_send`` of the hooks that want this send; return their observers."""
        found: Observers | None = None
        for listener, wants in self._senders:
            if wants is not None:
                try:
                    if not wants():
                        continue
                except Exception:
                    self._failed(wants, "wants_send")
            try:
                observer = listener(details)
            except Exception:
                self._failed(listener, "on_send")
                continue
            if observer is not None:
                if found is None:
                    found = []
                found.append((listener, observer))
        return found

    def observe(self, observers: Observers, details: DeliveryDetails) -> None:
        """Call each observer with the delivery; a failure counts against its hook."""
        for listener, observer in observers:
            try:
                observer(details)
            except Exception:
                self._failed(listener, "on_send observer")


class _Contained(contextlib.AbstractContextManager[Any]):
    """A hook's context manager whose own errors never reach the handler's caller."""

    def __init__(
        self,
        manager: contextlib.AbstractContextManager[Any],
        chain: HookChain,
        listener: Callable[[Any], Any],
        event: str,
    ) -> None:
        self.manager = manager
        self.chain = chain
        self.listener = listener
        self.event = event

    def __enter__(self) -> Any:
        try:
            return self.manager.__enter__()
        except Exception:
            self.chain._failed(self.listener, self.event)
            self.manager = contextlib.nullcontext()
            return None

    def __exit__(self, *exc_info: Any) -> Literal[False]:
        try:
            self.manager.__exit__(*exc_info)
        except Exception:
            self.chain._failed(self.listener, self.event)
        return False  # never swallow the handler's own error
