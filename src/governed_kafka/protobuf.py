"""Protobuf: ``.proto`` schemas, values checked with field paths, the Confluent wire format.

A schema (:class:`ProtobufSchema`) is one ``.proto`` file compiled at run time (by the
protoc that ``grpcio-tools`` bundles; no generated code is needed) together with the
files it imports, which must live in the contracts folder (the well-known
``google/protobuf/*.proto`` types excepted). A :class:`ProtobufWriter` checks every
value before encoding it, and a :class:`ProtobufReader` decodes what any
Confluent-compatible producer wrote into message instances of the contract's schema.

Wire format (Confluent): one magic byte ``0``, the schema id as a 4-byte big-endian
unsigned integer, the *message-index list* that says which message of the file the
value is (zig-zag varints: the count, then each index along the nesting; the first
top-level message, ``[0]``, is the single byte ``0``), then the Protobuf encoding.

Values are a message instance of one of the file's messages, or a ``dict`` for the
writer's default message (field names as in the ``.proto`` file; nested messages as
dicts or instances, repeated fields as lists, maps as dicts, enums by name or
number, ``bytes`` fields as ``bytes``). The *event type* of a value is the full name
of its message (``"payments.OrderCreated"``).

Needs the ``[protobuf]`` extra (``protobuf`` and ``grpcio-tools``).
"""

from __future__ import annotations

import ast
import base64
import binascii
import contextlib
import hashlib
import importlib
import re
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Final

import attrs

from . import _proto_check, _wire
from ._text import read_schema_file
from ._wire import HEADER_SIZE, MAGIC_BYTE, Role
from .errors import ContractError, SerializationError

__all__ = [
    "HEADER_SIZE",
    "MAGIC_BYTE",
    "MAX_DEPTH",
    "MAX_INDEXES",
    "ProtobufReader",
    "ProtobufSchema",
    "ProtobufWriter",
    "decode_indexes",
    "encode_indexes",
    "load_schema",
    "parse_schema",
    "schema_id_of",
]

#: Deepest nesting of messages, lists and maps a dict value may have.
MAX_DEPTH: Final = _proto_check.MAX_DEPTH

#: Longest message-index list a reader accepts (messages nested this deep in a file).
MAX_INDEXES: Final = 32

#: Files every schema may import without shipping them: the protobuf runtime has them.
_WELL_KNOWN: Final = "google/protobuf/"

_lock = threading.Lock()


def _missing_extra() -> ImportError:
    return ImportError(
        "Protobuf schemas need the protobuf runtime and grpcio-tools: "
        "pip install 'governed-kafka[protobuf]'"
    )


# --------------------------------------------------------------------------- the index list


def _zigzag(value: int) -> int:
    return (value << 1) ^ (value >> 63)


def _varint(value: int) -> bytes:
    out = bytearray()
    while value & ~0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_indexes(indexes: Sequence[int]) -> bytes:
    """The message-index list as the wire format writes it (``[0]`` is ``b"\\x00"``)."""
    if list(indexes) == [0]:
        return b"\x00"
    return _varint(_zigzag(len(indexes))) + b"".join(_varint(_zigzag(i)) for i in indexes)


def decode_indexes(data: bytes, start: int) -> tuple[list[int], int]:
    """Read a message-index list at ``start``; return it and the offset after it.

    Raises :class:`ValueError` for a truncated list, an overlong varint, a negative
    count or index, or more than :data:`MAX_INDEXES` indexes.
    """
    position = start

    def read() -> int:
        nonlocal position
        value = shift = 0
        while True:
            if position >= len(data):
                msg = "the message-index list is cut short"
                raise ValueError(msg)
            byte = data[position]
            position += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return (value >> 1) ^ -(value & 1)
            shift += 7
            if shift > 63:
                msg = "a message index is not a varint of at most 10 bytes"
                raise ValueError(msg)

    count = read()
    if count == 0:
        return [0], position
    if not 0 < count <= MAX_INDEXES:
        msg = f"the message-index list claims {count} indexes (at most {MAX_INDEXES} are read)"
        raise ValueError(msg)
    indexes = [read() for _ in range(count)]
    if any(i < 0 for i in indexes):
        msg = "a message index is negative"
        raise ValueError(msg)
    return indexes, position


# --------------------------------------------------------------------------- the schema


