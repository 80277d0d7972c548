"""Dead letters read back, and redriven to their original topics exactly once.

:func:`dead_letters` lists what a dead-letter topic holds (``governed-kafka dlq show``);
:func:`redrive` sends each chosen dead letter back to its original topic, partition and
key with its own headers and a ``redrive.from`` header (``governed-kafka dlq redrive``).
Each is re-validated against the contract as it is now: its value decoded with the
writer schema and encoded again with the current one, its key, headers and size checked
by a governed producer of the redriving service. One that no longer fits stays in the
dead-letter topic and is reported; so does every later dead letter of its key, so the
key's order holds.

Each dead letter is sent in a transaction of its own (transactional id
``governed-kafka-redrive.<topic>`` unless given) that also commits the progress past it,
so a crash can never leave one sent without its progress: the next run's producer aborts
what was left open.

Progress is committed under a group of its own, ``governed-kafka-redrive.<topic>``: for
each dead-letter partition, the offset before which every dead letter was redriven; and
for each partition of an original topic, the offset that partition had when this
redrive first wrote to it (committed before that write). A dead letter sent beyond one
that stayed (not chosen by ``--where``, or not fitting) commits without progress; a
later run reads those partitions back from there for the ``redrive.from`` headers of
dead letters already sent, and skips them. When a run leaves nothing behind, the
read-back offsets move to the partitions' ends. So no dead letter is redriven twice.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, Literal

import attrs

from . import _kafka
from ._partitioner import partition_for
from ._records import Topic
from ._routes import build_routes, check_headers, not_routed
from ._tiers import REDRIVE_HEADER
from .acls import REDRIVE_GROUP_PREFIX
from .avro import EVENT_TYPE_HEADER
from .contracts import Catalog, TopicContract
from .errors import DeserializationError, GovernanceViolation, SerializationError
from .producer import GovernedProducer
from .registry import LocalSchemaRegistry, SchemaRegistry

__all__ = [
    "MAX_REPORTED",
    "WHERE_FIELDS",
    "DeadLetter",
    "RedriveReport",
    "Where",
    "dead_letters",
    "redrive",
    "resolve",
]

#: Most dead letters a redrive report lists one by one (it counts them all).
MAX_REPORTED: Final = 10_000

#: What ``--where`` can match on: ``field=value``.
WHERE_FIELDS: Final = ("error-type", "origin-topic", "key")

#: Longest a read of the dead letters or of a target partition may take.
_READ_TIMEOUT_S: Final = 120.0

Key = tuple[str, int]


@attrs.frozen(kw_only=True)
class Where:
    """A filter on dead letters: every given field must match."""

    error_type: str | None = None
    origin_topic: str | None = None
    key: str | None = None

    @classmethod
    def parse(cls, clauses: Iterable[str]) -> Where:
        """``["error-type=ValueError", ...]``; ``ValueError`` naming a clause that is not one."""
        values: dict[str, str] = {}
        for clause in clauses:
            name, sep, value = clause.partition("=")
            if not sep or name not in WHERE_FIELDS or not value:
                msg = (
                    f"--where {clause!r}: expected FIELD=VALUE with FIELD one of "
                    f"{', '.join(WHERE_FIELDS)}"
                )
                raise ValueError(msg)
            values[name.replace("-", "_")] = value
        return cls(**values)

    def matches(self, letter: DeadLetter) -> bool:
        """Whether ``letter`` passes: an error type matches its full or its short name."""
        if self.error_type is not None and self.error_type not in {
            letter.error_type,
            letter.error_type.rpartition(".")[2],
        }:
            return False
        if self.origin_topic is not None and self.origin_topic != letter.origin_topic:
            return False
        return self.key is None or (letter.key is not None and self.key.encode() == letter.key)


@attrs.frozen(kw_only=True)
class DeadLetter:
    """One dead letter as the topic holds it, its headers read."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    origin_topic: str
    origin_partition: int | None
    origin_offset: int | None
    error_type: str
    error_message: str
    attempts: int | None
    #: Seconds since it was written (``None``: the record has no timestamp).
    age_s: float | None
    #: Parked behind an earlier dead letter of its key, never tried itself.
    parked: bool
    #: Already sent back by an earlier run (``dlq show`` marks them).
    redriven: bool = False

    @classmethod
    def of(cls, entry: _kafka.LogEntry, *, now_ms: int, redriven: bool = False) -> DeadLetter:
        def text(name: str) -> str:
            raw = entry.header(name)
            return "" if raw is None else raw.decode("utf-8", "replace")

        def number(name: str) -> int | None:
            value = text(name)
            return int(value) if value.isdigit() and len(value) < 20 else None

        return cls(
            topic=entry.topic,
            partition=entry.partition,
            offset=entry.offset,
            key=entry.key,
            origin_topic=text("dlq.original.topic"),
            origin_partition=number("dlq.original.partition"),
            origin_offset=number("dlq.original.offset"),
            error_type=text("dlq.error.type"),
            error_message=text("dlq.error.message"),
            attempts=number("dlq.attempts"),
            age_s=None if entry.timestamp is None else max(now_ms - entry.timestamp, 0) / 1000,
            parked=text("dlq.parked") == "true",
            redriven=redriven,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values (the key as text, undecodable bytes replaced)."""
        data = attrs.asdict(self)
        data["key"] = None if self.key is None else self.key.decode("utf-8", "replace")
        return data


Outcome = Literal["redriven", "would-redrive", "does-not-fit", "held", "not-chosen"]


@attrs.frozen(kw_only=True)
class Redriven:
    """What became of one dead letter in a redrive."""

    letter: DeadLetter
    outcome: Outcome
    #: Why it stays (``does-not-fit``: the contract's refusal; ``held``: the earlier dead
    #: letter of its key that stays).
    reason: str = ""


@attrs.frozen(kw_only=True)
class RedriveReport:
    """A redrive's outcome, dead letter by dead letter, and per partition progress."""

    topic: str
    dry_run: bool
    #: The first :data:`MAX_REPORTED` dead letters' outcomes (``counts`` has them all).
    records: tuple[Redriven, ...]
    #: How many dead letters had each outcome.
    counts: Mapping[str, int] = attrs.field(factory=dict)
    #: Dead letters found already sent beyond the progress (by a run that left some
    #: behind, or one a crash interrupted), skipped.
    recovered: int = 0

    def count(self, outcome: Outcome) -> int:
        """How many dead letters had ``outcome``."""
        return self.counts.get(outcome, 0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {
            "topic": self.topic,
            "dry_run": self.dry_run,
            "recovered": self.recovered,
            "counts": dict(self.counts),
            "records": [
                {**r.letter.to_dict(), "outcome": r.outcome, "reason": r.reason}
                for r in self.records
            ],
        }


def resolve(catalog: Catalog, topic: str) -> tuple[str, tuple[TopicContract, ...]]:
    """``(dead-letter topic, the topics it serves)`` for a topic or a dead-letter topic."""
    contract = catalog.topic(topic)  # no contract: GovernanceViolation naming it
    if contract.dead_letter_topic is not None:
        dlq = contract.dead_letter_topic
    elif any(t.dead_letter_topic == topic for t in catalog):
        dlq = topic
    else:
        msg = f"topic {topic!r} declares no dead_letter_topic and is no topic's dead-letter topic"
        raise GovernanceViolation(
            msg, rule="dead-letter.missing", topic=topic, field="dead_letter_topic"
        )
    return dlq, tuple(t for t in catalog if t.dead_letter_topic == dlq)


# --------------------------------------------------------------------------- progress


def _reader(connection: Mapping[str, object], dlq: str) -> _kafka.LogReader:
    return _kafka.LogReader(connection, group_id=REDRIVE_GROUP_PREFIX + dlq)


def _ranges(
    reader: _kafka.LogReader,
    dlq: str,
    *,
    partitions: Sequence[int] | None,
    start: int | None,
    end: int | None,
    timeout: float,
) -> dict[Key, tuple[int, int]]:
    count = reader.partitions(dlq, timeout=timeout)
    if count == 0:
        msg = f"dead-letter topic {dlq!r} does not exist on the cluster"
        raise GovernanceViolation(msg, rule="topic.missing", topic=dlq)
    chosen = range(count) if partitions is None else partitions
    ranges = {}
    for partition in chosen:
        if not 0 <= partition < count:
            msg = f"dead-letter topic {dlq!r} has no partition {partition} (it has {count})"
            raise GovernanceViolation(msg, rule="topic.missing", topic=dlq, field="partition")
        low, high = reader.watermarks((dlq, partition), timeout=timeout)
        ranges[dlq, partition] = (
            max(low, start or 0),
            high if end is None else min(high, end),
        )
    return ranges


def dead_letters(
    catalog: Catalog,
    topic: str,
    *,
    connection: Mapping[str, object],
    where: Where | None = None,
    partitions: Sequence[int] | None = None,
    start: int | None = None,
    end: int | None = None,
    limit: int = 1000,
    timeout: float = 30.0,
) -> list[DeadLetter]:
    """The dead letters of ``topic`` (or of the dead-letter topic ``topic``), oldest first,
    at most ``limit`` of them; those an earlier redrive sent back are marked."""
    dlq, sources = resolve(catalog, topic)
    now_ms = int(time.time() * 1000)
    found: list[DeadLetter] = []
    with _reader(connection, dlq) as reader:
        ranges = _ranges(reader, dlq, partitions=partitions, start=start, end=end, timeout=timeout)
        progress, starts = _progress(reader, ranges, sources, timeout)
        sent = _sent_ahead(connection, dlq, starts, progress)
        for entry in reader.read(ranges, timeout=_READ_TIMEOUT_S):
            key = (entry.topic, entry.partition)
            done = entry.offset < progress.get(key, 0) or entry.offset in sent.get(key, ())
            letter = DeadLetter.of(entry, now_ms=now_ms, redriven=done)
            if where is None or where.matches(letter):
                found.append(letter)
                if len(found) >= limit:
                    break
    return found


def _progress(
    reader: _kafka.LogReader,
    ranges: Mapping[Key, tuple[int, int]],
    sources: Sequence[TopicContract],
    timeout: float,
) -> tuple[dict[Key, int], dict[Key, int]]:
    """The progress of each dead-letter partition, and the read-back offset of each
    original partition a redrive wrote to."""
    targets = [(c.name, q) for c in sources for q in range(c.partitions)]
    committed = reader.committed([*ranges, *targets], timeout=timeout)
    progress = {key: committed[key][0] for key in ranges if key in committed}
    starts = {key: committed[key][0] for key in targets if key in committed}
    return progress, starts


def _sent_ahead(
    connection: Mapping[str, object],
    dlq: str,
    starts: Mapping[Key, int],
    progress: Mapping[Key, int],
) -> dict[Key, set[int]]:
    """Dead letters already redriven beyond their partition's progress, by dead-letter
    partition: read from the original partitions' ``redrive.from`` headers."""
    prefix = f"{dlq}/".encode()
    sent: dict[Key, set[int]] = {}
    if not starts:
        return sent
    with _kafka.LogReader(connection) as scan:
        ranges = {
            t: (since, scan.watermarks(t, timeout=_READ_TIMEOUT_S)[1])
            for t, since in starts.items()
        }
        for entry in scan.read(ranges, timeout=_READ_TIMEOUT_S):
            origin = entry.header(REDRIVE_HEADER)
            if origin is None or not origin.startswith(prefix):
                continue
            partition, _, offset = origin[len(prefix) :].decode("ascii", "replace").partition("/")
            if partition.isdigit() and offset.isdigit():
                key = (dlq, int(partition))
                if int(offset) >= progress.get(key, 0):
                    sent.setdefault(key, set()).add(int(offset))
    return sent


# --------------------------------------------------------------------------- redrive


class _Checks:
    """Re-validates dead letters against the current contracts (a dry run's part)."""

    def __init__(
        self,
        catalog: Catalog,
        sources: Sequence[TopicContract],
        registry: SchemaRegistry | None,
        *,
        service: str,
    ) -> None:
        self.sources = {c.name: c for c in sources}
        if registry is None and any(c.value_schema for c in sources):
            registry = LocalSchemaRegistry.from_catalog(catalog)
        self.registry = registry
        self._decoders = {c.name: Topic(c, registry).decode for c in sources}
        routes = build_routes(catalog, service, registry=registry)
        for contract in sources:
            if contract.name not in routes:
                raise not_routed(catalog, service, contract.name)
        self._routes = routes

    def prepare(self, entry: _kafka.LogEntry, letter: DeadLetter) -> tuple[Any, Any, list[Any]]:
        """The key and value to send (decoded, to be encoded by the current schemas) and
        the headers; raises the contract's refusal when it no longer fits."""
        decode = self._decoders.get(letter.origin_topic)
        key: Any = entry.key
        value: Any = entry.value
        if decode is not None:
            key, value, _ = decode(
                entry.key, entry.value, list(entry.headers), entry.partition, entry.offset
            )
        headers: list[Any] = [
            (k, v) for k, v in entry.headers if not k.startswith(("dlq.", "retry.", "redrive."))
        ]
        headers.append((REDRIVE_HEADER, f"{entry.topic}/{entry.partition}/{entry.offset}"))
        headers.append(("redrive.at", str(int(time.time() * 1000))))
        route = self._routes[letter.origin_topic]  # the send's own checks, made now
        if route.codec is not None and len(route.codec.value_writers) < 2:
            # one event type: the producer sets the header from the schema itself
            headers = [(k, v) for k, v in headers if k != EVENT_TYPE_HEADER]
        if route.codec is None:
            route.key(key)
            route.value(value)
            check_headers(route.topic, headers)
        else:
            route.codec.encode(route, key, value, headers)
        return key, value, headers


class _Sender(_Checks):
    """Re-validates dead letters and sends them back through a governed producer."""

    def __init__(
        self,
        catalog: Catalog,
        sources: Sequence[TopicContract],
        *,
        service: str,
        bootstrap: str,
        connection: Mapping[str, object],
        registry: SchemaRegistry | None,
        transactional_id: str,
    ) -> None:
        super().__init__(catalog, sources, registry, service=service)
        self.producer = GovernedProducer(
            catalog,
            service=service,
            bootstrap_servers=bootstrap,
            overrides=dict(connection),  # type: ignore[arg-type]
            registry=self.registry,
            verify_topics=False,
            transactional_id=transactional_id,
        )
        assert self.producer.transactions is not None
        #: Each redrive's send and its progress commit are one transaction.
        self.transactions = self.producer.transactions

    def target(self, letter: DeadLetter, key: bytes | None) -> int:
        """The original partition while the topic has it, else the key's partition."""
        partitions = self.sources[letter.origin_topic].partitions
        partition = letter.origin_partition
        if partition is not None and partition < partitions:
            return partition
        return partition_for(key, partitions) if key is not None else 0

    def close(self) -> None:
        self.producer.close()


def redrive(
    catalog: Catalog,
    topic: str,
    *,
    service: str,
    bootstrap: str,
    connection: Mapping[str, object],
    where: Where | None = None,
    partitions: Sequence[int] | None = None,
    start: int | None = None,
    end: int | None = None,
    dry_run: bool = False,
    registry: SchemaRegistry | None = None,
    timeout: float = 30.0,
    transactional_id: str | None = None,
) -> RedriveReport:
    """Send the chosen dead letters of ``topic`` back to their original topics, once.

    ``start``/``end`` bound the offsets read in each partition (``end`` excluded); a run
    reads at most to each partition's end as it was when the run started.
    """
    dlq, sources = resolve(catalog, topic)
    full = {**connection, "bootstrap.servers": bootstrap}
    outcomes = _Outcomes()
    recovered = 0
    sender = (
        None
        if dry_run
        else _Sender(
            catalog,
            sources,
            service=service,
            bootstrap=bootstrap,
            connection=connection,
            registry=registry,
            transactional_id=transactional_id or REDRIVE_GROUP_PREFIX + dlq,
        )
    )
    check = sender if sender is not None else _Checks(catalog, sources, registry, service=service)
    left = False
    try:
        with _reader(full, dlq) as reader:
            ranges = _ranges(
                reader, dlq, partitions=partitions, start=start, end=end, timeout=timeout
            )
            progress, starts = _progress(reader, ranges, sources, timeout)
            sent = _sent_ahead(full, dlq, starts, progress)
            for key, (low, high) in ranges.items():
                run = _Run(reader, key, progress.get(key, low), sent.get(key, set()), starts)
                first = max(low, run.progress)
                run.gap = start is not None and start > run.progress  # those before it stay
                run.partition((first, high), check, sender, where, dry_run, outcomes)
                recovered += run.skipped
                left = left or run.gap
            whole = partitions is None and start is None and end is None
            if sender is not None and not left and whole:
                for target in starts:  # nothing left behind: later runs need not read back
                    reader.commit(target, reader.watermarks(target, timeout=timeout)[1])
    finally:
        if sender is not None:
            sender.close()
    return RedriveReport(
        topic=dlq,
        dry_run=dry_run,
        records=tuple(outcomes.listed),
        counts=dict(outcomes.counts),
        recovered=recovered,
    )


class _Outcomes:
    """Each outcome counted; the first :data:`MAX_REPORTED` kept to be listed."""

    def __init__(self) -> None:
        self.listed: list[Redriven] = []
        self.counts: dict[str, int] = {}

    def append(self, outcome: Redriven) -> None:
        self.counts[outcome.outcome] = self.counts.get(outcome.outcome, 0) + 1
        if len(self.listed) < MAX_REPORTED:
            self.listed.append(outcome)


class _Run:
    """One dead-letter partition's redrive: its progress, and what was sent beyond it."""

    def __init__(
        self,
        reader: _kafka.LogReader,
        key: Key,
        progress: int,
        sent: set[int],
        starts: dict[Key, int],
    ) -> None:
        self.reader = reader
        self.key = key
        self.progress = progress
        self.sent = sent
        self.starts = starts
        #: Whether a dead letter before the one at hand stays (progress cannot pass it).
        self.gap = False
        #: Dead letters found already sent (by a run that left some behind, or crashed).
        self.skipped = 0

    def _passed(self, offset: int, *, committed: bool = False) -> None:
        """The dead letter at ``offset`` is redriven: progress moves unless one stays before
        (``committed``: its transaction committed the progress already)."""
        if not self.gap:
            self.progress = offset + 1
            if not committed:
                self.reader.commit(self.key, self.progress)

    def partition(  # noqa: PLR0917 - the run's choices, and where its outcomes go
        self,
        span: tuple[int, int],
        check: _Checks,
        sender: _Sender | None,
        where: Where | None,
        dry_run: bool,
        outcomes: _Outcomes,
    ) -> None:
        now_ms = int(time.time() * 1000)
        held: dict[tuple[str, bytes], int] = {}  # keys whose earlier dead letter stays
        for entry in self.reader.read({self.key: span}, timeout=_READ_TIMEOUT_S):
            if entry.offset in self.sent:
                self.skipped += 1
                if not dry_run:
                    self._passed(entry.offset)
                continue
            letter = DeadLetter.of(entry, now_ms=now_ms)
            source = check.sources.get(letter.origin_topic)
            keyed = source is not None and source.ordering == "key" and entry.key is not None
            order_key = (letter.origin_topic, entry.key or b"")
            stays: tuple[Outcome, str] | None = None
            if keyed and order_key in held:
                stays = ("held", f"behind offset {held[order_key]} of its key, which stays")
            elif source is None or (where is not None and not where.matches(letter)):
                stays = ("not-chosen", "")
            else:
                try:
                    key, value, headers = check.prepare(entry, letter)
                except (DeserializationError, SerializationError, GovernanceViolation) as refused:
                    stays = ("does-not-fit", str(refused))
                else:
                    if dry_run or sender is None:
                        outcomes.append(Redriven(letter=letter, outcome="would-redrive"))
                        continue
                    try:
                        self._send(entry, letter, (key, value), headers, sender)
                    except (SerializationError, GovernanceViolation) as refused:
                        stays = ("does-not-fit", str(refused))
            if stays is None:
                outcomes.append(Redriven(letter=letter, outcome="redriven"))
                continue
            self.gap = True
            if keyed:
                held.setdefault(order_key, entry.offset)
            outcomes.append(Redriven(letter=letter, outcome=stays[0], reason=stays[1]))

    def _send(
        self,
        entry: _kafka.LogEntry,
        letter: DeadLetter,
        record: tuple[Any, Any],
        headers: list[Any],
        sender: _Sender,
    ) -> None:
        """Read-back offset of the target (first time), send, then progress."""
        topic = letter.origin_topic
        target = (topic, sender.target(letter, entry.key))
        if target not in self.starts:
            end = self.reader.watermarks(target, timeout=_READ_TIMEOUT_S)[1]
            self.reader.commit(target, end)
            self.starts[target] = end
        key, value = record
        # The send and the progress past it commit together, or neither does: a crash
        # leaves an open transaction that the next run's producer (same transactional id)
        # aborts. Sent beyond a dead letter that stays, the record commits alone and the
        # next run finds it by its redrive.from header.
        owner = self.reader.group_id
        progress = () if self.gap else ((self.key[0], self.key[1], entry.offset + 1),)
        sender.transactions.begin(owner)
        try:
            sender.producer.send(topic, value, key=key, headers=headers, partition=target[1])
        except BaseException as refused:
            sender.transactions.abort(owner, reason="refused", error=refused)
            raise
        sender.transactions.commit(
            owner,
            reason="redrive",
            offsets=progress,
            group=self.reader.group_metadata() if progress else None,
            group_id=owner,
        )
        self._passed(entry.offset, committed=True)
