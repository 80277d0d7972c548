"""The ACLs a catalog implies, and how they compare with a cluster's."""

from __future__ import annotations

from typing import Any

import pytest

from governed_kafka import Catalog
from governed_kafka.acls import (
    Acl,
    compare,
    group_resources,
    implied_acls,
    quota_advice,
)


def _catalog(policy: dict[str, Any] | None = None, **services: dict[str, Any]) -> Catalog:
    return Catalog.from_dict(
        {
            "policy": {"group_id_pattern": "^{service}-.*$", **(policy or {})},
            "services": {
                name: {"principal": f"User:{name}", **table} for name, table in services.items()
            },
            "topics": [
                {
                    "name": "payments.order.created.v1",
                    "partitions": 3,
                    "replication_factor": 3,
                    "producers": ["checkout"],
                    "consumers": ["billing", "analytics"],
                    "dead_letter_topic": "payments.order.created.v1.dlq",
                },
                {
                    "name": "payments.order.created.v1.dlq",
                    "partitions": 1,
                    "replication_factor": 3,
                    "producers": ["billing"],
                    "consumers": ["ops"],
                },
            ],
        }
    )


def _acl(principal: str, kind: str, name: str, op: str, pattern: str = "literal") -> Acl:
    return Acl(
        principal=principal,
        resource_type=kind,  # type: ignore[arg-type]
        resource_name=name,
        pattern_type=pattern,  # type: ignore[arg-type]
        operation=op,  # type: ignore[arg-type]
    )


ORDERS = "payments.order.created.v1"
DLQ = "payments.order.created.v1.dlq"


def test_producers_consumers_groups_and_transactional_ids_get_exactly_their_rights() -> None:
    """Each listed role yields its operations on its resources, and nothing else; services
    without a [services] table get none."""
    catalog = _catalog(
        checkout={"transactional_ids": ["checkout-tx-*"]}, billing={}, ops={"group_ids": ["ops"]}
    )
    assert set(implied_acls(catalog)) == {
        _acl("User:checkout", "topic", ORDERS, "write"),
        _acl("User:checkout", "topic", ORDERS, "describe"),
        _acl("User:checkout", "topic", ORDERS, "describe_configs"),
        _acl("User:checkout", "transactional_id", "checkout-tx-", "write", "prefixed"),
        _acl("User:checkout", "transactional_id", "checkout-tx-", "describe", "prefixed"),
        _acl("User:billing", "topic", ORDERS, "read"),
        _acl("User:billing", "topic", ORDERS, "describe"),
        _acl("User:billing", "topic", ORDERS, "describe_configs"),
        _acl("User:billing", "group", "billing-", "read", "prefixed"),
        _acl("User:billing", "topic", DLQ, "write"),
        _acl("User:billing", "topic", DLQ, "describe"),
        _acl("User:billing", "topic", DLQ, "describe_configs"),
        _acl("User:ops", "topic", DLQ, "read"),
        _acl("User:ops", "topic", DLQ, "describe"),
        _acl("User:ops", "topic", DLQ, "describe_configs"),
        _acl("User:ops", "group", "ops", "read"),
    }
    reasons = {a.reason for a in implied_acls(catalog) if a.resource_name == DLQ}
    assert "billing is a listed producer of payments.order.created.v1.dlq" in reasons


def test_idempotent_write_is_granted_on_the_cluster_only_when_the_policy_asks() -> None:
    """Brokers before Kafka 2.8 need IDEMPOTENT_WRITE: the policy says whether to grant it."""
    plain = implied_acls(_catalog(checkout={}))
    assert not [a for a in plain if a.operation == "idempotent_write"]
    older = implied_acls(_catalog({"idempotent_write_acls": True}, checkout={}))
    assert _acl("User:checkout", "cluster", "kafka-cluster", "idempotent_write") in older


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("^{service}$", [("billing", "literal")]),
        ("{service}", [("billing", "literal")]),
        ("^{service}-.*$", [("billing-", "prefixed")]),
        ("^{service}\\..+$", [("billing.", "prefixed")]),
        ("^team-{service}-.*", [("team-billing-", "prefixed")]),
        ("^{service}(-[a-z]+)?$", []),
        ("^{service}-\\d+$", []),
        ("^(billing|audit)-.*$", []),
    ],
)
def test_a_group_pattern_becomes_an_acl_only_when_it_is_a_name_or_a_prefix(
    pattern: str, expected: list[tuple[str, str]]
) -> None:
    """Names and prefixes become LITERAL and PREFIXED resources; anything else none."""
    catalog = _catalog({"group_id_pattern": pattern}, billing={})
    service = catalog.service("billing")
    assert service is not None
    assert group_resources(service, catalog.policy) == expected


