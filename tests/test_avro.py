"""Avro serde without a broker: checks with field paths, wire format, decoding, event types."""

from __future__ import annotations

import copy
import datetime
import io
import json
import time
from typing import Any

import fastavro
import pytest

from avro_helpers import ORDER, order, schema
from governed_kafka._records import AvroValue
from governed_kafka.avro import (
    HEADER_SIZE,
    AvroReader,
    AvroWriter,
    frame,
    load_schema,
    parse_schema,
    schema_id_of,
)
from governed_kafka.errors import ContractError, DeserializationError, SerializationError
from governed_kafka.registry import LocalSchemaRegistry

TOPIC = "shop.order.created.v1"


@pytest.fixture
def writer() -> AvroWriter:
    return AvroWriter(schema(ORDER), 7, topic=TOPIC)


def _refusal(writer: AvroWriter, value: object) -> SerializationError:
    with pytest.raises(SerializationError) as caught:
        writer.encode(value)
    assert caught.value.topic == TOPIC
    assert TOPIC in str(caught.value)
    return caught.value


# ------------------------------------------------------------------ refusals


def test_missing_field_is_refused_with_its_path(writer: AvroWriter) -> None:
    """A nested record without one of its required fields is refused, naming items[2].price."""
    value = order()
    del value["items"][2]["price"]
    error = _refusal(writer, value)
    assert error.field == "items[2].price"
    assert "'items[2].price'" in str(error)
    assert "missing" in str(error)


def test_wrong_type_is_refused_with_its_path(writer: AvroWriter) -> None:
    """A string where a long belongs is refused, naming the field and both types."""
    value = order()
    value["items"][2]["price"] = "12.50"
    error = _refusal(writer, value)
    assert error.field == "items[2].price"
    assert "expected long, got str" in str(error)


def test_unknown_extra_field_is_refused_with_its_path(writer: AvroWriter) -> None:
    """A dict key the record does not declare is refused instead of being dropped."""
    value = order()
    value["items"][1]["discount"] = 5
    error = _refusal(writer, value)
    assert error.field == "items[1].discount"
    assert "unknown field 'discount'" in str(error)


def test_unknown_top_level_field_is_refused(writer: AvroWriter) -> None:
    """An unknown key on the top-level record is refused and named."""
    error = _refusal(writer, order(coupon="X"))
    assert error.field == "coupon"


def test_null_in_a_non_null_field_is_refused_with_its_path(writer: AvroWriter) -> None:
    """None for a string field is refused, saying null is not allowed there."""
    value = order()
    value["items"][0]["sku"] = None
    error = _refusal(writer, value)
    assert error.field == "items[0].sku"
    assert "null is not allowed" in str(error)


def test_enum_symbol_not_allowed_is_refused_with_its_path(writer: AvroWriter) -> None:
    """A symbol outside the enum is refused, listing the allowed symbols."""
    error = _refusal(writer, order(currency="JPY"))
    assert error.field == "currency"
    assert "'JPY' is not a symbol of enum shop.Currency (EUR, USD)" in str(error)


def test_value_matching_no_union_branch_is_refused_with_its_path(writer: AvroWriter) -> None:
    """An int for a [null, string] union is refused, naming the union's branches."""
    error = _refusal(writer, order(note=42))
    assert error.field == "note"
    assert "matches no branch of union [null, string]" in str(error)


def test_float_for_a_long_is_refused_rather_than_truncated(writer: AvroWriter) -> None:
    """1.5 for a long is refused (fastavro alone would write 1)."""
    error = _refusal(writer, order(amount=1.5))
    assert error.field == "amount"


def test_bool_for_a_long_is_refused(writer: AvroWriter) -> None:
    """True is not a number here, though Python's bool is an int."""
    error = _refusal(writer, order(amount=True))
    assert error.field == "amount"


