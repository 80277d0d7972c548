"""When a consumer commits, and what it may commit.

Whatever the strategy, a consumer commits only offsets of records that were
*processed*, and in each partition only up to the first record that was not: the
offset tracker never lets out-of-order completion commit past a gap. The strategies
differ only in *when* they commit, which sets how much work a crash replays:

============  ===========================  =====================================
strategy      commits                      a crash replays at most
============  ===========================  =====================================
per_record    after every record,          the record being processed
              synchronously
batched       every ``max_records``        ``max_records`` records, or
              processed records or every   ``max_interval_s`` worth of records
              ``max_interval_s``,          (whichever comes first), plus those
              asynchronously               being processed
manual        when the application calls   everything processed since the
              ``consumer.commit()``        application last committed
============  ===========================  =====================================

No strategy ever loses a record: a record is committed only after it was processed
(or sent to the dead-letter topic). All of them commit synchronously when partitions
are revoked and when the consumer closes, so an orderly rebalance or shutdown replays
nothing that was processed.
"""

from __future__ import annotations

from collections import deque
from typing import Final

import attrs

__all__ = ["CommitStrategy"]

#: Default batch: commit after this many processed records ...
DEFAULT_BATCH_RECORDS: Final = 500
#: ... or after this many seconds, whichever comes first.
DEFAULT_BATCH_INTERVAL_S: Final = 5.0


@attrs.frozen
class CommitStrategy:
    """When processed offsets are committed. Build one with the factory methods."""

    #: ``"per_record"``, ``"batched"`` or ``"manual"``.
    kind: str
    #: Commit once this many records were processed since the last commit (batched).
    max_records: int | None = None
    #: Commit once this many seconds passed since the last commit (batched).
    max_interval_s: float | None = None

    @classmethod
    def per_record(cls) -> CommitStrategy:
        """Commit synchronously after every processed record: the smallest replay, the slowest."""
        return cls("per_record")

    @classmethod
    def batched(
        cls,
        *,
        max_records: int = DEFAULT_BATCH_RECORDS,
        max_interval_s: float = DEFAULT_BATCH_INTERVAL_S,
    ) -> CommitStrategy:
        """Commit asynchronously every ``max_records`` processed records or ``max_interval_s``."""
        if max_records < 1:
            msg = f"max_records must be >= 1, got {max_records}"
            raise ValueError(msg)
        if max_interval_s <= 0:
            msg = f"max_interval_s must be > 0, got {max_interval_s}"
            raise ValueError(msg)
        return cls("batched", max_records=max_records, max_interval_s=max_interval_s)

    @classmethod
    def manual(cls) -> CommitStrategy:
        """Commit only when the application calls ``consumer.commit()`` (and on revoke/close)."""
        return cls("manual")

    @property
    def synchronous(self) -> bool:
        """Whether routine commits wait for the broker's answer."""
        return self.kind != "batched"

    def due(self, processed_since: int, seconds_since: float) -> bool:
        """Whether a routine commit is due, ``processed_since`` records and ``seconds_since``
        seconds after the last one."""
        if processed_since <= 0:
            return False
        if self.kind == "per_record":
            return True
        if self.kind == "batched":
            assert self.max_records is not None
            assert self.max_interval_s is not None
            return processed_since >= self.max_records or seconds_since >= self.max_interval_s
        return False


class PartitionOffsets:
    """Offsets of one assigned partition: delivered, processed, committable.

    Records are delivered in offset order. ``position`` is the offset to commit: one
    past the last record of the longest processed prefix of the delivered records.
    Offsets need not be contiguous (compaction and transaction markers leave gaps),
    so the prefix is over *delivered* records, not over integers.
    """

    __slots__ = ("committed", "done", "pending", "position")

    def __init__(self, committed: int | None = None) -> None:
        #: Delivered and not yet part of the processed prefix, in offset order.
        self.pending: deque[int] = deque()
        #: Processed offsets that wait for an earlier record to be processed.
        self.done: set[int] = set()
        #: Offset to commit (next record to process), or None if nothing processed yet.
        self.position: int | None = None
        #: Last offset committed by this consumer (or found committed at assignment).
        self.committed: int | None = committed

    def delivered(self, offset: int) -> None:
        self.pending.append(offset)

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

    @property
    def in_flight(self) -> int:
        """Records delivered and not yet processed."""
        return len(self.pending) - len(self.done)

    @property
    def uncommitted(self) -> bool:
        return self.position is not None and self.position != self.committed
