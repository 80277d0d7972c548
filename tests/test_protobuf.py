"""Protobuf serde without a broker: compiling .proto files, refusals with field paths, the
message-index list, decoding, bad bytes."""

from __future__ import annotations

import contextlib
import datetime
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from format_helpers import SCHEMAS, TESTS, proto_order, proto_orders, proto_value
from governed_kafka.errors import ContractError, DeserializationError, SerializationError
from governed_kafka.protobuf import (
    MAX_DEPTH,
    MAX_INDEXES,
    ProtobufReader,
    ProtobufWriter,
    decode_indexes,
    encode_indexes,
    load_schema,
    parse_schema,
    schema_id_of,
)
from governed_kafka.registry import LocalSchemaRegistry

TOPIC = "shop.order.created.v1"
ORDER = "payments.OrderCreated"


@pytest.fixture(scope="module")
def schema() -> Any:
    return proto_order(2)


@pytest.fixture
def writer(schema: Any) -> ProtobufWriter:
    return ProtobufWriter(schema, schema_id_of(schema), topic=TOPIC)


@pytest.fixture
def reader(schema: Any) -> ProtobufReader:
    registry = LocalSchemaRegistry()
    registry.register(f"{TOPIC}-value", schema)
    return ProtobufReader(registry, topic=TOPIC, reader_schema=schema)


def _refusal(writer: ProtobufWriter, value: object) -> SerializationError:
    with pytest.raises(SerializationError) as caught:
        writer.encode(value)
    assert caught.value.topic == TOPIC
    assert "nothing was sent" in str(caught.value)
    return caught.value


# ------------------------------------------------------------------ compiling


def test_a_file_compiles_with_its_import(schema: Any) -> None:
    """The file is named by its path below the root; its import is a dependency."""
    assert schema.name == "schemas/order.v2.proto"
    assert [d.name for d in schema.references] == ["schemas/common/money.proto"]
    assert schema.event_types == (ORDER, f"{ORDER}.Item", "payments.OrderCancelled")
    # protoc puts the entry type of the map field first among the nested types.
    assert schema.indexes(f"{ORDER}.Item") == [0, 1]
    assert proto_order(1).indexes(f"{ORDER}.Item") == [0, 0]
    assert schema.message_at([1]) == "payments.OrderCancelled"
    assert schema.message_at([5]) is None


def test_compiling_twice_gives_the_same_schema_and_id() -> None:
    """Ids are deterministic: the descriptors, imports included, decide them."""
    assert proto_order(1) == proto_order(1)
    assert schema_id_of(proto_order(1)) == schema_id_of(proto_order(1))
    assert proto_order(1) != proto_order(2)


def test_a_syntax_error_names_line_and_column_never_the_names(tmp_path: Path) -> None:
    """protoc's error is given by place; the names it quotes from the file are not."""
    (tmp_path / "bad.proto").write_text(
        'syntax = "proto3";\nmessage X {\n  secretType a = 1;\n}\n', encoding="utf-8"
    )
    with pytest.raises(ContractError) as caught:
        load_schema(tmp_path / "bad.proto", topic=TOPIC, key="value_schema")
    assert "line 3 column 3" in str(caught.value)
    assert "secretType" not in str(caught.value)
    assert caught.value.topic == TOPIC


