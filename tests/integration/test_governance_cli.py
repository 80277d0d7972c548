"""`governed-kafka plan` and `apply` against a real, initially empty, broker."""

from __future__ import annotations

import json
import socket
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from confluent_kafka import Producer

from governed_kafka import Catalog
from governed_kafka.cli import main
from governed_kafka.testing import LocalBroker
from kafka_helpers import (
    create_topic,
    describe_topic,
    read_all,
    set_topic_configs,
    topic_names,
    values,
    write_catalog,
)

EXAMPLE = Path(__file__).parent.parent.parent / "examples" / "governance.toml"
ORDERS = "payments.order.created.v1"


@pytest.fixture
def broker() -> Iterator[LocalBroker]:
    """A private broker with no topics, so 'missing' and 'unmanaged' mean what they say."""
    with LocalBroker() as private:
        yield private


def run(*args: str) -> Result:
    """Run the CLI in-process, wide enough that tables do not wrap."""
    return CliRunner(env={"COLUMNS": "250"}).invoke(main, list(args))


def run_json(command: str, broker: LocalBroker, path: Path, env: str | None) -> tuple[int, Any]:
    """Run ``command`` with --json; return its exit code and its parsed output."""
    args = [command, str(path), "-b", broker.bootstrap_servers, "--json"]
    if env is not None:
        args += ["--env", env]
    result = run(*args)
    assert result.stdout, result.stderr
    return result.exit_code, json.loads(result.stdout)


def plan_json(
    broker: LocalBroker, path: Path = EXAMPLE, env: str | None = "local"
) -> tuple[int, Any]:
    return run_json("plan", broker, path, env)


def apply_json(
    broker: LocalBroker, path: Path = EXAMPLE, env: str | None = "local"
) -> tuple[int, Any]:
    return run_json("apply", broker, path, env)


def one_topic(tmp_path: Path, **fields: object) -> Path:
    """A contracts file with one valid topic under a laptop policy; ``fields`` override."""
    topic: dict[str, object] = {
        "name": ORDERS,
        "owner": "team-payments",
        "partitions": 2,
        "replication_factor": 1,
        "min_insync_replicas": 1,
        "cleanup_policy": "delete",
        "retention_ms": 3_600_000,
        "key": "required",
        "producers": ["checkout"],
        "consumers": ["billing"],
    }
    topic.update(fields)
    lines = [f"{k} = {json.dumps(v)}" for k, v in topic.items()]
    body = "[policy]\nmin_replication_factor = 1\nmin_insync_replicas = 1\n\n[[topics]]\n"
    return write_catalog(tmp_path, body + "\n".join(lines) + "\n")


def test_plan_on_an_empty_cluster_lists_every_topic_as_missing(broker: LocalBroker) -> None:
    """Every contract is a pending 'create' (exit 2), and planning creates nothing."""
    code, plan = plan_json(broker)
    expected = {t.name for t in Catalog.load(EXAMPLE, environment="local")}
    assert code == 2
    assert plan["status"] == "pending"
    assert {c["topic"] for c in plan["changes"]} == expected
    assert {c["kind"] for c in plan["changes"]} == {"create"}
    assert not expected & topic_names(broker.bootstrap_servers)


def test_apply_creates_missing_topics_with_their_governed_configs(broker: LocalBroker) -> None:
    """After apply, DescribeConfigs shows each topic with its contract's partitions, RF, configs."""
    code, result = apply_json(broker)
    assert code == 0
    assert result["ok"] is True
    for contract in Catalog.load(EXAMPLE, environment="local"):
        partitions, rf, configs = describe_topic(broker.bootstrap_servers, contract.name)
        assert (partitions, rf) == (contract.partitions, contract.replication_factor)
        for key, value in contract.topic_configs().items():
            assert configs.get(key) == value, (contract.name, key)


def test_plan_after_apply_is_in_sync(broker: LocalBroker) -> None:
    """A second plan after apply finds nothing to do and exits 0."""
    assert apply_json(broker)[0] == 0
    code, plan = plan_json(broker)
    assert code == 0
    assert plan["status"] == "in-sync"
    assert plan["changes"] == []
    assert len(plan["in_sync"]) == len(Catalog.load(EXAMPLE, environment="local"))


def test_config_changed_behind_our_back_shows_as_drift(broker: LocalBroker) -> None:
    """A retention altered with the raw admin client shows as a config change, live vs contract."""
    apply_json(broker)
    set_topic_configs(broker.bootstrap_servers, ORDERS, {"retention.ms": "1000"})
    code, plan = plan_json(broker)
    assert code == 2
    assert plan["changes"] == [
        {
            "topic": ORDERS,
            "kind": "config",
            "field": "retention.ms",
            "live": "1000",
            "wanted": "604800000",
            "refused": None,
            "configs": {},
            "keys_seen": None,
            "keys_moving": None,
            "safe": True,
            "impact": None,
        }
    ]


