"""JSON Schema serde without a broker: parsing, refusals with field paths, wire format,
decoding, bad bytes."""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft7Validator, Draft202012Validator

from format_helpers import json_order, json_orders, json_values, order
from governed_kafka import _json_check
from governed_kafka.errors import ContractError, DeserializationError, SerializationError
from governed_kafka.json_schema import (
    MAX_DEPTH,
    JsonSchemaReader,
    JsonSchemaWriter,
    load_schema,
    parse_schema,
    schema_id_of,
)
from governed_kafka.registry import LocalSchemaRegistry

TOPIC = "shop.order.created.v1"


@pytest.fixture
def writer() -> JsonSchemaWriter:
    return JsonSchemaWriter(json_order(), 7, topic=TOPIC)


@pytest.fixture
def reader() -> JsonSchemaReader:
    registry = LocalSchemaRegistry()
    registry.register(f"{TOPIC}-value", json_order())
    return JsonSchemaReader(registry, topic=TOPIC, reader_schema=json_order())


def _refusal(writer: JsonSchemaWriter, value: object) -> SerializationError:
    with pytest.raises(SerializationError) as caught:
        writer.encode(value)
    assert caught.value.topic == TOPIC
    assert TOPIC in str(caught.value)
    assert "nothing was sent" in str(caught.value)
    return caught.value


# ------------------------------------------------------------------ parsing


def test_a_schema_names_its_draft_title_and_event_type() -> None:
    """$schema picks the draft; the title is the event type."""
    schema = json_order()
    assert schema.draft == "2020-12"
    assert schema.event_types == ("payments.OrderCreated",)
    assert load_schema(Path(__file__).parent / "schemas" / "order_cancelled.v1.json").draft == "7"
    assert parse_schema('{"type": "string"}').draft == "2020-12"


def test_an_unknown_draft_is_refused() -> None:
    """A $schema naming draft 4 is refused, with the drafts that are supported."""
    with pytest.raises(ContractError, match="names no supported draft"):
        parse_schema('{"$schema": "http://json-schema.org/draft-04/schema#"}', source="s.json")


def test_a_schema_that_is_not_json_is_described_by_place_never_by_content() -> None:
    """Broken JSON is reported by line and column; nothing of the file is repeated."""
    with pytest.raises(ContractError) as caught:
        parse_schema('{\n  "type": "object",\n  "secret-token-xyz" }', source="s.json")
    assert "line 3" in str(caught.value)
    assert "secret-token-xyz" not in str(caught.value)
    assert caught.value.path == "s.json"


def test_a_schema_breaking_its_metaschema_names_the_place_not_the_value() -> None:
    """An unknown type name is reported at its path, by the rule broken, value not shown."""
    with pytest.raises(ContractError) as caught:
        parse_schema(
            '{"properties": {"price": {"type": "strin-secret"}}}', source="s.json", topic=TOPIC
        )
    assert "properties.price.type" in str(caught.value)
    assert "strin-secret" not in str(caught.value)
    assert caught.value.topic == TOPIC


def test_a_reference_outside_the_file_is_refused() -> None:
    """$ref to another document is refused: a schema is one file."""
    with pytest.raises(ContractError, match="points outside the file"):
        parse_schema('{"$ref": "https://example.com/other.json"}')
    with pytest.raises(ContractError, match="points to nothing"):
        parse_schema('{"$ref": "#/$defs/Missing"}')


def test_a_schema_nested_too_deep_is_refused() -> None:
    """JSON nested beyond the bound is refused before any parsing."""
    with pytest.raises(ContractError, match="nested more than"):
        parse_schema("[" * 300 + "]" * 300)


def test_nan_in_a_schema_is_refused() -> None:
    """NaN is not JSON, even though Python's reader takes it."""
    with pytest.raises(ContractError, match="NaN"):
        parse_schema('{"minimum": NaN}')


def test_ids_are_deterministic_and_key_order_does_not_matter() -> None:
    """The id depends on the schema's content, not on the order keys are written in."""
    a = parse_schema('{"type": "object", "title": "T"}')
    b = parse_schema('{"title": "T", "type": "object"}')
    assert a == b
    assert schema_id_of(a) == schema_id_of(b)
    assert 1 <= schema_id_of(a) < 2**31


def test_a_missing_file_is_a_contract_error() -> None:
    """A schema file that cannot be read names the file."""
    with pytest.raises(ContractError, match="cannot read schema file"):
        load_schema("/nonexistent/x.json", topic=TOPIC, key="value_schema")


# ------------------------------------------------------------------ refusals


def test_a_valid_value_is_encoded_in_the_wire_format(writer: JsonSchemaWriter) -> None:
    """Magic byte, 4-byte id, compact UTF-8 JSON; the event type is the title."""
    data, event_type = writer.encode_event(order(customer_id="ç-7"))
    assert data[:5] == b"\x00\x00\x00\x00\x07"
    assert json.loads(data[5:].decode()) == order(customer_id="ç-7")
    assert "ç".encode() in data
    assert b", " not in data
    assert event_type == "payments.OrderCreated"