def test_an_import_outside_the_root_is_refused(tmp_path: Path) -> None:
    """A symlinked import that leads out of the contracts folder is refused."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.proto").write_text('syntax = "proto3";\nmessage X {}\n', encoding="utf-8")
    root = tmp_path / "contracts"
    root.mkdir()
    os.symlink(outside / "x.proto", root / "x.proto")
    (root / "a.proto").write_text(
        'syntax = "proto3";\nimport "x.proto";\nmessage A { X x = 1; }\n', encoding="utf-8"
    )
    with pytest.raises(ContractError, match="leads outside the contracts folder"):
        load_schema(root / "a.proto", root=root)


def test_an_import_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    """A missing import is a ContractError naming the place of the import."""
    (tmp_path / "a.proto").write_text(
        'syntax = "proto3";\nimport "nope.proto";\nmessage A {}\n', encoding="utf-8"
    )
    with pytest.raises(ContractError, match="line 2"):
        load_schema(tmp_path / "a.proto")


def test_well_known_types_need_no_file(tmp_path: Path) -> None:
    """google/protobuf/timestamp.proto comes with the runtime; a datetime fits a Timestamp."""
    (tmp_path / "t.proto").write_text(
        'syntax = "proto3";\nimport "google/protobuf/timestamp.proto";\n'
        "message T { google.protobuf.Timestamp at = 1; }\n",
        encoding="utf-8",
    )
    schema = load_schema(tmp_path / "t.proto")
    writer = ProtobufWriter(schema, 1, topic=TOPIC)
    at = datetime.datetime(2024, 1, 2, tzinfo=datetime.timezone.utc)
    data = writer.encode({"at": at})
    registry = LocalSchemaRegistry()
    registry.register("t", schema)
    decoded = ProtobufReader(registry, topic=TOPIC).decode(
        b"\x00" + schema_id_of(schema).to_bytes(4, "big") + data[5:]
    )
    assert decoded.at.ToDatetime(tzinfo=datetime.timezone.utc) == at


def test_text_and_descriptor_parse_to_the_same_schema(schema: Any) -> None:
    """A schema given as the base64 descriptor a registry holds is the compiled one."""
    assert parse_schema(schema.text, references=schema.dependencies) == schema
    text = parse_schema('syntax = "proto3";\npackage q;\nmessage Q { int32 a = 1; }\n')
    assert text.event_types == ("q.Q",)


# ------------------------------------------------------------------ refusals


def test_a_dict_is_encoded_as_the_first_message(writer: ProtobufWriter) -> None:
    """Header, index list [0] as one zero byte, then the message; its name is the event type."""
    data, event_type = writer.encode_event(proto_value())
    assert data[:5] == b"\x00" + writer.schema_id.to_bytes(4, "big")
    assert data[5] == 0
    assert event_type == ORDER


@pytest.mark.parametrize(
    ("change", "field", "fragment"),
    [
        ({"order_id": 7}, "order_id", "expected string, got int"),
        ({"nope": 1}, "nope", "unknown field 'nope'"),
        ({"items": [{"sku": "a"}, {"sku": "b", "quantity": "3"}]}, "items[1].quantity", "int32"),
        ({"items": [{"quantity": 2**31}]}, "items[0].quantity", "out of range for int32"),
        ({"items": [{"quantity": True}]}, "items[0].quantity", "expected int32, got bool"),
        ({"items": [{"price_cents": 1.5}]}, "items[0].price_cents", "expected int64"),
        ({"total": {"cents": 1, "currency": "\ud800"}}, "total.currency", "lone surrogate"),
        ({"total": "EUR"}, "total", "expected message payments.common.Money"),
        ({"labels": {"a": 1}}, "labels['a']", "expected string"),
        ({"items": "x"}, "items", "expected a list"),
        ({"store": "s1"}, "store", "both set"),
        ({"items": [None]}, "items[0]", "None is not a value"),
    ],
)
def test_each_refusal_names_its_field(
    writer: ProtobufWriter, change: dict[str, Any], field: str, fragment: str
) -> None:
    """Every kind of misfit is refused at its path, saying what was expected."""
    error = _refusal(writer, proto_value(**change))
    assert error.field == field
    assert fragment in str(error)


def test_a_float_too_large_for_float32_is_refused(tmp_path: Path) -> None:
    """1e300 in a float field would be written as infinity: refused."""
    (tmp_path / "f.proto").write_text(
        'syntax = "proto3";\nmessage F { float f = 1; double d = 2; }\n', encoding="utf-8"
    )
    writer = ProtobufWriter(load_schema(tmp_path / "f.proto"), 1, topic=TOPIC)
    assert _refusal(writer, {"f": 1e300}).field == "f"
    writer.encode({"d": 1e300, "f": 1.5})


def test_an_enum_takes_names_and_known_numbers(tmp_path: Path) -> None:
    """Enum fields take a value's name or number; an unknown one is refused."""
    (tmp_path / "e.proto").write_text(
        'syntax = "proto3";\nenum C { RED = 0; BLUE = 1; }\nmessage E { C c = 1; }\n',
        encoding="utf-8",
    )
    writer = ProtobufWriter(load_schema(tmp_path / "e.proto"), 1, topic=TOPIC)
    assert writer.encode({"c": "BLUE"}) == writer.encode({"c": 1})
    assert "not a value of enum C" in str(_refusal(writer, {"c": "GREEN"}))


