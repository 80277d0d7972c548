"""The governed consumer: explicit commits of processed records only.

``GovernedConsumer`` never auto-commits and never stores an offset on its own. It
tracks, per partition, which delivered records were processed, and commits only up to
the first one that was not (see :mod:`governed_kafka.commit`). When partitions are
revoked, and when it closes, it commits what was processed synchronously before the
partitions go; lost partitions (an expired session) are dropped without committing,
because another member may already own them.

A handler that raises is retried by the :class:`~governed_kafka.retry.RetryPolicy`;
when the attempts are exhausted, or the record cannot be decoded, the record is
published to its topic's dead-letter topic with headers saying what went wrong and
where it came from, and consumption goes on. A topic without a dead-letter topic
stops the consumer instead: skipping the record would lose it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import Any, Final, NamedTuple

import attrs

from . import _config, _kafka, cluster, profiles
from ._config import GROUP_PROTOCOL, GroupProtocol, Overrides
from .avro import EVENT_TYPE_HEADER, AvroReader, AvroSchema, load_schema
from .commit import CommitStrategy, PartitionOffsets
from .contracts import Catalog, TopicContract
from .errors import (
    AccessDenied,
    ClosedError,
    ConfigError,
    DeserializationError,
    GovernanceViolation,
)
from .hooks import (
    BackpressureDetails,
    BatchDetails,
    CommitDetails,
    ConsumeDetails,
    DeadLetterDetails,
    HookChain,
    ProcessDetails,
    RebalanceDetails,
    RetryDetails,
    SlowHandlerDetails,
)
from .lag import LagReport, PartitionLag
from .registry import LocalSchemaRegistry, SchemaRegistry
from .retry import RetriesExhausted, RetryPolicy

__all__ = ["DEAD_LETTER_HEADERS", "GovernedConsumer", "Record", "RunSummary"]

_log = logging.getLogger("governed_kafka.consumer")

#: Unprocessed records above which the consumer pauses its partitions.
DEFAULT_MAX_IN_FLIGHT: Final = 10_000

#: Records asked of librdkafka per poll.
DEFAULT_BATCH: Final = 500

#: Longest single wait inside librdkafka's poll, so ``stop()`` is noticed quickly.
_POLL_SLICE_S: Final = 0.5

#: Fraction of ``max.poll.interval.ms`` without a poll at which a slow handler is reported.
_SLOW_HANDLER_FRACTION: Final = 0.8

#: Longest ``close()`` waits for librdkafka to leave the group. librdkafka can wait for a
#: rebalance in progress to end before it leaves, and with some brokers that wait does
#: not end; processed offsets are committed before this wait starts.
CLOSE_TIMEOUT_S: Final = 30.0

#: librdkafka's default ``max.poll.interval.ms``.
_DEFAULT_MAX_POLL_INTERVAL_MS: Final = 300_000

#: Asynchronous commits remembered for timing until the broker answers them.
_MAX_AWAITED_COMMITS: Final = 64

#: Headers a dead letter carries, besides the original record's own headers.
DEAD_LETTER_HEADERS: Final = (
    "dlq.error.type",
    "dlq.error.message",
    "dlq.original.topic",
    "dlq.original.partition",
    "dlq.original.offset",
    "dlq.original.timestamp",
    "dlq.attempts",
    "dlq.consumer.group",
    "dlq.consumer.service",
)


class Record(NamedTuple):
    """One consumed record, its value decoded by the topic's contract.

    Immutable: a handler cannot change what the consumer will mark processed or
    dead-letter. A named tuple because a consumer builds one per record on its hot path,
    where it costs a third of a frozen class.
    """

    topic: str
    partition: int
    offset: int
    key: bytes | None
    #: Decoded value: a dict for Avro topics, ``bytes`` for raw topics, ``None`` for tombstones.
    value: Any
    headers: tuple[tuple[str, bytes | None], ...]
    #: Record timestamp in milliseconds since the epoch, or ``None``.
    timestamp: int | None
    #: The Avro record full name of the value (``"payments.OrderCreated"``), if any.
    event_type: str | None = None
    #: The value exactly as it was read, before decoding.
    raw_value: bytes | None = None

    def header(self, name: str) -> bytes | None:
        """The last value of header ``name``, or ``None`` if absent."""
        for key, value in reversed(self.headers):
            if key == name:
                return value
        return None

    def __repr__(self) -> str:
        return (
            f"Record(topic={self.topic!r}, partition={self.partition}, offset={self.offset}, "
            f"key={self.key!r}, value={self.value!r}, event_type={self.event_type!r})"
        )


_new_record = tuple.__new__


@attrs.frozen
class RunSummary:
    """What one call of :meth:`GovernedConsumer.run` did."""

    #: Records handled: processed successfully or dead-lettered.
    records: int
    dead_lettered: int
    retries: int
    elapsed_s: float


Decoder = Callable[
    [bytes | None, list[tuple[str, bytes | None]] | None, int, int], tuple[Any, str | None]
]


class _Topic:
    """A topic this consumer reads, with its contract and decoder made ready."""

    __slots__ = ("contract", "decode", "name")

    def __init__(self, contract: TopicContract, registry: SchemaRegistry | None) -> None:
        self.contract = contract
        self.name = contract.name
        #: Turns a value into ``(decoded, event_type)``; ``None`` for raw-bytes topics.
        self.decode: Decoder | None = None
        current = contract.current_value_schema
        if current is not None and registry is not None:
            reader_schema = load_schema(current, topic=contract.name, key="value_schema")
            self.decode = _AvroValue(
                AvroReader(registry, topic=contract.name, reader_schema=reader_schema),
                reader_schema,
            )

    def __repr__(self) -> str:
        return f"<_Topic {self.name}>"


class _AvroValue:
    """Decode a schema topic's value and name its event type.

    A contract whose current schema is one record type has one event type, known here;
    only for a union of records does the ``event-type`` header (or the decoded value)
    tell which one a value is.
    """

    __slots__ = ("event_type", "reader")

    def __init__(self, reader: AvroReader, reader_schema: AvroSchema) -> None:
        self.reader = reader
        types = reader_schema.event_types
        self.event_type = types[0] if len(types) == 1 and not reader_schema.is_union else None

    def __call__(
        self,
        data: bytes | None,
        headers: list[tuple[str, bytes | None]] | None,
        partition: int,
        offset: int,
    ) -> tuple[Any, str | None]:
        if data is None:
            return None, None  # a tombstone
        if self.event_type is not None:
            return self.reader.decode(data, partition=partition, offset=offset), self.event_type
        event_type = None
        if headers:
            for name, raw in headers:
                if name == EVENT_TYPE_HEADER and raw is not None:
                    event_type = raw.decode("utf-8", "replace")
        return self.reader.decode_event(
            data, partition=partition, offset=offset, event_type=event_type
        )


class GovernedConsumer:
    """Consume governed topics with explicit, processed-only commits.

    :param catalog: the loaded contracts.
    :param service: this service's name; it must be a listed consumer of every topic,
        and a listed producer of their dead-letter topics.
    :param group_id: the consumer group.
    :param topics: topic names to subscribe to.
    :param bootstrap_servers: ``"host:port,host:port"`` or a list of them.
    :param commit: when processed offsets are committed (default: batched).
    :param retry: attempts and backoff for a failing handler.
    :param hooks: observers of records, commits, rebalances, retries, dead letters.
    :param overrides: further librdkafka settings. Keys that weaken the commit rules,
        producer keys and unknown keys raise :class:`~governed_kafka.errors.ConfigError`.
    :param max_in_flight: records held (taken and not yet committable: unprocessed, or
        processed behind an unprocessed one) above which partitions are paused.
    :param resume_below: records held below which they resume
        (default: half of ``max_in_flight``).
    :param profile: fetch batching (:mod:`governed_kafka.profiles`); never commit rules.
    :param registry: where writer schemas are found by the id in each value
        (:mod:`governed_kafka.registry`); by default a
        :class:`~governed_kafka.registry.LocalSchemaRegistry` built from the catalog.
        Values of schema topics are decoded and resolved to the contract's current
        schema; bytes that do not decode go to the dead-letter topic.
    :param verify_topics: check at construction, before joining the group, that every
        topic read (and each one's dead-letter topic) exists on the cluster and matches
        its contract; a mismatch raises :class:`~governed_kafka.errors.GovernanceViolation`
        (``topic.missing``, ``topic.drift``). ``None`` follows :attr:`Catalog.verify_topics
        <governed_kafka.contracts.Catalog.verify_topics>`.
    :param group_protocol: ``"classic"`` (default; every Kafka-protocol broker) or
        ``"consumer"``, the consumer group protocol of KIP-848 (Apache Kafka 4.0+): the
        broker assigns partitions and moves them incrementally, so members that keep
        their partitions never stop. Under it the session timeout, heartbeat interval
        and assignor belong to the broker: overrides of ``session.timeout.ms``,
        ``heartbeat.interval.ms`` and ``partition.assignment.strategy`` raise
        :class:`~governed_kafka.errors.ConfigError`. The commit rules are the same.
    :param client_rack: the rack (availability zone) this consumer runs in
        (``client.rack``): on a cluster with a rack-aware replica selector it fetches
        from a replica in its own rack instead of crossing to the leader's.

    ``group_id`` must match the policy's ``group_id_pattern`` when it sets one
    (rule ``consumer.group-id-pattern``).
    """

    #: Undecodable records the last poll dead-lettered (``run()`` counts them as handled).
    _undecodable = 0
    #: Whether READ and WRITE rights are still to be checked (at the first poll).
    _access_unchecked = True

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
    ) -> None:
        if not isinstance(service, str) or not service.strip():
            msg = f"service must be a non-empty name, got {service!r}"
            raise ValueError(msg)
        if not isinstance(group_id, str) or not group_id.strip():
            msg = f"group_id must be a non-empty name, got {group_id!r}"
            raise ValueError(msg)
        names = [topics] if isinstance(topics, str) else list(topics)
        if not names:
            msg = "topics must name at least one topic"
            raise ValueError(msg)
        if max_in_flight < 1:
            msg = f"max_in_flight must be >= 1, got {max_in_flight}"
            raise ValueError(msg)
        self.catalog = catalog
        self.service = service
        self.group_id = group_id
        self.commit_strategy = commit if commit is not None else CommitStrategy.batched()
        self.retry = retry if retry is not None else RetryPolicy()
        self.max_in_flight = max_in_flight
        self.resume_below = resume_below if resume_below is not None else max_in_flight // 2
        self._hooks = HookChain(hooks)
        self._check_group_id()
        self._topics = self._resolve_topics(names, registry)
        self._check_dead_letter_rights()
        self._overrides = dict(overrides or {})
        self._config = _config.consumer_config(
            bootstrap_servers=bootstrap_servers,
            client_id=service,
            group_id=group_id,
            overrides=self._overrides,
            profile=profile,
            group_protocol=group_protocol,
            client_rack=client_rack,
        )
        self._bootstrap_servers = bootstrap_servers
        self._max_poll_interval_s = (
            int(str(self._config.get("max.poll.interval.ms", _DEFAULT_MAX_POLL_INTERVAL_MS))) / 1000
        )
        worst = self.retry.worst_case_wait_s()
        if worst >= self._max_poll_interval_s / 2:
            msg = (
                f"retry policy may wait {worst:.1f} s on one record, which is not well under "
                f"max.poll.interval.ms ({self._max_poll_interval_s:.0f} s): the group would "
                "evict this consumer mid-retry; lower the backoff or attempts, or raise "
                "max.poll.interval.ms"
            )
            raise ConfigError(msg, key="max.poll.interval.ms", value=self._max_poll_interval_s)

        self._verify_live_topics(verify_topics)

        self._partitions: dict[tuple[str, int], PartitionOffsets] = {}
        self._buffer: deque[Record] = deque()
        self._in_flight = 0
        self._paused = False
        self._processed_since_commit = 0
        self._last_commit = time.monotonic()
        self._last_poll = time.monotonic()
        self._current: Record | None = None
        self._stopping = False
        self._closed = False
        self._dead_letter_producer: Any = None
        #: Asynchronous commits whose answer was not served yet: offsets -> (reason, start).
        self._async_commits: dict[tuple[tuple[str, int, int], ...], tuple[str, float]] = {}
        self.client_id = str(self._config["client.id"])
        self._consumer = _kafka.new_consumer(
            self._config,
            on_commit=self._on_commit,
            **self._hooks.client_callbacks(
                client_id=self.client_id, role="consumer", group_id=group_id
            ),
        )
        self._consumer.subscribe(
            names, on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )
        self._watchdog = threading.Thread(
            target=self._watch_for_slow_handlers,
            name=f"governed-kafka-watchdog[{group_id}]",
            daemon=True,
        )
        self._watchdog.start()

    # ------------------------------------------------------------ construction

    def _resolve_topics(
        self, names: Sequence[str], registry: SchemaRegistry | None
    ) -> dict[str, _Topic]:
        contracts = [self._contract_for(name) for name in names]
        if registry is None and any(c.value_schema or c.key_schema for c in contracts):
            registry = LocalSchemaRegistry.from_catalog(self.catalog)
        #: Where writer schemas are found by id (``None`` when no topic has a schema).
        self.registry = registry
        return {c.name: _Topic(c, registry) for c in contracts}

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
        """The runtime gate: every topic read, and its dead-letter topic, matches its contract."""
        if not (self.catalog.verify_topics if verify_topics is None else verify_topics):
            return
        used = list(self._topics)
        for topic in self._topics.values():
            dlq = topic.contract.dead_letter_topic
            if dlq is not None and dlq not in used:
                used.append(dlq)
        live = cluster.Cluster._from_client_config(self._config, cluster.DEFAULT_TIMEOUT_S)
        # First: without rights, the topics would look missing or unreadable.
        self._verify_access(live)
        live.verify(self.catalog, used)

    def _verify_access(self, live: cluster.Cluster | None = None) -> None:
        """For a service with a principal: READ on its topics and group, WRITE on their
        dead-letter topics, or :class:`~governed_kafka.errors.AccessDenied`."""
        self._access_unchecked = False
        if self.catalog.service(self.service) is None:
            return
        if live is None:
            live = cluster.Cluster._from_client_config(self._config, cluster.DEFAULT_TIMEOUT_S)
        dead_letters = [
            t.contract.dead_letter_topic
            for t in self._topics.values()
            if t.contract.dead_letter_topic is not None
        ]
        live.verify_access(
            self.catalog,
            service=self.service,
            reads=list(self._topics),
            writes=dead_letters,
            group=self.group_id,
        )

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

    def _check_dead_letter_rights(self) -> None:
        for topic in self._topics.values():
            dlq = topic.contract.dead_letter_topic
            if dlq is None:
                continue
            if dlq not in self.catalog:
                msg = f"dead-letter topic {dlq!r} of {topic.name!r} has no contract"
                raise GovernanceViolation(
                    msg,
                    rule="dead-letter.missing",
                    topic=topic.name,
                    field="dead_letter_topic",
                    value=dlq,
                )
            if self.service not in self.catalog.topic(dlq).producers:
                msg = (
                    f"service {self.service!r} consumes {topic.name!r} but is not a producer of "
                    f"its dead-letter topic {dlq!r}: add it to that contract's producers"
                )
                raise GovernanceViolation(
                    msg,
                    rule="dead-letter.not-producer",
                    topic=dlq,
                    field="producers",
                    value=self.service,
                )

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

    def _on_assign(self, consumer: Any, partitions: list[_kafka.TopicPartition]) -> None:
        for tp in partitions:
            self._partitions.setdefault((tp.topic, tp.partition), PartitionOffsets())
        if self._paused and partitions:
            consumer.pause(partitions)
        self._rebalanced("assign", partitions)

    def _on_revoke(self, consumer: Any, partitions: list[_kafka.TopicPartition]) -> None:
        keys = [(tp.topic, tp.partition) for tp in partitions]
        self._commit(reason="revoke", only=keys, synchronous=True)
        self._drop(keys)
        self._rebalanced("revoke", partitions)

    def _on_lost(self, consumer: Any, partitions: list[_kafka.TopicPartition]) -> None:
        keys = [(tp.topic, tp.partition) for tp in partitions]
        self._drop(keys)  # another member may own them already: committing would be a lie
        _log.warning(
            "group %r: %d partitions lost (session expired); their uncommitted work will "
            "be replayed by their new owner",
            self.group_id,
            len(keys),
        )
        self._rebalanced("lost", partitions)

    def _drop(self, keys: Iterable[tuple[str, int]]) -> None:
        gone = set(keys)
        for key in gone:
            offsets = self._partitions.pop(key, None)
            if offsets is not None:
                self._in_flight -= offsets.in_flight
        if self._buffer:
            self._buffer = deque(r for r in self._buffer if (r.topic, r.partition) not in gone)

    def _rebalanced(self, kind: str, partitions: list[_kafka.TopicPartition]) -> None:
        _log.info(
            "group %r: %s %s",
            self.group_id,
            kind,
            [f"{p.topic}[{p.partition}]" for p in partitions],
        )
        if self._hooks.rebalance:
            self._hooks.emit(
                "on_rebalance",
                RebalanceDetails(
                    group_id=self.group_id,
                    kind=kind,  # type: ignore[arg-type]
                    partitions=tuple((p.topic, p.partition) for p in partitions),
                ),
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
        if self._access_unchecked:
            self._verify_access()  # the first poll of a consumer not verified at construction
        self._commit_if_due()
        self._undecodable = 0
        if self._buffer:
            return [self._buffer.popleft() for _ in range(min(max_records, len(self._buffer)))]
        records = self._fetch(max_records, timeout, in_order=in_order)
        if not self._paused and self._held() > self.max_in_flight:
            self._pause()
        return records

    def _held(self) -> int:
        """Records taken from the cluster and not yet committable: unprocessed ones, and
        processed ones that wait behind an unprocessed record of their partition.

        Backpressure bounds this: a first record never marked processed holds every later
        one of its partition, however many of them were processed.
        """
        waiting = 0
        for offsets in self._partitions.values():
            waiting += len(offsets.pending)
        return max(waiting, self._in_flight)

    def _fetch(self, max_records: int, timeout: float, *, in_order: bool = False) -> list[Record]:
        """Poll librdkafka once; return the decoded records, counted as in flight.

        Records are tracked one by one (``PartitionOffsets.pending``) so that they may
        be marked processed in any order. With ``in_order`` (``run()``'s own loop, which
        finishes each record before the next), a partition with nothing pending skips
        that: finishing a record then simply moves the partition's position past it.
        """
        messages = self._consumer.consume(max_records, timeout)
        self._last_poll = time.monotonic()
        if not messages:
            return []
        records: list[Record] = []
        append = records.append
        partitions = self._partitions
        topics = self._topics
        delivered = 0
        last_topic: str | None = None
        last_partition = -1
        offsets: PartitionOffsets | None = None
        decode: Decoder | None = None
        for msg in messages:
            if msg.error() is not None:
                self._consume_error(msg)
                continue
            # A message without error always has topic, partition and offset.
            topic: str = msg.topic()  # type: ignore[assignment]
            partition: int = msg.partition()  # type: ignore[assignment]
            offset: int = msg.offset()  # type: ignore[assignment]
            if partition != last_partition or topic != last_topic:
                offsets = partitions.get((topic, partition))
                decode = topics[topic].decode
                last_topic, last_partition = topic, partition
            if offsets is None:
                continue  # a partition revoked during this poll: its new owner reads it
            if not in_order or offsets.pending:
                offsets.pending.append(offset)
            delivered += 1
            data = msg.value()
            headers: list[tuple[str, bytes | None]] | None = msg.headers()  # type: ignore[assignment]
            if decode is None:
                value: Any = data
                event_type = None
            else:
                try:
                    value, event_type = decode(data, headers, partition, offset)
                except DeserializationError as exc:
                    if in_order and not offsets.pending:
                        offsets.pending.append(offset)  # dead-lettered: processed right away
                    self._in_flight += delivered
                    delivered = 0
                    self._dead_letter_message(msg, exc, attempts=0)
                    continue
            timestamp_type, timestamp = msg.timestamp()
            append(
                _new_record(
                    Record,
                    (
                        topic,
                        partition,
                        offset,
                        msg.key(),
                        value,
                        tuple(headers) if headers else (),
                        timestamp if timestamp_type else None,
                        event_type,
                        data,
                    ),
                )
            )
        self._in_flight += delivered
        if self._hooks.consume and records:
            counts: dict[tuple[str, int], int] = {}
            for r in records:
                counts[r.topic, r.partition] = counts.get((r.topic, r.partition), 0) + 1
            self._hooks.emit(
                "on_consume",
                ConsumeDetails(
                    group_id=self.group_id,
                    count=len(records),
                    partitions=tuple((t, p, n) for (t, p), n in counts.items()),
                    client_id=self.client_id,
                    lag=tuple(self._fetched_lag(t, p) for t, p in counts),
                ),
            )
        return records

    def _fetched_lag(self, topic: str, partition: int) -> PartitionLag:
        """Offsets of a partition as of the latest fetch response; no request is made."""
        high: int | None = None
        try:
            _, high = self._consumer.get_watermark_offsets(
                _kafka.TopicPartition(topic, partition), cached=True
            )
        except _kafka.KafkaException:  # pragma: no cover - cached offsets need no broker
            high = None
        offsets = self._partitions.get((topic, partition))
        return PartitionLag(
            topic=topic,
            partition=partition,
            high_watermark=high if high is not None and high >= 0 else None,
            committed=offsets.committed if offsets is not None else None,
            processed=offsets.position if offsets is not None else None,
        )

    def _consume_error(self, msg: _kafka.Message) -> None:
        err = msg.error()
        if err is None:  # pragma: no cover - filtered by the caller
            return
        if err.fatal():
            raise _kafka.broker_error(_kafka.KafkaException(err), f"consume ({self.group_id})")
        if err.name() in _kafka.AUTHORIZATION_ERRORS:
            declared = self.catalog.service(self.service)
            group = err.name() == "GROUP_AUTHORIZATION_FAILED"
            resource = self.group_id if group else str(msg.topic())
            message = (
                f"the cluster refused {declared.principal if declared else 'this consumer'} "
                f"on {'group' if group else 'topic'} {resource!r}: {err.name()}"
            )
            raise AccessDenied(
                message,
                principal=declared.principal if declared else None,
                resource_type="group" if group else "topic",
                resource=resource,
                operation="read",
            )
        _log.warning(
            "group %r: consume error on %s[%s]: %s",
            self.group_id,
            msg.topic(),
            msg.partition(),
            err.str(),
        )

    def mark_processed(self, record: Record) -> None:
        """Count ``record`` as processed; its offset becomes committable once every earlier
        record of its partition is processed too.

        A record of a partition this consumer no longer holds is ignored: its new owner
        will process it again, and committing it from here could skip its work there.
        """
        offsets = self._partitions.get((record.topic, record.partition))
        if offsets is not None and offsets.processed(record.offset):
            self._settle(1)

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
        dead-lettered.
        """
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
        stats = _RunStats()
        try:
            self._loop(
                handler,
                batch=batch,
                max_records=max_records,
                deadline=deadline,
                max_batch=max_batch,
                stats=stats,
            )
        finally:
            # Whatever ended the loop, what was processed is committed before returning,
            # unless the application commits for itself (manual).
            if self._stopping or self.commit_strategy.kind != "manual":
                self._commit(reason="close" if self._stopping else "routine", synchronous=True)
        summary = stats.summary(time.monotonic() - started)
        if self._stopping:
            self.close()
        return summary

    def _loop(
        self,
        handler: Callable[[Any], object],
        *,
        batch: bool,
        max_records: int | None,
        deadline: float | None,
        max_batch: int,
        stats: _RunStats,
    ) -> None:
        while not self._stopping:
            want = max_batch if max_records is None else min(max_batch, max_records - stats.records)
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
            if not records:
                continue
            if batch:
                self._handle_batch(handler, records, stats)
            else:
                self._handle_in_order(handler, records, stats, deadline)

    def _handle_in_order(
        self,
        handler: Callable[[Record], object],
        records: list[Record],
        stats: _RunStats,
        deadline: float | None,
    ) -> None:
        """Handle a polled batch record by record: the hot path of :meth:`run`.

        Each record is marked processed as soon as its handler returns (or it was
        dead-lettered); the bookkeeping shared by the batch (in-flight count, resume,
        routine commit) is settled once per batch, except under ``per_record``.
        """
        partitions = self._partitions
        strategy = self.commit_strategy
        # Settle as soon as the strategy may want a commit, not only at the end of the batch:
        # per_record after each record, batched at max_records (the clock is read every 64).
        every = 1 if strategy.kind == "per_record" else strategy.max_records
        interval = strategy.max_interval_s
        hooked = self._hooks.process
        handled = done = 0
        last_topic: str | None = None
        last_partition = -1
        offsets: PartitionOffsets | None = None
        try:
            for index, record in enumerate(records):
                if self._stopping or (deadline is not None and time.monotonic() >= deadline):
                    self._defer(records[index:])
                    break
                self._current = record
                if hooked:
                    self._process(handler, record, stats)
                else:
                    try:
                        handler(record)
                    except Exception as first:
                        self._recover(handler, record, first, stats)
                handled += 1
                topic, partition, offset = record[0], record[1], record[2]
                if partition != last_partition or topic != last_topic:
                    offsets = partitions.get((topic, partition))
                    last_topic, last_partition = topic, partition
                if offsets is None:
                    continue  # revoked meanwhile (a dead letter's send served a rebalance)
                if offsets.pending:
                    if not offsets.processed(offset):
                        continue
                else:
                    offsets.position = offset + 1
                done += 1
                if (every is not None and self._processed_since_commit + done >= every) or (
                    interval is not None
                    and not done & 63
                    and time.monotonic() - self._last_commit >= interval
                ):
                    self._settle(done)
                    done = 0
        finally:
            self._current = None
            stats.records += handled
            self._settle(done)

    def _defer(self, records: list[Record]) -> None:
        """Keep records fetched but not handled for the next ``run()`` or ``poll_batch()``.

        They become tracked one by one, as ``poll_batch()`` would have returned them.
        """
        for record in records:
            offsets = self._partitions.get((record.topic, record.partition))
            if offsets is not None and (not offsets.pending or offsets.pending[-1] < record.offset):
                offsets.pending.append(record.offset)
        self._buffer.extendleft(reversed(records))

    def _settle(self, processed: int) -> None:
        """Account for ``processed`` newly processed records: resume, commit if due."""
        self._in_flight -= processed
        self._processed_since_commit += processed
        if self._paused and self._held() <= self.resume_below:
            self._resume()
        if self.commit_strategy.due(
            self._processed_since_commit, time.monotonic() - self._last_commit
        ):
            self._commit(reason="routine", synchronous=self.commit_strategy.synchronous)

    def _process(
        self, handler: Callable[[Record], object], record: Record, stats: _RunStats
    ) -> None:
        """Run the handler on one record, with retries and the dead-letter topic behind it."""
        try:
            self._attempt(handler, record, 1)
        except Exception as first:
            self._recover(handler, record, first, stats)

    def _recover(
        self,
        handler: Callable[[Record], object],
        record: Record,
        first: Exception,
        stats: _RunStats,
    ) -> None:
        """The first attempt failed: retry per the policy, then dead-letter."""
        try:
            self.retry.call(
                lambda: self._attempt(handler, record, stats.next_attempt(record)),
                first_error=first,
                on_retry=lambda n, error, wait: self._retrying(record, n, error, wait, stats),
            )
        except RetriesExhausted as exhausted:
            self._dead_letter(record, exhausted.error, attempts=exhausted.attempts)
            stats.dead_lettered += 1
        finally:
            stats.reset_attempts()

    def _attempt(self, handler: Callable[[Record], object], record: Record, attempt: int) -> None:
        if self._hooks.process:
            with self._process_scope(record, attempt):
                handler(record)
        else:
            handler(record)

    def _process_scope(self, record: Record, attempt: int) -> contextlib.ExitStack:
        """What the ``on_process`` hooks wrap around one attempt at handling ``record``."""
        return self._hooks.around(
            "on_process",
            ProcessDetails(
                group_id=self.group_id, record=record, attempt=attempt, client_id=self.client_id
            ),
        )

    def _retrying(
        self, record: Record, attempt: int, error: BaseException, wait: float, stats: _RunStats
    ) -> None:
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
        if self._hooks.retry:
            self._hooks.emit(
                "on_retry",
                RetryDetails(
                    group_id=self.group_id,
                    record=record,
                    attempt=attempt,
                    error=error,
                    wait_s=wait,
                ),
            )

    def _handle_batch(
        self, handler: Callable[[list[Record]], object], records: list[Record], stats: _RunStats
    ) -> None:
        def attempt() -> None:
            if self._hooks.process_batch:
                with self._hooks.around(
                    "on_process_batch",
                    BatchDetails(
                        group_id=self.group_id, records=tuple(records), client_id=self.client_id
                    ),
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
                    self._current = record
                    self._process(lambda r: handler([r]), record, stats)
                    self.mark_processed(record)
                    stats.records += 1
                self._current = None
                return
        for record in records:
            self.mark_processed(record)
        stats.records += len(records)

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
        self._commit(reason="manual", synchronous=True, raise_errors=True)

    def _commit_if_due(self) -> None:
        if self.commit_strategy.due(
            self._processed_since_commit, time.monotonic() - self._last_commit
        ):
            self._commit(reason="routine", synchronous=self.commit_strategy.synchronous)

    def _commit(
        self,
        *,
        reason: str,
        synchronous: bool,
        only: Iterable[tuple[str, int]] | None = None,
        raise_errors: bool = False,
    ) -> None:
        keys = list(self._partitions) if only is None else list(only)
        pending: list[tuple[tuple[str, int], PartitionOffsets, int]] = []
        for key in keys:
            offsets = self._partitions.get(key)
            if offsets is not None and offsets.uncommitted:
                assert offsets.position is not None
                pending.append((key, offsets, offsets.position))
        self._processed_since_commit = 0
        self._last_commit = time.monotonic()
        if not pending:
            return
        tps = [_kafka.TopicPartition(t, p, position) for (t, p), _, position in pending]
        committed = tuple((t, p, position) for (t, p), _, position in pending)
        started = time.monotonic()
        error: Exception | None = None
        try:
            self._request_commit(tps, committed, reason, synchronous=synchronous, started=started)
        except _kafka.KafkaException as exc:
            error = _kafka.broker_error(exc, f"commit ({reason}) for group {self.group_id!r}")
            self._async_commits.pop(tuple(sorted(committed)), None)
        else:
            for _, offsets, position in pending:
                offsets.committed = position
        if self._hooks.commit and (synchronous or error is not None):
            self._commit_answered(committed, reason, synchronous, time.monotonic() - started, error)
        if error is not None:
            if raise_errors:
                raise error
            _log.warning("%s; the processed records will be replayed if this is not retried", error)

    def _request_commit(
        self,
        tps: list[_kafka.TopicPartition],
        committed: tuple[tuple[str, int, int], ...],
        reason: str,
        *,
        synchronous: bool,
        started: float,
    ) -> None:
        if not synchronous:
            if self._hooks.commit:
                self._awaiting_answer(committed, reason, started)
            self._consumer.commit(offsets=tps, asynchronous=True)
            return
        result = self._consumer.commit(offsets=tps, asynchronous=False) or []
        failed = [tp for tp in result if tp.error is not None]
        if failed:
            raise _kafka.KafkaException(failed[0].error)

    def _awaiting_answer(
        self, committed: tuple[tuple[str, int, int], ...], reason: str, started: float
    ) -> None:
        """Remember an asynchronous commit until its answer is served, to time it."""
        pending = self._async_commits
        pending[tuple(sorted(committed))] = (reason, started)
        while len(pending) > _MAX_AWAITED_COMMITS:  # answers that never came: forget them
            del pending[next(iter(pending))]

    def _commit_answered(
        self,
        committed: tuple[tuple[str, int, int], ...],
        reason: str,
        synchronous: bool,
        duration_s: float,
        error: Exception | None,
    ) -> None:
        self._hooks.emit(
            "on_commit",
            CommitDetails(
                group_id=self.group_id,
                offsets=committed,
                reason=reason,
                synchronous=synchronous,
                duration_s=duration_s,
                error=error,
                client_id=self.client_id,
            ),
        )

    def _on_commit(self, err: Any, partitions: list[_kafka.TopicPartition]) -> None:
        # Outcome of commits, served by a later poll; the positions of failed
        # asynchronous ones are re-committed next time.
        failed = [tp for tp in partitions if tp.error is not None]
        if self._async_commits:
            key = tuple(sorted((tp.topic, tp.partition, tp.offset) for tp in partitions))
            awaited = self._async_commits.pop(key, None)
            if awaited is not None:
                reason, started = awaited
                error = None
                if err is not None or failed:
                    error = _kafka.broker_error(
                        _kafka.KafkaException(err or failed[0].error),
                        f"commit ({reason}) for group {self.group_id!r}",
                    )
                self._commit_answered(key, reason, False, time.monotonic() - started, error)
        if err is None and not failed:
            return
        for tp in failed or partitions:
            offsets = self._partitions.get((tp.topic, tp.partition))
            if offsets is not None and offsets.committed == tp.offset:
                offsets.committed = None
        _log.warning(
            "group %r: asynchronous commit failed: %s", self.group_id, err or failed[0].error
        )

    # ------------------------------------------------------------ backpressure

    def _assigned(self) -> list[_kafka.TopicPartition]:
        return [_kafka.TopicPartition(t, p) for t, p in self._partitions]

    def _pause(self) -> None:
        assigned = self._assigned()
        self._consumer.pause(assigned)
        self._paused = True
        _log.info(
            "group %r: %d records held (%d unprocessed) > %d: pausing %d partitions",
            self.group_id,
            self._held(),
            self._in_flight,
            self.max_in_flight,
            len(assigned),
        )
        self._backpressure("pause", assigned)

    def _resume(self) -> None:
        assigned = self._assigned()
        self._consumer.resume(assigned)
        self._paused = False
        self._backpressure("resume", assigned)

    def _backpressure(self, kind: str, partitions: list[_kafka.TopicPartition]) -> None:
        if self._hooks.backpressure:
            self._hooks.emit(
                "on_backpressure",
                BackpressureDetails(
                    kind=kind,  # type: ignore[arg-type]
                    in_flight=self._held(),
                    limit=self.max_in_flight if kind == "pause" else self.resume_below,
                    partitions=tuple((p.topic, p.partition) for p in partitions),
                ),
            )

    @property
    def paused(self) -> bool:
        """Whether intake is paused by backpressure."""
        return self._paused

    @property
    def in_flight(self) -> int:
        """Records delivered to the application and not yet processed."""
        return self._in_flight

    def _watch_for_slow_handlers(self) -> None:
        interval = min(max(self._max_poll_interval_s / 20, 0.05), 5.0)
        reported_for = 0.0
        while not self._closed:
            time.sleep(interval)
            last = self._last_poll
            elapsed = time.monotonic() - last
            if elapsed < self._max_poll_interval_s * _SLOW_HANDLER_FRACTION or reported_for == last:
                continue
            reported_for = last
            record = self._current
            _log.warning(
                "group %r: no poll for %.1f s of max.poll.interval.ms %.1f s (handling %s); "
                "the group will evict this consumer if it goes on",
                self.group_id,
                elapsed,
                self._max_poll_interval_s,
                f"{record.topic}[{record.partition}]@{record.offset}" if record else "nothing",
            )
            if self._hooks.slow_handler:
                self._hooks.emit(
                    "on_slow_handler",
                    SlowHandlerDetails(
                        group_id=self.group_id,
                        elapsed_s=elapsed,
                        max_poll_interval_s=self._max_poll_interval_s,
                        record=record,
                    ),
                )

    # ------------------------------------------------------------ dead letters

    def _dead_letter(self, record: Record, error: BaseException, *, attempts: int) -> None:
        self._publish_dead_letter(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            value=record.raw_value,
            headers=list(record.headers),
            timestamp=record.timestamp,
            error=error,
            attempts=attempts,
            record=record,
        )

    def _dead_letter_message(
        self, msg: _kafka.Message, error: BaseException, *, attempts: int
    ) -> None:
        timestamp_type, timestamp = msg.timestamp()
        self._publish_dead_letter(
            topic=msg.topic() or "",
            partition=msg.partition() or 0,
            offset=msg.offset() or 0,
            key=msg.key(),
            value=msg.value(),
            headers=list(msg.headers() or []),  # type: ignore[arg-type]
            timestamp=timestamp if timestamp_type else None,
            error=error,
            attempts=attempts,
            record=None,
        )
        offsets = self._partitions.get((msg.topic() or "", msg.partition() or 0))
        if offsets is not None and offsets.processed(msg.offset() or 0):
            self._in_flight -= 1
            self._processed_since_commit += 1
        self._undecodable += 1

    def _publish_dead_letter(
        self,
        *,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes | None]],
        timestamp: int | None,
        error: BaseException,
        attempts: int,
        record: Record | None,
    ) -> None:
        contract = self._topics[topic].contract
        where = f"{topic}[{partition}]@{offset}"
        dlq = contract.dead_letter_topic
        if dlq is None:
            msg = (
                f"record {where} failed ({type(error).__name__}: {error}) and topic {topic!r} "
                "declares no dead_letter_topic: stopping rather than skipping it (its offset "
                "stays uncommitted)"
            )
            raise GovernanceViolation(
                msg, rule="dead-letter.missing", topic=topic, field="dead_letter_topic"
            ) from error
        from .producer import _sendable_header_name as sendable

        producer = self._dead_letters()
        error_type = f"{type(error).__module__}.{type(error).__qualname__}"
        letter_headers: list[tuple[str, str | bytes | None]] = [
            (k, v) for k, v in headers if not k.startswith("dlq.") and sendable(k)
        ]
        dropped = sum(1 for k, _ in headers if not sendable(k))
        if dropped:  # another client wrote names no governed producer sends (an empty one)
            _log.warning(
                "dead letter of %s: %d headers with unsendable names left out", where, dropped
            )
        letter_headers += [
            ("dlq.error.type", error_type),
            ("dlq.error.message", str(error)[:4096]),
            ("dlq.original.topic", topic),
            ("dlq.original.partition", str(partition)),
            ("dlq.original.offset", str(offset)),
            ("dlq.original.timestamp", "" if timestamp is None else str(timestamp)),
            ("dlq.attempts", str(attempts)),
            ("dlq.consumer.group", self.group_id),
            ("dlq.consumer.service", self.service),
        ]
        dlq_contract = self.catalog.topic(dlq)
        producer.send_and_wait(
            dlq,
            value if value is not None else b"",
            key=None if dlq_contract.key == "forbidden" else key,
            headers=letter_headers,
        )
        _log.warning("dead-lettered %s to %s after %d attempts: %s", where, dlq, attempts, error)
        if self._hooks.dead_letter:
            self._hooks.emit(
                "on_dead_letter",
                DeadLetterDetails(
                    group_id=self.group_id,
                    record=record,
                    topic=topic,
                    partition=partition,
                    offset=offset,
                    dead_letter_topic=dlq,
                    error=error,
                    attempts=attempts,
                ),
            )

    def _dead_letters(self) -> Any:
        if self._dead_letter_producer is None:
            from .producer import GovernedProducer

            shared = _config.shared_connection(self._overrides)
            shared.pop("client.id", None)
            self._dead_letter_producer = GovernedProducer(
                self.catalog,
                service=self.service,
                bootstrap_servers=self._bootstrap_servers,
                overrides=shared,
                registry=self.registry,
                verify_topics=False,  # the consumer checked its dead-letter topics already
            )
        return self._dead_letter_producer

    # ------------------------------------------------------------ lag

    def lag(self, *, timeout: float = 10.0) -> LagReport:
        """Lag of every assigned partition: high watermark, committed, processed.

        The high watermark is the one the last fetch response reported for the
        partition (what the consumer has seen), or the broker's answer to ListOffsets
        for a partition not fetched yet.
        """
        self._check_open()
        assigned = self._assigned()
        if not assigned:
            return LagReport(self.group_id, ())
        try:
            committed = {
                (tp.topic, tp.partition): tp.offset
                for tp in self._consumer.committed(assigned, timeout=timeout)
            }
        except _kafka.KafkaException as exc:
            raise _kafka.broker_error(exc, f"fetch committed offsets of {self.group_id!r}") from exc
        entries = []
        for tp in assigned:
            key = (tp.topic, tp.partition)
            high = self._high_watermark(tp, timeout)
            offsets = self._partitions.get(key)
            processed = offsets.position if offsets is not None else None
            position = committed.get(key)
            entries.append(
                PartitionLag(
                    topic=tp.topic,
                    partition=tp.partition,
                    high_watermark=high,
                    committed=position if position is not None and position >= 0 else None,
                    processed=processed,
                )
            )
        return LagReport(self.group_id, tuple(entries))

    def _high_watermark(self, tp: _kafka.TopicPartition, timeout: float) -> int | None:
        try:
            _, high = self._consumer.get_watermark_offsets(tp, timeout=timeout, cached=True)
            if high is None or high < 0:
                _, high = self._consumer.get_watermark_offsets(tp, timeout=timeout, cached=False)
        except _kafka.KafkaException as exc:
            raise _kafka.broker_error(exc, f"watermarks of {tp.topic}[{tp.partition}]") from exc
        return high if high is not None and high >= 0 else None

    # ------------------------------------------------------------ lifecycle

    @property
    def assignment(self) -> list[tuple[str, int]]:
        """``(topic, partition)`` pairs this consumer holds."""
        return sorted(self._partitions)

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
            self._commit(reason="close", synchronous=True)
        finally:
            self._closed = True
            try:
                self._leave_group()
            except _kafka.KafkaException as exc:
                _log.warning("closing consumer of %r: %s", self.group_id, exc)
            if self._dead_letter_producer is not None:
                self._dead_letter_producer.close()

    def _leave_group(self) -> None:
        """Close the librdkafka consumer (it leaves the group), waiting ``CLOSE_TIMEOUT_S``.

        librdkafka's close has no timeout, and can wait for a rebalance in progress to
        end before it leaves; it runs on a thread of its own so that a wait that never
        ends cannot hang the application's shutdown. Offsets were committed before, so
        giving up costs nothing but a clean exit from the group: the coordinator evicts
        this member after ``session.timeout.ms``.
        """
        failure: list[BaseException] = []

        def close() -> None:
            try:
                self._consumer.close()  # revoke callbacks run here; they commit nothing new
            except BaseException as exc:  # re-raised on the caller's thread
                failure.append(exc)

        closing = threading.Thread(
            target=close, name=f"governed-kafka-close[{self.group_id}]", daemon=True
        )
        closing.start()
        closing.join(CLOSE_TIMEOUT_S)
        if closing.is_alive():
            _log.error(
                "group %r: the client did not leave the group within %.0f s (librdkafka "
                "waits for a rebalance in progress); processed offsets were committed, and "
                "the coordinator will evict this member after session.timeout.ms",
                self.group_id,
                CLOSE_TIMEOUT_S,
            )
            return
        if failure:
            raise failure[0]

    def __enter__(self) -> GovernedConsumer:
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


class _RunStats:
    __slots__ = ("attempt", "dead_lettered", "records", "retries")

    def __init__(self) -> None:
        self.records = 0
        self.dead_lettered = 0
        self.retries = 0
        self.attempt = 1

    def next_attempt(self, record: Record) -> int:
        self.attempt += 1
        return self.attempt

    def reset_attempts(self) -> None:
        self.attempt = 1

    def summary(self, elapsed: float) -> RunSummary:
        return RunSummary(
            records=self.records,
            dead_lettered=self.dead_lettered,
            retries=self.retries,
            elapsed_s=elapsed,
        )
