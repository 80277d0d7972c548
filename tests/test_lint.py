"""Catalog.lint(): every rule flags a contract that breaks it and passes one that keeps it."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest

from governed_kafka import Catalog, Policy, TopicContract, Violation
from governed_kafka.lint import RULES, TOPIC_RULES, lint
from kafka_helpers import write_catalog

EXAMPLES = Path(__file__).parent.parent / "examples"

#: The strict policy of DESIGN.md: durable minimums, owners and retention required.
STRICT: dict[str, Any] = {
    "topic_name_pattern": r"^[a-z][a-z0-9-]*\.[a-z][a-z0-9-]*\.[a-z][a-z0-9-]*\.v[0-9]+(\.dlq)?$",
    "min_replication_factor": 3,
    "min_insync_replicas": 2,
    "max_partitions": 64,
    "require_owner": True,
    "require_retention": True,
}

#: A contract that keeps every rule under STRICT.
GOOD: dict[str, Any] = {
    "name": "payments.order.created.v1",
    "owner": "team-payments",
    "tenant": "payments",
    "partitions": 6,
    "replication_factor": 3,
    "min_insync_replicas": 2,
    "cleanup_policy": "delete",
    "retention_ms": 604_800_000,
    "key": "required",
    "producers": ["checkout"],
    "consumers": ["billing", "analytics"],
}

#: A dead-letter topic that keeps every rule for GOOD's consumers.
GOOD_DLQ: dict[str, Any] = {
    "name": "payments.order.created.v1.dlq",
    "owner": "team-payments",
    "tenant": "payments",
    "partitions": 1,
    "replication_factor": 3,
    "min_insync_replicas": 2,
    "cleanup_policy": "delete",
    "retention_ms": 1_209_600_000,
    "key": "optional",
    "producers": ["billing", "analytics"],
    "consumers": ["ops"],
}


def catalog(
    *topics: dict[str, Any],
    policy: dict[str, Any] | None = None,
    folder: Path = EXAMPLES,
    services: dict[str, dict[str, Any]] | None = None,
    **changes: Any,
) -> Catalog:
    """A catalog of ``topics`` (GOOD when none) under STRICT updated with ``policy``.

    ``changes`` update the first topic; a change to ``None`` removes the key. Schema paths
    are relative to ``folder``, where the contracts file would be. ``services`` are the
    ``[services.NAME]`` tables.
    """
    tables = [copy.deepcopy(t) for t in topics] or [copy.deepcopy(GOOD)]
    for key, value in changes.items():
        if value is None:
            tables[0].pop(key, None)
        else:
            tables[0][key] = value
    data: dict[str, Any] = {"policy": {**STRICT, **(policy or {})}, "topics": tables}
    if services is not None:
        data["services"] = services
    return Catalog.from_dict(data, path=folder / "governance.toml")


def principals(*names: str, **tables: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``[services]`` tables giving each of ``names`` the principal ``User:<name>``."""
    services = {name: {"principal": f"User:{name}"} for name in names}
    for name, table in tables.items():
        services[name] = {"principal": f"User:{name}", **table}
    return services


def with_dlq(**dlq_changes: Any) -> Catalog:
    """GOOD with GOOD_DLQ as its dead-letter topic, the DLQ updated with ``dlq_changes``."""
    dlq = copy.deepcopy(GOOD_DLQ)
    for key, value in dlq_changes.items():
        if value is None:
            dlq.pop(key, None)
        else:
            dlq[key] = value
    source = {**GOOD, "dead_letter_topic": GOOD_DLQ["name"]}
    return catalog(source, dlq)


TIER = "payments.order.created.v1.retry"

#: A retry topic that keeps every rule for GOOD's consumers.
GOOD_TIER: dict[str, Any] = {
    **GOOD_DLQ,
    "name": TIER,
    "partitions": 6,
    "retention_ms": 86_400_000,
    "producers": ["billing", "analytics"],
    "consumers": ["billing", "analytics"],
}


