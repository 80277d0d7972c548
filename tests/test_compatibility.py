"""Compatibility modes, field-level messages, and the schema checks lint will call."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from avro_helpers import schema
from governed_kafka import Catalog, Policy
from governed_kafka.compatibility import (
    check_catalog,
    check_contract,
    check_versions,
    incompatibilities,
    mode_of,
)
from kafka_helpers import write_catalog


def _record(*fields: dict[str, Any], name: str = "Order") -> dict[str, Any]:
    return {"type": "record", "name": name, "namespace": "shop", "fields": list(fields)}


ID = {"name": "id", "type": "string"}
AMOUNT = {"name": "amount", "type": "long"}
CHANNEL_DEFAULT = {"name": "channel", "type": "string", "default": "web"}
CHANNEL_REQUIRED = {"name": "channel", "type": "string"}

V1 = schema(_record(ID, AMOUNT))
ADDED_WITH_DEFAULT = schema(_record(ID, AMOUNT, CHANNEL_DEFAULT))
ADDED_WITHOUT_DEFAULT = schema(_record(ID, AMOUNT, CHANNEL_REQUIRED))
REMOVED_AMOUNT = schema(_record(ID))


def test_backward_accepts_an_added_field_with_a_default() -> None:
    """A new reader fills an added field from its default: BACKWARD holds."""
    assert check_versions(ADDED_WITH_DEFAULT, [V1], "BACKWARD") == []


def test_backward_refuses_an_added_field_without_default_naming_it() -> None:
    """A new required field cannot be read from old data: the field and mode are named."""
    [problem] = check_versions(ADDED_WITHOUT_DEFAULT, [V1], "BACKWARD")
    assert problem.field == "channel"
    assert problem.mode == "BACKWARD"
    assert "BACKWARD" in str(problem)
    assert "'channel'" in str(problem)


def test_forward_refuses_removing_a_field_old_readers_need() -> None:
    """Old readers need 'amount' (no default): removing it breaks FORWARD."""
    [problem] = check_versions(REMOVED_AMOUNT, [V1], "FORWARD")
    assert problem.field == "amount"
    assert problem.mode == "FORWARD"


def test_backward_accepts_removing_a_field() -> None:
    """A new reader ignores a field old writers still send: BACKWARD holds."""
    assert check_versions(REMOVED_AMOUNT, [V1], "BACKWARD") == []


def test_full_needs_both_directions() -> None:
    """Removing a required field passes BACKWARD but fails FULL."""
    assert [p.field for p in check_versions(REMOVED_AMOUNT, [V1], "FULL")] == ["amount"]
    assert check_versions(ADDED_WITH_DEFAULT, [V1], "FULL") == []


def test_none_accepts_anything() -> None:
    """Mode NONE checks nothing."""
    assert check_versions(schema(_record(ID, name="Other")), [V1], "NONE") == []


def test_type_change_names_the_field_and_both_types() -> None:
    """string -> long for one field is reported at that field with the checker's message."""
    changed = schema(_record({"name": "id", "type": "long"}, AMOUNT))
    [problem] = check_versions(changed, [V1], "BACKWARD")
    assert problem.field == "id"
    assert "string" in problem.message
    assert "long" in problem.message


def test_nested_field_path_reaches_inside_arrays_of_records() -> None:
    """A type change inside array items is named as items[].price."""
    item = {"type": "record", "name": "Item", "fields": [{"name": "price", "type": "long"}]}
    old = schema(_record({"name": "items", "type": {"type": "array", "items": item}}))
    item2 = {"type": "record", "name": "Item", "fields": [{"name": "price", "type": "string"}]}
    new = schema(_record({"name": "items", "type": {"type": "array", "items": item2}}))
    [problem] = incompatibilities(new, old, mode="BACKWARD")
    assert problem.field == "items[].price"


def test_nested_field_path_reaches_inside_optional_records() -> None:
    """A required field added to a record inside a [null, record] union is named."""
    inner = {"type": "record", "name": "Address", "fields": [{"name": "city", "type": "string"}]}
    inner2 = {
        "type": "record",
        "name": "Address",
        "fields": [{"name": "city", "type": "string"}, {"name": "zip", "type": "string"}],
    }
    old = schema(_record({"name": "address", "type": ["null", inner], "default": None}))
    new = schema(_record({"name": "address", "type": ["null", inner2], "default": None}))
    [problem] = check_versions(new, [old], "BACKWARD")
    assert problem.field == "address.zip"


def test_removed_enum_symbol_breaks_backward() -> None:
    """A reader without a symbol old data may hold is incompatible at the enum field."""
    enum = {"type": "enum", "name": "Currency", "symbols": ["EUR", "USD"]}
    old = schema(_record({"name": "currency", "type": enum}))
    new = schema(_record({"name": "currency", "type": {**enum, "symbols": ["EUR"]}}))
    [problem] = check_versions(new, [old], "BACKWARD")
    assert problem.field == "currency"
    assert "USD" in problem.message