@attrs.frozen(kw_only=True, eq=False)
class ProtobufSchema:
    """One compiled ``.proto`` file and the files it imports.

    Two schemas are equal when their file descriptors (and those of their imports)
    are byte for byte the same.
    """

    #: What a schema registry calls this format.
    schema_type: ClassVar[str] = "PROTOBUF"

    #: The file's name as imports spell it (its path below the contracts folder).
    name: str
    #: The serialized ``FileDescriptorProto``, base64: what is registered, as
    #: confluent-kafka's serializer registers it.
    text: str
    #: SHA-256 of the file's descriptor and of its imports' fingerprints.
    fingerprint: bytes
    #: The file it came from, when it came from one.
    source: str | None = None
    #: Full names of every message of the file, in index order, nested ones after
    #: their parent.
    event_types: tuple[str, ...] = ()
    #: The files it imports, other than the well-known types, in import order.
    dependencies: tuple[ProtobufSchema, ...] = ()
    pool: Any = attrs.field(repr=False)
    descriptor: Any = attrs.field(repr=False)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ProtobufSchema):
            return NotImplemented
        return self.fingerprint == other.fingerprint

    def __hash__(self) -> int:
        return hash(self.fingerprint)

    @property
    def file(self) -> bytes:
        """The serialized ``FileDescriptorProto`` of the file."""
        return bytes(self.descriptor.serialized_pb)

    @property
    def references(self) -> tuple[ProtobufSchema, ...]:
        """The schemas a registry must hold first: every import, recursively, deepest first."""
        seen: dict[str, ProtobufSchema] = {}

        def visit(schema: ProtobufSchema) -> None:
            for dep in schema.dependencies:
                if dep.name not in seen:
                    visit(dep)
                    seen[dep.name] = dep

        visit(self)
        return tuple(seen.values())

    @property
    def default_message(self) -> str:
        """The message a dict value is, unless the writer is told otherwise: the first."""
        if not self.event_types:
            msg = f"{self} defines no message"
            raise LookupError(msg)
        return self.event_types[0]

    def message(self, name: str) -> Any:
        """The descriptor of message ``name`` (a full name); :class:`KeyError` if absent."""
        if name not in self.event_types:
            raise KeyError(name)
        return self.pool.FindMessageTypeByName(name)

    def message_class(self, name: str) -> Any:
        """The message class of ``name``, built from this schema's own descriptors."""
        from google.protobuf import message_factory

        return message_factory.GetMessageClass(self.message(name))

    def indexes(self, name: str) -> list[int]:
        """The message-index list of message ``name``."""
        descriptor = self.message(name)
        path: list[int] = []
        while descriptor.containing_type is not None:
            parent = descriptor.containing_type
            path.insert(0, list(parent.nested_types).index(descriptor))
            descriptor = parent
        path.insert(0, list(self.descriptor.message_types_by_name).index(descriptor.name))
        return path

    def message_at(self, indexes: Sequence[int]) -> str | None:
        """The full name of the message an index list points to, or ``None``."""
        level = list(self.descriptor.message_types_by_name.values())
        found = None
        for index in indexes:
            if not 0 <= index < len(level):
                return None
            found = level[index]
            level = list(found.nested_types)
        return None if found is None else str(found.full_name)

    def __str__(self) -> str:
        return self.source or self.name


def _messages(descriptors: Any) -> Iterator[str]:
    for descriptor in descriptors:
        if descriptor.GetOptions().map_entry:
            continue  # the entry type protoc makes for a map field: no value is one
        yield descriptor.full_name
        yield from _messages(descriptor.nested_types)


