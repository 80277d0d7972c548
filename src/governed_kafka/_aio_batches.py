"""``run()`` of an asyncio consumer whose commit strategy is transactional.

A transaction commits the processed offsets together with everything sent since it
began, so no handler may be half-way through a record when it commits: its early sends
would commit without its offset, and a crash would send them again. The asyncio
consumer therefore runs transactional batches one at a time (:class:`TransactionalRun`):
poll, hand the batch to its handlers (concurrently across partitions, in offset order
within one), wait for all of them, then mark the batch processed on the consumer's
thread, where the strategy commits. Polls, and so rebalances, come only between
batches, when nothing is in flight.

A handler that fails dooms the transaction: the batch's other handlers are cancelled,
the transaction is aborted and every partition rewound (on the consumer's thread), and
the batch is read again after the retry policy's backoff, awaited.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Final

from ._aio_runs import Handler
from ._aio_worker import Worker
from ._batch_transactions import BatchTransactions, Rewind
from ._consumer_base import ConsumerBase, ConsumerParts
from ._handling import RunStats
from ._records import Record

__all__ = ["TransactionalRun"]

#: Longest single wait of a poll, so that stop(), timeouts and close() are noticed.
_POLL_S: Final = 0.1

#: One attempt at a record inside the process hooks: ``(handler, record, attempt)``.
Attempt = Callable[[Handler, Record, int], Awaitable[None]]


class TransactionalRun:
    """One ``run()`` of a transactional asyncio consumer (see the module docs).

    :param inbox: records polled and not handled yet, shared with the consumer (a rewind
        on the consumer's thread empties it).
    :param attempt: one attempt at a record, inside the process hooks.
    :param finished: set when the run must end (stop, limit, timeout).
    """

    def __init__(
        self,
        *,
        consumer: ConsumerBase,
        parts: ConsumerParts,
        worker: Worker,
        inbox: deque[Record],
        attempt: Attempt,
        handler: Handler,
        concurrency: int,
        limit: int | None,
        stats: RunStats,
        finished: asyncio.Event,
    ) -> None:
        assert parts.batches is not None
        self._consumer = consumer
        self._handling = parts.handling
        self._mark_batch = parts.mark_batch
        self._batches: BatchTransactions = parts.batches
        self._worker = worker
        self._inbox = inbox
        self._attempt = attempt
        self._handler = handler
        self._slots = asyncio.Semaphore(concurrency)
        self._limit = limit
        self.stats = stats
        self._finished = finished

    async def go(self) -> None:
        """Batch after batch until ``finished`` is set."""
        stats = self.stats
        while not self._finished.is_set():
            left = None if self._limit is None else self._limit - stats.records
            if left is not None and left <= 0:
                self._finished.set()
                break
            if not self._inbox:
                await self._worker.call(functools.partial(self._poll, self._wanted(left)))
            inbox = self._inbox
            records = [inbox.popleft() for _ in range(min(len(inbox), left or len(inbox)))]
            if not records:
                continue
            rewind = await self._handle(records)
            if rewind is not None:
                await self._worker.call(functools.partial(self._rewound, rewind))
                await self._backoff(rewind.wait_s)
                continue
            await self._worker.call(functools.partial(self._processed, records))

    def _wanted(self, left: int | None) -> int:
        want = self._consumer.commit_strategy.max_records or 500
        return want if left is None else min(want, left)

    def _poll(self, want: int) -> None:
        """(worker) One poll into the inbox: a commit due, or a rewind, comes before it."""
        self._inbox.extend(self._consumer.poll_batch(max_records=want, timeout=_POLL_S))

    async def _handle(self, records: list[Record]) -> Rewind | None:
        """Handle a batch: each partition's records in order, partitions concurrently.
        Returns the rewind of the first handler that failed (the others are cancelled)."""
        self._batches.begin()
        lanes: dict[tuple[str, int], list[Record]] = {}
        for record in records:
            lanes.setdefault((record.topic, record.partition), []).append(record)
        loop = asyncio.get_running_loop()
        tasks = [loop.create_task(self._lane(lane)) for lane in lanes.values()]
        try:
            _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        except asyncio.CancelledError as cancelled:
            # run() itself was cancelled mid-batch: what its handlers sent must not commit.
            self._batches.doomed = cancelled
            for task in tasks:
                task.cancel()
            raise
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
        rewind: Rewind | None = None
        for task in tasks:
            if task.cancelled():
                continue
            error = task.exception()
            if error is None:
                continue
            if not isinstance(error, Rewind):
                raise error  # fatal (fenced) or the application's own BaseException
            rewind = rewind or error
        return rewind

    async def _lane(self, records: list[Record]) -> None:
        for record in records:
            async with self._slots:
                await self._one(record)

    async def _one(self, record: Record) -> None:
        """A record: dead-lettered if its attempts are exhausted, else one attempt; a
        failure raises :class:`Rewind`."""
        batches, handling, stats = self._batches, self._handling, self.stats
        if batches.failures:
            failed = batches.exhausted(record)
            if failed is not None:
                await self._worker.call(
                    functools.partial(
                        handling.dead_letter, record, failed.error, attempts=failed.attempts
                    )
                )
                stats.dead_lettered += 1
                return
        attempt = batches.attempt(record)
        try:
            await self._attempt(self._handler, record, attempt)
        except Exception as error:
            rewind = batches.failed(record, error)
            if rewind.failed is not None and not rewind.failed.exhausted:
                handling.retrying(record, attempt, error, rewind.wait_s, stats)
            raise rewind from error

    def _processed(self, records: list[Record]) -> None:
        """(worker) The batch is done: mark it processed; the strategy commits when due
        (a commit the producer had to abort rewinds)."""
        self.stats.records += len(records)
        self._mark_batch(records)
        self._undo()

    def _rewound(self, rewind: Rewind) -> None:
        """(worker) Abort the doomed transaction and rewind."""
        batches = self._batches
        if batches.doomed is not None:
            batches.abort_doomed()
        self._undo()

    def _undo(self) -> None:
        """The run's counts go down by what rewinds undid: it is handled again."""
        self.stats.undo(self._batches.take_undone())

    async def _backoff(self, seconds: float) -> None:
        """Wait the retry policy's backoff before reading again, unless the run ends."""
        if seconds > 0:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._finished.wait(), seconds)
