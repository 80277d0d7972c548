"""Hot keys and partition skew: which partitions, and which keys, take a producer's sends.

Kafka spreads keyed records over partitions by the hash of their key, so one very
frequent key (a big customer, a default value, an empty string) sends a matching
share of the traffic to one partition, and that partition's consumer falls behind
while the others idle. A :class:`~governed_kafka.producer.GovernedProducer` watches
for it with fixed memory whatever the number of distinct keys:

- it samples one send in ``sample_every`` and, when that record's delivery report
  says where it landed, counts it for its partition and for its key;
- keys are counted with the Misra-Gries ("Frequent") summary, a close cousin of
  Space-Saving: at most ``tracked_keys`` counters per topic, and any key that takes
  more than ``1 / (tracked_keys + 1)`` of the samples is always among them;
- every ``window_samples`` samples sent to a topic (or ``window_s`` seconds, once
  ``min_samples`` samples were sent) the window closes; once its samples' delivery
  reports are in, it is judged: if its busiest partition took more than its share
  (see :meth:`SkewPolicy.threshold`), the producer's hooks get ``on_skew`` with the
  partition, its share and its heaviest keys. Windows follow the order of sends,
  not of delivery reports, which come back grouped by partition.

:meth:`~governed_kafka.producer.GovernedProducer.skew` returns the current view as
a :class:`SkewReport`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final

import attrs

from .hooks import SkewDetails

__all__ = [
    "DEFAULT_MAX_RATIO",
    "DEFAULT_MIN_SAMPLES",
    "DEFAULT_REPORTED_KEYS",
    "DEFAULT_SAMPLE_EVERY",
    "DEFAULT_TRACKED_KEYS",
    "DEFAULT_WINDOW_S",
    "DEFAULT_WINDOW_SAMPLES",
    "HotKey",
    "SkewPolicy",
    "SkewReport",
    "TopicSkew",
]

#: Sample one send in 64. Measured with ``benchmarks/skew_sampling.py``: a sampled
#: send costs a few microseconds more than another (a ticket, a lock, the counts), so
#: sampling every send about halves the producer's throughput, while one in 64 stays
#: within the run-to-run noise; even one in 256 still names a 25% key first.
DEFAULT_SAMPLE_EVERY: Final = 64

#: A window closes after 1,024 samples of a topic (65,536 sends at the default rate):
#: enough that a fair partition's share is within a few percent of the truth.
DEFAULT_WINDOW_SAMPLES: Final = 1024

#: ... or after 60 s, for topics that see few sends ...
DEFAULT_WINDOW_S: Final = 60.0

#: ... provided it holds at least 128 samples: fewer say more about chance than skew.
DEFAULT_MIN_SAMPLES: Final = 128

#: A partition is skewed above twice its fair share (``2 / partitions``) ...
DEFAULT_MAX_RATIO: Final = 2.0

#: Counters per topic for heavy keys: any key above 1/65 of the samples is found.
DEFAULT_TRACKED_KEYS: Final = 64

#: Heaviest keys named in an alarm and in a report.
DEFAULT_REPORTED_KEYS: Final = 5


def _power_of_two(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 1 or value & (value - 1):
        msg = (
            f"SkewPolicy.sample_every must be a power of two (1, 2, 4, ... 1024), got {value!r}: "
            "choosing a sample then costs one bit test per send"
        )
        raise ValueError(msg)


def _positive(instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if value <= 0:
        msg = f"SkewPolicy.{attribute.name} must be > 0, got {value!r}"
        raise ValueError(msg)


def _above_one(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value <= 1:
        msg = (
            f"SkewPolicy.max_ratio must be > 1 (a multiple of the fair share), got {value!r}: "
            "every partition takes its fair share on average"
        )
        raise ValueError(msg)


@attrs.frozen(kw_only=True)
class SkewPolicy:
    """How a producer samples its sends, and when a partition counts as skewed.

    Pass ``skew=SkewPolicy(...)`` to a producer to change the defaults, or
    ``skew=None`` to turn the watch off.
    """

    #: Sample one send in this many (a power of two).
    sample_every: int = attrs.field(default=DEFAULT_SAMPLE_EVERY, validator=_power_of_two)
    #: Samples of a topic after which its window closes and is judged.
    window_samples: int = attrs.field(default=DEFAULT_WINDOW_SAMPLES, validator=_positive)
    #: Seconds after which a window with at least ``min_samples`` samples closes anyway.
    window_s: float = attrs.field(default=DEFAULT_WINDOW_S, validator=_positive)
    #: Fewest samples a window needs to be judged.
    min_samples: int = attrs.field(default=DEFAULT_MIN_SAMPLES, validator=_positive)
    #: Multiple of the fair share above which a partition is skewed.
    max_ratio: float = attrs.field(default=DEFAULT_MAX_RATIO, validator=_above_one)
    #: Heavy-key counters kept per topic (memory is bounded by this, not by the keys).
    tracked_keys: int = attrs.field(default=DEFAULT_TRACKED_KEYS, validator=_positive)
    #: Heaviest keys named in alarms and reports.
    reported_keys: int = attrs.field(default=DEFAULT_REPORTED_KEYS, validator=_positive)

    def __attrs_post_init__(self) -> None:
        if self.min_samples > self.window_samples:
            msg = (
                f"SkewPolicy.min_samples ({self.min_samples}) must not exceed "
                f"window_samples ({self.window_samples})"
            )
            raise ValueError(msg)
        if self.reported_keys > self.tracked_keys:
            msg = (
                f"SkewPolicy.reported_keys ({self.reported_keys}) must not exceed "
                f"tracked_keys ({self.tracked_keys})"
            )
            raise ValueError(msg)

    def threshold(self, partitions: int) -> float:
        """The share of a topic's sends above which one of its ``partitions`` is skewed.

        ``max_ratio`` times the fair share ``1 / partitions``; on topics too small for
        that to mean anything (``max_ratio / partitions`` near or above 1), halfway
        from the fair share to all of it instead. One partition is never skewed.
        """
        fair = 1 / max(partitions, 1)
        return min(self.max_ratio * fair, (1 + fair) / 2)


@attrs.frozen(kw_only=True)
class HotKey:
    """One of the heaviest keys of a topic."""

    key: bytes
    #: The partition its records went to.
    partition: int
    #: Sampled records with this key; at most a small bounded error below the truth.
    count: int


@attrs.frozen(kw_only=True)
class TopicSkew:
    """How one topic's recent sends spread over its partitions."""

    topic: str
    #: Samples the view covers: the last complete window and the one in progress.
    samples: int
    #: Partitions of the topic (the contract's count, or more if deliveries showed more).
    partitions: int
    #: ``(partition, samples)`` for every partition that received any, by partition.
    partition_counts: tuple[tuple[int, int], ...]
    #: The partition with the most samples, or ``None`` without samples.
    hottest_partition: int | None
    #: Its fraction of the samples.
    share: float
    #: The share above which a partition counts as skewed (:meth:`SkewPolicy.threshold`).
    threshold: float
    #: Heaviest keys of the topic, heaviest first.
    heavy_keys: tuple[HotKey, ...]
    #: Whether the hottest partition is above the threshold on enough samples.
    skewed: bool