def with_tiers(*, tier: dict[str, Any] | None = None, **source: Any) -> Catalog:
    """GOOD with one retry tier (GOOD_TIER updated with ``tier``) and GOOD_DLQ after it
    (six partitions, like GOOD); ``source`` updates GOOD (``None`` removes a key)."""
    table = {
        **GOOD,
        "retry_topics": [TIER],
        "retry_delays": ["30s"],
        "dead_letter_topic": DLQ,
    }
    for key, value in source.items():
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value
    return catalog(table, {**GOOD_TIER, **(tier or {})}, {**GOOD_DLQ, "partitions": 6})


def duplicated(loaded: Catalog) -> Catalog:
    """``loaded`` with its first topic declared twice: loading refuses that, so build it."""
    first = loaded.topics[0]
    return attrs.evolve(loaded, topics=(first, attrs.evolve(first, partitions=3)))


@attrs.frozen
class Case:
    """A rule, a catalog that breaks it, one that keeps it, and what the violation says."""

    rule: str
    failing: Callable[[], Catalog]
    passing: Callable[[], Catalog]
    topic: str | None
    field: str | None
    fragment: str
    severity: str = "error"


DLQ = GOOD_DLQ["name"]
SRC = GOOD["name"]
#: The example schema versions (paths relative to examples/governance.toml).
VERSIONS = ["schemas/order_created.v1.avsc", "schemas/order_created.v2.avsc"]
#: A v2 whose amount_cents changes type, and v1, relative to the repository (schema paths
#: stay inside the contracts file's folder).
BREAKING = [
    "examples/schemas/order_created.v1.avsc",
    "tests/schemas/order_created.v2-breaking.avsc",
]

#: The test schemas of every format, relative to tests/ (where their contracts file is).
TESTS = Path(__file__).parent
JSON_VERSIONS = ["schemas/order_created.v1.json", "schemas/order_created.v2.json"]
PROTO_VERSIONS = ["schemas/order.v1.proto", "schemas/order.v2.proto"]

REQUIRE_PRINCIPALS = {"require_principals": True}
BY_SERVICE = {"group_id_pattern": "^{service}-.*$"}

