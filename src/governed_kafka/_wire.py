"""What every schema format shares: the Confluent wire-format header, ids, paths, errors.

Every value of a schema topic starts with the magic byte ``0`` and the schema id as a
4-byte big-endian unsigned integer; Protobuf values then carry their message-index
list. Avro (:mod:`governed_kafka.avro`), JSON Schema (:mod:`governed_kafka.json_schema`)
and Protobuf (:mod:`governed_kafka.protobuf`) build on the helpers here, so that their
errors read alike.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any, ClassVar, Final, Literal, Protocol, runtime_checkable

from .errors import DeserializationError, SerializationError

__all__ = [
    "HEADER_SIZE",
    "MAGIC_BYTE",
    "Role",
    "SchemaReader",
    "WriterSchemas",
    "bad_bytes",
    "field_path",
    "fold_id",
    "framing_problem",
    "header",
    "join_path",
    "read_schema_id",
    "refusal",
]

#: First byte of every value in the Confluent wire format.
MAGIC_BYTE: Final = 0

#: Magic byte plus the 4-byte schema id.
HEADER_SIZE: Final = 5

Role = Literal["value", "key"]

_HEADER: Final = struct.Struct(">bI")


def header(schema_id: int) -> bytes:
    """The 5-byte wire-format header of ``schema_id``."""
    if not 0 <= schema_id <= 0xFFFFFFFF:
        msg = f"schema id {schema_id} does not fit the wire format's 4 bytes"
        raise ValueError(msg)
    return bytes((MAGIC_BYTE,)) + schema_id.to_bytes(4, "big")


def fold_id(fingerprint: bytes) -> int:
    """A deterministic schema id: a SHA-256 ``fingerprint`` folded into 1..2**31-1."""
    return int.from_bytes(fingerprint[:8], "big") % (2**31 - 1) + 1


def read_schema_id(data: object) -> int | None:
    """The schema id in ``data``'s header, or ``None`` when it is not wire format."""
    try:
        magic, schema_id = _HEADER.unpack_from(data)  # type: ignore[arg-type]
    except (struct.error, TypeError):
        return None
    return int(schema_id) if magic == MAGIC_BYTE else None


def framing_problem(data: object) -> str:
    """Why ``data`` has no wire-format header."""
    if not isinstance(data, (bytes, bytearray)):
        return f"expected bytes, got {type(data).__name__}"
    if len(data) < HEADER_SIZE:
        return f"{len(data)} bytes is shorter than the {HEADER_SIZE}-byte wire-format header"
    return f"magic byte is {data[0]}, not {MAGIC_BYTE}: not Confluent wire format"


def join_path(steps: Iterable[str | int]) -> str:
    """``("items", 2, "price")`` as ``items[2].price``."""
    path = ""
    for step in steps:
        if isinstance(step, int):
            path += f"[{step}]"
        else:
            path = f"{path}.{step}" if path else str(step)
    return path


def field_path(role: Role, path: str) -> str:
    """A field path as errors give it: ``value``/``key`` for the whole, ``key.x`` in a key."""
    if role == "value":
        return path or "value"
    if not path:
        return "key"
    return f"key{path}" if path.startswith("[") else f"key.{path}"


def refusal(
    *, topic: str, role: Role, schema: object, value: object, path: str, reason: str
) -> SerializationError:
    """The error of a value that does not fit ``schema``, naming the field at ``path``."""
    field = field_path(role, path)
    where = f"field {field!r}" if path else f"the {role}"
    msg = f"topic {topic!r}: {where} does not fit schema {schema}: {reason}; nothing was sent"
    return SerializationError(msg, topic=topic, field=field, value=value)


def bad_bytes(
    *,
    topic: str,
    role: Role,
    data: object,
    partition: int | None,
    offset: int | None,
    why: str,
    schema_id: int | None = None,
) -> DeserializationError:
    """The error of bytes that cannot be decoded, carrying them untouched."""
    where = topic
    if partition is not None:
        where += f"[{partition}]"
    if offset is not None:
        where += f"@{offset}"
    msg = f"{role} of {where} cannot be decoded: {why}"
    raw = bytes(data) if isinstance(data, (bytes, bytearray, memoryview)) else None
    return DeserializationError(
        msg, topic=topic, partition=partition, offset=offset, data=raw, schema_id=schema_id
    )


@runtime_checkable
class WriterSchemas(Protocol):
    """Where a reader finds a writer's schema by the id in the bytes.

    The one call a reader makes of a schema registry: every
    :class:`~governed_kafka.registry.SchemaRegistry` is one.
    """

    def schema(self, schema_id: int) -> Any:
        """The schema with id ``schema_id``; raises :class:`LookupError` if there is none."""
        ...


class SchemaReader:
    """What the readers of every format share: the registry their writer schemas come
    from, the topic and role their errors name, and those errors."""

    __slots__ = ("reader_schema", "registry", "role", "topic")

    #: The schema class the format reads, and its name in messages (set by each format).
    schema_class: ClassVar[type]
    format_name: ClassVar[str]

    def __init__(
        self,
        registry: WriterSchemas,
        *,
        topic: str,
        reader_schema: Any = None,
        role: Role = "value",
    ) -> None:
        self.registry = registry
        self.topic = topic
        self.reader_schema = reader_schema
        self.role = role

    def decode(
        self, data: bytes, *, partition: int | None = None, offset: int | None = None
    ) -> Any:
        """Decode one wire-format value."""
        return self.decode_event(data, partition=partition, offset=offset)[0]

    def decode_event(
        self,
        data: bytes,
        *,
        partition: int | None = None,
        offset: int | None = None,
        event_type: str | None = None,
    ) -> tuple[Any, str | None]:
        """Decode one wire-format value; return it and its event type."""
        raise NotImplementedError

    def _writer_schema(
        self, schema_id: int, data: object, partition: int | None, offset: int | None
    ) -> Any:
        """The schema ``schema_id`` names, if the registry has it and it is of this format."""
        try:
            writer = self.registry.schema(schema_id)
        except LookupError as exc:
            why = f"schema id {schema_id} is not in the schema registry"
            raise self._bad(data, partition, offset, why, schema_id) from exc
        if not isinstance(writer, self.schema_class):
            why = (
                f"schema id {schema_id} is a {writer.schema_type} schema, and this topic "
                f"carries {self.format_name} values"
            )
            raise self._bad(data, partition, offset, why, schema_id)
        return writer

    def _bad(
        self,
        data: object,
        partition: int | None,
        offset: int | None,
        why: str,
        schema_id: int | None = None,
    ) -> DeserializationError:
        return bad_bytes(
            topic=self.topic,
            role=self.role,
            data=data,
            partition=partition,
            offset=offset,
            why=why,
            schema_id=schema_id,
        )
