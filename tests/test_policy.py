"""The policy's patterns: full matches on a linear-time engine, whatever the pattern."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from governed_kafka import Policy


def _runs_within(code: str, seconds: float) -> bool:
    """Whether ``code`` finishes in a fresh interpreter within ``seconds``."""
    try:
        subprocess.run([sys.executable, "-c", textwrap.dedent(code)], check=True, timeout=seconds)
    except subprocess.TimeoutExpired:
        return False
    return True


def test_a_nested_quantifier_topic_pattern_cannot_stall_lint() -> None:
    """'^(a+)+$' against a long name that does not match answers at once, not in hours."""
    code = """
        from governed_kafka import Catalog
        catalog = Catalog.from_dict({
            "policy": {"topic_name_pattern": "^(a+)+$"},
            "topics": [{"name": "a" * 40 + "b", "partitions": 1, "replication_factor": 1}],
        })
        assert [v.rule for v in catalog.lint() if v.rule == "topic.name-pattern"]
    """
    assert _runs_within(code, 20)


def test_a_nested_quantifier_group_id_pattern_cannot_stall_a_consumer() -> None:
    """The same for group_id_pattern, checked when a consumer is built."""
    code = """
        from governed_kafka import Policy
        policy = Policy(group_id_pattern="^{service}(a+)+$")
        assert not policy.group_id_matches("billing" + "a" * 40 + "b", service="billing")
    """
    assert _runs_within(code, 20)


def test_patterns_match_in_full() -> None:
    """A pattern must match the whole name, with or without anchors."""
    policy = Policy(topic_name_pattern=r"[a-z]+\.v[0-9]+")
    assert policy.name_matches("orders.v1")
    assert not policy.name_matches("orders.v1.extra")
    assert not policy.name_matches("x.orders.v1")


def test_service_names_are_literal_inside_group_id_pattern() -> None:
    """Regex characters in a service name match only themselves."""
    policy = Policy(group_id_pattern=r"^{service}-[0-9]+$")
    assert policy.group_id_matches("a.b+c-1", service="a.b+c")
    assert not policy.group_id_matches("aXbbc-1", service="a.b+c")


def test_a_pattern_given_in_code_is_held_to_the_same_rules() -> None:
    """Policy() refuses what a contracts file may not hold, with ValueError naming the key."""
    with pytest.raises(ValueError, match="topic_name_pattern"):
        Policy(topic_name_pattern="(?=x)")
    with pytest.raises(ValueError, match="group_id_pattern"):
        Policy(group_id_pattern="{service}" + "a" * 1000)