CASES = [
    Case(
        "service.principal-missing",
        lambda: catalog(
            policy=REQUIRE_PRINCIPALS, consumers=["billing"], services=principals("checkout")
        ),
        lambda: catalog(
            policy={**REQUIRE_PRINCIPALS, **BY_SERVICE},
            consumers=["billing"],
            services=principals("checkout", "billing"),
        ),
        SRC,
        "consumers",
        "[services.billing]",
    ),
    Case(
        "service.groups",
        lambda: catalog(consumers=["billing"], services=principals("checkout", "billing")),
        lambda: catalog(
            consumers=["billing"],
            services=principals("checkout", billing={"group_ids": ["billing", "billing-*"]}),
        ),
        None,
        "services.billing.group_ids",
        "declare its group_ids",
        severity="warning",
    ),
    Case(
        "service.group-pattern",
        lambda: catalog(
            policy=BY_SERVICE,
            consumers=["billing"],
            services=principals("checkout", billing={"group_ids": ["payments-billing"]}),
        ),
        lambda: catalog(
            policy=BY_SERVICE,
            consumers=["billing"],
            services=principals("checkout", billing={"group_ids": ["billing-main"]}),
        ),
        None,
        "services.billing.group_ids",
        "'payments-billing'",
    ),
    Case(
        "service.unused",
        lambda: catalog(policy=BY_SERVICE, services=principals("checkout", "ops")),
        lambda: catalog(policy=BY_SERVICE, services=principals("checkout")),
        None,
        "services.ops",
        "'ops'",
        severity="warning",
    ),
    Case(
        "topic.exactly-once-producer",
        lambda: catalog(exactly_once=True, services=principals("checkout")),
        lambda: catalog(
            exactly_once=True,
            services=principals(checkout={"transactional_ids": ["checkout-tx-*"]}),
        ),
        SRC,
        "producers",
        "[services.checkout] table declares no transactional_ids",
    ),
    Case(
        "schema.parse",
        lambda: catalog(value_schema=["schemas/no-such-file.avsc"]),
        lambda: catalog(value_schema=VERSIONS),
        SRC,
        "value_schema[0]",
        "no-such-file.avsc",
    ),
    Case(
        "schema.compatibility",
        lambda: catalog(value_schema=BREAKING, compatibility="BACKWARD", folder=EXAMPLES.parent),
        lambda: catalog(value_schema=VERSIONS, compatibility="BACKWARD_TRANSITIVE"),
        SRC,
        "value_schema",
        "'amount_cents'",
    ),
    Case(
        "schema.subject",
        lambda: catalog(
            value_schema=["schemas/untitled.json"], subject_strategy="record", folder=TESTS
        ),
        lambda: catalog(
            value_schema=["schemas/order_created.v1.json"], subject_strategy="record", folder=TESTS
        ),
        SRC,
        "value_schema",
        "without 'title'",
    ),
    Case(
        "schema.format",
        lambda: catalog(
            value_schema=["schemas/order_created.v1.json", "schemas/order.v1.proto"], folder=TESTS
        ),
        lambda: catalog(value_schema=JSON_VERSIONS, folder=TESTS),
        SRC,
        "value_schema",
        "mixes schema formats (JSON, PROTOBUF)",
    ),
    Case(
        "schema.event-types",
        lambda: catalog(value_schema=VERSIONS, event_types=["payments.OrderShipped"]),
        lambda: catalog(value_schema=VERSIONS, event_types=["payments.OrderCreated"]),
        SRC,
        "event_types",
        "payments.OrderShipped",
    ),
    Case(
        "schema.timestamp-field",
        lambda: catalog(value_schema=VERSIONS, timestamp_field="order_id"),
        lambda: catalog(value_schema=VERSIONS, timestamp_field="created_at"),
        SRC,
        "timestamp_field",
        "order_id",
    ),
    Case(
        "topic.name-pattern",
        lambda: catalog(name="Payments_Orders"),
        catalog,
        "Payments_Orders",
        "name",
        "does not match the policy's topic_name_pattern",
    ),
    Case(
        "topic.owner-missing",
        lambda: catalog(owner=None),
        lambda: catalog(owner=None, policy={"require_owner": False}),
        SRC,
        "owner",
        "owning team",
    ),
    Case(
        "topic.retention-missing",
        lambda: catalog(retention_ms=None),
        lambda: catalog(retention_ms=None, cleanup_policy="compact"),
        SRC,
        "retention_ms",
        "no retention_ms",
    ),
    Case(
        "topic.replication-factor",
        lambda: catalog(replication_factor=2, min_insync_replicas=1),
        lambda: catalog(replication_factor=3),
        SRC,
        "replication_factor",
        "replication_factor 2 is below the policy minimum 3",
    ),
    Case(
        "topic.min-insync-replicas",
        lambda: catalog(min_insync_replicas=1),
        lambda: catalog(min_insync_replicas=2),
        SRC,
        "min_insync_replicas",
        "min_insync_replicas 1 is below the policy minimum 2",
    ),
    Case(
        "topic.min-insync-not-below-rf",
        lambda: catalog(replication_factor=3, min_insync_replicas=3),
        lambda: catalog(
            replication_factor=1,
            min_insync_replicas=1,
            policy={"min_replication_factor": 1, "min_insync_replicas": 1},
        ),
        SRC,
        "min_insync_replicas",
        "losing a single replica would stop every write",
    ),
    Case(
        "topic.durability",
        lambda: catalog(replication_factor=2, min_insync_replicas=1),
        lambda: catalog(replication_factor=3, min_insync_replicas=2),
        SRC,
        None,
        "the governed producer's guarantee (acks=all + idempotence) only protects data when "
        "replication_factor >= 3 and min_insync_replicas >= 2",
    ),
    Case(
        "topic.partitions-max",
        lambda: catalog(partitions=65),
        lambda: catalog(partitions=64),
        SRC,
        "partitions",
        "partitions 65 is above the policy's max_partitions 64",
    ),
    Case(
        "topic.cleanup-policy",
        lambda: catalog(cleanup_policy="compacted"),
        lambda: catalog(cleanup_policy="compact,delete"),
        SRC,
        "cleanup_policy",
        "'compacted' is not one of 'delete', 'compact', 'compact,delete'",
    ),
    Case(
        "topic.compacted-key",
        lambda: catalog(cleanup_policy="compact", key="optional"),
        lambda: catalog(cleanup_policy="compact", key="required"),
        SRC,
        "key",
        "set key = 'required'",
    ),
    Case(
        "topic.schema-missing",
        lambda: catalog(policy={"require_schema": True}),
        lambda: catalog(
            policy={"require_schema": True}, value_schema="schemas/order_created.v1.avsc"
        ),
        SRC,
        "value_schema",
        "requires every topic to declare its schema",
    ),
    Case(
        "topic.no-producers",
        lambda: catalog(producers=[]),
        catalog,
        SRC,
        "producers",
        "no service may write",
    ),
    Case(
        "topic.no-consumers",
        lambda: catalog(consumers=[]),
        catalog,
        SRC,
        "consumers",
        "nothing reads this topic",
        severity="warning",
    ),
    Case(
        "topic.tenant-missing",
        lambda: catalog(tenant=None, policy={"require_tenant_prefix": True}),
        lambda: catalog(policy={"require_tenant_prefix": True}),
        SRC,
        "tenant",
        "requires every topic to name its tenant",
    ),
    Case(
        "topic.tenant-prefix",
        lambda: catalog(tenant="billing", policy={"require_tenant_prefix": True}),
        lambda: catalog(tenant="payments", policy={"require_tenant_prefix": True}),
        SRC,
        "name",
        "does not start with its tenant's prefix 'billing.'",
    ),
    Case(
        "topic.duplicate",
        lambda: duplicated(catalog()),
        lambda: catalog(GOOD, {**GOOD, "name": "payments.order.updated.v1"}),
        SRC,
        "name",
        "declared 2 times",
    ),
    Case(
        "dead-letter.missing",
        lambda: catalog(dead_letter_topic=DLQ),
        with_dlq,
        SRC,
        "dead_letter_topic",
        f"dead_letter_topic {DLQ!r} has no contract",
    ),
    Case(
        "dead-letter.self",
        lambda: catalog(dead_letter_topic=SRC),
        with_dlq,
        SRC,
        "dead_letter_topic",
        "its own dead_letter_topic",
    ),
    Case(
        "dead-letter.schema",
        lambda: with_dlq(value_schema="schemas/order_created.v1.avsc"),
        with_dlq,
        DLQ,
        "value_schema",
        "must carry raw bytes",
    ),
    Case(
        "dead-letter.key-required",
        lambda: with_dlq(key="required"),
        lambda: with_dlq(key="forbidden"),
        DLQ,
        "key",
        "a keyless record of the source could not be dead-lettered",
    ),
    Case(
        "dead-letter.producers",
        lambda: with_dlq(producers=["billing"]),
        lambda: with_dlq(producers=["billing", "analytics", "ops"]),
        DLQ,
        "producers",
        "missing: analytics",
    ),
    Case(
        "retry.missing",
        lambda: with_tiers(retry_topics=["payments.order.created.v1.later"]),
        with_tiers,
        SRC,
        "retry_topics",
        "'payments.order.created.v1.later' has no contract",
    ),
    Case(
        "retry.self",
        lambda: with_tiers(retry_topics=[SRC]),
        with_tiers,
        SRC,
        "retry_topics",
        "is the topic itself",
    ),
    Case(
        "retry.dead-letter",
        lambda: with_tiers(dead_letter_topic=None),
        with_tiers,
        SRC,
        "dead_letter_topic",
        "need a dead_letter_topic",
    ),
    Case(
        "retry.shape",
        lambda: with_tiers(tier={"cleanup_policy": "compact", "key": "required"}),
        with_tiers,
        TIER,
        "value_schema",
        "is compacted",
    ),
    Case(
        "retry.rights",
        lambda: with_tiers(tier={"consumers": ["billing"]}),
        with_tiers,
        TIER,
        "producers",
        "missing: analytics",
    ),
    Case(
        "retry.retention",
        lambda: with_tiers(tier={"retention_ms": 20_000}),
        with_tiers,
        TIER,
        "retention_ms",
        "deleted before they are due",
    ),
    Case(
        "ordering.key-required",
        lambda: with_tiers(ordering="key", key="optional"),
        lambda: with_tiers(ordering="key"),
        SRC,
        "ordering",
        "needs key = 'required'",
    ),
    Case(
        "ordering.partitions",
        lambda: with_tiers(ordering="key", tier={"partitions": 3}),
        lambda: with_tiers(ordering="key"),
        SRC,
        "partitions",
        f"{TIER!r} has 3 partitions",
    ),
]


