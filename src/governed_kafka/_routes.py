"""Where a producer may send, and what it checks before anything is queued.

A :class:`Route` is one topic a service may write to, its contract's rules made ready:
the key rule, tombstones, the size the broker accepts, and the topic's codec. The codec
of a schema topic (:class:`SchemaCodec`, of any format: Avro, JSON Schema, Protobuf)
resolves the current schema of each subject against the registry when the producer
starts, then checks and encodes every value and key, names the value's event type and
reads its event time (Avro); a topic without schema carries raw bytes. Header names and
values are checked here too. Each check raises
:class:`~governed_kafka.errors.GovernanceViolation` or
:class:`~governed_kafka.errors.SerializationError` naming the rule or field, before
librdkafka sees the record.

Routes are built from a catalog alone (:func:`build_routes`), without a client, so every
refusal can be tested without a broker.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, cast

from .avro import EVENT_TYPE_HEADER, AvroSchema
from .compatibility import TIMESTAMP_UNITS, check_versions, mode_of, timestamp_field_problem
from .contracts import Catalog, TopicContract
from .errors import ContractError, GovernanceViolation, SerializationError
from .policy import Compatibility
from .registry import SchemaRegistry
from .schemas import Subject, Writer, subjects, writer

__all__ = [
    "RECORD_OVERHEAD",
    "HeaderList",
    "Headers",
    "Route",
    "SchemaCodec",
    "build_routes",
    "check_headers",
    "codec_for",
    "not_routed",
    "sendable_header_name",
]

#: Bytes a record batch adds around one record (batch header and record framing).
RECORD_OVERHEAD: Final = 90

#: Headers as ``send()`` takes them: a mapping, or ``(name, value)`` pairs.
Headers = Mapping[str, str | bytes | None] | Sequence[tuple[str, str | bytes | None]]

#: Headers as librdkafka takes them, every name and value checked.
HeaderList = list[tuple[str, str | bytes | None]]


def build_routes(
    catalog: Catalog,
    service: str,
    *,
    registry: SchemaRegistry | None,
    auto_register: bool = False,
    transactional: bool = False,
) -> dict[str, Route]:
    """A route per topic ``service`` may write, schemas resolved and checked now.

    ``registry`` is where schema ids come from; ``None`` when no topic has a schema.
    A producer that is not ``transactional`` gets no route to an ``exactly_once`` topic.
    """
    routes: dict[str, Route] = {}
    for contract in catalog.produced_by(service):
        if contract.exactly_once and not transactional:
            continue
        codec = None
        if registry is not None:
            codec = codec_for(
                contract,
                registry=registry,
                mode=mode_of(contract, catalog.policy),
                auto_register=auto_register,
                catalog_path=catalog.path,
            )
        routes[contract.name] = Route(contract, codec)
    return routes


def not_routed(catalog: Catalog, service: str, topic: str) -> GovernanceViolation:
    """The refusal of a send to a topic without route: no contract, not a producer, or
    an ``exactly_once`` topic and a producer that is not transactional.

    A topic without contract raises ``contract.missing`` from the catalog itself.
    """
    contract = catalog.topic(topic)
    if contract.exactly_once and service in contract.producers:
        msg = (
            f"send to {topic!r} refused: its contract sets exactly_once = true, so its "
            f"producers must be transactional; make the producer of service {service!r} "
            "with transactional_id= and send inside a transaction"
        )
        return GovernanceViolation(
            msg, rule="producer.not-transactional", topic=topic, field="exactly_once", value=True
        )
    listed = ", ".join(contract.producers) or "nobody"
    msg = f"service {service!r} is not a producer of topic {topic!r} (contract producers: {listed})"
    return GovernanceViolation(
        msg, rule="producer.not-listed", topic=topic, field="producers", value=service
    )


class Route:
    """A topic this producer may write to, with its contract's checks made ready."""

    __slots__ = (
        "codec",
        "compacted",
        "contract",
        "key_forbidden",
        "key_required",
        "max_bytes",
        "topic",
    )

    def __init__(self, contract: TopicContract, codec: SchemaCodec | None = None) -> None:
        self.contract = contract
        self.topic = contract.name
        self.compacted = contract.is_compacted
        self.key_required = contract.key == "required" or self.compacted
        self.key_forbidden = contract.key == "forbidden"
        #: How values (and keys) are checked and encoded; ``None`` for raw-bytes topics.
        self.codec = codec
        #: The topic's ``max.message.bytes`` when the contract pins it.
        self.max_bytes: int | None = None
        pinned = dict(contract.configs).get("max.message.bytes")
        if pinned is not None and pinned.isdigit():
            self.max_bytes = int(pinned)

    def check_size(
        self, key: bytes | None, value: bytes | None, headers: HeaderList | None
    ) -> None:
        """Refuse a record the broker would reject as larger than ``max.message.bytes``."""
        assert self.max_bytes is not None
        size = RECORD_OVERHEAD + len(key or b"") + len(value or b"")
        for name, raw in headers or ():
            size += len(name) + len(raw or b"")
        if size > self.max_bytes:
            msg = (
                f"record for topic {self.topic!r} is about {size} bytes as a batch, above the "
                f"topic's max.message.bytes ({self.max_bytes}) in its contract: the broker "
                "would reject it; nothing was sent"
            )
            raise GovernanceViolation(
                msg, rule="message.too-large", topic=self.topic, field="value", value=size
            )

    def key(self, key: object) -> bytes | None:
        """Check a key against the contract's key rule; return its bytes."""
        if key is None:
            if self.key_required:
                raise self._missing_key()
            return None
        if self.key_forbidden:
            msg = (
                f"topic {self.topic!r} forbids keys (contract key = 'forbidden'); send without key="
            )
            raise GovernanceViolation(
                msg, rule="key.forbidden", topic=self.topic, field="key", value=key
            )
        if type(key) is bytes:
            return key
        if isinstance(key, str):
            try:
                return key.encode()
            except UnicodeEncodeError:
                raise not_utf8(key, self.topic, "key", "the key") from None
        if isinstance(key, (bytearray, memoryview)):
            return bytes(key)
        msg = (
            f"key for topic {self.topic!r} must be bytes or str, got {type(key).__name__}; "
            "encode it explicitly so every producer of the topic hashes the same bytes"
        )
        raise SerializationError(msg, topic=self.topic, field="key", value=key)

    def _missing_key(self) -> GovernanceViolation:
        if self.compacted:
            why = (
                f"topic {self.topic!r} is compacted ({self.contract.cleanup_policy}): "
                "a keyless record can never be compacted or deleted"
            )
        else:
            why = f"topic {self.topic!r} requires a key (contract key = 'required')"
        return GovernanceViolation(
            f"{why}; pass key=", rule="key.required", topic=self.topic, field="key"
        )

    def value(self, value: object) -> bytes | None:
        """Check a raw-bytes topic's value (or a tombstone); return its bytes."""
        if type(value) is bytes:
            return value
        if isinstance(value, str):
            try:
                return value.encode()
            except UnicodeEncodeError:
                raise not_utf8(value, self.topic, None, "the value") from None
        if value is None:
            if self.compacted:
                return None
            msg = (
                f"topic {self.topic!r} is not compacted (cleanup_policy = "
                f"{self.contract.cleanup_policy!r}): a tombstone (value None) deletes nothing there"
            )
            raise GovernanceViolation(
                msg, rule="tombstone.not-compacted", topic=self.topic, field="value"
            )
        if isinstance(value, (bytearray, memoryview)):
            return bytes(value)
        msg = (
            f"topic {self.topic!r} carries raw bytes (its contract has no value_schema): "
            f"send bytes or str, not {type(value).__name__}"
        )
        raise SerializationError(msg, topic=self.topic, field=None, value=value)


