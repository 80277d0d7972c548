"""Avro on fastavro: schemas, values checked with field paths, the Confluent wire format.

A schema is parsed once (:class:`AvroSchema`); an :class:`AvroWriter` checks every value
against it before encoding, because fastavro's writer silently coerces or drops what
does not fit, and an :class:`AvroReader` decodes what any Confluent-compatible producer
wrote, resolving the writer's schema (found by id in a schema registry) to the
reader's.

Wire format (Confluent): one magic byte ``0``, the schema id as a 4-byte big-endian
unsigned integer, then the Avro binary encoding of the value.

The *event type* of a value is the full name of its Avro record
(``"payments.OrderCreated"``); a topic whose schema is a union of records carries
several. Producers send it in the :data:`EVENT_TYPE_HEADER` header so consumers can
route records without decoding them.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Callable, Mapping, Sequence
from io import BytesIO
from pathlib import Path
from typing import Any, ClassVar, Final

import attrs
import fastavro
from fastavro.schema import to_parsing_canonical_form

from . import _avro_bounds, _avro_validate, _wire
from ._text import read_schema_file
from .errors import ContractError, SerializationError

__all__ = [
    "EVENT_TYPE_HEADER",
    "HEADER_SIZE",
    "MAGIC_BYTE",
    "AvroReader",
    "AvroSchema",
    "AvroWriter",
    "WriterSchemas",
    "frame",
    "load_schema",
    "parse_schema",
    "schema_id_of",
]

#: First byte of every value in the Confluent wire format.
MAGIC_BYTE: Final = _wire.MAGIC_BYTE

#: Magic byte plus the 4-byte schema id.
HEADER_SIZE: Final = _wire.HEADER_SIZE

#: The header carrying a record's event type (its Avro record full name), UTF-8.
EVENT_TYPE_HEADER: Final = "event-type"

Role = _wire.Role

_schemaless_writer = fastavro.schemaless_writer
_schemaless_reader = fastavro.schemaless_reader

try:
    # The compiled writer behind fastavro.schemaless_writer. Called directly, it skips
    # the wrapper's per-call schema re-parse and file object: a fifth of the encoding
    # time of a small record, which is what a checked encode can afford to spend on
    # the check. The wrapper is the fallback if a fastavro release moves it.
    from fastavro._write import write_data as _write_data  # type: ignore[attr-defined,unused-ignore]
except ImportError:  # pragma: no cover - depends on the installed fastavro
    _write_data = None

try:
    # Likewise the compiled reader behind fastavro.schemaless_reader: the wrapper re-parses
    # both schemas into fresh name tables on every call, which costs a quarter of
    # decoding a small record.
    from fastavro._read import _read_data  # type: ignore[attr-defined,unused-ignore]
except ImportError:  # pragma: no cover - depends on the installed fastavro
    _read_data = None

_NO_OPTIONS: Final[dict[str, Any]] = {}

#: fastavro's defaults for schemaless_reader, passed to the compiled reader.
_READ_OPTIONS: Final[dict[str, Any]] = {
    "return_record_name": False,
    "return_record_name_override": False,
    "handle_unicode_errors": "strict",
    "return_named_type": False,
    "return_named_type_override": False,
}

#: Magic byte and schema id, as they open every wire-format value.
_WIRE_HEADER: Final = struct.Struct(">BI")


def _encode(header: bytes, parsed: Any, named: dict[str, Any], value: object) -> bytes:
    if _write_data is not None:
        buffer = bytearray(header)
        _write_data(buffer, value, parsed, named, "", _NO_OPTIONS)
        return bytes(buffer)
    stream = BytesIO()  # pragma: no cover - depends on the installed fastavro
    stream.write(header)
    _schemaless_writer(stream, parsed, value)
    return stream.getvalue()


@attrs.frozen(kw_only=True, eq=False)
class AvroSchema:
    """One parsed Avro schema. Two schemas are equal when their Parsing Canonical Forms are."""

    #: What a schema registry calls this format.
    schema_type: ClassVar[str] = "AVRO"

    #: The schema as JSON, compact, as written (docs, defaults and aliases kept).
    text: str
    #: Avro's Parsing Canonical Form: what identifies the schema.
    canonical: str
    #: SHA-256 of the canonical form.
    fingerprint: bytes
    #: The file it came from, when it came from one.
    source: str | None = None
    #: Full names of the records a value may be (one, or the records of a top-level union).
    event_types: tuple[str, ...] = ()
    parsed: Any = attrs.field(repr=False)
    names: Mapping[str, Any] = attrs.field(repr=False)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AvroSchema):
            return NotImplemented
        return self.canonical == other.canonical

    def __hash__(self) -> int:
        return hash(self.fingerprint)

    @property
    def is_union(self) -> bool:
        """Whether the top level is a union (a topic carrying several event types)."""
        return isinstance(self.parsed, list)

    def record(self, name: str) -> Mapping[str, Any]:
        """The definition of the named record ``name`` (a fastavro-parsed dict)."""
        return self.names[name]  # type: ignore[no-any-return]

    @property
    def references(self) -> tuple[()]:
        """Schemas this one imports: none (named types are defined inline)."""
        return ()

    def __str__(self) -> str:
        return self.source or self.canonical


def parse_schema(
    schema: str | Mapping[str, Any] | list[Any],
    *,
    source: str | None = None,
    topic: str | None = None,
    key: str | None = None,
) -> AvroSchema:
    """Parse an Avro schema given as JSON text, as its decoded JSON, or as a primitive name.

    A schema that does not parse raises :class:`~governed_kafka.errors.ContractError`
    naming ``source`` (the file), and ``topic`` and ``key`` when given. The error says
    where (a JSON line and column, or a path such as ``fields[2].type``) and what was
    expected there, never what the schema holds: a schema file may be anything.
    Schemas nest at most :data:`~governed_kafka._avro_bounds.MAX_DEPTH` types deep.
    """
    where = source or "<schema>"

    def refused(reason: str) -> ContractError:
        msg = f"{where}: not a valid Avro schema: {reason}"
        return ContractError(msg, path=where, topic=topic, key=key)

    raw: Any = schema
    if isinstance(schema, str) and schema.strip() not in _avro_validate.PRIMITIVES:
        too_deep = _avro_bounds.json_depth_problem(schema)
        if too_deep is not None:
            raise refused(too_deep)
        try:
            raw = json.loads(schema)  # JSON text; a bare primitive name is its own schema
        except json.JSONDecodeError as exc:
            raise refused(f"not JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    problem = _avro_bounds.schema_problem(raw)
    if problem is not None:
        raise refused(problem)
    try:
        parsed = fastavro.parse_schema(raw)
        canonical = to_parsing_canonical_form(parsed)
    except Exception as exc:  # fastavro, and KeyError/TypeError on odd shapes
        # fastavro's message quotes the schema: only its kind is told, and it is not chained.
        raise refused(
            f"fastavro refuses it ({type(exc).__name__}; its message is not shown, as it "
            "quotes the schema)"
        ) from None
    names = _avro_validate.named_types(parsed)
    branches = parsed if isinstance(parsed, list) else [parsed]
    event_types = tuple(
        _avro_validate.branch_name(b, names)
        for b in branches
        if _avro_validate.kind_of(b, names)[0] == "record"
    )
    return AvroSchema(
        text=json.dumps(raw, separators=(",", ":"), ensure_ascii=False),
        canonical=canonical,
        fingerprint=hashlib.sha256(canonical.encode()).digest(),
        source=source,
        event_types=event_types,
        parsed=parsed,
        names=names,
    )


def load_schema(
    path: str | Path, *, topic: str | None = None, key: str | None = None
) -> AvroSchema:
    """Read and parse an ``.avsc`` file; errors name the file (and ``topic``, ``key``)."""
    text = read_schema_file(path, topic=topic, key=key)
    return parse_schema(text, source=str(path), topic=topic, key=key)


def schema_id_of(schema: AvroSchema) -> int:
    """A deterministic schema id: the canonical form's SHA-256 folded into 1..2**31-1.

    Separate processes that load the same contracts agree on it without a server.
    """
    return _wire.fold_id(schema.fingerprint)


def frame(schema_id: int, payload: bytes) -> bytes:
    """Prefix Avro binary ``payload`` with the wire-format header for ``schema_id``."""
    return _wire.header(schema_id) + payload


def _same(value: Any) -> Any:
    return value


class AvroWriter:
    """Check values against one schema and encode them in the Confluent wire format.

    Every value is checked first: a missing field, a value of the wrong type or width,
    a dict key the record does not declare, ``None`` where null is not allowed, an
    unknown enum symbol, or a value that matches no union branch raises
    :class:`~governed_kafka.errors.SerializationError` naming the topic and the field
    path (``items[2].price_cents``).
    """

    __slots__ = (
        "_bounded",
        "_branches",
        "_check",
        "_event_type",
        "_explainer",
        "_guard",
        "_header",
        "_named",
        "_parsed",
        "_recursive",
        "_tag",
        "role",
        "schema",
        "schema_id",
        "topic",
    )

    def __init__(
        self, schema: AvroSchema, schema_id: int, *, topic: str, role: Role = "value"
    ) -> None:
        self.schema = schema
        self.schema_id = schema_id
        self.topic = topic
        self.role = role
        self._header = _wire.header(schema_id)
        self._parsed = schema.parsed
        self._named: dict[str, Any] = {}
        fastavro.parse_schema(schema.parsed, self._named)
        self._check = _avro_validate.compile_check(schema.parsed, schema.names)
        self._tag = _avro_validate.compile_tagger(schema.parsed, schema.names)
        self._explainer = _avro_validate.Explainer(schema.names)
        # Values a recursive schema allows may nest without end: measured before encoding.
        # Arrays of items that take no bytes are counted in the encoded bytes, as a
        # reader counts them.
        self._recursive = _avro_bounds.is_recursive(schema.parsed, schema.names)
        self._guard = (
            _avro_bounds.binary_guard(schema.parsed, schema.names)
            if _avro_bounds.has_empty_collections(schema.parsed, schema.names)
            else None
        )
        self._bounded = self._recursive or self._guard is not None
        self._event_type = (
            schema.event_types[0] if not schema.is_union and schema.event_types else None
        )
        # A top-level union: which branch a value is decides its event type, and the
        # branch is handed to fastavro explicitly so that it writes that very branch.
        self._branches: tuple[
            tuple[str, Any, Callable[[object], bool], Callable[[Any], Any]], ...
        ] = ()
        if schema.is_union:
            self._branches = tuple(
                (
                    _avro_validate.branch_name(branch, schema.names),
                    branch,
                    _avro_validate.compile_check(branch, schema.names),
                    _avro_validate.compile_tagger(branch, schema.names) or _same,
                )
                for branch in schema.parsed
            )

    def encode(self, value: object) -> bytes:
        """Check ``value`` and return its wire-format bytes."""
        return self.encode_event(value)[0]

    def encode_event(self, value: object) -> tuple[bytes, str | None]:
        """Check ``value``; return its wire-format bytes and its event type."""
        if self._bounded and self._recursive and _avro_bounds.value_too_deep(value):
            raise self._out_of_bounds(value, _avro_bounds.TOO_DEEP)
        if self._branches:
            data, event_type = self._encode_union(value)
        else:
            if not self._check(value):
                raise self._refusal(value)
            original = value
            if self._tag is not None:
                value = self._tag(value)
            try:
                data = _encode(self._header, self._parsed, self._named, value)
            except Exception as exc:
                raise self._encoding_failed(original, exc) from None
            event_type = self._event_type
        if self._guard is not None:
            problem = self._guard(data, HEADER_SIZE)
            if problem is not None:
                raise self._out_of_bounds(value, problem)
        return data, event_type

    def _encode_union(self, value: object) -> tuple[bytes, str | None]:
        branch = next((b for b in self._branches if b[2](value)), None)
        if branch is None:
            raise self._refusal(value)
        name, _, _, tag = branch
        try:
            data = _encode(self._header, self._parsed, self._named, (name, tag(value)))
        except Exception as exc:
            raise self._encoding_failed(value, exc) from None
        return data, name if name in self.schema.event_types else None

    def _out_of_bounds(self, value: object, problem: str) -> SerializationError:
        msg = (
            f"topic {self.topic!r}: the {self.role} is {problem}, which schema {self.schema} "
            "allows but no reader could decode safely; nothing was sent"
        )
        return SerializationError(
            msg, topic=self.topic, field=_wire.field_path(self.role, ""), value=value
        )

    def _refusal(self, value: object) -> SerializationError:
        problem = self._explainer.first(self._parsed, value, "")
        path, reason = problem if problem is not None else ("", "does not fit the schema")
        if isinstance(value, (bytes, bytearray, memoryview)) and path in {"", "<value>"}:
            reason += (
                "; a schema topic takes the value itself, not pre-encoded bytes, "
                "so that every value is checked"
            )
        return _wire.refusal(
            topic=self.topic,
            role=self.role,
            schema=self.schema,
            value=value,
            path=path if path != "<value>" else "",
            reason=reason,
        )

    def _encoding_failed(self, value: object, exc: Exception) -> SerializationError:
        if isinstance(exc, UnicodeEncodeError):
            path = self._explainer.unencodable(self._parsed, value, "") or ""
            field = _wire.field_path(self.role, path if path != "<value>" else "")
            where = f"field {field!r}" if path and path != "<value>" else f"the {self.role}"
            msg = (
                f"topic {self.topic!r}: {where} is a str that cannot be UTF-8 (it holds a lone "
                "surrogate); nothing was sent"
            )
            return SerializationError(msg, topic=self.topic, field=field, value=value)
        msg = (
            f"topic {self.topic!r}: the {self.role} cannot be encoded with schema "
            f"{self.schema}: {type(exc).__name__}: {exc}; nothing was sent"
        )
        return SerializationError(msg, topic=self.topic, field=None, value=value)

    def event_type(self, value: object) -> str | None:
        """The event type ``value`` would be sent as, or ``None`` if it has none."""
        if not self._branches:
            return self._event_type
        for name, _branch, check, _tag in self._branches:
            if check(value):
                return name if name in self.schema.event_types else None
        return None


class _Decoder:
    """How to decode the values written with one schema id."""

    __slots__ = ("branches", "event_type", "guard", "named", "reader", "writer")

    def __init__(self, writer: AvroSchema, reader: AvroSchema | None) -> None:
        #: Checks the bytes against the nesting and empty-item bounds first, where the
        #: writer schema allows what fastavro's reader cannot survive or should not build.
        self.guard = _avro_bounds.binary_guard(writer.parsed, writer.names)
        # fastavro skips resolution entirely when no reader schema is given.
        resolve = reader is not None and reader != writer
        # The name tables the compiled reader resolves named types with, built once.
        self.named: dict[str, dict[str, Any]] = {"writer": {}, "reader": {}}
        self.writer = fastavro.parse_schema(writer.parsed, self.named["writer"])
        self.reader = (
            fastavro.parse_schema(reader.parsed, self.named["reader"])
            if resolve and reader is not None
            else None
        )
        target = reader if reader is not None else writer
        self.event_type = (
            target.event_types[0] if not target.is_union and target.event_types else None
        )
        self.branches: tuple[tuple[str, Callable[[object], bool]], ...] = ()
        if target.is_union:
            self.branches = tuple(
                (
                    _avro_validate.branch_name(b, target.names),
                    _avro_validate.compile_check(b, target.names),
                )
                for b in target.parsed
                if _avro_validate.kind_of(b, target.names)[0] == "record"
            )

    def read(self, buffer: BytesIO) -> Any:
        """Decode one Avro value from ``buffer``."""
        if _read_data is not None:
            return _read_data(buffer, self.writer, self.named, self.reader, _READ_OPTIONS)
        return _schemaless_reader(buffer, self.writer, self.reader)  # pragma: no cover

    def event_type_of(self, value: object) -> str | None:
        if not self.branches:
            return self.event_type
        for name, check in self.branches:
            if check(value):
                return name
        return None


#: Where an :class:`AvroReader` finds a writer's schema by the id in the bytes: every
#: :class:`~governed_kafka.registry.SchemaRegistry` is one.
WriterSchemas = _wire.WriterSchemas


class AvroReader(_wire.SchemaReader):
    """Decode wire-format bytes, resolving each writer schema to the reader's.

    The writer schema is looked up by the id in the bytes, once per id, in
    ``registry``; values are resolved to ``reader_schema`` (the contract's current
    schema) so consumers see one shape whatever version wrote them. A value whose
    writer is a record that one of ``reader_schemas`` is (the current schemas of a
    topic's other event types) resolves to that one instead. Bytes that are not
    wire format, carry an unknown id, or do not decode raise
    :class:`~governed_kafka.errors.DeserializationError` with the bytes attached.
    """

    __slots__ = ("_by_record", "_decoders")

    schema_class = AvroSchema
    format_name = "Avro"
    reader_schema: AvroSchema | None

    def __init__(
        self,
        registry: WriterSchemas,
        *,
        topic: str,
        reader_schema: AvroSchema | None = None,
        role: Role = "value",
        reader_schemas: Sequence[AvroSchema] = (),
    ) -> None:
        super().__init__(registry, topic=topic, reader_schema=reader_schema, role=role)
        self._decoders: dict[int, _Decoder] = {}
        #: Reader schemas by the record they are (a topic of several event types, each
        #: its own subject): a value written as one of them resolves to it.
        self._by_record: dict[str, AvroSchema] = {}
        for schema in (*reader_schemas, *((reader_schema,) if reader_schema else ())):
            if not schema.is_union and len(schema.event_types) == 1:
                self._by_record[schema.event_types[0]] = schema

    def decode(
        self, data: bytes, *, partition: int | None = None, offset: int | None = None
    ) -> Any:
        """Decode one wire-format value."""
        return self._read(data, partition, offset)[0]

    def decode_event(
        self,
        data: bytes,
        *,
        partition: int | None = None,
        offset: int | None = None,
        event_type: str | None = None,
    ) -> tuple[Any, str | None]:
        """Decode one wire-format value; return it and its event type.

        ``event_type`` (from the record's header) is trusted when given; otherwise the
        type is the reader record the value resolved to.
        """
        value, decoder = self._read(data, partition, offset)
        if event_type is None:
            event_type = decoder.event_type_of(value)
        return value, event_type

    def fast_reader(self, data: bytes) -> Callable[[BytesIO], Any] | None:
        """For bytes :meth:`decode` just read: the decode function of their schema id, if
        its values need no bounds check before fastavro reads them (``None`` otherwise).

        A consumer keeps it with the 5-byte header of ``data`` and, for later values
        with the same header, calls it directly: the same fastavro reader :meth:`decode`
        calls, without the lookups in between. A value it fails on, or that leaves
        bytes over, is decoded again by :meth:`decode`, which says why.
        """
        decoder = self._decoders.get(_WIRE_HEADER.unpack_from(data)[1])
        if decoder is None or decoder.guard is not None or _read_data is None:
            return None
        read_data = _read_data
        writer, named, reader = decoder.writer, decoder.named, decoder.reader

        def read(buffer: BytesIO) -> Any:
            return read_data(buffer, writer, named, reader, _READ_OPTIONS)

        return read

    def _read(self, data: bytes, partition: int | None, offset: int | None) -> tuple[Any, _Decoder]:
        try:
            magic, schema_id = _WIRE_HEADER.unpack_from(data)
        except (struct.error, TypeError):
            raise self._bad(data, partition, offset, _wire.framing_problem(data)) from None
        if magic != MAGIC_BYTE:
            raise self._bad(data, partition, offset, _wire.framing_problem(data))
        decoder = self._decoders.get(schema_id)
        if decoder is None:
            decoder = self._decoder(schema_id, data, partition, offset)
        if decoder.guard is not None:
            problem = decoder.guard(data, HEADER_SIZE)
            if problem is not None:
                why = f"the Avro payload is {problem} (schema id {schema_id}); not decoded"
                raise self._bad(data, partition, offset, why, schema_id)
        buffer = BytesIO(data)
        buffer.seek(HEADER_SIZE)
        try:
            value = decoder.read(buffer)
        except Exception as exc:  # EOFError, UnicodeDecodeError, resolution errors, ...
            why = (
                f"Avro payload does not decode with schema id {schema_id}: "
                f"{type(exc).__name__}: {exc}"
            )
            raise self._bad(data, partition, offset, why, schema_id) from exc
        if buffer.tell() != len(data):
            extra = len(data) - buffer.tell()
            why = f"{extra} bytes left over after the Avro value (schema id {schema_id})"
            raise self._bad(data, partition, offset, why, schema_id)
        return value, decoder

    def _decoder(
        self, schema_id: int, data: bytes, partition: int | None, offset: int | None
    ) -> _Decoder:
        writer = self._writer_schema(schema_id, data, partition, offset)
        reader = self.reader_schema
        if self._by_record and not writer.is_union and len(writer.event_types) == 1:
            reader = self._by_record.get(writer.event_types[0], reader)
        decoder = self._decoders[schema_id] = _Decoder(writer, reader)
        return decoder
