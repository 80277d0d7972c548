"""JSON Schema and Protobuf topics (and schema keys of every format) against a real broker:
values and keys checked before send with the field named, decoded on the consumer side,
undecodable bytes dead-lettered; the same through the asyncio clients."""

from __future__ import annotations

import json
import shutil
import textwrap
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
from confluent_kafka import Producer

from conftest import Broker, CatalogFactory
from format_helpers import SCHEMAS, order, proto_value
from governed_kafka import (
    Catalog,
    GovernedConsumer,
    GovernedProducer,
    LocalSchemaRegistry,
    Record,
    SerializationError,
)
from governed_kafka.aio import AsyncGovernedConsumer, AsyncGovernedProducer
from governed_kafka.avro import EVENT_TYPE_HEADER
from governed_kafka.schemas import load_schema, subject_name
from kafka_helpers import read_all

CONSUMER_OVERRIDES = {"session.timeout.ms": 6000}

JSON_KEY = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "payments.OrderKey",
    "type": "object",
    "properties": {"order_id": {"type": "string"}, "region": {"enum": ["eu", "us"]}},
    "required": ["order_id"],
    "additionalProperties": False,
}
PROTO_KEY = 'syntax = "proto3";\npackage payments;\nmessage OrderKey { string order_id = 1; }\n'
AVRO_KEY = {
    "type": "record",
    "name": "OrderKey",
    "namespace": "payments",
    "fields": [{"name": "order_id", "type": "string"}],
}
PROTO_REFUND = (
    'syntax = "proto3";\npackage payments;\n'
    "message RefundIssued { string order_id = 1; int64 cents = 2; }\n"
)
AVRO_ORDER = {
    "type": "record",
    "name": "OrderCreated",
    "namespace": "payments",
    "fields": [{"name": "order_id", "type": "string"}, {"name": "cents", "type": "long"}],
}


@attrs.frozen
class Format:
    """One schema format as these tests use it: its files, a valid value and key, and the
    refusals each named field must give."""

    name: str
    value_schema: str
    key_schema: str
    event_type: str
    value: Callable[[], Any]
    key: Any
    #: ``(what is wrong, value or None, key or None, field named)``.
    refusals: tuple[tuple[str, Any, Any, str], ...]

    def decoded(self, value: Any) -> Any:
        """A decoded key as a plain dict, whatever the format gives."""
        if self.name != "protobuf":
            return value
        from google.protobuf.json_format import MessageToDict

        return MessageToDict(value, preserving_proto_field_name=True)

    def expected(self, decoded: Any) -> Any:
        """What ``decoded`` should equal: the valid value, as a message of its class for
        Protobuf."""
        return type(decoded)(**self.value()) if self.name == "protobuf" else self.value()


def _items(**item: Any) -> list[dict[str, Any]]:
    items = order()["items"]
    return [items[0], {**items[1], **item}, items[2]]


JSON = Format(
    name="json",
    value_schema="schemas/order_created.v1.json",
    key_schema="schemas/order_key.json",
    event_type="payments.OrderCreated",
    value=order,
    key={"order_id": "o-1", "region": "eu"},
    refusals=(
        ("missing required", {k: v for k, v in order().items() if k != "items"}, None, "items"),
        ("wrong type", order(items=_items(quantity="3")), None, "items[1].quantity"),
        ("below the minimum", order(items=_items(quantity=0)), None, "items[1].quantity"),
        ("undeclared property", order(discount=5), None, "discount"),
        ("enum", order(currency="JPY"), None, "currency"),
        ("NaN", order(items=_items(price_cents=float("nan"))), None, "items[1].price_cents"),
        ("key: wrong type", None, {"order_id": 5}, "key.order_id"),
        ("key: enum", None, {"order_id": "o-1", "region": "mars"}, "key.region"),
        ("key: bytes", None, b"o-1", "key"),
    ),
)

