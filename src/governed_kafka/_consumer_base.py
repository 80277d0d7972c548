"""What ``GovernedConsumer`` and ``AsyncGovernedConsumer`` share: the governed consumer.

:class:`ConsumerBase` is built from a catalog and
:class:`~governed_kafka._options.ConsumerOptions`. It reads records through
librdkafka's consumer (``governed_kafka._kafka.ConsumerClient``, which builds each
:class:`~governed_kafka._records.Record`), keeps their offsets in its offset book
(:mod:`governed_kafka._offsets`), commits per its strategy (:mod:`governed_kafka._commits`),
and hands failing records to its handling (:mod:`governed_kafka._handling`): retries,
retry tiers (:mod:`governed_kafka._tiers`), the dead letters. Its watch
(:mod:`governed_kafka._health`) reports slow handlers and judges its health.

One extension point: a :class:`ConsumerExtension` is handed the :class:`ConsumerParts`
and told of each rebalance first (the asyncio consumer's side of it).
"""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from collections.abc import Callable
from types import TracebackType
from typing import Any, Final, Literal

from . import _config, _gate, _kafka
from ._batch_transactions import BatchTransactions, Rewind
from ._commits import Commits
from ._consumer_parts import ConsumerExtension, ConsumerParts
from ._dead_letters import DeadLetters
from ._handling import Handling, RunStats, RunSummary
from ._health import HealthWatch
from ._offsets import OffsetBook, PartitionOffsets
from ._options import DEFAULT_BATCH, ConsumerOptions
from ._records import Record, Topic
from ._tiers import Tiers, keep_lanes, read_tiers
from .contracts import Catalog, TopicContract
from .errors import (
    BrokerError,
    ClosedError,
    ConfigError,
    GovernanceViolation,
    ProducerFenced,
)
from .hooks import (
    BackpressureDetails,
    ConsumeDetails,
    HookChain,
    RebalanceDetails,
)
from .lag import LagReport
from .registry import LocalSchemaRegistry

__all__ = ["CLOSE_TIMEOUT_S", "ConsumerBase", "ConsumerExtension", "ConsumerParts"]

_log = logging.getLogger("governed_kafka.consumer")

#: Longest single wait inside librdkafka's poll, so ``stop()`` is noticed quickly.
_POLL_SLICE_S: Final = 0.5

#: Longest ``close()`` waits for librdkafka to leave the group. librdkafka can wait for a
#: rebalance in progress to end before it leaves, and with some brokers that wait does
#: not end; processed offsets are committed before this wait starts.
CLOSE_TIMEOUT_S: Final = 30.0

#: librdkafka's default ``max.poll.interval.ms``.
_DEFAULT_MAX_POLL_INTERVAL_MS: Final = 300_000

#: The clock is read once every this many in-order records (``max_interval_s``).
_CLOCK_MASK: Final = 63

Key = tuple[str, int]


