"""Schema compatibility rules: NONE, BACKWARD, FORWARD, FULL and their ``_TRANSITIVE`` forms.

The meaning is the schema registry's:

- ``BACKWARD``: the new schema can read data written with the previous one (consumers
  upgrade first);
- ``FORWARD``: the previous schema can read data written with the new one (producers
  upgrade first);
- ``FULL``: both;
- ``..._TRANSITIVE``: against every earlier version, not just the latest;
- ``NONE``: no check.

Whether an Avro reader schema can read a writer schema is decided by the ``avro``
package's ``avro.compatibility`` checker; this module only chooses which pairs to ask
about and says which field broke which mode. JSON Schema and Protobuf versions are
held to a documented subset of the registry's rules, offline (see
``governed_kafka._json_compat`` and ``governed_kafka._proto_compat``, and
``docs/schemas.md``): what the subset does not cover only a registry catches. Two
versions of different formats are always incompatible. It also holds the schema checks
of ``lint`` (:func:`check_contract`).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import avro.compatibility as _avro_compat
import avro.schema as _avro_schema

from . import _avro_validate, _json_compat, _proto_compat
from ._wire import Role
from .avro import AvroSchema
from .errors import ContractError
from .policy import COMPATIBILITY_MODES, Compatibility, Policy, Violation
from .schemas import Schema, Subject, group, load_schema

if TYPE_CHECKING:
    from .contracts import Catalog, TopicContract

__all__ = [
    "Incompatibility",
    "check_catalog",
    "check_contract",
    "check_versions",
    "incompatibilities",
    "mode_of",
]


@attrs.frozen(kw_only=True)
class Incompatibility:
    """One reason why ``reader`` cannot read what ``writer`` wrote."""

    #: Path of the field involved (``items[].price_cents``), or ``""`` for the whole value.
    field: str
    #: What the checker found (``reader type: string not compatible with writer type: long``).
    message: str
    #: The compatibility mode that was broken.
    mode: Compatibility
    reader: Schema = attrs.field(repr=str)
    writer: Schema = attrs.field(repr=str)

    def __str__(self) -> str:
        where = f"field {self.field!r}" if self.field else "the top-level schema"
        return (
            f"{self.mode}: {where}: a reader with {self.reader} cannot read data written "
            f"with {self.writer}: {self.message}"
        )


def mode_of(contract: TopicContract, policy: Policy) -> Compatibility:
    """The compatibility mode of a topic: its own, or the policy's default."""
    return contract.compatibility or policy.default_compatibility


@functools.lru_cache(maxsize=256)
def _avro(text: str) -> _avro_schema.Schema:
    return _avro_schema.parse(text)


def _check(reader: _avro_schema.Schema, writer: _avro_schema.Schema) -> Any:
    checker = _avro_compat.ReaderWriterCompatibilityChecker()  # type: ignore[no-untyped-call]
    return checker.get_compatibility(reader, writer)


def _compatible(reader: _avro_schema.Schema, writer: _avro_schema.Schema) -> bool:
    result = _check(reader, writer)
    return result.compatibility is _avro_compat.SchemaCompatibilityType.compatible


def _messages(reader: _avro_schema.Schema, writer: _avro_schema.Schema) -> str:
    result = _check(reader, writer)
    return "; ".join(sorted(result.messages)) or "incompatible"


def _problems(  # noqa: PLR0912 - one branch per composite Avro type
    reader: Any, writer: Any, path: str
) -> Iterator[tuple[str, str]]:
    """Locate incompatibilities field by field; every verdict is the checker's.

    The checker reports positions as indices into the schema (``/fields/5/type``); this
    walk asks it about each field pair in turn so that the report can name the field.
    """
    if _compatible(reader, writer):
        return
    found = False
    if reader.type == writer.type == "record":
        for field in reader.fields:
            counterpart = _avro_compat.lookup_writer_field(writer, field)
            name = f"{path}.{field.name}" if path else field.name
            if counterpart is None:
                if not field.has_default:
                    found = True
                    yield (
                        name,
                        f"field {field.name!r} is missing on the writer's side and has no "
                        "default on the reader's",
                    )
                continue
            for problem in _problems(field.type, counterpart.type, name):
                found = True
                yield problem
    elif reader.type == writer.type == "array":
        for problem in _problems(reader.items, writer.items, f"{path}[]"):
            found = True
            yield problem
    elif reader.type == writer.type == "map":
        for problem in _problems(reader.values, writer.values, f"{path}[*]"):
            found = True
            yield problem
    elif writer.type == "union" or reader.type == "union":
        readers = reader.schemas if reader.type == "union" else [reader]
        writers = writer.schemas if writer.type == "union" else [writer]
        for branch in writers:
            if any(_compatible(r, branch) for r in readers):
                continue
            twins = [r for r in readers if _same_branch(r, branch)]
            if len(twins) == 1:
                for problem in _problems(twins[0], branch, path):
                    found = True
                    yield problem
            else:
                found = True
                yield path, f"the reader has no union branch for the writer's {_label(branch)}"
    if not found:
        yield path, _messages(reader, writer)