PROTOBUF = Format(
    name="protobuf",
    value_schema="schemas/order.v2.proto",
    key_schema="schemas/order_key.proto",
    event_type="payments.OrderCreated",
    value=proto_value,
    key={"order_id": "o-1"},
    refusals=(
        ("unknown field", proto_value(discount=1), None, "discount"),
        ("wrong type", proto_value(items=_items(quantity="3")), None, "items[1].quantity"),
        ("out of range", proto_value(items=_items(quantity=2**31)), None, "items[1].quantity"),
        ("two fields of a oneof", proto_value(store="s-1"), None, "store"),
        ("map value type", proto_value(labels={"source": 7}), None, "labels['source']"),
        ("key: unknown field", None, {"order": "o-1"}, "key.order"),
        ("key: wrong type", None, {"order_id": 5}, "key.order_id"),
    ),
)

FORMATS = [pytest.param(JSON, id="json"), pytest.param(PROTOBUF, id="protobuf")]


def _copy_schemas(folder: Path) -> None:
    """The test schemas, and key and event schemas of every format, below ``folder``."""
    target = folder / "schemas"
    shutil.copytree(SCHEMAS, target, dirs_exist_ok=True)
    (target / "order_key.json").write_text(json.dumps(JSON_KEY), encoding="utf-8")
    (target / "order_key.proto").write_text(PROTO_KEY, encoding="utf-8")
    (target / "order_key.avsc").write_text(json.dumps(AVRO_KEY), encoding="utf-8")
    (target / "refund.proto").write_text(PROTO_REFUND, encoding="utf-8")
    (target / "order.avsc").write_text(json.dumps(AVRO_ORDER), encoding="utf-8")


def _contracts(
    topic: str, value_schema: str | None, key_schema: str | None, extra: str = ""
) -> str:
    schemas = ""
    if value_schema is not None:
        schemas += f"value_schema = {value_schema}\n"
    if key_schema is not None:
        schemas += f'key_schema = "{key_schema}"\n'
    body = f"""
    [[topics]]
    name = "{topic}"
    owner = "team-test"
    partitions = 1
    replication_factor = 1
    retention_ms = 3600000
    key = "optional"
    producers = ["checkout"]
    consumers = ["billing"]
    dead_letter_topic = "{topic}.dlq"
    {{schemas}}{extra}

    [[topics]]
    name = "{topic}.dlq"
    owner = "team-test"
    partitions = 1
    replication_factor = 1
    retention_ms = 3600000
    producers = ["billing"]
    consumers = ["ops"]
    """
    return textwrap.dedent(body).replace("{schemas}", schemas)


def _catalog(
    provisioned: CatalogFactory,
    tmp_path: Path,
    topic: str,
    value_schema: str | None,
    key_schema: str | None = None,
    extra: str = "",
) -> Catalog:
    _copy_schemas(tmp_path)
    return provisioned(_contracts(topic, value_schema, key_schema, extra))


def _consume(catalog: Catalog, broker: Broker, topic: str, count: int) -> list[Record]:
    """Run a consumer until ``count`` records were handled or dead-lettered."""
    records: list[Record] = []
    with GovernedConsumer(
        catalog,
        service="billing",
        group_id=f"g-{uuid.uuid4().hex[:8]}",
        topics=[topic],
        bootstrap_servers=broker.bootstrap_servers,
        overrides=CONSUMER_OVERRIDES,
    ) as consumer:
        summary = consumer.run(records.append, max_records=count, timeout=60)
    assert summary.records + summary.dead_lettered >= count
    return records


def _raw_send(broker: Broker, topic: str, records: list[tuple[bytes | None, bytes]]) -> None:
    """Write ``(key, value)`` pairs with a raw client: bytes no governed producer would send."""
    raw = Producer({"bootstrap.servers": broker.bootstrap_servers})
    for key, value in records:
        raw.produce(topic, value, key)
    assert raw.flush(10) == 0


def _letters(broker: Broker, topic: str) -> list[tuple[bytes | None, bytes | None, str]]:
    """``(key, value, error type)`` of each dead letter of ``topic``."""
    return [
        (m.key(), m.value(), dict(m.headers() or [])["dlq.error.type"].decode())
        for m in read_all(broker.bootstrap_servers, f"{topic}.dlq")
    ]


