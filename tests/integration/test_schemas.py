"""Schema topics against a real broker: evolution, refusals that send nothing, headers, time."""

from __future__ import annotations

import json
import shutil
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from conftest import CatalogFactory
from governed_kafka import (
    Catalog,
    ConfluentSchemaRegistry,
    GovernanceViolation,
    GovernedConsumer,
    GovernedProducer,
    Record,
    SerializationError,
)
from governed_kafka.avro import EVENT_TYPE_HEADER
from governed_kafka.registry import subject_name
from governed_kafka.testing import LocalBroker
from kafka_helpers import read_all, write_catalog

EXAMPLES = Path(__file__).parent.parent.parent / "examples" / "schemas"
CONSUMER_OVERRIDES = {"session.timeout.ms": 6000}
CREATED_AT = 1_700_000_000_000


def _order(i: int = 0, **changes: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "order_id": f"o-{i}",
        "customer_id": "c-1",
        "amount_cents": 1000 + i,
        "currency": "EUR",
        "created_at": CREATED_AT + i,
    }
    value.update(changes)
    return value


def _schemas(directory: Path, **extra: dict[str, Any]) -> None:
    """Copy the example schemas into ``directory`` and write ``extra`` ones beside them."""
    directory.mkdir(parents=True, exist_ok=True)
    for source in EXAMPLES.glob("*.avsc"):
        shutil.copy(source, directory / source.name)
    for name, body in extra.items():
        (directory / name).write_text(json.dumps(body), encoding="utf-8")


def _topic(name: str, value_schema: str, extra: str = "") -> str:
    return f"""
    [[topics]]
    name = "{name}"
    owner = "team-test"
    partitions = 1
    replication_factor = 1
    retention_ms = 3600000
    key = "required"
    value_schema = {value_schema}
    producers = ["checkout"]
    consumers = ["billing"]
    {extra}
    """


def _consume(catalog: Catalog, broker: LocalBroker, topic: str, count: int) -> list[Record]:
    records: list[Record] = []
    with GovernedConsumer(
        catalog,
        service="billing",
        group_id=f"g-{uuid.uuid4().hex[:8]}",
        topics=[topic],
        bootstrap_servers=broker.bootstrap_servers,
        overrides=CONSUMER_OVERRIDES,
    ) as consumer:
        consumer.run(records.append, max_records=count, timeout=30)
    return records


def test_v1_producer_and_v2_consumer_interoperate(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, tmp_path: Path, topic_name: str
) -> None:
    """Orders written with v1 are read by a v2 consumer with v2's defaults filled in."""
    _schemas(tmp_path / "schemas")
    producer_catalog = provisioned(_topic(topic_name, '"schemas/order_created.v1.avsc"'))
    consumer_dir = tmp_path / "consumer"
    _schemas(consumer_dir / "schemas")
    consumer_catalog = Catalog.load(
        write_catalog(
            consumer_dir,
            _topic(
                topic_name,
                '["schemas/order_created.v1.avsc", "schemas/order_created.v2.avsc"]',
                'compatibility = "BACKWARD_TRANSITIVE"',
            ),
        )
    )
    with GovernedProducer(
        producer_catalog, service="checkout", bootstrap_servers=kafka_broker.bootstrap_servers
    ) as producer:
        for i in range(3):
            producer.send_and_wait(topic_name, _order(i), key=f"o-{i}")
    records = _consume(consumer_catalog, kafka_broker, topic_name, 3)
    assert [r.value["order_id"] for r in records] == ["o-0", "o-1", "o-2"]
    assert all(r.value["items"] == [] and r.value["channel"] is None for r in records)
    assert {r.event_type for r in records} == {"payments.OrderCreated"}


def test_incompatible_v2_is_refused_at_producer_construction(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, tmp_path: Path, topic_name: str
) -> None:
    """A v2 adding a required field breaks BACKWARD: the producer does not start."""
    v1 = json.loads((EXAMPLES / "order_created.v1.avsc").read_text())
    broken = {**v1, "fields": [*v1["fields"], {"name": "channel", "type": "string"}]}
    _schemas(tmp_path / "schemas", **{"order_created.v2-broken.avsc": broken})
    catalog = provisioned(
        _topic(
            topic_name,
            '["schemas/order_created.v1.avsc", "schemas/order_created.v2-broken.avsc"]',
            'compatibility = "BACKWARD"',
        )
    )
    with pytest.raises(GovernanceViolation) as caught:
        GovernedProducer(
            catalog, service="checkout", bootstrap_servers=kafka_broker.bootstrap_servers
        )
    error = caught.value
    assert error.rule == "schema.compatibility"
    assert (error.topic, error.field, error.value) == (topic_name, "channel", "BACKWARD")
    assert "BACKWARD" in str(error)
    assert "'channel'" in str(error)
    assert read_all(kafka_broker.bootstrap_servers, topic_name) == []


