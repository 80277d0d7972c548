"""A contract's schema files, whatever their format, and the registry subjects they form.

A schema file's format is its suffix: ``.avsc`` Avro (:mod:`governed_kafka.avro`),
``.json`` JSON Schema (:mod:`governed_kafka.json_schema`), ``.proto`` Protobuf
(:mod:`governed_kafka.protobuf`). :func:`load_schema` reads any of them;
:func:`subjects` says under which registry subjects a contract's versions are
registered, by the topic's ``subject_strategy``:

- ``topic`` (the default): every ``value_schema`` version under ``<topic>-value``, the
  ``key_schema`` under ``<topic>-key``;
- ``record``: each version under the name of the event type it carries (its Avro
  record, its JSON Schema ``title``, its Protobuf message), so one topic may carry
  several event types, each its own subject with its own versions;
- ``topic_record``: the same, prefixed with the topic: ``<topic>-<event type>``.

Under the record strategies, the versions of one event type are the ``value_schema``
files that carry it, in the order listed (oldest first; the last is current).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol, Union

import attrs

from . import avro
from ._wire import Role, SchemaReader, WriterSchemas, fold_id
from .errors import ContractError

if TYPE_CHECKING:
    from .contracts import SubjectStrategy, TopicContract
    from .json_schema import JsonSchema
    from .protobuf import ProtobufSchema

__all__ = [
    "FORMATS",
    "Schema",
    "Subject",
    "Writer",
    "format_of",
    "group",
    "load_schema",
    "parse_registered",
    "reader",
    "schema_id_of",
    "subject_name",
    "subjects",
    "value_message",
    "writer",
]

#: Schema formats by file suffix, named as schema registries name them.
FORMATS: Final = {".avsc": "AVRO", ".json": "JSON", ".proto": "PROTOBUF"}

#: A parsed schema of any format.
Schema = Union[avro.AvroSchema, "JsonSchema", "ProtobufSchema"]


def format_of(path: str | Path) -> str | None:
    """``"AVRO"``, ``"JSON"`` or ``"PROTOBUF"`` by the file's suffix; ``None`` if unknown."""
    return FORMATS.get(Path(path).suffix.lower())


def load_schema(
    path: str | Path,
    *,
    root: str | Path | None = None,
    topic: str | None = None,
    key: str | None = None,
) -> Schema:
    """Read and parse a schema file of any format; errors name the file, topic and key.

    ``root`` is the folder Protobuf imports are resolved in (the contracts folder). A
    suffix other than ``.avsc``, ``.json`` or ``.proto`` is a
    :class:`~governed_kafka.errors.ContractError`.
    """
    kind = format_of(path)
    if kind == "AVRO":
        return avro.load_schema(path, topic=topic, key=key)
    if kind == "JSON":
        from . import json_schema

        return json_schema.load_schema(path, topic=topic, key=key)
    if kind == "PROTOBUF":
        from . import protobuf

        return protobuf.load_schema(path, root=root, topic=topic, key=key)
    known = ", ".join(FORMATS)
    msg = f"{path}: unknown schema format: the file name must end in one of {known}"
    raise ContractError(msg, path=str(path), topic=topic, key=key)


def parse_registered(
    schema_type: str,
    text: str,
    *,
    references: Sequence[Schema] = (),
    source: str | None = None,
) -> Schema:
    """A schema as a registry holds it: its ``schemaType`` (``AVRO`` when empty) and text.

    Protobuf schemas may be ``.proto`` text or a base64 ``FileDescriptorProto``;
    ``references`` are the schemas of their imports.
    """
    kind = (schema_type or "AVRO").upper()
    if kind == "AVRO":
        return avro.parse_schema(text, source=source)
    if kind == "JSON":
        from . import json_schema

        return json_schema.parse_schema(text, source=source)
    if kind == "PROTOBUF":
        from . import protobuf

        deps = [r for r in references if isinstance(r, protobuf.ProtobufSchema)]
        return protobuf.parse_schema(text, references=deps, source=source)
    msg = f"{source or 'registry'}: unknown schema type {schema_type!r}"
    raise ContractError(msg, path=source or "registry")


def schema_id_of(schema: Schema) -> int:
    """A deterministic schema id for any format: its fingerprint folded into 1..2**31-1."""
    return fold_id(schema.fingerprint)


def subject_name(
    topic: str,
    role: Role = "value",
    *,
    strategy: SubjectStrategy = "topic",
    record: str | None = None,
) -> str:
    """The registry subject of a topic's values or keys under ``strategy``.

    ``topic``: ``<topic>-<role>``; ``record``: ``<record>``; ``topic_record``:
    ``<topic>-<record>``, where ``record`` is the event type (record, title or message
    name) the schema carries.
    """
    if strategy == "topic":
        return f"{topic}-{role}"
    if record is None:
        msg = f"the {strategy} subject strategy needs the record name of the schema"
        raise ValueError(msg)
    return record if strategy == "record" else f"{topic}-{record}"


def value_message(schema: Schema, event_types: Sequence[str] = ()) -> str | None:
    """The event type a schema's values are named by, for subjects and dict values.

    Avro: its record (``None`` for a union or a primitive); JSON Schema: its ``title``;
    Protobuf: the first of its messages that ``event_types`` lists, else its first
    message.
    """
    if schema.schema_type == "PROTOBUF":
        listed = [t for t in event_types if t in schema.event_types]
        return listed[0] if listed else (schema.event_types[0] if schema.event_types else None)
    if schema.schema_type == "AVRO" and schema.is_union:  # type: ignore[union-attr]
        return None
    return schema.event_types[0] if schema.event_types else None


