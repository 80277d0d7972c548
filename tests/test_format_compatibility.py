"""The offline compatibility subsets of JSON Schema and Protobuf, through check_versions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from avro_helpers import ORDER, schema
from format_helpers import json_order, proto_order
from governed_kafka.compatibility import check_versions, incompatibilities
from governed_kafka.json_schema import JsonSchema, parse_schema
from governed_kafka.protobuf import ProtobufSchema, load_schema


def js(raw: dict[str, Any]) -> JsonSchema:
    return parse_schema(json.dumps(raw))


def obj(properties: dict[str, Any], **more: Any) -> JsonSchema:
    return js({"type": "object", "properties": properties, **more})


def fields(found: list[Any]) -> list[str]:
    return [p.field for p in found]


# ------------------------------------------------------------------ JSON Schema


def test_json_adding_an_optional_property_to_an_open_object_is_backward_and_forward() -> None:
    """An open object may gain an optional property under FULL."""
    old = obj({"a": {"type": "string"}})
    new = obj({"a": {"type": "string"}, "b": {"type": "integer"}})
    assert check_versions(new, [old], "FULL") == []


def test_json_adding_a_required_property_breaks_backward() -> None:
    """Old values lack the new required property: BACKWARD names it."""
    old = obj({"a": {"type": "string"}})
    new = obj({"a": {"type": "string"}, "b": {"type": "integer"}}, required=["b"])
    found = check_versions(new, [old], "BACKWARD")
    assert fields(found) == ["b"]
    assert "now required" in found[0].message
    assert check_versions(new, [old], "FORWARD") == []


def test_json_narrowing_a_type_breaks_backward_and_widening_breaks_forward() -> None:
    """number to integer loses values: BACKWARD; integer to number: FORWARD."""
    wide = obj({"n": {"type": "number"}})
    narrow = obj({"n": {"type": "integer"}})
    assert fields(check_versions(narrow, [wide], "BACKWARD")) == ["n"]
    assert check_versions(wide, [narrow], "BACKWARD") == []
    assert fields(check_versions(wide, [narrow], "FORWARD")) == ["n"]


def test_json_removing_a_property_of_a_closed_object_breaks_backward() -> None:
    """With additionalProperties: false, old values holding the removed property fail."""
    old = obj({"a": {"type": "string"}, "b": {"type": "string"}}, additionalProperties=False)
    new = obj({"a": {"type": "string"}}, additionalProperties=False)
    found = check_versions(new, [old], "BACKWARD")
    assert fields(found) == ["b"]
    assert "closed" in found[0].message


def test_json_closing_an_open_object_breaks_backward() -> None:
    """Adding additionalProperties: false refuses what old values could hold."""
    old = obj({"a": {"type": "string"}})
    new = obj({"a": {"type": "string"}}, additionalProperties=False)
    assert fields(check_versions(new, [old], "BACKWARD")) == [""]


def test_json_narrowing_an_enum_and_tightening_bounds_break_backward() -> None:
    """A dropped enum value and a lower maxLength are found, inside arrays too."""
    old = obj({"c": {"enum": ["a", "b"]}, "xs": {"type": "array", "items": {"maxLength": 5}}})
    new = obj({"c": {"enum": ["a"]}, "xs": {"type": "array", "items": {"maxLength": 3}}})
    assert fields(check_versions(new, [old], "BACKWARD")) == ["c", "xs[]"]


def test_json_follows_local_references() -> None:
    """A change inside a $defs target is found at the path that uses it."""
    old = json_order(1)
    raw = json.loads(old.text)
    raw["$defs"]["Item"]["properties"]["quantity"]["type"] = "string"
    found = check_versions(js(raw), [old], "BACKWARD")
    assert "items[].quantity" in fields(found)


def test_json_example_versions_are_backward_and_the_breaking_one_is_not() -> None:
    """The test schemas: v2 adds an optional note; v2-breaking requires it."""
    here = Path(__file__).parent / "schemas"
    from governed_kafka.json_schema import load_schema as load_json

    v1, v2 = json_order(1), json_order(2)
    breaking = load_json(here / "order_created.v2-breaking.json")
    assert check_versions(v2, [v1], "BACKWARD_TRANSITIVE") == []
    assert set(fields(check_versions(breaking, [v1, v2], "BACKWARD_TRANSITIVE"))) == {
        "note",
        "items[].quantity",
    }


# ------------------------------------------------------------------ Protobuf


def proto(tmp_path: Path, name: str, body: str) -> ProtobufSchema:
    path = tmp_path / f"{name}.proto"
    path.write_text(f'syntax = "proto3";\npackage p;\n{body}\n', encoding="utf-8")
    return load_schema(path)


def test_proto_adding_a_field_is_fully_compatible() -> None:
    """The test schemas: v2 adds a map and a oneof, compatible both ways."""
    assert check_versions(proto_order(2), [proto_order(1)], "FULL_TRANSITIVE") == []


def test_proto_changing_a_fields_type_is_incompatible_both_ways() -> None:
    """int32 to string at number 2 is found by BACKWARD and by FORWARD."""
    breaking = load_schema(
        Path(__file__).parent / "schemas" / "order.v2-breaking.proto",
        root=Path(__file__).parent,
    )
    for mode in ("BACKWARD", "FORWARD"):
        found = check_versions(breaking, [proto_order(2)], mode)  # type: ignore[arg-type]
        assert "payments.OrderCreated.Item.quantity" in fields(found)
        assert {"int32", "string"} <= set(found[0].message.replace(",", " ").split())


def test_proto_changing_a_fields_number_is_incompatible(tmp_path: Path) -> None:
    """The same name under another number is found."""
    old = proto(tmp_path, "a", "message M { string a = 1; }")
    new = proto(tmp_path, "b", "message M { string a = 2; }")
    found = incompatibilities(new, old, mode="BACKWARD")
    assert fields(found) == ["p.M.a"]
    assert "number 1 in one version and 2 in the other" in found[0].message


def test_proto_singular_to_repeated_is_incompatible(tmp_path: Path) -> None:
    """A label change (singular to repeated) at one number is found."""
    old = proto(tmp_path, "a", "message M { int64 a = 1; }")
    new = proto(tmp_path, "b", "message M { repeated int64 a = 1; }")
    found = incompatibilities(new, old, mode="BACKWARD")
    assert "int64 in one version and repeated int64" in found[0].message


def test_proto_removing_a_message_is_incompatible(tmp_path: Path) -> None:
    """A message of the old file missing from the new one is found."""
    old = proto(tmp_path, "a", "message M { int64 a = 1; }\nmessage N {}")
    new = proto(tmp_path, "b", "message M { int64 a = 1; }")
    assert fields(incompatibilities(new, old, mode="BACKWARD")) == ["p.N"]


def test_proto_reusing_a_removed_number_is_found_across_versions(tmp_path: Path) -> None:
    """v1 has 'a' at 2, v2 drops it, v3 reuses 2 for another type: found even though v2
    (the latest) has no field 2; marking it reserved does not fix reuse, dropping it does."""
    v1 = proto(tmp_path, "v1", "message M { string id = 1; int64 a = 2; }")
    v2 = proto(tmp_path, "v2", "message M { string id = 1; }")
    v3 = proto(tmp_path, "v3", "message M { string id = 1; string b = 2; }")
    found = check_versions(v3, [v1, v2], "BACKWARD")
    assert fields(found) == ["p.M.b"]
    assert "mark it reserved" in found[0].message
    reserved = proto(tmp_path, "v4", "message M { reserved 2; string id = 1; }")
    assert check_versions(reserved, [v1, v2], "BACKWARD") == []


def test_proto_making_a_field_required_is_incompatible(tmp_path: Path) -> None:
    """proto2: a field becoming required (or a required one added) is found."""
    path = tmp_path / "a.proto"
    path.write_text('syntax = "proto2";\nmessage M { optional int32 a = 1; }\n', encoding="utf-8")
    old = load_schema(path)
    path.write_text('syntax = "proto2";\nmessage M { required int32 a = 1; }\n', encoding="utf-8")
    new = load_schema(path)
    assert "required in one version" in incompatibilities(new, old, mode="BACKWARD")[0].message


# ------------------------------------------------------------------ across formats


def test_a_format_change_is_always_incompatible() -> None:
    """An Avro version followed by a JSON Schema one is refused under any mode but NONE."""
    found = check_versions(json_order(1), [schema(ORDER)], "FORWARD")
    assert "different formats (JSON and AVRO)" in found[0].message
    assert check_versions(json_order(1), [schema(ORDER)], "NONE") == []


@pytest.mark.parametrize("mode", ["BACKWARD", "FORWARD", "FULL"])
def test_identical_versions_are_compatible_in_every_format(mode: str) -> None:
    """A schema is compatible with itself, whatever its format."""
    for one in (json_order(1), proto_order(1), schema(ORDER)):
        assert check_versions(one, [one], mode) == []  # type: ignore[arg-type]