def _ids(case: Case) -> str:
    return case.rule


def _matching(violations: list[Violation], rule: str) -> list[Violation]:
    return [v for v in violations if v.rule == rule]


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_rule_flags_the_contract_that_breaks_it(case: Case) -> None:
    """The failing contract yields one violation of the rule, naming topic, field and cause."""
    found = _matching(case.failing().lint(), case.rule)
    assert len(found) == 1, found
    violation = found[0]
    assert violation.topic == case.topic
    assert violation.field == case.field
    assert violation.severity == case.severity
    assert case.fragment in violation.message


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_rule_passes_the_contract_that_keeps_it(case: Case) -> None:
    """The passing contract yields no violation of the rule."""
    assert _matching(case.passing().lint(), case.rule) == []


def test_every_rule_has_a_case() -> None:
    """Each rule id the module reports is exercised by a failing and a passing case here."""
    assert sorted(c.rule for c in CASES) == sorted(RULES)


def test_a_dead_letter_topic_with_a_key_schema_breaks_the_dead_letter_schema_rule() -> None:
    """Dead letters carry the original key bytes too: a key_schema there is refused."""
    [found] = _matching(
        with_dlq(key_schema="schemas/order_created.v1.avsc").lint(), "dead-letter.schema"
    )
    assert (found.topic, found.field) == (DLQ, "key_schema")
    assert "original key and value bytes" in found.message


