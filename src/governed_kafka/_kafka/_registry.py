"""confluent-kafka's schema-registry client, with plain values in and out.

Its failures become :class:`~governed_kafka.errors.RegistryError` naming the registry,
the operation and the subject, with the HTTP status and the registry's own error code
when it answered; no error shows a secret of the configuration, not even through its
``__cause__``. "Not found" is an answer, not an error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from .._config import REDACTED
from ..errors import RegistryError

#: HTTP status of "no such subject, version or schema".
_NOT_FOUND: Final = 404


class RegistryClient:
    """A Confluent-compatible schema registry over HTTP (``mock://`` URLs: in memory).

    :param config: the ``SchemaRegistryClient`` configuration.
    :param url: the registry's URL as it may be shown (credentials already redacted).
    :param secrets: strings no error may show.
    """

    def __init__(self, config: Mapping[str, Any], *, url: str, secrets: Sequence[str]) -> None:
        try:
            from confluent_kafka.schema_registry import (
                Schema,
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
        self._error_type = SchemaRegistryError
        #: The underlying ``SchemaRegistryClient``, for code that needs it directly.
        self.client: Any = SchemaRegistryClient.new_client(dict(config))
        self.url = url
        self._secrets = sorted(set(secrets), key=len, reverse=True)

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

    def _not_found(self, exc: Exception) -> bool:
        return isinstance(exc, self._error_type) and exc.http_status_code == _NOT_FOUND

    def lookup(self, subject: str, text: str) -> int | None:
        """The id of the Avro schema ``text`` under ``subject``, ``None`` if not registered."""
        try:
            registered = self.client.lookup_schema(subject, self._schema_type(text, "AVRO"))
        except Exception as exc:
            if self._not_found(exc):
                return None
            raise self._fail(exc, "lookup", subject) from self._cause(exc)
        return int(registered.schema_id)

    def register(self, subject: str, text: str) -> int:
        """Register the Avro schema ``text`` under ``subject``; return its id."""
        try:
            return int(self.client.register_schema(subject, self._schema_type(text, "AVRO")))
        except Exception as exc:
            raise self._fail(exc, "register", subject) from self._cause(exc)

    def versions(self, subject: str) -> list[tuple[int, str]]:
        """``(id, schema text)`` of every version under ``subject``, oldest first."""
        try:
            numbers = self.client.get_versions(subject)
            registered = [self.client.get_version(subject, n) for n in sorted(numbers)]
        except Exception as exc:
            if self._not_found(exc):
                return []
            raise self._fail(exc, "versions", subject) from self._cause(exc)
        return [(int(r.schema_id), str(r.schema.schema_str)) for r in registered]

    def schema(self, schema_id: int) -> str:
        """The text of the schema with ``schema_id``; :class:`LookupError` if there is none."""
        try:
            fetched = self.client.get_schema(schema_id)
        except Exception as exc:
            if self._not_found(exc):
                msg = f"schema registry {self.url} has no schema with id {schema_id}"
                raise LookupError(msg) from self._cause(exc)
            raise self._fail(exc, f"fetch schema id {schema_id}", None) from self._cause(exc)
        return str(fetched.schema_str)
