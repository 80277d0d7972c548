"""What only a replicated Apache Kafka cluster can show: broker loss, failover, ISR, racks.

Every test runs on the session's three-node cluster (``kafka_cluster``: racks a, b and
c). Topics are replicated three times with ``min.insync.replicas=2`` unless a test says
otherwise; nodes a test kills or stops are brought back after it by the plugin.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from confluent_kafka import Message
from confluent_kafka.admin import AdminClient
from test_consumer import _committed, fast
from test_consumer_crash import CHILD, _lines, _wait

from conftest import Report
from governed_kafka import (
    Catalog,
    CommitStrategy,
    DeliveryError,
    GovernanceViolation,
    GovernedConsumer,
    GovernedProducer,
    Record,
    hooks,
)
from governed_kafka.cli import main
from governed_kafka.cluster import Cluster
from governed_kafka.testing import KafkaCluster
from governed_kafka.testing._kafka_dist import find_kafka
from kafka_helpers import create_topic, describe_topic, read_all, unique_topic, write_catalog

pytestmark = pytest.mark.apache_kafka


def _contracts(topic: str, *, partitions: int = 3, extra: str = "", dlq: bool = False) -> str:
    text = f"""
        [policy]
        min_replication_factor = 3
        min_insync_replicas = 2

        [[topics]]
        name = "{topic}"
        owner = "team-test"
        partitions = {partitions}
        replication_factor = 3
        min_insync_replicas = 2
        retention_ms = 3600000
        key = "required"
        producers = ["checkout"]
        consumers = ["billing"]
        {extra}
        """
    if dlq:
        text += f"""
        dead_letter_topic = "{topic}.dlq"

        [[topics]]
        name = "{topic}.dlq"
        owner = "team-test"
        partitions = 1
        replication_factor = 3
        min_insync_replicas = 2
        retention_ms = 3600000
        producers = ["billing"]
        consumers = ["ops"]
        """
    return text


def _provision(cluster: KafkaCluster, tmp_path: Path, body: str) -> Catalog:
    """Write the contracts and create their topics with ``apply``, as a platform team would."""
    catalog = Catalog.load(write_catalog(tmp_path, body))
    result = Cluster(cluster.bootstrap_servers).apply(catalog)
    assert result.ok, [r.message for r in result.results]
    cluster.wait_in_sync([c.name for c in catalog])
    return catalog


def _leaders(bootstrap: str, topic: str) -> dict[int, int]:
    """The leader broker of each partition of ``topic``."""
    metadata = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=10)
    return {p: m.leader for p, m in metadata.topics[topic].partitions.items()}


def _replicas(bootstrap: str, topic: str, partition: int) -> list[int]:
    metadata = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=10)
    return list(metadata.topics[topic].partitions[partition].replicas)


def _outcomes(
    futures: list[tuple[int, Any]],
) -> tuple[dict[int, tuple[int, int | None]], dict[int, DeliveryError]]:
    """``(acknowledged, failed)`` by sequence number: where each record landed, or why not."""
    acknowledged: dict[int, tuple[int, int | None]] = {}
    failed: dict[int, DeliveryError] = {}
    for seq, future in futures:
        try:
            metadata = future.result(0)
        except DeliveryError as exc:
            failed[seq] = exc
        else:
            acknowledged[seq] = (metadata.partition, metadata.offset)
    return acknowledged, failed


def _sequence(message: Message) -> int:
    return int(message.value())


def test_a_broker_killed_mid_stream_loses_no_acknowledged_record(
    kafka_cluster: KafkaCluster, tmp_path: Path, fault_report: Report
) -> None:
    """RF 3, min ISR 2: while a partition leader is SIGKILLed and restarted under a paced keyed
    stream, every acknowledged record is in the log once, where it was reported, in key order."""
    topic = unique_topic("repl")
    catalog = _provision(kafka_cluster, tmp_path, _contracts(topic))
    bootstrap = kafka_cluster.bootstrap_servers
    victim = _leaders(bootstrap, topic)[0]
    total, keys = 12_000, 30
    futures: list[tuple[int, Any]] = []
    restarted = threading.Thread(target=kafka_cluster.start, args=(victim,))
    with GovernedProducer(
        catalog,
        service="checkout",
        bootstrap_servers=bootstrap,
        overrides={"delivery.timeout.ms": 60_000},
    ) as producer:
        for seq in range(total):
            futures.append((seq, producer.send(topic, str(seq), key=f"k{seq % keys}")))
            if seq % 40 == 39:
                time.sleep(0.01)  # about 3,000 records/s: the stream spans the failure
            if seq == 3_000:
                kafka_cluster.kill(victim)
            if seq == 8_000:
                restarted.start()  # the node rejoins while records keep coming
        assert producer.flush(90) == 0
    restarted.join()
    acknowledged, failed = _outcomes(futures)
    log = read_all(bootstrap, topic, timeout=60)
    counts = Counter(_sequence(m) for m in log)
    duplicates = sum(n - 1 for n in counts.values() if n > 1)
    lost = [seq for seq in acknowledged if seq not in counts]
    fault_report(
        f"sent {total}, acknowledged {len(acknowledged)}, failed {len(failed)}, "
        f"read back {len(log)}, duplicates {duplicates}, lost {len(lost)}"
    )
    assert failed == {}
    assert len(acknowledged) == total
    assert lost == []
    assert duplicates == 0
    assert len(log) == total
    where = {_sequence(m): (m.partition(), m.offset()) for m in log}
    wrong = [s for s, (p, o) in acknowledged.items() if o is not None and where[s] != (p, o)]
    assert wrong == [], "a record was reported at another partition or offset than its own"
    per_key: dict[int, list[int]] = defaultdict(list)
    for message in sorted(log, key=lambda m: (m.partition(), m.offset())):
        per_key[_sequence(message) % keys].append(_sequence(message))
    assert all(seqs == sorted(seqs) for seqs in per_key.values()), "a key's order changed"


def test_with_two_of_three_brokers_down_sends_fail_within_the_delivery_timeout(
    kafka_cluster: KafkaCluster, tmp_path: Path, fault_report: Report
) -> None:
    """With only the leader left, min ISR 2 cannot be met: every send fails with a
    DeliveryError within delivery.timeout.ms, none is reported delivered, and once the
    brokers return the same producer delivers again."""
    topic = unique_topic("isr")
    catalog = _provision(kafka_cluster, tmp_path, _contracts(topic, partitions=1))
    bootstrap = kafka_cluster.bootstrap_servers
    leader = _leaders(bootstrap, topic)[0]
    followers = [b for b in kafka_cluster.broker_ids if b != leader]
    delivery_timeout_s = 10.0
    with GovernedProducer(
        catalog,
        service="checkout",
        bootstrap_servers=bootstrap,
        overrides={"delivery.timeout.ms": int(delivery_timeout_s * 1000)},
    ) as producer:
        producer.send_and_wait(topic, b"before", key=b"k")
        for broker in followers:
            kafka_cluster.kill(broker)
        started = time.monotonic()
        futures = [(seq, producer.send(topic, f"down-{seq}", key=b"k")) for seq in range(20)]
        failures: list[tuple[float, DeliveryError]] = []
        for _, future in futures:
            with pytest.raises(DeliveryError) as refused:
                future.result(delivery_timeout_s + 20)
            failures.append((time.monotonic() - started, refused.value))
        for broker in followers:
            kafka_cluster.start(broker)
        after = producer.send_and_wait(topic, b"after", key=b"k", timeout=120)
    codes = Counter(str(error.code) for _, error in failures)
    slowest = max(elapsed for elapsed, _ in failures)
    assert set(codes) <= {
        "NOT_ENOUGH_REPLICAS",
        "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
        "_MSG_TIMED_OUT",
        "REQUEST_TIMED_OUT",
    }, codes
    assert slowest <= delivery_timeout_s + 5
    assert after.offset is not None
    log = [m.value() for m in read_all(bootstrap, topic, timeout=60)]
    assert log.count(b"before") == 1
    assert log.count(b"after") == 1
    written_anyway = sum(1 for v in log if v.startswith(b"down-"))
    fault_report(
        f"20 sends with 2 of 3 brokers down: {dict(codes)}, all failed within "
        f"{slowest:.1f} s (delivery.timeout.ms {delivery_timeout_s:g} s); "
        f"{written_anyway} of them reached the log once the followers caught up"
    )


class _Processed:
    """Counts processed records by (partition, offset), from the handler's side."""

    def __init__(self) -> None:
        self.seen: Counter[tuple[int, int]] = Counter()
        self.lock = threading.Lock()

    def handle(self, record: Record) -> None:
        with self.lock:
            self.seen[(record.partition, record.offset)] += 1


