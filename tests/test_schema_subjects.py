"""Schema files by format, subject strategies, the registries of every format, and the
schema part of plan and apply, without a broker."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest

from format_helpers import SCHEMAS, json_order, proto_order
from governed_kafka import Catalog
from governed_kafka.cli._common import split_registry_settings
from governed_kafka.cluster import apply_schemas, plan_schemas
from governed_kafka.errors import ContractError
from governed_kafka.registry import (
    ConfluentSchemaRegistry,
    LocalSchemaRegistry,
    ManagedSchemaRegistry,
    subject_name,
)
from governed_kafka.schemas import format_of, load_schema, subjects
from kafka_helpers import write_catalog

EXAMPLES = Path(__file__).parent.parent / "examples" / "schemas"


def catalog(tmp_path: Path, **fields: Any) -> Catalog:
    """One topic with ``fields``, its schemas copied beside the contracts file."""
    if not (tmp_path / "schemas").exists():
        shutil.copytree(SCHEMAS, tmp_path / "schemas")
        for avsc in EXAMPLES.glob("*.avsc"):
            shutil.copy(avsc, tmp_path / "schemas" / avsc.name)
    table = {
        "name": "payments.order.created.v1",
        "partitions": 1,
        "replication_factor": 1,
        "producers": ["checkout"],
        **fields,
    }
    body = "[[topics]]\n" + "\n".join(f"{k} = {json.dumps(v)}" for k, v in table.items())
    return Catalog.load(write_catalog(tmp_path, body + "\n"))


# ------------------------------------------------------------------ formats


def test_the_suffix_names_the_format() -> None:
    """.avsc, .json and .proto; anything else is no format."""
    assert [format_of(f"x{s}") for s in (".avsc", ".json", ".proto", ".yaml")] == [
        "AVRO",
        "JSON",
        "PROTOBUF",
        None,
    ]
    with pytest.raises(ContractError, match="unknown schema format"):
        load_schema("schemas/x.yaml", topic="t", key="value_schema")


def test_an_unknown_subject_strategy_is_refused_naming_file_topic_and_key(
    tmp_path: Path,
) -> None:
    """Loading is strict: subject_strategy = 'records' names the file, topic and key."""
    with pytest.raises(ContractError) as caught:
        catalog(tmp_path, subject_strategy="records")
    assert caught.value.topic == "payments.order.created.v1"
    assert caught.value.key == "subject_strategy"
    assert "'topic', 'record', 'topic_record'" in str(caught.value)
    assert str(tmp_path) in str(caught.value)


# ------------------------------------------------------------------ subjects


def test_the_topic_strategy_puts_every_version_under_one_subject(tmp_path: Path) -> None:
    """Default strategy: <topic>-value with the versions in order, <topic>-key for the key."""
    loaded = catalog(
        tmp_path,
        value_schema=["schemas/order.v1.proto", "schemas/order.v2.proto"],
        key_schema="schemas/untitled.json",
    )
    [value, key] = subjects(loaded.topics[0])
    assert (value.name, key.name) == (
        "payments.order.created.v1-value",
        "payments.order.created.v1-key",
    )
    assert value.versions == (proto_order(1), proto_order(2))
    assert value.current == proto_order(2)
    assert subject_name("t") == "t-value"
    assert subject_name("t", "key") == "t-key"


def test_record_strategies_give_each_event_type_its_own_subject(tmp_path: Path) -> None:
    """record names subjects after each schema's record; topic_record prefixes the topic."""
    files = [
        "schemas/order_created.v1.json",
        "schemas/order_cancelled.v1.json",
        "schemas/order_created.v2.json",
    ]
    for strategy, prefix in (("record", ""), ("topic_record", "payments.order.created.v1-")):
        loaded = catalog(tmp_path, value_schema=files, subject_strategy=strategy)
        found = {s.name: s for s in subjects(loaded.topics[0])}
        created = found[f"{prefix}payments.OrderCreated"]
        assert created.versions == (json_order(1), json_order(2))
        assert created.event_type == "payments.OrderCreated"
        assert len(found[f"{prefix}payments.OrderCancelled"].versions) == 1


