"""Schema registries: where schema ids come from and where writer schemas are found.

One interface, :class:`SchemaRegistry`, two implementations, each holding schemas of
every format (Avro, JSON Schema, Protobuf: :data:`~governed_kafka.schemas.Schema`):

- :class:`LocalSchemaRegistry`, built from the contracts themselves: every schema
  version a contract lists is registered under its subject with a deterministic id
  (:func:`~governed_kafka.schemas.schema_id_of`), so separate processes that load the
  same contracts agree on ids without a server. Two different schemas that would get
  the same id are refused when the registry is built.
- :class:`ConfluentSchemaRegistry`, over confluent-kafka's own ``SchemaRegistryClient``
  (HTTP; ``mock://`` URLs give its in-memory mock). Needs the ``[registry]`` extra.
  A Protobuf schema's imports are registered as references, each under its file name,
  as confluent-kafka's serializer registers them.

Both also implement :class:`ManagedSchemaRegistry`, what ``plan`` and ``apply`` need:
the versions a subject holds and its compatibility level.

Subjects are named by each topic's ``subject_strategy`` (:func:`subject_name`):
``<topic>-value`` and ``<topic>-key`` by default.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from urllib.parse import urlsplit, urlunsplit

from . import _kafka
from ._config import REDACTED, is_secret
from .errors import ContractError, RegistryError
from .schemas import Schema, parse_registered, schema_id_of, subject_name, subjects

if TYPE_CHECKING:
    from .contracts import Catalog

__all__ = [
    "ConfluentSchemaRegistry",
    "LocalSchemaRegistry",
    "ManagedSchemaRegistry",
    "SchemaRegistry",
    "subject_name",
]


@runtime_checkable
class SchemaRegistry(Protocol):
    """What producers and consumers need of a schema registry."""

    def lookup(self, subject: str, schema: Schema) -> int | None:
        """The id of ``schema`` under ``subject``, or ``None`` if it is not registered."""
        ...

    def register(self, subject: str, schema: Schema) -> int:
        """Register ``schema`` under ``subject`` (idempotent); return its id."""
        ...

    def versions(self, subject: str) -> list[Schema]:
        """Every schema registered under ``subject``, oldest first (empty if none)."""
        ...

    def schema(self, schema_id: int) -> Schema:
        """The schema with id ``schema_id``; raises :class:`LookupError` if there is none."""
        ...


@runtime_checkable
class ManagedSchemaRegistry(SchemaRegistry, Protocol):
    """A registry ``plan`` and ``apply`` can hold the contracts against."""

    def subject_versions(self, subject: str) -> list[tuple[int, int]]:
        """``(version number, schema id)`` of every version of ``subject``, oldest first."""
        ...

    def compatibility(self, subject: str) -> str | None:
        """The subject's own compatibility level, or ``None`` when it has none set."""
        ...

    def set_compatibility(self, subject: str, level: str) -> None:
        """Set the subject's compatibility level (``BACKWARD`` ...)."""
        ...


