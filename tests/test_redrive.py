"""Choosing dead letters to show or redrive: --where clauses parsed, and matched."""

from __future__ import annotations

import pytest

from governed_kafka._redrive import DeadLetter, Where


def _letter(**fields: object) -> DeadLetter:
    values: dict[str, object] = {
        "topic": "a.b.c.v1.dlq",
        "partition": 0,
        "offset": 3,
        "key": b"k1",
        "origin_topic": "a.b.c.v1",
        "origin_partition": 0,
        "origin_offset": 9,
        "error_type": "builtins.ValueError",
        "error_message": "bad",
        "attempts": 3,
        "age_s": 1.0,
        "parked": False,
    }
    values.update(fields)
    return DeadLetter(**values)  # type: ignore[arg-type]


def test_an_error_type_matches_its_full_or_its_short_name() -> None:
    """error-type=ValueError and error-type=builtins.ValueError both pick a ValueError."""
    assert Where.parse(["error-type=ValueError"]).matches(_letter())
    assert Where.parse(["error-type=builtins.ValueError"]).matches(_letter())
    assert not Where.parse(["error-type=KeyError"]).matches(_letter())


def test_every_clause_must_match() -> None:
    """Clauses on the key and the origin topic narrow the choice together."""
    where = Where.parse(["key=k1", "origin-topic=a.b.c.v1"])
    assert where.matches(_letter())
    assert not where.matches(_letter(key=b"k2"))
    assert not where.matches(_letter(key=None))
    assert not where.matches(_letter(origin_topic="x.y.z.v1"))


@pytest.mark.parametrize("clause", ["colour=red", "error-type", "key=", "=x"])
def test_a_clause_that_is_not_field_equals_value_is_refused_by_name(clause: str) -> None:
    """A clause of an unknown field, or without a value, is refused naming the clause."""
    with pytest.raises(ValueError, match=f"--where {clause!r}: expected FIELD=VALUE"):
        Where.parse([clause])