def _coordinator(bootstrap: str, group: str) -> int:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    description = admin.describe_consumer_groups([group], request_timeout=10)[group].result(10)
    return int(description.coordinator.id)


@pytest.mark.slow
def test_consumer_goes_on_through_a_leader_and_coordinator_failover(
    kafka_cluster: KafkaCluster, tmp_path: Path, group_protocol: str, fault_report: Report
) -> None:
    """The group's coordinator (which leads a partition too) is killed under a running
    consumer: every record is processed, none skipped, and the committed offsets end at the
    log end of every partition."""
    topic = unique_topic("failover")
    catalog = _provision(kafka_cluster, tmp_path, _contracts(topic, dlq=True))
    bootstrap = kafka_cluster.bootstrap_servers
    group = f"failover-{topic}"
    with GovernedProducer(catalog, service="checkout", bootstrap_servers=bootstrap) as producer:
        for seq in range(6_000):
            producer.send(topic, str(seq), key=f"k{seq % 50}")
    processed = _Processed()

    def handler(record: Record) -> None:
        time.sleep(0.0005)
        processed.handle(record)

    consumer = GovernedConsumer(
        catalog,
        service="billing",
        group_id=group,
        topics=[topic],
        bootstrap_servers=bootstrap,
        commit=CommitStrategy.batched(max_records=200, max_interval_s=1),
        overrides=fast(group_protocol),
        group_protocol=group_protocol,  # type: ignore[arg-type]
    )
    stopping = threading.Event()

    def run() -> None:
        while not stopping.is_set():
            consumer.run(handler, timeout=0.5)

    runner = threading.Thread(target=run)
    runner.start()
    try:
        assert _wait(lambda: sum(processed.seen.values()) >= 1_500, 60), "consumer never started"
        victim = _coordinator(bootstrap, group)
        assert victim in set(_leaders(bootstrap, topic).values())
        kafka_cluster.kill(victim)
        assert _wait(lambda: len(processed.seen) >= 4_000, 90), "stalled after the failover"
        kafka_cluster.start(victim)
        with GovernedProducer(catalog, service="checkout", bootstrap_servers=bootstrap) as p:
            for seq in range(6_000, 9_000):
                p.send(topic, str(seq), key=f"k{seq % 50}")
        assert _wait(lambda: len(processed.seen) >= 9_000, 120), "did not finish the stream"
    finally:
        stopping.set()
        runner.join()
        consumer.close()
    ends: dict[int, int] = {}
    for message in read_all(bootstrap, topic, timeout=60):
        ends[message.partition()] = message.offset() + 1
    every = {(p, o) for p, end in ends.items() for o in range(end)}
    assert set(processed.seen) == every, "a record was skipped"
    assert _committed(bootstrap, group, topic, 3) == ends
    replayed = sum(n - 1 for n in processed.seen.values())
    fault_report(
        f"coordinator {victim} killed ({group_protocol}): 9000 records, all processed, "
        f"{replayed} processed twice, committed == log end"
    )


