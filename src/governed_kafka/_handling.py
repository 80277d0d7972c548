"""What happens around a handler: its process hooks, its retries, and the dead letter.

:class:`Handling` is shared by the sync consumer's ``run()`` and the asyncio
consumer's: an attempt runs inside the ``on_process`` hooks' context managers; a
failing one is retried by the :class:`~governed_kafka.retry.RetryPolicy`, each retry
logged and told to the ``on_retry`` hooks; a record whose attempts are exhausted goes
to its topic's next retry tier when it has tiers (:mod:`governed_kafka._tiers`), else
to its dead-letter topic (:mod:`governed_kafka._dead_letters`). With key order, a
record whose key is parked goes behind its key's oldest record without being handled.

A transactional consumer retries differently: a failed attempt dooms the batch's
transaction (its sends would otherwise commit) and raises
:class:`~governed_kafka._batch_transactions.Rewind` to the run loop, which aborts and
reads the batch again; the record's attempts are counted across rewinds, and once they
are exhausted it is dead-lettered instead of handled. (Retry tiers are not offered with
transactions yet: such a consumer is refused at construction.)
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

import attrs

from ._batch_transactions import BatchTransactions
from ._dead_letters import DeadLetters
from ._records import Record
from ._tiers import Tiers
from .errors import RetriesExhausted
from .hooks import BatchDetails, HookChain, ProcessDetails, RetryDetails
from .retry import RetryPolicy

__all__ = ["Handling", "RunStats", "RunSummary"]

_log = logging.getLogger("governed_kafka.consumer")


@attrs.frozen
class RunSummary:
    """What one call of :meth:`GovernedConsumer.run` did."""

    #: Records handled: processed successfully or dead-lettered.
    records: int
    dead_lettered: int
    retries: int
    elapsed_s: float
    #: Records written to a retry topic after their in-place attempts failed.
    tiered: int = 0
    #: Records written behind an earlier record of their key, not handled (key order).
    parked: int = 0


class RunStats:
    """The counts of one ``run()``, and the attempt the record at hand is at."""

    __slots__ = ("attempt", "dead_lettered", "parked", "records", "retries", "tiered")

    def __init__(self) -> None:
        self.records = 0
        self.dead_lettered = 0
        self.retries = 0
        self.tiered = 0
        self.parked = 0
        self.attempt = 1

    def next_attempt(self) -> int:
        """The number of the next attempt at the record at hand."""
        self.attempt += 1
        return self.attempt

    def undo(self, undone: tuple[int, int]) -> None:
        """Records and dead letters a rewind undid (they are handled again)."""
        self.records -= undone[0]
        self.dead_lettered -= undone[1]

    def reset_attempts(self) -> None:
        """The record at hand is done with: the next one starts at attempt 1."""
        self.attempt = 1

    def summary(self, elapsed: float) -> RunSummary:
        """What the run did, ``elapsed`` seconds after it started."""
        return RunSummary(
            records=self.records,
            dead_lettered=self.dead_lettered,
            retries=self.retries,
            elapsed_s=elapsed,
            tiered=self.tiered,
            parked=self.parked,
        )


class Handling:
    """Hooks, retries and the dead letter around a consumer's handler."""

    def __init__(
        self,
        *,
        hooks: HookChain,
        retry: RetryPolicy,
        dead_letters: DeadLetters,
        group_id: str,
        client_id: str,
        tiers: Tiers | None = None,
        batches: BatchTransactions | None = None,
    ) -> None:
        self.retry = retry
        self.dead_letters = dead_letters
        #: The retry tiers and parked keys, when a topic read has tiers or key order.
        self.tiers = tiers
        self.group_id = group_id
        self.client_id = client_id
        self._hooks = hooks
        #: The batches' transactions of a transactional consumer.
        self.batches = batches

    @property
    def hooked(self) -> bool:
        """Whether ``on_process`` hooks wrap each attempt (:meth:`scope`)."""
        return self._hooks.process is not None

    @property
    def guarded(self) -> bool:
        """Whether every record must go through :meth:`process` (hooks, transactions, or
        retry tiers, which decide first)."""
        return self._hooks.process is not None or self.batches is not None or self.tiers is not None

    def scope(self, record: Record, attempt: int) -> contextlib.ExitStack:
        """What the ``on_process`` hooks wrap around one attempt at handling ``record``."""
        around = self._hooks.process
        if around is None:
            return contextlib.ExitStack()
        return around(
            ProcessDetails(
                group_id=self.group_id, record=record, attempt=attempt, client_id=self.client_id
            )
        )

    def attempt(self, handler: Callable[[Record], object], record: Record, attempt: int) -> None:
        """One attempt at ``record``, inside the process hooks if there are any."""
        if self._hooks.process is not None:
            with self.scope(record, attempt):
                handler(record)
        else:
            handler(record)

    def process(self, handler: Callable[[Record], object], record: Record, stats: RunStats) -> None:
        """Run the handler on one record, with retries and the dead-letter topic behind it."""
        if self.batches is not None:
            self.in_transaction(handler, record, stats)
            return
        tiers = self.tiers
        if tiers is not None and self.parks(record, stats):
            return
        try:
            self.attempt(handler, record, 1)
        except Exception as first:
            self.recover(handler, record, first, stats)
            return
        if tiers is not None:
            tiers.succeeded(record)

    def parks(self, record: Record, stats: RunStats) -> bool:
        """Whether ``record``'s key is parked: then it was written behind its key's
        oldest waiting record, and is done here."""
        assert self.tiers is not None
        target = self.tiers.route(record)
        if target is None:
            return False
        self.tiers.park(record, target)
        stats.parked += 1
        return True

    def in_transaction(
        self, handler: Callable[[Record], object], record: Record, stats: RunStats
    ) -> None:
        """A transactional consumer's record: dead-letter it if its attempts are exhausted,
        else one attempt; a failure raises ``Rewind`` (the batch is aborted and read again)."""
        batches = self.batches
        assert batches is not None
        if not batches.open:
            batches.begin()
        attempt = 1
        if batches.failures:  # rare: look the record up only when something failed
            failed = batches.exhausted(record)
            if failed is not None:
                self.dead_letter(record, failed.error, attempts=failed.attempts)
                stats.dead_lettered += 1
                return
            attempt = batches.attempt(record)
        try:
            if self._hooks.process is None:
                handler(record)
            else:
                self.attempt(handler, record, attempt)
        except Exception as error:
            rewind = batches.failed(record, error)
            if rewind.failed is not None and not rewind.failed.exhausted:
                self.retrying(record, attempt, error, rewind.wait_s, stats)
            raise rewind from error
        except BaseException as interrupted:  # KeyboardInterrupt, SystemExit mid-record
            batches.doomed = interrupted  # what the handler sent so far must not commit
            raise

    def recover(
        self,
        handler: Callable[[Record], object],
        record: Record,
        first: Exception,
        stats: RunStats,
    ) -> None:
        """The first attempt failed with ``first``: retry per the policy, then dead-letter."""
        try:
            self.retry.call(
                lambda: self.attempt(handler, record, stats.next_attempt()),
                first_error=first,
                on_retry=lambda n, error, wait: self.retrying(record, n, error, wait, stats),
            )
        except RetriesExhausted as exhausted:
            if self.dead_letter(record, exhausted.error, attempts=exhausted.attempts):
                stats.tiered += 1
            else:
                stats.dead_lettered += 1
        else:
            if self.tiers is not None:
                self.tiers.succeeded(record)
        finally:
            stats.reset_attempts()

    def retrying(
        self, record: Record, attempt: int, error: BaseException, wait: float, stats: RunStats
    ) -> None:
        """Attempt ``attempt`` at ``record`` failed with ``error``; the next comes in ``wait`` s."""
        stats.retries += 1
        _log.info(
            "%s[%d]@%d attempt %d failed (%s: %s); retrying in %.2f s",
            record.topic,
            record.partition,
            record.offset,
            attempt,
            type(error).__name__,
            error,
            wait,
        )
        if self._hooks.retry is not None:
            self._hooks.retry(
                RetryDetails(
                    group_id=self.group_id,
                    record=record,
                    attempt=attempt,
                    error=error,
                    wait_s=wait,
                )
            )

    def dead_letter(self, record: Record, error: BaseException, *, attempts: int) -> bool:
        """``record`` still failed after ``attempts`` attempts here: write it to its
        topic's next retry tier (return ``True``), else publish it as a dead letter (in
        the open transaction, for a transactional consumer)."""
        tiers = self.tiers
        if tiers is not None and tiers.covers(record):
            tiered = tiers.next_is_tier(record)
            tiers.forward(record, error, attempts=attempts)
            return tiered
        self.dead_letters.publish(record, error, attempts=attempts)
        if self.batches is not None:
            self.batches.dead_letters += 1
        return False

    def batch(
        self,
        handler: Callable[[list[Record]], object],
        records: list[Record],
        stats: RunStats,
        *,
        mark: Callable[[Record], None],
        current: Callable[[Record | None], None],
    ) -> None:
        """Run a batch handler; a batch that still fails after its retries is handled
        record by record, so only the records that fail alone go on (tier or dead
        letter). Each record is ``mark``-ed processed; ``current`` names the one at hand."""

        def attempt() -> None:
            if self._hooks.process_batch is not None:
                with self._hooks.process_batch(
                    BatchDetails(
                        group_id=self.group_id, records=tuple(records), client_id=self.client_id
                    )
                ):
                    handler(records)
            else:
                handler(records)

        try:
            attempt()
        except Exception as first:
            try:
                self.retry.call(attempt, first_error=first)
            except RetriesExhausted:
                _log.warning(
                    "batch of %d records failed after retries; handling them one by one to "
                    "find the ones that fail alone",
                    len(records),
                )
                for record in records:
                    current(record)
                    self.process(lambda r: handler([r]), record, stats)
                    mark(record)
                    stats.records += 1
                current(None)
                return
        for record in records:
            mark(record)
        stats.records += len(records)
