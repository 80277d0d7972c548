"""What happens around a handler: its process hooks, its retries, and the dead letter.

:class:`Handling` is shared by the sync consumer's ``run()`` and the asyncio
consumer's: an attempt runs inside the ``on_process`` hooks' context managers; a
failing one is retried by the :class:`~governed_kafka.retry.RetryPolicy`, each retry
logged and told to the ``on_retry`` hooks; a record whose attempts are exhausted goes
to its dead-letter topic (:mod:`governed_kafka._dead_letters`). Retry tiers (retry
topics, parked keys) would come in here, between the retries and the dead letter.

A transactional consumer retries differently: a failed attempt dooms the batch's
transaction (its sends would otherwise commit) and raises
:class:`~governed_kafka._batch_transactions.Rewind` to the run loop, which aborts and
reads the batch again; the record's attempts are counted across rewinds, and once they
are exhausted it is dead-lettered instead of handled.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

import attrs

from ._batch_transactions import BatchTransactions
from ._dead_letters import DeadLetters
from ._records import Record
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


class RunStats:
    """The counts of one ``run()``, and the attempt the record at hand is at."""

    __slots__ = ("attempt", "dead_lettered", "records", "retries")

    def __init__(self) -> None:
        self.records = 0
        self.dead_lettered = 0
        self.retries = 0
        self.attempt = 1

    def next_attempt(self) -> int:
        """The number of the next attempt at the record at hand."""
        self.attempt += 1
        return self.attempt

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
        batches: BatchTransactions | None = None,
    ) -> None:
        self.retry = retry
        self.dead_letters = dead_letters
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
        """Whether every record must go through :meth:`process` (hooks, or transactions)."""
        return self._hooks.process is not None or self.batches is not None

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
        try:
            self.attempt(handler, record, 1)
        except Exception as first:
            self.recover(handler, record, first, stats)

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
            if not rewind.failed.exhausted:
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
            self.dead_letter(record, exhausted.error, attempts=exhausted.attempts)
            stats.dead_lettered += 1
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

    def dead_letter(self, record: Record, error: BaseException, *, attempts: int) -> None:
        """``record`` still failed after ``attempts`` attempts: publish it as a dead letter
        (in the open transaction, for a transactional consumer)."""
        self.dead_letters.publish(record, error, attempts=attempts)
        if self.batches is not None:
            self.batches.dead_letters += 1

    def batch(
        self,
        handler: Callable[[list[Record]], object],
        records: list[Record],
        stats: RunStats,
        *,
        mark: Callable[[Record], None],
        current: Callable[[Record | None], None],
    ) -> None:
        """Run a batch handler: retried whole per the policy; if it still fails, its
        records one at a time (only those that fail alone are dead-lettered). Each record
        is ``mark``-ed processed; ``current`` is told of the record at hand."""

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