def test_non_transitive_modes_check_only_the_latest_version() -> None:
    """v3 is compared with v2 only under BACKWARD, with v1 and v2 under BACKWARD_TRANSITIVE."""
    v1 = schema(_record(ID))
    v2 = schema(_record())  # drops id: fine for BACKWARD
    v3 = schema(_record({"name": "id", "type": "long", "default": 0}))  # long id again
    assert check_versions(v3, [v1, v2], "BACKWARD") == []
    [problem] = check_versions(v3, [v1, v2], "BACKWARD_TRANSITIVE")
    assert problem.field == "id"
    assert problem.writer == v1


def test_first_version_has_nothing_to_break() -> None:
    """With no earlier versions, every mode holds."""
    assert check_versions(V1, [], "FULL_TRANSITIVE") == []


def test_unknown_mode_is_refused() -> None:
    """A misspelt mode is a ValueError, not a silent pass."""
    with pytest.raises(ValueError, match="unknown compatibility mode 'BACKWARDS'"):
        check_versions(V1, [V1], "BACKWARDS")  # type: ignore[arg-type]


# ------------------------------------------------------------------ lint checks


def _catalog(
    tmp_path: Path, schemas: dict[str, Any], topic_extra: str, policy: str = ""
) -> Catalog:
    for name, body in schemas.items():
        text = body if isinstance(body, str) else json.dumps(body)
        (tmp_path / name).write_text(text, encoding="utf-8")
    return Catalog.load(
        write_catalog(
            tmp_path,
            f"""
            [policy]
            {policy}

            [[topics]]
            name = "shop.order.created.v1"
            partitions = 1
            replication_factor = 1
            {topic_extra}
            """,
        )
    )


def test_check_contract_reports_a_schema_that_does_not_parse(tmp_path: Path) -> None:
    """An unparsable version is a schema.parse violation naming the file and version."""
    catalog = _catalog(
        tmp_path,
        {"v1.avsc": V1.text, "v2.avsc": '{"type": "record"}'},
        'value_schema = ["v1.avsc", "v2.avsc"]',
    )
    [violation] = check_contract(catalog.topic("shop.order.created.v1"), catalog.policy)
    assert violation.rule == "schema.parse"
    assert violation.field == "value_schema[1]"
    assert "v2.avsc" in violation.message


def test_check_contract_reports_incompatible_versions(tmp_path: Path) -> None:
    """v2 adding a required field is a schema.compatibility violation naming field and mode."""
    catalog = _catalog(
        tmp_path,
        {"v1.avsc": V1.text, "v2.avsc": ADDED_WITHOUT_DEFAULT.text},
        'value_schema = ["v1.avsc", "v2.avsc"]\ncompatibility = "FULL"',
    )
    [violation] = check_contract(catalog.topic("shop.order.created.v1"), catalog.policy)
    assert violation.rule == "schema.compatibility"
    assert violation.severity == "error"
    assert "FULL" in violation.message
    assert "'channel'" in violation.message
    assert "value_schema[1] (v2.avsc)" in violation.message
    assert "value_schema[0] (v1.avsc)" in violation.message


def test_check_contract_uses_the_policy_default_mode(tmp_path: Path) -> None:
    """Without a topic mode, the policy's default_compatibility decides."""
    catalog = _catalog(
        tmp_path,
        {"v1.avsc": V1.text, "v2.avsc": REMOVED_AMOUNT.text},
        'value_schema = ["v1.avsc", "v2.avsc"]',
        policy='default_compatibility = "FORWARD"',
    )
    contract = catalog.topic("shop.order.created.v1")
    assert mode_of(contract, catalog.policy) == "FORWARD"
    [violation] = check_contract(contract, catalog.policy)
    assert "FORWARD" in violation.message
    assert "'amount'" in violation.message


def test_check_contract_accepts_compatible_versions(tmp_path: Path) -> None:
    """The example contract's v1 -> v2 (fields with defaults) passes BACKWARD_TRANSITIVE."""
    catalog = Catalog.load(Path(__file__).parent.parent / "examples" / "governance.toml", "local")
    assert check_catalog(catalog) == []


def test_check_contract_reports_event_types_the_schema_cannot_carry(tmp_path: Path) -> None:
    """An event_types entry that is no record of the current schema is a violation."""
    catalog = _catalog(
        tmp_path,
        {"v1.avsc": V1.text},
        'value_schema = "v1.avsc"\nevent_types = ["shop.Order", "shop.Refund"]',
    )
    [violation] = check_contract(catalog.topic("shop.order.created.v1"), catalog.policy)
    assert violation.rule == "schema.event-types"
    assert "'shop.Refund'" in violation.message


def test_check_contract_reports_a_timestamp_field_that_is_not_a_long(tmp_path: Path) -> None:
    """A timestamp_field naming a string field is a violation."""
    catalog = _catalog(
        tmp_path, {"v1.avsc": V1.text}, 'value_schema = "v1.avsc"\ntimestamp_field = "id"'
    )
    [violation] = check_contract(catalog.topic("shop.order.created.v1"), catalog.policy)
    assert violation.rule == "schema.timestamp-field"
    assert "'id'" in violation.message


def test_check_contract_of_a_raw_topic_is_clean(tmp_path: Path) -> None:
    """A topic without schemas has no schema violations."""
    catalog = _catalog(tmp_path, {}, "")
    assert check_contract(catalog.topic("shop.order.created.v1"), Policy()) == []