def from_descriptor(
    file: bytes,
    *,
    dependencies: Sequence[ProtobufSchema] = (),
    source: str | None = None,
    name: str | None = None,
) -> ProtobufSchema:
    """A schema from a serialized ``FileDescriptorProto`` and the schemas it imports.

    ``name`` renames the file (a registry reference names it). Raises
    :class:`ValueError` when the bytes are no descriptor or it cannot be built
    (an import missing, a type defined twice).
    """
    try:
        from google.protobuf import descriptor_pb2, descriptor_pool
        from google.protobuf.message import DecodeError
    except ImportError as exc:  # pragma: no cover - the extra is missing
        raise _missing_extra() from exc
    proto = descriptor_pb2.FileDescriptorProto()
    try:
        proto.ParseFromString(file)
    except DecodeError:
        msg = "not a serialized FileDescriptorProto"
        raise ValueError(msg) from None
    if name is not None and proto.name != name:
        proto.name = name
        file = proto.SerializeToString()
    pool = descriptor_pool.DescriptorPool()
    added: set[str] = set()

    def add(serialized: bytes, file_name: str) -> None:
        if file_name not in added:
            added.add(file_name)
            pool.AddSerializedFile(serialized)

    def add_well_known(file_name: str) -> None:
        if file_name.startswith(_WELL_KNOWN) and file_name not in added:
            module = file_name.removesuffix(".proto").replace("/", ".") + "_pb2"
            # Importing the module puts the file into the default pool; a file the
            # runtime does not ship is not found by the lookup below.
            with contextlib.suppress(ImportError):
                importlib.import_module(module)
            well_known = descriptor_pool.Default().FindFileByName(file_name)
            for dep in well_known.dependencies:
                add_well_known(dep.name)
            add(well_known.serialized_pb, file_name)

    def add_schema(schema: ProtobufSchema) -> None:
        for dep in schema.dependencies:
            add_schema(dep)
        for dep_name in schema.descriptor.dependencies:
            add_well_known(dep_name.name)
        add(schema.file, schema.name)

    try:
        for dep in dependencies:
            add_schema(dep)
        for dep_name in proto.dependency:
            add_well_known(dep_name)
        add(file, proto.name)
        descriptor = pool.FindFileByName(proto.name)
    except (TypeError, KeyError, ValueError) as exc:
        msg = f"the descriptor cannot be built: {type(exc).__name__}"
        raise ValueError(msg) from None
    digest = hashlib.sha256(file)
    for dep in dependencies:
        digest.update(dep.fingerprint)
    return ProtobufSchema(
        name=proto.name,
        text=base64.standard_b64encode(file).decode("ascii"),
        fingerprint=digest.digest(),
        source=source,
        event_types=tuple(_messages(descriptor.message_types_by_name.values())),
        dependencies=tuple(dependencies),
        pool=pool,
        descriptor=descriptor,
    )


# --------------------------------------------------------------------------- compiling


def _well_known_root() -> str:
    import grpc_tools

    return str(Path(grpc_tools.__file__).parent / "_proto")


#: What protoc's messages quote from the file (names, tokens): never repeated.
_QUOTED: Final = re.compile(r'"[^"]*"|\'[^\']*\'')


def _compile(name: str, root: Path) -> list[tuple[str, bytes]]:
    """``[(file name, serialized FileDescriptorProto)]``, imports first, ``name`` last.

    Raises :class:`_ProtocFailed` with protoc's errors, their quotes removed.
    """
    try:
        from grpc_tools import _protoc_compiler
    except ImportError as exc:
        raise _missing_extra() from exc
    with _lock, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            generated = _protoc_compiler.get_protos(
                name.encode(), [str(root).encode(), _well_known_root().encode()]
            )
        except _protoc_compiler.ProtocErrors as exc:
            raise _ProtocFailed(
                [
                    (
                        e.filename.decode("utf-8", "replace"),
                        e.line + 1,
                        e.column + 1,
                        _QUOTED.sub("(a name from the file)", e.message.decode("utf-8", "replace")),
                    )
                    for e in exc.errors()
                ]
            ) from None
    files = []
    for module, code in generated:
        serialized = _serialized_file(code)
        if serialized is None:  # pragma: no cover - depends on grpcio-tools' code generator
            msg = f"cannot read the descriptor protoc generated for {module.decode()}"
            raise RuntimeError(msg)
        files.append(serialized)
    from google.protobuf import descriptor_pb2

    named = []
    for serialized in files:
        proto = descriptor_pb2.FileDescriptorProto.FromString(serialized)
        named.append((proto.name, serialized))
    return named


def _serialized_file(code: bytes) -> bytes | None:
    """The descriptor bytes a generated ``_pb2`` module adds to its pool (read, not run)."""
    tree = ast.parse(code)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "AddSerializedFile"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, bytes)
        ):
            return node.args[0].value
    return None


class _ProtocFailed(Exception):
    def __init__(self, errors: list[tuple[str, int, int, str]]) -> None:
        super().__init__(errors)
        self.errors = errors