_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
_ONE_MS = datetime.timedelta(milliseconds=1)


class SchemaCodec:
    """A schema topic's checks: value (and key) writers, allowed event types, event time.

    Under a record subject strategy a topic may carry several event types, each its own
    subject with its own current schema and writer. The writer of a value is the one
    its ``event-type`` header names, when the sender gives one; else, for a Protobuf
    message instance, the writer of its message; else the one writer whose schema the
    value fits: a value that fits none is refused with each one's reason, and a value
    that fits several, with their names (which type it is would be a guess).
    """

    __slots__ = (
        "allowed",
        "by_type",
        "event_headers",
        "key_writer",
        "timestamp_default",
        "timestamp_field",
        "timestamp_scale",
        "topic",
        "value_writer",
        "value_writers",
    )

    def __init__(
        self,
        contract: TopicContract,
        *,
        value_writers: Sequence[Writer],
        key_writer: Writer | None,
    ) -> None:
        self.topic = contract.name
        self.value_writers = tuple(value_writers)
        #: The only value writer, or ``None`` when there are none or several.
        self.value_writer = self.value_writers[0] if len(self.value_writers) == 1 else None
        self.key_writer = key_writer
        self.allowed = frozenset(contract.event_types) if contract.event_types else None
        #: The writer of each event type (the first, when two schemas carry one).
        self.by_type: dict[str, Writer] = {}
        self.event_headers: dict[str, bytes] = {}
        for found in self.value_writers:
            for name in found.schema.event_types:
                self.event_headers[name] = name.encode()
                self.by_type.setdefault(name, found)
        self.timestamp_field = contract.timestamp_field if self.value_writers else None
        self.timestamp_scale = 1.0
        self.timestamp_default: object = None
        if self.timestamp_field is not None:
            schema = self.value_writers[0].schema
            assert isinstance(schema, AvroSchema)  # checked by codec_for
            record = schema.record(schema.event_types[0])
            field = next(f for f in record["fields"] if f["name"] == self.timestamp_field)
            logical = field["type"].get("logicalType") if isinstance(field["type"], dict) else None
            self.timestamp_scale = TIMESTAMP_UNITS[logical]
            self.timestamp_default = field.get("default")

    def key(self, route: Route, key: object) -> bytes | None:
        """Check a key; with a ``key_schema``, encode it by the schema."""
        if key is None or self.key_writer is None:
            return route.key(key)
        if route.key_forbidden:
            route.key(key)  # raises
        return self.key_writer.encode(key)

    def encode(
        self,
        route: Route,
        key: object,
        value: object,
        headers: Headers | None,
    ) -> tuple[bytes | None, bytes | None, str | None, int, HeaderList | None]:
        """Check and encode a schema topic's record: key, value, event type, time, headers."""
        topic = route.topic
        encoded_key = self.key(route, key)
        header_list = None if headers is None else check_headers(topic, headers)
        chosen = None
        if header_list and any(name == EVENT_TYPE_HEADER for name, _ in header_list):
            chosen = self._named_writer(header_list)
            header_list = [h for h in header_list if h[0] != EVENT_TYPE_HEADER] or None
        if value is None or not self.value_writers:
            return encoded_key, route.value(value), None, 0, header_list
        data, event_type, timestamp = self.value(value, chosen)
        if event_type is not None:
            header = (EVENT_TYPE_HEADER, self.event_headers[event_type])
            header_list = [*header_list, header] if header_list else [header]
        return encoded_key, data, event_type, timestamp, header_list

    def _named_writer(self, header_list: HeaderList) -> Writer:
        """The writer the sender's ``event-type`` header names, on a topic of several
        event types; elsewhere the header is the producer's to set."""
        field = f"headers.{EVENT_TYPE_HEADER}"
        if len(self.value_writers) < 2:
            msg = (
                f"header {EVENT_TYPE_HEADER!r} for topic {self.topic!r} is set by the producer "
                "from the value's schema; do not pass it"
            )
            raise SerializationError(msg, topic=self.topic, field=field, value=header_list)
        raw = [v for name, v in header_list if name == EVENT_TYPE_HEADER][-1]
        named = raw if isinstance(raw, str) or raw is None else raw.decode("utf-8", "replace")
        found = self.by_type.get(named) if named is not None else None
        if found is None:
            listed = ", ".join(self.by_type)
            msg = (
                f"header {EVENT_TYPE_HEADER!r} for topic {self.topic!r} names {named or raw!r}, "
                f"which is none of the event types its schemas carry ({listed}); nothing was sent"
            )
            raise SerializationError(msg, topic=self.topic, field=field, value=raw)
        return found

    def value(self, value: object, chosen: Writer | None = None) -> tuple[bytes, str | None, int]:
        """Check and encode ``value`` (with ``chosen``, the writer a header named); return
        its bytes, event type and timestamp (0: now)."""
        only = chosen or self.value_writer
        if only is not None:
            data, event_type = only.encode_event(value)
        else:
            data, event_type = self._encode_one_of(value)
        allowed = self.allowed
        if allowed is not None and event_type not in allowed:
            listed = ", ".join(sorted(allowed))
            msg = (
                f"topic {self.topic!r} does not allow event type {event_type!r} "
                f"(contract event_types: {listed}); nothing was sent"
            )
            raise GovernanceViolation(
                msg,
                rule="event-type.not-allowed",
                topic=self.topic,
                field="event_types",
                value=event_type,
            )
        if self.timestamp_field is None:
            return data, event_type, 0
        return data, event_type, self._timestamp(value)

    def _encode_one_of(self, value: object) -> tuple[bytes, str | None]:
        """Encode ``value`` with the one writer of a topic of several event types it fits."""
        message = getattr(getattr(value, "DESCRIPTOR", None), "full_name", None)
        if isinstance(message, str) and message in self.by_type:
            return self.by_type[message].encode_event(value)
        fits: list[tuple[bytes, str | None]] = []
        refusals: list[SerializationError] = []
        for candidate in self.value_writers:
            try:
                fits.append(candidate.encode_event(value))
            except SerializationError as exc:
                refusals.append(exc)
        if len(fits) == 1:
            return fits[0]
        if fits:
            names = ", ".join(str(event_type) for _, event_type in fits)
            msg = (
                f"topic {self.topic!r}: the value fits the schemas of several event types "
                f"({names}), so which one it is cannot be told: name it with the "
                f"{EVENT_TYPE_HEADER!r} header, or make the schemas exclusive (a JSON Schema "
                "with additionalProperties false); nothing was sent"
            )
            raise SerializationError(msg, topic=self.topic, field="value", value=value)
        shown = "; ".join(
            f"{w.schema.event_types[0] if w.schema.event_types else w.schema}: {e}"
            for w, e in zip(self.value_writers, refusals, strict=True)
        )
        msg = f"topic {self.topic!r}: the value fits none of its event types: {shown}"
        raise SerializationError(
            msg, topic=self.topic, field=refusals[0].field, value=value
        ) from refusals[0]

    def _timestamp(self, value: object) -> int:
        field = self.timestamp_field
        assert field is not None
        raw = cast("dict[str, object]", value).get(field, self.timestamp_default)
        if isinstance(raw, datetime.datetime):
            aware = raw if raw.tzinfo is not None else raw.replace(tzinfo=datetime.timezone.utc)
            millis = (aware - _EPOCH) // _ONE_MS
        else:
            millis = int(cast(int, raw) * self.timestamp_scale)
        if millis <= 0:
            msg = (
                f"topic {self.topic!r}: event time {field!r} = {raw!r} is not after "
                "1970-01-01T00:00:00Z, so it cannot be a Kafka record timestamp; nothing was sent"
            )
            raise SerializationError(msg, topic=self.topic, field=field, value=raw)
        return millis


