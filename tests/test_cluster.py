"""cluster's value types: plan status and exit codes, live config fallbacks, argument checks."""

from __future__ import annotations

import pytest

from governed_kafka import ConfigError, Violation
from governed_kafka.cluster import (
    ApplyResult,
    ChangeResult,
    Cluster,
    Plan,
    TopicChange,
    TopicState,
)

CREATE = TopicChange(topic="a.b.c.v1", kind="create", wanted="1 partition, replication factor 1")
REFUSED = TopicChange(
    topic="a.b.c.v1",
    kind="partitions",
    field="partitions",
    live="4",
    wanted="2",
    refused="Kafka cannot remove partitions",
)
LINT_ERROR = Violation(
    rule="topic.owner-missing", severity="error", topic="a.b.c.v1", field="owner", message="m"
)


def _plan(*changes: TopicChange, violations: tuple[Violation, ...] = ()) -> Plan:
    return Plan(environment=None, changes=changes, in_sync=(), unmanaged=(), violations=violations)


def test_plan_without_changes_is_in_sync_with_exit_0() -> None:
    """A plan with nothing to do reports in-sync and exit code 0."""
    assert (_plan().status, _plan().exit_code) == ("in-sync", 0)


def test_plan_with_safe_changes_is_pending_with_exit_2() -> None:
    """A plan whose changes are all safe reports pending and exit code 2."""
    assert (_plan(CREATE).status, _plan(CREATE).exit_code) == ("pending", 2)


def test_plan_with_an_unsafe_change_is_refused_with_exit_1() -> None:
    """One unsafe change makes the whole plan refused, exit code 1."""
    plan = _plan(CREATE, REFUSED)
    assert (plan.status, plan.exit_code) == ("refused", 1)


def test_plan_with_lint_errors_is_refused_with_exit_1() -> None:
    """Contracts that fail lint make the plan refused even without changes."""
    plan = _plan(violations=(LINT_ERROR,))
    assert (plan.status, plan.exit_code) == ("refused", 1)


def test_apply_result_is_ok_only_when_every_change_applied() -> None:
    """ApplyResult.ok (exit 0) needs every change applied; one failure makes it exit 1."""
    applied = ChangeResult(change=CREATE, outcome="applied", message="created")
    failed = ChangeResult(change=CREATE, outcome="failed", message="no")
    assert ApplyResult(plan=_plan(CREATE), results=(applied,)).exit_code == 0
    assert ApplyResult(plan=_plan(CREATE), results=(applied, failed)).exit_code == 1


def test_unreported_config_falls_back_to_the_kafka_default() -> None:
    """A config the broker did not report reads as Kafka's default, or None when unknown."""
    state = TopicState(
        name="t", partitions=1, replication_factor=1, configs=(("retention.ms", "5"),)
    )
    assert state.config("retention.ms") == "5"
    assert state.config("cleanup.policy") == "delete"
    assert state.config("min.insync.replicas") == "1"
    assert state.config("max.message.bytes") is None


def test_change_to_dict_is_plain_data() -> None:
    """to_dict gives JSON-ready data with configs as a mapping and the safety flag."""
    data = REFUSED.to_dict()
    assert data["safe"] is False
    assert data["configs"] == {}
    assert data["refused"] == "Kafka cannot remove partitions"


def test_cluster_refuses_a_non_admin_setting() -> None:
    """An override that is not a global librdkafka property is refused naming the key."""
    with pytest.raises(ConfigError, match=r"'linger\.ms'") as refused:
        Cluster("127.0.0.1:1", overrides={"linger.ms": 5})
    assert refused.value.key == "linger.ms"


def test_cluster_refuses_a_timeout_that_is_not_positive() -> None:
    """A zero timeout would never wait for an answer: refused."""
    with pytest.raises(ValueError, match="timeout must be > 0"):
        Cluster("127.0.0.1:1", timeout=0)