@pytest.mark.parametrize("fmt", FORMATS)
def test_valid_values_and_keys_are_sent_and_decoded(
    kafka_broker: Broker,
    provisioned: CatalogFactory,
    tmp_path: Path,
    topic_name: str,
    fmt: Format,
) -> None:
    """A valid value and key go out in the wire format under their subjects' ids and come
    back decoded, with the value's event type."""
    catalog = _catalog(provisioned, tmp_path, topic_name, f'"{fmt.value_schema}"', fmt.key_schema)
    with GovernedProducer(
        catalog, service="checkout", bootstrap_servers=kafka_broker.bootstrap_servers
    ) as producer:
        producer.send_and_wait(topic_name, fmt.value(), key=fmt.key)
    [written] = read_all(kafka_broker.bootstrap_servers, topic_name)
    registry = LocalSchemaRegistry.from_catalog(catalog)
    root = catalog.path.parent
    value_id = registry.lookup(
        subject_name(topic_name), load_schema(root / fmt.value_schema, root=root)
    )
    key_id = registry.lookup(
        subject_name(topic_name, "key"), load_schema(root / fmt.key_schema, root=root)
    )
    assert written.value()[:5] == b"\x00" + int(value_id or 0).to_bytes(4, "big")
    assert written.key()[:5] == b"\x00" + int(key_id or 0).to_bytes(4, "big")
    assert dict(written.headers() or [])[EVENT_TYPE_HEADER] == fmt.event_type.encode()
    [record] = _consume(catalog, kafka_broker, topic_name, 1)
    assert record.value == fmt.expected(record.value)
    assert fmt.decoded(record.key) == fmt.key
    assert record.event_type == fmt.event_type
    assert (record.raw_key, record.raw_value) == (written.key(), written.value())


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_refusal_names_the_field_and_sends_nothing(
    kafka_broker: Broker,
    provisioned: CatalogFactory,
    tmp_path: Path,
    topic_name: str,
    fmt: Format,
) -> None:
    """A value or key that does not fit raises SerializationError naming the topic and the
    field path, and nothing reaches the topic."""
    catalog = _catalog(provisioned, tmp_path, topic_name, f'"{fmt.value_schema}"', fmt.key_schema)
    with GovernedProducer(
        catalog, service="checkout", bootstrap_servers=kafka_broker.bootstrap_servers
    ) as producer:
        for what, value, key, field in fmt.refusals:
            with pytest.raises(SerializationError) as refused:
                producer.send(
                    topic_name,
                    fmt.value() if value is None else value,
                    key=fmt.key if key is None else key,
                )
            assert (refused.value.topic, refused.value.field) == (topic_name, field), what
            assert "nothing was sent" in str(refused.value), what
            assert topic_name in str(refused.value), what
    assert read_all(kafka_broker.bootstrap_servers, topic_name) == []


def _bad_payload(fmt: Format, header: bytes) -> bytes:
    """A value with a known schema id whose payload the format cannot read."""
    if fmt.name == "json":
        return header + b'{"order_id": "o-1", '
    return header + b"\x00\x0a\xff\xff"  # index [0], then a string field cut short


@pytest.mark.parametrize("fmt", FORMATS)
def test_undecodable_values_are_dead_lettered_and_good_ones_delivered(
    kafka_broker: Broker,
    provisioned: CatalogFactory,
    tmp_path: Path,
    topic_name: str,
    fmt: Format,
) -> None:
    """Bytes that are not wire format, name an unknown schema id, or do not parse go to the
    dead-letter topic as they were; the good record after them is delivered."""
    catalog = _catalog(provisioned, tmp_path, topic_name, f'"{fmt.value_schema}"')
    with GovernedProducer(
        catalog, service="checkout", bootstrap_servers=kafka_broker.bootstrap_servers
    ) as producer:
        producer.send_and_wait(topic_name, fmt.value(), key=b"good")
    [good] = read_all(kafka_broker.bootstrap_servers, topic_name)
    header = good.value()[:5]
    bad = [
        b"plain text, no header",
        b"\x00\x7f\xff\xff\xf0" + good.value()[5:],  # an id no registry holds
        _bad_payload(fmt, header),
    ]
    _raw_send(kafka_broker, topic_name, [(b"bad", value) for value in bad])
    records = _consume(catalog, kafka_broker, topic_name, 4)
    assert [r.offset for r in records] == [0]
    letters = _letters(kafka_broker, topic_name)
    assert [(key, value) for key, value, _ in letters] == [(b"bad", value) for value in bad]
    assert {error for _, _, error in letters} == {"governed_kafka.errors.DeserializationError"}