@attrs.frozen(kw_only=True)
class SkewReport:
    """A producer's view of partition skew and hot keys, per topic it sent to."""

    #: The policy in force, or ``None`` when the producer does not watch for skew.
    policy: SkewPolicy | None
    topics: tuple[TopicSkew, ...] = ()

    def __iter__(self) -> Iterator[TopicSkew]:
        return iter(self.topics)

    def __len__(self) -> int:
        return len(self.topics)

    def topic(self, name: str) -> TopicSkew:
        """The entry for one topic."""
        for entry in self.topics:
            if entry.topic == name:
                return entry
        msg = f"no skew entry for topic {name!r}: the producer sampled no delivery to it"
        raise KeyError(msg)

    @property
    def skewed(self) -> tuple[TopicSkew, ...]:
        """The topics whose hottest partition is above the threshold."""
        return tuple(t for t in self.topics if t.skewed)


class _HeavyKeys:
    """Counts of the most frequent keys in fixed memory (the Misra-Gries summary).

    At most ``capacity`` counters. When a new key arrives and all are taken, every
    counter is decremented instead (and those reaching zero freed); each such round
    accounts for ``capacity + 1`` additions, so a key seen more than
    ``n / (capacity + 1)`` times in ``n`` additions always keeps a counter, and every
    kept count is at most ``error`` below the true one. Amortised cost: constant.
    """

    __slots__ = ("capacity", "counts", "error", "partitions")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.counts: dict[bytes, int] = {}
        self.partitions: dict[bytes, int] = {}
        #: Decrement rounds so far: the most any count falls short of the truth.
        self.error = 0

    def add(self, key: bytes, partition: int) -> None:
        counts = self.counts
        count = counts.get(key)
        if count is not None:
            counts[key] = count + 1
        elif len(counts) < self.capacity:
            counts[key] = 1
            self.partitions[key] = partition
        else:
            self.error += 1
            self.counts = {k: c - 1 for k, c in counts.items() if c > 1}
            self.partitions = {k: self.partitions[k] for k in self.counts}

    def top(self, n: int, *, partition: int | None = None) -> list[tuple[bytes, int, int]]:
        """The ``n`` heaviest ``(key, partition, count)``, optionally of one partition."""
        entries = [
            (key, self.partitions[key], count)
            for key, count in self.counts.items()
            if partition is None or self.partitions[key] == partition
        ]
        entries.sort(key=lambda e: (-e[2], e[0]))
        return entries[:n]


