"""The runtime gate: clients refuse, before any traffic, topics that drifted from contract."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import CatalogFactory
from governed_kafka import Catalog, GovernanceViolation, GovernedConsumer, GovernedProducer
from governed_kafka.testing import LocalBroker
from kafka_helpers import (
    create_topic,
    create_topics,
    read_all,
    topic_names,
    unique_topic,
    write_catalog,
)

FAST_GROUPS = {"session.timeout.ms": 6000}


def _topic(name: str, *, extra: str = "") -> str:
    return f"""
    [[topics]]
    name = "{name}"
    owner = "team-test"
    partitions = 2
    replication_factor = 1
    min_insync_replicas = 1
    cleanup_policy = "delete"
    retention_ms = 3600000
    producers = ["checkout"]
    consumers = ["billing"]
    {extra}
    """


def _producer(catalog: Catalog, broker: LocalBroker, **kwargs: object) -> GovernedProducer:
    return GovernedProducer(
        catalog,
        service="checkout",
        bootstrap_servers=broker.bootstrap_servers,
        **kwargs,  # type: ignore[arg-type]
    )


def test_producer_is_refused_when_the_live_cleanup_policy_differs(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """A live compacted topic whose contract says delete refuses the producer; nothing lands."""
    catalog = provisioned(_topic(topic_name), create=False)
    create_topic(
        kafka_broker.bootstrap_servers,
        topic_name,
        partitions=2,
        cleanup_policy="compact",
        min_insync_replicas="1",
    )
    with pytest.raises(GovernanceViolation) as refused:
        _producer(catalog, kafka_broker)
    error = refused.value
    assert (error.rule, error.topic, error.field, error.value) == (
        "topic.drift",
        topic_name,
        "cleanup_policy",
        "compact",
    )
    assert "the contract says 'delete'" in str(error)
    assert read_all(kafka_broker.bootstrap_servers, topic_name) == []


def test_producer_is_refused_when_its_topic_does_not_exist(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """A topic missing from the cluster refuses the producer, and the topic is not auto-created."""
    catalog = provisioned(_topic(topic_name), create=False)
    with pytest.raises(GovernanceViolation) as refused:
        _producer(catalog, kafka_broker)
    assert (refused.value.rule, refused.value.topic) == ("topic.missing", topic_name)
    assert "governed-kafka apply" in str(refused.value)
    assert topic_name not in topic_names(kafka_broker.bootstrap_servers)


def test_producer_is_refused_when_the_partition_count_differs(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """A live topic with another partition count than its contract refuses the producer."""
    catalog = provisioned(_topic(topic_name), create=False)
    create_topic(kafka_broker.bootstrap_servers, topic_name, partitions=3, min_insync_replicas="1")
    with pytest.raises(GovernanceViolation) as refused:
        _producer(catalog, kafka_broker)
    assert (refused.value.rule, refused.value.field, refused.value.value) == (
        "topic.drift",
        "partitions",
        3,
    )


def test_producer_is_refused_when_min_insync_replicas_differs(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """A live min.insync.replicas other than the contract's refuses the producer."""
    catalog = provisioned(_topic(topic_name), create=False)
    create_topic(kafka_broker.bootstrap_servers, topic_name, partitions=2, min_insync_replicas="2")
    with pytest.raises(GovernanceViolation) as refused:
        _producer(catalog, kafka_broker)
    assert (refused.value.rule, refused.value.field, refused.value.value) == (
        "topic.drift",
        "min_insync_replicas",
        "2",
    )


def test_every_problem_is_named_in_one_refusal(
    kafka_broker: LocalBroker, provisioned: CatalogFactory
) -> None:
    """With one topic missing and another drifted, the refusal lists both."""
    missing, drifted = unique_topic(), unique_topic()
    catalog = provisioned(_topic(missing) + _topic(drifted), create=False)
    create_topic(kafka_broker.bootstrap_servers, drifted, partitions=5)
    with pytest.raises(GovernanceViolation) as refused:
        _producer(catalog, kafka_broker)
    text = str(refused.value)
    assert "2 live topics do not match their contracts" in text
    assert f"topic {missing!r} does not exist" in text
    assert f"topic {drifted!r} has 5 partitions live" in text


