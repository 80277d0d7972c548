"""Benchmark statistics on known inputs."""

from __future__ import annotations

import pytest

from governed_kafka._stats import percentile, summarize


def test_percentiles_interpolate_like_numpy() -> None:
    """Percentiles of 1..10 match NumPy's default linear interpolation."""
    values = [float(v) for v in range(10, 0, -1)]  # unsorted on purpose
    assert percentile(values, 0) == 1.0
    assert percentile(values, 50) == 5.5
    assert percentile(values, 95) == pytest.approx(9.55)
    assert percentile(values, 99) == pytest.approx(9.91)
    assert percentile(values, 100) == 10.0


def test_percentile_of_one_value_is_that_value() -> None:
    """A single measurement is every percentile of itself."""
    assert percentile([7.0], 99) == 7.0


@pytest.mark.parametrize("q", [-1, 100.5])
def test_percentile_outside_0_100_is_refused(q: float) -> None:
    """A percentile outside 0..100 is a ValueError, not an extrapolation."""
    with pytest.raises(ValueError, match="between 0 and 100"):
        percentile([1.0, 2.0], q)


def test_percentile_of_nothing_is_refused() -> None:
    """There is no percentile of an empty list."""
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


def test_summary_is_median_with_spread() -> None:
    """summarize() gives the median of the runs with their minimum and maximum."""
    figure = summarize([3.0, 1.0, 10.0, 2.0])
    assert (figure.median, figure.low, figure.high) == (2.5, 1.0, 10.0)
    assert figure.runs == (3.0, 1.0, 10.0, 2.0)
    assert summarize([4.0, 9.0, 5.0]).median == 5.0