def test_int_out_of_range_is_refused(writer: AvroWriter) -> None:
    """A quantity beyond 32 bits is refused with the int range in the message."""
    value = order()
    value["items"][0]["quantity"] = 2**31
    error = _refusal(writer, value)
    assert error.field == "items[0].quantity"
    assert "out of range for int" in str(error)


def test_pre_encoded_bytes_are_refused(writer: AvroWriter) -> None:
    """Bytes given for a record are refused with a hint to send the value itself."""
    error = _refusal(writer, b"\x00\x00\x00\x00\x07abc")
    assert error.field == "value"
    assert "not pre-encoded bytes" in str(error)


def test_a_missing_field_with_a_default_is_accepted(writer: AvroWriter) -> None:
    """Fields with defaults may be left out; the default is written."""
    value = order()
    del value["items"], value["note"]
    data = writer.encode(value)
    decoded = fastavro.schemaless_reader(io.BytesIO(data[HEADER_SIZE:]), schema(ORDER).parsed)
    assert decoded["items"] == []
    assert decoded["note"] is None


def test_key_refusals_name_the_key(writer: AvroWriter) -> None:
    """A key writer prefixes its field paths with 'key'."""
    key_writer = AvroWriter(
        schema({"type": "record", "name": "K", "fields": [{"name": "id", "type": "string"}]}),
        3,
        topic=TOPIC,
        role="key",
    )
    error = _refusal(key_writer, {"id": 5})
    assert error.field == "key.id"


# ------------------------------------------------------------------ wire format


def test_wire_format_is_magic_byte_schema_id_then_avro(writer: AvroWriter) -> None:
    """Encoded bytes are 0, the id as 4 big-endian bytes, then fastavro's encoding."""
    value = order()
    data = writer.encode(value)
    plain = io.BytesIO()
    fastavro.schemaless_writer(plain, schema(ORDER).parsed, value)
    assert data == b"\x00\x00\x00\x00\x07" + plain.getvalue()
    assert frame(7, plain.getvalue()) == data


def test_schema_id_beyond_four_bytes_is_refused() -> None:
    """An id that does not fit the header's 4 bytes cannot be framed."""
    with pytest.raises(ValueError, match="4 bytes"):
        frame(2**32, b"")


def test_encoding_does_not_touch_the_value(writer: AvroWriter) -> None:
    """The caller's dict is left as it was."""
    value = order()
    before = copy.deepcopy(value)
    writer.encode(value)
    assert value == before


# ------------------------------------------------------------------ schemas


def test_equal_schemas_compare_by_canonical_form() -> None:
    """Docs and formatting do not change a schema's identity or id."""
    documented = {**ORDER, "doc": "An order."}
    assert schema(ORDER) == schema(documented)
    assert schema_id_of(schema(ORDER)) == schema_id_of(schema(documented))


def test_schema_ids_are_positive_int32() -> None:
    """Deterministic ids fit a signed 32-bit int and are never 0."""
    ids = {schema_id_of(schema({**ORDER, "name": f"Order{i}"})) for i in range(200)}
    assert all(1 <= i <= 2**31 - 1 for i in ids)
    assert len(ids) == 200


def test_a_schema_that_does_not_parse_names_its_file(tmp_path: Any) -> None:
    """A broken .avsc raises ContractError naming the file, topic and key."""
    path = tmp_path / "broken.avsc"
    path.write_text('{"type": "record", "name": "R", "fields": [{"name": "a", "type": "nope"}]}')
    with pytest.raises(ContractError) as caught:
        load_schema(path, topic=TOPIC, key="value_schema")
    assert caught.value.path == str(path)
    assert (caught.value.topic, caught.value.key) == (TOPIC, "value_schema")
    assert "fields[0].type" in str(caught.value)
    assert "nope" not in str(caught.value)  # the file's content is never echoed


def test_invalid_json_is_a_contract_error() -> None:
    """Text that is not JSON is refused as a schema."""
    with pytest.raises(ContractError, match="not a valid Avro schema"):
        parse_schema("{not json", source="inline.avsc")