@pytest.mark.slow
def test_three_consumers_rebalance_around_a_killed_member_without_committing_a_gap(
    kafka_cluster: KafkaCluster, tmp_path: Path, group_protocol: str, fault_report: Report
) -> None:
    """Three consumer processes share six partitions; one is SIGKILLed mid-stream. Every
    offset the group had committed at that moment was processed before it; the others take
    over, only records past a committed offset are processed twice, and nothing is lost."""
    topic = unique_topic("rebalance")
    catalog = _provision(kafka_cluster, tmp_path, _contracts(topic, partitions=6, dlq=True))
    bootstrap = kafka_cluster.bootstrap_servers
    group = f"rebalance-{topic}"
    total = 6_000
    with GovernedProducer(catalog, service="checkout", bootstrap_servers=bootstrap) as producer:
        for seq in range(total):
            producer.send(topic, str(seq), key=f"k{seq % 97}")
    logs = [tmp_path / f"member-{n}.log" for n in range(3)]
    args = [sys.executable, str(CHILD), bootstrap, str(catalog.path), topic, group]
    members = [subprocess.Popen([*args, str(log), "0.004", group_protocol]) for log in logs]
    try:
        assert _wait(lambda: all(len(_lines(log)) >= 100 for log in logs), 90), (
            "the three members never all got partitions"
        )
        members[1].send_signal(signal.SIGKILL)
        members[1].wait()
        committed_at_kill = _committed(bootstrap, group, topic, 6)
        done_at_kill = set().union(*(_lines(log) for log in logs))
        assert _wait(lambda: len(set().union(*(_lines(log) for log in logs))) >= total, 120), (
            "the remaining members did not finish the stream"
        )
    finally:
        for member in members:
            if member.poll() is None:
                member.send_signal(signal.SIGTERM)
        codes = [member.wait(60) for member in members]
    assert codes[0] == codes[2] == 0
    gaps = [
        (p, o)
        for p, end in committed_at_kill.items()
        for o in range(end)
        if (p, o) not in done_at_kill
    ]
    assert gaps == [], "an offset was committed before its record was processed"
    per_member = [_lines(log) for log in logs]
    assert all(len(lines) == len(set(lines)) for lines in per_member)
    everything = Counter(pair for lines in per_member for pair in lines)
    assert len(everything) == total
    replayed = [pair for pair, n in everything.items() if n > 1]
    assert all(o >= committed_at_kill.get(p, 0) for p, o in replayed)
    ends = {p: max(o for q, o in everything if q == p) + 1 for p in range(6)}
    assert _committed(bootstrap, group, topic, 6) == ends
    fault_report(
        f"3 members ({group_protocol}), one SIGKILLed: {total} records, all processed, "
        f"{len(replayed)} replayed (all past the committed offset), no commit past a gap"
    )