def test_matching_topic_passes_the_gate_and_takes_records(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """A topic created from its contract passes the gate, and sends go through."""
    catalog = provisioned(_topic(topic_name))
    with _producer(catalog, kafka_broker, verify_topics=True) as producer:
        producer.send_and_wait(topic_name, b"ok", key=b"k", timeout=10)
    assert len(read_all(kafka_broker.bootstrap_servers, topic_name)) == 1


def test_verify_topics_false_skips_the_gate(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """verify_topics=False builds a producer for a drifted topic without looking at it."""
    catalog = provisioned(_topic(topic_name), create=False)
    create_topic(kafka_broker.bootstrap_servers, topic_name, cleanup_policy="compact")
    producer = _producer(catalog, kafka_broker, verify_topics=False)
    producer.close()


def test_local_environment_skips_the_gate_by_default(
    kafka_broker: LocalBroker, tmp_path: Path, topic_name: str
) -> None:
    """A catalog loaded for 'local' builds a producer for a topic that does not exist yet."""
    path = write_catalog(tmp_path, "[environments.local]\n" + _topic(topic_name))
    catalog = Catalog.load(path, environment="local")
    producer = _producer(catalog, kafka_broker)
    producer.close()
    assert topic_name not in topic_names(kafka_broker.bootstrap_servers)


def test_policy_can_turn_the_gate_on_in_local(
    kafka_broker: LocalBroker, tmp_path: Path, topic_name: str
) -> None:
    """verify_topics = true in [environments.local] makes the local producer check its topics."""
    path = write_catalog(
        tmp_path, "[environments.local]\nverify_topics = true\n" + _topic(topic_name)
    )
    catalog = Catalog.load(path, environment="local")
    with pytest.raises(GovernanceViolation, match="does not exist"):
        _producer(catalog, kafka_broker)


def test_consumer_is_refused_when_its_dead_letter_topic_is_missing(
    kafka_broker: LocalBroker, provisioned: CatalogFactory
) -> None:
    """A consumer checks the dead-letter topics it may write to, not only what it reads."""
    source, dlq = unique_topic(), unique_topic()
    dlq_contract = f"""
    [[topics]]
    name = "{dlq}"
    owner = "team-test"
    partitions = 1
    replication_factor = 1
    retention_ms = 3600000
    producers = ["billing"]
    """
    catalog = provisioned(
        _topic(source, extra=f'dead_letter_topic = "{dlq}"') + dlq_contract, create=False
    )
    create_topic(kafka_broker.bootstrap_servers, source, partitions=2, min_insync_replicas="1")
    with pytest.raises(GovernanceViolation) as refused:
        GovernedConsumer(
            catalog,
            service="billing",
            group_id="billing",
            topics=source,
            bootstrap_servers=kafka_broker.bootstrap_servers,
            overrides=FAST_GROUPS,
        )
    assert (refused.value.rule, refused.value.topic) == ("topic.missing", dlq)


def test_consumer_group_id_must_match_the_policy_pattern(tmp_path: Path, topic_name: str) -> None:
    """A group_id outside the policy's group_id_pattern is refused before any client exists."""
    path = write_catalog(
        tmp_path, "[policy]\ngroup_id_pattern = '^{service}(\\.[a-z-]+)?$'\n" + _topic(topic_name)
    )
    catalog = Catalog.load(path)
    with pytest.raises(GovernanceViolation) as refused:
        GovernedConsumer(
            catalog,
            service="billing",
            group_id="analytics.reports",
            topics=topic_name,
            bootstrap_servers="127.0.0.1:1",
            overrides=FAST_GROUPS,
        )
    error = refused.value
    assert (error.rule, error.field, error.value) == (
        "consumer.group-id-pattern",
        "group_id",
        "analytics.reports",
    )
    assert "'billing'" in str(error)


def test_consumer_with_a_matching_group_id_starts(
    kafka_broker: LocalBroker, tmp_path: Path, topic_name: str
) -> None:
    """A group_id that matches the pattern for its service passes, and the gate with it."""
    path = write_catalog(
        tmp_path, "[policy]\ngroup_id_pattern = '^{service}\\.[a-z-]+$'\n" + _topic(topic_name)
    )
    catalog = Catalog.load(path)
    contract = catalog.topic(topic_name)
    create_topics(
        kafka_broker.bootstrap_servers,
        [(topic_name, contract.partitions, contract.topic_configs())],
    )
    consumer = GovernedConsumer(
        catalog,
        service="billing",
        group_id="billing.invoices",
        topics=topic_name,
        bootstrap_servers=kafka_broker.bootstrap_servers,
        overrides=FAST_GROUPS,
    )
    consumer.close()
