"""Text that comes from files: decoded strictly, and described without being repeated.

Contracts files, schema files and client properties files may hold anything, secrets
included. What is wrong with one is said by place (line and column) and by what was
expected; the bytes themselves are never put into a message.
"""

from __future__ import annotations

from pathlib import Path

from .errors import ContractError

__all__ = ["NotUtf8", "decode_utf8", "position", "read_schema_file"]


class NotUtf8(ValueError):
    """Bytes that are not UTF-8; the message says where, never what."""

    def __init__(self, line: int, column: int) -> None:
        super().__init__(f"not UTF-8 at line {line}, column {column}")
        self.line = line
        self.column = column


def position(data: bytes | str, index: int) -> tuple[int, int]:
    """Line and column (both from 1) of ``index`` in ``data``."""
    if isinstance(data, bytes):
        line, start = data.count(b"\n", 0, index) + 1, data.rfind(b"\n", 0, index) + 1
    else:
        line, start = data.count("\n", 0, index) + 1, data.rfind("\n", 0, index) + 1
    return line, index - start + 1


def decode_utf8(data: bytes) -> str:
    """``data`` as text; :class:`NotUtf8` names the line and column of the first bad byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotUtf8(*position(data, exc.start)) from None


def read_schema_file(
    path: str | Path, *, topic: str | None, key: str | None, kind: str = "UTF-8 JSON"
) -> str:
    """The text of a schema file; a :class:`~governed_kafka.errors.ContractError` names the
    file (and ``topic``, ``key``) when it cannot be read or is not UTF-8 (``kind`` says
    what a schema file of its format is)."""
    source = str(path)
    try:
        return decode_utf8(Path(path).read_bytes())
    except OSError as exc:
        msg = f"{source}: cannot read schema file: {exc.strerror or exc}"
        raise ContractError(msg, path=source, topic=topic, key=key) from exc
    except NotUtf8 as exc:
        msg = f"{source}: {exc}; a schema file is {kind}"
        raise ContractError(msg, path=source, topic=topic, key=key) from None