class ConsumerBase:
    """A governed consumer: explicit, processed-only commits (see ``GovernedConsumer``).

    :param catalog: the loaded contracts.
    :param options: everything else (see ``GovernedConsumer``).
    :param extension: told of rebalances first and handed the consumer's parts.
    """

    #: Undecodable records the last poll dead-lettered (``run()`` counts them as handled).
    _undecodable = 0
    #: Whether READ and WRITE rights are still to be checked (at the first poll).
    _access_unchecked = True

    def __init__(
        self,
        catalog: Catalog,
        options: ConsumerOptions,
        *,
        extension: ConsumerExtension | None = None,
    ) -> None:
        self.catalog = catalog
        self.service = service = options.service
        self.group_id = group_id = options.group_id
        self.commit_strategy = options.commit
        self.retry = options.retry
        self.max_in_flight = options.max_in_flight
        self.resume_below = options.low_watermark
        self._extension = extension
        self._hooks = HookChain(options.hooks)
        self._check_group_id()
        self._topics = self._resolve_topics(options)
        sources = read_tiers(self._topics, self._contract_for)
        self._dead_letters = DeadLetters(
            catalog,
            {name: topic.contract for name, topic in self._topics.items()},
            service=service,
            group_id=group_id,
            bootstrap_servers=options.bootstrap_servers,
            overrides=options.overrides,
            registry=self.registry,
            hooks=self._hooks,
        )
        self._config = _config.consumer_config(
            bootstrap_servers=options.bootstrap_servers,
            client_id=service,
            group_id=group_id,
            overrides=dict(options.overrides or {}),
            profile=options.profile,
            group_protocol=options.group_protocol,
            client_rack=options.client_rack,
        )
        keep_lanes(sources, self._config, dict(options.overrides or {}))
        self._max_poll_interval_s = (
            int(str(self._config.get("max.poll.interval.ms", _DEFAULT_MAX_POLL_INTERVAL_MS))) / 1000
        )
        self.retry.check_fits(self._max_poll_interval_s)

        self._verify_live_topics(options.verify_topics)

        self._book = OffsetBook()
        self._decoders = {name: topic.decode for name, topic in self._topics.items()}
        self._buffer: deque[Record] = deque()
        #: Rewinds so far (a transactional consumer's aborts): a batch stops at one.
        self._rewinds = 0
        self._paused = False
        self._last_poll = time.monotonic()
        self._current: Record | None = None
        self._stopping = False
        self._closed = False
        #: The assignment, for readers on other threads (replaced at each rebalance).
        self._assignment: tuple[Key, ...] = ()
        self.client_id = str(self._config["client.id"])
        self._batches = self._transactional_batches()
        self._tiers = Tiers.of(
            catalog,
            sources,
            dead_letters=self._dead_letters,
            config=self._config,
            transactional=self._batches is not None,
            pause=lambda keys: self._consumer.pause(keys),  # noqa: PLW0108 - made below
            resume=lambda keys: None if self._paused else self._consumer.resume(keys),
        )
        self._handling = Handling(
            hooks=self._hooks,
            retry=self.retry,
            dead_letters=self._dead_letters,
            group_id=group_id,
            client_id=self.client_id,
            tiers=self._tiers,
            batches=self._batches,
        )
        self._commits = Commits(
            self._book,
            self.commit_strategy,
            self._hooks,
            group_id=group_id,
            client_id=self.client_id,
            batches=self._batches,
        )
        declared = self.catalog.service(self.service)
        self._consumer = _kafka.ConsumerClient(
            self._config,
            group_id=group_id,
            on_commit=self._commits.answered,
            principal=declared.principal if declared is not None else None,
            **self._hooks.client_callbacks(
                client_id=self.client_id, role="consumer", group_id=group_id
            ),
        )
        self._commits.bind(self._consumer)
        if self._tiers is not None:
            self._commits.before_commit = self._tiers.flush
        self._consumer.subscribe(
            list(self._topics),
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        self._watch = HealthWatch.of(self)
        self._watch.start()
        if extension is not None:
            extension.attached(
                ConsumerParts(
                    handling=self._handling,
                    commits=self._commits,
                    watch=self._watch,
                    mark_batch=self._mark_batch,
                    batches=self._batches,
                )
            )

    # ------------------------------------------------------------ construction

    def _transactional_batches(self) -> BatchTransactions | None:
        """The batches' transactions, when the strategy commits in transactions."""
        strategy = self.commit_strategy
        if not strategy.commits_in_transactions:
            return None
        producer = strategy.producer
        assert producer is not None
        self._dead_letters.send_through(producer)
        return BatchTransactions(
            producer.transactions,  # type: ignore[arg-type]  # checked by the factory
            self._book,
            self.retry,
            group_id=self.group_id,
            on_rewind=self._read_again,
        )

    def _resolve_topics(self, options: ConsumerOptions) -> dict[str, Topic]:
        contracts = [self._contract_for(name) for name in options.topics]
        registry = options.registry
        if registry is None and any(c.value_schema or c.key_schema for c in contracts):
            registry = LocalSchemaRegistry.from_catalog(self.catalog)
        #: Where writer schemas are found by id (``None`` when no topic has a schema).
        self.registry = registry
        return {c.name: Topic(c, registry) for c in contracts}

    def _check_group_id(self) -> None:
        policy = self.catalog.policy
        if policy.group_id_matches(self.group_id, service=self.service):
            return
        msg = (
            f"group_id {self.group_id!r} of service {self.service!r} does not match the "
            f"policy's group_id_pattern {policy.group_id_pattern!r}"
        )
        raise GovernanceViolation(
            msg, rule="consumer.group-id-pattern", field="group_id", value=self.group_id
        )

    def _verify_live_topics(self, verify_topics: bool | None) -> None:
        """The runtime gate: topics and rights as the contracts say (:mod:`._gate`)."""
        if not (self.catalog.verify_topics if verify_topics is None else verify_topics):
            return
        self._access_unchecked = False
        _gate.verify_topics(self.catalog, self._config, **self._gate_scope())

    def _gate_scope(self) -> dict[str, Any]:
        contracts = [t.contract for t in self._topics.values()]  # tiers: written to too
        dead_letters = [c.dead_letter_topic for c in contracts] + [
            t for c in contracts for t in c.retry_topics
        ]
        return {
            "service": self.service,
            "group": self.group_id,
            "reads": list(self._topics),
            "dead_letters": [dlq for dlq in dead_letters if dlq is not None],
        }

    def _contract_for(self, name: str) -> TopicContract:
        contract = self.catalog.topic(name)  # no contract: GovernanceViolation
        if self.service not in contract.consumers:
            listed = ", ".join(contract.consumers) or "nobody"
            msg = (
                f"service {self.service!r} is not a consumer of topic {name!r} "
                f"(contract consumers: {listed})"
            )
            raise GovernanceViolation(
                msg, rule="consumer.not-listed", topic=name, field="consumers", value=self.service
            )
        return contract

    @property
    def config(self) -> dict[str, str | int | float | bool]:
        """The librdkafka configuration in force (governed keys included).

        The value of every secret-bearing key (passwords, keys, tokens) reads
        ``"[redacted]"``.
        """
        return _config.redacted(self._config)

    @property
    def hook_failures(self) -> int:
        """How many times this consumer's hooks raised (each failure was contained)."""
        return self._hooks.hook_failures()

    # ------------------------------------------------------------ rebalance

    def _on_assign(self, partitions: list[Key]) -> None:
        self._book.assign(partitions)
        if self._paused and partitions:
            self._consumer.pause(partitions)
        if self._tiers is not None:
            self._tiers.assigned(partitions, held=self._book.keys())
        self._rebalanced("assign", partitions)

    def _on_revoke(self, partitions: list[Key]) -> None:
        if self._extension is not None:
            self._extension.before_revoke(partitions)
        self._commits.commit("revoke", only=partitions, synchronous=True)
        self._commits.revoked(partitions)
        self._drop(partitions)
        self._rebalanced("revoke", partitions)

    def _on_lost(self, partitions: list[Key]) -> None:
        if self._extension is not None:
            self._extension.before_lost(partitions)
        self._commits.lost(partitions)
        self._drop(partitions)  # another member may own them already: committing would be a lie
        _log.warning(
            "group %r: %d partitions lost (session expired); their uncommitted work will "
            "be replayed by their new owner",
            self.group_id,
            len(partitions),
        )
        self._rebalanced("lost", partitions)

    def _drop(self, keys: list[Key]) -> None:
        gone = set(keys)
        self._book.drop(gone)
        if self._tiers is not None:
            self._tiers.dropped(gone)
        if self._buffer:  # in place: the buffer is shared (a rewind clears it)
            kept = [r for r in self._buffer if (r.topic, r.partition) not in gone]
            self._buffer.clear()
            self._buffer.extend(kept)

    def _rebalanced(self, kind: Literal["assign", "revoke", "lost"], partitions: list[Key]) -> None:
        self._assignment = tuple(sorted(self._book.keys()))
        _log.info("group %r: %s %s", self.group_id, kind, [f"{t}[{p}]" for t, p in partitions])
        if self._hooks.rebalance is not None:
            self._hooks.rebalance(
                RebalanceDetails(group_id=self.group_id, kind=kind, partitions=tuple(partitions))
            )

    # ------------------------------------------------------------ consuming

    def poll_batch(self, *, max_records: int = DEFAULT_BATCH, timeout: float = 1.0) -> list[Record]:
        """Return up to ``max_records`` decoded records (possibly none) within ``timeout``.

        Each returned record must be passed to :meth:`mark_processed` once it is
        processed; until then its offset (and every later one of its partition) stays
        uncommitted. Records that cannot be decoded are dead-lettered here and never
        returned.
        """
        return self._poll(max_records, timeout, in_order=False)

    def _poll(self, max_records: int, timeout: float, *, in_order: bool) -> list[Record]:
        self._check_open()
        if self._access_unchecked:  # the first poll of a consumer not verified at construction
            self._access_unchecked = False
            _gate.verify_access(self.catalog, self._config, **self._gate_scope())
        self._commits.if_due()
        self._undecodable = 0
        if self._buffer:
            records = [self._buffer.popleft() for _ in range(min(max_records, len(self._buffer)))]
        else:
            if self._tiers is not None:  # the poll waits no longer than the first due head
                due = self._tiers.due_in()
                timeout = timeout if due is None else min(timeout, due)
            records = self._fetch(max_records, timeout, in_order=in_order)
            if not self._paused and self._book.held() > self.max_in_flight:
                self._pause()
        if self._batches is not None and records:
            self._batches.delivered(records)  # a transaction is open for their sends
        return records

    def _fetch(self, max_records: int, timeout: float, *, in_order: bool) -> list[Record]:
        """Poll librdkafka once; return the decoded records, counted as in flight.

        Records whose bytes do not decode are dead-lettered (counted in flight, then
        processed at once) and left out.
        """
        rejected: _kafka.Rejected = []
        book, batches = self._book, self._batches
        if batches is not None:
            batches.reading()  # a rebalance inside the read may rewind
        lanes = book.lanes(self._decoders, in_order=in_order)
        records = self._consumer.read(max_records, timeout, lanes, rejected)
        if batches is not None:
            records = batches.read_settled(records, rejected)
        self._last_poll = time.monotonic()
        if self._tiers is not None:  # tier records not due are held, their partition paused
            records = self._tiers.release() + self._tiers.sift(records)
            self._tiers.crowding()
        if rejected:
            book.taken(len(records) + len(rejected))
            if batches is not None:  # dead letters go into the open transaction
                batches.delivered(r for r, _ in rejected)
                batches.delivered(records)
            for record, error in rejected:
                key = (record.topic, record.partition)
                book.hold(key, record.offset)  # uncommitted until it is dead-lettered
                self._dead_letters.publish(record, error, attempts=0, undecodable=True)
                book.mark(key, record.offset)
                self._undecodable += 1
        elif records:
            book.taken(len(records))
        if self._hooks.consume is not None and records:
            self._consumed(records)
        return records

    def _consumed(self, records: list[Record]) -> None:
        """Tell the ``on_consume`` hooks of a batch, with the lag of each of its partitions
        as of the latest fetch response (no request is made)."""
        counts = Counter((r.topic, r.partition) for r in records)
        assert self._hooks.consume is not None
        self._hooks.consume(
            ConsumeDetails(
                group_id=self.group_id,
                count=len(records),
                partitions=tuple((t, p, n) for (t, p), n in counts.items()),
                client_id=self.client_id,
                lag=tuple(
                    self._book.lag(key, self._consumer.fetched_high_watermark(key))
                    for key in counts
                ),
            )
        )

    def mark_processed(self, record: Record) -> None:
        """Count ``record`` as processed; its offset becomes committable once every earlier
        record of its partition is processed too.

        A record of a partition this consumer no longer holds is ignored: its new owner
        will process it again, and committing it from here could skip its work there.
        """
        if self._book.mark((record.topic, record.partition), record.offset):
            self._progressed()

    def _mark_batch(self, records: list[Record]) -> None:
        """Mark a batch processed, then commit if due (with every record's offset)."""
        book = self._book
        counted = [book.mark((r.topic, r.partition), r.offset) for r in records]
        if any(counted):
            self._progressed()

    def run(
        self,
        handler: Callable[[Record], object],
        *,
        max_records: int | None = None,
        timeout: float | None = None,
    ) -> RunSummary:
        """Call ``handler`` for each record until ``max_records`` were handled, ``timeout``
        seconds passed, or :meth:`stop` was called (then the consumer also closes).

        A failing handler is retried per the retry policy; a record that still fails is
        dead-lettered and counts as handled. Processed offsets are committed per the
        commit strategy, and synchronously before returning (except with
        ``CommitStrategy.manual()``, where the application commits).
        """
        return self._run(
            handler, batch=False, max_records=max_records, timeout=timeout, max_batch=DEFAULT_BATCH
        )

    def run_batches(
        self,
        handler: Callable[[list[Record]], object],
        *,
        max_batch: int = DEFAULT_BATCH,
        max_records: int | None = None,
        timeout: float | None = None,
    ) -> RunSummary:
        """Like :meth:`run`, but ``handler`` gets each polled batch as a list.

        A failing batch is retried whole; if it still fails, its records are handed to
        the handler one at a time so that only the records that fail alone are
        dead-lettered. Not with ``CommitStrategy.transactional`` (``ConfigError``): a
        failing batch's sends are aborted with it, use :meth:`run`.
        """
        if self._batches is not None:
            msg = (
                "run_batches() does not run with CommitStrategy.transactional: a failed "
                "batch is aborted and read again record by record; use run()"
            )
            raise ConfigError(msg, key="commit")
        return self._run(
            handler, batch=True, max_records=max_records, timeout=timeout, max_batch=max_batch
        )

    def _run(
        self,
        handler: Callable[[Any], object],
        *,
        batch: bool,
        max_records: int | None,
        timeout: float | None,
        max_batch: int,
    ) -> RunSummary:
        self._check_open()
        started = time.monotonic()
        deadline = None if timeout is None else started + timeout
        stats = RunStats()
        fenced: ProducerFenced | None = None
        try:
            while not self._stopping:
                left = None if max_records is None else max_records - stats.records
                want = max_batch if left is None else min(max_batch, left)
                if want <= 0:
                    break
                wait = _POLL_SLICE_S
                if deadline is not None:
                    wait = min(wait, deadline - time.monotonic())
                    if wait <= 0:
                        break
                records = self._poll(want, max(wait, 0.0), in_order=not batch)
                # Records the poll could not decode were dead-lettered there: handled too.
                stats.records += self._undecodable
                stats.dead_lettered += self._undecodable
                if records:
                    self._handle(handler, records, stats, batch=batch, deadline=deadline)
                    if self._batches is not None:  # what rewinds undid is handled again
                        stats.undo(self._batches.take_undone())
        except ProducerFenced as exc:
            fenced = exc
            raise
        finally:
            # Whatever ended the loop, what was processed is committed before returning,
            # unless the application commits for itself (manual).
            if self._stopping or self.commit_strategy.commits_when_run_ends:
                reason = "close" if self._stopping else "routine"
                self._commits.commit(reason, synchronous=True)
            if fenced is not None:  # a zombie: leave the group to the producer that took over
                _log.error("group %r stops: %s", self.group_id, fenced)
                self.close()
        summary = stats.summary(time.monotonic() - started)
        if self._stopping:
            self.close()
        return summary

    def _handle_in_order(
        self,
        handler: Callable[[Record], object],
        records: list[Record],
        stats: RunStats,
        deadline: float | None,
    ) -> None:
        """Handle a polled batch record by record: the hot path of :meth:`run`.

        Each record is marked processed as soon as its handler returns (or it was
        dead-lettered); the bookkeeping shared by the batch (in-flight count, resume,
        routine commit) is settled once per batch, or as soon as the strategy may want a
        commit (``settle_every`` records; the clock for ``max_interval_s`` is read every
        64).
        """
        book = self._book
        strategy = self.commit_strategy
        every = strategy.settle_every
        interval = strategy.max_interval_s
        handling = self._handling
        hooked = handling.guarded
        handled = done = 0
        last_topic: str | None = None
        last_partition = -1
        offsets: PartitionOffsets | None = None
        rewinds = self._rewinds
        try:
            for index, record in enumerate(records):
                if self._stopping or (deadline is not None and time.monotonic() >= deadline):
                    self._defer(records[index:])
                    break
                self._current = record
                if hooked:
                    handling.process(handler, record, stats)
                else:
                    try:
                        handler(record)
                    except Exception as first:
                        handling.recover(handler, record, first, stats)
                if self._rewinds != rewinds:  # its transaction was aborted meanwhile
                    handled -= done  # unsettled, so not in what the rewind undid
                    done = 0
                    break  # the batch is read again
                handled += 1
                topic, partition, offset = record[0], record[1], record[2]
                if partition != last_partition or topic != last_topic:
                    offsets = book.get((topic, partition))
                    last_topic, last_partition = topic, partition
                if offsets is None or not offsets.processed_in_order(offset):
                    continue  # revoked meanwhile (a dead letter's send served a rebalance)
                done += 1
                if (every is not None and book.processed_since_commit + done >= every) or (
                    interval is not None
                    and not done & _CLOCK_MASK
                    and time.monotonic() - book.last_commit >= interval
                ):
                    self._settled(done)
                    done = 0
                    if self._rewinds != rewinds:
                        break  # the commit failed and was aborted: the rest is read again
        finally:
            self._current = None
            stats.records += handled
            self._settled(done)

    def _handle(
        self,
        handler: Callable[[Any], object],
        records: list[Record],
        stats: RunStats,
        *,
        batch: bool,
        deadline: float | None,
    ) -> None:
        try:
            if batch:
                self._handle_batch(handler, records, stats)
            else:
                self._handle_in_order(handler, records, stats, deadline)
        except Rewind as rewind:
            self._rewound(rewind, stats)

    def _rewound(self, rewind: Rewind, stats: RunStats) -> None:
        """A handler failed in a transaction: abort it, read again after the backoff."""
        assert self._batches is not None
        stats.undo(self._batches.recover(rewind, lambda: self._stopping))

    def _read_again(self) -> None:
        """A rewind: records read and not handled are read again; intake resumes."""
        self._rewinds += 1
        self._buffer.clear()
        if self._paused:
            self._resume()

    def _defer(self, records: list[Record]) -> None:
        """Keep records fetched but not handled for the next ``run()`` or ``poll_batch()``.

        They become tracked one by one, as ``poll_batch()`` would have returned them.
        """
        self._book.defer(records)
        self._buffer.extendleft(reversed(records))

    def _settled(self, processed: int) -> None:
        """Account for ``processed`` newly processed records: resume, commit if due."""
        if processed:
            self._book.settled(processed)
        self._progressed()

    def _progressed(self) -> None:
        """Records were processed: resume intake below the low watermark, commit if due."""
        if self._paused and self._book.held() <= self.resume_below:
            self._resume()
        self._commits.if_due()

    def _handle_batch(
        self, handler: Callable[[list[Record]], object], records: list[Record], stats: RunStats
    ) -> None:
        def current(record: Record | None) -> None:
            self._current = record

        self._handling.batch(handler, records, stats, mark=self.mark_processed, current=current)

    def stop(self) -> None:
        """Ask :meth:`run` to finish the current record, commit, and leave the group.

        Safe to call from another thread or from a signal handler.
        """
        self._stopping = True

    # ------------------------------------------------------------ commits

    def commit(self) -> None:
        """Commit every processed offset now, synchronously.

        Raises :class:`~governed_kafka.errors.BrokerError` if the broker refuses.
        """
        self._check_open()
        self._commits.commit("manual", synchronous=True, raise_errors=True)

    # ------------------------------------------------------------ backpressure

    def _pause(self) -> None:
        assigned = self._book.keys()
        self._consumer.pause(assigned)
        self._paused = True
        _log.info(
            "group %r: %d records held (%d unprocessed) > %d: pausing %d partitions",
            self.group_id,
            self._book.held(),
            self._book.in_flight,
            self.max_in_flight,
            len(assigned),
        )
        self._backpressure("pause", assigned)

    def _resume(self) -> None:
        assigned = self._book.keys()
        if self._tiers is not None:  # tiers whose head is not due stay paused
            held = self._tiers.held()
            assigned = [key for key in assigned if key not in held]
        self._consumer.resume(assigned)
        self._paused = False
        self._backpressure("resume", assigned)

    def _backpressure(self, kind: Literal["pause", "resume"], partitions: list[Key]) -> None:
        if self._hooks.backpressure is not None:
            self._hooks.backpressure(
                BackpressureDetails(
                    kind=kind,
                    in_flight=self._book.held(),
                    limit=self.max_in_flight if kind == "pause" else self.resume_below,
                    partitions=tuple(partitions),
                )
            )

    @property
    def paused(self) -> bool:
        """Whether intake is paused by backpressure."""
        return self._paused

    @property
    def in_flight(self) -> int:
        """Records delivered to the application and not yet processed."""
        return self._book.in_flight

    # ------------------------------------------------------------ lag

    def lag(self, *, timeout: float = 10.0) -> LagReport:
        """Lag of every assigned partition: high watermark, committed, processed.

        The high watermark is the one the last fetch response reported for the
        partition (what the consumer has seen), or the broker's answer to ListOffsets
        for a partition not fetched yet.
        """
        self._check_open()
        assigned = self._book.keys()
        committed = self._consumer.committed(assigned, timeout=timeout) if assigned else {}
        return LagReport(
            self.group_id,
            tuple(
                self._book.lag(key, self._consumer.high_watermark(key, timeout=timeout), committed)
                for key in assigned
            ),
        )

    # ------------------------------------------------------------ lifecycle

    @property
    def assignment(self) -> list[tuple[str, int]]:
        """``(topic, partition)`` pairs this consumer holds."""
        return list(self._assignment)

    def _check_open(self) -> None:
        if self._closed:
            msg = f"consumer of group {self.group_id!r} is closed"
            raise ClosedError(msg)

    def close(self) -> None:
        """Commit processed offsets, leave the group, and release the consumer."""
        if self._closed:
            return
        self._stopping = True
        try:
            self._commits.commit("close", synchronous=True)
        finally:
            self._closed = True
            try:
                self._leave_group()
            except BrokerError as exc:
                _log.warning("closing consumer of %r: %s", self.group_id, exc)
            self._dead_letters.close()

    def _leave_group(self) -> None:
        """Close the librdkafka consumer (it leaves the group), waiting ``CLOSE_TIMEOUT_S``.

        Offsets were committed before, so giving up costs nothing but a clean exit from
        the group: the coordinator evicts this member after ``session.timeout.ms``.
        """
        if not self._consumer.close(CLOSE_TIMEOUT_S):
            _log.error(
                "group %r: the client did not leave the group within %.0f s (librdkafka "
                "waits for a rebalance in progress); processed offsets were committed, and "
                "the coordinator will evict this member after session.timeout.ms",
                self.group_id,
                CLOSE_TIMEOUT_S,
            )

    def __enter__(self) -> ConsumerBase:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (
            f"<GovernedConsumer service={self.service!r} group={self.group_id!r} "
            f"topics={sorted(self._topics)} {state}>"
        )
