"""Retry tiers and parked keys: where a record goes when its in-place attempts are spent.

A topic's contract may list retry topics (``retry_topics``, each with its delay in
``retry_delays``). A record whose handler still fails after the retry policy's attempts
is written to the next tier, with :data:`RETRY_HEADERS` saying when it is due, where it
came from and why it failed; after the last tier it goes to the dead-letter topic. The
consumer subscribes to its topics' tiers too and hands a tier's record to the handler
when it is due: a tier partition whose head is not due is paused, its records held, and
resumed when the head is due (the poll waits in librdkafka meanwhile, never in a sleep).
Tier writes are acknowledged before any commit (:meth:`Tiers.flush` runs before each),
so a source record's offset is committed only once the record is safe in its tier; a
write that failed stops the commit, and the record is read again.

With ``ordering = "key"`` a key with a record waiting in a tier or the dead-letter topic
is *parked*: its later records are not handled but written behind it, to the tier (or
the dead-letter topic) where its oldest record waits, and so reach the handler after
it, in order. Tier and dead-letter records are written to the partition of the same
number as their source partition (lint requires equal partition counts), so a
partition's keys form a lane that one consumer holds whole (the ``range`` assignor).
The parked keys of a lane are rebuilt when it is assigned, from what its tier
partitions hold past the group's committed offsets and what its dead-letter partition
holds past the redrive group's progress; memory is bounded by
:data:`MAX_PARKED_KEYS`, past which the lane's source partitions pause until keys are
released.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from typing import Any, Final

from . import _config, _kafka
from ._dead_letters import DeadLetters
from ._records import Record, Topic
from ._routes import HeaderList, sendable_header_name
from .acls import REDRIVE_GROUP_PREFIX
from .contracts import Catalog, TopicContract
from .errors import ConfigError, DeliveryError, GovernanceViolation
from .producer import DeliveryFuture

__all__ = [
    "MAX_ERROR_MESSAGE",
    "MAX_PARKED_KEYS",
    "REDRIVE_HEADER",
    "RETRY_HEADERS",
    "KeyParked",
    "Tiers",
    "keep_lanes",
    "origin_of",
]

_log = logging.getLogger("governed_kafka.consumer")

#: Headers a record in a retry topic carries, besides the original record's own.
RETRY_HEADERS: Final = (
    "retry.attempt",
    "retry.tier",
    "retry.due",
    "retry.origin.topic",
    "retry.origin.partition",
    "retry.origin.offset",
    "retry.error.type",
    "retry.error.message",
    "retry.parked",
)

#: The header ``governed-kafka dlq redrive`` adds to each record it sends back:
#: ``dead-letter topic/partition/offset``.
REDRIVE_HEADER: Final = "redrive.from"

#: Longest error message a retry record carries in ``retry.error.message``.
MAX_ERROR_MESSAGE: Final = 1024

#: Most parked keys a consumer keeps (about 200 bytes each). Past it the source
#: partitions of key-ordered topics pause until released keys bring it under 90%.
MAX_PARKED_KEYS: Final = 100_000

#: Tier writes waiting for their acknowledgement at most: past it the consumer waits.
MAX_UNACKNOWLEDGED: Final = 10_000

#: Longest the rebuild of a lane's parked keys may read its tiers and dead letters.
REBUILD_TIMEOUT_S: Final = 60.0

Key = tuple[str, int]
#: A parked key: ``(source topic, partition, key bytes)``.
Parked = tuple[str, int, bytes]


def _int_header(record: Record | _kafka.LogEntry, name: str) -> int | None:
    raw = record.header(name)
    if raw is None or len(raw) > 20:
        return None
    try:
        return int(raw)
    except ValueError:
        return None


def origin_of(record: Record | _kafka.LogEntry) -> tuple[str, int, int]:
    """Where a record of a retry topic first came from (a source record: itself)."""
    topic = record.header("retry.origin.topic")
    partition = _int_header(record, "retry.origin.partition")
    offset = _int_header(record, "retry.origin.offset")
    if topic is None or partition is None or offset is None:
        return record.topic, record.partition, record.offset
    return topic.decode("utf-8", "replace"), partition, offset


class Tiers:
    """The retry tiers of the topics one consumer reads, and its parked keys.

    :param sources: the contracts of the topics read that have tiers or key order.
    :param pause: pauses partitions; ``resume`` resumes them unless the consumer's own
        backpressure holds them.
    :param connection: connection settings for reading tiers and dead letters back.
    """

    def __init__(
        self,
        catalog: Catalog,
        sources: Sequence[TopicContract],
        *,
        dead_letters: DeadLetters,
        group_id: str,
        connection: Mapping[str, object],
        pause: Callable[[list[Key]], None],
        resume: Callable[[list[Key]], None],
    ) -> None:
        self._dead_letters = dead_letters
        self._group_id = group_id
        self._connection = dict(connection)
        self._pause = pause
        self._resume = resume
        self.sources = {c.name: c for c in sources}
        #: Each tier topic: ``(source, index)`` (0 is the first tier).
        self.tier_of: dict[str, tuple[str, int]] = {}
        for contract in sources:
            for index, name in enumerate(contract.retry_topics):
                self.tier_of[name] = (contract.name, index)
        self._keyed = {c.name for c in sources if c.ordering == "key"}
        self._tier_keys = {name: catalog.topic(name).key for name in self.tier_of}
        service = dead_letters.service
        for name, (source, _) in self.tier_of.items():
            if service not in catalog.topic(name).producers:
                msg = (
                    f"service {service!r} consumes {source!r} but is not a producer of its "
                    f"retry topic {name!r}: add it to that contract's producers"
                )
                raise GovernanceViolation(
                    msg, rule="retry.rights", topic=name, field="producers", value=service
                )
        #: Records held per tier partition, the head not due yet (the partition paused).
        self._waiting: dict[Key, deque[Record]] = {}
        #: ``(source, partition, key)``: ``[tier index of its oldest waiting record
        #: (len(tiers): the dead-letter topic), records of it in tiers]``.
        self._parked: dict[Parked, list[int]] = {}
        self._lock = threading.Lock()
        self._lanes: set[Key] = set()
        self._crowded = False
        #: Tier writes not yet known acknowledged (:meth:`flush` before each commit).
        self._sent: list[DeliveryFuture] = []
        #: A tier write that failed: every later commit is refused with it.
        self._failed: DeliveryError | None = None

    def flush(self) -> None:
        """Wait until every record written to a tier is acknowledged (before a commit);
        raise :class:`~governed_kafka.errors.DeliveryError` when one was not, now and at
        every later commit, so the source records it came from stay uncommitted (they are
        read again by the consumer that takes the partitions over)."""
        if self._failed is not None:
            raise self._failed  # the records behind a lost tier write are never committed
        sent, self._sent = self._sent, []
        if sent:
            self._dead_letters.sender().flush()
            for future in sent:
                error = future.exception(0)
                if error is not None:
                    self._failed = error
                    raise error

    @classmethod
    def of(
        cls,
        catalog: Catalog,
        sources: Sequence[TopicContract],
        *,
        dead_letters: DeadLetters,
        config: Mapping[str, Any],
        transactional: bool,
        pause: Callable[[list[Key]], None],
        resume: Callable[[list[Key]], None],
    ) -> Tiers | None:
        """The tiers of a consumer reading ``sources`` (``None`` when none has tiers or key
        order); refused with ``CommitStrategy.transactional()``, which does not offer them."""
        if not sources:
            return None
        if transactional:
            msg = (
                f"topic {sources[0].name!r} has retry_topics or ordering = 'key', which "
                "CommitStrategy.transactional() does not offer yet: use another strategy"
            )
            raise ConfigError(msg, key="commit", value="transactional")
        return cls(
            catalog,
            sources,
            dead_letters=dead_letters,
            group_id=str(config["group.id"]),
            connection=_config.shared_connection(config),
            pause=pause,
            resume=resume,
        )

    @property
    def topics(self) -> list[str]:
        """The tier topics to subscribe to."""
        return list(self.tier_of)

    def held(self) -> set[Key]:
        """Partitions paused here (a tier's head not due, or too many parked keys)."""
        held = set(self._waiting)
        if self._crowded:
            held |= self._lanes
        return held

    @property
    def parked_keys(self) -> int:
        """How many keys are parked."""
        return len(self._parked)

    # ------------------------------------------------------------ reading (consumer thread)

    def sift(self, records: list[Record], now_ms: int | None = None) -> list[Record]:
        """The records to hand on now: tier records that are due, and every other one.

        A tier record not due yet is held with the rest of its partition, which pauses.
        """
        tier_of = self.tier_of
        waiting = self._waiting
        now = int(time.time() * 1000) if now_ms is None else now_ms
        out = []
        for record in records:
            topic = record[0]
            if topic not in tier_of:
                out.append(record)
                continue
            key = (topic, record[1])
            held = waiting.get(key)
            if held is not None:
                held.append(record)
                continue
            due = _int_header(record, "retry.due") or 0
            if due > now:
                waiting[key] = deque([record])
                self._pause([key])
            else:
                out.append(record)
        return out

    def release(self, now_ms: int | None = None) -> list[Record]:
        """Held records now due, in order; their partitions resume when none is left."""
        if not self._waiting:
            return []
        now = int(time.time() * 1000) if now_ms is None else now_ms
        out: list[Record] = []
        emptied = []
        for key, held in self._waiting.items():
            while held and (_int_header(held[0], "retry.due") or 0) <= now:
                out.append(held.popleft())
            if not held:
                emptied.append(key)
        for key in emptied:
            del self._waiting[key]
        if emptied:
            self._resume(emptied)
        return out

    def due_in(self, now_ms: int | None = None) -> float | None:
        """Seconds until the first held head is due (``None``: nothing held)."""
        if not self._waiting:
            return None
        now = int(time.time() * 1000) if now_ms is None else now_ms
        first = min((_int_header(h[0], "retry.due") or 0) for h in self._waiting.values())
        return max(first - now, 0) / 1000

    def next_due(self) -> dict[Key, int]:
        """Each held partition's head: when it is due (ms since the epoch)."""
        return {k: _int_header(h[0], "retry.due") or 0 for k, h in self._waiting.items()}

    def crowding(self) -> None:
        """Pause the key-ordered source partitions past :data:`MAX_PARKED_KEYS` parked
        keys, resume them under 90% of it."""
        count = len(self._parked)
        if not self._crowded and count >= MAX_PARKED_KEYS and self._lanes:
            self._crowded = True
            _log.warning(
                "group %r: %d parked keys: pausing %d key-ordered partitions until keys are "
                "released",
                self._group_id,
                count,
                len(self._lanes),
            )
            self._pause(sorted(self._lanes))
        elif self._crowded and count < MAX_PARKED_KEYS * 9 // 10:
            self._crowded = False
            self._resume(sorted(self._lanes))

    # ------------------------------------------------------------ rebalances

    def assigned(self, partitions: Iterable[Key], *, held: Iterable[Key]) -> None:
        """``partitions`` were assigned (``held``: every partition held now): rebuild the
        parked keys of the key-ordered lanes among them."""
        given = set(partitions)
        holding = set(held)
        lanes = {k for k in given if k[0] in self._keyed}
        self._lanes |= lanes
        if not lanes:
            return
        started = time.monotonic()
        tiers: dict[Key, tuple[str, int, int]] = {}
        dead: dict[Key, tuple[str, int]] = {}
        for source, partition in sorted(lanes):
            contract = self.sources[source]
            for index, name in enumerate(contract.retry_topics):
                if (name, partition) not in holding:
                    _log.error(
                        "group %r holds %s[%d] but not %s[%d]: key order of that partition "
                        "is not kept (use the range assignor, and equal partition counts)",
                        self._group_id,
                        source,
                        partition,
                        name,
                        partition,
                    )
                tiers[name, partition] = (source, partition, index)
            if contract.dead_letter_topic is not None:
                dead[contract.dead_letter_topic, partition] = (source, len(contract.retry_topics))
        found = self._rebuild(tiers, dead)
        with self._lock:
            for parked, (tier, count) in found.items():
                self._parked[parked] = [tier, count]
        _log.info(
            "group %r: %d parked keys rebuilt for %d partitions in %.2f s",
            self._group_id,
            len(found),
            len(lanes),
            time.monotonic() - started,
        )
        self.crowding()

    def _rebuild(
        self, tiers: Mapping[Key, tuple[str, int, int]], dead: Mapping[Key, tuple[str, int]]
    ) -> dict[Parked, tuple[int, int]]:
        found: dict[Parked, tuple[int, int]] = {}
        with _kafka.LogReader(self._connection, group_id=self._group_id) as reader:
            committed = reader.committed(list(tiers), timeout=REBUILD_TIMEOUT_S)
            ranges = {}
            for key in tiers:
                low, high = reader.watermarks(key, timeout=REBUILD_TIMEOUT_S)
                ranges[key] = (max(low, committed.get(key, (low, ""))[0]), high)
            for entry in reader.read(ranges, timeout=REBUILD_TIMEOUT_S):
                source, partition, index = tiers[entry.topic, entry.partition]
                if entry.key is not None and origin_of(entry)[0] == source:
                    parked = (source, partition, entry.key)
                    tier, count = found.get(parked, (index, 0))
                    found[parked] = (max(tier, index), count + 1)
                    self._check_bound(len(found), source)
        for (dlq, partition), (source, index) in dead.items():
            with _kafka.LogReader(self._connection, group_id=REDRIVE_GROUP_PREFIX + dlq) as reader:
                key = (dlq, partition)
                low, high = reader.watermarks(key, timeout=REBUILD_TIMEOUT_S)
                done = reader.committed([key], timeout=REBUILD_TIMEOUT_S).get(key, (low, ""))[0]
                for entry in reader.read({key: (max(low, done), high)}, timeout=REBUILD_TIMEOUT_S):
                    origin = entry.header("dlq.original.topic")
                    if entry.key is not None and origin == source.encode():
                        parked = (source, partition, entry.key)
                        found[parked] = (index, found.get(parked, (index, 0))[1])
                        self._check_bound(len(found), source)
        return found

    def _check_bound(self, count: int, topic: str) -> None:
        if count > MAX_PARKED_KEYS * 2:
            msg = (
                f"group {self._group_id!r}: more than {MAX_PARKED_KEYS * 2} parked keys in the "
                f"retry and dead-letter topics of {topic!r}; redrive or clear its dead "
                "letters before consuming it"
            )
            raise GovernanceViolation(
                msg, rule="ordering.parked-limit", topic=topic, field="ordering"
            )

    def dropped(self, partitions: Iterable[Key]) -> None:
        """Partitions were revoked or lost: forget their held records and parked keys."""
        gone = set(partitions)
        for key in gone:
            self._waiting.pop(key, None)
        self._lanes -= gone
        with self._lock:
            for parked in [p for p in self._parked if (p[0], p[1]) in gone]:
                del self._parked[parked]

    # ------------------------------------------------------------ handling

    def covers(self, record: Record) -> bool:
        """Whether ``record`` is of a topic with tiers or key order, or of a tier."""
        return record.topic in self.sources or record.topic in self.tier_of

    def next_is_tier(self, record: Record) -> bool:
        """Whether a failed ``record`` goes to a retry topic (else to the dead letters)."""
        source, index = self._where(record)
        return index + 1 < len(self.sources[source].retry_topics)

    def _where(self, record: Record) -> tuple[str, int]:
        """``(source, tier index)``: ``-1`` for a record of the source itself."""
        found = self.tier_of.get(record.topic)
        return found if found is not None else (record.topic, -1)

    def route(self, record: Record) -> int | None:
        """Where a record of a parked key goes without being handled (a tier index, or
        the number of tiers for the dead-letter topic); ``None``: handle it."""
        source, index = self._where(record)
        if source not in self._keyed or record.raw_key is None:
            return None
        dlq = len(self.sources[source].retry_topics)
        parked = (source, record.partition, record.raw_key)
        with self._lock:
            state = self._parked.get(parked)
            if state is None or state[0] <= index:
                return None
            redriven = record.header(REDRIVE_HEADER) is not None
            if index < 0 and state[0] == dlq and state[1] == 0 and redriven:
                del self._parked[parked]  # its dead letters come back: handle them
                return None
            target = state[0]
            if index < 0 and target < dlq:
                state[1] += 1  # one more record of the key in the tiers
            elif index >= 0 and target == dlq:
                state[1] -= 1  # it leaves the tiers for the dead-letter topic
            return target

    def succeeded(self, record: Record) -> None:
        """A tier record of a key-ordered topic was handled: release its key when it was
        the last one in the tiers."""
        source, index = self._where(record)
        if index < 0 or source not in self._keyed or record.raw_key is None:
            return
        dlq = len(self.sources[source].retry_topics)
        parked = (source, record.partition, record.raw_key)
        with self._lock:
            state = self._parked.get(parked)
            if state is not None:
                state[1] -= 1
                if state[1] <= 0 and state[0] < dlq:
                    del self._parked[parked]

    def park(self, record: Record, target: int) -> None:
        """Write a record of a parked key behind its key's oldest one, not handled."""
        self._write(record, target, None, attempts=self._attempts(record))

    def forward(self, record: Record, error: BaseException, *, attempts: int) -> None:
        """The record failed ``attempts`` times here: write it to the next tier (or the
        dead-letter topic) and, with key order, park its key."""
        source, index = self._where(record)
        target = index + 1
        total = self._attempts(record) + attempts
        if source in self._keyed and record.raw_key is not None:
            dlq = len(self.sources[source].retry_topics)
            parked = (source, record.partition, record.raw_key)
            with self._lock:
                state = self._parked.setdefault(parked, [target, 0])
                if index < 0 and target < dlq:
                    state[1] += 1
                elif index >= 0 and target == dlq:
                    state[1] -= 1
                state[0] = max(state[0], target)
        self._write(record, target, error, attempts=total)

    @staticmethod
    def _attempts(record: Record) -> int:
        return _int_header(record, "retry.attempt") or 0

    def _write(
        self, record: Record, target: int, error: BaseException | None, *, attempts: int
    ) -> None:
        source, _ = self._where(record)
        contract = self.sources[source]
        origin = origin_of(record)
        lane = record.partition if source in self._keyed else None
        if target >= len(contract.retry_topics):
            parked = [("dlq.parked", "true")] if error is None else []
            self._dead_letters.publish(
                record,
                error or KeyParked(origin),
                attempts=attempts,
                origin=origin,
                partition=lane,
                extra=parked,
            )
            return
        tier, delay = contract.retry_tiers[target]
        due = int(time.time() * 1000) + delay
        headers: HeaderList = [
            (k, v)
            for k, v in record.headers
            if not k.startswith("retry.") and sendable_header_name(k)
        ]
        headers += [
            ("retry.attempt", str(attempts)),
            ("retry.tier", str(target + 1)),
            ("retry.due", str(due)),
            ("retry.origin.topic", origin[0]),
            ("retry.origin.partition", str(origin[1])),
            ("retry.origin.offset", str(origin[2])),
        ]
        if error is None:
            headers.append(("retry.parked", "true"))
        else:
            headers += [
                ("retry.error.type", f"{type(error).__module__}.{type(error).__qualname__}"),
                ("retry.error.message", str(error)[:MAX_ERROR_MESSAGE]),
            ]
        self._sent.append(
            self._dead_letters.sender().send(
                tier,
                record.raw_value if record.raw_value is not None else b"",
                key=None if self._tier_keys[tier] == "forbidden" else record.raw_key,
                headers=headers,
                partition=lane,
            )
        )
        if len(self._sent) >= MAX_UNACKNOWLEDGED:
            self.flush()
        _log.info(
            "%s[%d]@%d (origin %s[%d]@%d) to %s, due in %.1f s%s",
            record.topic,
            record.partition,
            record.offset,
            *origin,
            tier,
            delay / 1000,
            " (parked behind an earlier record of its key)" if error is None else "",
        )


class KeyParked(Exception):
    """Why a record that was never tried went to the dead-letter topic."""

    def __init__(self, origin: tuple[str, int, int]) -> None:
        super().__init__(
            f"parked behind an earlier dead letter of its key from {origin[0]}[{origin[1]}]"
        )


def read_tiers(
    topics: dict[str, Topic], contract_for: Callable[[str], TopicContract]
) -> list[TopicContract]:
    """Add the tiers of the topics a consumer reads to ``topics`` (their values decoded
    as their source's); return the contracts of the topics with tiers or key order."""
    sources = [t.contract for t in topics.values()]
    sources = [c for c in sources if c.retry_topics or c.ordering == "key"]
    for contract in sources:
        for tier in contract.retry_topics:
            topics[tier] = Topic(contract_for(tier), None)
            topics[tier].decode = topics[contract.name].decode
    return sources


def keep_lanes(
    sources: Sequence[TopicContract],
    config: MutableMapping[str, Any],
    overrides: Mapping[str, object],
) -> None:
    """With key order, make the group assign each partition number of a topic and of its
    tiers to one member (the ``range`` assignor); refuse another assignor."""
    if not any(c.ordering == "key" for c in sources):
        return
    classic = config.get("group.protocol", "classic") == "classic"
    key = "partition.assignment.strategy" if classic else "group.remote.assignor"
    chosen = overrides.get(key)
    if chosen is not None and chosen != "range":
        msg = (
            f"override {key!r} = {chosen!r} is refused: a topic read with ordering = 'key' "
            "needs the range assignor, which gives each partition and the same partition "
            "of its retry and dead-letter topics to the same consumer"
        )
        raise ConfigError(msg, key=key, value=chosen)
    config[key] = "range"