def load_schema(
    path: str | Path,
    *,
    root: str | Path | None = None,
    topic: str | None = None,
    key: str | None = None,
) -> ProtobufSchema:
    """Compile a ``.proto`` file; imports are resolved below ``root`` and confined to it.

    ``root`` is the contracts folder (default: the file's own folder); imports name
    files by their path below it (``import "schemas/common/money.proto";``), and an
    import that leads outside it (a symlink included) is refused. Errors raise
    :class:`~governed_kafka.errors.ContractError` naming the file, the line and column
    and what protoc expected, never what the file holds.
    """
    source = str(path)
    file = Path(path).resolve()
    folder = Path(root).resolve() if root is not None else file.parent

    def refused(reason: str) -> ContractError:
        msg = f"{source}: not a valid Protobuf schema: {reason}"
        return ContractError(msg, path=source, topic=topic, key=key)

    if not file.is_relative_to(folder):
        raise refused(f"the file is outside the folder its imports are resolved in ({folder})")
    read_schema_file(path, topic=topic, key=key, kind="UTF-8 text")
    name = file.relative_to(folder).as_posix()
    try:
        compiled = _compile(name, folder)
    except _ProtocFailed as exc:
        shown = "; ".join(
            f"{'' if f == name else f + ' '}line {line} column {column}: {message}"
            for f, line, column, message in exc.errors[:5]
        )
        raise refused(shown) from None
    by_name = dict(compiled)
    for dep_name in by_name:
        if dep_name.startswith(_WELL_KNOWN) or dep_name == name:
            continue
        if not (folder / dep_name).resolve().is_relative_to(folder):
            raise refused(
                f"an import leads outside the contracts folder ({folder}); imported "
                "files must live in that folder or below it"
            )
    return _assemble(name, by_name, source=source, sources={name: source}, folder=folder)


def _assemble(
    name: str,
    files: Mapping[str, bytes],
    *,
    source: str | None,
    sources: Mapping[str, str],
    folder: Path | None,
) -> ProtobufSchema:
    from google.protobuf import descriptor_pb2

    built: dict[str, ProtobufSchema] = {}

    def build(file_name: str) -> ProtobufSchema:
        if file_name in built:
            return built[file_name]
        serialized = files[file_name]
        proto = descriptor_pb2.FileDescriptorProto.FromString(serialized)
        deps = [build(d) for d in proto.dependency if not d.startswith(_WELL_KNOWN)]
        shown = sources.get(file_name) or (str(folder / file_name) if folder else file_name)
        built[file_name] = from_descriptor(serialized, dependencies=deps, source=shown)
        return built[file_name]

    schema = build(name)
    return attrs.evolve(schema, source=source) if source is not None else schema


def parse_schema(
    schema: str,
    *,
    name: str = "schema.proto",
    imports: Mapping[str, str] | None = None,
    references: Sequence[ProtobufSchema] = (),
    source: str | None = None,
    topic: str | None = None,
    key: str | None = None,
) -> ProtobufSchema:
    """Parse a schema given as ``.proto`` text, or as a base64 ``FileDescriptorProto``
    (the form confluent-kafka registers, and registries hand out as ``serialized``).

    ``.proto`` text is compiled in a scratch folder as file ``name``, with ``imports``
    (file name to ``.proto`` text) beside it. A descriptor imports ``references``
    (the schemas of its imports). Errors raise
    :class:`~governed_kafka.errors.ContractError`, as :func:`load_schema`.
    """
    where = source or name
    stripped = schema.strip()
    if stripped and not any(c.isspace() for c in stripped):
        try:
            raw = base64.b64decode(stripped, validate=True)
        except (binascii.Error, ValueError):
            raw = None
        if raw is not None:
            try:
                return from_descriptor(raw, dependencies=references, source=source)
            except ValueError as exc:
                msg = f"{where}: not a valid Protobuf schema: {exc}"
                raise ContractError(msg, path=where, topic=topic, key=key) from None
    with tempfile.TemporaryDirectory(prefix="governed-kafka-proto-") as scratch:
        folder = Path(scratch)
        for file_name, text in {**(imports or {}), name: schema}.items():
            target = (folder / file_name).resolve()
            if not target.is_relative_to(folder.resolve()):
                msg = f"{where}: import name {file_name!r} leads outside the schema's folder"
                raise ContractError(msg, path=where, topic=topic, key=key)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        loaded = load_schema(folder / name, root=folder, topic=topic, key=key)
    return attrs.evolve(loaded, source=source)


def schema_id_of(schema: ProtobufSchema) -> int:
    """A deterministic schema id: the schema's SHA-256 folded into 1..2**31-1."""
    return _wire.fold_id(schema.fingerprint)


# --------------------------------------------------------------------------- writer


