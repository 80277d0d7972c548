"""Loading governance.toml: strict structure, precise errors, environments."""

from __future__ import annotations

import json
import time
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
        ('retry_delays = ["30 seconds"]', "retry_delays", "duration such as"),
        ('retry_delays = ["8d"]', "retry_delays", "at most 7 days"),
        ('retry_topics = ["a.b.c.v1.retry"]', "retry_delays", "one delay per entry"),
        ('ordering = "partition"', "ordering", "'none', 'key'"),
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


# ------------------------------------------------------------------ hostile input (issue 14)

SECRET = "AKIA-not-a-real-secret-0123456789"

TOPIC = """
[[topics]]
name = "payments.order.created.v1"
partitions = 1
replication_factor = 1
producers = ["checkout"]
"""


def _with_schema(path: str) -> str:
    return TOPIC + f"value_schema = {path!r}\n"


def test_schema_paths_outside_the_contracts_folder_are_refused(tmp_path: Path) -> None:
    """A value_schema or key_schema that leaves the contracts file's folder is refused at load,
    whether by '..', by an absolute path or by a symlink, without reading it."""
    outside = tmp_path / "secrets.json"
    outside.write_text(json.dumps({"aws_secret_access_key": SECRET}), encoding="utf-8")
    contracts = tmp_path / "contracts"
    (contracts / "schemas").mkdir(parents=True)
    (contracts / "schemas" / "link.avsc").symlink_to(outside)
    for path in [
        "../secrets.json",
        str(outside),
        "schemas/link.avsc",
        "schemas/../../secrets.json",
    ]:
        file = write_catalog(contracts, _with_schema(path))
        with pytest.raises(ContractError, match="outside the folder") as refused:
            Catalog.load(file)
        assert refused.value.topic == "payments.order.created.v1"
        assert refused.value.key == "value_schema"
        assert SECRET not in str(refused.value)
    key_file = write_catalog(contracts, TOPIC + 'key_schema = "../secrets.json"\n')
    with pytest.raises(ContractError, match="outside the folder") as refused:
        Catalog.load(key_file)
    assert refused.value.key == "key_schema"


def test_schema_paths_inside_the_folder_and_symlinks_within_it_load(tmp_path: Path) -> None:
    """Subfolders, '..' that stays inside, and symlinks to files inside are fine."""
    (tmp_path / "schemas" / "v1").mkdir(parents=True)
    (tmp_path / "schemas" / "v1" / "a.avsc").write_text('"string"', encoding="utf-8")
    (tmp_path / "schemas" / "current.avsc").symlink_to(tmp_path / "schemas" / "v1" / "a.avsc")
    file = write_catalog(tmp_path, _with_schema("schemas/v1/../current.avsc"))
    [contract] = Catalog.load(file)
    assert contract.value_schema == ((tmp_path / "schemas" / "v1" / "a.avsc").resolve(),)


def test_invalid_utf8_in_the_contracts_file_is_a_contract_error(tmp_path: Path) -> None:
    """A contracts file that is not UTF-8 is a ContractError naming the file and the byte."""
    path = tmp_path / "governance.toml"
    path.write_bytes(b"[policy]\nrequire_owner = true\n# caf\xe9 " + SECRET.encode() + b"\n")
    with pytest.raises(ContractError, match="not UTF-8") as refused:
        Catalog.load(path)
    assert refused.value.path == str(path)
    assert "line 3" in str(refused.value)
    assert SECRET not in str(refused.value)