def _writer(
    contract: TopicContract,
    subject: Subject,
    *,
    registry: SchemaRegistry,
    policy_mode: Compatibility,
    auto_register: bool,
) -> Writer:
    """Resolve a subject's current schema at construction: check it, find (or register)
    its id."""
    key = f"{subject.role}_schema"
    current = subject.current
    name = subject.name
    registered = registry.versions(name)
    # Versions registered after the current one (a newer deploy) are not its to judge.
    if current in registered:
        registered = registered[: registered.index(current)]
    problems = check_versions(current, registered, policy_mode)
    if problems:
        shown = "\n  ".join(str(p) for p in problems)
        first = problems[0]
        msg = (
            f"topic {contract.name!r}: schema {current} is not {policy_mode} compatible with "
            f"the registered versions of subject {name!r}; the producer was not started:\n  "
            f"{shown}"
        )
        raise GovernanceViolation(
            msg,
            rule="schema.compatibility",
            topic=contract.name,
            field=first.field or key,
            value=policy_mode,
        )
    schema_id = registry.lookup(name, current)
    if schema_id is None:
        if not auto_register:
            msg = (
                f"topic {contract.name!r}: schema {current} is not registered under subject "
                f"{name!r} in {registry!r}; register it first (governed-kafka apply), or "
                "opt in with GovernedProducer(..., auto_register=True)"
            )
            raise GovernanceViolation(
                msg, rule="schema.not-registered", topic=contract.name, field=key, value=name
            )
        schema_id = registry.register(name, current)
    events = contract.event_types if subject.role == "value" else ()
    return writer(current, schema_id, topic=contract.name, role=subject.role, event_types=events)


