"""The offset book: what a consumer was given, processed and committed, per partition.

The book is the only writer of offsets. It holds a :class:`PartitionOffsets` per
assigned partition and the counts backpressure and the commit strategies look at;
the consumer tells it of each rebalance, each delivered and processed record and each
commit, and asks it what to commit. Only the longest processed prefix of each
partition's delivered records is ever committable: out-of-order completion never
commits past a gap.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from . import _kafka
from .lag import PartitionLag

if TYPE_CHECKING:
    from ._records import Decoder, Record

__all__ = ["OffsetBook", "PartitionOffsets"]

Key = tuple[str, int]


class PartitionOffsets:
    """Offsets of one assigned partition: delivered, processed, committable.

    Records are delivered in offset order. ``position`` is the offset to commit: one
    past the last record of the longest processed prefix of the delivered records.
    Offsets need not be contiguous (compaction and transaction markers leave gaps),
    so the prefix is over *delivered* records, not over integers.
    """

    __slots__ = ("committed", "delivered", "done", "pending", "position")

    def __init__(self, committed: int | None = None) -> None:
        #: Delivered and not yet part of the processed prefix, in offset order.
        self.pending: deque[int] = deque()
        #: Tell of a delivered record's offset (called once per record while reading).
        self.delivered = self.pending.append
        #: Processed offsets that wait for an earlier record to be processed.
        self.done: set[int] = set()
        #: Offset to commit (next record to process), or None if nothing processed yet.
        self.position: int | None = None
        #: Last offset committed by this consumer (or found committed at assignment).
        self.committed: int | None = committed

    def processed(self, offset: int) -> bool:
        """Mark ``offset`` processed; return whether it was delivered and unprocessed."""
        pending = self.pending
        if pending and pending[0] == offset:
            pending.popleft()
            done = self.done
            position = offset + 1
            if done:  # records finished out of order wait here for this one
                while pending and pending[0] in done:
                    head = pending.popleft()
                    done.discard(head)
                    position = head + 1
            self.position = position
            return True
        if offset in self.done or not pending or offset < pending[0] or offset > pending[-1]:
            return False  # processed twice, or never delivered here: nothing changes
        self.done.add(offset)
        return True

    def processed_in_order(self, offset: int) -> bool:
        """Mark ``offset`` processed by a handler that takes records in delivery order.

        When nothing is pending, records were read without tracking them one by one
        (:meth:`OffsetBook.lanes`): finishing one simply moves the position past it.
        """
        if self.pending:
            return self.processed(offset)
        self.position = offset + 1
        return True

    @property
    def in_flight(self) -> int:
        """Records delivered and not yet processed."""
        return len(self.pending) - len(self.done)

    @property
    def uncommitted(self) -> bool:
        """Whether the position moved past the last commit."""
        return self.position is not None and self.position != self.committed


class OffsetBook:
    """The offsets of every partition a consumer holds, and its counts.

    ``in_flight`` counts the records delivered to the application and not yet processed;
    ``processed_since_commit`` and ``last_commit`` are what a commit strategy judges.
    """

    def __init__(self) -> None:
        self._partitions: dict[Key, PartitionOffsets] = {}
        #: Records delivered to the application and not yet processed.
        self.in_flight = 0
        #: Records processed since the last commit.
        self.processed_since_commit = 0
        #: When the last commit was made (``time.monotonic()``).
        self.last_commit = time.monotonic()

    # ------------------------------------------------------------------ partitions

    def keys(self) -> list[Key]:
        """The partitions held."""
        return list(self._partitions)

    def get(self, key: Key) -> PartitionOffsets | None:
        """The offsets of ``key`` (to read), or ``None`` if it is not held."""
        return self._partitions.get(key)

    def assign(self, keys: Iterable[Key]) -> None:
        """The consumer was given ``keys`` (those it held already are kept as they are)."""
        for key in keys:
            self._partitions.setdefault(key, PartitionOffsets())

    def drop(self, keys: Iterable[Key]) -> None:
        """The consumer no longer holds ``keys``: forget their offsets and records."""
        for key in set(keys):
            offsets = self._partitions.pop(key, None)
            if offsets is not None:
                self.in_flight -= offsets.in_flight

    def held(self) -> int:
        """Records taken from the cluster and not yet committable: unprocessed ones, and
        processed ones that wait behind an unprocessed record of their partition.

        Backpressure bounds this: a first record never marked processed holds every later
        one of its partition, however many of them were processed.
        """
        waiting = 0
        for offsets in self._partitions.values():
            waiting += len(offsets.pending)
        return max(waiting, self.in_flight)

    def lag(
        self,
        key: Key,
        high_watermark: int | None,
        committed: Mapping[Key, int | None] | None = None,
    ) -> PartitionLag:
        """The lag of ``key`` against ``high_watermark``: processed as the book holds it,
        committed as ``committed`` says (by default, what this consumer last committed)."""
        offsets = self._partitions.get(key)
        own = offsets.committed if offsets is not None else None
        return PartitionLag(
            topic=key[0],
            partition=key[1],
            high_watermark=high_watermark,
            committed=own if committed is None else committed.get(key),
            processed=offsets.position if offsets is not None else None,
        )

    # ------------------------------------------------------------------ reading

    def lanes(self, decoders: Mapping[str, Decoder | None], *, in_order: bool) -> _kafka.Lanes:
        """How a read puts each partition's records in the book, and decodes them.

        Records are tracked one by one (``pending``) so that they may be marked processed
        in any order. With ``in_order`` (a handler that finishes each record before the
        next), a partition with nothing pending skips that: finishing a record then simply
        moves its position past it (:meth:`PartitionOffsets.processed_in_order`).
        """
        partitions = self._partitions

        def lane(topic: str, partition: int) -> _kafka.Lane | None:
            offsets = partitions.get((topic, partition))
            if offsets is None:
                return None  # a partition revoked during this poll: its new owner reads it
            track = offsets.delivered if not in_order or offsets.pending else None
            return track, decoders[topic]

        return lane

    def taken(self, count: int) -> None:
        """``count`` records were delivered to the application."""
        self.in_flight += count

    def hold(self, key: Key, offset: int) -> None:
        """Track a record read without tracking (an in-order read) that must be marked
        processed on its own, before the records read with it (a dead letter)."""
        offsets = self._partitions.get(key)
        if offsets is not None and not offsets.pending:
            offsets.delivered(offset)

    def defer(self, records: Sequence[Record]) -> None:
        """Records read but not handled wait for the next read: track each one by one."""
        for record in records:
            offsets = self._partitions.get((record.topic, record.partition))
            if offsets is not None and (not offsets.pending or offsets.pending[-1] < record.offset):
                offsets.delivered(record.offset)

    # ------------------------------------------------------------------ processing

    def mark(self, key: Key, offset: int) -> bool:
        """Mark one record processed (any order); return whether it counted.

        A record of a partition no longer held, or marked before, changes nothing.
        """
        offsets = self._partitions.get(key)
        if offsets is None or not offsets.processed(offset):
            return False
        self.settled(1)
        return True

    def settled(self, count: int) -> None:
        """``count`` records were processed (their partitions' offsets already say so)."""
        self.in_flight -= count
        self.processed_since_commit += count

    # ------------------------------------------------------------------ committing

    def to_commit(self, only: Iterable[Key] | None = None) -> _kafka.Offsets:
        """The positions to commit now (of ``only``, or of every partition held) and the
        counters restarted: ``(topic, partition, offset)`` of each that moved."""
        keys = list(self._partitions) if only is None else list(only)
        due = []
        for key in keys:
            offsets = self._partitions.get(key)
            if offsets is not None and offsets.uncommitted:
                assert offsets.position is not None
                due.append((key[0], key[1], offsets.position))
        self.processed_since_commit = 0
        self.last_commit = time.monotonic()
        return tuple(due)

    def committed(self, committed: _kafka.Offsets) -> None:
        """These positions were committed."""
        for topic, partition, offset in committed:
            offsets = self._partitions.get((topic, partition))
            if offsets is not None:
                offsets.committed = offset

    def rewind(self) -> int:
        """Everything since the last commit is to be read and processed again (a
        transactional consumer aborted it): each partition forgets what it was given and
        processed after its committed position. Returns how many records had been
        processed since then (now undone)."""
        undone = self.processed_since_commit
        for key, offsets in self._partitions.items():
            again = self._partitions[key] = PartitionOffsets(offsets.committed)
            again.position = offsets.committed  # processed up to there, and no further
        self.in_flight = 0
        self.processed_since_commit = 0
        self.last_commit = time.monotonic()
        return undone

    def not_committed(self, failed: _kafka.Offsets) -> None:
        """An asynchronous commit of these positions failed: commit them again next time."""
        for topic, partition, offset in failed:
            offsets = self._partitions.get((topic, partition))
            if offsets is not None and offsets.committed == offset:
                offsets.committed = None
