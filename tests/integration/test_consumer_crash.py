"""A consumer process killed mid-stream loses nothing and replays only its uncommitted window."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from test_consumer import _committed, _contracts

from conftest import Broker, CatalogFactory
from governed_kafka import GovernedProducer

CHILD = Path(__file__).with_name("crash_consumer.py")


def _lines(path: Path) -> list[tuple[int, int]]:
    if not path.exists():
        return []
    pairs = []
    for line in path.read_text().splitlines():
        partition, offset = line.split()
        pairs.append((int(partition), int(offset)))
    return pairs


def _wait(predicate: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_sigkill_mid_stream_then_restart_loses_nothing(
    kafka_broker: Broker,
    provisioned: CatalogFactory,
    topic_name: str,
    tmp_path: Path,
    group_protocol: str,
) -> None:
    """After SIGKILL and a restart every record is processed, and only uncommitted ones twice."""
    catalog = provisioned(_contracts(topic_name, partitions=3))
    bootstrap = kafka_broker.bootstrap_servers
    group = f"crash-{topic_name}"
    total = 3000
    with GovernedProducer(catalog, service="checkout", bootstrap_servers=bootstrap) as producer:
        for i in range(total):
            producer.send(topic_name, str(i).encode(), key=f"k{i % 17}")
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    args = [sys.executable, str(CHILD), bootstrap, str(catalog.path), topic_name, group]

    first = subprocess.Popen([*args, str(first_log), "0.002", group_protocol])
    try:
        assert _wait(lambda: len(_lines(first_log)) >= 800, 60), "first consumer never got going"
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    committed_at_kill = _committed(bootstrap, group, topic_name, 3)

    second = subprocess.Popen([*args, str(second_log), "0", group_protocol])
    try:
        assert _wait(lambda: len(set(_lines(first_log)) | set(_lines(second_log))) >= total, 90), (
            "the restarted consumer did not finish the stream"
        )
    finally:
        second.send_signal(signal.SIGTERM)  # stop() from a signal handler: clean exit
        assert second.wait(30) == 0

    by_first, by_second = _lines(first_log), _lines(second_log)
    assert len(set(by_first)) == len(by_first), "one process handled a record twice"
    assert len(set(by_second)) == len(by_second), "one process handled a record twice"
    everything = set(by_first) | set(by_second)
    assert len(everything) == total  # nothing lost
    replayed = set(by_first) & set(by_second)
    for partition, offset in replayed:
        # Only what the first process had not committed comes back.
        assert offset >= committed_at_kill.get(partition, 0)
    # batched(max_records=50): at most 50 processed records wait for a commit, plus one
    # asynchronous commit possibly still in flight when the process died.
    assert len(replayed) <= 100
    # The clean stop committed the end of every partition.
    ends = {p: max(o for q, o in everything if q == p) + 1 for p in range(3)}
    assert _committed(bootstrap, group, topic_name, 3) == ends
