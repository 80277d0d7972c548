"""The asyncio producer: the governed producer, its sends never waiting on the event loop.

It runs a :class:`~governed_kafka._producer_base.ProducerBase`, the producer
``GovernedProducer`` is, with a handover of its own (:class:`_Handover`): each delivery is
bridged to the loop, and records that find the local queue full wait on the loop for
room instead of blocking it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import Any, Final

import tenacity as _t

from . import _kafka, profiles
from ._aio_errors import not_started
from ._config import Overrides
from ._delivery import Delivery, not_queued
from ._options import (
    DEFAULT_MAX_BLOCK_S,
    DEFAULT_SKEW_POLICY,
    DEFAULT_TRANSACTION_INIT_TIMEOUT_S,
    ProducerOptions,
)
from ._producer_base import ProducerBase, backpressure_timeout
from ._routes import HeaderList, Headers
from ._transactions import USER, Transactions
from .contracts import Catalog
from .errors import ClosedError, ConfigError, DeliveryError, TransactionError
from .producer import RecordMetadata
from .registry import SchemaRegistry
from .skew import SkewPolicy, SkewReport

__all__ = ["AsyncGovernedProducer"]

_log = logging.getLogger("governed_kafka.aio")

#: First and longest pause between attempts to queue a record the full queue refused.
_ROOM_FIRST_WAIT_S: Final = 0.001
_ROOM_MAX_WAIT_S: Final = 0.1

#: A record's arguments to librdkafka's produce, delivery callback included.
_ProduceArgs = tuple[str, bytes | None, bytes | None, int, Any, None, int, HeaderList | None]


def _close_abandoned(build: asyncio.Future[ProducerBase]) -> None:
    """Close, in a thread, a producer whose ``start()`` was cancelled while it was built."""
    if not build.cancelled() and build.exception() is None:
        asyncio.get_running_loop().run_in_executor(None, build.result().close)


class _Deliveries:
    """Hands delivery reports from librdkafka's threads to the event loop, in batches.

    One ``call_soon_threadsafe`` wakes the loop for all reports that arrive before it
    runs, instead of one wake-up per record.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._ready: deque[_Bridge] = deque()
        self._scheduled = False

    def arrived(self, bridge: _Bridge) -> None:
        """A delivery report was served (on whichever thread served it)."""
        self._ready.append(bridge)
        if not self._scheduled:
            self._scheduled = True
            try:
                self._loop.call_soon_threadsafe(self._settle)
            except RuntimeError:  # the loop is closed: nobody can await the outcome any more
                self._ready.clear()

    def _settle(self) -> None:
        self._scheduled = False
        ready = self._ready
        while ready:
            bridge = ready.popleft()
            future = bridge.future
            if future.done():  # cancelled: the caller stopped waiting
                continue
            delivery = bridge.delivery
            assert delivery is not None  # set by send_nowait() before the loop runs this
            try:
                future.set_result(delivery.result(0))
            except DeliveryError as error:
                future.set_exception(error)


class _Bridge:
    """The delivery callback librdkafka gets for a record of the asyncio producer: the
    record's own :class:`~governed_kafka._delivery.Delivery` (which resolves its
    DeliveryFuture and tells the hooks), then the asyncio side."""

    __slots__ = ("deliveries", "delivery", "future")

    def __init__(
        self,
        delivery: Delivery,
        future: asyncio.Future[RecordMetadata],
        deliveries: _Deliveries,
    ) -> None:
        self.delivery = delivery
        self.future = future
        self.deliveries = deliveries

    def __call__(self, err: object, report: _kafka.Report) -> None:
        self.delivery(err, report)
        self.deliveries.arrived(self)