def _same_branch(reader: _avro_schema.Schema, writer: _avro_schema.Schema) -> bool:
    if reader.type != writer.type:
        return False
    named = _avro_schema.NamedSchema
    if isinstance(reader, named) and isinstance(writer, named):
        return bool(reader.name == writer.name)
    return True


def _label(schema: _avro_schema.Schema) -> str:
    if isinstance(schema, _avro_schema.NamedSchema):
        return f"{schema.type} {schema.fullname}"
    return str(schema.type)


def incompatibilities(
    reader: Schema, writer: Schema, *, mode: Compatibility
) -> list[Incompatibility]:
    """Why a ``reader`` schema cannot read data written with ``writer`` (empty: it can).

    Avro is judged by the ``avro`` package's checker; JSON Schema and Protobuf by the
    offline subset; schemas of two formats never read each other.
    """
    if reader.schema_type != writer.schema_type:
        found: Sequence[tuple[str, str]] = [
            (
                "",
                f"the versions are in different formats ({writer.schema_type} and "
                f"{reader.schema_type}); a registry keeps one format per subject",
            )
        ]
    elif isinstance(reader, AvroSchema) and isinstance(writer, AvroSchema):
        found = list(_problems(_avro(reader.text), _avro(writer.text), ""))
    elif reader.schema_type == "JSON":
        found = _json_compat.problems(reader.parsed, writer.parsed)  # type: ignore[union-attr]
    else:
        found = _proto_compat.problems(
            reader.descriptor,  # type: ignore[union-attr]
            writer.descriptor,  # type: ignore[union-attr]
        )
    return [
        Incompatibility(field=field, message=message, mode=mode, reader=reader, writer=writer)
        for field, message in found
    ]


def check_versions(
    new: Schema, earlier: Sequence[Schema], mode: Compatibility
) -> list[Incompatibility]:
    """Check ``new`` against ``earlier`` versions (oldest first) under ``mode``.

    Non-transitive modes compare with the latest earlier version only; ``_TRANSITIVE``
    modes with every one of them. A Protobuf version is also checked against every
    earlier one for field numbers and names reused without ``reserved``, whatever the
    mode but ``NONE``.
    """
    if mode not in COMPATIBILITY_MODES:
        known = ", ".join(COMPATIBILITY_MODES)
        msg = f"unknown compatibility mode {mode!r}; expected one of {known}"
        raise ValueError(msg)
    if mode == "NONE" or not earlier:
        return []
    against = list(earlier) if mode.endswith("_TRANSITIVE") else [earlier[-1]]
    base = mode.removesuffix("_TRANSITIVE")
    found: list[Incompatibility] = []
    for old in against:
        if base in {"BACKWARD", "FULL"}:
            found += incompatibilities(new, old, mode=mode)
        if base in {"FORWARD", "FULL"}:
            found += incompatibilities(old, new, mode=mode)
    if new.schema_type == "PROTOBUF":
        older = [e for e in earlier if e.schema_type == "PROTOBUF"]
        seen = {(p.field, p.writer) for p in found}
        for field, message in _proto_compat.reuse_problems(
            new.descriptor,  # type: ignore[union-attr]
            [e.descriptor for e in older],  # type: ignore[union-attr]
        ):
            if (field, older[-1]) not in seen:
                found.append(
                    Incompatibility(
                        field=field, message=message, mode=mode, reader=new, writer=older[-1]
                    )
                )
    return list(dict.fromkeys(found))


# --------------------------------------------------------------------------- lint checks


def _violation(rule: str, contract: TopicContract, field: str, message: str) -> Violation:
    return Violation(rule=rule, severity="error", topic=contract.name, field=field, message=message)


def _version_label(contract: TopicContract, path: Path) -> str:
    return f"value_schema[{contract.value_schema.index(path)}] ({path.name})"


