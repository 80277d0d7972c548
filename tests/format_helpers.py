"""The JSON Schema and Protobuf schemas the serde tests share, and hypothesis strategies of
values that fit them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from governed_kafka.json_schema import JsonSchema
from governed_kafka.json_schema import load_schema as load_json
from governed_kafka.protobuf import ProtobufSchema
from governed_kafka.protobuf import load_schema as load_proto

TESTS = Path(__file__).parent
SCHEMAS = TESTS / "schemas"


def json_order(version: int = 1) -> JsonSchema:
    """The JSON Schema order of ``tests/schemas/order_created.v<version>.json``."""
    return load_json(SCHEMAS / f"order_created.v{version}.json")


def proto_order(version: int = 1) -> ProtobufSchema:
    """The Protobuf order of ``tests/schemas/order.v<version>.proto`` (imports money.proto)."""
    return load_proto(SCHEMAS / f"order.v{version}.proto", root=TESTS)


def order(**changes: Any) -> dict[str, Any]:
    """A valid JSON Schema order value, with ``changes`` laid over it."""
    value: dict[str, Any] = {
        "order_id": "o-1",
        "customer_id": "c-7",
        "currency": "EUR",
        "items": [
            {"sku": "apple", "quantity": 3, "price_cents": 120},
            {"sku": "pear", "quantity": 1, "price_cents": 90},
            {"sku": "plum", "quantity": 2, "price_cents": 1250},
        ],
    }
    value.update(changes)
    return value


def proto_value(**changes: Any) -> dict[str, Any]:
    """A valid Protobuf OrderCreated value (v2) as a dict, with ``changes`` laid over it."""
    value: dict[str, Any] = {
        "order_id": "o-1",
        "customer_id": "c-7",
        "items": [
            {"sku": "apple", "quantity": 3, "price_cents": 120},
            {"sku": "pear", "quantity": 1, "price_cents": 90},
            {"sku": "plum", "quantity": 2, "price_cents": 1250},
        ],
        "total": {"cents": 1580, "currency": "EUR"},
        "labels": {"source": "web"},
        "web": "shop.example",
    }
    value.update(changes)
    return value


_text = st.text(max_size=20)

json_items = st.fixed_dictionaries(
    {
        "sku": st.text(min_size=1, max_size=20),
        "quantity": st.integers(min_value=1, max_value=10**12),
        "price_cents": st.integers(min_value=0, max_value=10**15),
    }
)

#: Values that fit the JSON Schema order v1.
json_orders = st.fixed_dictionaries(
    {
        "order_id": _text,
        "customer_id": _text,
        "items": st.lists(json_items, max_size=5),
    },
    optional={"currency": st.sampled_from(["EUR", "USD", "GBP"])},
)

proto_items = st.fixed_dictionaries(
    {
        "sku": _text,
        "quantity": st.integers(min_value=-(2**31), max_value=2**31 - 1),
        "price_cents": st.integers(min_value=-(2**63), max_value=2**63 - 1),
    }
)

#: Values that fit the Protobuf OrderCreated of v2.
proto_orders = st.fixed_dictionaries(
    {
        "order_id": _text,
        "customer_id": _text,
        "items": st.lists(proto_items, max_size=5),
    },
    optional={
        "total": st.fixed_dictionaries(
            {"cents": st.integers(min_value=-(2**63), max_value=2**63 - 1), "currency": _text}
        ),
        "labels": st.dictionaries(_text, _text, max_size=3),
        "web": _text,
    },
)

#: Arbitrary JSON values (finite numbers, str keys), nested a few levels.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_text, children, max_size=4),
    max_leaves=20,
)

__all__ = [
    "SCHEMAS",
    "TESTS",
    "json_items",
    "json_order",
    "json_orders",
    "json_values",
    "order",
    "proto_order",
    "proto_orders",
    "proto_value",
]
