"""Every send refusal, on routes built from a catalog alone: no client, no broker.

``GovernedProducer.send()`` refuses a record with the checks of its topic's route
(``governed_kafka._routes``) before librdkafka sees it; these tests call those checks
directly.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from governed_kafka import (
    Catalog,
    ContractError,
    GovernanceViolation,
    LocalSchemaRegistry,
    SerializationError,
)
from governed_kafka._routes import Route, build_routes, check_headers, not_routed
from governed_kafka.avro import EVENT_TYPE_HEADER, load_schema
from governed_kafka.registry import subject_name
from kafka_helpers import write_catalog

EXAMPLES = Path(__file__).parent.parent / "examples" / "schemas"
TOPIC = "shop.order.created.v1"
CREATED_AT = 1_700_000_000_000


def _topic(name: str = TOPIC, **fields: object) -> dict[str, object]:
    return {
        "name": name,
        "partitions": 1,
        "replication_factor": 1,
        "producers": ["checkout"],
        **fields,
    }


def _routes(*topics: dict[str, object], service: str = "checkout") -> dict[str, Route]:
    catalog = Catalog.from_dict({"topics": list(topics)})
    return build_routes(catalog, service, registry=None)


def _route(**fields: object) -> Route:
    return _routes(_topic(**fields))[TOPIC]


def _schema_catalog(tmp_path: Path, extra: str = "", schema: str | None = None) -> Catalog:
    (tmp_path / "schemas").mkdir()
    for source in EXAMPLES.glob("*.avsc"):
        shutil.copy(source, tmp_path / "schemas" / source.name)
    if schema is not None:
        (tmp_path / "schemas" / "custom.avsc").write_text(schema, encoding="utf-8")
    value_schema = '"schemas/custom.avsc"' if schema else '"schemas/order_created.v1.avsc"'
    return Catalog.load(
        write_catalog(
            tmp_path,
            f"""
            [[topics]]
            name = "{TOPIC}"
            partitions = 1
            replication_factor = 1
            key = "required"
            value_schema = {value_schema}
            producers = ["checkout"]
            {extra}
            """,
        )
    )


def _avro_route(catalog: Catalog) -> Route:
    routes = build_routes(catalog, "checkout", registry=LocalSchemaRegistry.from_catalog(catalog))
    return routes[TOPIC]


def _order(**changes: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "order_id": "o-1",
        "customer_id": "c-1",
        "amount_cents": 1000,
        "currency": "EUR",
        "created_at": CREATED_AT,
    }
    value.update(changes)
    return value


# --------------------------------------------------------------------------- the topic


def test_a_topic_without_contract_is_refused() -> None:
    """A send to a topic the catalog does not know is refused: contract.missing."""
    catalog = Catalog.from_dict({"topics": [_topic()]})
    with pytest.raises(GovernanceViolation) as refused:
        not_routed(catalog, "checkout", "shop.unknown.topic.v1")
    assert refused.value.rule == "contract.missing"


def test_a_service_that_is_not_a_listed_producer_gets_no_route() -> None:
    """Only listed producers get a route; the others are refused with producer.not-listed."""
    catalog = Catalog.from_dict({"topics": [_topic()]})
    assert build_routes(catalog, "billing", registry=None) == {}
    refusal = not_routed(catalog, "billing", TOPIC)
    assert refusal.rule == "producer.not-listed"
    assert "checkout" in str(refusal)


# --------------------------------------------------------------------------- keys


def test_a_missing_required_key_is_refused() -> None:
    """key = "required": a send without key is refused with key.required."""
    with pytest.raises(GovernanceViolation) as refused:
        _route(key="required").key(None)
    assert (refused.value.rule, refused.value.field) == ("key.required", "key")


def test_a_compacted_topic_refuses_a_keyless_record() -> None:
    """A keyless record can never be compacted: refused even when the key is optional."""
    with pytest.raises(GovernanceViolation) as refused:
        _route(key="optional", cleanup_policy="compact").key(None)
    assert refused.value.rule == "key.required"
    assert "compacted" in str(refused.value)


def test_a_key_on_a_forbidden_topic_is_refused() -> None:
    """key = "forbidden": a send with a key is refused with key.forbidden."""
    with pytest.raises(GovernanceViolation) as refused:
        _route(key="forbidden").key(b"k")
    assert refused.value.rule == "key.forbidden"


def test_a_key_of_the_wrong_type_is_refused() -> None:
    """Keys are bytes or str: anything else is a SerializationError naming the key."""
    with pytest.raises(SerializationError) as refused:
        _route(key="optional").key(42)
    assert refused.value.field == "key"


def test_a_key_that_cannot_be_utf8_is_refused() -> None:
    """A str key holding a lone surrogate is refused rather than mangled."""
    with pytest.raises(SerializationError, match="cannot be UTF-8"):
        _route(key="optional").key("\ud800")


def test_str_and_bytes_keys_are_the_same_bytes() -> None:
    """A str key is sent as its UTF-8 bytes, so every producer hashes the same bytes."""
    route = _route(key="optional")
    assert route.key("k-1") == route.key(b"k-1") == b"k-1"


# --------------------------------------------------------------------------- values


def test_a_tombstone_on_a_non_compacted_topic_is_refused() -> None:
    """value None deletes nothing on a delete topic: tombstone.not-compacted."""
    with pytest.raises(GovernanceViolation) as refused:
        _route(cleanup_policy="delete").value(None)
    assert refused.value.rule == "tombstone.not-compacted"


def test_a_tombstone_on_a_compacted_topic_is_taken() -> None:
    """A compacted topic takes a tombstone: its value is None."""
    assert _route(key="required", cleanup_policy="compact").value(None) is None


def test_a_raw_topic_refuses_a_value_that_is_not_bytes_or_str() -> None:
    """A topic without schema carries bytes: a dict is a SerializationError."""
    with pytest.raises(SerializationError, match="raw bytes"):
        _route().value({"order_id": "o-1"})


def test_a_raw_value_that_cannot_be_utf8_is_refused() -> None:
    """A str value holding a lone surrogate is refused."""
    with pytest.raises(SerializationError, match="cannot be UTF-8"):
        _route().value("\udfff")


def test_a_record_above_the_contracts_max_message_bytes_is_refused() -> None:
    """A record the broker would reject as too large is refused: message.too-large."""
    route = _route(configs={"max.message.bytes": "1000"})
    route.check_size(b"k", b"x" * 500, None)
    with pytest.raises(GovernanceViolation) as refused:
        route.check_size(b"k", b"x" * 1000, [("h", b"v")])
    assert refused.value.rule == "message.too-large"


# --------------------------------------------------------------------------- headers


@pytest.mark.parametrize(
    ("headers", "field"),
    [
        ({"": b"v"}, "headers"),
        ({"a\x00b": b"v"}, "headers['a\\x00b']"),
        ({"\ud800": b"v"}, "headers['\\ud800']"),
        ({"trace": 42}, "headers.trace"),
        ({"trace": "\ud800"}, "headers.trace"),
        ([("trace", b"v", "extra")], "headers"),
        (42, "headers"),
    ],
)
def test_a_malformed_header_is_refused_naming_it(headers: Any, field: str) -> None:
    """Header names are non-empty UTF-8 without NUL, values bytes, str or None."""
    with pytest.raises(SerializationError) as refused:
        check_headers(TOPIC, headers)
    assert refused.value.field == field


def test_headers_become_the_list_librdkafka_takes() -> None:
    """A mapping or pairs of str, bytes and None values become (name, bytes | None) pairs."""
    assert check_headers(TOPIC, {"a": "x", "b": None}) == [("a", b"x"), ("b", None)]
    assert check_headers(TOPIC, [("a", b"y")]) == [("a", b"y")]


# --------------------------------------------------------------------------- schemas


def test_a_value_that_does_not_fit_the_schema_is_refused_naming_the_field(
    tmp_path: Path,
) -> None:
    """A schema topic refuses a value that misses a field, naming the field path."""
    route = _avro_route(_schema_catalog(tmp_path))
    assert route.codec is not None
    value = _order()
    del value["customer_id"]
    with pytest.raises(SerializationError) as refused:
        route.codec.encode(route, b"k", value, None)
    assert refused.value.field == "customer_id"


def test_pre_encoded_bytes_on_a_schema_topic_are_refused(tmp_path: Path) -> None:
    """A schema topic takes values to check, not bytes nobody checked."""
    route = _avro_route(_schema_catalog(tmp_path))
    assert route.codec is not None
    with pytest.raises(SerializationError):
        route.codec.encode(route, b"k", b"\x00\x00\x00\x00\x01", None)


def test_the_event_type_header_is_reserved(tmp_path: Path) -> None:
    """The producer sets event-type from the schema: a caller's own is refused."""
    route = _avro_route(_schema_catalog(tmp_path))
    assert route.codec is not None
    with pytest.raises(SerializationError) as refused:
        route.codec.encode(route, b"k", _order(), {EVENT_TYPE_HEADER: "x"})
    assert refused.value.field == f"headers.{EVENT_TYPE_HEADER}"