def check_contract(contract: TopicContract, policy: Policy) -> list[Violation]:
    """The schema rules of ``lint`` for one contract, for every schema format.

    - ``schema.parse``: a schema file that cannot be read or parsed (in its format: an
      ``.avsc``, ``.json`` or ``.proto`` file), or whose suffix names no format;
    - ``schema.subject``: under a record subject strategy, a schema that carries no
      single record to name its subject after;
    - ``schema.format``: versions of one subject in different formats;
    - ``schema.compatibility``: a listed version that breaks the topic's mode against
      the versions of its subject before it (Avro by the ``avro`` package's checker,
      JSON Schema and Protobuf by the offline subset);
    - ``schema.event-types``: an ``event_types`` entry no current schema carries (an
      Avro record, a JSON Schema ``title``, a Protobuf message), or, under a record
      strategy, a subject named after an event type ``event_types`` does not list;
    - ``schema.timestamp-field``: a ``timestamp_field`` that is not a long or timestamp
      field of every record the current schema carries (Avro only).
    """
    violations: list[Violation] = []
    loaded: list[tuple[Role, Path, Schema]] = []
    entries: list[tuple[Role, str, Path]] = [
        ("value", f"value_schema[{i}]", p) for i, p in enumerate(contract.value_schema)
    ]
    if contract.key_schema is not None:
        entries.append(("key", "key_schema", contract.key_schema))
    for role, field, path in entries:
        try:
            schema = load_schema(path, root=contract.schema_root, topic=contract.name, key=field)
        except ContractError as exc:
            violations.append(_violation("schema.parse", contract, field, str(exc)))
            continue
        loaded.append((role, path, schema))
    if violations or not loaded:
        return violations
    try:
        groups = group(contract, loaded)
    except ContractError as exc:
        return [_violation("schema.subject", contract, str(exc.key), str(exc))]
    mode = mode_of(contract, policy)
    values = [g for g in groups if g.role == "value"]
    for subject in groups:
        formats = sorted({v.schema_type for v in subject.versions})
        if len(formats) > 1:
            message = (
                f"subject {subject.name!r} mixes schema formats ({', '.join(formats)}); a "
                "registry keeps one format per subject: start a new topic version instead"
            )
            violations.append(
                _violation("schema.format", contract, f"{subject.role}_schema", message)
            )
            continue
        violations += _compatibility(contract, subject, mode)
    violations += _event_types(contract, values)
    current = values[-1].current if values else None
    if contract.timestamp_field is not None and current is not None:
        if not isinstance(current, AvroSchema):
            wrong: str | None = (
                f"timestamp_field is read from Avro records only; {current} is "
                f"{current.schema_type}"
            )
        else:
            wrong = timestamp_field_problem(current, contract.timestamp_field)
        if wrong is not None:
            violations.append(
                _violation("schema.timestamp-field", contract, "timestamp_field", wrong)
            )
    return violations


def _compatibility(
    contract: TopicContract, subject: Subject, mode: Compatibility
) -> list[Violation]:
    found: list[Violation] = []
    versions = list(subject.versions)
    for index in range(1, len(versions)):
        for problem in check_versions(versions[index], versions[:index], mode):
            other = problem.writer if problem.reader is versions[index] else problem.reader
            old = versions.index(other)
            where = f"field {problem.field!r}" if problem.field else "the top-level schema"
            about = f" (subject {subject.name!r})" if contract.subject_strategy != "topic" else ""
            message = (
                f"{_version_label(contract, subject.paths[index])} is not {mode} compatible "
                f"with {_version_label(contract, subject.paths[old])}{about}: {where}: "
                f"{problem.message}"
            )
            found.append(_violation("schema.compatibility", contract, "value_schema", message))
    return found


def _event_types(contract: TopicContract, values: Sequence[Subject]) -> list[Violation]:
    found: list[Violation] = []
    if not values:
        return found
    carried = [t for subject in values for t in subject.current.event_types]
    for event_type in contract.event_types:
        if event_type not in carried:
            shown = ", ".join(dict.fromkeys(carried)) or "no record type"
            where = (
                f"the current schema {contract.value_schema[-1].name}"
                if len(values) == 1
                else "any current schema"
            )
            message = f"event type {event_type!r} is not carried by {where} (it carries: {shown})"
            found.append(_violation("schema.event-types", contract, "event_types", message))
    if contract.subject_strategy != "topic" and contract.event_types:
        for subject in values:
            if subject.event_type not in contract.event_types:
                message = (
                    f"subject {subject.name!r} is named after event type "
                    f"{subject.event_type!r}, which event_types does not list"
                )
                found.append(_violation("schema.event-types", contract, "event_types", message))
    return found


#: Logical types a ``timestamp_field`` may have (on a ``long``), with ms per unit.
TIMESTAMP_UNITS = {
    None: 1.0,
    "timestamp-millis": 1.0,
    "timestamp-micros": 0.001,
    "local-timestamp-millis": 1.0,
    "local-timestamp-micros": 0.001,
}


def timestamp_field_problem(schema: AvroSchema, field: str) -> str | None:
    """Why ``field`` cannot give the record timestamp of ``schema``'s values, or None."""
    if not schema.event_types:
        return f"{schema} has no record type, so it has no field {field!r}"
    for name in schema.event_types:
        record = schema.record(name)
        found = next((f for f in record["fields"] if f["name"] == field), None)
        if found is None:
            return f"record {name} of {schema} has no field {field!r}"
        kind = _avro_validate.kind_of(found["type"], schema.names)[0]
        logical = found["type"].get("logicalType") if isinstance(found["type"], dict) else None
        if kind != "long" or logical not in TIMESTAMP_UNITS:
            shown = _avro_validate.describe(found["type"], schema.names)
            return (
                f"field {field!r} of record {name} is {shown}; a timestamp_field must be a "
                "long of milliseconds (or timestamp-millis / timestamp-micros)"
            )
    return None


def check_catalog(catalog: Catalog) -> list[Violation]:
    """:func:`check_contract` for every contract of ``catalog``."""
    return [v for contract in catalog.topics for v in check_contract(contract, catalog.policy)]
