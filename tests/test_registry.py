"""Schema registries: deterministic local ids, collisions, and the Confluent client (mock://)."""

from __future__ import annotations

import json
import socket
import uuid
from pathlib import Path

import pytest

from avro_helpers import ORDER, schema
from governed_kafka import Catalog
from governed_kafka.avro import schema_id_of
from governed_kafka.errors import ContractError, RegistryError
from governed_kafka.registry import (
    ConfluentSchemaRegistry,
    LocalSchemaRegistry,
    SchemaRegistry,
    subject_name,
)
from kafka_helpers import write_catalog

V1 = {"type": "record", "name": "R", "fields": [{"name": "a", "type": "string"}]}
V2 = {
    "type": "record",
    "name": "R",
    "fields": [{"name": "a", "type": "string"}, {"name": "b", "type": "int", "default": 0}],
}

# Two different schemas whose ids collide (found by search over record names).
COLLIDING = (
    {"type": "record", "name": "C13944", "fields": []},
    {"type": "record", "name": "C26000", "fields": []},
)


def _catalog(tmp_path: Path, schemas: dict[str, object], topics: str) -> Catalog:
    for name, body in schemas.items():
        (tmp_path / name).write_text(json.dumps(body), encoding="utf-8")
    return Catalog.load(write_catalog(tmp_path, topics))


def _topic(name: str, value_schema: str) -> str:
    return f"""
    [[topics]]
    name = "{name}"
    partitions = 1
    replication_factor = 1
    value_schema = {value_schema}
    """


def test_subjects_follow_the_topic_name_strategy() -> None:
    """Values and keys of topic T live under subjects T-value and T-key."""
    assert subject_name("a.b.c.v1") == "a.b.c.v1-value"
    assert subject_name("a.b.c.v1", "key") == "a.b.c.v1-key"


def test_both_registries_satisfy_the_protocol() -> None:
    """The local and the Confluent registry are both SchemaRegistry implementations."""
    assert isinstance(LocalSchemaRegistry(), SchemaRegistry)
    assert isinstance(ConfluentSchemaRegistry({"url": "mock://protocol"}), SchemaRegistry)


def test_local_registry_registers_every_listed_version(tmp_path: Path) -> None:
    """A catalog's versions land under the topic's subject, oldest first, with their ids."""
    catalog = _catalog(
        tmp_path, {"v1.avsc": V1, "v2.avsc": V2}, _topic("a.b.c.v1", '["v1.avsc", "v2.avsc"]')
    )
    registry = LocalSchemaRegistry.from_catalog(catalog)
    assert registry.versions("a.b.c.v1-value") == [schema(V1), schema(V2)]
    assert registry.lookup("a.b.c.v1-value", schema(V2)) == schema_id_of(schema(V2))
    assert registry.schema(schema_id_of(schema(V1))) == schema(V1)


def test_local_ids_agree_across_separately_built_registries(tmp_path: Path) -> None:
    """Two processes loading the same contracts get the same ids without talking."""
    catalog = _catalog(tmp_path, {"v1.avsc": V1}, _topic("a.b.c.v1", '"v1.avsc"'))
    first = LocalSchemaRegistry.from_catalog(catalog)
    second = LocalSchemaRegistry.from_catalog(Catalog.load(catalog.path))
    subject = "a.b.c.v1-value"
    assert first.lookup(subject, schema(V1)) == second.lookup(subject, schema(V1)) is not None


def test_local_registry_refuses_colliding_ids_at_load(tmp_path: Path) -> None:
    """Two different schemas with one id are a ContractError naming both files."""
    assert schema_id_of(schema(COLLIDING[0])) == schema_id_of(schema(COLLIDING[1]))
    catalog = _catalog(
        tmp_path,
        {"a.avsc": COLLIDING[0], "b.avsc": COLLIDING[1]},
        _topic("a.b.c.v1", '"a.avsc"') + _topic("x.y.z.v1", '"b.avsc"'),
    )
    with pytest.raises(ContractError) as caught:
        LocalSchemaRegistry.from_catalog(catalog)
    assert "a.avsc" in str(caught.value)
    assert "b.avsc" in str(caught.value)
    assert caught.value.topic == "x.y.z.v1"


def test_local_register_refuses_a_colliding_schema() -> None:
    """Registering a schema whose id is taken by another raises RegistryError."""
    registry = LocalSchemaRegistry()
    registry.register("s-value", schema(COLLIDING[0]))
    with pytest.raises(RegistryError, match="taken by a different schema"):
        registry.register("s-value", schema(COLLIDING[1]))