class ProtobufWriter:
    """Check values against one ``.proto`` schema and encode them in the Confluent wire
    format.

    A value is a message instance of one of the schema's messages, or a dict for
    ``message`` (default: the schema's first message). A dict with an unknown field,
    a value of the wrong type or range, two fields of one ``oneof``, a missing proto2
    ``required`` field, or nesting deeper than :data:`MAX_DEPTH` raises
    :class:`~governed_kafka.errors.SerializationError` naming the topic and the field
    path (``items[2].price``); so does a message instance of another schema's type.
    """

    __slots__ = (
        "_check",
        "_classes",
        "_default",
        "_headers",
        "message",
        "role",
        "schema",
        "schema_id",
        "topic",
    )

    def __init__(
        self,
        schema: ProtobufSchema,
        schema_id: int,
        *,
        topic: str,
        role: Role = "value",
        message: str | None = None,
    ) -> None:
        self.schema = schema
        self.schema_id = schema_id
        self.topic = topic
        self.role = role
        self.message = message or schema.default_message
        if self.message not in schema.event_types:
            msg = f"{schema} has no message {self.message!r}"
            raise ValueError(msg)
        header = _wire.header(schema_id)
        #: Per message full name: its class, and its wire-format prefix.
        self._classes: dict[str, Any] = {}
        self._headers: dict[str, bytes] = {}
        for name in schema.event_types:
            self._classes[name] = schema.message_class(name)
            self._headers[name] = header + encode_indexes(schema.indexes(name))
        self._default = self._classes[self.message]
        self._check = _proto_check.compile_message(self._default.DESCRIPTOR, {})

    def encode(self, value: object) -> bytes:
        """Check ``value`` and return its wire-format bytes."""
        return self.encode_event(value)[0]

    def encode_event(self, value: object) -> tuple[bytes, str | None]:
        """Check ``value``; return its wire-format bytes and its event type."""
        if type(value) is dict:
            return self._encode_dict(value)
        cls = type(value)
        name = getattr(getattr(value, "DESCRIPTOR", None), "full_name", None)
        if name is None or (self._classes.get(name) is not cls and not self._same_file(value)):
            raise self._not_ours(value)
        assert isinstance(name, str)
        if not value.IsInitialized():  # type: ignore[attr-defined]
            missing = value.FindInitializationErrors()  # type: ignore[attr-defined]
            raise self._refusal(value, missing[0] if missing else "", "required field is missing")
        return self._headers[name] + value.SerializeToString(), name  # type: ignore[attr-defined]

    def _encode_dict(self, value: dict[str, Any]) -> tuple[bytes, str | None]:
        if not self._check(value, 0):
            self._explain(value)
        try:
            message = self._default(**{k: v for k, v in value.items() if v is not None})
            data = message.SerializeToString()
        except Exception as exc:
            self._explain(value)  # a lone surrogate, found by the slow walk
            msg = (
                f"topic {self.topic!r}: the {self.role} cannot be encoded with schema "
                f"{self.schema}: {type(exc).__name__}: {exc}; nothing was sent"
            )
            raise SerializationError(msg, topic=self.topic, field=None, value=value) from None
        return self._headers[self.message] + data, self.message

    def _explain(self, value: dict[str, Any]) -> None:
        """Raise the refusal of ``value``, with its path, if the slow walk finds one."""
        problem = _proto_check.message_problem(self._default.DESCRIPTOR, value, "", 0)
        if problem is not None:
            raise self._refusal(value, *problem)

    def _same_file(self, value: object) -> bool:
        descriptor = value.DESCRIPTOR  # type: ignore[attr-defined]
        return bool(
            descriptor.full_name in self._classes
            and descriptor.file.serialized_pb == self.schema.descriptor.serialized_pb
        )

    def event_type(self, value: object) -> str | None:
        """The event type ``value`` would be sent as: its message's full name."""
        if type(value) is dict:
            return self.message
        name = getattr(getattr(value, "DESCRIPTOR", None), "full_name", None)
        return name if name in self._classes else None

    def _not_ours(self, value: object) -> SerializationError:
        descriptor = getattr(value, "DESCRIPTOR", None)
        if descriptor is not None and getattr(descriptor, "full_name", None) in self._classes:
            reason = (
                f"a {descriptor.full_name} message built from another version of the schema; "
                f"build it from {self.schema} (ProtobufSchema.message_class) or pass a dict"
            )
        elif descriptor is not None:
            reason = f"message {descriptor.full_name} is not a message of {self.schema}"
        else:
            got = _proto_check.shown_value(value)
            reason = f"expected a dict or a message of {self.schema}, got {got}"
            if isinstance(value, (bytes, bytearray, memoryview)):
                reason += (
                    "; a schema topic takes the value itself, not pre-encoded bytes, so that "
                    "every value is checked"
                )
        return self._refusal(value, "", reason)

    def _refusal(self, value: object, path: str, reason: str) -> SerializationError:
        return _wire.refusal(
            topic=self.topic,
            role=self.role,
            schema=self.schema,
            value=value,
            path=path,
            reason=reason,
        )


