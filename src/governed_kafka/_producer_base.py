"""What ``GovernedProducer`` and ``AsyncGovernedProducer`` share: the governed producer.

:class:`ProducerBase` is built from a catalog and :class:`~governed_kafka._options.ProducerOptions`:
its routes (:mod:`governed_kafka._routes`) check and encode each record, its deliveries
(:mod:`governed_kafka._delivery`) resolve each future, and librdkafka's producer
(``governed_kafka._kafka.ProducerClient``) takes the records. ``GovernedProducer`` is
this class with the public, keyword-typed constructor.

One named extension point: a :class:`Handover`, given at construction, takes over how a
checked record reaches librdkafka. The asyncio producer uses it to bridge each delivery
to the event loop and to keep records that find the local queue full, instead of
blocking the sending thread until there is room.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
import weakref
from collections.abc import Callable
from types import TracebackType
from typing import Final, Protocol

import tenacity as _t

from . import _config, _kafka, cluster
from ._delivery import (
    Delivery,
    DeliveryFuture,
    ProducerState,
    RecordMetadata,
    Watching,
    deliveries_of,
    not_queued,
    serve_in_background,
    stop_background,
)
from ._options import ProducerOptions
from ._routes import HeaderList, Headers, Route, build_routes, check_headers, not_routed
from ._transactions import Transactions
from .contracts import Catalog
from .errors import (
    BackpressureTimeout,
    ClosedError,
    ConfigError,
    DeliveryError,
    GovernanceViolation,
)
from .hooks import BackpressureDetails, HookChain, SendDetails
from .registry import LocalSchemaRegistry
from .skew import SkewPolicy, SkewReport, _SkewTracker

__all__ = ["Handover", "HandoverFactory", "ProducerBase", "backpressure_timeout"]

_log = logging.getLogger("governed_kafka.producer")

#: The sending thread serves delivery reports once every 64 sends.
_SERVE_MASK: Final = 63


class Handover(Protocol):
    """How checked records reach librdkafka, when not straight through its ``produce``.

    :meth:`produce` is called exactly where librdkafka's ``produce`` would be, with the
    record's :class:`~governed_kafka._delivery.Delivery` as its delivery callback; when
    it raises ``BufferError`` (the local queue is full), the producer tells its hooks and
    calls :meth:`when_full` instead of waiting for room itself.
    """

    def produce(  # noqa: PLR0917 - librdkafka's positional form
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None,
        partition: int,
        on_delivery: _kafka.DeliveryCallback,
        callback: None,
        timestamp: int,
        headers: HeaderList | None,
        /,
    ) -> None:
        """Queue the record (or keep it for later); ``BufferError`` when the queue is full."""
        ...

    def when_full(  # noqa: PLR0917 - the record as produce() takes it
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None,
        delivery: Delivery,
        headers: HeaderList | None,
        timestamp: int,
    ) -> None:
        """The record found the local queue full: keep it until there is room."""
        ...


#: Makes the handover of a producer, given librdkafka's producer once it exists.
HandoverFactory = Callable[[_kafka.ProducerClient], Handover]

#: What happens to a record that found the local queue full.
WhenFull = Callable[[str, bytes | None, bytes | None, Delivery, HeaderList | None, int], None]


def backpressure_timeout(
    topic: str, waited: float, *, max_block_s: float, queue_limit: int
) -> BackpressureTimeout:
    """The refusal of a record that waited ``waited`` seconds for room in vain."""
    msg = (
        f"local queue full for {waited:.1f} s (max_block_s={max_block_s}): "
        f"record for {topic!r} not accepted; the broker is not keeping up or is "
        f"unreachable (queue limit: {queue_limit} records)"
    )
    return BackpressureTimeout(msg, topic=topic, waited_s=waited)


class ProducerBase:
    """A governed producer: durable by construction, refusing what a contract forbids.

    :param catalog: the loaded contracts.
    :param options: everything else (see ``GovernedProducer``).
    :param handover: makes the :class:`Handover` that takes records to librdkafka;
        ``None``: librdkafka's own ``produce``, blocking up to ``max_block_s`` for room.
    """

    def __init__(
        self,
        catalog: Catalog,
        options: ProducerOptions,
        *,
        handover: HandoverFactory | None = None,
    ) -> None:
        self.catalog = catalog
        self.service = options.service
        self.profile = options.profile
        self.max_block_s = options.max_block_s
        self._config = _config.producer_config(
            bootstrap_servers=options.bootstrap_servers,
            client_id=options.service,
            profile=options.profile,
            overrides=options.overrides,
            transactional_id=options.transactional_id,
        )
        self._check_transactional_id(catalog, options.transactional_id)
        registry = options.registry
        produced = catalog.produced_by(self.service)
        if registry is None and any(c.value_schema or c.key_schema for c in produced):
            registry = LocalSchemaRegistry.from_catalog(catalog)
        #: Where schema ids come from (``None`` when no topic of this producer has a schema).
        self.registry = registry
        self.auto_register = options.auto_register
        self._routes = build_routes(
            catalog,
            self.service,
            registry=registry,
            auto_register=options.auto_register,
            transactional=options.transactional_id is not None,
        )
        self.client_id = str(self._config["client.id"])
        #: Routes whose rights on the cluster are checked at their first send: a
        #: service with a principal whose topics were not verified at construction.
        self._unchecked: dict[str, Route] = {}
        verify = options.verify_topics
        if self._routes and (catalog.verify_topics if verify is None else verify):
            live = cluster.Cluster._from_client_config(self._config, cluster.DEFAULT_TIMEOUT_S)
            if catalog.service(self.service) is not None:
                # First: without rights, the topics would look missing or unreadable.
                live.verify_access(catalog, service=self.service, writes=self._routes)
            live.verify(catalog, self._routes)
        elif catalog.service(self.service) is not None:
            # Off the hot path: send() finds no route, and _route_now() checks, then routes.
            self._unchecked, self._routes = self._routes, {}
        self._hooks = HookChain(options.hooks)
        self._send_gate = self._hooks.send_gate
        #: Whether sends are observed: re-decided every few sends when hooks can say no.
        self._observing = self._hooks.delivery is not None or (
            self._hooks.send is not None and self._sends_wanted()
        )
        self._watch_skew(options.skew)
        self._state = ProducerState()
        self._state.transactional = options.transactional_id is not None
        self._delivery = deliveries_of(self._state)
        self._client = _kafka.ProducerClient(
            self._config,
            **self._hooks.client_callbacks(client_id=self.client_id, role="producer"),
        )
        #: The transactions of a transactional producer (``None`` without transactional_id).
        self.transactions: Transactions | None = None
        if options.transactional_id is not None:
            self._start_transactions(options.transaction_init_timeout_s)
        self._produce: _kafka.Produce = self._client.produce
        self._when_full: WhenFull = self._block_until_room
        if handover is not None:
            taken = handover(self._client)
            self._produce = taken.produce
            self._when_full = taken.when_full
        self._sends = 0
        self._closed = False
        self._close_lock = threading.Lock()
        self._thread = threading.Thread(
            target=serve_in_background,
            args=(self._client, self._state),
            name=f"governed-kafka-producer[{self.service}]",
            daemon=True,
        )
        self._thread.start()
        self._finalizer = weakref.finalize(self, stop_background, self._state, self._thread)

    def _check_transactional_id(self, catalog: Catalog, transactional_id: str | None) -> None:
        """A service with a ``[services]`` table uses only the transactional ids it declares:
        those are the ones the contracts grant ACLs for."""
        declared = catalog.service(self.service)
        if transactional_id is None or declared is None:
            return
        if declared.allows_transactional_id(transactional_id):
            return
        listed = ", ".join(declared.transactional_ids) or "none"
        msg = (
            f"transactional_id {transactional_id!r} is not declared for service "
            f"{self.service!r} (its transactional_ids: {listed}); add it, or a prefix of it "
            f"ending in '*', to [services.{self.service}].transactional_ids so that the "
            "contracts grant its ACLs"
        )
        raise GovernanceViolation(
            msg,
            rule="producer.transactional-id",
            field="transactional_ids",
            value=transactional_id,
        )

    def _start_transactions(self, timeout_s: float) -> None:
        """Register the transactional id (fencing older producers); release all on failure."""
        declared = self.catalog.service(self.service)
        self._client.principal = declared.principal if declared is not None else None
        self.transactions = Transactions(
            self._client,
            self._hooks,
            client_id=self.client_id,
            timeout_s=int(str(self._config["transaction.timeout.ms"])) / 1000,
            failures=self._state.transaction_failures,
        )
        try:
            self.transactions.init(timeout_s)
        except BaseException:
            self._client.close()
            raise

    @property
    def transactional_id(self) -> str | None:
        """The producer's transactional id, ``None`` for a producer without transactions."""
        return None if self.transactions is None else self.transactions.transactional_id

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        """``with producer.transaction():`` begin a transaction; commit it when the block
        ends; abort it when an exception leaves the block, then re-raise the exception.

        Every record sent in the block is committed with the others or not at all
        (``read_committed`` readers never see an aborted one). A commit that fails
        without being fatal aborts and raises
        :class:`~governed_kafka.errors.TransactionError` with ``aborted`` set; a fenced
        producer raises :class:`~governed_kafka.errors.ProducerFenced` and is unusable.
        Raises :class:`~governed_kafka.errors.ConfigError` on a producer made without
        ``transactional_id``.
        """
        return self._transactional().scope()

    def _transactional(self) -> Transactions:
        if self._closed:
            raise ClosedError(f"producer for service {self.service!r} is closed")
        if self.transactions is None:
            msg = (
                f"producer for service {self.service!r} has no transactional_id: pass "
                "transactional_id= to its constructor to run transactions"
            )
            raise ConfigError(msg, key="transactional.id")
        return self.transactions

    def _watch_skew(self, skew: SkewPolicy | None) -> None:
        tracker = None
        #: Sends whose number has none of these bits set are "ticks": sampled for skew
        #: and/or serving delivery reports. One bit test per send decides.
        self._tick_mask = _SERVE_MASK
        self._sample_mask = 0
        if skew is not None:
            tracker = _SkewTracker(
                skew,
                partitions={name: r.contract.partitions for name, r in self._routes.items()},
                on_skew=self._hooks.skew,
            )
            self._sample_mask = skew.sample_every - 1
            self._tick_mask = min(self._sample_mask, _SERVE_MASK)
        self._skew = tracker
        self._watching = Watching(self._hooks, self.client_id, tracker)

    @property
    def config(self) -> dict[str, str | int | float | bool]:
        """The librdkafka configuration in force (governed keys included).

        The value of every secret-bearing key (passwords, keys, tokens) reads
        ``"[redacted]"``.
        """
        return _config.redacted(self._config)

    @property
    def hook_failures(self) -> int:
        """How many times this producer's hooks raised (each failure was contained)."""
        return self._hooks.hook_failures()

    # ------------------------------------------------------------------ sending

    def send(  # noqa: PLR0912 - the send path stays one function: its checks in order
        self,
        topic: str,
        value: object,
        *,
        key: object = None,
        headers: Headers | None = None,
        partition: int | None = None,
    ) -> DeliveryFuture:
        """Queue one record for ``topic``; return a future of its delivery.

        Refused before anything is queued, with :class:`GovernanceViolation`, when a
        transactional producer has no transaction open (``transaction.required``), the
        topic has no contract, this service is not one of its producers (or the topic is
        ``exactly_once`` and this producer is not transactional), a required key
        is missing, a key is given on a ``forbidden`` topic, or ``value`` is ``None``
        (a tombstone) on a topic that is not compacted. A value or key of the wrong type
        raises :class:`SerializationError`. After a fatal error of the producer every
        record is refused with :class:`DeliveryError` naming that error. ``partition``
        sends to that partition instead of the one the key's hash picks.
        """
        transactions = self.transactions
        if transactions is not None and not transactions.open:
            raise self._refusal(topic) if self._closed else transactions.refusal(topic)
        route = self._routes.get(topic)
        if route is None:
            route = self._route_now(topic)
        codec = route.codec
        timestamp = 0
        event_type = None
        if codec is None:
            if type(key) is not bytes or route.key_forbidden:
                key = route.key(key)
            if type(value) is not bytes:
                value = route.value(value)
            header_list = None if headers is None else check_headers(topic, headers)
        else:
            key, value, event_type, timestamp, header_list = codec.encode(
                route, key, value, headers
            )
        if route.max_bytes is not None:
            route.check_size(key, value, header_list)
        delivery = self._delivery()
        if self._observing:
            header_list = self._observe(
                topic, key, value, header_list, delivery, event_type=event_type
            )
        sends = self._sends = self._sends + 1
        if not sends & self._tick_mask:
            self._tick(sends, topic, delivery)
        try:
            try:
                self._produce(
                    topic,
                    value,
                    key,
                    -1 if partition is None else partition,
                    delivery,
                    None,
                    timestamp,
                    header_list,
                )
            except BufferError:
                self._queue_full(topic)
                # A record for a chosen partition waits here (retry tiers, redrive).
                when_full = (
                    self._when_full
                    if partition is None
                    else functools.partial(self._block_until_room, partition=partition)
                )
                when_full(topic, value, key, delivery, header_list, timestamp)
        except Exception as failed:
            refusal = self._client.refusal(failed, topic, key)
            not_queued(delivery, topic, key, failed if refusal is None else refusal)
            if refusal is None:
                raise
            raise refusal from failed
        if transactions is not None:
            transactions.records += 1
        return delivery

    def _tick(self, sends: int, topic: str, delivery: Delivery) -> None:
        """Every few sends: serve delivery reports, ask idle hooks again, sample for skew."""
        if not sends & _SERVE_MASK:
            self._client.poll(0)
            self._state.last_foreground_serve = time.monotonic()
            if self._send_gate is not None:
                self._observing = self._sends_wanted()
        if self._skew is not None and not sends & self._sample_mask:
            delivery.watched(self._watching).sample(topic)

    def _sends_wanted(self) -> bool:
        """Ask the send hooks whether the coming sends need them (``wants_send``)."""
        gate = self._send_gate
        if gate is None:
            return True
        try:
            return gate()
        except Exception:
            return self._hooks.gate_failed()

    def skew(self) -> SkewReport:
        """Partition skew and hot keys of the recent sends, per topic (see :mod:`~.skew`)."""
        if self._skew is None:
            return SkewReport(policy=None)
        return self._skew.report()

    def _observe(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        header_list: HeaderList | None,
        delivery: Delivery,
        *,
        event_type: str | None,
    ) -> HeaderList | None:
        """Run the send hooks and have the delivery watched; return the headers to send."""
        observers = None
        hooks = self._hooks
        if hooks.send is not None:
            header_list = header_list if header_list is not None else []
            details = SendDetails(
                topic=topic,
                key=key,
                value_size=0 if value is None else len(value),
                headers=header_list,
                client_id=self.client_id,
                event_type=event_type,
                tombstone=value is None,
                transactional_id=self.transactional_id,
            )
            observers = hooks.send(details)
        if observers or hooks.delivery is not None:
            delivery.watched(self._watching).observers = observers
        return header_list or None

    def send_and_wait(
        self,
        topic: str,
        value: object,
        *,
        key: object = None,
        headers: Headers | None = None,
        timeout: float | None = None,
        partition: int | None = None,
    ) -> RecordMetadata:
        """Send one record and wait for its delivery; raise :class:`DeliveryError` if it failed."""
        return self.send(topic, value, key=key, headers=headers, partition=partition).result(
            timeout
        )

    def _route_now(self, topic: str) -> Route:
        """The route of a topic :meth:`send` did not find: refused, or, at the first send
        to it of a service with a principal whose rights were not checked at
        construction, checked now (:class:`AccessDenied` when the cluster does not grant
        WRITE) and routed like the others from then on."""
        route = self._unchecked.get(topic)
        if route is None or self._closed:
            raise self._refusal(topic)
        live = cluster.Cluster._from_client_config(self._config, cluster.DEFAULT_TIMEOUT_S)
        live.verify_access(self.catalog, service=self.service, writes=[topic])
        self._routes[topic] = self._unchecked.pop(topic)
        return route

    def _refusal(self, topic: str) -> Exception:
        if self._closed:
            return ClosedError(f"producer for service {self.service!r} is closed")
        return not_routed(self.catalog, self.service, topic)

    def _block_until_room(  # noqa: PLR0917 - the record as produce() takes it
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None,
        delivery: Delivery,
        headers: HeaderList | None,
        timestamp: int,
        partition: int = -1,
    ) -> None:
        """The local queue is full: serve delivery reports until there is room, or time out."""
        started = time.monotonic()
        retrying = _t.Retrying(
            retry=_t.retry_if_exception_type(BufferError),
            stop=_t.stop_after_delay(self.max_block_s),
            wait=_t.wait_exponential(multiplier=0.001, max=0.1),
            sleep=self._serve_for,  # waiting serves reports, which is what frees the queue
            reraise=False,
        )
        try:
            for attempt in retrying:
                with attempt:
                    self._client.produce(
                        topic, value, key, partition, delivery, None, timestamp, headers
                    )
        except _t.RetryError:
            raise backpressure_timeout(
                topic,
                time.monotonic() - started,
                max_block_s=self.max_block_s,
                queue_limit=self.profile.queue_max_messages,
            ) from None

    def _serve_for(self, seconds: float) -> None:
        self._client.poll(seconds)

    def _queue_full(self, topic: str) -> None:
        """Tell the hooks that a record for ``topic`` found the local queue full."""
        if self._hooks.backpressure is not None:
            self._hooks.backpressure(
                BackpressureDetails(
                    kind="queue-full",
                    in_flight=self._client.queued(),
                    limit=self.profile.queue_max_messages,
                    topic=topic,
                )
            )

    # ------------------------------------------------------------------ lifecycle

    def flush(self, timeout: float | None = None) -> int:
        """Wait until every queued record is delivered or failed; return how many remain."""
        remaining = self._client.flush(-1 if timeout is None else timeout)
        self._state.last_foreground_serve = time.monotonic()
        return remaining

    def close(self, timeout: float | None = None) -> None:
        """Deliver what was accepted, then release the producer.

        Waits up to ``timeout`` seconds (default: until librdkafka's
        ``delivery.timeout.ms`` has settled every record). Records still queued after
        that are purged and their futures fail. Raises :class:`DeliveryError` counting
        every record that was not delivered and whose future nobody looked at (its
        ``failures`` lists the most recent of them: at most 1000, holding at most 4 MiB
        of keys; no values are kept); the failures of futures that were looked at are
        theirs to report.
        """
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
            self._routes = {}
            if self.transactions is not None:
                self.transactions.close()  # never committed: abort it
            remaining = self.flush(timeout)
            if remaining:
                _log.warning(
                    "close(): %d records not delivered within %s s; purging them",
                    remaining,
                    timeout,
                )
                self._client.purge()
                self._client.flush(5)
            self._finalizer()
            self._client.close()
        unobserved, failures = self._state.take_unobserved_failures()
        if unobserved:
            lost = self._state.failure_count
            shown = "\n  ".join(str(f) for f in failures[:10])
            more = f"\n  ... and {unobserved - 10} more" if unobserved > 10 else ""
            kept = (
                f"; the last {len(failures)} are in .failures" if len(failures) < unobserved else ""
            )
            msg = (
                f"{unobserved} accepted records were not delivered and nobody checked "
                f"their futures ({lost} failed in all{kept}):\n  {shown}{more}"
            )
            first = failures[0] if failures else None
            raise DeliveryError(
                msg,
                topic=first.topic if first else None,
                code=first.code if first else None,
                failures=failures,
            )

    def __enter__(self) -> ProducerBase:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.close()
            return
        # Do not mask the error that ended the block; report undelivered records in the log.
        try:
            self.close()
        except DeliveryError as undelivered:
            _log.error("while handling %r: %s", exc, undelivered)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (
            f"<GovernedProducer service={self.service!r} profile={self.profile.name!r} "
            f"topics={sorted(self._routes) if not self._closed else []} {state}>"
        )
