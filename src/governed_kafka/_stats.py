"""Summary statistics for benchmarks: medians, percentiles, spreads."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

import attrs

__all__ = ["Figure", "percentile", "summarize"]


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``, linearly interpolated.

    Same definition as NumPy's default (``method="linear"``): the 50th percentile is
    the median, the 0th and 100th are the minimum and maximum.
    """
    if not values:
        msg = "percentile of no values"
        raise ValueError(msg)
    if not 0 <= q <= 100:
        msg = f"percentile must be between 0 and 100, got {q}"
        raise ValueError(msg)
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    # statistics.quantiles(method="inclusive") is the same linear interpolation, but only
    # at whole cut points; compute the rank directly to take any q.
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    fraction = rank - low
    return float(ordered[low] + (ordered[high] - ordered[low]) * fraction)


@attrs.frozen
class Figure:
    """One benchmark figure over repeated runs: the median and the spread."""

    median: float
    low: float
    high: float
    runs: tuple[float, ...]

    def to_dict(self) -> dict[str, object]:
        return {"median": self.median, "min": self.low, "max": self.high, "runs": list(self.runs)}


def summarize(runs: Sequence[float]) -> Figure:
    """The median of ``runs`` with their minimum and maximum."""
    if not runs:
        msg = "summarize needs at least one run"
        raise ValueError(msg)
    return Figure(
        median=float(statistics.median(runs)),
        low=float(min(runs)),
        high=float(max(runs)),
        runs=tuple(float(r) for r in runs),
    )