@attrs.frozen(kw_only=True)
class Subject:
    """One registry subject of a contract, with the versions it should hold."""

    #: The subject's name.
    name: str
    topic: str
    role: Role
    #: The event type it is named after (record strategies), else ``None``.
    event_type: str | None
    #: The schema versions, oldest first: the last is current.
    versions: tuple[Schema, ...] = attrs.field(repr=lambda v: f"<{len(v)} versions>")
    #: The file of each version.
    paths: tuple[Path, ...] = ()

    @property
    def current(self) -> Schema:
        """The version producers write with: the last one."""
        return self.versions[-1]


def subjects(contract: TopicContract, *, root: str | Path | None = None) -> list[Subject]:
    """The subjects a contract's schemas are registered under, values first.

    Each file is read and parsed (:func:`load_schema`); ``root`` defaults to the
    contract's ``schema_root``. Raises :class:`~governed_kafka.errors.ContractError`
    when a file does not parse or, under a record strategy, carries no single event
    type to name a subject after (an Avro union, a JSON Schema without ``title``).
    """
    folder = root if root is not None else contract.schema_root
    loaded: list[tuple[Role, Path, Schema]] = [
        ("value", p, load_schema(p, root=folder, topic=contract.name, key="value_schema"))
        for p in contract.value_schema
    ]
    if contract.key_schema is not None:
        key_file = contract.key_schema
        loaded.append(
            (
                "key",
                key_file,
                load_schema(key_file, root=folder, topic=contract.name, key="key_schema"),
            )
        )
    return group(contract, loaded)


def group(contract: TopicContract, loaded: Sequence[tuple[Role, Path, Schema]]) -> list[Subject]:
    """Parsed ``(role, file, schema)`` entries of a contract, grouped into its subjects."""
    strategy = contract.subject_strategy
    found: dict[str, tuple[str | None, Role, list[Schema], list[Path]]] = {}
    for role, path, schema in loaded:
        key = f"{role}_schema"
        record = None
        if strategy != "topic":
            record = value_message(schema, contract.event_types if role == "value" else ())
            if record is None:
                msg = (
                    f"{path}: topic {contract.name!r}: key {key!r}: subject_strategy "
                    f"{strategy!r} names each subject after the schema's record, and this "
                    f"{schema.schema_type} schema has none (an Avro union, or a JSON Schema "
                    "without 'title'); use one record per file"
                )
                raise ContractError(msg, path=str(path), topic=contract.name, key=key)
        name = subject_name(contract.name, role, strategy=strategy, record=record)
        entry = found.setdefault(name, (record, role, [], []))
        entry[2].append(schema)
        entry[3].append(path)
    return [
        Subject(
            name=name,
            topic=contract.name,
            role=role,
            event_type=record,
            versions=tuple(versions),
            paths=tuple(paths),
        )
        for name, (record, role, versions, paths) in found.items()
    ]


class Writer(Protocol):
    """What the writers of every format offer (:class:`~governed_kafka.avro.AvroWriter`,
    :class:`~governed_kafka.json_schema.JsonSchemaWriter`,
    :class:`~governed_kafka.protobuf.ProtobufWriter`)."""

    @property
    def schema(self) -> Schema:
        """The schema values are checked against and written with."""
        ...

    def encode(self, value: object) -> bytes:
        """Check ``value`` and return its wire-format bytes."""
        ...

    def encode_event(self, value: object) -> tuple[bytes, str | None]:
        """Check ``value``; return its wire-format bytes and its event type."""
        ...


def writer(
    schema: Schema,
    schema_id: int,
    *,
    topic: str,
    role: Role = "value",
    event_types: Sequence[str] = (),
) -> Writer:
    """The writer of ``schema``'s format; a Protobuf writer takes dicts of the message
    :func:`value_message` names (by ``event_types``)."""
    if isinstance(schema, avro.AvroSchema):
        return avro.AvroWriter(schema, schema_id, topic=topic, role=role)
    if schema.schema_type == "JSON":
        from .json_schema import JsonSchema, JsonSchemaWriter

        assert isinstance(schema, JsonSchema)
        return JsonSchemaWriter(schema, schema_id, topic=topic, role=role)
    from .protobuf import ProtobufSchema, ProtobufWriter

    assert isinstance(schema, ProtobufSchema)
    message = value_message(schema, event_types)
    return ProtobufWriter(schema, schema_id, topic=topic, role=role, message=message)


def reader(
    schema: Schema,
    registry: WriterSchemas,
    *,
    topic: str,
    role: Role = "value",
    others: Sequence[Schema] = (),
) -> SchemaReader:
    """The reader of ``schema``'s format: Avro values resolved to ``schema``, Protobuf
    values decoded into its classes. ``others`` are the current schemas of a topic's
    other event types (record subject strategies), used for the values they carry."""
    if isinstance(schema, avro.AvroSchema):
        avro_others = [s for s in others if isinstance(s, avro.AvroSchema)]
        return avro.AvroReader(
            registry, topic=topic, reader_schema=schema, role=role, reader_schemas=avro_others
        )
    if schema.schema_type == "JSON":
        from .json_schema import JsonSchema, JsonSchemaReader

        assert isinstance(schema, JsonSchema)
        return JsonSchemaReader(registry, topic=topic, reader_schema=schema, role=role)
    from .protobuf import ProtobufReader, ProtobufSchema

    assert isinstance(schema, ProtobufSchema)
    proto_others = [s for s in others if isinstance(s, ProtobufSchema)]
    return ProtobufReader(
        registry, topic=topic, reader_schema=schema, role=role, reader_schemas=proto_others
    )