def test_apply_fixes_safe_drift_with_incremental_alter_configs(broker: LocalBroker) -> None:
    """apply sets the drifted retention back to the contract's value and leaves the rest."""
    apply_json(broker)
    set_topic_configs(broker.bootstrap_servers, ORDERS, {"retention.ms": "1000"})
    code, result = apply_json(broker)
    assert code == 0
    assert [r["outcome"] for r in result["results"]] == ["applied"]
    _, _, configs = describe_topic(broker.bootstrap_servers, ORDERS)
    assert configs["retention.ms"] == "604800000"
    assert configs["cleanup.policy"] == "delete"
    assert configs["min.insync.replicas"] == "1"


def test_cleanup_policy_change_on_a_live_topic_is_refused(broker: LocalBroker) -> None:
    """A live compact topic whose contract says delete is refused by plan (1) and apply (1)."""
    apply_json(broker)
    set_topic_configs(broker.bootstrap_servers, ORDERS, {"cleanup.policy": "compact"})
    code, plan = plan_json(broker)
    assert code == 1
    [change] = plan["changes"]
    assert (change["field"], change["live"], change["wanted"]) == (
        "cleanup.policy",
        "compact",
        "delete",
    )
    assert "create a new topic version" in change["refused"]
    code, result = apply_json(broker)
    assert code == 1
    assert [r["outcome"] for r in result["results"]] == ["refused"]
    assert describe_topic(broker.bootstrap_servers, ORDERS)[2]["cleanup.policy"] == "compact"


def test_unmanaged_topic_is_reported_and_left_alone(broker: LocalBroker) -> None:
    """A topic no contract owns is listed by plan and apply; its configs and records survive."""
    other = "ops.audit.logged.v1"
    create_topic(broker.bootstrap_servers, other, partitions=3, retention_ms="1234")
    raw = Producer({"bootstrap.servers": broker.bootstrap_servers})
    raw.produce(other, b"kept")
    assert raw.flush(10) == 0
    code, plan = plan_json(broker)
    assert plan["unmanaged"] == [other]
    assert other not in {c["topic"] for c in plan["changes"]}
    code, result = apply_json(broker)
    assert code == 0
    assert result["unmanaged"] == [other]
    partitions, _, configs = describe_topic(broker.bootstrap_servers, other)
    assert partitions == 3
    assert configs["retention.ms"] == "1234"
    assert values(read_all(broker.bootstrap_servers, other)) == [b"kept"]


def test_partition_decrease_is_refused(broker: LocalBroker, tmp_path: Path) -> None:
    """A live topic with more partitions than its contract is refused, and keeps them."""
    create_topic(
        broker.bootstrap_servers,
        ORDERS,
        partitions=4,
        cleanup_policy="delete",
        retention_ms="3600000",
    )
    path = one_topic(tmp_path, partitions=2)
    code, plan = plan_json(broker, path, env=None)
    assert code == 1
    [change] = plan["changes"]
    assert (change["kind"], change["live"], change["wanted"]) == ("partitions", "4", "2")
    assert "cannot remove partitions" in change["refused"]
    assert apply_json(broker, path, env=None)[0] == 1
    assert describe_topic(broker.bootstrap_servers, ORDERS)[0] == 4


def test_replication_factor_change_is_refused(broker: LocalBroker, tmp_path: Path) -> None:
    """A live replication factor that differs from the contract is refused with the reason."""
    create_topic(
        broker.bootstrap_servers,
        ORDERS,
        partitions=2,
        rf=3,
        cleanup_policy="delete",
        retention_ms="3600000",
        min_insync_replicas="1",
    )
    path = one_topic(tmp_path, replication_factor=1)
    code, plan = plan_json(broker, path, env=None)
    assert code == 1
    [change] = plan["changes"]
    assert (change["kind"], change["live"], change["wanted"]) == ("replication-factor", "3", "1")
    assert "partition reassignment" in change["refused"]


def test_partition_increase_names_the_missing_broker_request(
    broker: LocalBroker, tmp_path: Path
) -> None:
    """Growing partitions on a broker without CreatePartitions fails saying exactly that."""
    create_topic(
        broker.bootstrap_servers,
        ORDERS,
        partitions=1,
        cleanup_policy="delete",
        retention_ms="3600000",
        min_insync_replicas="1",
    )
    path = one_topic(tmp_path, partitions=3)
    code, plan = plan_json(broker, path, env=None)
    assert code == 2
    assert [c["kind"] for c in plan["changes"]] == ["partitions"]
    code, result = apply_json(broker, path, env=None)
    assert code == 1
    [item] = result["results"]
    assert item["outcome"] == "failed"
    assert "the broker does not support CreatePartitions" in item["message"]
    assert describe_topic(broker.bootstrap_servers, ORDERS)[0] == 1