def test_an_event_type_the_contract_does_not_allow_is_refused(tmp_path: Path) -> None:
    """event_types lists what a topic takes: another record type is event-type.not-allowed."""
    catalog = _schema_catalog(tmp_path, 'event_types = ["payments.OrderCancelled"]')
    route = _avro_route(catalog)
    assert route.codec is not None
    with pytest.raises(GovernanceViolation) as refused:
        route.codec.encode(route, b"k", _order(), None)
    assert refused.value.rule == "event-type.not-allowed"


def test_a_schema_topic_still_applies_the_key_rule(tmp_path: Path) -> None:
    """The key rule holds on schema topics too."""
    route = _avro_route(_schema_catalog(tmp_path))
    assert route.codec is not None
    with pytest.raises(GovernanceViolation) as refused:
        route.codec.encode(route, None, _order(), None)
    assert refused.value.rule == "key.required"


def test_an_event_time_before_1970_is_refused(tmp_path: Path) -> None:
    """With timestamp_field, an event time that is no Kafka timestamp is refused."""
    route = _avro_route(_schema_catalog(tmp_path, 'timestamp_field = "created_at"'))
    assert route.codec is not None
    _, _, event_type, timestamp, headers = route.codec.encode(route, b"k", _order(), None)
    assert (event_type, timestamp) == ("payments.OrderCreated", CREATED_AT)
    assert headers == [(EVENT_TYPE_HEADER, b"payments.OrderCreated")]
    with pytest.raises(SerializationError) as refused:
        route.codec.encode(route, b"k", _order(created_at=0), None)
    assert refused.value.field == "created_at"