class LocalSchemaRegistry:
    """An in-process registry with deterministic ids, usually built from a catalog."""

    def __init__(self) -> None:
        self._by_id: dict[int, Schema] = {}
        self._subjects: dict[str, list[Schema]] = {}
        self._levels: dict[str, str] = {}

    @classmethod
    def from_catalog(cls, catalog: Catalog) -> LocalSchemaRegistry:
        """Register every schema version of every contract under its subjects.

        A schema file that does not parse, or two different schemas whose ids collide,
        raise :class:`~governed_kafka.errors.ContractError` naming the files.
        """
        registry = cls()
        for contract in catalog.topics:
            for subject in subjects(contract):
                for schema, path in zip(subject.versions, subject.paths, strict=True):
                    existing = registry._collision(schema)
                    if existing is not None:
                        key = f"{subject.role}_schema"
                        msg = (
                            f"{catalog.path}: topic {contract.name!r}: schema {path} and "
                            f"schema {existing} differ but both get id {schema_id_of(schema)}; "
                            "rename a record or add a doc string to one of them to separate "
                            "them"
                        )
                        raise ContractError(
                            msg, path=str(catalog.path), topic=contract.name, key=key
                        )
                    registry._add(subject.name, schema)
        return registry

    def _collision(self, schema: Schema) -> Schema | None:
        existing = self._by_id.get(schema_id_of(schema))
        return existing if existing is not None and existing != schema else None

    def _add(self, subject: str, schema: Schema) -> int:
        schema_id = schema_id_of(schema)
        self._by_id.setdefault(schema_id, schema)
        versions = self._subjects.setdefault(subject, [])
        if schema not in versions:
            versions.append(schema)
        return schema_id

    def lookup(self, subject: str, schema: Schema) -> int | None:
        """The id of ``schema`` if ``subject`` has it, else ``None``."""
        if schema in self._subjects.get(subject, ()):
            return schema_id_of(schema)
        return None

    def register(self, subject: str, schema: Schema) -> int:
        """Add ``schema`` to ``subject``; a different schema with the same id is refused."""
        existing = self._collision(schema)
        if existing is not None:
            msg = (
                f"cannot register {schema} under {subject!r}: its id {schema_id_of(schema)} "
                f"is taken by a different schema ({existing})"
            )
            raise RegistryError(msg, operation="register", subject=subject)
        return self._add(subject, schema)

    def versions(self, subject: str) -> list[Schema]:
        """The schemas of ``subject``, oldest first."""
        return list(self._subjects.get(subject, ()))

    def subject_versions(self, subject: str) -> list[tuple[int, int]]:
        """``(version, id)`` of each schema of ``subject``; versions count from 1."""
        return [(n, schema_id_of(s)) for n, s in enumerate(self._subjects.get(subject, ()), 1)]

    def compatibility(self, subject: str) -> str | None:
        """The level set for ``subject`` with :meth:`set_compatibility`, else ``None``."""
        return self._levels.get(subject)

    def set_compatibility(self, subject: str, level: str) -> None:
        """Remember ``subject``'s compatibility level."""
        self._levels[subject] = level

    def schema(self, schema_id: int) -> Schema:
        """The schema with ``schema_id``; :class:`LookupError` if unknown."""
        try:
            return self._by_id[schema_id]
        except KeyError:
            msg = f"no schema with id {schema_id} in the local registry"
            raise LookupError(msg) from None

    @property
    def subjects(self) -> list[str]:
        """Every subject with at least one schema."""
        return sorted(self._subjects)

    def __repr__(self) -> str:
        return f"<LocalSchemaRegistry {len(self._subjects)} subjects, {len(self._by_id)} schemas>"


#: Deepest chain of references a fetched schema may have.
_MAX_REFERENCE_DEPTH = 32


def _without_credentials(urls: str) -> tuple[str, list[str]]:
    """``urls`` (comma-separated) with any ``user:password@`` replaced, and what was replaced."""
    shown, secrets = [], []
    for url in urls.split(","):
        parts = urlsplit(url.strip())
        if parts.username is None and parts.password is None:
            shown.append(url.strip())
            continue
        userinfo, _, host = parts.netloc.rpartition("@")
        secrets += [userinfo, *(p for p in (parts.username, parts.password) if p)]
        shown.append(urlunsplit(parts._replace(netloc=f"{REDACTED}@{host}")))
    return ",".join(shown), secrets


