"""`governed-kafka lint`: offline, exit 0 clean and 1 on violations, clean errors."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from governed_kafka.cli import main
from kafka_helpers import write_catalog

EXAMPLE = Path(__file__).parent.parent / "examples" / "governance.toml"

BROKEN = """
[policy]
min_replication_factor = 1
min_insync_replicas = 1

[[topics]]
name = "payments.customer.state.v1"
owner = "team-payments"
partitions = 1
replication_factor = 1
cleanup_policy = "compact"
key = "optional"
producers = ["accounts"]
consumers = ["billing"]
"""


def run(*args: str) -> Result:
    """Run the CLI in-process, wide enough that tables do not wrap."""
    return CliRunner(env={"COLUMNS": "250"}).invoke(main, list(args))


def test_lint_of_clean_contracts_exits_0() -> None:
    """The example contracts lint clean for the local environment: exit 0 and a 'clean' line."""
    result = run("lint", str(EXAMPLE), "--env", "local")
    assert result.exit_code == 0, result.output
    assert "clean: 3 topics" in result.stdout


def test_lint_with_violations_exits_1_and_shows_each_rule(tmp_path: Path) -> None:
    """A compacted topic with an optional key exits 1 and names the topic and the rule."""
    result = run("lint", str(write_catalog(tmp_path, BROKEN)))
    assert result.exit_code == 1
    assert "payments.customer.state.v1" in result.stdout
    assert "topic.compacted-key" in result.stdout
    assert "1 error, 0 warnings in 1 topic" in result.stdout


def test_lint_json_lists_violations_for_machines(tmp_path: Path) -> None:
    """--json prints the counts and every violation with rule, severity, topic and field."""
    result = run("lint", str(write_catalog(tmp_path, BROKEN)), "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert (report["errors"], report["warnings"], report["topics"]) == (1, 0, 1)
    assert report["violations"] == [
        {
            "rule": "topic.compacted-key",
            "severity": "error",
            "topic": "payments.customer.state.v1",
            "field": "key",
            "message": report["violations"][0]["message"],
        }
    ]


def test_lint_with_only_warnings_exits_0(tmp_path: Path) -> None:
    """A topic nobody consumes yet is a warning: shown, but lint still exits 0."""
    body = BROKEN.replace('key = "optional"', 'key = "required"').replace(
        'consumers = ["billing"]', "consumers = []"
    )
    result = run("lint", str(write_catalog(tmp_path, body)))
    assert result.exit_code == 0
    assert "topic.no-consumers" in result.stdout
    assert "1 warning" in result.stdout


def test_lint_of_a_missing_file_is_one_clear_line(tmp_path: Path) -> None:
    """A file that does not exist exits 1 with a sentence naming it, not a traceback."""
    missing = tmp_path / "governance.toml"
    result = run("lint", str(missing))
    assert result.exit_code == 1
    assert f"{missing}: contracts file not found" in result.stderr
    assert "Traceback" not in result.output


def test_lint_of_malformed_toml_names_the_file(tmp_path: Path) -> None:
    """A file that is not TOML exits 1 naming the file."""
    path = write_catalog(tmp_path, "[[topics]\nname = 1\n")
    result = run("lint", str(path))
    assert result.exit_code == 1
    assert f"{path}: not valid TOML" in result.stderr


def test_lint_of_an_undeclared_environment_is_refused() -> None:
    """--env naming an environment the file does not declare exits 1 listing the declared ones."""
    result = run("lint", str(EXAMPLE), "--env", "staging")
    assert result.exit_code == 1
    assert "'staging' is not declared" in result.stderr
    assert "local, prod" in result.stderr


# ------------------------------------------------------------------ hostile input (issue 14)


def test_file_content_is_printed_literally_never_as_markup(tmp_path: Path) -> None:
    """A topic named like Rich markup and an unknown key: one clear error, brackets kept."""
    path = write_catalog(
        tmp_path,
        """
        [[topics]]
        name = "evil[/]"
        partitions = 1
        replication_factor = 1
        colour = "[bold red]x[/]"
        """,
    )
    result = run("lint", str(path))
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)  # no MarkupError
    assert "topic 'evil[/]'" in result.stderr
    assert "unknown key in [topics]" in result.stderr


def test_lint_tables_show_names_and_messages_literally(tmp_path: Path) -> None:
    """Violation messages that hold brackets (a pattern) are shown as written."""
    path = write_catalog(
        tmp_path,
        """
        [policy]
        topic_name_pattern = '^[a-z]+$'

        [[topics]]
        name = "abc.x"
        partitions = 1
        replication_factor = 1
        """,
    )
    result = run("lint", str(path))
    assert result.exit_code == 1
    assert "'^[a-z]+$'" in result.stdout


def test_paths_are_printed_literally(tmp_path: Path) -> None:
    """A contracts file in a folder whose name looks like markup is named as it is."""
    folder = tmp_path / "[bold]x"
    folder.mkdir()
    path = write_catalog(
        folder,
        """
        [policy]
        min_replication_factor = 1
        min_insync_replicas = 1
        require_owner = false
        require_retention = false
        [[topics]]
        name = "a.b"
        partitions = 1
        replication_factor = 1
        producers = ["p"]
        consumers = ["c"]
        """,
    )
    result = run("lint", str(path))
    assert result.exit_code == 0, result.output
    assert str(path) in result.stdout.replace("\n", "")
