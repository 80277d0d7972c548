"""`plan` and `apply` with `--schema-registry`: subjects of every format held against a
registry (confluent-kafka's in-process `mock://` one) beside a real broker."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from conftest import Broker
from governed_kafka import Catalog
from governed_kafka.avro import parse_schema as parse_avro
from governed_kafka.cli import main
from governed_kafka.registry import ConfluentSchemaRegistry
from kafka_helpers import unique_topic, wait_visible_everywhere, write_catalog

SCHEMAS = Path(__file__).parent.parent / "schemas"
EXAMPLE_SCHEMAS = Path(__file__).parent.parent.parent / "examples" / "schemas"

pytestmark = pytest.mark.slow


def run(*args: str) -> Result:
    """Run the CLI in-process, wide enough that tables do not wrap."""
    return CliRunner(env={"COLUMNS": "250"}).invoke(main, list(args))


def topic(name: str, **fields: object) -> str:
    table: dict[str, object] = {
        "name": name,
        "owner": "team-payments",
        "partitions": 1,
        "replication_factor": 1,
        "retention_ms": 3_600_000,
        "producers": ["checkout"],
        "consumers": ["billing"],
        **fields,
    }
    return "[[topics]]\n" + "\n".join(f"{k} = {json.dumps(v)}" for k, v in table.items()) + "\n"


@pytest.fixture
def contracts(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A contracts file with an Avro, a JSON Schema, a Protobuf and a record-strategy topic."""
    shutil.copytree(SCHEMAS, tmp_path / "schemas")
    for avsc in EXAMPLE_SCHEMAS.glob("order_created.v*.avsc"):
        shutil.copy(avsc, tmp_path / "schemas" / avsc.name)
    names = {kind: unique_topic(kind) for kind in ("avro", "json", "proto", "record")}
    body = "[policy]\nmin_replication_factor = 1\nmin_insync_replicas = 1\n\n"
    body += topic(
        names["avro"],
        value_schema=["schemas/order_created.v1.avsc", "schemas/order_created.v2.avsc"],
        compatibility="BACKWARD_TRANSITIVE",
    )
    body += topic(
        names["json"],
        value_schema=["schemas/order_created.v1.json", "schemas/order_created.v2.json"],
        compatibility="BACKWARD",
    )
    body += topic(names["proto"], value_schema=["schemas/order.v1.proto", "schemas/order.v2.proto"])
    body += topic(
        names["record"],
        subject_strategy="topic_record",
        value_schema=["schemas/order_created.v1.json", "schemas/order_cancelled.v1.json"],
        event_types=["payments.OrderCreated", "payments.OrderCancelled"],
    )
    return write_catalog(tmp_path, body), names


def registry_url() -> str:
    return f"mock://{uuid.uuid4().hex}"


def invoke(command: str, path: Path, broker: Broker, url: str, *extra: str) -> tuple[int, Any]:
    result = run(
        command,
        str(path),
        "-b",
        broker.bootstrap_servers,
        "--schema-registry",
        url,
        "--json",
        *extra,
    )
    assert result.stdout, result.stderr
    return result.exit_code, json.loads(result.stdout)


def test_plan_lists_every_version_and_level_then_apply_registers_them(
    kafka_broker: Broker, contracts: tuple[Path, dict[str, str]]
) -> None:
    """plan shows each subject's versions and level (exit 2); apply registers them oldest
    first and sets the levels (exit 0); plan is then in sync (exit 0)."""
    path, names = contracts
    url = registry_url()
    code, plan = invoke("plan", path, kafka_broker, url)
    assert code == 2
    schemas = plan["schemas"]
    register = [(c["subject"], c["version"]) for c in schemas["changes"] if c["kind"] == "register"]
    assert register == [
        (f"{names['avro']}-value", 0),
        (f"{names['avro']}-value", 1),
        (f"{names['json']}-value", 0),
        (f"{names['json']}-value", 1),
        (f"{names['proto']}-value", 0),
        (f"{names['proto']}-value", 1),
        (f"{names['record']}-payments.OrderCreated", 0),
        (f"{names['record']}-payments.OrderCancelled", 0),
    ]
    levels = {c["subject"]: c["wanted"] for c in schemas["changes"] if c["kind"] == "compatibility"}
    assert levels[f"{names['avro']}-value"] == "BACKWARD_TRANSITIVE"
    assert levels[f"{names['json']}-value"] == "BACKWARD"
    assert levels[f"{names['proto']}-value"] == "BACKWARD"
    assert schemas["unlisted"] == []

    code, applied = invoke("apply", path, kafka_broker, url)
    assert code == 0, applied
    assert {r["outcome"] for r in applied["schema_results"]} == {"applied"}

    registry = ConfluentSchemaRegistry({"url": url})
    assert [v for v, _ in registry.subject_versions(f"{names['json']}-value")] == [1, 2]
    assert registry.compatibility(f"{names['json']}-value") == "BACKWARD"
    proto_versions = registry.versions(f"{names['proto']}-value")
    assert [v.schema_type for v in proto_versions] == ["PROTOBUF", "PROTOBUF"]
    # The imported file is a reference, registered under its own name.
    assert registry.subject_versions("schemas/common/money.proto")

    # apply waited until the broker it asked listed the new topics; the next plan may ask
    # another broker of the cluster, which can learn of them later on a loaded machine.
    wait_visible_everywhere(kafka_broker.bootstrap_servers, [t.name for t in Catalog.load(path)])
    code, again = invoke("plan", path, kafka_broker, url)
    assert code == 0, again
    assert again["schemas"]["changes"] == []
    assert len(again["schemas"]["in_sync"]) == 5