def test_a_protobuf_subject_is_named_after_its_listed_message(tmp_path: Path) -> None:
    """For .proto files the record is the first message event_types lists, else the first."""
    loaded = catalog(
        tmp_path,
        value_schema=["schemas/order.v1.proto"],
        subject_strategy="record",
        event_types=["payments.OrderCancelled"],
    )
    assert [s.name for s in subjects(loaded.topics[0])] == ["payments.OrderCancelled"]
    plain = catalog(tmp_path, value_schema=["schemas/order.v1.proto"], subject_strategy="record")
    assert [s.name for s in subjects(plain.topics[0])] == ["payments.OrderCreated"]


def test_a_record_strategy_needs_a_record(tmp_path: Path) -> None:
    """A JSON Schema without title has nothing to name its subject after."""
    loaded = catalog(tmp_path, value_schema=["schemas/untitled.json"], subject_strategy="record")
    with pytest.raises(ContractError, match="without 'title'"):
        subjects(loaded.topics[0])


def test_lint_checks_event_types_in_each_formats_terms(tmp_path: Path) -> None:
    """JSON titles and Protobuf message names are event types; others are reported."""
    ok = catalog(
        tmp_path,
        value_schema=["schemas/order.v1.proto"],
        event_types=["payments.OrderCreated", "payments.OrderCancelled"],
    )
    assert [v for v in ok.lint() if v.rule.startswith("schema.")] == []
    bad = catalog(
        tmp_path,
        value_schema=["schemas/order_created.v1.json"],
        event_types=["payments.OrderShipped"],
    )
    assert [v.rule for v in bad.lint() if v.rule.startswith("schema.")] == ["schema.event-types"]
    unlisted = catalog(
        tmp_path,
        value_schema=["schemas/order_created.v1.json", "schemas/order_cancelled.v1.json"],
        subject_strategy="topic_record",
        event_types=["payments.OrderCreated"],
    )
    [problem] = [v for v in unlisted.lint() if v.rule.startswith("schema.")]
    assert "payments.OrderCancelled" in problem.message


def test_lint_checks_compatibility_per_subject(tmp_path: Path) -> None:
    """Under a record strategy, versions are compared within their own subject only."""
    loaded = catalog(
        tmp_path,
        value_schema=[
            "schemas/order_created.v2.json",
            "schemas/order_cancelled.v1.json",
            "schemas/order_created.v2-breaking.json",
        ],
        subject_strategy="record",
    )
    problems = [v for v in loaded.lint() if v.rule == "schema.compatibility"]
    assert problems
    assert all("subject 'payments.OrderCreated'" in v.message for v in problems)
    assert all("value_schema[2]" in v.message and "value_schema[0]" in v.message for v in problems)


def test_timestamp_field_is_for_avro_only(tmp_path: Path) -> None:
    """A timestamp_field on a JSON Schema topic is a lint error saying why."""
    loaded = catalog(
        tmp_path, value_schema=["schemas/order_created.v1.json"], timestamp_field="order_id"
    )
    [problem] = [v for v in loaded.lint() if v.rule == "schema.timestamp-field"]
    assert "Avro records only" in problem.message


# ------------------------------------------------------------------ registries


def test_the_local_registry_holds_every_format_under_its_subjects(tmp_path: Path) -> None:
    """from_catalog registers each subject's versions; ids are deterministic per schema."""
    loaded = catalog(
        tmp_path,
        value_schema=["schemas/order_created.v1.json", "schemas/order_cancelled.v1.json"],
        subject_strategy="record",
    )
    registry = LocalSchemaRegistry.from_catalog(loaded)
    assert registry.subjects == ["payments.OrderCancelled", "payments.OrderCreated"]
    schema_id = registry.lookup("payments.OrderCreated", json_order(1))
    assert schema_id is not None
    assert registry.schema(schema_id) == json_order(1)
    assert isinstance(registry, ManagedSchemaRegistry)
    assert registry.subject_versions("payments.OrderCreated") == [(1, schema_id)]
    assert registry.compatibility("payments.OrderCreated") is None
    registry.set_compatibility("payments.OrderCreated", "FULL")
    assert registry.compatibility("payments.OrderCreated") == "FULL"