# ------------------------------------------------------------------ event types

UNION = [
    {"type": "record", "name": "shop.Created", "fields": [{"name": "id", "type": "string"}]},
    {
        "type": "record",
        "name": "shop.Cancelled",
        "fields": [{"name": "id", "type": "string"}, {"name": "reason", "type": "string"}],
    },
]


def test_event_type_of_a_record_is_its_full_name(writer: AvroWriter) -> None:
    """A record schema's values are of the record's full name."""
    assert writer.encode_event(order())[1] == "shop.Order"


def test_event_type_of_a_union_value_is_the_matching_record() -> None:
    """A union of records gives each value the type of the record it fits."""
    union_writer = AvroWriter(schema(UNION), 1, topic=TOPIC)
    assert union_writer.encode_event({"id": "1"})[1] == "shop.Created"
    assert union_writer.encode_event({"id": "1", "reason": "r"})[1] == "shop.Cancelled"


def test_union_values_decode_as_the_branch_they_were_written_as() -> None:
    """The branch the writer chose is the one written: decoding gives the same record."""
    registry = LocalSchemaRegistry()
    union = schema(UNION)
    union_id = registry.register("t-value", union)
    union_writer = AvroWriter(union, union_id, topic=TOPIC)
    reader = AvroReader(registry, topic=TOPIC, reader_schema=union)
    value = {"id": "1", "reason": "late"}
    assert reader.decode_event(union_writer.encode(value)) == (value, "shop.Cancelled")


def test_union_value_fitting_no_record_is_refused() -> None:
    """A value that is neither record of the union is refused."""
    union_writer = AvroWriter(schema(UNION), 1, topic=TOPIC)
    with pytest.raises(SerializationError) as caught:
        union_writer.encode({"reason": "no id"})
    assert caught.value.field == "value"
    assert "matches no branch of union [shop.Created, shop.Cancelled]" in str(caught.value)


# ------------------------------------------------------------------ decoding

V1 = {
    "type": "record",
    "name": "Order",
    "namespace": "shop",
    "fields": [{"name": "order_id", "type": "string"}, {"name": "amount", "type": "long"}],
}
V2 = {
    **V1,
    "fields": [*V1["fields"], {"name": "channel", "type": "string", "default": "web"}],
}


@pytest.fixture
def registry() -> LocalSchemaRegistry:
    local = LocalSchemaRegistry()
    local.register("t-value", schema(V1))
    local.register("t-value", schema(V2))
    return local


def test_reader_resolves_old_writer_schema_to_its_own(registry: LocalSchemaRegistry) -> None:
    """A v1 value read with v2 as reader schema gets v2's default for the added field."""
    data = AvroWriter(schema(V1), schema_id_of(schema(V1)), topic=TOPIC).encode(
        {"order_id": "o", "amount": 1}
    )
    reader = AvroReader(registry, topic=TOPIC, reader_schema=schema(V2))
    assert reader.decode(data) == {"order_id": "o", "amount": 1, "channel": "web"}


def test_logical_timestamps_decode_to_aware_datetimes() -> None:
    """A timestamp-millis field written as an int reads back as a UTC datetime."""
    registry = LocalSchemaRegistry()
    order_id = registry.register("t-value", schema(ORDER))
    data = AvroWriter(schema(ORDER), order_id, topic=TOPIC).encode(order())
    value = AvroReader(registry, topic=TOPIC).decode(data)
    assert value["created_at"] == datetime.datetime(
        2023, 11, 14, 22, 13, 20, tzinfo=datetime.timezone.utc
    )


def _decode_error(registry: LocalSchemaRegistry, data: bytes) -> DeserializationError:
    reader = AvroReader(registry, topic=TOPIC, reader_schema=schema(V2))
    with pytest.raises(DeserializationError) as caught:
        reader.decode(data, partition=3, offset=41)
    error = caught.value
    assert (error.topic, error.partition, error.offset, error.data) == (TOPIC, 3, 41, data)
    assert f"{TOPIC}[3]@41" in str(error)
    return error


