"""Fuzzing contract files: whatever the file holds, ContractError or a catalog, never a crash."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from governed_kafka import Catalog, ContractError
from governed_kafka.registry import LocalSchemaRegistry

ANY_CHAR = st.characters(exclude_categories=())
KEYS = st.one_of(
    st.sampled_from(
        [
            "name",
            "partitions",
            "replication_factor",
            "min_insync_replicas",
            "key",
            "value_schema",
            "key_schema",
            "producers",
            "consumers",
            "dead_letter_topic",
            "cleanup_policy",
            "retention_ms",
            "configs",
            "environments",
            "event_types",
            "timestamp_field",
            "compatibility",
            "owner",
        ]
    ),
    st.text(ANY_CHAR, max_size=8),
)
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(ANY_CHAR, max_size=30)
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=5)),
    max_leaves=12,
)
POLICY = st.dictionaries(
    st.one_of(
        st.sampled_from(
            ["topic_name_pattern", "group_id_pattern", "min_replication_factor", "require_owner"]
        ),
        st.text(max_size=5),
    ),
    st.one_of(VALUES, st.sampled_from(["^(a+)+$", "(?=x)", "[", "{service}.*", "a" * 2000])),
    max_size=3,
)
TOPIC = st.dictionaries(KEYS, VALUES, max_size=8)
DATA = st.fixed_dictionaries(
    {},
    optional={
        "policy": st.one_of(POLICY, VALUES),
        "topics": st.one_of(st.lists(TOPIC, max_size=3), VALUES),
        "environments": VALUES,
        "other": VALUES,
    },
)
SCHEMA_JSON = st.recursive(
    st.one_of(
        st.sampled_from(["null", "int", "long", "string", "float", "record", "Node"]),
        st.none(),
        st.integers(),
        st.text(ANY_CHAR, max_size=10),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.sampled_from(
                [
                    "type",
                    "name",
                    "fields",
                    "items",
                    "values",
                    "symbols",
                    "size",
                    "default",
                    "namespace",
                    "logicalType",
                ]
            ),
            inner,
            max_size=5,
        ),
    ),
    max_leaves=15,
)
FUZZ = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _survives(catalog: Catalog) -> None:
    """Linting and building the registry of a loaded catalog raise nothing but ContractError."""
    catalog.lint()
    with contextlib.suppress(ContractError):
        LocalSchemaRegistry.from_catalog(catalog)


@FUZZ
@given(data=DATA)
def test_fuzzed_contract_data_loads_or_is_a_contract_error(tmp_path: Path, data: Any) -> None:
    """Arbitrary TOML-shaped data: a catalog that lints, or a ContractError."""
    try:
        catalog = Catalog.from_dict(data, path=tmp_path / "governance.toml")
    except ContractError:
        return
    _survives(catalog)


@FUZZ
@given(text=st.text(ANY_CHAR, max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_fuzzed_contract_bytes_load_or_are_a_contract_error(tmp_path: Path, text: bytes) -> None:
    """Arbitrary bytes as governance.toml: ContractError, never another exception."""
    path = tmp_path / "governance.toml"
    path.write_bytes(b"[[topics]]\n" + text)
    with contextlib.suppress(ContractError):
        _survives(Catalog.load(path))


@FUZZ
@given(schema=SCHEMA_JSON)
def test_fuzzed_schema_files_are_lint_violations_not_crashes(tmp_path: Path, schema: Any) -> None:
    """Any JSON as a schema file: lint names it or passes it, and the registry agrees."""
    (tmp_path / "s.avsc").write_text(json.dumps(schema), encoding="utf-8")
    data = {
        "topics": [
            {
                "name": "a.b",
                "partitions": 1,
                "replication_factor": 1,
                "value_schema": "s.avsc",
                "producers": ["p"],
            }
        ]
    }
    catalog = Catalog.from_dict(data, path=tmp_path / "governance.toml")
    parse_failed = any(v.rule == "schema.parse" for v in catalog.lint())
    try:
        LocalSchemaRegistry.from_catalog(catalog)
    except ContractError:
        assert parse_failed  # lint and runtime agree
    else:
        assert not parse_failed