class _Window:
    """The samples of one topic sent while the window was open.

    Delivery reports come back grouped by partition (librdkafka answers a batch per
    partition), so a window is defined by the order of *sends*: each sample belongs
    to the window open when it was sent, and a window is judged once every one of its
    samples was delivered or failed.
    """

    __slots__ = ("counts", "keys", "samples", "sent", "settled", "started")

    def __init__(self, capacity: int) -> None:
        self.counts: list[int] = []
        self.keys = _HeavyKeys(capacity)
        #: Sampled records sent while the window was open.
        self.sent = 0
        #: Of those, how many were delivered or failed.
        self.settled = 0
        #: Of those, how many were delivered (and counted).
        self.samples = 0
        self.started = time.monotonic()

    def add(self, partition: int, key: bytes | None) -> None:
        counts = self.counts
        if partition >= len(counts):
            counts.extend([0] * (partition + 1 - len(counts)))
        counts[partition] += 1
        if key is not None:  # keyless records spread over partitions: never a hot key
            self.keys.add(key, partition)
        self.samples += 1


class _Topic:
    __slots__ = ("closing", "current", "declared", "previous")

    def __init__(self, declared: int, capacity: int) -> None:
        self.declared = declared
        #: The window new samples go to.
        self.current = _Window(capacity)
        #: Windows closed to sends whose samples are still on their way.
        self.closing: list[_Window] = []
        #: The last window judged.
        self.previous: _Window | None = None


def _hottest(counts: list[int]) -> tuple[int | None, int]:
    best: int | None = None
    most = 0
    for partition, count in enumerate(counts):
        if count > most:
            best, most = partition, count
    return best, most