def test_wrong_magic_byte_is_a_deserialization_error(registry: LocalSchemaRegistry) -> None:
    """Bytes not starting with magic byte 0 are refused, with the bytes kept."""
    error = _decode_error(registry, b"\x01\x00\x00\x00\x01abc")
    assert "magic byte is 1" in str(error)


def test_too_short_for_a_header_is_a_deserialization_error(registry: LocalSchemaRegistry) -> None:
    """Fewer than 5 bytes cannot hold the header."""
    error = _decode_error(registry, b"\x00\x00")
    assert "shorter than the 5-byte" in str(error)


def test_unknown_schema_id_is_a_deserialization_error(registry: LocalSchemaRegistry) -> None:
    """An id the registry does not know is refused, naming the id."""
    error = _decode_error(registry, b"\x00\x00\x00\x00\x09\x02a\x02")
    assert error.schema_id == 9
    assert "schema id 9 is not in the schema registry" in str(error)


def test_truncated_payload_is_a_deserialization_error(registry: LocalSchemaRegistry) -> None:
    """A value cut short is refused rather than decoded partly."""
    data = AvroWriter(schema(V1), schema_id_of(schema(V1)), topic=TOPIC).encode(
        {"order_id": "order-123", "amount": 1}
    )
    error = _decode_error(registry, data[:-3])
    assert error.schema_id == schema_id_of(schema(V1))


def test_trailing_bytes_are_a_deserialization_error(registry: LocalSchemaRegistry) -> None:
    """Bytes left over after the value mean the value was not what the id says."""
    data = AvroWriter(schema(V1), schema_id_of(schema(V1)), topic=TOPIC).encode(
        {"order_id": "o", "amount": 1}
    )
    error = _decode_error(registry, data + b"\x00")
    assert "1 bytes left over" in str(error)


def test_the_consumer_fast_path_refuses_what_the_full_path_refuses(
    registry: LocalSchemaRegistry,
) -> None:
    """After a good value, the consumer's decoder reads values of the same schema id
    directly; a value of that id cut short, or with bytes over, is still refused with the
    full path's reason, and a value of another id is still resolved to the reader's."""
    decode = AvroValue(
        AvroReader(registry, topic=TOPIC, reader_schema=schema(V2)), schema(V2), several=False
    )
    v1 = AvroWriter(schema(V1), schema_id_of(schema(V1)), topic=TOPIC)
    v2 = AvroWriter(schema(V2), schema_id_of(schema(V2)), topic=TOPIC)
    good = v2.encode({"order_id": "o-1", "amount": 5, "channel": "app"})
    assert decode(None, good, (), 0, 1) == (
        None,
        {"order_id": "o-1", "amount": 5, "channel": "app"},
        "shop.Order",
    )
    again = v2.encode({"order_id": "o-2", "amount": 6, "channel": "web"})
    assert decode(None, again, (), 0, 2)[1]["order_id"] == "o-2"
    with pytest.raises(DeserializationError, match="1 bytes left over"):
        decode(None, again + b"\x00", (), 0, 3)
    with pytest.raises(DeserializationError) as cut:
        decode(None, again[:-3], (), 0, 4)
    assert cut.value.schema_id == schema_id_of(schema(V2))
    assert cut.value.offset == 4
    old = v1.encode({"order_id": "o-3", "amount": 7})
    assert decode(None, old, (), 0, 5)[1] == {"order_id": "o-3", "amount": 7, "channel": "web"}
    assert decode(None, again, (), 0, 6)[1]["order_id"] == "o-2"


# ------------------------------------------------------------------ hostile input (issue 14)