def test_a_missing_required_property_is_refused_with_its_path(writer: JsonSchemaWriter) -> None:
    """A required property absent from a nested item is named: items[2].price_cents."""
    value = order()
    del value["items"][2]["price_cents"]
    error = _refusal(writer, value)
    assert error.field == "items[2].price_cents"
    assert "required" in str(error)


def test_a_wrong_type_is_refused_with_its_path(writer: JsonSchemaWriter) -> None:
    """A string where an integer belongs is refused, naming the field."""
    value = order()
    value["items"][1]["quantity"] = "3"
    assert _refusal(writer, value).field == "items[1].quantity"


def test_an_undeclared_property_of_a_closed_object_is_refused(writer: JsonSchemaWriter) -> None:
    """additionalProperties: false refuses an extra key, naming it."""
    error = _refusal(writer, order(discount=5))
    assert error.field == "discount"


def test_an_enum_value_not_listed_is_refused(writer: JsonSchemaWriter) -> None:
    """A currency the enum does not list is refused at its path."""
    assert _refusal(writer, order(currency="JPY")).field == "currency"


def test_a_bound_broken_is_refused(writer: JsonSchemaWriter) -> None:
    """quantity has minimum 1: zero is refused."""
    value = order()
    value["items"][0]["quantity"] = 0
    error = _refusal(writer, value)
    assert error.field == "items[0].quantity"
    assert "minimum" in str(error)


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        (math.nan, "NaN"),
        (math.inf, "not a JSON number"),
        (b"raw", "pre-encoded bytes"),
        (("a", "b"), "tuple is not a JSON value"),
        ("\ud800", "lone surrogate"),
    ],
)
def test_what_json_cannot_carry_is_refused_with_its_path(bad: object, why: str) -> None:
    """NaN, infinity, bytes, tuples and lone surrogates are refused where they are."""
    writer = JsonSchemaWriter(parse_schema('{"type": "object"}'), 1, topic=TOPIC)
    error = _refusal(writer, {"a": [1, {"b": bad}]})
    assert error.field == "a[1].b"
    assert why in str(error)


def test_a_non_str_key_is_refused(writer: JsonSchemaWriter) -> None:
    """json.dumps would turn key 1 into "1"; it is refused instead."""
    open_schema = JsonSchemaWriter(parse_schema('{"type": "object"}'), 1, topic=TOPIC)
    error = _refusal(open_schema, {"a": {1: "x"}})
    assert error.field == "a"
    assert "JSON keys are str" in str(error)


def test_a_value_nested_too_deep_is_refused() -> None:
    """More than MAX_DEPTH nested arrays are refused before encoding."""
    writer = JsonSchemaWriter(parse_schema("true"), 1, topic=TOPIC)
    value: Any = []
    for _ in range(MAX_DEPTH + 5):
        value = [value]
    error = _refusal(writer, value)
    assert f"nested more than {MAX_DEPTH}" in str(error)


def test_key_paths_start_with_key() -> None:
    """A key's field paths are prefixed with key."""
    writer = JsonSchemaWriter(
        parse_schema('{"type": "object", "required": ["id"]}'), 1, topic=TOPIC, role="key"
    )
    assert _refusal(writer, {}).field == "key.id"


def test_formats_are_checked_only_when_the_schema_asks() -> None:
    """format is an annotation unless the format-assertion vocabulary is on."""
    plain = parse_schema('{"type": "string", "format": "date"}')
    JsonSchemaWriter(plain, 1, topic=TOPIC).encode("not a date")
    asserted = parse_schema(
        json.dumps(
            {
                "$vocabulary": {
                    "https://json-schema.org/draft/2020-12/vocab/core": True,
                    "https://json-schema.org/draft/2020-12/vocab/format-assertion": True,
                },
                "type": "string",
                "format": "date",
            }
        )
    )
    assert asserted.formats_asserted
    with pytest.raises(SerializationError, match="format"):
        JsonSchemaWriter(asserted, 1, topic=TOPIC).encode("not a date")


# ------------------------------------------------------------------ decoding