def test_same_schema_on_two_topics_shares_its_id(tmp_path: Path) -> None:
    """One schema used by two topics is one id, not a collision."""
    catalog = _catalog(
        tmp_path, {"v1.avsc": V1}, _topic("a.b.c.v1", '"v1.avsc"') + _topic("d.e.f.v1", '"v1.avsc"')
    )
    registry = LocalSchemaRegistry.from_catalog(catalog)
    assert registry.lookup("a.b.c.v1-value", schema(V1)) == registry.lookup(
        "d.e.f.v1-value", schema(V1)
    )


def test_local_lookup_of_an_unregistered_schema_is_none() -> None:
    """A schema the subject does not have looks up as None."""
    registry = LocalSchemaRegistry()
    registry.register("s-value", schema(V1))
    assert registry.lookup("s-value", schema(V2)) is None
    assert registry.lookup("other-value", schema(V1)) is None


def test_local_unknown_id_raises_lookup_error() -> None:
    """Asking for an id nobody registered raises LookupError."""
    with pytest.raises(LookupError, match="no schema with id 5"):
        LocalSchemaRegistry().schema(5)


def test_catalog_with_an_unparsable_schema_is_refused(tmp_path: Path) -> None:
    """Building the local registry names the schema file that does not parse."""
    (tmp_path / "bad.avsc").write_text("{", encoding="utf-8")
    catalog = Catalog.load(write_catalog(tmp_path, _topic("a.b.c.v1", '"bad.avsc"')))
    with pytest.raises(ContractError) as caught:
        LocalSchemaRegistry.from_catalog(catalog)
    assert caught.value.path.endswith("bad.avsc")
    assert (caught.value.topic, caught.value.key) == ("a.b.c.v1", "value_schema")


# ------------------------------------------------------------------ Confluent (mock://)


@pytest.fixture
def confluent() -> ConfluentSchemaRegistry:
    return ConfluentSchemaRegistry({"url": f"mock://{uuid.uuid4().hex}"})


def test_confluent_register_then_lookup_gives_the_same_id(
    confluent: ConfluentSchemaRegistry,
) -> None:
    """A registered schema looks up to the id registration returned."""
    schema_id = confluent.register("s-value", schema(ORDER))
    assert confluent.lookup("s-value", schema(ORDER)) == schema_id
    assert confluent.schema(schema_id) == schema(ORDER)


def test_confluent_lookup_of_an_unregistered_schema_is_none(
    confluent: ConfluentSchemaRegistry,
) -> None:
    """A 404 from the registry is 'not registered', not an error."""
    assert confluent.lookup("s-value", schema(V1)) is None


def test_confluent_versions_are_oldest_first(confluent: ConfluentSchemaRegistry) -> None:
    """versions() lists every schema of the subject in registration order."""
    confluent.register("s-value", schema(V1))
    confluent.register("s-value", schema(V2))
    assert confluent.versions("s-value") == [schema(V1), schema(V2)]
    assert confluent.versions("unknown-value") == []


def test_confluent_unknown_id_raises_lookup_error(confluent: ConfluentSchemaRegistry) -> None:
    """An id the registry does not have is a LookupError."""
    with pytest.raises(LookupError, match="no schema with id 999"):
        confluent.schema(999)


def test_unreachable_registry_raises_registry_error() -> None:
    """A registry nobody listens on is a RegistryError naming the operation and subject."""
    with socket.socket() as sock:  # a loopback port that is free, so nothing answers there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    registry = ConfluentSchemaRegistry(
        {"url": f"http://127.0.0.1:{port}", "max.retries": 0, "timeout": 2}
    )
    with pytest.raises(RegistryError) as caught:
        registry.lookup("s-value", schema(V1))
    assert caught.value.operation == "lookup"
    assert caught.value.subject == "s-value"
    assert "s-value" in str(caught.value)


def test_registry_credentials_in_the_url_are_never_shown() -> None:
    """user:password@ of the registry URL is redacted in repr, url and every RegistryError."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    registry = ConfluentSchemaRegistry(
        {"url": f"http://svc:hunter2@127.0.0.1:{port}", "max.retries": 0, "timeout": 2}
    )
    assert "hunter2" not in repr(registry)
    assert "hunter2" not in registry.url
    assert f"127.0.0.1:{port}" in repr(registry)
    with pytest.raises(RegistryError) as caught:
        registry.lookup("s-value", schema(V1))
    assert "hunter2" not in str(caught.value)
    assert f"127.0.0.1:{port}" in str(caught.value)


def test_registry_basic_auth_secret_is_never_shown_in_errors() -> None:
    """basic.auth.user.info never reaches an error message, whatever the client says."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    registry = ConfluentSchemaRegistry(
        {
            "url": f"http://127.0.0.1:{port}",
            "basic.auth.user.info": "svc:hunter2",
            "max.retries": 0,
            "timeout": 2,
        }
    )
    with pytest.raises(RegistryError) as caught:
        registry.versions("s-value")
    assert "hunter2" not in str(caught.value)