def test_compaction_keeps_the_latest_value_of_every_key_through_the_log_cleaner(
    kafka_cluster: KafkaCluster, tmp_path: Path
) -> None:
    """On a compacted contract topic, the real log cleaner leaves the latest value of each
    key and removes tombstoned keys."""
    topic = unique_topic("compact")
    extra = """
        cleanup_policy = "compact"
        [topics.configs]
        "segment.ms" = "200"
        "min.cleanable.dirty.ratio" = "0.01"
        "delete.retention.ms" = "500"
        """
    catalog = _provision(kafka_cluster, tmp_path, _contracts(topic, partitions=1, extra=extra))
    bootstrap = kafka_cluster.bootstrap_servers
    with GovernedProducer(catalog, service="checkout", bootstrap_servers=bootstrap) as producer:
        for version in range(5):
            for key in range(20):
                producer.send(topic, f"k{key}=v{version}", key=f"k{key}")
        for key in range(15, 20):
            producer.send(topic, None, key=f"k{key}")  # tombstones
        assert producer.flush(10) == 0
        written = 5 * 20 + 5

        def compacted() -> bool:
            time.sleep(0.3)
            # A write after segment.ms rolls the segment, so the cleaner may clean it.
            producer.send(topic, "roll", key="roller")
            producer.flush(10)
            live = [m for m in read_all(bootstrap, topic, timeout=30) if m.key() != b"roller"]
            return len(live) == 15

        assert _wait(compacted, 120), "the log cleaner never compacted the topic"
    survivors = {
        m.key(): m.value() for m in read_all(bootstrap, topic, timeout=30) if m.key() != b"roller"
    }
    assert survivors == {f"k{k}".encode(): f"k{k}=v4".encode() for k in range(15)}
    assert written == 105