def test_a_value_that_does_not_fit_sends_nothing(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, tmp_path: Path, topic_name: str
) -> None:
    """A refused value raises with its field path, and the topic holds only later records."""
    _schemas(tmp_path / "schemas")
    catalog = provisioned(_topic(topic_name, '["schemas/order_created.v2.avsc"]'))
    bad = _order(items=[{"sku": "a", "quantity": 1, "price_cents": 1}] * 2 + [{"sku": "b"}])
    with GovernedProducer(
        catalog, service="checkout", bootstrap_servers=kafka_broker.bootstrap_servers
    ) as producer:
        with pytest.raises(SerializationError) as caught:
            producer.send(topic_name, bad, key="o-0")
        with pytest.raises(SerializationError):
            producer.send(topic_name, b"\x00\x00\x00\x00\x01raw", key="o-0")
        producer.send_and_wait(topic_name, _order(1), key="o-1")
    assert caught.value.field == "items[2].quantity"
    records = read_all(kafka_broker.bootstrap_servers, topic_name)
    assert [r.key() for r in records] == [b"o-1"]


def test_event_type_travels_in_a_header_and_event_time_sets_the_timestamp(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, tmp_path: Path, topic_name: str
) -> None:
    """The record carries event-type = the record's full name and created_at as timestamp."""
    _schemas(tmp_path / "schemas")
    catalog = provisioned(
        _topic(
            topic_name,
            '"schemas/order_created.v1.avsc"',
            'timestamp_field = "created_at"\nevent_types = ["payments.OrderCreated"]',
        )
    )
    with GovernedProducer(
        catalog, service="checkout", bootstrap_servers=kafka_broker.bootstrap_servers
    ) as producer:
        metadata = producer.send_and_wait(
            topic_name, _order(5), key="o-5", headers={"trace": "t-1"}
        )
    [record] = read_all(kafka_broker.bootstrap_servers, topic_name)
    assert record.headers() == [("trace", b"t-1"), (EVENT_TYPE_HEADER, b"payments.OrderCreated")]
    assert record.timestamp()[1] == CREATED_AT + 5
    assert metadata.timestamp == CREATED_AT + 5


def test_an_event_type_the_contract_does_not_allow_sends_nothing(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, tmp_path: Path, topic_name: str
) -> None:
    """A value whose record is not in event_types is refused with rule event-type.not-allowed."""
    _schemas(tmp_path / "schemas")
    catalog = provisioned(
        _topic(
            topic_name,
            '"schemas/order_created.v1.avsc"',
            'event_types = ["payments.OrderCancelled"]',
        )
    )
    producer = GovernedProducer(
        catalog, service="checkout", bootstrap_servers=kafka_broker.bootstrap_servers
    )
    with producer, pytest.raises(GovernanceViolation) as caught:
        producer.send(topic_name, _order(), key="o-0")
    assert caught.value.rule == "event-type.not-allowed"
    assert caught.value.value == "payments.OrderCreated"
    assert read_all(kafka_broker.bootstrap_servers, topic_name) == []


def test_governed_mode_refuses_an_unregistered_schema_unless_auto_register(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, tmp_path: Path, topic_name: str
) -> None:
    """A registry without the schema stops the producer; auto_register=True registers it."""
    _schemas(tmp_path / "schemas")
    catalog = provisioned(_topic(topic_name, '"schemas/order_created.v1.avsc"'))
    registry = ConfluentSchemaRegistry({"url": f"mock://{uuid.uuid4().hex}"})
    with pytest.raises(GovernanceViolation) as caught:
        GovernedProducer(
            catalog,
            service="checkout",
            bootstrap_servers=kafka_broker.bootstrap_servers,
            registry=registry,
        )
    assert caught.value.rule == "schema.not-registered"
    assert registry.versions(subject_name(topic_name)) == []
    with GovernedProducer(
        catalog,
        service="checkout",
        bootstrap_servers=kafka_broker.bootstrap_servers,
        registry=registry,
        auto_register=True,
    ) as producer:
        producer.send_and_wait(topic_name, _order(), key="o-0")
    [registered] = registry.versions(subject_name(topic_name))
    [record] = read_all(kafka_broker.bootstrap_servers, topic_name)
    value = record.value()
    assert value is not None
    assert value[5:] != b""
    assert int.from_bytes(value[1:5], "big") == registry.lookup(
        subject_name(topic_name), registered
    )


def test_undecodable_values_go_to_the_dead_letter_topic(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, tmp_path: Path, topic_name: str
) -> None:
    """Bytes that are not wire format are dead-lettered whole; good records are delivered."""
    _schemas(tmp_path / "schemas")
    dlq = f"{topic_name}.dlq"
    catalog = provisioned(
        _topic(topic_name, '"schemas/order_created.v1.avsc"', f'dead_letter_topic = "{dlq}"')
        + textwrap.dedent(
            f"""
            [[topics]]
            name = "{dlq}"
            partitions = 1
            replication_factor = 1
            producers = ["billing"]
            """
        )
    )
    raw = Producer({"bootstrap.servers": kafka_broker.bootstrap_servers})
    raw.produce(topic_name, b"not avro at all", b"bad")
    raw.flush(10)
    with GovernedProducer(
        catalog, service="checkout", bootstrap_servers=kafka_broker.bootstrap_servers
    ) as producer:
        producer.send_and_wait(topic_name, _order(1), key="o-1")
    records = _consume(catalog, kafka_broker, topic_name, 2)
    assert [r.value["order_id"] for r in records] == ["o-1"]
    [letter] = read_all(kafka_broker.bootstrap_servers, dlq)
    headers = dict(letter.headers() or [])
    assert letter.value() == b"not avro at all"
    assert headers["dlq.error.type"] == b"governed_kafka.errors.DeserializationError"
    assert headers["dlq.original.offset"] == b"0"