def test_the_confluent_registry_round_trips_json_and_protobuf() -> None:
    """Registered JSON Schema and Protobuf (with its import) come back equal by id."""
    url = f"mock://{uuid.uuid4().hex}"
    registry = ConfluentSchemaRegistry({"url": url})
    json_id = registry.register("j-value", json_order(1))
    proto_id = registry.register("p-value", proto_order(2))
    fresh = ConfluentSchemaRegistry({"url": url})
    assert fresh.schema(json_id) == json_order(1)
    assert fresh.schema(proto_id) == proto_order(2)
    assert fresh.versions("p-value") == [proto_order(2)]
    assert fresh.lookup("p-value", proto_order(1)) is None
    assert fresh.compatibility("p-value") is None
    fresh.set_compatibility("p-value", "FULL")
    assert ConfluentSchemaRegistry({"url": url}).compatibility("p-value") == "FULL"


# ------------------------------------------------------------------ plan and apply


def test_plan_and_apply_against_a_registry(tmp_path: Path) -> None:
    """plan_schemas lists levels and versions; apply_schemas makes them so; then in sync."""
    loaded = catalog(
        tmp_path,
        value_schema=["schemas/order.v1.proto", "schemas/order.v2.proto"],
        compatibility="FULL",
    )
    registry = LocalSchemaRegistry()
    plan = plan_schemas(loaded, registry)
    assert [(c.kind, c.version) for c in plan.changes] == [
        ("compatibility", None),
        ("register", 0),
        ("register", 1),
    ]
    results = apply_schemas(plan, registry)
    assert [r.outcome for r in results] == ["applied"] * 3
    assert registry.compatibility("payments.order.created.v1-value") == "FULL"
    again = plan_schemas(loaded, registry)
    assert again.changes == ()
    assert again.in_sync == ("payments.order.created.v1-value",)


def test_two_topics_with_one_subject_and_two_modes_are_refused(tmp_path: Path) -> None:
    """A record subject two topics share must have one mode: apply refuses it."""
    shutil.copytree(SCHEMAS, tmp_path / "schemas")
    topics = ""
    for name, mode in (("a.b.c.v1", "BACKWARD"), ("a.b.d.v1", "FORWARD")):
        topics += (
            f'[[topics]]\nname = "{name}"\npartitions = 1\nreplication_factor = 1\n'
            f'value_schema = "schemas/order_created.v1.json"\nsubject_strategy = "record"\n'
            f'compatibility = "{mode}"\n'
        )
    loaded = Catalog.load(write_catalog(tmp_path, topics))
    plan = plan_schemas(loaded, LocalSchemaRegistry())
    [refused] = [c for c in plan.changes if not c.safe]
    assert "different compatibility modes" in str(refused.refused)
    outcomes = {r.outcome for r in apply_schemas(plan, LocalSchemaRegistry())}
    assert outcomes == {"refused", "skipped"}


def test_registry_settings_are_split_from_librdkafkas() -> None:
    """schema.registry.* and basic.auth.* go to the registry client, prefix dropped."""
    kafka, registry = split_registry_settings(
        {
            "security.protocol": "SASL_SSL",
            "schema.registry.url": "https://r:8081",
            "schema.registry.basic.auth.user.info": "u:p",
            "basic.auth.credentials.source": "USER_INFO",
        }
    )
    assert kafka == {"security.protocol": "SASL_SSL"}
    assert registry == {"url": "https://r:8081", "basic.auth.user.info": "u:p"}
