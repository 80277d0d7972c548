"""What happens around a handler: its process hooks, its retries, and the dead letter.

:class:`Handling` is shared by the sync consumer's ``run()`` and the asyncio
consumer's: an attempt runs inside the ``on_process`` hooks' context managers; a
failing one is retried by the :class:`~governed_kafka.retry.RetryPolicy`, each retry
logged and told to the ``on_retry`` hooks; a record whose attempts are exhausted goes
to its dead-letter topic (:mod:`governed_kafka._dead_letters`). Retry tiers (retry
topics, parked keys) would come in here, between the retries and the dead letter.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

import attrs

from ._dead_letters import DeadLetters
from ._records import Record
from .errors import RetriesExhausted
from .hooks import HookChain, ProcessDetails, RetryDetails
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
    ) -> None:
        self.retry = retry
        self.dead_letters = dead_letters
        self.group_id = group_id
        self.client_id = client_id
        self._hooks = hooks

    @property
    def hooked(self) -> bool:
        """Whether ``on_process`` hooks wrap each attempt (:meth:`scope`)."""
        return self._hooks.process is not None

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
        try:
            self.attempt(handler, record, 1)
        except Exception as first:
            self.recover(handler, record, first, stats)

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
        """``record`` still failed after ``attempts`` attempts: publish it as a dead letter."""
        self.dead_letters.publish(record, error, attempts=attempts)
