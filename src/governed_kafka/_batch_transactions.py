"""A transactional consumer's batches: each one a transaction of its producer.

With ``CommitStrategy.transactional(producer)`` a consumer opens a transaction of
``producer`` as soon as it holds records to handle (:meth:`BatchTransactions.delivered`),
and its commits (:mod:`governed_kafka._commits`) commit that transaction with the
processed offsets sent to it, under the consumer's group metadata (KIP-447): the
handler's records and the input offsets become visible together, or never.

A handler error dooms the open transaction (:meth:`BatchTransactions.failed`): it is
aborted, every partition is rewound to its last committed offset, and the batch is read
again after the retry policy's backoff. The record's attempts are counted across those
rewinds; once they are exhausted (or its error is not retryable) it is dead-lettered in
the next transaction instead of being handled again (:meth:`BatchTransactions.exhausted`).
A commit the producer had to abort rewinds the same way; a fenced producer stops the
consumer with :class:`~governed_kafka.errors.ProducerFenced`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Final

import attrs

from . import _kafka
from ._offsets import OffsetBook
from .errors import ProducerFenced, TransactionError
from .retry import RetryPolicy

if TYPE_CHECKING:
    from ._records import Record
    from ._transactions import Transactions

__all__ = ["MAX_ABORTED_COMMITS", "BatchTransactions", "Failed", "Rewind"]

_log = logging.getLogger("governed_kafka.consumer")

#: Commits aborted in a row (each batch read again in between) after which the consumer
#: stops with the last error instead of trying again: a batch that can never commit
#: (an output the broker refuses every time) must not loop unseen.
MAX_ABORTED_COMMITS: Final = 5

Key = tuple[str, int]


@attrs.define
class Failed:
    """A record whose handler failed in a transaction that was then aborted."""

    #: Attempts made so far (the failed ones).
    attempts: int
    #: The last error.
    error: BaseException
    #: Whether no attempt is left: it is dead-lettered when it comes again.
    exhausted: bool


class Rewind(Exception):
    """A handler failed: the batch's transaction is doomed, and the consumer reads again
    from the last committed offsets after ``wait_s``. ``failed`` is ``None`` when the
    record is not to blame: its send was refused because the transaction had already
    lost another record.

    Raised by the consumer's handling and caught by its run loop; it never reaches the
    application.
    """

    def __init__(
        self, record: Record, error: BaseException, failed: Failed | None, wait_s: float
    ) -> None:
        super().__init__(f"{record.topic}[{record.partition}]@{record.offset} failed: {error}")
        self.record = record
        self.error = error
        self.failed = failed
        self.wait_s = wait_s


class BatchTransactions:
    """The transactions of one consumer's batches (see the module docs).

    :param producer: the transactional producer the handler sends through.
    :param on_rewind: called after every rewind, to drop records read and not handled.
    """

    def __init__(
        self,
        transactions: Transactions,
        book: OffsetBook,
        retry: RetryPolicy,
        *,
        group_id: str,
        on_rewind: Callable[[], None],
    ) -> None:
        self.transactions = transactions
        self._book = book
        self._retry = retry
        self.group_id = group_id
        self._on_rewind = [on_rewind]
        self._client: _kafka.ConsumerClient | None = None
        #: Partitions rewound during the read in progress, with where they read again.
        self._rewound: dict[Key, int] = {}
        #: Per partition this consumer has not committed yet, the first offset it read:
        #: where a rewind reads it again (a committed partition goes back to its commit).
        self._starts: dict[Key, int] = {}
        #: Records whose handler failed, by ``(topic, partition, offset)``.
        self.failures: dict[tuple[str, int, int], Failed] = {}
        #: The handler error that dooms the open transaction (it must be aborted).
        self.doomed: BaseException | None = None
        #: Dead letters published in the open transaction.
        self.dead_letters = 0
        #: Records and dead letters undone by rewinds, until the run loop takes them.
        self.undone = (0, 0)
        self._aborted_commits = 0
        #: Why the doomed transaction cannot commit when it lost a record (its sends
        #: were refused): it is then aborted as a failed commit.
        self._lost: TransactionError | None = None

    def bind(self, client: _kafka.ConsumerClient) -> None:
        """Rewind and read the group metadata through ``client``."""
        self._client = client

    def add_rewind_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after every rewind too (to drop records read and not handled)."""
        self._on_rewind.append(listener)

    def reading(self) -> None:
        """A read begins: rewinds from now on happen inside it (in a rebalance callback)."""
        self._rewound.clear()

    def read_settled(
        self, records: list[Record], rejected: list[tuple[Record, Any]]
    ) -> list[Record]:
        """The records of a read, less those of partitions rewound during it.

        A rebalance inside the read can abort and rewind the transaction; records of a
        rewound partition that the read returns anyway may come from before the seek, so
        they are dropped (``rejected`` too, in place) and the partition is sought again:
        everything it holds after its committed offset is read again, once.
        """
        rewound = self._rewound
        if not rewound:
            return records
        assert self._client is not None
        stale = {(r.topic, r.partition) for r in records} | {
            (r.topic, r.partition) for r, _ in rejected
        }
        again = tuple((t, p, o) for (t, p), o in sorted(rewound.items()) if (t, p) in stale)
        rewound.clear()
        if not again:
            return records
        self._client.seek(again)
        gone = {(t, p) for t, p, _ in again}
        rejected[:] = [(r, e) for r, e in rejected if (r.topic, r.partition) not in gone]
        return [r for r in records if (r.topic, r.partition) not in gone]

    @property
    def transactional_id(self) -> str:
        """The producer's transactional id."""
        return self.transactions.transactional_id

    @property
    def open(self) -> bool:
        """Whether this consumer holds an open transaction."""
        txn = self.transactions
        return txn.open and txn.owner == self.group_id

    # ------------------------------------------------------------------ reading

    def delivered(self, records: Iterable[Record]) -> None:
        """Records are about to be handled (or dead-lettered): a transaction is open for
        them, and each partition remembers where a rewind reads again."""
        if not self.open:
            self.transactions.begin(self.group_id)
        starts = self._starts
        last: Key | None = None
        for record in records:
            key = (record.topic, record.partition)
            if key == last:
                continue
            last = key
            start = starts.get(key)
            if start is None or record.offset < start:
                starts[key] = record.offset

    def begin(self) -> None:
        """A record is about to be handled or dead-lettered: open a transaction if none is
        (a commit may have come in the middle of a polled batch)."""
        if not self.open:
            self.transactions.begin(self.group_id)

    def exhausted(self, record: Record) -> Failed | None:
        """The failure of a record with no attempt left, to dead-letter; else ``None``."""
        failed = self.failures.get((record.topic, record.partition, record.offset))
        return failed if failed is not None and failed.exhausted else None

    def attempt(self, record: Record) -> int:
        """The number of the attempt about to be made at ``record`` (1 for the first)."""
        failed = self.failures.get((record.topic, record.partition, record.offset))
        return 1 if failed is None else failed.attempts + 1

    def failed(self, record: Record, error: BaseException) -> Rewind:
        """The handler failed on ``record``: doom the transaction; say when to read again.

        A fatal error of the producer (fenced) is raised as it is: nothing can be retried.
        """
        fatal = self.transactions.fatal
        if isinstance(error, TransactionError) and error.fatal:
            raise error
        if fatal is not None:
            raise fatal from error
        lost = self.transactions.lost_a_record(error)
        if lost is not None:  # not the record's failure: the transaction's
            self.doomed = self._lost = lost
            return Rewind(record, lost, None, 0.0)
        key = (record.topic, record.partition, record.offset)
        previous = self.failures.get(key)
        attempts = 1 if previous is None else previous.attempts + 1
        exhausted = attempts >= self._retry.attempts or not self._retry.retryable(error)
        failed = self.failures[key] = Failed(attempts=attempts, error=error, exhausted=exhausted)
        self.doomed = error
        wait = 0.0 if exhausted else self._retry.backoff_s(attempts)
        return Rewind(record, error, failed, wait)

    # ------------------------------------------------------------------ committing

    def commit(
        self, reason: str, *, going: Iterable[Key] = ()
    ) -> tuple[_kafka.Offsets, TransactionError | None] | None:
        """Commit the open transaction with the processed offsets of every partition.

        ``going`` are partitions being revoked: they are committed like the others, and
        not rewound if the transaction has to be aborted. A doomed transaction is
        aborted instead. Returns the offsets and, when the producer had to abort the
        commit, its error (everything was rewound); ``None`` when there was nothing to
        commit. A fatal error (fenced) is raised once; later calls do nothing.
        """
        if self.transactions.fatal is not None:
            return None
        if self.doomed is not None:
            self.abort_doomed(going=going)
            return None
        if not self.open:
            return None
        assert self._client is not None
        processed = self._book.processed_since_commit
        offsets = self._book.to_commit()
        try:
            self.transactions.commit(
                self.group_id,
                reason=reason,
                offsets=offsets,
                group=self._client.group_metadata() if offsets else None,
                group_id=self.group_id,
            )
        except ProducerFenced:
            raise
        except TransactionError as failed:
            if failed.fatal or not failed.aborted:
                raise
            self._book.processed_since_commit = processed  # undone by the rewind
            self._rewind(going)
            if self._count_aborted(failed):
                raise
            return offsets, failed
        self._aborted_commits = 0
        self._book.committed(offsets)
        for topic, partition, _ in offsets:
            self._starts.pop((topic, partition), None)
        self.dead_letters = 0
        if self.failures:
            self._forget_failures(offsets)
        return offsets, None

    def _forget_failures(self, committed: _kafka.Offsets) -> None:
        """Failures of records now committed (dead-lettered or handled) are over."""
        positions = {(t, p): o for t, p, o in committed}
        for key in list(self.failures):
            position = positions.get(key[:2])
            if position is not None and key[2] < position:
                del self.failures[key]

    def abort_doomed(self, *, going: Iterable[Key] = ()) -> None:
        """Abort the doomed transaction: for its handler's error, or, when it lost a
        record, as a failed commit (counted in the aborted commits in a row; the
        ``TransactionError`` is raised at ``MAX_ABORTED_COMMITS``)."""
        lost, self._lost = self._lost, None
        if lost is None:
            self.abort("handler-error", self.doomed, going=going)
            return
        self.abort("commit-failed", lost, going=going)
        if self._count_aborted(lost):
            msg = (
                f"{lost}; the transaction was aborted: none of its records, nor the offsets "
                "sent with it, will be visible"
            )
            raise TransactionError(
                msg,
                transactional_id=lost.transactional_id,
                operation="commit_transaction",
                code=lost.code,
                aborted=True,
                failures=lost.failures,
            ) from lost

    def _count_aborted(self, failed: TransactionError) -> bool:
        """A commit failed and its transaction was aborted (the batch is read again):
        count it in the aborted commits in a row; return whether that is too many, so
        the consumer must stop with ``failed``."""
        self._aborted_commits += 1
        _log.warning(
            "group %r: %s; the transaction was aborted and the batch is read again "
            "(%d aborted commits in a row)",
            self.group_id,
            failed,
            self._aborted_commits,
        )
        return self._aborted_commits >= MAX_ABORTED_COMMITS

    def abort(self, reason: str, error: BaseException | None, *, going: Iterable[Key] = ()) -> None:
        """Abort the open transaction and rewind every partition not ``going``."""
        if self.open:
            self.transactions.abort(
                self.group_id, reason=reason, error=error, group_id=self.group_id
            )
        self._rewind(going)

    def _rewind(self, going: Iterable[Key]) -> None:
        """Read every held partition again from its last committed offset (or, never
        committed here, from the first record read)."""
        assert self._client is not None
        self.doomed = self._lost = None
        skip = set(going)
        positions = []
        for key in sorted(self._book.keys()):
            offsets = self._book.get(key)
            committed = offsets.committed if offsets is not None else None
            target = committed if committed is not None else self._starts.get(key)
            if target is not None and key not in skip:
                positions.append((key[0], key[1], target))
        if positions:
            self._client.seek(tuple(positions))
        self._rewound.update(((t, p), o) for t, p, o in positions)
        records = self._book.rewind()
        records_undone, letters_undone = self.undone
        self.undone = (records_undone + records, letters_undone + self.dead_letters)
        self.dead_letters = 0
        for listener in self._on_rewind:
            listener()
        _log.info(
            "group %r: rewound %d partitions to their committed offsets (%d processed "
            "records to read again)",
            self.group_id,
            len(positions),
            records,
        )

    def take_undone(self) -> tuple[int, int]:
        """Records and dead letters undone by rewinds since the last call (a run's counts
        go down by them: they will be handled again)."""
        undone, self.undone = self.undone, (0, 0)
        return undone

    def dropped(self, keys: Iterable[Key], *, lost: bool) -> None:
        """``keys`` go away (revoked after their commit, or lost): forget them. Lost
        partitions abort the open transaction (committing their offsets from here could
        skip their new owner's work) and rewind the others."""
        gone = set(keys)
        if lost and (self.open or self.doomed is not None):
            self.abort("lost", None, going=gone)
        for key in gone:
            self._starts.pop(key, None)
        for record_key in [k for k in self.failures if k[:2] in gone]:
            del self.failures[record_key]

    def recover(self, rewind: Rewind, stopping: Callable[[], bool]) -> tuple[int, int]:
        """After a handler failed (sync consumers): abort the doomed transaction if that
        did not happen yet, wait the backoff; return the records and dead letters undone."""
        if self.doomed is not None:
            self.abort_doomed()
        undone = self.take_undone()
        self.wait(rewind, stopping)
        return undone

    def wait(self, rewind: Rewind, stopping: Callable[[], bool]) -> None:
        """Wait the backoff of a rewind before reading again (sync consumers), noticing a
        stop within a tenth of a second."""
        deadline = time.monotonic() + rewind.wait_s
        while not stopping():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.1))
