"""The errors both asyncio clients raise the same way."""

from __future__ import annotations

from .errors import ClosedError

__all__ = ["not_started"]


def not_started(kind: str, service: str) -> ClosedError:
    """A client used before ``start()``: the error says how to start it."""
    return ClosedError(
        f"{kind} for service {service!r} is not started: use `async with` or "
        f"`await {kind}.start()` first"
    )
