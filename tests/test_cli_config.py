"""Connection settings for the commands that connect: -X, --config-file and the environment."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from governed_kafka.cli import main
from governed_kafka.cli._common import client_settings

SECRET = "hunter2-do-not-print"


def _properties(tmp_path: Path, text: str, name: str = "client.properties") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_properties_file_gives_key_value_settings(tmp_path: Path) -> None:
    """key=value lines, spaces around '=', '#' and '!' comments, '=' inside values."""
    path = _properties(
        tmp_path,
        "# client.properties\n"
        "! a Java-style comment\n"
        "\n"
        "bootstrap.servers=127.0.0.1:9092\n"
        "security.protocol = SASL_SSL\n"
        f"sasl.password={SECRET}\n"
        "sasl.oauthbearer.config=principal=svc scope=read\n",
    )
    overrides, bootstrap = client_settings(config_file=str(path), pairs=(), environ={})
    assert bootstrap == "127.0.0.1:9092"
    assert overrides == {
        "security.protocol": "SASL_SSL",
        "sasl.password": SECRET,
        "sasl.oauthbearer.config": "principal=svc scope=read",
    }


def test_environment_variables_name_librdkafka_keys(tmp_path: Path) -> None:
    """GOVERNED_KAFKA_X_SASL_PASSWORD sets sasl.password; other variables are ignored."""
    environ = {
        "GOVERNED_KAFKA_X_SASL_PASSWORD": SECRET,
        "GOVERNED_KAFKA_X_BOOTSTRAP_SERVERS": "127.0.0.1:1",
        "GOVERNED_KAFKA_X_LOG_LEVEL": "0",
        "HOME": "/root",
    }
    overrides, bootstrap = client_settings(config_file=None, pairs=(), environ=environ)
    assert overrides == {"sasl.password": SECRET, "log_level": "0"}
    assert bootstrap == "127.0.0.1:1"


def test_command_line_beats_environment_beats_file(tmp_path: Path) -> None:
    """-X wins over the environment, which wins over the file."""
    path = _properties(tmp_path, "client.id=file\nsocket.timeout.ms=1\nlinger.ms=9\n")
    environ = {"GOVERNED_KAFKA_X_SOCKET_TIMEOUT_MS": "2", "GOVERNED_KAFKA_X_CLIENT_ID": "env"}
    overrides, _ = client_settings(config_file=str(path), pairs=("client.id=cli",), environ=environ)
    assert overrides == {"client.id": "cli", "socket.timeout.ms": "2", "linger.ms": "9"}


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        (f"security.protocol=SSL\n{SECRET}\n", 2, "expected key=value"),
        (f"security.protocol=SSL\n=value {SECRET}\n", 2, "expected key=value"),
        (f"sasl.jaas.config={SECRET}\n", 1, "'sasl.jaas.config' is not a librdkafka property"),
    ],
    ids=["no-equals", "no-key", "java-only-key"],
)
def test_a_malformed_config_file_names_file_and_line_never_the_value(
    tmp_path: Path, text: str, line: int, fragment: str
) -> None:
    """A line that does not parse is one error naming the file and the line; nothing echoed."""
    path = _properties(tmp_path, text)
    with pytest.raises(click.ClickException) as refused:
        client_settings(config_file=str(path), pairs=(), environ={})
    message = refused.value.format_message()
    assert f"{path}, line {line}" in message
    assert fragment in message
    assert SECRET not in message
    assert "\n" not in message.strip()


def test_an_unreadable_or_non_utf8_config_file_is_one_clear_error(tmp_path: Path) -> None:
    """A missing file, a folder, or bytes that are not UTF-8: the file is named, nothing shown."""
    with pytest.raises(click.ClickException, match="cannot read"):
        client_settings(config_file=str(tmp_path / "nope"), pairs=(), environ={})
    with pytest.raises(click.ClickException, match="cannot read"):
        client_settings(config_file=str(tmp_path), pairs=(), environ={})
    latin = tmp_path / "latin.properties"
    latin.write_bytes(b"a=1\nsasl.password=caf\xe9" + SECRET.encode() + b"\n")
    with pytest.raises(click.ClickException) as refused:
        client_settings(config_file=str(latin), pairs=(), environ={})
    assert f"{latin}, line 2: not UTF-8" in refused.value.format_message()
    assert SECRET not in refused.value.format_message()


def test_an_unknown_environment_key_names_the_variable() -> None:
    """GOVERNED_KAFKA_X_ with no librdkafka key behind it is refused by variable name."""
    with pytest.raises(click.ClickException, match="GOVERNED_KAFKA_X_SASL_JAAS_CONFIG"):
        client_settings(
            config_file=None, pairs=(), environ={"GOVERNED_KAFKA_X_SASL_JAAS_CONFIG": SECRET}
        )


def _run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner(env={"COLUMNS": "250", **(env or {})}).invoke(main, list(args))


@pytest.mark.parametrize("command", ["plan", "apply", "lag", "bench"])
def test_every_connecting_command_takes_a_config_file(command: str) -> None:
    """plan, apply, lag and bench document --config-file, -X and the environment variables."""
    result = _run(command, "--help")
    assert result.exit_code == 0
    assert "--config-file" in result.output
    assert "-X" in result.output
    assert "GOVERNED_KAFKA_CONFIG_FILE" in result.output


def test_a_broken_config_file_stops_a_command_before_it_connects(tmp_path: Path) -> None:
    """plan with a broken --config-file exits 2 with one line naming the file and line."""
    path = _properties(tmp_path, f"{SECRET}\n")
    example = Path(__file__).parent.parent / "examples" / "governance.toml"
    result = _run("plan", str(example), "--config-file", str(path))
    assert result.exit_code == 2
    assert f"{path}, line 1" in result.stderr
    assert SECRET not in result.output


def test_the_config_file_may_come_from_the_environment(tmp_path: Path) -> None:
    """GOVERNED_KAFKA_CONFIG_FILE names the file when --config-file is not given."""
    path = _properties(tmp_path, f"{SECRET}\n")
    result = _run("lag", "--group", "g", env={"GOVERNED_KAFKA_CONFIG_FILE": str(path)})
    assert result.exit_code == 2
    assert f"{path}, line 1" in result.stderr


def test_without_bootstrap_servers_anywhere_the_command_says_where_to_give_them() -> None:
    """plan needs --bootstrap-servers, or bootstrap.servers in the file or environment."""
    example = Path(__file__).parent.parent / "examples" / "governance.toml"
    result = _run("plan", str(example))
    assert result.exit_code == 2
    assert "--bootstrap-servers" in result.stderr