def test_a_registered_version_no_contract_lists_is_reported_and_kept(
    kafka_broker: Broker, contracts: tuple[Path, dict[str, str]]
) -> None:
    """A version registered by hand shows as unlisted in plan (exit 0) and apply keeps it."""
    path, names = contracts
    url = registry_url()
    code, _ = invoke("apply", path, kafka_broker, url)
    assert code == 0
    subject = f"{names['avro']}-value"
    registry = ConfluentSchemaRegistry({"url": url})
    stray = parse_avro('{"type": "record", "name": "Stray", "namespace": "payments", "fields": []}')
    registry.set_compatibility(subject, "NONE")
    stray_id = registry.register(subject, stray)
    registry.set_compatibility(subject, "BACKWARD_TRANSITIVE")

    code, plan = invoke("plan", path, kafka_broker, url)
    assert code == 0, plan
    assert plan["schemas"]["unlisted"] == [
        {"subject": subject, "version": 3, "schema_id": stray_id}
    ]
    result = run("plan", str(path), "-b", kafka_broker.bootstrap_servers, "--schema-registry", url)
    assert "unlisted" in result.stdout
    assert f"{subject} version 3" in result.stdout

    code, _ = invoke("apply", path, kafka_broker, url)
    assert code == 0
    assert [v for v, _ in registry.subject_versions(subject)] == [1, 2, 3]


def test_a_drifted_level_is_planned_and_set_back(
    kafka_broker: Broker, contracts: tuple[Path, dict[str, str]]
) -> None:
    """A subject whose level someone changed is pending (exit 2) until apply sets it back."""
    path, names = contracts
    url = registry_url()
    assert invoke("apply", path, kafka_broker, url)[0] == 0
    registry = ConfluentSchemaRegistry({"url": url})
    subject = f"{names['proto']}-value"
    registry.set_compatibility(subject, "NONE")
    code, plan = invoke("plan", path, kafka_broker, url)
    assert code == 2
    [change] = plan["schemas"]["changes"]
    assert (change["subject"], change["live"], change["wanted"]) == (subject, "NONE", "BACKWARD")
    assert invoke("apply", path, kafka_broker, url)[0] == 0
    assert registry.compatibility(subject) == "BACKWARD"


def test_registry_credentials_come_from_the_config_file_and_are_never_printed(
    kafka_broker: Broker, contracts: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    """schema.registry.url and basic.auth.user.info from -F reach the registry client; the
    secret is in no output."""
    path, names = contracts
    url = registry_url()
    properties = tmp_path / "client.properties"
    properties.write_text(
        f"schema.registry.url={url}\n"
        "schema.registry.basic.auth.user.info=svc:s3cret-value\n"
        "basic.auth.credentials.source=USER_INFO\n",
        encoding="utf-8",
    )
    result = run("apply", str(path), "-b", kafka_broker.bootstrap_servers, "-F", str(properties))
    assert result.exit_code == 0, result.output
    assert "s3cret-value" not in result.output
    assert "registered" in result.stdout
    registry = ConfluentSchemaRegistry({"url": url})
    assert len(registry.subject_versions(f"{names['json']}-value")) == 2


def test_registry_settings_without_a_url_are_refused(
    kafka_broker: Broker, contracts: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    """Registry credentials with no registry to send them to stop the command (exit 2)."""
    path, _ = contracts
    properties = tmp_path / "client.properties"
    properties.write_text("schema.registry.basic.auth.user.info=svc:s3cret\n", encoding="utf-8")
    result = run("plan", str(path), "-b", kafka_broker.bootstrap_servers, "-F", str(properties))
    assert result.exit_code == 2
    assert "no registry URL" in result.output
    assert "s3cret" not in result.output


def test_apply_refuses_nothing_while_the_contracts_fail_lint(
    kafka_broker: Broker, tmp_path: Path
) -> None:
    """A breaking JSON Schema version fails lint: apply registers nothing (exit 1)."""
    shutil.copytree(SCHEMAS, tmp_path / "schemas")
    name = unique_topic("breaking")
    body = "[policy]\nmin_replication_factor = 1\nmin_insync_replicas = 1\n\n" + topic(
        name,
        value_schema=["schemas/order_created.v2.json", "schemas/order_created.v2-breaking.json"],
    )
    path = write_catalog(tmp_path, body)
    url = registry_url()
    code, applied = invoke("apply", path, kafka_broker, url)
    assert code == 1
    assert {r["outcome"] for r in applied["schema_results"]} == {"skipped"}
    assert ConfluentSchemaRegistry({"url": url}).subject_versions(f"{name}-value") == []
