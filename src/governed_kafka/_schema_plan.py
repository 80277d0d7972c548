"""The contracts' schema subjects held against a schema registry: what ``plan`` and
``apply`` do with ``--schema-registry``.

:func:`plan_schemas` lists, as :class:`SchemaChange` objects, every version a contract
lists that its subject (:mod:`governed_kafka.schemas`) does not hold and every subject
whose compatibility level differs from the contract's mode, and reports registered
versions no contract lists (:class:`UnlistedVersion`, never deleted).
:func:`apply_schemas` sets each subject's compatibility first, then registers the
missing versions oldest first (a Protobuf file's imports as references). Both are
re-exported by :mod:`governed_kafka.cluster`, whose ``plan`` and ``apply`` call them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import attrs

from ._topic_diff import unique
from .contracts import Catalog
from .errors import ContractError, RegistryError

if TYPE_CHECKING:
    from .registry import ManagedSchemaRegistry
    from .schemas import Schema

__all__ = [
    "Outcome",
    "SchemaChange",
    "SchemaPlan",
    "SchemaResult",
    "UnlistedVersion",
    "apply_schemas",
    "plan_schemas",
]

Outcome = Literal["applied", "refused", "failed", "skipped"]


@attrs.frozen(kw_only=True)
class SchemaChange:
    """One difference between the contracts and a registry subject.

    ``register``: a listed version (``path``, ``version`` its index among the subject's
    versions, from 0) that the subject does not hold. ``compatibility``: the subject's
    own level (``live``, ``None`` when it has none and the registry's default applies)
    differs from the contract's mode (``wanted``). ``refused`` says why ``apply`` will
    not make the change.
    """

    subject: str
    topic: str
    kind: Literal["register", "compatibility"]
    path: str | None = None
    version: int | None = None
    #: The schema format (``AVRO``, ``JSON``, ``PROTOBUF``) of a version to register.
    schema_type: str | None = None
    live: str | None = None
    wanted: str | None = None
    refused: str | None = None
    schema: Schema | None = attrs.field(default=None, repr=False, eq=False)

    @property
    def safe(self) -> bool:
        """Whether ``apply`` makes this change."""
        return self.refused is None

    def describe(self) -> str:
        """One sentence saying what differs."""
        if self.kind == "register":
            return f"version {self.version} ({self.path}, {self.schema_type}) is not registered"
        live = "(not set: the registry's default)" if self.live is None else self.live
        return f"compatibility: registry {live}, contract {self.wanted}"

    def to_dict(self) -> dict[str, object]:
        """The change as plain data, for JSON."""
        data = attrs.asdict(self, filter=lambda a, _: a.name != "schema")
        data["safe"] = self.safe
        return data


@attrs.frozen(kw_only=True)
class UnlistedVersion:
    """A version a registry subject holds that no contract lists: reported, never deleted."""

    subject: str
    version: int
    schema_id: int

    def to_dict(self) -> dict[str, object]:
        """The version as plain data, for JSON."""
        return attrs.asdict(self)


@attrs.frozen(kw_only=True)
class SchemaPlan:
    """The contracts' subjects held against a schema registry."""

    #: The registry, as it names itself (credentials redacted).
    registry: str
    changes: tuple[SchemaChange, ...] = ()
    #: Registered versions no contract lists (reported, never deleted).
    unlisted: tuple[UnlistedVersion, ...] = ()
    #: Subjects that hold every listed version at the contract's level.
    in_sync: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        """The schema plan as plain data, for JSON."""
        return {
            "registry": self.registry,
            "changes": [c.to_dict() for c in self.changes],
            "unlisted": [u.to_dict() for u in self.unlisted],
            "in_sync": list(self.in_sync),
        }


@attrs.frozen(kw_only=True)
class SchemaResult:
    """What ``apply`` did with one schema change."""

    change: SchemaChange
    outcome: Outcome
    message: str
    #: The id the registry gave a registered version.
    schema_id: int | None = None

    def to_dict(self) -> dict[str, object]:
        """The result as plain data, for JSON."""
        return {
            "change": self.change.to_dict(),
            "outcome": self.outcome,
            "message": self.message,
            "schema_id": self.schema_id,
        }


def plan_schemas(catalog: Catalog, registry: ManagedSchemaRegistry) -> SchemaPlan:
    """Hold every subject the contracts imply against ``registry``; change nothing.

    A contract whose schema files do not load is left out (lint reports it). A subject
    two topics name with different compatibility modes is refused.
    """
    wanted, changes = _wanted_subjects(catalog)
    unlisted: list[UnlistedVersion] = []
    in_sync: list[str] = []
    for name, (topic, level, versions) in wanted.items():
        pending, extra = _hold_subject(registry, name, topic, level, versions)
        unlisted += extra
        if pending:
            changes.extend(pending)
        else:
            in_sync.append(name)
    return SchemaPlan(
        registry=repr(registry),
        changes=tuple(changes),
        unlisted=tuple(unlisted),
        in_sync=tuple(in_sync),
    )


_Wanted = dict[str, tuple[str, str, list[tuple["Schema", str]]]]


def _wanted_subjects(catalog: Catalog) -> tuple[_Wanted, list[SchemaChange]]:
    """Every subject the contracts imply: its first topic, its mode, its versions."""
    from .compatibility import mode_of
    from .schemas import subjects

    wanted: _Wanted = {}
    refused: list[SchemaChange] = []
    for contract in unique(catalog):
        try:
            found = subjects(contract)
        except ContractError:
            continue
        mode = mode_of(contract, catalog.policy)
        for subject in found:
            first, level, versions = wanted.setdefault(subject.name, (contract.name, mode, []))
            if level != mode:
                refused.append(
                    SchemaChange(
                        subject=subject.name,
                        topic=contract.name,
                        kind="compatibility",
                        wanted=mode,
                        refused=(
                            f"topics {first!r} and {contract.name!r} share subject "
                            f"{subject.name!r} with different compatibility modes "
                            f"({level}, {mode}); give them one mode"
                        ),
                    )
                )
                continue
            for schema, file in zip(subject.versions, subject.paths, strict=True):
                if all(schema != known for known, _ in versions):
                    versions.append((schema, str(file)))
    return wanted, refused


def _hold_subject(
    registry: ManagedSchemaRegistry,
    name: str,
    topic: str,
    level: str,
    versions: list[tuple[Schema, str]],
) -> tuple[list[SchemaChange], list[UnlistedVersion]]:
    """What differs between one subject's listed versions and level and the registry's."""
    live = registry.compatibility(name)
    pending: list[SchemaChange] = []
    if live != level:
        pending.append(
            SchemaChange(subject=name, topic=topic, kind="compatibility", live=live, wanted=level)
        )
    listed: set[int] = set()
    for index, (schema, file) in enumerate(versions):
        schema_id = registry.lookup(name, schema)
        if schema_id is not None:
            listed.add(schema_id)
            continue
        pending.append(
            SchemaChange(
                subject=name,
                topic=topic,
                kind="register",
                path=file,
                version=index,
                schema_type=schema.schema_type,
                schema=schema,
            )
        )
    unlisted = [
        UnlistedVersion(subject=name, version=version, schema_id=schema_id)
        for version, schema_id in registry.subject_versions(name)
        if schema_id not in listed
    ]
    return pending, unlisted


def apply_schemas(plan: SchemaPlan, registry: ManagedSchemaRegistry) -> tuple[SchemaResult, ...]:
    """Set each subject's compatibility, then register its missing versions oldest first."""
    done: list[SchemaResult] = []
    blocked: set[str] = set()
    ordered = sorted(plan.changes, key=lambda c: (c.subject, c.kind != "compatibility"))
    for change in ordered:
        if not change.safe:
            done.append(SchemaResult(change=change, outcome="refused", message=str(change.refused)))
            blocked.add(change.subject)
            continue
        if change.subject in blocked:
            why = "not registered: the subject's compatibility level was not set"
            done.append(SchemaResult(change=change, outcome="skipped", message=why))
            continue
        try:
            if change.kind == "compatibility":
                registry.set_compatibility(change.subject, str(change.wanted))
                was = change.live or "the registry's default"
                message = f"compatibility {change.wanted} (was {was})"
                done.append(SchemaResult(change=change, outcome="applied", message=message))
            else:
                assert change.schema is not None
                schema_id = registry.register(change.subject, change.schema)
                message = f"registered {change.path} with id {schema_id}"
                done.append(
                    SchemaResult(
                        change=change, outcome="applied", message=message, schema_id=schema_id
                    )
                )
        except RegistryError as exc:
            done.append(SchemaResult(change=change, outcome="failed", message=str(exc)))
            if change.kind == "compatibility":
                blocked.add(change.subject)
    return tuple(done)