KEY_FORMATS = [
    pytest.param("schemas/order_key.avsc", {"order_id": "o-1"}, id="avro"),
    pytest.param("schemas/order_key.json", {"order_id": "o-1", "region": "us"}, id="json"),
    pytest.param("schemas/order_key.proto", {"order_id": "o-1"}, id="protobuf"),
]


@pytest.mark.parametrize(("key_schema", "key"), KEY_FORMATS)
def test_keys_are_decoded_and_undecodable_keys_dead_lettered(
    kafka_broker: Broker,
    provisioned: CatalogFactory,
    tmp_path: Path,
    topic_name: str,
    key_schema: str,
    key: dict[str, Any],
) -> None:
    """With a key_schema, Record.key is the decoded key (raw_key its bytes); a record whose
    key does not decode is dead-lettered with its key and value as they were."""
    catalog = _catalog(provisioned, tmp_path, topic_name, None, key_schema)
    with GovernedProducer(
        catalog, service="checkout", bootstrap_servers=kafka_broker.bootstrap_servers
    ) as producer:
        producer.send_and_wait(topic_name, b"payload", key=key)
    _raw_send(kafka_broker, topic_name, [(b"o-1 as text", b"payload 2")])
    records = _consume(catalog, kafka_broker, topic_name, 2)
    [record] = records
    decoded = record.key
    if key_schema.endswith(".proto"):
        decoded = {"order_id": decoded.order_id}
    assert decoded == key
    assert record.raw_key is not None
    assert record.raw_key[0] == 0
    assert record.value == b"payload"
    [(letter_key, letter_value, error)] = _letters(kafka_broker, topic_name)
    assert (letter_key, letter_value) == (b"o-1 as text", b"payload 2")
    assert error == "governed_kafka.errors.DeserializationError"


def test_json_topic_of_several_event_types_types_each_value_by_its_schema(
    kafka_broker: Broker, provisioned: CatalogFactory, tmp_path: Path, topic_name: str
) -> None:
    """Under topic_record, each value goes out under the subject of the one event type it
    fits; one that fits two is refused unless the event-type header names its type."""
    catalog = _catalog(
        provisioned,
        tmp_path,
        topic_name,
        '["schemas/order_created.v1.json", "schemas/order_cancelled.v1.json"]',
        extra=(
            'subject_strategy = "topic_record"\n'
            'event_types = ["payments.OrderCreated", "payments.OrderCancelled"]\n'
        ),
    )
    cancelled = {"order_id": "o-1", "reason": "changed my mind"}
    with GovernedProducer(
        catalog, service="checkout", bootstrap_servers=kafka_broker.bootstrap_servers
    ) as producer:
        producer.send_and_wait(topic_name, cancelled)  # fits only OrderCancelled (closed)
        # An order fits OrderCreated, and OrderCancelled too (its schema is open).
        with pytest.raises(SerializationError, match="several event types") as ambiguous:
            producer.send(topic_name, order())
        assert "payments.OrderCreated" in str(ambiguous.value)
        assert "payments.OrderCancelled" in str(ambiguous.value)
        named = [(EVENT_TYPE_HEADER, "payments.OrderCreated")]
        producer.send_and_wait(topic_name, order(), headers=named)
        with pytest.raises(SerializationError) as neither:
            producer.send(topic_name, {"reason": "no id"})
        assert neither.value.field is not None
        assert "fits none of its event types" in str(neither.value)
    registry = LocalSchemaRegistry.from_catalog(catalog)
    records = _consume(catalog, kafka_broker, topic_name, 2)
    assert [(r.event_type, r.value) for r in records] == [
        ("payments.OrderCancelled", cancelled),
        ("payments.OrderCreated", order()),
    ]
    for record, subject in zip(
        records,
        [f"{topic_name}-payments.OrderCancelled", f"{topic_name}-payments.OrderCreated"],
        strict=True,
    ):
        [schema] = registry.versions(subject)
        assert record.raw_value is not None
        assert int.from_bytes(record.raw_value[1:5], "big") == registry.lookup(subject, schema)
        assert record.header(EVENT_TYPE_HEADER) == record.event_type.encode()  # type: ignore[union-attr]