def test_an_unregistered_schema_stops_the_routes(tmp_path: Path) -> None:
    """A current schema the registry does not have is schema.not-registered, at build."""
    catalog = _schema_catalog(tmp_path)
    with pytest.raises(GovernanceViolation) as refused:
        build_routes(catalog, "checkout", registry=LocalSchemaRegistry())
    assert refused.value.rule == "schema.not-registered"
    routes = build_routes(catalog, "checkout", registry=LocalSchemaRegistry(), auto_register=True)
    assert routes[TOPIC].codec is not None


def test_an_incompatible_schema_stops_the_routes(tmp_path: Path) -> None:
    """A current schema incompatible with the registered versions is schema.compatibility."""
    v1 = json.loads((EXAMPLES / "order_created.v1.avsc").read_text())
    broken = {**v1, "fields": [*v1["fields"], {"name": "channel", "type": "string"}]}
    catalog = _schema_catalog(tmp_path, schema=json.dumps(broken))
    registry = LocalSchemaRegistry()
    registry.register(
        subject_name(TOPIC),
        load_schema(EXAMPLES / "order_created.v1.avsc", topic=TOPIC, key="value_schema"),
    )
    with pytest.raises(GovernanceViolation) as refused:
        build_routes(catalog, "checkout", registry=registry, auto_register=True)
    assert refused.value.rule == "schema.compatibility"