class _SkewTracker:
    """What a producer keeps to watch for skew: per topic, a few windows of samples.

    A sampled send takes a ticket (:meth:`sample`: the window it belongs to); its
    delivery report hands the ticket back (:meth:`delivered` or :meth:`failed`).
    Reports may be served on two threads; one lock guards the counts, and alarms
    are raised outside it.
    """

    def __init__(
        self,
        policy: SkewPolicy,
        *,
        partitions: Mapping[str, int],
        on_skew: Callable[[SkewDetails], object] | None = None,
    ) -> None:
        self.policy = policy
        self._declared = dict(partitions)
        self._on_skew = on_skew
        self._topics: dict[str, _Topic] = {}
        self._lock = threading.Lock()

    def sample(self, topic: str) -> _Window:
        """A send to ``topic`` was sampled: return the window it counts in."""
        policy = self.policy
        alarm = None
        with self._lock:
            state = self._topics.get(topic)
            if state is None:
                state = self._topics[topic] = _Topic(
                    self._declared.get(topic, 1), policy.tracked_keys
                )
            window = state.current
            if (
                window.sent >= policy.min_samples
                and time.monotonic() - window.started >= policy.window_s
            ):
                alarm = self._rotate(topic, state)  # a slow topic: close on time
                window = state.current
            window.sent += 1
            if window.sent >= policy.window_samples:
                alarm = self._rotate(topic, state) or alarm
        if alarm is not None and self._on_skew is not None:
            self._on_skew(alarm)
        return window

    def delivered(self, topic: str, window: _Window, partition: int, key: bytes | None) -> None:
        """A sampled record of ``window`` was delivered to ``partition``."""
        with self._lock:
            window.add(partition, key)
            alarm = self._settle(topic, window)
        if alarm is not None and self._on_skew is not None:
            self._on_skew(alarm)

    def failed(self, topic: str, window: _Window) -> None:
        """A sampled record of ``window`` was not delivered: it counts nowhere."""
        with self._lock:
            alarm = self._settle(topic, window)
        if alarm is not None and self._on_skew is not None:
            self._on_skew(alarm)

    def _settle(self, topic: str, window: _Window) -> SkewDetails | None:
        window.settled += 1
        state = self._topics[topic]
        if window is state.current or window.settled < window.sent:
            return None
        state.closing.remove(window)
        return self._judged(topic, state, window)

    def _rotate(self, topic: str, state: _Topic) -> SkewDetails | None:
        """Close the current window to sends; judge it now if nothing is on its way."""
        window = state.current
        state.current = _Window(self.policy.tracked_keys)
        if window.settled < window.sent:
            state.closing.append(window)
            return None
        return self._judged(topic, state, window)

    def _judged(self, topic: str, state: _Topic, window: _Window) -> SkewDetails | None:
        state.previous = window
        if window.samples < self.policy.min_samples:
            return None  # too many failed deliveries to say anything
        partitions = max(state.declared, len(window.counts))
        threshold = self.policy.threshold(partitions)
        hottest, most = _hottest(window.counts)
        share = most / window.samples
        if hottest is None or share <= threshold:
            return None
        keys = window.keys.top(self.policy.reported_keys, partition=hottest)
        return SkewDetails(
            topic=topic,
            partition=hottest,
            share=share,
            heavy_keys=tuple((key, count) for key, _, count in keys),
            window_sends=window.samples,
            partitions=partitions,
            threshold=threshold,
            sample_every=self.policy.sample_every,
        )

    def report(self) -> SkewReport:
        """The current view: per topic, the last judged window and every later one."""
        policy = self.policy
        with self._lock:
            views = [self._view(topic, state) for topic, state in sorted(self._topics.items())]
        return SkewReport(policy=policy, topics=tuple(views))

    def _view(self, topic: str, state: _Topic) -> TopicSkew:
        windows = [state.previous] if state.previous is not None else []
        windows += [*state.closing, state.current]
        width = max(len(w.counts) for w in windows)
        counts = [0] * width
        keys: dict[bytes, int] = {}
        where: dict[bytes, int] = {}
        for window in windows:
            for partition, count in enumerate(window.counts):
                counts[partition] += count
            for key, count in window.keys.counts.items():
                keys[key] = keys.get(key, 0) + count
                where[key] = window.keys.partitions[key]
        samples = sum(w.samples for w in windows)
        partitions = max(state.declared, width)
        threshold = self.policy.threshold(partitions)
        hottest, most = _hottest(counts)
        share = most / samples if samples else 0.0
        heavy = sorted(keys.items(), key=lambda kv: (-kv[1], kv[0]))[: self.policy.reported_keys]
        return TopicSkew(
            topic=topic,
            samples=samples,
            partitions=partitions,
            partition_counts=tuple((p, c) for p, c in enumerate(counts) if c),
            hottest_partition=hottest,
            share=share,
            threshold=threshold,
            heavy_keys=tuple(HotKey(key=k, partition=where[k], count=c) for k, c in heavy),
            skewed=samples >= self.policy.min_samples and share > threshold,
        )