def test_protobuf_topic_of_several_event_types_sends_each_message_under_its_subject(
    kafka_broker: Broker, provisioned: CatalogFactory, tmp_path: Path, topic_name: str
) -> None:
    """Under record, a message instance goes out under its own message's subject and comes
    back as an instance of the contract's class of that message."""
    catalog = _catalog(
        provisioned,
        tmp_path,
        topic_name,
        '["schemas/order.v2.proto", "schemas/refund.proto"]',
        extra=(
            'subject_strategy = "record"\n'
            'event_types = ["payments.OrderCreated", "payments.RefundIssued"]\n'
        ),
    )
    root = catalog.path.parent
    orders = load_schema(root / "schemas/order.v2.proto", root=root)
    refunds = load_schema(root / "schemas/refund.proto", root=root)
    created = orders.message_class("payments.OrderCreated")(order_id="o-1", customer_id="c-1")  # type: ignore[union-attr]
    refund = refunds.message_class("payments.RefundIssued")(order_id="o-1", cents=250)  # type: ignore[union-attr]
    with GovernedProducer(
        catalog, service="checkout", bootstrap_servers=kafka_broker.bootstrap_servers
    ) as producer:
        producer.send_and_wait(topic_name, created)
        producer.send_and_wait(topic_name, refund)
    records = _consume(catalog, kafka_broker, topic_name, 2)
    assert [r.event_type for r in records] == ["payments.OrderCreated", "payments.RefundIssued"]
    assert [r.value.SerializeToString() for r in records] == [
        created.SerializeToString(),
        refund.SerializeToString(),
    ]
    files = [r.value.DESCRIPTOR.file.name for r in records]
    assert files == ["schemas/order.v2.proto", "schemas/refund.proto"]
    assert records[1].value.cents == 250
    registry = LocalSchemaRegistry.from_catalog(catalog)
    ids = [int.from_bytes((r.raw_value or b"")[1:5], "big") for r in records]
    assert ids == [
        registry.lookup("payments.OrderCreated", orders),
        registry.lookup("payments.RefundIssued", refunds),
    ]


# --------------------------------------------------------------------------- asyncio


@pytest.mark.asyncio
@pytest.mark.parametrize("fmt", FORMATS)
async def test_the_asyncio_clients_check_send_decode_and_dead_letter(
    kafka_broker: Broker,
    provisioned: CatalogFactory,
    tmp_path: Path,
    topic_name: str,
    fmt: Format,
) -> None:
    """AsyncGovernedProducer refuses a value that does not fit with its field path and
    sends a valid one; AsyncGovernedConsumer decodes value and key and dead-letters
    bytes that do not decode."""
    catalog = _catalog(provisioned, tmp_path, topic_name, f'"{fmt.value_schema}"', fmt.key_schema)
    bootstrap = kafka_broker.bootstrap_servers
    # First a record whose value does not decode, so that the consumer has dead-lettered
    # it by the time it hands over the good one.
    _raw_send(kafka_broker, topic_name, [(None, b"\x00\x00\x00")])
    what, value, _, field = fmt.refusals[1]
    async with AsyncGovernedProducer(
        catalog, service="checkout", bootstrap_servers=bootstrap
    ) as producer:
        with pytest.raises(SerializationError) as refused:
            producer.send_nowait(topic_name, value, key=fmt.key)
        assert refused.value.field == field, what
        await producer.send(topic_name, fmt.value(), key=fmt.key)
    [_, good] = read_all(bootstrap, topic_name)
    records: list[Record] = []

    async def handler(record: Record) -> None:
        records.append(record)

    async with AsyncGovernedConsumer(
        catalog,
        service="billing",
        group_id=f"g-{uuid.uuid4().hex[:8]}",
        topics=[topic_name],
        bootstrap_servers=bootstrap,
        overrides=CONSUMER_OVERRIDES,
    ) as consumer:
        await consumer.run(handler, max_records=1, timeout=60)
    [record] = records
    assert record.value == fmt.expected(record.value)
    assert record.event_type == fmt.event_type
    assert fmt.decoded(record.key) == fmt.key
    assert record.raw_value == good.value()
    assert [(k, v) for k, v, _ in _letters(kafka_broker, topic_name)] == [(None, b"\x00\x00\x00")]
