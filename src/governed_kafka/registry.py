"""Schema registries: where schema ids come from and where writer schemas are found.

One interface, :class:`SchemaRegistry`, two implementations:

- :class:`LocalSchemaRegistry`, built from the contracts themselves: every schema
  version a contract lists is registered under its topic's subject with a deterministic
  id (:func:`~governed_kafka.avro.schema_id_of`), so separate processes that load the
  same contracts agree on ids without a server. Two different schemas that would get
  the same id are refused when the registry is built.
- :class:`ConfluentSchemaRegistry`, over confluent-kafka's own ``SchemaRegistryClient``
  (HTTP; ``mock://`` URLs give its in-memory mock). Needs the ``[registry]`` extra.

Subjects follow the topic-name strategy: ``<topic>-value`` and ``<topic>-key``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from urllib.parse import urlsplit, urlunsplit

from . import _kafka
from ._config import REDACTED, is_secret
from .avro import AvroSchema, Role, load_schema, parse_schema, schema_id_of
from .errors import ContractError, RegistryError

if TYPE_CHECKING:
    from .contracts import Catalog

__all__ = [
    "ConfluentSchemaRegistry",
    "LocalSchemaRegistry",
    "SchemaRegistry",
    "subject_name",
]


def subject_name(topic: str, role: Role = "value") -> str:
    """The registry subject of a topic's values or keys (topic-name strategy)."""
    return f"{topic}-{role}"


@runtime_checkable
class SchemaRegistry(Protocol):
    """What producers and consumers need of a schema registry."""

    def lookup(self, subject: str, schema: AvroSchema) -> int | None:
        """The id of ``schema`` under ``subject``, or ``None`` if it is not registered."""
        ...

    def register(self, subject: str, schema: AvroSchema) -> int:
        """Register ``schema`` under ``subject`` (idempotent); return its id."""
        ...

    def versions(self, subject: str) -> list[AvroSchema]:
        """Every schema registered under ``subject``, oldest first (empty if none)."""
        ...

    def schema(self, schema_id: int) -> AvroSchema:
        """The schema with id ``schema_id``; raises :class:`LookupError` if there is none."""
        ...


class LocalSchemaRegistry:
    """An in-process registry with deterministic ids, usually built from a catalog."""

    def __init__(self) -> None:
        self._by_id: dict[int, AvroSchema] = {}
        self._subjects: dict[str, list[AvroSchema]] = {}

    @classmethod
    def from_catalog(cls, catalog: Catalog) -> LocalSchemaRegistry:
        """Register every schema version of every contract under its topic's subjects.

        A schema file that does not parse, or two different schemas whose ids collide,
        raise :class:`~governed_kafka.errors.ContractError` naming the files.
        """
        registry = cls()
        for contract in catalog.topics:
            entries = [("value_schema", "value", p) for p in contract.value_schema]
            if contract.key_schema is not None:
                entries.append(("key_schema", "key", contract.key_schema))
            for key, role, path in entries:
                schema = load_schema(path, topic=contract.name, key=key)
                existing = registry._collision(schema)
                if existing is not None:
                    msg = (
                        f"{catalog.path}: topic {contract.name!r}: schema {path} and schema "
                        f"{existing} differ but both get id {schema_id_of(schema)}; rename a "
                        "record or add a doc string to one of them to separate them"
                    )
                    raise ContractError(msg, path=str(catalog.path), topic=contract.name, key=key)
                registry._add(subject_name(contract.name, role), schema)  # type: ignore[arg-type]
        return registry

    def _collision(self, schema: AvroSchema) -> AvroSchema | None:
        existing = self._by_id.get(schema_id_of(schema))
        return existing if existing is not None and existing != schema else None

    def _add(self, subject: str, schema: AvroSchema) -> int:
        schema_id = schema_id_of(schema)
        self._by_id.setdefault(schema_id, schema)
        versions = self._subjects.setdefault(subject, [])
        if schema not in versions:
            versions.append(schema)
        return schema_id

    def lookup(self, subject: str, schema: AvroSchema) -> int | None:
        """The id of ``schema`` if ``subject`` has it, else ``None``."""
        if schema in self._subjects.get(subject, ()):
            return schema_id_of(schema)
        return None

    def register(self, subject: str, schema: AvroSchema) -> int:
        """Add ``schema`` to ``subject``; a different schema with the same id is refused."""
        existing = self._collision(schema)
        if existing is not None:
            msg = (
                f"cannot register {schema} under {subject!r}: its id {schema_id_of(schema)} "
                f"is taken by a different schema ({existing})"
            )
            raise RegistryError(msg, operation="register", subject=subject)
        return self._add(subject, schema)

    def versions(self, subject: str) -> list[AvroSchema]:
        """The schemas of ``subject``, oldest first."""
        return list(self._subjects.get(subject, ()))

    def schema(self, schema_id: int) -> AvroSchema:
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
        confluent-kafka's in-memory mock registry.

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
        self._by_id: dict[int, AvroSchema] = {}

    def lookup(self, subject: str, schema: AvroSchema) -> int | None:
        """The id of ``schema`` under ``subject``, or ``None`` if it is not registered."""
        schema_id = self._registry.lookup(subject, schema.text)
        if schema_id is not None:
            self._by_id.setdefault(schema_id, schema)
        return schema_id

    def register(self, subject: str, schema: AvroSchema) -> int:
        """Register ``schema`` under ``subject``; the registry applies its own checks too."""
        schema_id = self._registry.register(subject, schema.text)
        self._by_id.setdefault(schema_id, schema)
        return schema_id

    def versions(self, subject: str) -> list[AvroSchema]:
        """Every schema registered under ``subject``, oldest first."""
        return [self._parse(i, text) for i, text in self._registry.versions(subject)]

    def schema(self, schema_id: int) -> AvroSchema:
        """The schema with ``schema_id``; :class:`LookupError` if the registry has none."""
        known = self._by_id.get(schema_id)
        if known is not None:
            return known
        return self._parse(schema_id, self._registry.schema(schema_id))

    def _parse(self, schema_id: int, text: str) -> AvroSchema:
        known = self._by_id.get(schema_id)
        if known is None:
            known = self._by_id[schema_id] = parse_schema(
                text, source=f"{self.url or 'registry'} id {schema_id}"
            )
        return known

    def __repr__(self) -> str:
        return f"<ConfluentSchemaRegistry {self.url}>"
