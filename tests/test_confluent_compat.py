"""Interoperability with confluent-kafka's own Avro serde over a mock:// schema registry."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from avro_helpers import ORDER, order, schema
from governed_kafka.avro import AvroReader, AvroWriter
from governed_kafka.registry import ConfluentSchemaRegistry, subject_name

TOPIC = "shop.order.created.v1"
CONTEXT = SerializationContext(TOPIC, MessageField.VALUE)


@pytest.fixture
def registry() -> ConfluentSchemaRegistry:
    return ConfluentSchemaRegistry({"url": f"mock://{uuid.uuid4().hex}"})


def test_confluent_deserializer_reads_what_we_write(registry: ConfluentSchemaRegistry) -> None:
    """Bytes from AvroWriter decode with confluent-kafka's AvroDeserializer to the same value."""
    order_schema = schema(ORDER)
    schema_id = registry.register(subject_name(TOPIC), order_schema)
    value = order()
    data = AvroWriter(order_schema, schema_id, topic=TOPIC).encode(value)
    decoded = AvroDeserializer(registry.client)(data, CONTEXT)
    assert decoded == AvroReader(registry, topic=TOPIC).decode(data)
    assert decoded["items"] == value["items"]
    assert decoded["order_id"] == value["order_id"]


def test_we_read_what_the_confluent_serializer_writes(registry: ConfluentSchemaRegistry) -> None:
    """Bytes from confluent-kafka's AvroSerializer decode with AvroReader to the same value."""
    value = order(note="gift")
    data = AvroSerializer(registry.client, schema(ORDER).text)(value, CONTEXT)
    assert data is not None
    decoded = AvroReader(registry, topic=TOPIC, reader_schema=schema(ORDER)).decode(data)
    assert decoded == AvroDeserializer(registry.client)(data, CONTEXT)
    assert {k: decoded[k] for k in ("order_id", "amount", "note", "items")} == {
        k: value[k] for k in ("order_id", "amount", "note", "items")
    }


def test_both_sides_write_identical_bytes(registry: ConfluentSchemaRegistry) -> None:
    """With the same registered schema, our bytes and theirs are the same bytes."""
    order_schema = schema(ORDER)
    schema_id = registry.register(subject_name(TOPIC), order_schema)
    theirs = AvroSerializer(registry.client, order_schema.text)(order(), CONTEXT)
    assert AvroWriter(order_schema, schema_id, topic=TOPIC).encode(order()) == theirs