def test_an_exactly_once_producer_without_a_services_table_is_named() -> None:
    """A producer of an exactly_once topic with no [services] table at all is flagged too."""
    found = _matching(catalog(exactly_once=True).lint(), "topic.exactly-once-producer")
    assert [v.message for v in found] == [
        "exactly_once = true, but producer 'checkout' is not declared transactional: it has "
        "no [services.checkout] table declaring transactional_ids; its producers are refused "
        "unless made with a transactional_id"
    ]


def test_good_contracts_lint_clean() -> None:
    """The reference contract and its dead-letter topic break no rule at all."""
    assert with_dlq().lint() == []


def test_example_contracts_lint_clean_in_every_environment() -> None:
    """examples/governance.toml is clean for its base values and each environment."""
    for environment in (None, "local", "prod"):
        assert Catalog.load(EXAMPLES / "governance.toml", environment=environment).lint() == []


def test_compacted_dead_letter_topic_requires_a_key() -> None:
    """A compacted dead-letter topic counts as requiring a key, whatever its key rule."""
    found = _matching(
        with_dlq(cleanup_policy="compact", key="optional").lint(), "dead-letter.key-required"
    )
    assert [v.topic for v in found] == [DLQ]
    assert "is compacted" in found[0].message


def test_unset_min_insync_replicas_is_below_a_minimum_above_one() -> None:
    """A contract without min_insync_replicas gets the broker's 1, below a minimum of 2."""
    found = _matching(catalog(min_insync_replicas=None).lint(), "topic.min-insync-replicas")
    assert len(found) == 1
    assert "broker default" in found[0].message