def codec_for(
    contract: TopicContract,
    *,
    registry: SchemaRegistry,
    mode: Compatibility,
    auto_register: bool,
    catalog_path: Path,
) -> SchemaCodec | None:
    """The checks of a schema topic, or ``None`` for a raw-bytes topic.

    Every listed schema file is read and parsed, and grouped into the topic's subjects
    by its ``subject_strategy``; each subject's current (last) version gets a writer.
    """
    if not contract.value_schema and contract.key_schema is None:
        return None
    common: dict[str, Any] = {
        "registry": registry,
        "policy_mode": mode,
        "auto_register": auto_register,
    }
    found = subjects(contract)
    value_writers = [_writer(contract, s, **common) for s in found if s.role == "value"]
    key_writer = None
    for subject in found:
        if subject.role == "key":
            key_writer = _writer(contract, subject, **common)
    if contract.timestamp_field is not None and value_writers:
        problem = None
        for candidate in value_writers:
            schema = candidate.schema
            if not isinstance(schema, AvroSchema):
                problem = (
                    f"timestamp_field is read from Avro records only; {schema} is "
                    f"{schema.schema_type}"
                )
            else:
                problem = timestamp_field_problem(schema, contract.timestamp_field)
            if problem is not None:
                break
        if problem is not None:
            msg = f"{catalog_path}: topic {contract.name!r}: key 'timestamp_field': {problem}"
            raise ContractError(
                msg, path=str(catalog_path), topic=contract.name, key="timestamp_field"
            )
    return SchemaCodec(contract, value_writers=value_writers, key_writer=key_writer)


