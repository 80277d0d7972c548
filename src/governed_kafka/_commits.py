"""How a consumer commits: what its offset book holds as processed, when its strategy says.

:class:`Commits` asks the offset book (:mod:`governed_kafka._offsets`) for the positions
that moved, commits them through librdkafka's consumer (synchronously or not, as the
:class:`~governed_kafka.commit.CommitStrategy` says for routine commits; always
synchronously on revoke, close and ``commit()``), tells the book what was committed,
and tells the ``on_commit`` hooks how each commit went and how long it took.
Asynchronous commits are answered by a later poll (:meth:`Commits.answered`); the
positions of one that failed are committed again next time.

A transactional strategy commits differently: the strategy says so
(``commits_in_transactions``) and each commit is a commit of the batch's transaction,
the offsets sent to it (:mod:`governed_kafka._batch_transactions`); the hooks see it as
a synchronous commit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Final

from . import _kafka
from ._batch_transactions import BatchTransactions
from ._offsets import OffsetBook
from .commit import CommitStrategy
from .errors import BrokerError, TransactionError
from .hooks import CommitDetails, HookChain

__all__ = ["Commits"]

_log = logging.getLogger("governed_kafka.consumer")

#: Asynchronous commits remembered for timing until the broker answers them.
_MAX_AWAITED_COMMITS: Final = 64


class Commits:
    """The commits of one consumer.

    :meth:`bind` gives it librdkafka's consumer once that exists (the consumer's
    ``on_commit`` callback, :meth:`answered`, is needed to make it).
    """

    def __init__(
        self,
        book: OffsetBook,
        strategy: CommitStrategy,
        hooks: HookChain,
        *,
        group_id: str,
        client_id: str,
        batches: BatchTransactions | None = None,
    ) -> None:
        self._book = book
        self.strategy = strategy
        #: The batches' transactions, when the strategy commits in transactions.
        self.batches = batches
        self._hooks = hooks
        self.group_id = group_id
        self.client_id = client_id
        self._client: _kafka.ConsumerClient | None = None
        #: Called before every commit: writes the committed records depend on (retry
        #: tiers) must be acknowledged first; it raises when one failed.
        self.before_commit: Callable[[], None] | None = None
        #: Asynchronous commits whose answer was not served yet: offsets -> (reason, start).
        self._awaited: dict[_kafka.Offsets, tuple[str, float]] = {}

    def bind(self, client: _kafka.ConsumerClient) -> None:
        """Commit through ``client``."""
        self._client = client
        if self.batches is not None:
            self.batches.bind(client)

    def if_due(self) -> None:
        """Make a routine commit if the strategy says one is due (a doomed transaction is
        aborted at once)."""
        batches = self.batches
        if batches is not None and batches.doomed is not None:
            batches.abort_doomed()
            return
        book = self._book
        if self.strategy.due(book.processed_since_commit, time.monotonic() - book.last_commit):
            self.commit("routine", synchronous=self.strategy.synchronous)

    def commit(
        self,
        reason: str,
        *,
        synchronous: bool,
        only: Iterable[tuple[str, int]] | None = None,
        raise_errors: bool = False,
    ) -> None:
        """Commit the processed positions (of ``only``, or of every partition held).

        A failure is logged (the records will be replayed unless a later commit
        succeeds), or raised as :class:`~governed_kafka.errors.BrokerError` with
        ``raise_errors``.
        """
        if self.before_commit is not None:
            self.before_commit()
        if self.batches is not None:
            self._commit_transaction(reason, going=only or (), raise_errors=raise_errors)
            return
        committed = self._book.to_commit(only)
        if not committed:
            return
        assert self._client is not None
        started = time.monotonic()
        error: BrokerError | None = None
        operation = f"commit ({reason}) for group {self.group_id!r}"
        try:
            if not synchronous and self._hooks.commit is not None:
                self._await(committed, reason, started)
            self._client.commit(committed, asynchronous=not synchronous, operation=operation)
        except BrokerError as exc:
            error = exc
            self._awaited.pop(tuple(sorted(committed)), None)
        else:
            self._book.committed(committed)
        if synchronous or error is not None:
            self._told(committed, reason, synchronous, time.monotonic() - started, error)
        if error is not None:
            if raise_errors:
                raise error
            _log.warning("%s; the processed records will be replayed if this is not retried", error)

    def _commit_transaction(
        self, reason: str, *, going: Iterable[tuple[str, int]], raise_errors: bool
    ) -> None:
        """Commit the batch's transaction, its offsets sent to it; ``going`` are revoked."""
        assert self.batches is not None
        started = time.monotonic()
        try:
            done = self.batches.commit(reason, going=going)
        except TransactionError as failed:
            self._told((), reason, True, time.monotonic() - started, failed)
            raise
        if done is None:
            return
        committed, error = done
        self._told(committed, reason, True, time.monotonic() - started, error)
        if error is not None and raise_errors:
            raise error

    def lost(self, partitions: Iterable[tuple[str, int]]) -> None:
        """``partitions`` were lost: a transactional consumer aborts its open transaction."""
        if self.batches is not None:
            self.batches.dropped(partitions, lost=True)

    def revoked(self, partitions: Iterable[tuple[str, int]]) -> None:
        """``partitions`` were revoked, after their commit."""
        if self.batches is not None:
            self.batches.dropped(partitions, lost=False)

    def _await(self, committed: _kafka.Offsets, reason: str, started: float) -> None:
        """Remember an asynchronous commit until its answer is served, to time it."""
        awaited = self._awaited
        awaited[tuple(sorted(committed))] = (reason, started)
        while len(awaited) > _MAX_AWAITED_COMMITS:  # answers that never came: forget them
            del awaited[next(iter(awaited))]

    def answered(self, answer: _kafka.CommitAnswer) -> None:
        """librdkafka's answer to a commit, served by a later poll.

        The positions of a failed asynchronous commit are committed again next time.
        """
        awaited = self._awaited.pop(answer.offsets, None) if self._awaited else None
        if awaited is not None:
            reason, started = awaited
            error = None
            if answer.failure is not None:
                error = answer.failure.broker_error(
                    f"commit ({reason}) for group {self.group_id!r}"
                )
            self._told(answer.offsets, reason, False, time.monotonic() - started, error)
        if answer.failure is None:
            return
        self._book.not_committed(answer.failed)
        _log.warning("group %r: asynchronous commit failed: %s", self.group_id, answer.failure)

    def _told(
        self,
        committed: _kafka.Offsets,
        reason: str,
        synchronous: bool,
        duration_s: float,
        error: Exception | None,
    ) -> None:
        if self._hooks.commit is not None:
            self._hooks.commit(
                CommitDetails(
                    group_id=self.group_id,
                    offsets=committed,
                    reason=reason,
                    synchronous=synchronous,
                    duration_s=duration_s,
                    error=error,
                    client_id=self.client_id,
                )
            )
