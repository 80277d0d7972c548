"""Loading governance.toml: strict structure, precise errors, environments."""

from __future__ import annotations

from pathlib import Path

import pytest

from governed_kafka import Catalog, ContractError, GovernanceViolation, Policy
from kafka_helpers import write_catalog

FULL = """
[policy]
topic_name_pattern = '^[a-z][a-z0-9-]*\\.[a-z][a-z0-9-]*\\.[a-z][a-z0-9-]*\\.v[0-9]+(\\.dlq)?$'
min_replication_factor = 3
min_insync_replicas = 2
max_partitions = 64
require_owner = true
require_retention = true
default_compatibility = "BACKWARD"

[environments.local]
min_replication_factor = 1
min_insync_replicas = 1

[environments.prod]

[[topics]]
name = "payments.order.created.v1"
owner = "team-payments"
partitions = 6
replication_factor = 3
min_insync_replicas = 2
cleanup_policy = "delete"
retention_ms = 604800000
key = "required"
value_schema = ["schemas/order_created.v1.avsc", "schemas/order_created.v2.avsc"]
compatibility = "BACKWARD_TRANSITIVE"
event_types = ["payments.OrderCreated"]
producers = ["checkout"]
consumers = ["billing", "analytics"]
dead_letter_topic = "payments.order.created.v1.dlq"

[topics.environments.local]
partitions = 2
replication_factor = 1
min_insync_replicas = 1

[[topics]]
name = "payments.order.created.v1.dlq"
owner = "team-payments"
partitions = 1
replication_factor = 3
min_insync_replicas = 2
cleanup_policy = "delete"
retention_ms = 1209600000
key = "optional"
producers = ["billing", "analytics"]
consumers = ["ops"]
"""


@pytest.fixture
def full(tmp_path: Path) -> Path:
    return write_catalog(tmp_path, FULL)


def test_loads_every_documented_field(full: Path) -> None:
    """The DESIGN.md example loads with every field typed and schema paths made absolute."""
    catalog = Catalog.load(full)
    topic = catalog.topic("payments.order.created.v1")
    assert topic.owner == "team-payments"
    assert (topic.partitions, topic.replication_factor, topic.min_insync_replicas) == (6, 3, 2)
    assert topic.key == "required"
    assert topic.retention_ms == 604_800_000
    assert topic.compatibility == "BACKWARD_TRANSITIVE"
    assert topic.event_types == ("payments.OrderCreated",)
    assert topic.producers == ("checkout",)
    assert topic.consumers == ("billing", "analytics")
    assert topic.dead_letter_topic == "payments.order.created.v1.dlq"
    assert topic.value_schema == (
        full.parent / "schemas/order_created.v1.avsc",
        full.parent / "schemas/order_created.v2.avsc",
    )
    assert topic.current_value_schema == full.parent / "schemas/order_created.v2.avsc"
    assert catalog.policy == Policy(
        topic_name_pattern=catalog.policy.topic_name_pattern,
        min_replication_factor=3,
        min_insync_replicas=2,
        max_partitions=64,
        default_compatibility="BACKWARD",
    )
    assert catalog.environments == frozenset({"local", "prod"})
    assert [t.name for t in catalog] == [
        "payments.order.created.v1",
        "payments.order.created.v1.dlq",
    ]


def test_environment_overrides_policy_and_topics(full: Path) -> None:
    """Loading for an environment lays its policy and per-topic overrides over the base."""
    local = Catalog.load(full, environment="local")
    assert local.environment == "local"
    assert local.policy.min_replication_factor == 1
    topic = local.topic("payments.order.created.v1")
    assert (topic.partitions, topic.replication_factor, topic.min_insync_replicas) == (2, 1, 1)
    dlq = local.topic("payments.order.created.v1.dlq")
    assert dlq.replication_factor == 3  # no override for this topic
    base = Catalog.load(full)
    assert base.topic("payments.order.created.v1").partitions == 6


def test_declared_environment_without_overrides_uses_the_base(full: Path) -> None:
    """An empty [environments.prod] table is a valid environment that changes nothing."""
    prod = Catalog.load(full, environment="prod")
    assert prod.policy == Catalog.load(full).policy