def test_decoding_returns_the_value_and_its_event_type(
    writer: JsonSchemaWriter, reader: JsonSchemaReader
) -> None:
    """What the writer wrote decodes to the same value, typed by the title."""
    schema_id = schema_id_of(json_order())
    writer = JsonSchemaWriter(json_order(), schema_id, topic=TOPIC)
    assert reader.decode_event(writer.encode(order())) == (order(), "payments.OrderCreated")


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"\x01\x00\x00\x00\x01{}", "magic byte"),
        (b"\x00\x00", "shorter than"),
        (b"\x00\x00\x00\x00\x09{}", "not in the schema registry"),
        ("str", "expected bytes"),
    ],
)
def test_bytes_that_are_not_ours_raise_deserialization_error(
    reader: JsonSchemaReader, data: Any, why: str
) -> None:
    """Framing problems and unknown ids are DeserializationErrors carrying the bytes."""
    with pytest.raises(DeserializationError, match=why) as caught:
        reader.decode(data, partition=2, offset=40)
    assert caught.value.topic == TOPIC
    assert caught.value.offset == 40


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b"\xff\xfe", "not UTF-8"),
        (b"{", "not JSON"),
        (b'{"order_id": NaN}', "NaN or Infinity"),
        (b'{"order_id": 1}', "does not fit its writer schema"),
        (b"[" * 100 + b"]" * 100, f"nested more than {MAX_DEPTH}"),
        (b"[" * 100_000 + b"]" * 100_000, "too deeply to read"),
        (b"1" * 5000, "too long"),
    ],
)
def test_payloads_that_do_not_decode_raise_deserialization_error(
    reader: JsonSchemaReader, payload: bytes, why: str
) -> None:
    """Bad UTF-8, bad JSON, NaN, invalid or too-deep values are DeserializationErrors."""
    header = b"\x00" + schema_id_of(json_order()).to_bytes(4, "big")
    with pytest.raises(DeserializationError, match=why) as caught:
        reader.decode(header + payload)
    assert caught.value.data == header + payload
    assert caught.value.schema_id == schema_id_of(json_order())


def test_an_id_of_another_format_is_refused() -> None:
    """A schema id that names an Avro schema is not decoded as JSON."""
    from avro_helpers import ORDER, schema

    registry = LocalSchemaRegistry()
    avro_id = registry.register("x", schema(ORDER))
    reader = JsonSchemaReader(registry, topic=TOPIC)
    with pytest.raises(DeserializationError, match="AVRO schema"):
        reader.decode(b"\x00" + avro_id.to_bytes(4, "big") + b"{}")


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=64))
def test_any_bytes_raise_nothing_but_deserialization_error(data: bytes) -> None:
    """Hostile payloads after a valid header decode or raise DeserializationError, nothing else."""
    registry = LocalSchemaRegistry()
    registry.register("s", json_order())
    reader = JsonSchemaReader(registry, topic=TOPIC)
    header = b"\x00" + schema_id_of(json_order()).to_bytes(4, "big")
    for candidate in (data, header + data):
        with contextlib.suppress(DeserializationError):
            reader.decode(candidate)


# ------------------------------------------------------------------ properties


@settings(max_examples=150, deadline=None)
@given(value=json_orders)
def test_valid_orders_round_trip(value: dict[str, Any]) -> None:
    """Every valid order encodes and decodes to itself."""
    registry = LocalSchemaRegistry()
    schema_id = registry.register("s", json_order())
    data = JsonSchemaWriter(json_order(), schema_id, topic=TOPIC).encode(value)
    assert JsonSchemaReader(registry, topic=TOPIC).decode(data) == value


_SCHEMAS = [
    {"type": "object", "properties": {"a": {"type": "integer", "minimum": 0}}, "required": ["a"]},
    {"type": "array", "items": {"type": ["string", "null"], "maxLength": 3}},
    {"anyOf": [{"type": "number"}, {"type": "boolean"}]},
    {"type": "object", "additionalProperties": {"type": "string"}, "maxProperties": 2},
    {"oneOf": [{"type": "integer"}, {"type": "number", "maximum": 5}]},
    {"enum": ["a", "b"]},
    {"$defs": {"n": {"type": "number"}}, "type": "array", "items": {"$ref": "#/$defs/n"}},
]


@settings(max_examples=300, deadline=None)
@given(value=json_values, index=st.integers(min_value=0, max_value=len(_SCHEMAS) - 1))
def test_the_writer_agrees_with_jsonschema(value: Any, index: int) -> None:
    """On JSON values, the writer accepts exactly what jsonschema accepts (compiled or not)."""
    raw = _SCHEMAS[index]
    writer = JsonSchemaWriter(parse_schema(json.dumps(raw)), 1, topic=TOPIC)
    valid = Draft202012Validator(raw).is_valid(value)
    try:
        writer.encode(value)
    except SerializationError:
        assert not valid
    else:
        assert valid


@settings(max_examples=200, deadline=None)
@given(value=json_values)
def test_the_compiled_check_never_accepts_what_jsonschema_refuses(value: Any) -> None:
    """The compiled check is sound: it accepts only values the library accepts too."""
    raw = json_order().parsed
    check = _json_check.compile_check(raw, "2020-12", formats_asserted=False)
    assert check is not None
    if check(value, 0):
        assert Draft202012Validator(raw).is_valid(value)
    draft7 = {
        "type": "object",
        "properties": {"x": {"$ref": "#/definitions/x"}},
        "definitions": {"x": {"type": "integer"}},
    }
    check7 = _json_check.compile_check(draft7, "7", formats_asserted=False)
    assert check7 is not None
    if check7(value, 0):
        assert Draft7Validator(draft7).is_valid(value)