def test_apply_changes_nothing_while_the_contracts_fail_lint(
    broker: LocalBroker, tmp_path: Path
) -> None:
    """With a lint error in the file, apply skips every change: no topic is created."""
    path = one_topic(tmp_path, cleanup_policy="compact", key="optional")
    code, result = apply_json(broker, path, env=None)
    assert code == 1
    assert [v["rule"] for v in result["violations"]] == ["topic.compacted-key"]
    assert [r["outcome"] for r in result["results"]] == ["skipped"]
    assert ORDERS not in topic_names(broker.bootstrap_servers)


def test_human_plan_shows_tables_and_unmanaged_topics(broker: LocalBroker) -> None:
    """Without --json, plan prints the missing topics with their configs and the unmanaged ones."""
    create_topic(broker.bootstrap_servers, "ops.audit.logged.v1")
    result = run("plan", str(EXAMPLE), "--env", "local", "-b", broker.bootstrap_servers)
    assert result.exit_code == 2
    assert "missing topics" in result.stdout
    assert ORDERS in result.stdout
    assert "retention.ms=604800000" in result.stdout
    assert "unmanaged" in result.stdout
    assert "ops.audit.logged.v1" in result.stdout
    assert "3 to create" in result.stdout


def test_unreachable_cluster_is_a_clear_error_not_a_traceback() -> None:
    """plan against a closed port exits 1 with one sentence naming the servers, within --timeout."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    servers = f"127.0.0.1:{port}"
    result = run("plan", str(EXAMPLE), "-b", servers, "--timeout", "2")
    assert result.exit_code == 1
    assert f"cannot reach the cluster at {servers} within 2 s" in result.stderr
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_bad_client_setting_is_a_clear_error(broker: LocalBroker) -> None:
    """An -X setting an admin client cannot take exits 1 naming the key."""
    result = run(
        "plan", str(EXAMPLE), "-b", broker.bootstrap_servers, "-X", "enable.idempotence=true"
    )
    assert result.exit_code == 1
    assert "'enable.idempotence'" in result.stderr
    assert "admin client" in result.stderr


@pytest.mark.parametrize("command", ["plan", "apply"])
def test_malformed_file_is_a_clear_error(broker: LocalBroker, tmp_path: Path, command: str) -> None:
    """plan and apply on a malformed file exit 1 naming the file and the key; nothing changes."""
    path = write_catalog(
        tmp_path,
        textwrap.dedent(
            """
            [[topics]]
            name = "a.b.c.v1"
            partitions = "two"
            replication_factor = 1
            """
        ),
    )
    result = run(command, str(path), "-b", broker.bootstrap_servers)
    assert result.exit_code == 1
    assert str(path) in result.stderr
    assert "'partitions'" in result.stderr
    assert "a.b.c.v1" not in topic_names(broker.bootstrap_servers)


def test_plan_and_apply_take_the_cluster_from_a_config_file(
    broker: LocalBroker, tmp_path: Path
) -> None:
    """bootstrap.servers and client settings come from --config-file, no -b or -X needed."""
    properties = tmp_path / "client.properties"
    properties.write_text(
        f"# the cluster\nbootstrap.servers={broker.bootstrap_servers}\nclient.id=ops-cli\n",
        encoding="utf-8",
    )
    applied = run("apply", str(EXAMPLE), "--env", "local", "--config-file", str(properties))
    assert applied.exit_code == 0, applied.output
    assert ORDERS in topic_names(broker.bootstrap_servers)
    planned = run("plan", str(EXAMPLE), "--env", "local", "--json", "-F", str(properties))
    assert planned.exit_code == 0, planned.output
    assert json.loads(planned.stdout)["status"] == "in-sync"


def test_plan_takes_settings_from_the_environment(broker: LocalBroker) -> None:
    """GOVERNED_KAFKA_X_<KEY> variables reach the client; a wrong one is refused by key."""
    env = {"GOVERNED_KAFKA_X_BOOTSTRAP_SERVERS": broker.bootstrap_servers}
    result = CliRunner(env=env).invoke(main, ["plan", str(EXAMPLE), "--env", "local"])
    assert result.exit_code == 2, result.output  # changes pending on an empty cluster
    wrong = CliRunner(env={**env, "GOVERNED_KAFKA_X_ENABLE_IDEMPOTENCE": "true"}).invoke(
        main, ["plan", str(EXAMPLE), "--env", "local"]
    )
    assert wrong.exit_code == 1
    assert "'enable.idempotence'" in wrong.stderr
