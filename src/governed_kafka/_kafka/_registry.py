"""confluent-kafka's schema-registry client, with plain values in and out.

Schemas go in and come out as their registry form: a ``schemaType`` (``AVRO``,
``JSON``, ``PROTOBUF``), the text, and the references to other subjects' versions
(:class:`Reference`); fetched schemas come back as :class:`Registered`. Failures become
:class:`~governed_kafka.errors.RegistryError` naming the registry, the operation and
the subject, with the HTTP status and the registry's own error code when it answered;
no error shows a secret of the configuration, not even through its ``__cause__``.
"Not found" is an answer, not an error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Final, TypeVar

import attrs

from .._config import REDACTED
from ..errors import RegistryError

__all__ = ["Reference", "Registered", "RegistryClient"]

#: HTTP status of "no such subject, version or schema".
_NOT_FOUND: Final = 404

_T = TypeVar("_T")


@attrs.frozen
class Reference:
    """A schema's reference to a version of another subject (a Protobuf import)."""

    #: The name the schema imports it by (a ``.proto`` file name).
    name: str
    subject: str
    version: int


@attrs.frozen(kw_only=True)
class Registered:
    """A schema as the registry holds it."""

    schema_id: int
    #: Its version under the subject it was found by; ``None`` when fetched by id.
    version: int | None
    #: ``AVRO``, ``JSON`` or ``PROTOBUF``.
    schema_type: str
    text: str
    references: tuple[Reference, ...] = ()


