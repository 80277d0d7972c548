"""The consumer's watch: slow handlers reported, and the samples health is judged on.

:class:`HealthWatch` runs the consumer's watchdog thread. Every few tenths of a second
it notes which record each handler is on (so a handler stuck on one is seen) and warns
once per poll gap when no poll came for most of ``max.poll.interval.ms`` (the
``on_slow_handler`` hooks); once a second it samples each held partition's fetched high
watermark, processed position and committed offset into a bounded history.
:meth:`HealthWatch.report` judges those into a :class:`~governed_kafka.health.HealthReport`
(statuses in :mod:`governed_kafka.health`). Nothing here asks the cluster anything.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from ._offsets import OffsetBook
from ._records import Record
from ._tiers import Tiers
from .health import (
    DEFAULT_STALLED_AFTER_S,
    DEFAULT_WINDOW_S,
    MAX_WINDOW_S,
    SEVERITY,
    HealthReport,
    HealthStatus,
    PartitionHealth,
)
from .hooks import HookChain, SlowHandlerDetails

if TYPE_CHECKING:
    from ._consumer_base import ConsumerBase

__all__ = ["SLOW_HANDLER_FRACTION", "HealthWatch"]

_log = logging.getLogger("governed_kafka.consumer")

#: Fraction of ``max.poll.interval.ms`` without a poll at which a slow handler is
#: reported, and past which the consumer counts as ``stopped``.
SLOW_HANDLER_FRACTION: Final = 0.8

#: How often partitions are sampled for health: once a second.
_SAMPLE_S: Final = 1.0

#: Samples kept per partition: :data:`~governed_kafka.health.MAX_WINDOW_S` of them.
_SAMPLES: Final = int(MAX_WINDOW_S / _SAMPLE_S) + 1

Key = tuple[str, int]
#: ``(monotonic time, high watermark, position, committed)``.
Sample = tuple[float, int | None, int | None, int | None]


class HealthWatch:
    """Watches one consumer from a thread of its own (started by :meth:`start`).

    :param last_poll: when the consumer last polled (``time.monotonic()``).
    :param current: the record the sync handler is on, or ``None``.
    :param high_watermark: a partition's high watermark as of its last fetch.
    :param closed: whether the consumer is closed.
    """

    def __init__(
        self,
        *,
        group_id: str,
        max_poll_interval_s: float,
        hooks: HookChain,
        book: OffsetBook,
        last_poll: Callable[[], float],
        current: Callable[[], Record | None],
        high_watermark: Callable[[Key], int | None],
        closed: Callable[[], bool],
        tiers: Tiers | None,
    ) -> None:
        self.group_id = group_id
        self.max_poll_interval_s = max_poll_interval_s
        self._hooks = hooks
        self._book = book
        self._last_poll = last_poll
        self._current = current
        self._high_watermark = high_watermark
        self._closed = closed
        self._tiers = tiers
        self._samples: dict[Key, deque[Sample]] = {}
        #: Highest committed offset and position seen per partition, and when each went back.
        self._highest: dict[Key, tuple[int, int]] = {}
        self._rewound: dict[Key, tuple[float, str]] = {}
        #: The record each handler is on, and since when (``time.monotonic()``).
        self._busy: dict[Key, tuple[Record, float]] = {}
        self._lock = threading.Lock()
        self._thread = threading.Thread(
            target=self._watch, name=f"governed-kafka-watchdog[{group_id}]", daemon=True
        )

    @classmethod
    def of(cls, consumer: ConsumerBase) -> HealthWatch:
        """The watch of ``consumer``, which reads its own state (its thread starts at
        :meth:`start`)."""
        return cls(
            group_id=consumer.group_id,
            max_poll_interval_s=consumer._max_poll_interval_s,
            hooks=consumer._hooks,
            book=consumer._book,
            last_poll=lambda: consumer._last_poll,
            current=lambda: consumer._current,
            high_watermark=consumer._consumer.fetched_high_watermark,
            closed=lambda: consumer._closed,
            tiers=consumer._tiers,
        )

    def start(self) -> None:
        """Start the watchdog thread (it ends when the consumer is closed)."""
        self._thread.start()

    # ------------------------------------------------------------ handlers (asyncio)

    def started(self, record: Record) -> None:
        """A handler began on ``record`` (the asyncio consumer's handlers tell of each)."""
        self._busy[record.topic, record.partition] = (record, time.monotonic())

    def finished(self, record: Record) -> None:
        """The handler on ``record`` is done."""
        key = (record.topic, record.partition)
        busy = self._busy.get(key)
        if busy is not None and busy[0] is record:
            del self._busy[key]

    # ------------------------------------------------------------ the thread

    def _watch(self) -> None:
        interval = min(max(self.max_poll_interval_s / 20, 0.05), 0.25)
        reported_for = 0.0
        next_sample = 0.0
        seen: Record | None = None
        while not self._closed():
            time.sleep(interval)
            now = time.monotonic()
            record = self._current()
            if record is not seen:
                if seen is not None:
                    self.finished(seen)
                if record is not None:
                    self.started(record)
                seen = record
            if now >= next_sample:
                next_sample = now + _SAMPLE_S
                self.sample(now)
            last = self._last_poll()
            elapsed = now - last
            if elapsed >= self.max_poll_interval_s * SLOW_HANDLER_FRACTION and reported_for != last:
                reported_for = last
                self._slow(elapsed, record)

    def _slow(self, elapsed: float, record: Record | None) -> None:
        _log.warning(
            "group %r: no poll for %.1f s of max.poll.interval.ms %.1f s (handling %s); "
            "the group will evict this consumer if it goes on",
            self.group_id,
            elapsed,
            self.max_poll_interval_s,
            f"{record.topic}[{record.partition}]@{record.offset}" if record else "nothing",
        )
        if self._hooks.slow_handler is not None:
            self._hooks.slow_handler(
                SlowHandlerDetails(
                    group_id=self.group_id,
                    elapsed_s=elapsed,
                    max_poll_interval_s=self.max_poll_interval_s,
                    record=record,
                )
            )

    def sample(self, now: float) -> None:
        """Note each held partition's high watermark, position and committed offset."""
        held = self._book.keys()
        with self._lock:
            for key in held:
                offsets = self._book.get(key)
                if offsets is None:
                    continue
                position, committed = offsets.position, offsets.committed
                history = self._samples.get(key)
                if history is None:
                    history = self._samples[key] = deque(maxlen=_SAMPLES)
                history.append((now, self._high_watermark(key), position, committed))
                self._note_rewind(key, now, position, committed)
            for key in set(self._samples) - set(held):
                del self._samples[key]

    def _note_rewind(
        self, key: Key, now: float, position: int | None, committed: int | None
    ) -> None:
        top_committed, top_position = self._highest.get(key, (-1, -1))
        if committed is not None and committed < top_committed:
            self._rewound[key] = (now, f"committed offset went back {top_committed} -> {committed}")
            top_committed = committed
        if position is not None and position < top_position:
            self._rewound[key] = (now, f"processed position went back {top_position} -> {position}")
            top_position = position
        self._highest[key] = (
            max(top_committed, committed if committed is not None else -1),
            max(top_position, position if position is not None else -1),
        )

    # ------------------------------------------------------------ judging

    def report(
        self,
        *,
        window_s: float = DEFAULT_WINDOW_S,
        stalled_after_s: float = DEFAULT_STALLED_AFTER_S,
        stopped_after_s: float | None = None,
    ) -> HealthReport:
        """Judge the samples of the last ``window_s`` seconds (see :mod:`~.health`)."""
        if not 0 < window_s <= MAX_WINDOW_S:
            msg = f"window_s must be above 0 and at most {MAX_WINDOW_S:.0f} s, got {window_s}"
            raise ValueError(msg)
        now = time.monotonic()
        self.sample(now)
        stopped_after = (
            self.max_poll_interval_s * SLOW_HANDLER_FRACTION
            if stopped_after_s is None
            else stopped_after_s
        )
        closed = self._closed()
        since_poll = now - self._last_poll()
        stopped = ""
        if closed:
            stopped = "the consumer is closed"
        elif since_poll > stopped_after:
            stopped = (
                f"no poll for {since_poll:.1f} s (over {stopped_after:.1f} s; the group "
                f"evicts a member after max.poll.interval.ms = {self.max_poll_interval_s:.0f} s)"
            )
        waiting = self._tiers.next_due() if self._tiers is not None else {}
        with self._lock:
            partitions = tuple(
                self._judge(
                    key,
                    history,
                    now=now,
                    window_s=window_s,
                    stalled_after_s=stalled_after_s,
                    stopped=stopped,
                    waiting=waiting,
                )
                for key, history in sorted(self._samples.items())
            )
        reasons = [
            f"{p.topic}[{p.partition}] {p.status}: {p.reason}" for p in partitions if p.reason
        ]
        if stopped:
            status: HealthStatus = "stopped"
            if not partitions:
                reasons.append(stopped)
        elif partitions:
            status = max((p.status for p in partitions), key=SEVERITY.__getitem__)
            if status == "idle" and any(p.status == "ok" for p in partitions):
                status = "ok"
        else:
            status = "idle"
            reasons.append("no partitions assigned")
        live = status not in {"stopped", "stalled"}
        return HealthReport(
            group_id=self.group_id,
            status=status,
            live=live,
            ready=live and not closed,
            partitions=partitions,
            reasons=tuple(reasons),
            window_s=window_s,
        )

    def _judge(
        self,
        key: Key,
        history: deque[Sample],
        *,
        now: float,
        window_s: float,
        stalled_after_s: float,
        stopped: str,
        waiting: dict[Key, int],
    ) -> PartitionHealth:
        recent = [s for s in history if s[0] >= now - window_s] or [history[-1]]
        # Samples a second apart cover the window but for up to a sample's spacing.
        covered = max(window_s - 1.5 * _SAMPLE_S, window_s / 2)
        _, high, position, committed = recent[-1]
        start = position if position is not None else committed
        lag = None if high is None or start is None else max(high - start, 0)
        status: HealthStatus = "ok"
        reason = ""
        busy = self._busy.get(key)
        rewound = self._rewound.get(key)
        if stopped:
            status, reason = "stopped", stopped
        elif busy is not None and now - busy[1] > stalled_after_s:
            record = busy[0]
            status = "stalled"
            reason = (
                f"the handler has been on offset {record.offset} for {now - busy[1]:.1f} s "
                f"(over {stalled_after_s:.1f} s)"
            )
        elif rewound is not None and rewound[0] >= now - window_s:
            status, reason = "rewound", rewound[1]
        elif key in waiting:
            due_in = waiting[key] / 1000 - time.time()
            reason = f"retry tier: its head is due in {max(due_in, 0):.1f} s"
        elif lag:
            first = recent[0]
            first_start = first[2] if first[2] is not None else first[3]
            first_lag = (
                None if first[1] is None or first_start is None else max(first[1] - first_start, 0)
            )
            if first_lag is not None and lag > first_lag and len(recent) > 1:
                status = "lagging"
                reason = f"lag grew from {first_lag} to {lag} over {now - first[0]:.0f} s"
        elif len(recent) > 1 and recent[0][1] == high and now - recent[0][0] >= covered:
            status, reason = "idle", f"no new record for {now - recent[0][0]:.0f} s"
        return PartitionHealth(
            topic=key[0],
            partition=key[1],
            status=status,
            lag=lag,
            high_watermark=high,
            position=position,
            committed=committed,
            reason=reason,
        )
