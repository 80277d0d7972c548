"""Security as code on Apache Kafka with SASL and StandardAuthorizer: the contracts' ACLs,
applied, enforced by the broker, and checked by the clients before any traffic."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)

from governed_kafka import (
    AccessDenied,
    Catalog,
    CommitStrategy,
    GovernanceViolation,
    GovernedConsumer,
    GovernedProducer,
)
from governed_kafka.acls import implied_acls
from governed_kafka.cli import main
from governed_kafka.testing import KafkaCluster
from kafka_helpers import read_all, unique_topic, write_catalog

pytestmark = pytest.mark.apache_kafka

USERS = {
    "checkout": "checkout-secret",
    "billing": "billing-secret",
    "analytics": "analytics-secret",
    "ops": "ops-secret",
}


@pytest.fixture(scope="module")
def secured() -> Iterator[KafkaCluster]:
    """One Kafka node with SASL users and StandardAuthorizer (admin is the super user)."""
    with KafkaCluster(brokers=1, sasl_users=USERS, authorizer=True) as cluster:
        yield cluster


def _contracts(topic: str) -> str:
    return f"""
        [policy]
        min_replication_factor = 1
        min_insync_replicas = 1
        group_id_pattern = '^{{service}}-.*$'
        require_principals = true

        [services.checkout]
        principal = "User:checkout"
        transactional_ids = ["checkout-tx-*"]
        producer_byte_rate = 1048576

        [services.billing]
        principal = "User:billing"

        [services.analytics]
        principal = "User:analytics"

        [services.ops]
        principal = "User:ops"

        [[topics]]
        name = "{topic}"
        owner = "team-payments"
        partitions = 1
        replication_factor = 1
        retention_ms = 3600000
        key = "required"
        producers = ["checkout"]
        consumers = ["billing", "analytics"]
        dead_letter_topic = "{topic}.dlq"

        [[topics]]
        name = "{topic}.dlq"
        owner = "team-payments"
        partitions = 1
        replication_factor = 1
        retention_ms = 3600000
        producers = ["billing", "analytics"]
        consumers = ["ops"]
        """


def _admin_settings(cluster: KafkaCluster, tmp_path: Path) -> Path:
    """The admin's connection settings as a client.properties file, for the CLI."""
    path = tmp_path / "admin.properties"
    lines = [f"{k}={v}" for k, v in cluster.client_config().items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _cli(*args: str) -> Result:
    return CliRunner(env={"COLUMNS": "250"}).invoke(main, list(args))


def _json(result: Result) -> Any:
    assert result.stdout, result.output
    return json.loads(result.stdout)


@pytest.fixture
def applied(secured: KafkaCluster, tmp_path: Path) -> tuple[str, Path, Path]:
    """A fresh topic's contracts, applied to the secured cluster by the admin."""
    topic = unique_topic("secured")
    contracts = write_catalog(tmp_path, _contracts(topic))
    settings = _admin_settings(secured, tmp_path)
    result = _cli("apply", str(contracts), "-F", str(settings), "--json")
    assert result.exit_code == 0, result.output
    return topic, contracts, settings


def test_apply_grants_each_service_exactly_what_its_contract_lists(
    secured: KafkaCluster, applied: tuple[str, Path, Path]
) -> None:
    """After apply, checkout writes and billing reads through the governed clients;
    analytics writing with a raw client (no client-side check) is refused by the broker,
    and billing reading in a group its contract does not grant is refused by the broker."""
    topic, contracts, _ = applied
    catalog = Catalog.load(contracts)
    with GovernedProducer(
        catalog,
        service="checkout",
        bootstrap_servers=secured.bootstrap_servers,
        overrides=secured.security_config("checkout"),
    ) as producer:
        producer.send_and_wait(topic, b"order-1", key=b"o-1", timeout=30)
    seen: list[bytes] = []
    with GovernedConsumer(
        catalog,
        service="billing",
        group_id="billing-main",
        topics=[topic],
        bootstrap_servers=secured.bootstrap_servers,
        commit=CommitStrategy.per_record(),
        overrides={**secured.security_config("billing"), "session.timeout.ms": 6000},
    ) as consumer:
        consumer.run(lambda r: seen.append(r.value), max_records=1, timeout=60)
    assert seen == [b"order-1"]

    refused: list[str] = []
    raw = Producer(secured.client_config("analytics"))
    raw.produce(topic, b"forged", b"o-2", on_delivery=lambda err, msg: refused.append(err.name()))
    raw.flush(30)
    assert refused == ["TOPIC_AUTHORIZATION_FAILED"]

    errors: list[str] = []
    outsider = Consumer(
        {**secured.client_config("billing"), "group.id": "payments-audit", "log_level": 0}
    )
    outsider.subscribe([topic])
    deadline = time.monotonic() + 30
    while not errors and time.monotonic() < deadline:
        for message in outsider.consume(10, 0.5):
            if message.error() is not None:
                errors.append(message.error().name())
    outsider.close()
    assert "GROUP_AUTHORIZATION_FAILED" in errors
    assert [
        m.value()
        for m in read_all(secured.bootstrap_servers, topic, config=secured.security_config())
    ] == [b"order-1"]


def test_plan_reports_a_hand_made_acl_as_unmanaged_until_apply_prunes_it(
    secured: KafkaCluster, applied: tuple[str, Path, Path]
) -> None:
    """An ACL made by hand on a managed topic (analytics may WRITE it) is unmanaged in plan;
    apply without --prune keeps it, with --prune deletes it, and plan is then in sync."""
    topic, contracts, settings = applied
    planned = _cli("plan", str(contracts), "-F", str(settings), "--json")
    assert planned.exit_code == 0, planned.output
    assert _json(planned)["acls"]["missing"] == []
    admin = AdminClient(secured.client_config())
    extra = AclBinding(
        ResourceType.TOPIC,
        topic,
        ResourcePatternType.LITERAL,
        "User:analytics",
        "*",
        AclOperation.WRITE,
        AclPermissionType.ALLOW,
    )
    for future in admin.create_acls([extra]).values():
        future.result(10)

    planned = _cli("plan", str(contracts), "-F", str(settings), "--json")
    assert planned.exit_code == 2
    [unmanaged] = _json(planned)["acls"]["unmanaged"]
    assert (
        unmanaged["rule"],
        unmanaged["principal"],
        unmanaged["resource_name"],
        unmanaged["operation"],
    ) == ("acl.unmanaged", "User:analytics", topic, "write")
    table = _cli("plan", str(contracts), "-F", str(settings))
    assert "unmanaged: no contract implies it" in table.output
    assert "User:analytics" in table.output

    kept = _cli("apply", str(contracts), "-F", str(settings), "--json")
    assert kept.exit_code == 0
    assert _json(kept)["acl_results"] == []
    pruned = _cli("apply", str(contracts), "-F", str(settings), "--prune", "--json")
    assert pruned.exit_code == 0, pruned.output
    [deleted] = _json(pruned)["acl_results"]
    assert (deleted["action"], deleted["outcome"]) == ("delete", "applied")
    after = _cli("plan", str(contracts), "-F", str(settings), "--json")
    assert after.exit_code == 0, after.output
    assert _json(after)["acls"]["unmanaged"] == []


def test_plan_lists_every_acl_to_create_and_the_quota_command(
    secured: KafkaCluster, tmp_path: Path
) -> None:
    """On contracts never applied, plan lists each implied ACL (topics, groups by prefix,
    transactional ids) and the kafka-configs.sh call for checkout's quota."""
    topic = unique_topic("planned")
    contracts = write_catalog(tmp_path, _contracts(topic))
    planned = _cli("plan", str(contracts), "-F", str(_admin_settings(secured, tmp_path)), "--json")
    assert planned.exit_code == 2
    plan = _json(planned)
    missing = {
        (a["principal"], a["resource_type"], a["resource_name"], a["pattern_type"], a["operation"])
        for a in plan["acls"]["missing"]
    }
    implied = {
        (a.principal, a.resource_type, a.resource_name, a.pattern_type, a.operation)
        for a in implied_acls(Catalog.load(contracts))
    }
    # Every right on this test's topics is missing; groups and transactional ids are the
    # same for every test of the module, so an earlier test may have granted them.
    assert {a for a in implied if a[2] in {topic, f"{topic}.dlq"}} <= missing
    assert missing <= implied
    assert len(missing) + plan["acls"]["in_sync"] == len(implied)
    assert ("User:checkout", "topic", topic, "literal", "write") in missing
    assert ("User:billing", "topic", f"{topic}.dlq", "literal", "write") in missing
    assert ("User:ops", "topic", f"{topic}.dlq", "literal", "read") in missing
    assert ("User:billing", "group", "billing-", "prefixed", "read") in implied
    assert ("User:checkout", "transactional_id", "checkout-tx-", "prefixed", "write") in implied
    assert not [a for a in implied if a[0] == "User:ops" and a[2] == topic]
    [quota] = plan["quotas"]
    assert quota["service"] == "checkout"
    assert "--entity-type users --entity-name checkout" in quota["command"]


def test_a_service_without_rights_fails_within_seconds_naming_topic_and_principal(
    secured: KafkaCluster, tmp_path: Path
) -> None:
    """Before apply, a producer and a consumer of services with principals are refused with
    acl.missing at construction (or, unverified, at the first send and the first poll),
    within 10 s, never after a delivery timeout."""
    topic = unique_topic("unauthorized")
    catalog = Catalog.load(write_catalog(tmp_path, _contracts(topic)))
    secured.create_topic(topic, replication_factor=1, config={"retention.ms": "3600000"})
    secured.create_topic(f"{topic}.dlq", replication_factor=1, config={"retention.ms": "3600000"})
    started = time.monotonic()
    with pytest.raises(AccessDenied) as producing:
        GovernedProducer(
            catalog,
            service="checkout",
            bootstrap_servers=secured.bootstrap_servers,
            overrides=secured.security_config("checkout"),
            verify_topics=True,
        )
    denied = producing.value
    assert isinstance(denied, GovernanceViolation)
    assert (denied.rule, denied.topic, denied.principal, denied.operation) == (
        "acl.missing",
        topic,
        "User:checkout",
        "write",
    )
    assert topic in str(denied)
    assert "User:checkout" in str(denied)
    assert time.monotonic() - started < 10

    started = time.monotonic()
    with (
        GovernedProducer(
            catalog,
            service="checkout",
            bootstrap_servers=secured.bootstrap_servers,
            overrides=secured.security_config("checkout"),
            verify_topics=False,
        ) as lazy,
        pytest.raises(AccessDenied, match="may not WRITE"),
    ):
        lazy.send(topic, b"x", key=b"k")
    assert time.monotonic() - started < 10

    started = time.monotonic()
    consumer = GovernedConsumer(
        catalog,
        service="billing",
        group_id="billing-main",
        topics=[topic],
        bootstrap_servers=secured.bootstrap_servers,
        overrides=secured.security_config("billing"),
        verify_topics=False,
    )
    try:
        with pytest.raises(AccessDenied) as reading:
            consumer.poll_batch(timeout=1)
    finally:
        consumer.close()
    assert reading.value.principal == "User:billing"
    assert "may not READ topic" in str(reading.value)
    assert time.monotonic() - started < 10


def _poll_for(consumer: GovernedConsumer, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        consumer.poll_batch(timeout=0.5)


def test_rights_taken_away_under_a_running_consumer_stop_it_with_an_acl_error(
    secured: KafkaCluster, applied: tuple[str, Path, Path]
) -> None:
    """When the broker starts refusing a running consumer's reads (its READ ACL deleted),
    polling raises AccessDenied naming the topic, instead of stalling on errors."""
    topic, contracts, _ = applied
    catalog = Catalog.load(contracts)
    consumer = GovernedConsumer(
        catalog,
        service="billing",
        group_id="billing-revoked",
        topics=[topic],
        bootstrap_servers=secured.bootstrap_servers,
        overrides={**secured.security_config("billing"), "session.timeout.ms": 6000},
    )
    try:
        deadline = time.monotonic() + 30
        while not consumer.assignment and time.monotonic() < deadline:
            consumer.poll_batch(timeout=0.5)
        assert consumer.assignment
        admin = AdminClient(secured.client_config())
        read = AclBindingFilter(
            ResourceType.TOPIC,
            topic,
            ResourcePatternType.LITERAL,
            "User:billing",
            "*",
            AclOperation.READ,
            AclPermissionType.ALLOW,
        )
        for future in admin.delete_acls([read]).values():
            assert future.result(10)
        with pytest.raises(AccessDenied) as refused:
            _poll_for(consumer, 60)
    finally:
        consumer.close()
    assert (refused.value.resource_type, refused.value.resource) == ("topic", topic)
    assert refused.value.principal == "User:billing"