class RegistryClient:
    """A Confluent-compatible schema registry over HTTP (``mock://`` URLs: in memory).

    As with Confluent's Java clients, every client of one process with the same
    ``mock://`` URL shares one mock, and compatibility levels set on a mock are kept
    beside it (the mock has none of its own).

    :param config: the ``SchemaRegistryClient`` configuration.
    :param url: the registry's URL as it may be shown (credentials already redacted).
    :param secrets: strings no error may show.
    """

    #: One mock client per ``mock://`` URL, and the compatibility levels set on it.
    _mocks: ClassVar[dict[str, tuple[Any, dict[str, str]]]] = {}

    def __init__(self, config: Mapping[str, Any], *, url: str, secrets: Sequence[str]) -> None:
        try:
            from confluent_kafka.schema_registry import (
                Schema,
                SchemaReference,
                SchemaRegistryClient,
                SchemaRegistryError,
            )
        except ImportError as exc:
            msg = (
                "ConfluentSchemaRegistry needs confluent-kafka's schema-registry client: "
                "pip install 'governed-kafka[registry]'"
            )
            raise ImportError(msg) from exc
        self._schema_type = Schema
        self._reference_type = SchemaReference
        self._error_type = SchemaRegistryError
        given = str(config.get("url", ""))
        #: Compatibility levels of a mock registry; ``None`` for a real one.
        self._levels: dict[str, str] | None = None
        if given.startswith("mock://"):
            if given not in self._mocks:
                self._mocks[given] = (SchemaRegistryClient.new_client(dict(config)), {})
            client, self._levels = self._mocks[given]
        else:
            client = SchemaRegistryClient.new_client(dict(config))
        #: The underlying ``SchemaRegistryClient``, for code that needs it directly.
        self.client: Any = client
        self.url = url
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text

    def _cause(self, exc: BaseException) -> BaseException | None:
        """``exc`` to chain to a RegistryError, unless it or its causes would show a secret."""
        seen: BaseException | None = exc
        while seen is not None:
            shown = f"{seen} {seen.args!r}"
            if any(secret in shown for secret in self._secrets):
                return None
            seen = seen.__cause__ or seen.__context__
        return exc

    def _fail(self, exc: Exception, operation: str, subject: str | None) -> RegistryError:
        if isinstance(exc, self._error_type):
            status: int | None = exc.http_status_code
            code: int | None = exc.error_code
            reason = exc.error_message
        else:
            status = code = None
            reason = f"{type(exc).__name__}: {exc}"
        about = f" of {subject!r}" if subject else ""
        msg = f"schema registry {self.url}: {operation}{about} failed: {self._scrub(str(reason))}"
        return RegistryError(msg, operation=operation, subject=subject, status=status, code=code)

    def _call(
        self,
        operation: str,
        subject: str | None,
        call: Callable[[], _T],
        *,
        not_found: Callable[[Exception], _T] | None = None,
    ) -> _T:
        """``call()``, its failures translated; ``not_found(exc)`` answers a 404 if given."""
        try:
            return call()
        except Exception as exc:
            if (
                not_found is not None
                and isinstance(exc, self._error_type)
                and exc.http_status_code == _NOT_FOUND
            ):
                return not_found(exc)
            raise self._fail(exc, operation, subject) from self._cause(exc)

    def _form(self, text: str, schema_type: str, references: Sequence[Reference]) -> Any:
        refs = [self._reference_type(r.name, r.subject, r.version) for r in references]
        return self._schema_type(text, schema_type, refs)

    @staticmethod
    def _registered(schema: Any, schema_id: int, version: int | None) -> Registered:
        """A client ``Schema`` as plain values."""
        return Registered(
            schema_id=schema_id,
            version=version,
            schema_type=str(schema.schema_type or "AVRO"),
            text=str(schema.schema_str),
            references=tuple(
                Reference(str(r.name), str(r.subject), int(r.version))
                for r in schema.references or ()
            ),
        )

    def lookup(
        self, subject: str, text: str, schema_type: str, references: Sequence[Reference] = ()
    ) -> tuple[int, int] | None:
        """``(id, version)`` of the schema under ``subject``; ``None`` if not registered."""
        form = self._form(text, schema_type, references)
        found = self._call(
            "lookup",
            subject,
            lambda: self.client.lookup_schema(subject, form),
            not_found=lambda _: None,
        )
        return None if found is None else (int(found.schema_id), int(found.version))

    def register(
        self, subject: str, text: str, schema_type: str, references: Sequence[Reference] = ()
    ) -> int:
        """Register the schema under ``subject``; return its id."""
        form = self._form(text, schema_type, references)
        return int(
            self._call("register", subject, lambda: self.client.register_schema(subject, form))
        )

    def subject_versions(self, subject: str) -> list[tuple[int, int]]:
        """``(version, id)`` of every version of ``subject``, oldest first."""

        def fetch() -> list[tuple[int, int]]:
            numbers = sorted(self.client.get_versions(subject))
            found = [self.client.get_version(subject, n) for n in numbers]
            return [(int(r.version), int(r.schema_id)) for r in found]

        return self._call("versions", subject, fetch, not_found=lambda _: [])

    def versions(self, subject: str) -> list[Registered]:
        """Every version of ``subject`` as the registry serialized it, oldest first."""

        def fetch() -> list[Registered]:
            numbers = sorted(self.client.get_versions(subject))
            return [self.version(subject, n) for n in numbers]

        return self._call("versions", subject, fetch, not_found=lambda _: [])

    def version(self, subject: str, number: int) -> Registered:
        """Version ``number`` of ``subject`` (a reference's target)."""
        found = self._call(
            f"fetch version {number}",
            subject,
            lambda: self.client.get_version(subject, number, fmt="serialized"),
        )
        return self._registered(found.schema, int(found.schema_id), int(found.version))

    def schema(self, schema_id: int) -> Registered:
        """The schema with ``schema_id``; :class:`LookupError` if there is none."""

        def missing(exc: Exception) -> Any:
            msg = f"schema registry {self.url} has no schema with id {schema_id}"
            raise LookupError(msg) from self._cause(exc)

        fetched = self._call(
            f"fetch schema id {schema_id}",
            None,
            lambda: self.client.get_schema(schema_id, fmt="serialized"),
            not_found=missing,
        )
        return self._registered(fetched, schema_id, None)

    def compatibility(self, subject: str) -> str | None:
        """The subject's own compatibility level, or ``None`` when it has none set."""
        if self._levels is not None:
            return self._levels.get(subject)
        level = self._call(
            "get compatibility",
            subject,
            lambda: self.client.get_compatibility(subject),
            not_found=lambda _: None,
        )
        return str(level) if level else None

    def set_compatibility(self, subject: str, level: str) -> None:
        """Set the subject's compatibility level."""
        if self._levels is not None:
            self._levels[subject] = level
            return
        self._call(
            "set compatibility", subject, lambda: self.client.set_compatibility(subject, level)
        )