def not_utf8(text: str, topic: str, field: str | None, what: str) -> SerializationError:
    """The refusal of a str that cannot be UTF-8 (it holds a lone surrogate)."""
    msg = (
        f"{what} for topic {topic!r} is a str that cannot be UTF-8 (it holds a lone "
        "surrogate); nothing was sent"
    )
    return SerializationError(msg, topic=topic, field=field, value=text)


def _header_name(topic: str, name: object) -> str:
    """Check a header name before librdkafka sees it: a non-empty str, UTF-8, without NUL.

    librdkafka takes names as C strings: a NUL would silently cut the name (so that
    ``"event-type\x00"`` arrived as ``event-type``), and confluent-kafka crashes the
    process on a name that cannot be UTF-8.
    """
    if not isinstance(name, str) or not name:
        msg = f"header names are non-empty str, got {name!r} (topic {topic!r})"
        raise SerializationError(msg, topic=topic, field="headers", value=name)
    if not name.isascii():
        try:
            name.encode()
        except UnicodeEncodeError:
            msg = (
                f"header name {name!r} for topic {topic!r} cannot be UTF-8 (it holds a lone "
                "surrogate); nothing was sent"
            )
            raise SerializationError(
                msg, topic=topic, field=f"headers[{name!r}]", value=name
            ) from None
    if "\x00" in name:
        msg = (
            f"header name {name!r} for topic {topic!r} holds NUL, where librdkafka would cut "
            "the name short; nothing was sent"
        )
        raise SerializationError(msg, topic=topic, field=f"headers[{name!r}]", value=name)
    return name


def sendable_header_name(name: object) -> bool:
    """Whether ``send()`` takes ``name`` as a header name (records of other clients may
    carry names it does not, such as an empty one)."""
    try:
        _header_name("", name)
    except SerializationError:
        return False
    return True


def check_headers(topic: str, headers: Headers | None) -> HeaderList | None:
    """Headers as librdkafka takes them, every name and value checked first.

    ``field`` of a refusal is ``headers.NAME`` for a bad value, ``headers['NAME']`` for a
    bad name, ``headers`` when the headers as a whole are malformed.
    """
    if headers is None:
        return None
    try:
        items: Iterable[Any] = headers.items() if isinstance(headers, Mapping) else iter(headers)
    except TypeError:
        msg = (
            f"headers for {topic!r} must be a mapping or (name, value) pairs, "
            f"got {type(headers).__name__}"
        )
        raise SerializationError(msg, topic=topic, field="headers", value=headers) from None
    result: HeaderList = []
    for item in items:
        if not (isinstance(item, tuple) and len(item) == 2):
            msg = f"headers for {topic!r} must be a mapping or (name, value) pairs, got {item!r}"
            raise SerializationError(msg, topic=topic, field="headers", value=item)
        name, raw = item
        name = _header_name(topic, name)
        value: bytes | None
        if raw is None or type(raw) is bytes:
            value = raw
        elif isinstance(raw, str):
            try:
                value = raw.encode()
            except UnicodeEncodeError:
                raise not_utf8(raw, topic, f"headers.{name}", f"header {name!r}") from None
        elif isinstance(raw, (bytearray, memoryview)):
            value = bytes(raw)
        else:
            msg = (
                f"header {name!r} for topic {topic!r} must be bytes, str or None, "
                f"got {type(raw).__name__}"
            )
            raise SerializationError(msg, topic=topic, field=f"headers.{name}", value=raw)
        result.append((name, value))
    return result
