"""JSON Schema and Protobuf against confluent-kafka's own serdes over a mock:// registry:
the same bytes both ways, for hypothesis-generated values."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from hypothesis import HealthCheck, given, settings

from format_helpers import json_order, json_orders, order, proto_order, proto_orders, proto_value
from governed_kafka.json_schema import JsonSchemaReader, JsonSchemaWriter
from governed_kafka.protobuf import ProtobufReader, ProtobufWriter, encode_indexes
from governed_kafka.registry import ConfluentSchemaRegistry, subject_name

TOPIC = "shop.order.created.v1"
CONTEXT = SerializationContext(TOPIC, MessageField.VALUE)
ORDER = "payments.OrderCreated"
PROPERTIES = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
def registry() -> ConfluentSchemaRegistry:
    return ConfluentSchemaRegistry({"url": f"mock://{uuid.uuid4().hex}"})


class JsonPair:
    """Ours and theirs for the JSON Schema order, on one registered schema."""

    def __init__(self, registry: ConfluentSchemaRegistry) -> None:
        self.schema = json_order()
        self.schema_id = registry.register(subject_name(TOPIC), self.schema)
        self.writer = JsonSchemaWriter(self.schema, self.schema_id, topic=TOPIC)
        self.reader = JsonSchemaReader(registry, topic=TOPIC, reader_schema=self.schema)
        conf = {"auto.register.schemas": False, "use.latest.version": False}
        self.serializer = JSONSerializer(self.schema.text, registry.client, conf=conf)
        self.deserializer = JSONDeserializer(
            self.schema.text, schema_registry_client=registry.client
        )


class ProtoPair:
    """Ours and theirs for the Protobuf order (v2, with an import), on one registered schema."""

    def __init__(self, registry: ConfluentSchemaRegistry) -> None:
        self.schema = proto_order(2)
        self.schema_id = registry.register(subject_name(TOPIC), self.schema)
        self.cls = self.schema.message_class(ORDER)
        self.writer = ProtobufWriter(self.schema, self.schema_id, topic=TOPIC)
        self.reader = ProtobufReader(registry, topic=TOPIC, reader_schema=self.schema)
        conf = {"auto.register.schemas": False, "use.deprecated.format": False}
        self.serializer = ProtobufSerializer(self.cls, registry.client, conf=conf)
        self.deserializer = ProtobufDeserializer(
            self.cls, {"use.deprecated.format": False}, schema_registry_client=registry.client
        )


# ------------------------------------------------------------------ JSON Schema


def test_json_bytes_are_the_bytes_confluent_writes(registry: ConfluentSchemaRegistry) -> None:
    """One order, one registered schema: JsonSchemaWriter and JSONSerializer agree byte for byte."""
    pair = JsonPair(registry)
    assert pair.writer.encode(order()) == pair.serializer(order(), CONTEXT)


@PROPERTIES
@given(value=json_orders)
def test_json_interop_both_ways(registry: ConfluentSchemaRegistry, value: dict[str, Any]) -> None:
    """For any valid order: the same bytes both sides, and each side decodes the other's."""
    pair = JsonPair(registry)
    ours = pair.writer.encode(value)
    theirs = pair.serializer(value, CONTEXT)
    assert ours == theirs
    assert pair.deserializer(ours, CONTEXT) == value
    assert pair.reader.decode(theirs) == value


def test_confluent_auto_registration_gives_the_id_we_look_up(
    registry: ConfluentSchemaRegistry,
) -> None:
    """A schema confluent-kafka's serializer registered is the one lookup() finds."""
    schema = json_order()
    data = JSONSerializer(schema.text, registry.client)(order(), CONTEXT)
    assert data is not None
    assert registry.lookup(subject_name(TOPIC), schema) == int.from_bytes(data[1:5], "big")
    assert JsonSchemaReader(registry, topic=TOPIC).decode(data) == order()


# ------------------------------------------------------------------ Protobuf


def test_proto_bytes_are_the_bytes_confluent_writes(registry: ConfluentSchemaRegistry) -> None:
    """One order as a dict (ours) and as a message (theirs): the same bytes."""
    pair = ProtoPair(registry)
    message = pair.cls(**proto_value())
    assert pair.writer.encode(proto_value()) == pair.serializer(message, CONTEXT)
    assert pair.writer.encode(message) == pair.serializer(message, CONTEXT)


def test_proto_message_indexes_match_confluent(registry: ConfluentSchemaRegistry) -> None:
    """A nested and a second top-level message carry the index list confluent-kafka writes."""
    pair = ProtoPair(registry)
    for name in ("payments.OrderCreated.Item", "payments.OrderCancelled"):
        cls = pair.schema.message_class(name)
        message = cls(**({"sku": "a"} if name.endswith("Item") else {"order_id": "o-1"}))
        conf = {"auto.register.schemas": False, "use.deprecated.format": False}
        theirs = ProtobufSerializer(cls, registry.client, conf=conf)(message, CONTEXT)
        ours = pair.writer.encode(message)
        assert ours == theirs
        assert ours[5 : 5 + len(encode_indexes(pair.schema.indexes(name)))] == encode_indexes(
            pair.schema.indexes(name)
        )
        decoded, event_type = pair.reader.decode_event(theirs)
        assert (decoded, event_type) == (message, name)
    assert encode_indexes([0]) == b"\x00"
    assert encode_indexes([1]) == b"\x02\x02"
    assert encode_indexes([0, 0]) == b"\x04\x00\x00"


@PROPERTIES
@given(value=proto_orders)
def test_proto_interop_both_ways(registry: ConfluentSchemaRegistry, value: dict[str, Any]) -> None:
    """For any valid order: the same bytes both sides, and each side decodes the other's."""
    pair = ProtoPair(registry)
    message = pair.cls(**value)
    ours = pair.writer.encode(value)
    theirs = pair.serializer(message, CONTEXT)
    assert ours == theirs
    assert pair.deserializer(ours, CONTEXT) == message
    assert pair.reader.decode(theirs) == message


def test_confluent_registers_proto_imports_as_we_do(registry: ConfluentSchemaRegistry) -> None:
    """confluent-kafka's auto-registration of a file with an import is what lookup() finds."""
    schema = proto_order(2)
    cls = schema.message_class(ORDER)
    data = ProtobufSerializer(cls, registry.client, conf={"use.deprecated.format": False})(
        cls(order_id="o-1"), CONTEXT
    )
    assert data is not None
    assert registry.lookup(subject_name(TOPIC), schema) == int.from_bytes(data[1:5], "big")
    fresh = ConfluentSchemaRegistry({"url": registry.url})  # the same mock, nothing cached
    assert ProtobufReader(fresh, topic=TOPIC).decode(data).order_id == "o-1"