def test_durability_is_not_demanded_where_the_policy_is_relaxed() -> None:
    """Under a policy with minimums 1/1 (a laptop), RF 1 and min ISR 1 are no violation."""
    relaxed = catalog(
        replication_factor=1,
        min_insync_replicas=1,
        policy={"min_replication_factor": 1, "min_insync_replicas": 1},
    )
    assert relaxed.lint() == []


def test_environment_overrides_apply_before_lint(tmp_path: Path) -> None:
    """A topic with RF 1 fails lint for the base policy and passes with the local overrides."""
    path = write_catalog(
        tmp_path,
        """
        [policy]
        min_replication_factor = 3
        min_insync_replicas = 2
        [environments.local]
        min_replication_factor = 1
        min_insync_replicas = 1

        [[topics]]
        name = "payments.order.created.v1"
        owner = "team-payments"
        partitions = 1
        replication_factor = 1
        min_insync_replicas = 1
        retention_ms = 1000
        producers = ["checkout"]
        consumers = ["billing"]
        """,
    )
    base = {v.rule for v in Catalog.load(path).lint()}
    assert {"topic.replication-factor", "topic.min-insync-replicas", "topic.durability"} <= base
    assert Catalog.load(path, environment="local").lint() == []


def test_a_further_rule_plugs_in_as_a_plain_function() -> None:
    """A (contract, policy) -> violations function runs beside the built-in rules."""

    def no_v0(contract: TopicContract, policy: Policy) -> list[Violation]:
        if not contract.name.endswith(".v0"):
            return []
        message = "version 0 is reserved"
        return [
            Violation(
                rule="x.v0", severity="error", topic=contract.name, field="name", message=message
            )
        ]

    found = lint(catalog(name="payments.order.created.v0"), topic_rules=(*TOPIC_RULES, no_v0))
    assert [v.rule for v in found] == ["x.v0"]


def test_violations_come_grouped_by_topic_in_file_order() -> None:
    """Violations are sorted by the position of their topic in the file."""
    second = {k: v for k, v in GOOD.items() if k != "owner"}
    second["name"] = "payments.order.updated.v1"
    found = catalog({**GOOD, "producers": []}, second).lint()
    assert [v.topic for v in found] == [SRC, "payments.order.updated.v1"]


def test_every_rule_is_documented() -> None:
    """docs/governance.md lists every rule id the lint module can report."""
    docs = (Path(__file__).parent.parent / "docs" / "governance.md").read_text(encoding="utf-8")
    assert [rule for rule in RULES if f"`{rule}`" not in docs] == []


def test_lint_and_the_producer_agree_on_a_schema_nested_too_deep(tmp_path: Path) -> None:
    """A schema nested 400 deep fails lint (schema.parse) and GovernedProducer alike."""
    from governed_kafka import ContractError, GovernedProducer

    text = '{"type": "record", "name": "L0", "fields": [{"name": "x", "type": "int"}]}'
    for level in range(1, 400):
        text = (
            f'{{"type": "record", "name": "L{level}", "fields": [{{"name": "c", "type": {text}}}]}}'
        )
    (tmp_path / "deep.avsc").write_text(text, encoding="utf-8")
    path = write_catalog(
        tmp_path,
        """
        [[topics]]
        name = "payments.order.created.v1"
        partitions = 1
        replication_factor = 1
        value_schema = "deep.avsc"
        producers = ["checkout"]
        """,
    )
    catalog = Catalog.load(path)
    [violation] = [v for v in catalog.lint() if v.rule == "schema.parse"]
    assert "nested more than 64" in violation.message
    with pytest.raises(ContractError, match="nested more than 64") as refused:
        GovernedProducer(
            catalog, service="checkout", bootstrap_servers="127.0.0.1:1", verify_topics=False
        )
    assert refused.value.path == str(tmp_path / "deep.avsc")
