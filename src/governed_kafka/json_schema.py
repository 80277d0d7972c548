"""JSON Schema: schemas, values checked with field paths, the Confluent wire format.

A schema (``.json`` file) is parsed once (:class:`JsonSchema`), with the validator of
its draft: ``$schema`` picks draft 2020-12 or draft 7, and a schema without one is
2020-12. A :class:`JsonSchemaWriter` checks every value before encoding it, and a
:class:`JsonSchemaReader` decodes what any Confluent-compatible producer wrote and
checks it against the schema its id names.

Wire format (Confluent): one magic byte ``0``, the schema id as a 4-byte big-endian
unsigned integer, then the value as compact UTF-8 JSON (``json.dumps`` with
``separators=(",", ":")`` and ``ensure_ascii=False``, as confluent-kafka's serializer
writes it).

Values are what :func:`json.dumps` writes without conversion: ``dict`` (with ``str``
keys), ``list``, ``str``, ``int``, finite ``float``, ``bool`` and ``None``, nested at
most :data:`MAX_DEPTH` levels. ``format`` is an annotation, as the drafts have it by
default; a 2020-12 schema whose ``$vocabulary`` turns on the format-assertion
vocabulary has its formats checked.

The *event type* of a value is the schema's ``title`` (``"payments.OrderCreated"``),
the name Confluent's record subject strategies use.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Final

import attrs

from . import _json_check, _wire
from ._avro_bounds import json_depth_problem
from ._text import read_schema_file
from ._wire import HEADER_SIZE, MAGIC_BYTE, Role
from .errors import ContractError, SerializationError

__all__ = [
    "DRAFTS",
    "FORMAT_ASSERTION",
    "HEADER_SIZE",
    "MAGIC_BYTE",
    "MAX_DEPTH",
    "JsonSchema",
    "JsonSchemaReader",
    "JsonSchemaWriter",
    "load_schema",
    "parse_schema",
    "schema_id_of",
]

#: Deepest nesting of arrays and objects a value may have, written or read.
MAX_DEPTH: Final = _json_check.MAX_DEPTH

#: ``$schema`` URIs and the draft each names; a schema without ``$schema`` is 2020-12.
DRAFTS: Final[Mapping[str, str]] = {
    "https://json-schema.org/draft/2020-12/schema": "2020-12",
    "http://json-schema.org/draft-07/schema": "7",
}

#: The 2020-12 vocabulary whose presence in ``$vocabulary`` turns format checks on.
FORMAT_ASSERTION: Final = "https://json-schema.org/draft/2020-12/vocab/format-assertion"

#: How much of a library message about a value a refusal repeats.
_SHOWN: Final = 200


def _validator_class(draft: str) -> Any:
    from jsonschema import Draft7Validator, Draft202012Validator

    return Draft202012Validator if draft == "2020-12" else Draft7Validator


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


@attrs.frozen(kw_only=True, eq=False)
class JsonSchema:
    """One parsed JSON Schema. Two schemas are equal when their canonical JSON is."""

    #: What a schema registry calls this format.
    schema_type: ClassVar[str] = "JSON"

    #: The schema as compact JSON, keys in the order written: what is registered.
    text: str
    #: The schema as compact JSON with sorted keys: what identifies it.
    canonical: str
    #: SHA-256 of the canonical form.
    fingerprint: bytes
    #: ``"2020-12"`` or ``"7"``.
    draft: str
    #: The file it came from, when it came from one.
    source: str | None = None
    #: The schema's ``title``, when it has one: the event type of its values.
    event_types: tuple[str, ...] = ()
    #: Whether ``format`` keywords are checked (the format-assertion vocabulary is on).
    formats_asserted: bool = False
    parsed: Any = attrs.field(repr=False)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, JsonSchema):
            return NotImplemented
        return self.canonical == other.canonical

    def __hash__(self) -> int:
        return hash(self.fingerprint)

    @property
    def references(self) -> tuple[()]:
        """Schemas this one imports: none (a JSON Schema is one file here)."""
        return ()

    def validator(self) -> Any:
        """A ``jsonschema`` validator of this schema (format checks on when asserted)."""
        cls = _validator_class(self.draft)
        checker = cls.FORMAT_CHECKER if self.formats_asserted else None
        return cls(self.parsed, format_checker=checker)

    def __str__(self) -> str:
        return self.source or self.canonical


def _local_refs(node: Any, found: list[str]) -> None:
    if isinstance(node, dict):
        for key, item in node.items():
            if key == "$ref" and isinstance(item, str):
                found.append(item)
            else:
                _local_refs(item, found)
    elif isinstance(node, list):
        for item in node:
            _local_refs(item, found)


def parse_schema(
    schema: str | Mapping[str, Any] | bool,
    *,
    source: str | None = None,
    topic: str | None = None,
    key: str | None = None,
) -> JsonSchema:
    """Parse a JSON Schema given as JSON text or as its decoded JSON.

    A schema that does not parse raises :class:`~governed_kafka.errors.ContractError`
    naming ``source`` (the file), and ``topic`` and ``key`` when given. The error says
    where (a JSON line and column, or a path such as ``properties.price.type``) and what
    was expected there, never what the schema holds. A ``$ref`` must point into the
    same file (``#/$defs/Item``): a schema is one file.
    """
    where = source or "<schema>"

    def refused(reason: str) -> ContractError:
        msg = f"{where}: not a valid JSON Schema: {reason}"
        return ContractError(msg, path=where, topic=topic, key=key)

    raw: Any = schema
    if isinstance(schema, str):
        too_deep = json_depth_problem(schema)
        if too_deep is not None:
            raise refused(too_deep)
        try:
            raw = json.loads(schema, parse_constant=_no_constant)
        except json.JSONDecodeError as exc:
            raise refused(f"not JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
        except _NotJson:
            raise refused("NaN and Infinity are not JSON") from None
        except ValueError as exc:  # a number too long to read
            raise refused(f"not JSON: {type(exc).__name__}") from None
    if not isinstance(raw, (dict, bool)):
        raise refused(f"expected an object (or true/false) at the top, got a {_kind(raw)}")
    draft = "2020-12"
    if isinstance(raw, dict) and "$schema" in raw:
        declared = raw["$schema"]
        draft_name = DRAFTS.get(declared.rstrip("#")) if isinstance(declared, str) else None
        if draft_name is None:
            known = ", ".join(DRAFTS)
            raise refused(f"'$schema' names no supported draft; expected one of {known}")
        draft = draft_name
    _check_metaschema(raw, draft, refused)
    refs: list[str] = []
    _local_refs(raw, refs)
    resolver = _resolver(raw, draft)
    for ref in refs:
        if not ref.startswith("#"):
            raise refused(
                "a '$ref' points outside the file; keep the schema in one file "
                "($defs and '#/$defs/NAME' references)"
            )
        try:
            resolver.lookup(ref)
        except Exception:
            raise refused("a '$ref' points to nothing in the file") from None
    vocabulary = raw.get("$vocabulary") if isinstance(raw, dict) else None
    asserted = (
        draft == "2020-12"
        and isinstance(vocabulary, dict)
        and bool(vocabulary.get(FORMAT_ASSERTION))
    )
    title = raw.get("title") if isinstance(raw, dict) else None
    canonical = json.dumps(raw, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return JsonSchema(
        text=json.dumps(raw, separators=(",", ":"), ensure_ascii=False),
        canonical=canonical,
        fingerprint=hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).digest(),
        draft=draft,
        source=source,
        event_types=(title,) if isinstance(title, str) and title else (),
        formats_asserted=asserted,
        parsed=raw,
    )


class _NotJson(ValueError):
    """NaN or Infinity in JSON text: Python's reader takes them, JSON has no such thing."""


def _no_constant(name: str) -> Any:
    raise _NotJson(name)


def _resolver(raw: Any, draft: str) -> Any:
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT7, DRAFT202012

    spec = DRAFT202012 if draft == "2020-12" else DRAFT7
    resource = Resource.from_contents(raw, default_specification=spec)
    return Registry().with_resource("", resource).resolver()


def _kind(value: object) -> str:
    return {list: "array", str: "string", int: "number", float: "number"}.get(
        type(value), "literal"
    )


def _check_metaschema(raw: Any, draft: str, refused: Any) -> None:
    from jsonschema import SchemaError

    try:
        _validator_class(draft).check_schema(raw)
    except SchemaError as exc:
        place = _wire.join_path(exc.absolute_path) or "the top level"
        # The library's message repeats the schema's content: only the keyword is told.
        raise refused(
            f"at {place}: does not follow draft {draft} (its '{exc.validator}' rule); "
            "the value there is not shown"
        ) from None
    except RecursionError:
        raise refused("nested too deeply to check") from None


def load_schema(
    path: str | Path, *, topic: str | None = None, key: str | None = None
) -> JsonSchema:
    """Read and parse a ``.json`` schema file; errors name the file (and ``topic``, ``key``)."""
    text = read_schema_file(path, topic=topic, key=key)
    return parse_schema(text, source=str(path), topic=topic, key=key)


def schema_id_of(schema: JsonSchema) -> int:
    """A deterministic schema id: the canonical JSON's SHA-256 folded into 1..2**31-1."""
    return _wire.fold_id(schema.fingerprint)


class _Checked:
    """A schema's compiled check, its library validator, and how to explain a refusal."""

    __slots__ = ("check", "validator")

    def __init__(self, schema: JsonSchema) -> None:
        self.validator = schema.validator()
        self.check = _json_check.compile_check(
            schema.parsed, schema.draft, formats_asserted=schema.formats_asserted
        )

    def problem(self, value: Any) -> tuple[str, str] | None:
        """``(path, reason)`` of why ``value`` is refused, or ``None`` when it is valid."""
        if self.check is not None and self.check(value, 0):
            return None
        unsafe = _json_check.first_problem(value)
        if unsafe is not None:
            return _wire.join_path(unsafe[0]), unsafe[1]
        from jsonschema.exceptions import best_match

        try:
            error = best_match(self.validator.iter_errors(value))
        except RecursionError:  # pragma: no cover - values are bounded by first_problem
            return "", "nested too deeply to check"
        if error is None:
            return None
        message = error.message
        if len(message) > _SHOWN:
            message = message[:_SHOWN] + "..."
        steps = [*error.absolute_path, *_culprit(error)]
        return _wire.join_path(steps), f"{message} (rule '{error.validator}')"


def _culprit(error: Any) -> list[str]:
    """The property a ``required`` or ``additionalProperties`` error is about, so that the
    path names it (``items[1].price``) rather than the object holding it."""
    instance = error.instance
    if not isinstance(instance, dict):
        return []
    if error.validator == "required" and isinstance(error.validator_value, list):
        missing = [n for n in error.validator_value if n not in instance]
        return missing[:1]
    if error.validator == "additionalProperties" and isinstance(error.schema, dict):
        declared = error.schema.get("properties", {})
        extra = [k for k in instance if k not in declared]
        return (
            [str(k) for k in extra[:1]]
            if len(error.schema.get("patternProperties", {})) == 0
            else []
        )
    return []


class JsonSchemaWriter:
    """Check values against one JSON Schema and encode them in the Confluent wire format.

    A value the schema refuses (wrong type, missing required property, a property a
    closed object does not declare, a bound broken ...) or that JSON cannot carry (NaN,
    a non-str key, bytes, a lone surrogate, nesting deeper than :data:`MAX_DEPTH`)
    raises :class:`~governed_kafka.errors.SerializationError` naming the topic and the
    field path (``items[2].price``).
    """

    __slots__ = ("_checked", "_event_type", "_header", "role", "schema", "schema_id", "topic")

    def __init__(
        self, schema: JsonSchema, schema_id: int, *, topic: str, role: Role = "value"
    ) -> None:
        self.schema = schema
        self.schema_id = schema_id
        self.topic = topic
        self.role = role
        self._header = _wire.header(schema_id)
        self._checked = _Checked(schema)
        self._event_type = schema.event_types[0] if schema.event_types else None

    def encode(self, value: object) -> bytes:
        """Check ``value`` and return its wire-format bytes."""
        return self.encode_event(value)[0]

    def encode_event(self, value: object) -> tuple[bytes, str | None]:
        """Check ``value``; return its wire-format bytes and its event type."""
        check = self._checked.check
        if check is None or not check(value, 0):
            problem = self._checked.problem(value)
            if problem is not None:
                raise self._refusal(value, *problem)
        try:
            return self._header + _dumps(value), self._event_type
        except (UnicodeEncodeError, ValueError, TypeError, RecursionError):
            problem = _json_check.first_problem(value)
            path, reason = (
                (_wire.join_path(problem[0]), problem[1])
                if problem is not None
                else ("", "it cannot be written as JSON")
            )
            raise self._refusal(value, path, reason) from None

    def event_type(self, value: object) -> str | None:
        """The event type ``value`` would be sent as (the schema's title), or ``None``."""
        return self._event_type

    def _refusal(self, value: object, path: str, reason: str) -> SerializationError:
        return _wire.refusal(
            topic=self.topic,
            role=self.role,
            schema=self.schema,
            value=value,
            path=path,
            reason=reason,
        )


class JsonSchemaReader(_wire.SchemaReader):
    """Decode wire-format JSON values and check them against the schema their id names.

    The writer schema is looked up by the id in the bytes, once per id, in
    ``registry``. Bytes that are not wire format, carry an id the registry does not
    know or that is not a JSON Schema, are not UTF-8 JSON (NaN and Infinity included),
    nest deeper than :data:`MAX_DEPTH`, or hold a value the writer schema refuses raise
    :class:`~governed_kafka.errors.DeserializationError` with the bytes attached.
    """

    __slots__ = ("_checks", "_loads")

    schema_class = JsonSchema
    format_name = "JSON Schema"

    def __init__(
        self,
        registry: _wire.WriterSchemas,
        *,
        topic: str,
        reader_schema: JsonSchema | None = None,
        role: Role = "value",
    ) -> None:
        super().__init__(registry, topic=topic, reader_schema=reader_schema, role=role)
        self._checks: dict[int, tuple[_Checked, str | None]] = {}
        self._loads = json.JSONDecoder(parse_constant=_no_constant).decode

    def decode_event(
        self,
        data: bytes,
        *,
        partition: int | None = None,
        offset: int | None = None,
        event_type: str | None = None,
    ) -> tuple[Any, str | None]:
        """Decode one wire-format value; return it and its event type.

        ``event_type`` (from the record's header) is trusted when given; otherwise it
        is the writer schema's title.
        """
        schema_id = _wire.read_schema_id(data)
        if schema_id is None:
            raise self._bad(data, partition, offset, _wire.framing_problem(data))
        known = self._checks.get(schema_id)
        if known is None:
            known = self._writer(schema_id, data, partition, offset)
        checked, title = known
        try:
            value = self._loads(data[HEADER_SIZE:].decode())
        except UnicodeDecodeError as exc:
            why = f"the payload is not UTF-8 (byte {exc.start + HEADER_SIZE})"
            raise self._bad(data, partition, offset, why, schema_id) from None
        except json.JSONDecodeError as exc:
            why = f"the payload is not JSON (at character {exc.pos}: {exc.msg})"
            raise self._bad(data, partition, offset, why, schema_id) from None
        except _NotJson:
            why = "the payload holds NaN or Infinity, which are not JSON"
            raise self._bad(data, partition, offset, why, schema_id) from None
        except ValueError:
            why = "the payload holds a number too long to read"
            raise self._bad(data, partition, offset, why, schema_id) from None
        except RecursionError:
            why = "the payload nests arrays and objects too deeply to read"
            raise self._bad(data, partition, offset, why, schema_id) from None
        check = checked.check
        if check is None or not check(value, 0):
            problem = checked.problem(value)
            if problem is not None:
                path, reason = problem
                at = f" at {path!r}" if path else ""
                why = f"the value does not fit its writer schema (id {schema_id}){at}: {reason}"
                raise self._bad(data, partition, offset, why, schema_id)
        return value, event_type if event_type is not None else title

    def _writer(
        self, schema_id: int, data: bytes, partition: int | None, offset: int | None
    ) -> tuple[_Checked, str | None]:
        writer = self._writer_schema(schema_id, data, partition, offset)
        title = writer.event_types[0] if writer.event_types else None
        known = self._checks[schema_id] = (_Checked(writer), title)
        return known
