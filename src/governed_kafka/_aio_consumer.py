"""The asyncio consumer: the governed consumer driven from one thread, handlers on the loop.

It runs a :class:`~governed_kafka._consumer_base.ConsumerBase`, the consumer
``GovernedConsumer`` is, on one worker thread (:mod:`governed_kafka._aio_worker`), as its
extension: told of rebalances first, handling records on the loop with the consumer's
own handling (hooks, retries, dead letters) and committing through its commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Final, TypeVar

from . import profiles
from ._aio_batches import TransactionalRun
from ._aio_errors import not_started
from ._aio_runs import Handler, Lane, Run, check_handler
from ._aio_worker import Worker
from ._config import GROUP_PROTOCOL, GroupProtocol, Overrides
from ._consumer_base import ConsumerBase, ConsumerParts
from ._handling import Handling, RunSummary
from ._health import HealthWatch
from ._options import DEFAULT_BATCH, DEFAULT_MAX_IN_FLIGHT, ConsumerOptions
from ._records import Record
from .commit import CommitStrategy
from .contracts import Catalog
from .errors import ClosedError, ConfigError, ProducerFenced, RetriesExhausted
from .health import DEFAULT_STALLED_AFTER_S, DEFAULT_WINDOW_S, HealthReport
from .lag import LagReport
from .registry import SchemaRegistry
from .retry import RetryPolicy

__all__ = ["DEFAULT_CONCURRENCY", "DEFAULT_REVOKE_TIMEOUT_S", "AsyncGovernedConsumer", "Handler"]

_log = logging.getLogger("governed_kafka.aio")

T = TypeVar("T")

#: Handlers ``run()`` lets run at once, across partitions.
DEFAULT_CONCURRENCY: Final = 10

#: How long, when partitions are revoked, their handlers in flight may take to finish
#: before they are cancelled (seconds). The rebalance waits for them: the group cannot
#: hand the partitions on before their processed offsets are committed.
DEFAULT_REVOKE_TIMEOUT_S: Final = 10.0

#: Longest single wait inside the consumer's poll while handlers are at work, so that
#: finished records are marked (and committed per the strategy) promptly.
_BUSY_POLL_S: Final = 0.01

#: Longest single wait inside the consumer's poll when nothing is being handled, so that
#: ``stop()``, timeouts and ``close()`` are noticed quickly.
_IDLE_POLL_S: Final = 0.1

#: Extra time the consumer's thread gives the event loop to settle revoked partitions,
#: beyond the revoke timeout, before it commits without hearing back.
_SETTLE_MARGIN_S: Final = 5.0

_Key = tuple[str, int]


class _Extension:
    """What the asyncio consumer adds to its ConsumerBase (the base's extension point).

    Before revoked partitions are committed and dropped, the asyncio consumer finishes
    (or cancels) their handlers in flight and hands over what they processed; before lost
    partitions are dropped, it cancels their handlers. It handles records on the event
    loop with the consumer's own handling and commits (its parts).
    """

    def __init__(
        self,
        *,
        before_revoke: Callable[[list[_Key]], None],
        before_lost: Callable[[list[_Key]], None],
    ) -> None:
        self._before_revoke = before_revoke
        self._before_lost = before_lost
        self.parts: ConsumerParts | None = None

    def attached(self, parts: ConsumerParts) -> None:
        self.parts = parts

    def before_revoke(self, partitions: list[_Key]) -> None:
        self._before_revoke(partitions)

    def before_lost(self, partitions: list[_Key]) -> None:
        self._before_lost(partitions)


class AsyncGovernedConsumer:
    """:class:`~governed_kafka.GovernedConsumer` for asyncio: same parameters, same rules.

    ``await run(handler, concurrency=10)`` hands records to an async handler:
    concurrently across partitions, one at a time and in offset order within a
    partition. ``async for record in consumer`` yields records one by one. Either way,
    only processed offsets are committed, per the commit strategy, and synchronously
    before revoked partitions go.

    :param revoke_timeout_s: when partitions are revoked, how long their handlers in
        flight may take to finish before they are cancelled. A cancelled handler's
        record is not processed, so it is never committed: the partition's next owner
        reads it again.

    The other parameters are those of :class:`~governed_kafka.GovernedConsumer`.
    """

    def __init__(
        self,
        catalog: Catalog,
        *,
        service: str,
        group_id: str,
        topics: str | Sequence[str],
        bootstrap_servers: str | list[str] | tuple[str, ...],
        commit: CommitStrategy | None = None,
        retry: RetryPolicy | None = None,
        hooks: Sequence[object] = (),
        overrides: Overrides | None = None,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        resume_below: int | None = None,
        profile: profiles.Profile = profiles.DURABLE,
        registry: SchemaRegistry | None = None,
        verify_topics: bool | None = None,
        group_protocol: GroupProtocol = GROUP_PROTOCOL,
        client_rack: str | None = None,
        revoke_timeout_s: float = DEFAULT_REVOKE_TIMEOUT_S,
    ) -> None:
        if revoke_timeout_s < 0:
            msg = f"revoke_timeout_s must be >= 0, got {revoke_timeout_s!r}"
            raise ValueError(msg)
        self.catalog = catalog
        self.service = service
        self.group_id = group_id
        self.revoke_timeout_s = revoke_timeout_s
        self._options = ConsumerOptions(
            service=service,
            group_id=group_id,
            topics=topics,
            bootstrap_servers=bootstrap_servers,
            commit=commit,
            retry=retry,
            hooks=hooks,
            overrides=overrides,
            max_in_flight=max_in_flight,
            resume_below=resume_below,
            profile=profile,
            registry=registry,
            verify_topics=verify_topics,
            group_protocol=group_protocol,
            client_rack=client_rack,
        )
        self._consumer: ConsumerBase | None = None
        self._parts: ConsumerParts | None = None
        self._worker: Worker | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._starting = asyncio.Lock()
        #: Records polled and not yet handed out (appended by the worker thread).
        self._inbox: deque[Record] = deque()
        #: Records processed on the loop, to be marked by the worker thread.
        self._processed: deque[Record] = deque()
        self._lanes: dict[_Key, Lane] = {}
        #: The record ``async for`` handed out last, until the loop asks for the next.
        self._current: Record | None = None
        self._run: Run | None = None
        #: Whether the worker thread is inside a poll (a nested one must not start).
        self._polling = False
        self._settling: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._closing: asyncio.Future[None] | None = None
        self._closed = False

    async def start(self) -> AsyncGovernedConsumer:
        """Build the governed consumer and subscribe (on its thread: it may talk to the cluster).

        Raises what :class:`~governed_kafka.GovernedConsumer` raises at construction.
        """
        async with self._starting:
            if self._closed:
                raise ClosedError(f"consumer of group {self.group_id!r} is closed")
            if self._consumer is not None:
                return self
            self._loop = asyncio.get_running_loop()
            worker = Worker(f"governed-kafka-aio-consumer[{self.group_id}]")
            extension = _Extension(
                before_revoke=self._settle_revoked, before_lost=self._settle_lost
            )

            def build() -> ConsumerBase:
                return ConsumerBase(self.catalog, self._options, extension=extension)

            built = worker.submit(build)

            def close_if_built() -> None:  # the wait was cancelled while build() ran
                if not built.cancelled() and built.exception() is None:
                    built.result().close()

            try:
                self._consumer = await asyncio.wrap_future(built)
                self._parts = extension.parts
                if self._parts is not None and self._parts.batches is not None:
                    self._parts.batches.add_rewind_listener(self._inbox.clear)  # read again
            except BaseException:
                worker.submit(close_if_built)
                worker.stop()
                raise
            self._worker = worker
            weakref.finalize(self, worker.stop)
        return self

    def _running(self) -> tuple[ConsumerBase, Worker]:
        consumer, worker = self._consumer, self._worker
        if self._closed:
            raise ClosedError(f"consumer of group {self.group_id!r} is closed")
        if consumer is None or worker is None:
            raise not_started("consumer", self.service)
        return consumer, worker

    @property
    def commit_strategy(self) -> CommitStrategy:
        """When processed offsets are committed."""
        return self._running()[0].commit_strategy

    @property
    def config(self) -> dict[str, str | int | float | bool]:
        """The librdkafka configuration in force (governed keys included)."""
        return self._running()[0].config

    @property
    def assignment(self) -> list[tuple[str, int]]:
        """``(topic, partition)`` pairs this consumer holds."""
        return self._running()[0].assignment

    @property
    def hook_failures(self) -> int:
        """How many times this consumer's hooks raised (each failure was contained)."""
        return self._running()[0].hook_failures

    @property
    def paused(self) -> bool:
        """Whether intake is paused by backpressure."""
        return self._running()[0].paused

    @property
    def in_flight(self) -> int:
        """Records delivered to the application and not yet processed."""
        return self._running()[0].in_flight

    # ------------------------------------------------------------ the worker's side

    def _apply_processed(self) -> None:
        """(worker) Mark the records the loop finished; commits follow the strategy."""
        consumer = self._consumer
        assert consumer is not None
        processed = self._processed
        while processed:
            consumer.mark_processed(processed.popleft())

    def _poll(self, want: int, wait: float) -> None:
        """(worker) Poll up to ``want`` records into the inbox, waiting at most ``wait``."""
        if self._polling:
            return  # called from inside a rebalance callback: the outer poll goes on
        consumer = self._consumer
        assert consumer is not None
        self._polling = True
        try:
            self._apply_processed()
            # What is queued, else one record within ``wait`` and what came with it.
            records = consumer.poll_batch(max_records=want, timeout=wait)
            self._inbox.extend(records)
        finally:
            self._polling = False

    def _commit_processed(self, reason: str) -> None:
        """(worker) Mark what was processed and commit it synchronously."""
        parts = self._parts
        assert parts is not None
        self._apply_processed()
        parts.commits.commit(reason, synchronous=True)

    def _settle_revoked(self, keys: list[_Key]) -> None:
        """(worker, in the revoke callback) Let the loop finish the revoked partitions' work."""
        self._settle(keys, lost=False)

    def _settle_lost(self, keys: list[_Key]) -> None:
        """(worker, in the lost callback) Let the loop cancel the lost partitions' work."""
        self._settle(keys, lost=True)

    def _settle(self, keys: list[_Key], *, lost: bool) -> None:
        loop, worker = self._loop, self._worker
        if loop is None or worker is None or not loop.is_running():
            self._drop_waiting(set(keys))  # nothing runs on the loop: no handler is in flight
            return
        token = object()
        try:
            loop.call_soon_threadsafe(self._start_settling, keys, lost, token)
        except RuntimeError:  # the loop closed meanwhile
            self._drop_waiting(set(keys))
            return
        if not worker.serve_until(token, self.revoke_timeout_s + _SETTLE_MARGIN_S):
            _log.warning(
                "group %r: the event loop did not settle %s within %.1f s; going on",
                self.group_id,
                keys,
                self.revoke_timeout_s + _SETTLE_MARGIN_S,
            )
        self._apply_processed()

    # ------------------------------------------------------------ the loop's side

    def _start_settling(self, keys: list[_Key], lost: bool, token: object) -> None:
        assert self._loop is not None
        task = self._loop.create_task(self._settle_on_loop(keys, lost, token))
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)

    async def _settle_on_loop(self, keys: list[_Key], lost: bool, token: object) -> None:
        worker = self._worker
        assert worker is not None
        try:
            gone = set(keys)
            self._drop_waiting(gone)
            busy = [
                lane.task
                for key in gone
                if (lane := self._lanes.get(key)) is not None and lane.task is not None
            ]
            if busy and not lost:
                _, late = await asyncio.wait(busy, timeout=self.revoke_timeout_s)
                busy = list(late)
                if busy:
                    _log.warning(
                        "group %r: %d handlers of revoked partitions still running after "
                        "%.1f s; cancelling them (their records stay uncommitted)",
                        self.group_id,
                        len(busy),
                        self.revoke_timeout_s,
                    )
            for task in busy:
                task.cancel()
            if busy:
                await asyncio.wait(busy)
            for key in gone:
                self._lanes.pop(key, None)
        finally:
            worker.signal(token)

    def _drop_waiting(self, gone: set[_Key]) -> None:
        """Forget records of partitions this consumer no longer holds that nobody started."""
        inbox = self._inbox
        if any((r.topic, r.partition) in gone for r in inbox):
            kept = [r for r in inbox if (r.topic, r.partition) not in gone]
            inbox.clear()
            inbox.extend(kept)
        for key in gone:
            lane = self._lanes.get(key)
            if lane is not None:
                lane.records.clear()
        current = self._current
        if current is not None and (current.topic, current.partition) in gone:
            self._current = None

    async def _worker_call(self, fn: Callable[[], T]) -> T:
        return await self._running()[1].call(fn)

    async def _fetch(self, want: int = DEFAULT_BATCH) -> None:
        worker = self._running()[1]
        wait = _BUSY_POLL_S if (self._lanes or self._processed) else _IDLE_POLL_S
        await worker.call(functools.partial(self._poll, want, wait))

    # ------------------------------------------------------------ run()

    async def run(
        self,
        handler: Handler,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        max_records: int | None = None,
        timeout: float | None = None,
    ) -> RunSummary:
        """Await ``handler(record)`` for each record until ``max_records`` were handled,
        ``timeout`` seconds passed, or :meth:`stop` was called (then the consumer closes).

        At most ``concurrency`` handlers run at once, each on a different partition;
        records of one partition are handled one at a time, in offset order. A failing
        handler is retried per the retry policy (the backoff is awaited); a record that
        still fails is dead-lettered and counts as handled. When the run ends, the
        handlers in flight finish, the records not started wait for the next run, and
        what was processed is committed synchronously (except with
        ``CommitStrategy.manual()``).

        Cancelling the task that awaits ``run()`` cancels the handlers in flight: their
        records are not processed, so they are not committed; what was processed before
        is committed, and the cancelled records come first in the next run.
        """
        check_handler(handler)
        if concurrency < 1:
            msg = f"concurrency must be >= 1, got {concurrency}"
            raise ValueError(msg)
        consumer = self._running()[0]
        if self._run is not None:
            msg = "run() is already running on this consumer"
            raise RuntimeError(msg)
        if consumer.commit_strategy.commits_in_transactions:
            return await self._run_in_transactions(handler, concurrency, max_records, timeout)
        loop = asyncio.get_running_loop()
        started = loop.time()
        run = self._run = Run(
            handler,
            concurrency,
            max_records,
            commit_each=consumer.commit_strategy.commits_every_record,
        )
        self._requeue_current()
        feeder = loop.create_task(self._feed(run))
        cancelled = False
        try:
            if self._stopping or (max_records is not None and max_records <= 0):
                run.finished.set()
            await asyncio.wait_for(run.finished.wait(), timeout)
        except asyncio.TimeoutError:
            pass
        except asyncio.CancelledError:
            cancelled = True
            raise
        finally:
            await self._end(run, feeder, cancel_handlers=cancelled)
        summary = run.stats.summary(loop.time() - started)
        if run.error is not None:
            raise run.error
        if self._stopping:
            await self.close()
        return summary

    async def _run_in_transactions(
        self, handler: Handler, concurrency: int, limit: int | None, timeout: float | None
    ) -> RunSummary:
        """``run()`` with ``CommitStrategy.transactional``: one batch at a time
        (:mod:`governed_kafka._aio_batches`); a timeout or stop() ends it between batches."""
        consumer, worker = self._running()
        assert self._parts is not None
        loop = asyncio.get_running_loop()
        started = loop.time()
        run = self._run = Run(handler, concurrency, limit, commit_each=False)
        batches = TransactionalRun(
            consumer=consumer,
            parts=self._parts,
            worker=worker,
            inbox=self._inbox,
            attempt=self._attempt,
            handler=handler,
            concurrency=concurrency,
            limit=limit,
            stats=run.stats,
            finished=run.finished,
        )
        timer = None if timeout is None else loop.call_later(timeout, run.finished.set)
        fenced = False
        try:
            if self._stopping:
                run.finished.set()
            await batches.go()
        except ProducerFenced:
            fenced = self._stopping = True  # a zombie: leave the group to its successor
            raise
        finally:
            if timer is not None:
                timer.cancel()
            try:
                reason = "close" if self._stopping else "routine"
                await worker.call(functools.partial(self._commit_processed, reason))
            finally:
                self._run = None
                run.done.set_result(None)
                if fenced:
                    await self.close()
        if self._stopping:
            await self.close()
        return run.stats.summary(loop.time() - started)

    def _refuse_in_transactions(self, what: str) -> None:
        if self._running()[0].commit_strategy.commits_in_transactions:
            msg = (
                f"{what} does not read with CommitStrategy.transactional: its records would "
                "commit while being handled; use run(), which commits between batches"
            )
            raise ConfigError(msg, key="commit")

    async def _feed(self, run: Run) -> None:
        """Poll while the run lasts, and hand records to their partitions' lanes."""
        try:
            while not run.finished.is_set():
                self._dispatch(run)
                await self._fetch()
                self._dispatch(run)
        except Exception as error:
            run.fail(error)

    def _dispatch(self, run: Run) -> None:
        inbox, lanes = self._inbox, self._lanes
        while inbox and not run.halting and (run.limit is None or run.dispatched < run.limit):
            record = inbox.popleft()
            key = (record.topic, record.partition)
            lane = lanes.get(key)
            if lane is None:
                lane = lanes[key] = Lane()
            lane.records.append(record)
            run.dispatched += 1
            if lane.task is None:
                lane.task = asyncio.get_running_loop().create_task(self._drive(key, lane, run))

    async def _drive(self, key: _Key, lane: Lane, run: Run) -> None:
        """Handle one partition's records in order, one at a time, while the run lasts."""
        records = lane.records
        try:
            while records and not run.halting:
                async with run.slots:
                    if run.halting or not records:
                        break  # the run ended, or the partition was revoked, meanwhile
                    record = records.popleft()
                    try:
                        await self._handle(run, record)
                    except asyncio.CancelledError:
                        records.appendleft(record)  # not processed: it comes first next time
                        raise
                    if run.commit_each:
                        await self._worker_call(self._apply_processed)  # before the next one
        except Exception as error:
            run.fail(error)
        finally:
            lane.task = None
            if not records and self._lanes.get(key) is lane:
                del self._lanes[key]

    async def _handle(self, run: Run, record: Record) -> None:
        consumer, worker = self._running()
        handling = self._handling()
        stats = run.stats
        tiers = handling.tiers
        if tiers is not None and (target := tiers.route(record)) is not None:
            await worker.call(functools.partial(tiers.park, record, target))
            stats.parked += 1  # written behind its key's oldest waiting record, not handled
            self._processed.append(record)
            run.handled()
            return
        attempts = 1
        watch = self._watch()  # told which record this handler is on, for health
        watch.started(record)
        try:
            await self._attempt(run.handler, record, attempts)
            if tiers is not None:
                tiers.succeeded(record)
        except Exception as first:

            def again() -> Awaitable[None]:
                nonlocal attempts
                attempts += 1
                return self._attempt(run.handler, record, attempts)

            try:
                await consumer.retry.acall(
                    again,
                    first_error=first,
                    on_retry=lambda n, error, wait: handling.retrying(
                        record, n, error, wait, stats
                    ),
                )
            except RetriesExhausted as exhausted:
                error, attempts = exhausted.error, exhausted.attempts
                tiered = await worker.call(
                    lambda: handling.dead_letter(record, error, attempts=attempts)
                )
                stats.tiered += tiered
                stats.dead_lettered += not tiered
            else:
                if tiers is not None:
                    tiers.succeeded(record)
        finally:
            watch.finished(record)
        self._processed.append(record)
        run.handled()

    def _handling(self) -> Handling:
        parts = self._parts
        assert parts is not None
        return parts.handling

    def _watch(self) -> HealthWatch:
        self._running()  # refuses a consumer not started, or closed
        return self._parts.watch  # type: ignore[union-attr]  # started: it has parts

    def health(
        self,
        *,
        window_s: float = DEFAULT_WINDOW_S,
        stalled_after_s: float = DEFAULT_STALLED_AFTER_S,
        stopped_after_s: float | None = None,
    ) -> HealthReport:
        """:meth:`GovernedConsumer.health`: no request, so any thread, not awaited."""
        return self._watch().report(
            window_s=window_s, stalled_after_s=stalled_after_s, stopped_after_s=stopped_after_s
        )

    async def _attempt(self, handler: Handler, record: Record, attempt: int) -> None:
        handling = self._handling()
        if handling.hooked:
            with handling.scope(record, attempt):
                await handler(record)
        else:
            await handler(record)

    async def _end(self, run: Run, feeder: asyncio.Task[None], *, cancel_handlers: bool) -> None:
        """Finish a run: stop intake, let handlers finish (or cancel them), commit."""
        run.halting = True
        run.finished.set()
        feeder.cancel()
        lanes = [lane.task for lane in self._lanes.values() if lane.task is not None]
        if cancel_handlers:
            for task in lanes:
                task.cancel()
        try:
            # If this wait is cancelled, gather() cancels the handlers too.
            await asyncio.gather(feeder, *lanes, return_exceptions=True)
        finally:
            unstarted = [r for lane in self._lanes.values() for r in lane.records]
            self._lanes.clear()
            self._inbox.extendleft(reversed(unstarted))
            consumer, worker = self._consumer, self._worker
            assert consumer is not None
            assert worker is not None
            try:
                if self._stopping or consumer.commit_strategy.commits_when_run_ends:
                    reason = "close" if self._stopping else "routine"
                    await worker.call(functools.partial(self._commit_processed, reason))
            finally:
                self._run = None
                run.done.set_result(None)

    def stop(self) -> None:
        """Ask :meth:`run` (or ``async for``) to finish the records in flight, commit, and
        leave the group. Safe to call from any thread and from a signal handler.
        """
        self._stopping = True
        run, loop = self._run, self._loop
        if run is not None and loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nothing runs
                loop.call_soon_threadsafe(run.finished.set)

    # ------------------------------------------------------------ async for

    def __aiter__(self) -> AsyncGovernedConsumer:
        self._requeue_current()
        return self

    async def __anext__(self) -> Record:
        """The next record. The one before counts as processed now.

        Leaving the loop (``break``, an exception, cancellation) leaves the current
        record unprocessed: the next ``async for`` on this consumer yields it again, and
        it is never committed before. Call :meth:`mark_processed` before ``break`` if it
        was. Errors in the loop body are yours: use :meth:`run` for retries and dead
        letters.
        """
        consumer, worker = self._running()
        if self._run is not None:
            msg = "async for cannot read while run() is running on this consumer"
            raise RuntimeError(msg)
        self._refuse_in_transactions("async for")
        current = self._current
        if current is not None:
            self._current = None
            self._processed.append(current)
            if consumer.commit_strategy.commits_every_record:
                await worker.call(self._apply_processed)
        while not self._stopping:
            if self._inbox:
                record = self._current = self._inbox.popleft()
                return record
            await self._fetch()
        await self.close()  # commits what was processed, like run() after stop()
        raise StopAsyncIteration

    def _requeue_current(self) -> None:
        current = self._current
        if current is not None:
            self._current = None
            self._inbox.appendleft(current)

    # ------------------------------------------------------------ by hand

    async def poll_batch(
        self, *, max_records: int = DEFAULT_BATCH, timeout: float = 1.0
    ) -> list[Record]:
        """Up to ``max_records`` records (possibly none) within ``timeout`` seconds.

        Each must come back through :meth:`mark_processed` once processed.
        """
        self._refuse_in_transactions("poll_batch()")
        if self._run is not None:
            msg = "poll_batch() cannot read while run() is running on this consumer"
            raise RuntimeError(msg)
        self._requeue_current()
        deadline = time.monotonic() + timeout
        while not self._inbox:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            await self._fetch_for(max_records, min(left, _IDLE_POLL_S))
        inbox = self._inbox
        return [inbox.popleft() for _ in range(min(max_records, len(inbox)))]

    async def _fetch_for(self, want: int, wait: float) -> None:
        worker = self._running()[1]
        await worker.call(functools.partial(self._poll, want, wait))

    def mark_processed(self, record: Record) -> None:
        """Count ``record`` as processed (see ``GovernedConsumer.mark_processed``).

        It takes effect at the consumer's next call (poll, commit, lag, close).
        """
        if record is self._current:
            self._current = None
        self._processed.append(record)

    async def commit(self) -> None:
        """Commit every processed offset now, synchronously.

        Raises :class:`~governed_kafka.errors.BrokerError` if the broker refuses.
        """
        consumer, worker = self._running()

        def commit() -> None:
            self._apply_processed()
            consumer.commit()

        await worker.call(commit)

    async def lag(self, *, timeout: float = 10.0) -> LagReport:
        """Lag of every assigned partition (see ``GovernedConsumer.lag``)."""
        consumer, worker = self._running()

        def lag() -> LagReport:
            self._apply_processed()
            return consumer.lag(timeout=timeout)

        return await worker.call(lag)

    # ------------------------------------------------------------ lifecycle

    async def close(self) -> None:
        """Commit processed offsets, leave the group, and release the consumer.

        A :meth:`run` in progress is stopped first: its handlers in flight finish.
        """
        run = self._run
        if run is not None:
            self.stop()
            await asyncio.shield(run.done)
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._close())
        await asyncio.shield(self._closing)  # every caller returns once it is closed

    async def _close(self) -> None:
        async with self._starting:  # a start() in progress finishes first
            self._closed = True
        consumer, worker = self._consumer, self._worker
        if consumer is None or worker is None:
            return

        def close() -> None:
            self._apply_processed()
            consumer.close()

        try:
            await worker.call(close)
        finally:
            worker.stop()

    async def __aenter__(self) -> AsyncGovernedConsumer:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "started" if self._consumer else "not started"
        return f"<AsyncGovernedConsumer service={self.service!r} group={self.group_id!r} {state}>"
