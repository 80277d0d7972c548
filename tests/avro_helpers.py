"""Schemas the serde tests share, and a helper to parse them."""

from __future__ import annotations

from typing import Any

from governed_kafka.avro import AvroSchema, parse_schema

ORDER_ITEM: dict[str, Any] = {
    "type": "record",
    "name": "OrderItem",
    "fields": [
        {"name": "sku", "type": "string"},
        {"name": "quantity", "type": "int"},
        {"name": "price", "type": "long"},
    ],
}

ORDER: dict[str, Any] = {
    "type": "record",
    "name": "Order",
    "namespace": "shop",
    "fields": [
        {"name": "order_id", "type": "string"},
        {"name": "amount", "type": "long"},
        {
            "name": "currency",
            "type": {"type": "enum", "name": "Currency", "symbols": ["EUR", "USD"]},
        },
        {"name": "items", "type": {"type": "array", "items": ORDER_ITEM}, "default": []},
        {"name": "note", "type": ["null", "string"], "default": None},
        {"name": "created_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    ],
}


def order(**changes: Any) -> dict[str, Any]:
    """A valid Order value, with ``changes`` laid over it."""
    value: dict[str, Any] = {
        "order_id": "o-1",
        "amount": 1999,
        "currency": "EUR",
        "items": [{"sku": f"sku-{i}", "quantity": 1, "price": 100 * i} for i in range(3)],
        "note": None,
        "created_at": 1_700_000_000_000,
    }
    value.update(changes)
    return value


def schema(raw: Any, source: str | None = None) -> AvroSchema:
    return parse_schema(raw, source=source)