def test_undeclared_environment_is_refused(full: Path) -> None:
    """Asking for an environment the file does not declare raises, naming the declared ones."""
    with pytest.raises(ContractError, match="'staging' is not declared") as refused:
        Catalog.load(full, environment="staging")
    assert "local, prod" in str(refused.value)
    assert refused.value.key == "environments"


def test_unknown_topic_key_names_file_topic_and_key(tmp_path: Path) -> None:
    """A misspelt key is refused with the file, the topic and the key in the error."""
    path = write_catalog(
        tmp_path,
        """
        [[topics]]
        name = "a.b.c.v1"
        partitions = 1
        replication_factor = 1
        retention_msec = 1000
        """,
    )
    with pytest.raises(ContractError) as refused:
        Catalog.load(path)
    error = refused.value
    assert (error.path, error.topic, error.key) == (str(path), "a.b.c.v1", "retention_msec")
    assert str(path) in str(error)
    assert "'a.b.c.v1'" in str(error)
    assert "'retention_msec'" in str(error)


@pytest.mark.parametrize(
    ("line", "key", "fragment"),
    [
        ('partitions = "six"', "partitions", "expected an integer"),
        ("partitions = 0", "partitions", "must be >= 1"),
        ("partitions = true", "partitions", "expected an integer"),
        ("retention_ms = -2", "retention_ms", "must be >= -1"),
        ('key = "sometimes"', "key", "expected one of 'required', 'optional', 'forbidden'"),
        ('compatibility = "SIDEWAYS"', "compatibility", "BACKWARD_TRANSITIVE"),
        ('producers = "checkout"', "producers", "expected a list of strings"),
        ('producers = ["a", "a"]', "producers", "more than once"),
        ("owner = 3", "owner", "non-empty string"),
        ('configs = { "max.message.bytes" = [1] }', "configs", "max.message.bytes"),
        ('configs = { "retention.ms" = 5 }', "configs", "retention_ms"),
    ],
)
def test_malformed_values_are_refused_with_topic_and_key(
    tmp_path: Path, line: str, key: str, fragment: str
) -> None:
    """Each malformed value is refused, naming the topic, the key and what was expected."""
    body = '[[topics]]\nname = "a.b.c.v1"\nreplication_factor = 1\n'
    if not line.startswith("partitions"):
        body += "partitions = 1\n"
    path = write_catalog(tmp_path, body + line + "\n")
    with pytest.raises(ContractError, match=fragment) as refused:
        Catalog.load(path)
    assert refused.value.topic == "a.b.c.v1"
    assert refused.value.key == key


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    """All problems of a file are collected into one error, not only the first."""
    path = write_catalog(
        tmp_path,
        """
        color = "blue"

        [policy]
        min_replication_factor = "three"

        [[topics]]
        name = "a.b.c.v1"
        partitions = 1

        [[topics]]
        partitions = 1
        replication_factor = 1
        """,
    )
    with pytest.raises(ContractError) as refused:
        Catalog.load(path)
    located = {(p.topic, p.key) for p in refused.value.problems}
    assert located == {
        (None, "color"),
        (None, "min_replication_factor"),
        ("a.b.c.v1", "replication_factor"),
        ("topics[1]", "name"),
    }
    assert "4 problems" in str(refused.value)


def test_environment_may_not_rename_a_topic(tmp_path: Path) -> None:
    """A per-topic environment override of the name is refused."""
    path = write_catalog(
        tmp_path,
        """
        [[topics]]
        name = "a.b.c.v1"
        partitions = 1
        replication_factor = 1
        [topics.environments.local]
        name = "a.b.c.v2"
        """,
    )
    with pytest.raises(ContractError, match="may not change 'name'") as refused:
        Catalog.load(path, environment="local")
    assert refused.value.key == "environments.local.name"


def test_invalid_regex_in_policy_is_refused(tmp_path: Path) -> None:
    """A topic_name_pattern that does not compile is refused at load."""
    path = write_catalog(tmp_path, "[policy]\ntopic_name_pattern = '([a-z'\n")
    with pytest.raises(ContractError, match="regular expression") as refused:
        Catalog.load(path)
    assert refused.value.key == "topic_name_pattern"


def test_missing_file_and_bad_toml_are_contract_errors(tmp_path: Path) -> None:
    """A missing file and a file that is not TOML both raise ContractError naming the file."""
    with pytest.raises(ContractError, match="not found"):
        Catalog.load(tmp_path / "nope.toml")
    broken = write_catalog(tmp_path, "[[topics]\nname = 1\n")
    with pytest.raises(ContractError, match="not valid TOML") as refused:
        Catalog.load(broken)
    assert refused.value.path == str(broken)


