"""Property tests of the Avro serde: round trips, decoding garbage, and the two validators."""

from __future__ import annotations

import itertools
import math
import struct
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from avro_helpers import ORDER, schema
from governed_kafka import _avro_validate
from governed_kafka.avro import AvroReader, AvroWriter, parse_schema, schema_id_of
from governed_kafka.errors import DeserializationError, SerializationError
from governed_kafka.registry import LocalSchemaRegistry

TOPIC = "prop.value.checked.v1"

PRIMITIVES = ["null", "boolean", "int", "long", "float", "double", "bytes", "string"]


@st.composite
def schemas(draw: st.DrawFn, depth: int = 0, names: Any = None) -> Any:  # noqa: PLR0911
    """An Avro schema (as JSON) of records, enums, fixed, arrays, maps, unions, primitives."""
    names = names if names is not None else itertools.count()
    kinds = ["primitive", "enum", "fixed"] + (
        ["record", "array", "map", "union"] if depth < 3 else []
    )
    kind = draw(st.sampled_from(kinds))
    if kind == "primitive":
        return draw(st.sampled_from(PRIMITIVES))
    if kind == "enum":
        symbols = draw(
            st.lists(
                st.from_regex(r"[A-Z][A-Z0-9_]{0,5}", fullmatch=True),
                min_size=1,
                max_size=4,
                unique=True,
            )
        )
        return {"type": "enum", "name": f"E{next(names)}", "symbols": symbols}
    if kind == "fixed":
        return {"type": "fixed", "name": f"F{next(names)}", "size": draw(st.integers(0, 8))}
    if kind == "array":
        return {"type": "array", "items": draw(schemas(depth + 1, names))}
    if kind == "map":
        return {"type": "map", "values": draw(schemas(depth + 1, names))}
    if kind == "union":
        # Distinct kinds, no maps (a dict would fit a map and a record alike), no nesting.
        branches = draw(
            st.lists(
                st.sampled_from(
                    ["null", "boolean", "long", "double", "string", "bytes", "record", "array"]
                ),
                min_size=1,
                max_size=4,
                unique=True,
            )
        )
        out: list[Any] = []
        for branch in branches:
            if branch == "record":
                out.append(draw(records(depth + 1, names)))
            elif branch == "array":
                out.append({"type": "array", "items": draw(schemas(depth + 1, names))})
            else:
                out.append(branch)
        return out
    return draw(records(depth + 1, names))


@st.composite
def records(draw: st.DrawFn, depth: int, names: Any) -> Any:
    field_names = draw(
        st.lists(
            st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True),
            min_size=0,
            max_size=4,
            unique=True,
        )
    )
    fields = [{"name": n, "type": draw(schemas(depth + 1, names))} for n in field_names]
    return {"type": "record", "name": f"R{next(names)}", "fields": fields}