def test_a_proto2_required_field_is_required(tmp_path: Path) -> None:
    """A missing proto2 required field is refused, in a dict and in a message."""
    (tmp_path / "r.proto").write_text(
        'syntax = "proto2";\nmessage R { required int32 a = 1; optional int32 b = 2; }\n',
        encoding="utf-8",
    )
    schema = load_schema(tmp_path / "r.proto")
    writer = ProtobufWriter(schema, 1, topic=TOPIC)
    assert _refusal(writer, {"b": 1}).field == "a"
    assert _refusal(writer, schema.message_class("R")(b=1)).field == "a"


def test_a_dict_nested_too_deep_is_refused(tmp_path: Path) -> None:
    """A recursive message nested beyond MAX_DEPTH is refused before encoding."""
    (tmp_path / "n.proto").write_text(
        'syntax = "proto3";\nmessage N { N next = 1; }\n', encoding="utf-8"
    )
    writer = ProtobufWriter(load_schema(tmp_path / "n.proto"), 1, topic=TOPIC)
    value: dict[str, Any] = {}
    for _ in range(MAX_DEPTH + 2):
        value = {"next": value}
    assert f"nested more than {MAX_DEPTH}" in str(_refusal(writer, value))


def test_a_message_of_another_schema_is_refused(writer: ProtobufWriter) -> None:
    """An instance of a same-named message compiled from another version is refused."""
    other = proto_order(1).message_class(ORDER)(order_id="o")
    assert "another version of the schema" in str(_refusal(writer, other))


def test_bytes_are_refused(writer: ProtobufWriter) -> None:
    """Pre-encoded bytes are refused: only values can be checked."""
    assert "pre-encoded bytes" in str(_refusal(writer, b"\x0a\x01x"))


def test_key_paths_start_with_key(schema: Any) -> None:
    """A key's field paths are prefixed with key."""
    writer = ProtobufWriter(schema, 1, topic=TOPIC, role="key")
    assert _refusal(writer, {"order_id": 1}).field == "key.order_id"


def test_the_writer_can_be_told_which_message_a_dict_is(schema: Any) -> None:
    """message= picks the message of dict values."""
    writer = ProtobufWriter(schema, 1, topic=TOPIC, message="payments.OrderCancelled")
    data, event_type = writer.encode_event({"order_id": "o", "reason": "late"})
    assert event_type == "payments.OrderCancelled"
    assert data[5:7] == encode_indexes([1])


# ------------------------------------------------------------------ the index list


@settings(max_examples=200, deadline=None)
@given(indexes=st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=8))
def test_index_lists_round_trip(indexes: list[int]) -> None:
    """Any index list reads back as written, and [0] is one byte."""
    encoded = encode_indexes(indexes)
    assert decode_indexes(encoded, 0) == (indexes, len(encoded))
    if indexes == [0]:
        assert encoded == b"\x00"


@pytest.mark.parametrize(
    "data",
    [b"", b"\x02", b"\x80" * 11, b"\x01", bytes([(MAX_INDEXES + 1) * 2]), b"\x02\x01"],
)
def test_bad_index_lists_are_refused(data: bytes) -> None:
    """Cut short, overlong, negative, or longer than MAX_INDEXES: ValueError."""
    with pytest.raises(ValueError, match="index"):
        decode_indexes(data, 0)


# ------------------------------------------------------------------ decoding