def test_unknown_topic_lookup_is_a_governance_violation(full: Path) -> None:
    """Looking up a topic that has no contract raises GovernanceViolation (contract.missing)."""
    catalog = Catalog.load(full)
    with pytest.raises(GovernanceViolation) as refused:
        catalog.topic("payments.order.deleted.v1")
    assert refused.value.rule == "contract.missing"
    assert "payments.order.deleted.v1" not in catalog


def test_topic_configs_spell_broker_names(full: Path) -> None:
    """topic_configs() gives the broker's config names with string values."""
    topic = Catalog.load(full).topic("payments.order.created.v1")
    assert topic.topic_configs() == {
        "cleanup.policy": "delete",
        "retention.ms": "604800000",
        "min.insync.replicas": "2",
    }


def test_combined_cleanup_policy_is_normalised(tmp_path: Path) -> None:
    """'delete, compact' loads as 'compact,delete' and counts as compacted."""
    path = write_catalog(
        tmp_path,
        """
        [[topics]]
        name = "a.b.c.v1"
        partitions = 1
        replication_factor = 1
        cleanup_policy = "delete, compact"
        """,
    )
    topic = Catalog.load(path).topic("a.b.c.v1")
    assert topic.cleanup_policy == "compact,delete"
    assert topic.is_compacted


def test_services_find_their_topics(full: Path) -> None:
    """produced_by and consumed_by list the contracts naming a service."""
    catalog = Catalog.load(full)
    assert [t.name for t in catalog.produced_by("billing")] == ["payments.order.created.v1.dlq"]
    assert [t.name for t in catalog.consumed_by("billing")] == ["payments.order.created.v1"]


def test_tenancy_and_gate_policy_keys_load(tmp_path: Path) -> None:
    """require_tenant_prefix, group_id_pattern and verify_topics load into the Policy."""
    path = write_catalog(
        tmp_path,
        """
        [policy]
        require_tenant_prefix = true
        group_id_pattern = '^{service}(\\.[a-z0-9-]+)?$'
        verify_topics = false
        """,
    )
    policy = Catalog.load(path).policy
    assert policy.require_tenant_prefix is True
    assert policy.group_id_pattern == "^{service}(\\.[a-z0-9-]+)?$"
    assert policy.verify_topics is False


@pytest.mark.parametrize(
    ("line", "key", "fragment"),
    [
        ('require_tenant_prefix = "yes"', "require_tenant_prefix", "expected true or false"),
        ("group_id_pattern = '({service}'", "group_id_pattern", "regular expression"),
        ("verify_topics = 1", "verify_topics", "expected true or false"),
    ],
)
def test_malformed_new_policy_keys_are_refused(
    tmp_path: Path, line: str, key: str, fragment: str
) -> None:
    """A malformed tenancy or gate policy value is refused, naming the key."""
    path = write_catalog(tmp_path, f"[policy]\n{line}\n")
    with pytest.raises(ContractError, match=fragment) as refused:
        Catalog.load(path)
    assert refused.value.key == key


def test_group_id_pattern_stands_in_the_service_name() -> None:
    """{service} in group_id_pattern matches the consumer's own service name, escaped."""
    policy = Policy(group_id_pattern=r"^{service}\.[a-z]+$")
    assert policy.group_id_matches("billing.invoices", service="billing")
    assert not policy.group_id_matches("analytics.invoices", service="billing")
    assert not policy.group_id_matches("aXb.invoices", service="a.b")


def test_verify_topics_defaults_on_except_in_local(full: Path) -> None:
    """Without a policy key, clients verify live topics except in the environment named local."""
    assert Catalog.load(full).verify_topics is True
    assert Catalog.load(full, environment="prod").verify_topics is True
    assert Catalog.load(full, environment="local").verify_topics is False


def test_policy_verify_topics_wins_over_the_environment_default(tmp_path: Path) -> None:
    """verify_topics set in [environments.local] turns the gate on there."""
    path = write_catalog(
        tmp_path,
        """
        [environments.local]
        verify_topics = true
        """,
    )
    assert Catalog.load(path, environment="local").verify_topics is True