class _Handover:
    """How the asyncio producer's records reach librdkafka (the producer's handover).

    Each record queued gets a :class:`_Bridge` to :attr:`awaiting`, its asyncio future.
    A record that finds the queue full, or that comes while earlier ones wait for room
    (:attr:`holding`), is not queued: its produce arguments are left in :attr:`held`,
    and the asyncio producer queues it (:meth:`queue`) when there is room.
    """

    def __init__(self, deliveries: _Deliveries) -> None:
        #: Where delivery reports are handed to the event loop.
        self.deliveries = deliveries
        #: The asyncio future of the record being sent.
        self.awaiting: asyncio.Future[RecordMetadata] | None = None
        #: Produce arguments of the last record ``send()`` did not queue, if any.
        self.held: _ProduceArgs | None = None
        #: Whether every record is held (earlier ones wait for room).
        self.holding = False

    def bind(self, client: _kafka.ProducerClient) -> _Handover:
        """Take records to ``client`` (the producer calls this once it made its client)."""
        self._client = client
        self._produce = client.produce
        return self

    def produce(  # noqa: PLR0917 - librdkafka's positional form
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None,
        partition: int,
        on_delivery: Any,
        callback: None,
        timestamp: int,
        headers: HeaderList | None,
        /,
    ) -> None:
        if self.holding:
            self.held = (topic, value, key, partition, on_delivery, callback, timestamp, headers)
            return
        assert self.awaiting is not None
        bridge = _Bridge(on_delivery, self.awaiting, self.deliveries)
        self._produce(topic, value, key, partition, bridge, callback, timestamp, headers)

    def when_full(  # noqa: PLR0917 - the record as produce() takes it
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None,
        delivery: Delivery,
        headers: HeaderList | None,
        timestamp: int,
    ) -> None:
        self.held = (topic, value, key, -1, delivery, None, timestamp, headers)

    def queue(self, args: _ProduceArgs) -> None:
        """Hand a held record to librdkafka; ``BufferError`` while the queue is full."""
        self._produce(*args)

    def refusal(self, exc: BaseException, topic: str, key: bytes | None) -> DeliveryError | None:
        """The governed error of a held record librdkafka refused (see ``ProducerClient``)."""
        return self._client.refusal(exc, topic, key)


class _Held:
    """A record accepted by ``send_nowait()`` that waits for room in the local queue."""

    __slots__ = ("args", "deadline", "future", "since")

    def __init__(
        self,
        args: _ProduceArgs,
        future: asyncio.Future[RecordMetadata],
        since: float,
        deadline: float,
    ) -> None:
        #: produce() arguments, the delivery callback already bridged.
        self.args = args
        self.future = future
        self.since = since
        self.deadline = deadline

    @property
    def topic(self) -> str:
        return str(self.args[0])

    def not_queued(self, error: Exception) -> None:
        """The record will never be queued: fail its future (unless its sender withdrew
        it), and settle what its delivery awaited (observers, the skew watch)."""
        bridge: _Bridge = self.args[4]
        not_queued(bridge.delivery, self.topic, self.args[2], error)
        if not self.future.done():
            self.future.set_exception(error)