def test_a_timestamp_field_that_is_no_timestamp_is_a_contract_error(tmp_path: Path) -> None:
    """timestamp_field must name a long of milliseconds: else the routes do not build."""
    with pytest.raises(ContractError) as refused:
        _avro_route(_schema_catalog(tmp_path, 'timestamp_field = "order_id"'))
    assert refused.value.key == "timestamp_field"


# --------------------------------------------------------------------------- other formats

FORMAT_SCHEMAS = Path(__file__).parent / "schemas"


def _format_route(tmp_path: Path, value_schema: str, extra: str = "") -> Route:
    shutil.copytree(FORMAT_SCHEMAS, tmp_path / "schemas")
    catalog = Catalog.load(
        write_catalog(
            tmp_path,
            f"""
            [[topics]]
            name = "{TOPIC}"
            partitions = 1
            replication_factor = 1
            value_schema = {value_schema}
            producers = ["checkout"]
            {extra}
            """,
        )
    )
    return _avro_route(catalog)


def _json_order() -> dict[str, Any]:
    item = {"sku": "apple", "quantity": 1, "price_cents": 120}
    return {"order_id": "o-1", "customer_id": "c-1", "items": [item]}


def test_a_json_schema_topic_encodes_with_its_schema_and_names_the_event_type(
    tmp_path: Path,
) -> None:
    """A JSON Schema topic's value is written in the wire format under its title."""
    route = _format_route(tmp_path, '"schemas/order_created.v1.json"')
    assert route.codec is not None
    _, data, event_type, _, headers = route.codec.encode(route, None, _json_order(), None)
    assert data is not None
    assert data[0] == 0
    assert json.loads(data[5:]) == _json_order()
    assert event_type == "payments.OrderCreated"
    assert headers == [(EVENT_TYPE_HEADER, b"payments.OrderCreated")]


def test_timestamp_field_on_a_json_schema_topic_stops_the_producer(tmp_path: Path) -> None:
    """timestamp_field is read from Avro records only: another format is a ContractError."""
    with pytest.raises(ContractError, match="Avro records only") as refused:
        _format_route(tmp_path, '"schemas/order_created.v1.json"', 'timestamp_field = "at"')
    assert (refused.value.topic, refused.value.key) == (TOPIC, "timestamp_field")


def _two_types(tmp_path: Path) -> Route:
    return _format_route(
        tmp_path,
        '["schemas/order_created.v1.json", "schemas/order_cancelled.v1.json"]',
        'subject_strategy = "topic_record"',
    )


def test_the_event_type_header_picks_the_writer_on_a_topic_of_several_types(
    tmp_path: Path,
) -> None:
    """On a topic of several event types the sender's event-type header names the writer,
    and the record carries that header once."""
    route = _two_types(tmp_path)
    assert route.codec is not None
    named = [(EVENT_TYPE_HEADER, "payments.OrderCreated"), ("trace", "t-1")]
    _, _, event_type, _, headers = route.codec.encode(route, None, _json_order(), named)
    assert event_type == "payments.OrderCreated"
    assert headers == [("trace", b"t-1"), (EVENT_TYPE_HEADER, b"payments.OrderCreated")]


def test_an_event_type_header_naming_no_type_of_the_topic_is_refused(tmp_path: Path) -> None:
    """A header naming a type none of the topic's schemas carries sends nothing."""
    route = _two_types(tmp_path)
    assert route.codec is not None
    with pytest.raises(SerializationError, match="none of the event types") as refused:
        route.codec.encode(route, None, _json_order(), [(EVENT_TYPE_HEADER, "payments.Nope")])
    assert refused.value.field == f"headers.{EVENT_TYPE_HEADER}"


def test_a_value_named_by_the_header_is_checked_against_that_type(tmp_path: Path) -> None:
    """The writer the header names checks the value: its refusal names the field."""
    route = _two_types(tmp_path)
    assert route.codec is not None
    header = [(EVENT_TYPE_HEADER, "payments.OrderCreated")]
    with pytest.raises(SerializationError) as refused:
        route.codec.encode(route, None, {**_json_order(), "reason": "x"}, header)
    assert refused.value.field == "reason"