def values(node: Any, names: dict[str, Any]) -> st.SearchStrategy[Any]:  # noqa: PLR0911
    """Values that fit a parsed schema node exactly."""
    if isinstance(node, list):
        return st.one_of([values(b, names) for b in node])
    if isinstance(node, str) and node in names:
        node = names[node]
    kind = node if isinstance(node, str) else node["type"]
    simple: dict[str, st.SearchStrategy[Any]] = {
        "null": st.none(),
        "boolean": st.booleans(),
        "int": st.integers(-(2**31), 2**31 - 1),
        "long": st.integers(-(2**63), 2**63 - 1),
        "float": st.floats(width=32, allow_nan=False),
        "double": st.floats(allow_nan=False),
        "bytes": st.binary(max_size=20),
        "string": st.text(max_size=20),
    }
    if kind in simple:
        return simple[kind]
    if kind == "enum":
        return st.sampled_from(node["symbols"])
    if kind == "fixed":
        return st.binary(min_size=node["size"], max_size=node["size"])
    if kind == "array":
        return st.lists(values(node["items"], names), max_size=3)
    if kind == "map":
        return st.dictionaries(st.text(max_size=5), values(node["values"], names), max_size=3)
    return st.fixed_dictionaries({f["name"]: values(f["type"], names) for f in node["fields"]})


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return (bool(a == b) and type(a) is type(b)) or (type(a) in {int, float} and a == b)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_every_fitting_value_round_trips(data: st.DataObject) -> None:
    """Any value that fits a generated schema encodes, and decodes back to itself."""
    parsed = schema(data.draw(schemas()))
    value = data.draw(values(parsed.parsed, parsed.names))
    registry = LocalSchemaRegistry()
    schema_id = registry.register("s-value", parsed)
    encoded = AvroWriter(parsed, schema_id, topic=TOPIC).encode(value)
    decoded = AvroReader(registry, topic=TOPIC, reader_schema=parsed).decode(encoded)
    assert _same(decoded, value), (decoded, value)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fitting_values_satisfy_both_validators(data: st.DataObject) -> None:
    """The compiled check accepts every fitting value, and the explainer finds nothing wrong."""
    parsed = schema(data.draw(schemas()))
    value = data.draw(values(parsed.parsed, parsed.names))
    assert _avro_validate.compile_check(parsed.parsed, parsed.names)(value)
    assert _avro_validate.explain(parsed.parsed, value, parsed.names) is None


JSONISH = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=5)
    | st.binary(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), JSONISH)
def test_check_and_explanation_agree_on_arbitrary_values(data: st.DataObject, value: Any) -> None:
    """The compiled check refuses a value exactly when the explainer names a problem."""
    parsed = schema(data.draw(schemas()))
    fits = _avro_validate.compile_check(parsed.parsed, parsed.names)(value)
    problem = _avro_validate.explain(parsed.parsed, value, parsed.names)
    assert fits == (problem is None), (fits, problem)


@settings(max_examples=100, deadline=None)
@given(st.data(), JSONISH)
def test_writers_raise_only_serialization_errors(data: st.DataObject, value: Any) -> None:
    """Encoding an arbitrary value either succeeds or raises SerializationError."""
    parsed = schema(data.draw(schemas()))
    writer = AvroWriter(parsed, 1, topic=TOPIC)
    error = None
    try:
        writer.encode(value)
    except SerializationError as refused:
        error = refused
    assert error is None or error.topic == TOPIC


GARBAGE_SCHEMA = parse_schema(
    {
        **ORDER,
        "fields": [
            *ORDER["fields"],
            {"name": "tags", "type": {"type": "map", "values": "string"}, "default": {}},
            {"name": "score", "type": ["null", "double", "bytes"], "default": None},
        ],
    }
)
GARBAGE_ID = schema_id_of(GARBAGE_SCHEMA)


def _decode_error(data: bytes) -> DeserializationError | None:
    """Decode ``data`` with a fresh reader; return the DeserializationError, if any."""
    registry = LocalSchemaRegistry()
    registry.register("s-value", GARBAGE_SCHEMA)
    reader = AvroReader(registry, topic=TOPIC, reader_schema=GARBAGE_SCHEMA)
    try:
        reader.decode(data, partition=0, offset=1)
    except DeserializationError as error:
        return error
    return None


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=64))
def test_arbitrary_bytes_raise_only_deserialization_errors(data: bytes) -> None:
    """Any bytes at all either decode or raise DeserializationError carrying them."""
    error = _decode_error(data)
    assert error is None or error.data == data


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=64))
def test_arbitrary_payloads_after_a_valid_header_raise_only_deserialization_errors(
    payload: bytes,
) -> None:
    """Garbage behind a known schema id reaches the Avro decoder and still fails cleanly."""
    data = struct.pack(">BI", 0, GARBAGE_ID) + payload
    error = _decode_error(data)
    assert error is None or (error.data, error.schema_id) == (data, GARBAGE_ID)
