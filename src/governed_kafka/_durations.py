"""Durations as contracts write them: ``"500ms"``, ``"30s"``, ``"10m"``, ``"2h"``, ``"1d"``."""

from __future__ import annotations

import re
from typing import Final

__all__ = ["MAX_DURATION_MS", "duration_ms", "duration_text"]

#: Longest duration accepted: 7 days (a retry delay longer than that outlives most
#: retention settings, so the record would be deleted before it is due).
MAX_DURATION_MS: Final = 7 * 24 * 3600 * 1000

_UNITS: Final = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_DURATION: Final = re.compile(r"([0-9]{1,9})(ms|s|m|h|d)")


def duration_ms(value: object) -> int:
    """``value`` (a string such as ``"30s"``) in milliseconds; ``ValueError`` naming it."""
    match = _DURATION.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        msg = f"expected a duration such as '500ms', '30s', '10m', '2h' or '1d', got {value!r}"
        raise ValueError(msg)
    millis = int(match[1]) * _UNITS[match[2]]
    if not 0 < millis <= MAX_DURATION_MS:
        msg = f"duration {value!r} must be above 0 and at most 7 days"
        raise ValueError(msg)
    return millis


def duration_text(millis: int) -> str:
    """``millis`` written the way a contract would (the largest whole unit)."""
    for unit in ("d", "h", "m", "s"):
        size = _UNITS[unit]
        if millis % size == 0:
            return f"{millis // size}{unit}"
    return f"{millis}ms"