def test_decoding_gives_a_message_of_the_readers_class(
    writer: ProtobufWriter, reader: ProtobufReader, schema: Any
) -> None:
    """Values decode to instances of the reader schema's class, typed by their message."""
    value, event_type = reader.decode_event(writer.encode(proto_value()), partition=1, offset=2)
    assert isinstance(value, schema.message_class(ORDER))
    assert value == schema.message_class(ORDER)(**proto_value())
    assert event_type == ORDER


def test_an_older_writer_decodes_into_the_newer_reader(schema: Any) -> None:
    """v1 bytes decode with v2's class (new fields unset): Protobuf evolves by number."""
    registry = LocalSchemaRegistry()
    old = proto_order(1)
    old_id = registry.register("s", old)
    registry.register("s", schema)
    data = ProtobufWriter(old, old_id, topic=TOPIC).encode({"order_id": "o-9"})
    decoded = ProtobufReader(registry, topic=TOPIC, reader_schema=schema).decode(data)
    assert isinstance(decoded, schema.message_class(ORDER))
    assert decoded.order_id == "o-9"


@pytest.mark.parametrize(
    ("tail", "why"),
    [
        (b"\x04\x12\x00", "names no message"),
        (b"\x04\x03\x00", "negative"),
        (b"\x03", "claims -2 indexes"),
        (b"\x00\x0a\x05ab", "does not parse"),
        (b"\x00\xff\xff\xff", "does not parse"),
    ],
)
def test_bad_payloads_raise_deserialization_error(
    reader: ProtobufReader, schema: Any, tail: bytes, why: str
) -> None:
    """Index lists naming no message and truncated payloads are DeserializationErrors."""
    data = b"\x00" + schema_id_of(schema).to_bytes(4, "big") + tail
    with pytest.raises(DeserializationError, match=why) as caught:
        reader.decode(data, offset=5)
    assert caught.value.data == data
    assert caught.value.offset == 5


def test_a_deeply_nested_payload_is_refused_not_a_crash(tmp_path: Path) -> None:
    """Bytes nesting a recursive message thousands deep hit the runtime's recursion limit."""
    (tmp_path / "n.proto").write_text(
        'syntax = "proto3";\nmessage N { N next = 1; }\n', encoding="utf-8"
    )
    schema = load_schema(tmp_path / "n.proto")
    registry = LocalSchemaRegistry()
    schema_id = registry.register("n", schema)
    payload = b""
    for _ in range(5000):
        size = len(payload)
        length = bytearray()
        while True:
            byte = size & 0x7F
            size >>= 7
            length.append(byte | (0x80 if size else 0))
            if not size:
                break
        payload = b"\x0a" + bytes(length) + payload
    data = b"\x00" + schema_id.to_bytes(4, "big") + b"\x00" + payload
    with pytest.raises(DeserializationError, match="does not parse"):
        ProtobufReader(registry, topic=TOPIC).decode(data)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=64))
def test_any_bytes_raise_nothing_but_deserialization_error(data: bytes) -> None:
    """Hostile bytes, with or without a valid header, decode or raise DeserializationError."""
    schema = proto_order(2)
    registry = LocalSchemaRegistry()
    schema_id = registry.register("s", schema)
    reader = ProtobufReader(registry, topic=TOPIC, reader_schema=schema)
    header = b"\x00" + schema_id.to_bytes(4, "big")
    for candidate in (data, header + data):
        with contextlib.suppress(DeserializationError):
            reader.decode(candidate)


@settings(max_examples=150, deadline=None)
@given(value=proto_orders)
def test_valid_orders_round_trip(value: dict[str, Any]) -> None:
    """Every valid dict encodes and decodes to the message built from it."""
    schema = proto_order(2)
    registry = LocalSchemaRegistry()
    schema_id = registry.register("s", schema)
    data = ProtobufWriter(schema, schema_id, topic=TOPIC).encode(value)
    decoded = ProtobufReader(registry, topic=TOPIC, reader_schema=schema).decode(data)
    assert decoded == schema.message_class(ORDER)(**value)


def test_schemas_folder_is_where_the_helpers_say() -> None:
    """The shared schemas live below the tests folder the imports are resolved in."""
    assert SCHEMAS.parent == TESTS