def test_toml_nested_thousands_deep_is_a_contract_error(tmp_path: Path) -> None:
    """TOML nested 5,000 deep is a ContractError naming the file, not a RecursionError."""
    path = tmp_path / "governance.toml"
    path.write_text("x = " + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    with pytest.raises(ContractError, match="nested") as refused:
        Catalog.load(path)
    assert refused.value.path == str(path)
    inline = tmp_path / "inline.toml"
    inline.write_text("x = " + "{a = " * 5000 + "1" + "}" * 5000 + "\n", encoding="utf-8")
    with pytest.raises(ContractError, match="nested"):
        Catalog.load(inline)


@pytest.mark.parametrize(
    "name",
    ["payments/order", "payments order", "café.orders", "a" * 250, ".", "..", "topic\x00x"],
    ids=["slash", "space", "non-ascii", "too-long", "dot", "dotdot", "nul"],
)
def test_kafka_illegal_topic_names_are_refused_at_load(tmp_path: Path, name: str) -> None:
    """A topic name Kafka would refuse is a ContractError at load, naming the key."""
    data = {"topics": [{"name": name, "partitions": 1, "replication_factor": 1}]}
    with pytest.raises(ContractError, match="Kafka") as refused:
        Catalog.from_dict(data, path=tmp_path / "governance.toml")
    assert refused.value.key == "name"


def test_an_illegal_dead_letter_topic_name_is_refused_at_load(tmp_path: Path) -> None:
    """dead_letter_topic names a topic, so it follows Kafka's naming rules too."""
    topic = {"name": "a.b", "partitions": 1, "replication_factor": 1, "dead_letter_topic": "a b"}
    with pytest.raises(ContractError, match="Kafka") as refused:
        Catalog.from_dict({"topics": [topic]}, path=tmp_path / "governance.toml")
    assert refused.value.key == "dead_letter_topic"


def test_longest_legal_topic_name_loads(tmp_path: Path) -> None:
    """249 characters of [a-zA-Z0-9._-] is a legal Kafka topic name."""
    name = "A-z_0.9" + "x" * 242
    data = {"topics": [{"name": name, "partitions": 1, "replication_factor": 1}]}
    assert Catalog.from_dict(data, path=tmp_path / "governance.toml").topic(name).name == name


def test_a_topic_declared_twice_is_refused_at_load(tmp_path: Path) -> None:
    """Two [[topics]] tables with one name are a ContractError: no copy silently wins."""
    path = write_catalog(tmp_path, TOPIC + TOPIC.replace("partitions = 1", "partitions = 6"))
    with pytest.raises(ContractError, match="declared 2 times") as refused:
        Catalog.load(path)
    assert refused.value.topic == "payments.order.created.v1"
    assert refused.value.key == "name"


def test_long_lists_load_in_linear_time(tmp_path: Path) -> None:
    """Duplicate checks over 40,000 producers stay well under a second's work per item list."""
    producers = [f"service-{i}" for i in range(40_000)]
    topic = {"name": "a.b", "partitions": 1, "replication_factor": 1, "producers": producers}
    started = time.perf_counter()
    catalog = Catalog.from_dict({"topics": [topic]}, path=tmp_path / "governance.toml")
    assert time.perf_counter() - started < 5  # quadratic: about 18 s here
    assert len(catalog.topic("a.b").producers) == 40_000
    with pytest.raises(ContractError, match="'service-7' more than once"):
        Catalog.from_dict(
            {"topics": [{**topic, "producers": [*producers, "service-7"]}]},
            path=tmp_path / "governance.toml",
        )


@pytest.mark.parametrize(
    ("key", "pattern", "fragment"),
    [
        ("topic_name_pattern", "(?=x)", "cannot compile"),
        ("topic_name_pattern", r"(a)\1", "cannot compile"),
        ("group_id_pattern", "^{service}(?!x)", "cannot compile"),
        ("topic_name_pattern", "a" * 1001, "longer than 1000"),
    ],
    ids=["lookahead", "backreference", "group-lookahead", "too-long"],
)
def test_patterns_the_linear_engine_cannot_run_are_refused_naming_file_and_key(
    tmp_path: Path, key: str, pattern: str, fragment: str
) -> None:
    """Contract patterns run on a linear-time engine: what it cannot compile is refused at load."""
    path = write_catalog(tmp_path, f"[policy]\n{key} = '{pattern}'\n")
    with pytest.raises(ContractError, match=fragment) as refused:
        Catalog.load(path)
    assert refused.value.key == key
    assert str(path) in str(refused.value)


SERVICES = """
[environments.local]

[services.checkout]
principal = "User:checkout"
transactional_ids = ["checkout-*"]
producer_byte_rate = 1048576

[services.billing]
principal = "User:billing"
group_ids = ["billing", "billing-*"]
consumer_byte_rate = 2097152

[services.billing.environments.local]
principal = "User:billing-dev"
"""


def test_services_load_with_their_principals_groups_and_quotas(tmp_path: Path) -> None:
    """[services.NAME] tables load into ServiceContract values, environments laid over."""
    catalog = Catalog.load(write_catalog(tmp_path, SERVICES))
    checkout, billing = catalog.services
    assert (checkout.name, checkout.principal, checkout.user) == (
        "checkout",
        "User:checkout",
        "checkout",
    )
    assert checkout.transactional_ids == ("checkout-*",)
    assert checkout.producer_byte_rate == 1_048_576
    assert billing.group_ids == ("billing", "billing-*")
    assert catalog.service("billing") is billing
    assert catalog.service("nobody") is None
    local = Catalog.load(write_catalog(tmp_path, SERVICES), environment="local")
    assert local.service("billing").principal == "User:billing-dev"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("table", "key", "fragment"),
    [
        ('principal = "checkout"', "principal", "'Type:name'"),
        ('principal = "User:*"', "principal", "no wildcard"),
        ('principal = "User:checkout"\ngroup_ids = ["*"]', "group_ids", "a bare '*'"),
        ('principal = "User:checkout"\ngroup_ids = "billing"', "group_ids", "a list"),
        ('principal = "User:checkout"\nproducer_byte_rate = 0', "producer_byte_rate", ">= 1"),
        ('principal = "User:checkout"\nrole = "admin"', "role", "unknown key"),
        ("group_ids = []", "principal", "required key is missing"),
    ],
)
def test_malformed_services_are_refused_naming_file_service_and_key(
    tmp_path: Path, table: str, key: str, fragment: str
) -> None:
    """A bad [services.NAME] table is a ContractError naming the file, the service, the key."""
    path = write_catalog(tmp_path, f"[services.checkout]\n{table}\n")
    with pytest.raises(ContractError, match=fragment) as refused:
        Catalog.load(path)
    assert (refused.value.service, refused.value.key) == ("checkout", key)
    assert str(path) in str(refused.value)
    assert "service 'checkout'" in str(refused.value)


def test_retry_tiers_load_with_their_delays_in_milliseconds(tmp_path: Path) -> None:
    """retry_topics and retry_delays load as (topic, delay in ms) tiers, with key order."""
    body = (
        '[[topics]]\nname = "a.b.c.v1"\npartitions = 1\nreplication_factor = 1\n'
        'retry_topics = ["a.b.c.v1.retry-30s", "a.b.c.v1.retry-10m"]\n'
        'retry_delays = ["30s", "10m"]\nordering = "key"\n'
    )
    contract = Catalog.load(write_catalog(tmp_path, body)).topic("a.b.c.v1")
    assert contract.retry_tiers == (("a.b.c.v1.retry-30s", 30_000), ("a.b.c.v1.retry-10m", 600_000))
    assert contract.ordering == "key"