class AsyncGovernedProducer:
    """:class:`~governed_kafka.GovernedProducer` for asyncio: same parameters, same rules.

    ``send_nowait()`` checks, encodes and queues a record at once and returns an
    ``asyncio.Future`` of its :class:`~governed_kafka.RecordMetadata` (pipelining);
    ``await send()`` waits for the delivery. A refused record raises from the call
    itself, before anything is queued, exactly as with the sync producer.

    When the local queue is full the record waits, without blocking the loop, for at
    most ``max_block_s``; its future then fails with
    :class:`~governed_kafka.errors.BackpressureTimeout`. Records sent while earlier ones
    wait queue up behind them, so send order (and partition order) is kept. Cancelling
    the future of a record that still waits for room withdraws it; once librdkafka holds
    a record, cancelling only stops the wait and the record is still delivered.

    Use it from the event loop it was started on. Hooks run where the sync producer
    runs them: ``on_send`` on the loop, ``on_delivery`` where the delivery report is
    served (the producer's background thread, or the loop in passing every 64 sends).

    With ``transactional_id=`` it is transactional like the sync producer:
    ``async with producer.transaction():`` (commit and abort run in a thread, never on
    the loop). For a consumer's ``CommitStrategy.transactional`` pass a
    ``GovernedProducer``, with ``AsyncGovernedConsumer`` too.
    """

    def __init__(
        self,
        catalog: Catalog,
        *,
        service: str,
        bootstrap_servers: str | list[str] | tuple[str, ...],
        profile: profiles.Profile = profiles.DURABLE,
        hooks: Sequence[object] = (),
        overrides: Overrides | None = None,
        max_block_s: float = DEFAULT_MAX_BLOCK_S,
        registry: SchemaRegistry | None = None,
        auto_register: bool = False,
        verify_topics: bool | None = None,
        skew: SkewPolicy | None = DEFAULT_SKEW_POLICY,
        transactional_id: str | None = None,
        transaction_init_timeout_s: float = DEFAULT_TRANSACTION_INIT_TIMEOUT_S,
    ) -> None:
        self.catalog = catalog
        self.service = service
        #: The producer's transactional id (``None``: no transactions).
        self.transactional_id = transactional_id
        self._options = ProducerOptions(
            service=service,
            bootstrap_servers=bootstrap_servers,
            profile=profile,
            hooks=hooks,
            overrides=overrides,
            max_block_s=max_block_s,
            registry=registry,
            auto_register=auto_register,
            verify_topics=verify_topics,
            skew=skew,
            transactional_id=transactional_id,
            transaction_init_timeout_s=transaction_init_timeout_s,
        )
        self._producer: ProducerBase | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handover: _Handover | None = None
        self._starting = asyncio.Lock()
        self._backlog: deque[_Held] = deque()
        self._drainer: asyncio.Task[None] | None = None
        self._closing: asyncio.Future[None] | None = None
        self._closed = False

    async def start(self) -> AsyncGovernedProducer:
        """Build the governed producer (in a thread: it may talk to the cluster).

        Raises what :class:`~governed_kafka.GovernedProducer` raises at construction
        (:class:`~governed_kafka.errors.ConfigError`, ``GovernanceViolation`` ...).
        """
        async with self._starting:
            if self._closed:
                raise ClosedError(f"producer for service {self.service!r} is closed")
            if self._producer is None:
                loop = asyncio.get_running_loop()
                handover = _Handover(_Deliveries(loop))
                build = loop.run_in_executor(
                    None,
                    functools.partial(
                        ProducerBase, self.catalog, self._options, handover=handover.bind
                    ),
                )
                try:
                    producer = await asyncio.shield(build)
                except asyncio.CancelledError:
                    build.add_done_callback(_close_abandoned)  # built after all: release it
                    raise
                self._loop = loop
                self._handover = handover
                self._producer = producer
        return self

    def _running(self) -> ProducerBase:
        producer = self._producer
        if producer is None:
            if self._closed:
                raise ClosedError(f"producer for service {self.service!r} is closed")
            raise not_started("producer", self.service)
        return producer

    @property
    def config(self) -> dict[str, str | int | float | bool]:
        """The librdkafka configuration in force (governed keys included)."""
        return self._running().config

    @property
    def hook_failures(self) -> int:
        """How many times this producer's hooks raised (each failure was contained)."""
        return self._running().hook_failures

    def skew(self) -> SkewReport:
        """Partition skew and hot keys of the recent sends (see ``GovernedProducer.skew``)."""
        return self._running().skew()

    @property
    def profile(self) -> profiles.Profile:
        """The profile the producer runs with."""
        return self._options.profile

    # ------------------------------------------------------------------ sending

    def send_nowait(
        self,
        topic: str,
        value: object,
        *,
        key: object = None,
        headers: Headers | None = None,
    ) -> asyncio.Future[RecordMetadata]:
        """Queue one record for ``topic``; return a future of its delivery.

        Refused before anything is queued, raising from this call, for exactly the
        reasons :meth:`GovernedProducer.send <governed_kafka.GovernedProducer.send>`
        refuses a record. The future fails with
        :class:`~governed_kafka.errors.DeliveryError` if the record is not delivered,
        and with :class:`~governed_kafka.errors.BackpressureTimeout` if it found no
        room in the local queue within ``max_block_s``.
        """
        producer = self._running()
        loop, handover = self._loop, self._handover
        assert loop is not None
        assert handover is not None
        future: asyncio.Future[RecordMetadata] = loop.create_future()
        handover.awaiting = future
        producer.send(topic, value, key=key, headers=headers)
        held = handover.held
        if held is None:
            return future
        handover.held = None
        bridge = _Bridge(held[4], future, handover.deliveries)
        args = (*held[:4], bridge, *held[5:])
        now = loop.time()
        self._backlog.append(_Held(args, future, now, now + producer.max_block_s))
        if self._drainer is None:
            handover.holding = True
            self._drainer = loop.create_task(self._drain(handover))
        return future

    async def send(
        self,
        topic: str,
        value: object,
        *,
        key: object = None,
        headers: Headers | None = None,
    ) -> RecordMetadata:
        """Send one record and wait for its delivery; raise ``DeliveryError`` if it failed."""
        return await self.send_nowait(topic, value, key=key, headers=headers)

    async def _drain(self, handover: _Handover) -> None:
        """Queue the held records, oldest first, as room appears in the local queue."""
        backlog = self._backlog
        try:
            while backlog:
                await self._queue(handover, backlog[0])
                backlog.popleft()
        finally:
            handover.holding = False  # the backlog is empty: sends queue directly again
            self._drainer = None

    async def _queue(self, handover: _Handover, held: _Held) -> None:
        loop = asyncio.get_running_loop()
        future = held.future
        retrying = _t.AsyncRetrying(
            retry=_t.retry_if_exception_type(BufferError),
            stop=lambda _state: loop.time() >= held.deadline,
            wait=_t.wait_exponential(multiplier=_ROOM_FIRST_WAIT_S, max=_ROOM_MAX_WAIT_S),
            reraise=False,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    if future.cancelled():  # withdrawn by its sender: never sent
                        withdrawn = f"record for {held.topic!r} withdrawn before it was queued"
                        held.not_queued(
                            DeliveryError(
                                withdrawn, topic=held.topic, key=held.args[2], code="CANCELLED"
                            )
                        )
                        return
                    handover.queue(held.args)
        except _t.RetryError:
            waited = loop.time() - held.since
            held.not_queued(
                backpressure_timeout(
                    held.topic,
                    waited,
                    max_block_s=self._options.max_block_s,
                    queue_limit=self._options.profile.queue_max_messages,
                )
            )
        except Exception as exc:
            refusal = handover.refusal(exc, held.topic, held.args[2])
            if refusal is None:
                raise
            held.not_queued(refusal)

    # ------------------------------------------------------------------ transactions

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """``async with producer.transaction():`` begin a transaction; commit it when the
        block ends (once every record sent in it is in librdkafka's queue); abort it when
        an exception leaves the block, then re-raise the exception.

        Records of an aborted block still waiting for room in the local queue are
        withdrawn (their futures fail). Raises what ``GovernedProducer.transaction()``
        raises: :class:`~governed_kafka.errors.ConfigError` without ``transactional_id``,
        :class:`~governed_kafka.errors.TransactionError` (``aborted`` set) when the
        commit had to abort, :class:`~governed_kafka.errors.ProducerFenced` when fenced.
        """
        transactions = self._transactions()
        transactions.begin(USER)
        try:
            yield
        except BaseException as exc:
            self._withdraw_backlog(exc)
            if transactions.open and transactions.owner == USER:
                try:
                    await asyncio.to_thread(transactions.abort, USER, reason="user", error=exc)
                except TransactionError as failed:
                    _log.error("aborting after %r failed too: %s", exc, failed)
            raise
        drainer = self._drainer
        if drainer is not None:
            await asyncio.wait({drainer})
        await asyncio.to_thread(transactions.commit, USER, reason="user")

    def _transactions(self) -> Transactions:
        transactions = self._running().transactions
        if transactions is None:
            msg = (
                f"producer for service {self.service!r} has no transactional_id: pass "
                "transactional_id= to its constructor to run transactions"
            )
            raise ConfigError(msg, key="transactional.id")
        return transactions

    def _withdraw_backlog(self, cause: BaseException) -> None:
        """The transaction is aborted: records still waiting for room never join it."""
        drainer = self._drainer
        if drainer is not None:
            drainer.cancel()
        while self._backlog:
            held = self._backlog.popleft()
            withdrawn = (
                f"record for {held.topic!r} withdrawn before it was queued: its transaction "
                f"was aborted ({type(cause).__name__})"
            )
            held.not_queued(DeliveryError(withdrawn, topic=held.topic, code="CANCELLED"))

    # ------------------------------------------------------------------ lifecycle

    async def flush(self, timeout: float | None = None) -> int:
        """Wait until every accepted record is delivered or failed; return how many remain.

        Records still waiting for room in the local queue count as remaining.
        """
        producer = self._running()
        started = time.monotonic()
        drainer = self._drainer
        if drainer is not None:
            await asyncio.wait({drainer}, timeout=timeout)
        left = None if timeout is None else max(timeout - (time.monotonic() - started), 0.0)
        remaining = await asyncio.to_thread(producer.flush, left)
        return remaining + len(self._backlog)

    async def close(self, timeout: float | None = None) -> None:
        """Deliver what was accepted, then release the producer (see ``GovernedProducer.close``).

        Records still waiting for room after ``timeout`` are withdrawn: their futures
        fail with :class:`~governed_kafka.errors.ClosedError`.
        """
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._close(timeout))
        await asyncio.shield(self._closing)  # every caller returns once it is closed

    async def _close(self, timeout: float | None) -> None:
        async with self._starting:  # a start() in progress finishes first
            self._closed = True
        producer = self._producer
        if producer is None:
            return
        started = time.monotonic()
        drainer = self._drainer
        if drainer is not None:
            await asyncio.wait({drainer}, timeout=timeout)
            if not drainer.done():
                drainer.cancel()
                await asyncio.wait({drainer})
        while self._backlog:
            held = self._backlog.popleft()
            held.not_queued(
                ClosedError(f"producer closed before the record for {held.topic!r} was queued")
            )
        left = None if timeout is None else max(timeout - (time.monotonic() - started), 0.0)
        # Every record that failed did so through its own future, which says so.
        with contextlib.suppress(DeliveryError):
            await asyncio.to_thread(producer.close, left)

    async def __aenter__(self) -> AsyncGovernedProducer:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            await self.close()
            return
        try:  # do not mask the error that ended the block
            await self.close()
        except DeliveryError as undelivered:
            _log.error("while handling %r: %s", exc, undelivered)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "started" if self._producer else "not started"
        return f"<AsyncGovernedProducer service={self.service!r} {state}>"