def _java_keys_moving(cluster: KafkaCluster, keys: list[bytes], before: int, after: int) -> int:
    """How many of ``keys`` Kafka's own Java partitioner puts elsewhere with ``after``
    partitions: the partitioner the Java producer runs, from the broker's jars."""
    source = Path(__file__).with_name("JavaKeysMoving.java")
    classpath = find_kafka(cluster.version).classpath
    done = subprocess.run(
        ["java", "-cp", classpath, str(source), str(before), str(after)],
        input="\n".join(k.decode() for k in keys),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return int(done.stdout.split()[0])


def test_plan_and_apply_on_a_replicated_cluster(
    kafka_cluster: KafkaCluster, tmp_path: Path
) -> None:
    """plan reports a topic made by hand with RF 1 and min ISR 1 against a contract of 3
    and 2, and says how many recently seen keys a partition increase moves, as the Java
    partitioner computes it; apply fixes min ISR and adds the partitions (CreatePartitions),
    and refuses the replication change."""
    topic = unique_topic("plan")
    bootstrap = kafka_cluster.bootstrap_servers
    path = write_catalog(tmp_path, _contracts(topic, partitions=6))
    create_topic(
        bootstrap,
        topic,
        partitions=3,
        rf=1,
        cleanup_policy="delete",
        retention_ms="3600000",
        min_insync_replicas="1",
    )
    keys = [f"customer-{n}".encode() for n in range(200)]
    with GovernedProducer(
        Catalog.load(path), service="checkout", bootstrap_servers=bootstrap, verify_topics=False
    ) as producer:
        for _ in range(3):
            for key in keys:
                producer.send(topic, b"x", key=key)
    runner = CliRunner(env={"COLUMNS": "250"})
    planned = runner.invoke(main, ["plan", str(path), "-b", bootstrap, "--json"])
    plan = json.loads(planned.stdout)
    assert planned.exit_code == 1  # the replication change is refused
    changes = {c["field"]: c for c in plan["changes"]}
    assert set(changes) == {"partitions", "replication_factor", "min.insync.replicas"}
    assert (changes["replication_factor"]["live"], changes["replication_factor"]["wanted"]) == (
        "1",
        "3",
    )
    assert "partition reassignment" in changes["replication_factor"]["refused"]
    assert (changes["min.insync.replicas"]["live"], changes["min.insync.replicas"]["wanted"]) == (
        "1",
        "2",
    )
    growth = changes["partitions"]
    assert (growth["live"], growth["wanted"], growth["safe"]) == ("3", "6", True)
    assert growth["keys_seen"] == 200
    assert growth["keys_moving"] == _java_keys_moving(kafka_cluster, keys, 3, 6)
    assert 0 < growth["keys_moving"] < 200
    table = runner.invoke(main, ["plan", str(path), "-b", bootstrap])
    assert f"{growth['keys_moving']} of 200 recently seen keys move" in table.output
    applied = runner.invoke(main, ["apply", str(path), "-b", bootstrap, "--json"])
    outcomes = {r["change"]["field"]: r["outcome"] for r in json.loads(applied.stdout)["results"]}
    assert outcomes == {
        "partitions": "applied",
        "replication_factor": "refused",
        "min.insync.replicas": "applied",
    }
    partitions, rf, configs = describe_topic(bootstrap, topic)
    assert (partitions, rf, configs["min.insync.replicas"]) == (6, 1, "2")


def test_the_runtime_gate_refuses_a_topic_with_fewer_replicas_than_its_contract(
    kafka_cluster: KafkaCluster, tmp_path: Path
) -> None:
    """A topic created by hand with RF 1 where the contract says 3 stops a producer and a
    consumer at construction (topic.drift on replication_factor)."""
    topic = unique_topic("gate")
    bootstrap = kafka_cluster.bootstrap_servers
    catalog = Catalog.load(write_catalog(tmp_path, _contracts(topic, partitions=1)))
    create_topic(
        bootstrap,
        topic,
        partitions=1,
        rf=1,
        cleanup_policy="delete",
        retention_ms="3600000",
        min_insync_replicas="2",
    )
    with pytest.raises(GovernanceViolation, match="replication factor 1 live") as producing:
        GovernedProducer(
            catalog, service="checkout", bootstrap_servers=bootstrap, verify_topics=True
        )
    assert (producing.value.rule, producing.value.field) == ("topic.drift", "replication_factor")
    with pytest.raises(GovernanceViolation, match="the contract says 3") as consuming:
        GovernedConsumer(
            catalog,
            service="billing",
            group_id=f"gate-{topic}",
            topics=[topic],
            bootstrap_servers=bootstrap,
            verify_topics=True,
        )
    assert consuming.value.field == "replication_factor"


class _FetchSources(hooks.Hook):
    """Which broker librdkafka's statistics say each partition is fetched from."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.sources: list[tuple[int, int]] = []

    def on_statistics(self, details: hooks.StatisticsDetails) -> None:
        partition = details.stats.get("topics", {}).get(self.topic, {}).get("partitions", {})
        state = partition.get("0")
        if state and state.get("fetch_state") == "active":
            self.sources.append((int(state["broker"]), int(state["leader"])))


def test_a_consumer_fetches_from_the_follower_in_its_own_rack(
    kafka_cluster: KafkaCluster, tmp_path: Path
) -> None:
    """With client_rack set to a follower's rack, the consumer reads every record from that
    follower, not from the leader in another rack."""
    topic = unique_topic("rack")
    catalog = _provision(kafka_cluster, tmp_path, _contracts(topic, partitions=1, dlq=True))
    bootstrap = kafka_cluster.bootstrap_servers
    assert kafka_cluster.racks is not None
    leader = _leaders(bootstrap, topic)[0]
    follower = next(b for b in _replicas(bootstrap, topic, 0) if b != leader)
    rack = kafka_cluster.racks[follower - 1]
    with GovernedProducer(catalog, service="checkout", bootstrap_servers=bootstrap) as producer:
        for seq in range(200):
            producer.send(topic, str(seq), key=f"k{seq}")
    kafka_cluster.wait_in_sync([topic])
    sources = _FetchSources(topic)
    records: list[Record] = []
    with GovernedConsumer(
        catalog,
        service="billing",
        group_id=f"rack-{topic}",
        topics=[topic],
        bootstrap_servers=bootstrap,
        client_rack=rack,
        hooks=[sources],
        overrides={**fast(), "statistics.interval.ms": 200},
    ) as consumer:
        deadline = time.monotonic() + 60
        while (len(records) < 200 or not sources.sources) and time.monotonic() < deadline:
            for record in consumer.poll_batch(timeout=0.5):
                records.append(record)
                consumer.mark_processed(record)
        deadline = time.monotonic() + 10
        while len(sources.sources) < 3 and time.monotonic() < deadline:
            consumer.poll_batch(timeout=0.3)
    assert len(records) == 200
    assert sources.sources, "librdkafka reported no fetch state"
    assert sources.sources[-1] == (follower, leader), (
        f"fetched from {sources.sources[-1][0]}, expected follower {follower} in rack "
        f"{rack!r} (leader {leader})"
    )