# --------------------------------------------------------------------------- reader


class ProtobufReader(_wire.SchemaReader):
    """Decode wire-format Protobuf values into message instances.

    The writer schema is looked up by the id in the bytes, once per id, in
    ``registry``, and the message-index list names the message. The value is decoded
    with the class of the same message in ``reader_schema`` (the contract's current
    schema) when it has one, else in the first of ``reader_schemas`` (the current
    schemas of a topic's other event types) that has it, so consumers see one set of
    classes whatever version wrote the value; fields unknown to it are kept as unknown
    fields. Bytes that are
    not wire format, carry an unknown id or an id of another format, an index list
    that names no message, or a payload that does not parse (nesting beyond the
    runtime's recursion limit included) raise
    :class:`~governed_kafka.errors.DeserializationError` with the bytes attached.
    """

    __slots__ = ("_classes", "_parsers", "_targets")

    schema_class = ProtobufSchema
    format_name = "Protobuf"
    reader_schema: ProtobufSchema | None

    def __init__(
        self,
        registry: _wire.WriterSchemas,
        *,
        topic: str,
        reader_schema: ProtobufSchema | None = None,
        role: Role = "value",
        reader_schemas: Sequence[ProtobufSchema] = (),
    ) -> None:
        super().__init__(registry, topic=topic, reader_schema=reader_schema, role=role)
        #: The schemas whose classes values are decoded into, by message: ``reader_schema``
        #: first, then the current schemas of a topic's other event types.
        self._targets: dict[str, ProtobufSchema] = {}
        for schema in (*((reader_schema,) if reader_schema else ()), *reader_schemas):
            for name in schema.event_types:
                self._targets.setdefault(name, schema)
        #: ``(schema id, the index-list bytes) -> (class, full name)``
        self._parsers: dict[tuple[int, bytes], tuple[Callable[[bytes], Any], str]] = {}
        self._classes: dict[str, Any] = {}

    def decode_event(
        self,
        data: bytes,
        *,
        partition: int | None = None,
        offset: int | None = None,
        event_type: str | None = None,
    ) -> tuple[Any, str | None]:
        """Decode one wire-format value; return it and its event type (its message's name).

        ``event_type`` (from the record's header) is trusted when given.
        """
        schema_id = _wire.read_schema_id(data)
        if schema_id is None:
            raise self._bad(data, partition, offset, _wire.framing_problem(data))
        # The common index list, [0], is one zero byte: found without reading varints.
        if len(data) > HEADER_SIZE and data[HEADER_SIZE] == 0:
            index_key, start = b"\x00", HEADER_SIZE + 1
        else:
            try:
                _, start = decode_indexes(data, HEADER_SIZE)
            except ValueError as exc:
                why = f"{exc} (schema id {schema_id})"
                raise self._bad(data, partition, offset, why, schema_id) from None
            index_key = bytes(data[HEADER_SIZE:start])
        known = self._parsers.get((schema_id, index_key))
        if known is None:
            known = self._parser(schema_id, index_key, data, partition, offset)
        parse, name = known
        try:
            value = parse(data[start:])
        except Exception as exc:  # DecodeError, RecursionError, RuntimeError from the runtime
            why = (
                f"the Protobuf payload does not parse as {name} (schema id {schema_id}): "
                f"{type(exc).__name__}"
            )
            raise self._bad(data, partition, offset, why, schema_id) from None
        return value, event_type if event_type is not None else name

    def _parser(
        self,
        schema_id: int,
        index_key: bytes,
        data: bytes,
        partition: int | None,
        offset: int | None,
    ) -> tuple[Callable[[bytes], Any], str]:
        writer = self._writer_schema(schema_id, data, partition, offset)
        indexes, _ = decode_indexes(index_key, 0)
        name = writer.message_at(indexes)
        if name is None:
            why = f"message index {indexes} names no message of schema id {schema_id}"
            raise self._bad(data, partition, offset, why, schema_id)
        target = self._targets.get(name)
        if target is not None:
            cls = self._classes.get(name) or target.message_class(name)
        else:
            cls = writer.message_class(name)
        self._classes.setdefault(name, cls)
        known = self._parsers[(schema_id, index_key)] = (cls.FromString, name)
        return known