class ConfluentSchemaRegistry:
    """A Confluent-compatible schema registry, through confluent-kafka's own client.

    :param config: the client's configuration (``{"url": "https://registry:8081",
        "basic.auth.user.info": "user:secret"}``...); a ``mock://`` URL gives
        confluent-kafka's in-memory mock registry. As with Confluent's Java clients,
        every ``ConfluentSchemaRegistry`` of one process with the same ``mock://`` URL
        shares one mock, and the mock keeps subjects' compatibility levels here (the
        mock itself has none).

    Schemas fetched by id are parsed once and kept. Registry failures raise
    :class:`~governed_kafka.errors.RegistryError`.
    """

    def __init__(self, config: Mapping[str, Any]) -> None:
        #: The registry's URL, any ``user:password@`` in it shown as ``[redacted]@``.
        self.url, secrets = _without_credentials(str(config.get("url", "")))
        # Never shown in an error, whatever the client's own message repeats.
        secrets += [str(v) for k, v in config.items() if is_secret(k) and v]
        self._registry = _kafka.RegistryClient(config, url=self.url, secrets=secrets)
        #: The underlying ``SchemaRegistryClient``, for code that needs it directly.
        self.client: Any = self._registry.client
        self._by_id: dict[int, Schema] = {}

    def _references(self, schema: Schema, *, register: bool) -> list[_kafka.Reference] | None:
        """``schema``'s Protobuf imports as references, each registered (or, with
        ``register`` false, looked up) under its file name first, deepest first, as
        confluent-kafka's serializer does; ``None`` when an import is not registered and
        ``register`` is false."""
        references = []
        for dep in schema.references:
            inner = self._references(dep, register=register)
            if inner is None:
                return None
            if register:
                self._registry.register(dep.name, dep.text, dep.schema_type, inner)
            found = self._registry.lookup(dep.name, dep.text, dep.schema_type, inner)
            if found is None:
                if not register:
                    return None
                msg = (
                    f"schema registry {self.url}: import {dep.name!r} was registered and "
                    "then not found under its subject"
                )
                raise RegistryError(msg, operation="register", subject=dep.name)
            references.append(_kafka.Reference(dep.name, dep.name, found[1]))
        return references

    def lookup(self, subject: str, schema: Schema) -> int | None:
        """The id of ``schema`` under ``subject``, or ``None`` if it is not registered."""
        references = self._references(schema, register=False)
        if references is None:
            return None
        found = self._registry.lookup(subject, schema.text, schema.schema_type, references)
        if found is None:
            return None
        self._by_id.setdefault(found[0], schema)
        return found[0]

    def register(self, subject: str, schema: Schema) -> int:
        """Register ``schema`` (and its Protobuf imports) under ``subject``; the registry
        applies its own checks too."""
        references = self._references(schema, register=True) or []
        schema_id = self._registry.register(subject, schema.text, schema.schema_type, references)
        self._by_id.setdefault(schema_id, schema)
        return schema_id

    def subject_versions(self, subject: str) -> list[tuple[int, int]]:
        """``(version, id)`` of every version of ``subject``, oldest first."""
        return self._registry.subject_versions(subject)

    def versions(self, subject: str) -> list[Schema]:
        """Every schema registered under ``subject``, oldest first."""
        return [self._parse(r) for r in self._registry.versions(subject)]

    def compatibility(self, subject: str) -> str | None:
        """The subject's own compatibility level, or ``None`` when it has none set."""
        return self._registry.compatibility(subject)

    def set_compatibility(self, subject: str, level: str) -> None:
        """Set the subject's compatibility level."""
        self._registry.set_compatibility(subject, level)

    def schema(self, schema_id: int) -> Schema:
        """The schema with ``schema_id``; :class:`LookupError` if the registry has none."""
        known = self._by_id.get(schema_id)
        if known is not None:
            return known
        return self._parse(self._registry.schema(schema_id))

    def _parse(self, fetched: _kafka.Registered) -> Schema:
        known = self._by_id.get(fetched.schema_id)
        if known is None:
            source = f"{self.url or 'registry'} id {fetched.schema_id}"
            known = self._by_id[fetched.schema_id] = self._build(fetched, source)
        return known

    def _build(
        self, fetched: _kafka.Registered, source: str, name: str | None = None, depth: int = 0
    ) -> Schema:
        """A fetched schema parsed, its references fetched (and parsed) first."""
        references: list[Schema] = []
        for ref in fetched.references:
            if depth > _MAX_REFERENCE_DEPTH:
                msg = f"{source}: references nest more than {_MAX_REFERENCE_DEPTH} deep"
                raise ContractError(msg, path=source)
            found = self._registry.version(ref.subject, ref.version)
            references.append(
                self._build(found, f"{source} reference {ref.name}", ref.name, depth + 1)
            )
        if name is not None and fetched.schema_type == "PROTOBUF":
            import base64

            from .protobuf import ProtobufSchema, from_descriptor

            deps = [r for r in references if isinstance(r, ProtobufSchema)]
            try:
                return from_descriptor(
                    base64.b64decode(fetched.text),
                    dependencies=deps,
                    source=source,
                    name=name,
                )
            except ValueError:
                pass  # .proto text: parsed below
        return parse_registered(
            fetched.schema_type, fetched.text, references=references, source=source
        )

    def __repr__(self) -> str:
        return f"<ConfluentSchemaRegistry {self.url}>"