def test_compare_finds_missing_in_sync_and_unmanaged_acls() -> None:
    """An implied ACL absent from the cluster is missing; a right of an unlisted principal
    on a managed topic, or a broader grant, is unmanaged; other resources are ignored."""
    catalog = _catalog(checkout={})
    write = _acl("User:checkout", "topic", ORDERS, "write")
    live = [
        write,
        _acl("User:analytics", "topic", ORDERS, "write"),  # not a listed producer
        _acl("User:checkout", "topic", "payments.", "all", "prefixed"),  # broader than needed
        _acl("User:etl", "topic", "*", "read"),  # every topic, managed ones too
        _acl("User:checkout", "topic", "inventory.stock.changed.v1", "write"),  # not managed
        _acl("User:admin", "cluster", "kafka-cluster", "alter"),  # not managed
    ]
    result = compare(catalog, live)
    assert result.in_sync == (write,)
    assert set(result.missing) == {
        _acl("User:checkout", "topic", ORDERS, "describe"),
        _acl("User:checkout", "topic", ORDERS, "describe_configs"),
    }
    assert set(result.unmanaged) == {
        _acl("User:analytics", "topic", ORDERS, "write"),
        _acl("User:checkout", "topic", "payments.", "all", "prefixed"),
        _acl("User:etl", "topic", "*", "read"),
    }


def test_a_deny_or_a_host_bound_acl_is_not_the_implied_one() -> None:
    """Permission and host are part of an ACL: a DENY or a host-bound copy is unmanaged."""
    catalog = _catalog(checkout={})
    deny = Acl(
        principal="User:checkout",
        resource_type="topic",
        resource_name=ORDERS,
        pattern_type="literal",
        operation="write",
        permission="deny",
    )
    pinned = Acl(
        principal="User:checkout",
        resource_type="topic",
        resource_name=ORDERS,
        pattern_type="literal",
        operation="write",
        host="10.0.0.7",
    )
    result = compare(catalog, [deny, pinned])
    assert set(result.unmanaged) == {deny, pinned}
    assert _acl("User:checkout", "topic", ORDERS, "write") in result.missing
    assert "may not WRITE" in deny.describe()
    assert "from 10.0.0.7" in pinned.describe()


def test_acls_round_trip_through_the_admin_clients_plain_values() -> None:
    """to_spec() and from_spec() carry every field that identifies a binding."""
    acl = _acl("User:billing", "group", "billing-", "read", "prefixed")
    assert Acl.from_spec(acl.to_spec()) == acl
    assert acl.to_spec() == ("User:billing", "group", "billing-", "prefixed", "read", "allow", "*")


def test_quotas_come_with_the_command_that_sets_them() -> None:
    """A service's byte rates are shown with the kafka-configs.sh call for its user."""
    catalog = _catalog(
        checkout={"producer_byte_rate": 1_048_576},
        billing={"consumer_byte_rate": 5_000_000, "producer_byte_rate": 100},
    )
    advice = {a.service: a for a in quota_advice(catalog, "kafka-1:9092")}
    assert set(advice) == {"checkout", "billing"}
    assert advice["checkout"].command == (
        "kafka-configs.sh --bootstrap-server kafka-1:9092 --alter --add-config "
        "'producer_byte_rate=1048576' --entity-type users --entity-name checkout"
    )
    assert "'producer_byte_rate=100,consumer_byte_rate=5000000'" in advice["billing"].command


def test_consumers_get_their_retry_topics_and_key_order_reads_the_dead_letters() -> None:
    """A consumer of a topic with tiers may write and read each tier; with key order it may
    also read the dead-letter topic and the redrive group's progress."""
    catalog = Catalog.from_dict(
        {
            "services": {"billing": {"principal": "User:billing"}},
            "topics": [
                {
                    "name": ORDERS,
                    "partitions": 3,
                    "replication_factor": 3,
                    "key": "required",
                    "ordering": "key",
                    "consumers": ["billing"],
                    "retry_topics": [f"{ORDERS}.retry"],
                    "retry_delays": ["1m"],
                    "dead_letter_topic": DLQ,
                },
            ],
        }
    )
    implied = set(implied_acls(catalog))
    for operation in ("write", "read", "describe", "describe_configs"):
        assert _acl("User:billing", "topic", f"{ORDERS}.retry", operation) in implied
    assert _acl("User:billing", "topic", DLQ, "read") in implied
    assert _acl("User:billing", "group", f"governed-kafka-redrive.{DLQ}", "describe") in implied