SECRET = "AKIA-not-a-real-secret-0123456789"
FLOATS = {
    "type": "record",
    "name": "Reading",
    "fields": [
        {"name": "f", "type": "float"},
        {"name": "d", "type": "double"},
        {"name": "maybe", "type": ["null", "float"], "default": None},
    ],
}


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"f": 1e300, "d": 0.0}, "f"),
        ({"f": 3.5e38, "d": 0.0}, "f"),
        ({"f": -3.5e38, "d": 0.0}, "f"),
        ({"f": 10**39, "d": 0.0}, "f"),
        ({"f": 0.0, "d": 10**400}, "d"),
        ({"f": 0.0, "d": 0.0, "maybe": 1e39}, "maybe"),
    ],
    ids=["1e300", "3.5e38", "-3.5e38", "int-1e39", "int-1e400-double", "in-union"],
)
def test_a_float_out_of_range_is_refused_naming_the_field(value: object, field: str) -> None:
    """A number a float (or double) field cannot hold is refused, not written as infinity."""
    writer = AvroWriter(schema(FLOATS), 1, topic=TOPIC)
    refused = _refusal(writer, value)
    assert refused.field == field
    assert "out of range" in str(refused)


def test_nan_and_infinities_given_as_such_are_floats() -> None:
    """NaN, +inf and -inf are Avro floats and doubles; the largest finite float32 is too."""
    writer = AvroWriter(schema(FLOATS), schema_id_of(schema(FLOATS)), topic=TOPIC)
    reader = AvroReader(_local(FLOATS), topic=TOPIC)
    for value in (float("nan"), float("inf"), float("-inf"), 3.4028234663852886e38):
        data = writer.encode({"f": value, "d": value})
        back = reader.decode(data)
        assert repr(back["f"]) == repr(value)  # nan, inf, -inf and the float32 maximum


def _local(raw: Any) -> LocalSchemaRegistry:
    local = LocalSchemaRegistry()
    local.register("t-value", schema(raw))
    return local


def _nested(depth: int) -> str:
    """A schema of records nested ``depth`` deep, as JSON text."""
    text = '{"type": "record", "name": "L0", "fields": [{"name": "x", "type": "int"}]}'
    for level in range(1, depth):
        text = (
            f'{{"type": "record", "name": "L{level}", "fields": [{{"name": "c", "type": {text}}}]}}'
        )
    return text


def test_a_schema_nested_too_deep_is_a_contract_error() -> None:
    """A schema nested 400 records deep is refused by name, not a RecursionError later."""
    with pytest.raises(ContractError, match="nested more than 64") as refused:
        parse_schema(_nested(400), source="deep.avsc", topic=TOPIC, key="value_schema")
    assert refused.value.path == "deep.avsc"
    with pytest.raises(ContractError, match="nested more than 64"):
        parse_schema(_nested(65), source="deep.avsc")
    assert parse_schema(_nested(64)).event_types == ("L63",)


def test_json_nested_too_deep_for_the_parser_is_a_contract_error() -> None:
    """JSON nested 100,000 deep is refused naming the file."""
    with pytest.raises(ContractError, match="nested") as refused:
        parse_schema("[" * 100_000 + "]" * 100_000, source="deep.avsc")
    assert refused.value.path == "deep.avsc"


