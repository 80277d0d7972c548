"""``governed-kafka demo`` walks through the product on the embedded broker."""

from __future__ import annotations

from click.testing import CliRunner

from governed_kafka.cli import main


def test_demo_runs_end_to_end() -> None:
    """The demo lints, applies, sends, refuses, consumes, dead-letters and reports lag."""
    result = CliRunner().invoke(main, ["demo", "--skip-bench"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "lint: 0 violations in 2 topics" in out
    assert "ok: 2 changes applied" in out
    assert "plan again: in-sync" in out
    for refusal in (
        "key.required",
        "field amount_cents",
        "items[0].quantity",
        "tombstone.not-compacted",
        "producer.not-listed",
    ):
        assert refusal in out, refusal
    assert "billed 9 orders; 2 retries; 1 dead-lettered" in out
    assert "dlq.error.message" in out
    assert "total commit lag: 6 records" in out
    assert "Traceback" not in out


def test_python_m_governed_kafka_is_the_command_line() -> None:
    """``python -m governed_kafka`` runs the same CLI as ``governed-kafka``."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "governed_kafka", "--help"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "Usage: governed-kafka" in done.stdout
    for command in ("lint", "plan", "apply", "lag", "bench", "demo"):
        assert command in done.stdout