def test_invalid_utf8_in_a_schema_file_is_a_contract_error(tmp_path: Any) -> None:
    """A schema file that is not UTF-8 is a ContractError naming the file and the place."""
    path = tmp_path / "latin1.avsc"
    path.write_bytes(b'{"type": "string", "doc": "caf\xe9 ' + SECRET.encode() + b'"}')
    with pytest.raises(ContractError, match="not UTF-8") as refused:
        load_schema(path, topic=TOPIC, key="value_schema")
    assert refused.value.path == str(path)
    assert SECRET not in str(refused.value)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (json.dumps({"aws_secret_access_key": SECRET}), "'type'"),
        (json.dumps({"type": SECRET}), "type"),
        (
            json.dumps({"type": "record", "name": "R", "fields": [{"name": "a", "type": SECRET}]}),
            "fields[0].type",
        ),
        (json.dumps({"type": "record", "name": "R", "fields": SECRET}), "fields"),
        (
            json.dumps(
                {
                    "type": "record",
                    "name": "R",
                    "fields": [{"name": "a", "type": "int", "default": SECRET}],
                }
            ),
            "fields[0].default",
        ),
        (json.dumps([{"type": "enum", "name": "E", "symbols": [SECRET, SECRET]}]), "symbols"),
        (json.dumps(SECRET), "top level"),
        ('{"type": "record", "name": "' + SECRET + '"', "line 1 column"),
    ],
    ids=["credentials", "type", "field-type", "fields", "default", "enum", "string", "json"],
)
def test_a_schema_error_never_echoes_the_file(text: str, where: str) -> None:
    """What is wrong with a schema file is said by file, place and expectation, never by content."""
    with pytest.raises(ContractError) as refused:
        parse_schema(text, source="creds.avsc")
    message = str(refused.value)
    assert SECRET not in message
    assert SECRET[:8] not in message
    assert message.startswith("creds.avsc: ")
    assert where in message


NODE = {
    "type": "record",
    "name": "Node",
    "fields": [{"name": "next", "type": ["null", "Node"], "default": None}],
}


def _chain(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"next": None}
    for _ in range(depth - 1):
        value = {"next": value}
    return value


def test_a_value_nested_too_deep_for_a_recursive_schema_is_refused() -> None:
    """A recursive value deeper than 64 levels is a SerializationError, never a crash."""
    writer = AvroWriter(schema(NODE), 1, topic=TOPIC)
    writer.encode(_chain(60))
    for depth in (100, 5000):
        refused = _refusal(writer, _chain(depth))
        assert "nested more than 64" in str(refused)


def test_a_record_nested_too_deep_to_decode_is_a_deserialization_error() -> None:
    """5,000 bytes of a recursive record would crash the decoder: refused before decoding."""
    reader = AvroReader(_local(NODE), topic=TOPIC)
    header = frame(schema_id_of(schema(NODE)), b"")
    assert reader.decode(header + b"\x02" * 60 + b"\x00") is not None
    with pytest.raises(DeserializationError, match="nested more than 64") as refused:
        reader.decode(header + b"\x02" * 5000 + b"\x00", partition=0, offset=9)
    assert refused.value.offset == 9


def _zigzag(n: int) -> bytes:
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n & ~0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


@pytest.mark.parametrize(
    "items",
    [
        "null",
        {"type": "record", "name": "Empty", "fields": []},
        {"type": "fixed", "name": "Z", "size": 0},
    ],
    ids=["null", "empty-record", "fixed-0"],
)
def test_a_collection_of_zero_size_items_is_bounded(items: object) -> None:
    """An array of items that take no bytes cannot make 10 bytes decode to 10 million items."""
    raw = {"type": "array", "items": items}
    reader = AvroReader(_local(raw), topic=TOPIC)
    header = frame(schema_id_of(schema(raw)), b"")
    started = time.perf_counter()
    with pytest.raises(DeserializationError, match="more than 10000 items"):
        reader.decode(header + _zigzag(10_000_000) + b"\x00")
    assert time.perf_counter() - started < 1
    nested = {"type": "array", "items": raw}
    nested_reader = AvroReader(_local(nested), topic=TOPIC)
    many = _zigzag(5000) + b"\x00"
    with pytest.raises(DeserializationError, match="more than 10000 items"):
        nested_reader.decode(
            frame(schema_id_of(schema(nested)), b"") + _zigzag(3) + many * 3 + b"\x00"
        )
    assert len(reader.decode(header + _zigzag(100) + b"\x00")) == 100
    writer = AvroWriter(schema(raw), schema_id_of(schema(raw)), topic=TOPIC)
    empty: object = (
        None
        if items == "null"
        else ({} if isinstance(items, dict) and items["type"] == "record" else b"")
    )
    refused = _refusal(writer, [empty] * 10_001)
    assert "more than 10000 items" in str(refused)
