"""Exactly-once processing on real Apache Kafka: crashes, handler errors, zombies, isolation.

Every test runs on the session's three-node cluster (``kafka_cluster``): topics are
replicated three times with ``min.insync.replicas=2``. Only Apache Kafka honours
``read_committed`` (the embedded broker returns no aborted-transaction list, so its
readers see aborted records: ``docs/testing.md``), so these proofs live here.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaException, Message, TopicPartition
from test_consumer_crash import _wait

from conftest import Report
from governed_kafka import (
    Catalog,
    CommitStrategy,
    GovernedConsumer,
    GovernedProducer,
    ProducerFenced,
    Record,
    RetryPolicy,
    TransactionError,
    hooks,
)
from governed_kafka._batch_transactions import MAX_ABORTED_COMMITS
from governed_kafka.testing import KafkaCluster
from kafka_helpers import read_all, set_topic_configs, unique_topic, write_catalog

pytestmark = pytest.mark.apache_kafka

PROCESSOR = Path(__file__).with_name("eos_processor.py")

READ_COMMITTED = {"isolation.level": "read_committed"}
READ_UNCOMMITTED = {"isolation.level": "read_uncommitted"}


def _contracts(source: str, sink: str, *, partitions: int = 3) -> str:
    """An input topic with its dead-letter topic, and an exactly_once output topic."""
    common = """
        owner = "team-test"
        replication_factor = 3
        min_insync_replicas = 2
        retention_ms = 3600000
    """
    return f"""
        [policy]
        min_replication_factor = 3
        min_insync_replicas = 2

        [[topics]]
        name = "{source}"
        partitions = {partitions}
        key = "required"
        producers = ["loader"]
        consumers = ["enricher"]
        dead_letter_topic = "{source}.dlq"
        {common}

        [[topics]]
        name = "{source}.dlq"
        partitions = 1
        producers = ["enricher"]
        consumers = ["ops"]
        {common}

        [[topics]]
        name = "{sink}"
        partitions = {partitions}
        key = "required"
        exactly_once = true
        producers = ["enricher"]
        consumers = ["auditor"]
        {common}
        """


def _provision(cluster: KafkaCluster, tmp_path: Path, body: str) -> Catalog:
    """Write the contracts and create their topics as they say, with the raw admin client.

    (No ``[services]`` table: the producers' principals would be asked of the cluster,
    which has no authorizer; the unit tests hold the transactional-id rules.)
    """
    catalog = Catalog.load(write_catalog(tmp_path, body))
    for contract in catalog:
        cluster.create_topic(
            contract.name,
            partitions=contract.partitions,
            replication_factor=contract.replication_factor,
            config=contract.topic_configs(),
        )
    return catalog


def _load(catalog: Catalog, bootstrap: str, topic: str, total: int, keys: int = 50) -> None:
    with GovernedProducer(catalog, service="loader", bootstrap_servers=bootstrap) as producer:
        for i in range(total):
            producer.send(topic, str(i).encode(), key=f"k{i % keys}")
        assert producer.flush(60) == 0


def _values(messages: list[Message]) -> Counter[int]:
    return Counter(int(m.value()) for m in messages)


def _ends(bootstrap: str, topic: str) -> dict[int, int]:
    """The log end of each partition, from fetch responses (every record read once)."""
    ends: dict[int, int] = {}
    for message in read_all(bootstrap, topic, timeout=60, config=READ_UNCOMMITTED):
        ends[message.partition()] = max(ends.get(message.partition(), 0), message.offset() + 1)
    return ends


def _processor(
    bootstrap: str, catalog: Catalog, source: str, sink: str, group: str, tid: str, delay: float
) -> subprocess.Popen[bytes]:
    """Start an eos_processor.py child; its stderr goes to ``<tid>.log`` beside the catalog
    (a pipe nobody reads could fill up and stop it)."""
    args = [sys.executable, str(PROCESSOR), bootstrap, str(catalog.path), source, sink, group]
    log = _log_of(catalog, tid).open("ab")
    try:
        return subprocess.Popen([*args, tid, str(delay)], stderr=log)
    finally:
        log.close()


def _log_of(catalog: Catalog, tid: str) -> Path:
    return catalog.path.parent / f"{tid}.log"


def _committed_now(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """The group's committed offsets, read with a raw client outside the group.

    Read uncommitted: a read_committed client asks for stable offsets only and waits out
    every open transaction that carries offsets, which a running processor always has.
    Asked again while the group's coordinator moves or loads.
    """
    deadline = time.monotonic() + 30
    while True:
        reader = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": group, "log_level": 0, **READ_UNCOMMITTED}
        )
        try:
            found = reader.committed([TopicPartition(topic, p) for p in range(3)], timeout=10)
            return {tp.partition: tp.offset for tp in found if tp.offset >= 0}
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
        finally:
            reader.close()


def _committed_total(bootstrap: str, group: str, topic: str) -> int:
    return sum(_committed_now(bootstrap, group, topic).values())


@pytest.mark.timeout(900)
def test_a_processor_killed_ten_times_writes_every_output_exactly_once(
    kafka_cluster: KafkaCluster, tmp_path: Path, fault_report: Report
) -> None:
    """A processor of 20,000 keyed records, SIGKILLed at random moments ten times and
    restarted each time: a read_committed reader of the output finds every input exactly
    once, and the group's committed offsets are the input's log end."""
    source, sink = unique_topic("eos-in"), unique_topic("eos-out")
    catalog = _provision(kafka_cluster, tmp_path, _contracts(source, sink))
    bootstrap = kafka_cluster.bootstrap_servers
    total, group, tid = 20_000, f"eos-{source}", f"eos-{source}-0"
    _load(catalog, bootstrap, source, total)
    rng = random.Random(17)
    kills: list[int] = []
    for _ in range(10):
        child = _processor(bootstrap, catalog, source, sink, group, tid, 0.0005)
        try:
            before = _committed_total(bootstrap, group, source)

            def progressed(before: int = before) -> bool:
                return _committed_total(bootstrap, group, source) > before

            assert _wait(progressed, 90), "the processor committed nothing after its restart"
            time.sleep(rng.uniform(0.0, 1.5))  # then at a random moment of its work
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
        kills.append(_committed_total(bootstrap, group, source))
    assert kills[-1] < total, "every kill came after the end: none interrupted the work"
    last = _processor(bootstrap, catalog, source, sink, group, tid, 0.0)
    try:
        assert _wait(lambda: _committed_total(bootstrap, group, source) >= total, 180), (
            "the last processor did not finish the stream"
        )
    finally:
        last.send_signal(signal.SIGTERM)
        assert last.wait(60) == 0, _log_of(catalog, tid).read_text()

    outputs = read_all(bootstrap, sink, timeout=90, config=READ_COMMITTED)
    counts = _values(outputs)
    missing = [i for i in range(total) if i not in counts]
    duplicated = {i: n for i, n in counts.items() if n > 1}
    uncommitted = read_all(bootstrap, sink, timeout=90, config=READ_UNCOMMITTED)
    fault_report(
        f"10 SIGKILLs at committed totals {kills}; read_committed output {len(outputs)} "
        f"records, {len(missing)} missing, {len(duplicated)} duplicated; read_uncommitted "
        f"sees {len(uncommitted)} (the aborted transactions' records included)"
    )
    assert missing == []
    assert duplicated == {}
    assert len(outputs) == total
    assert _committed_now(bootstrap, group, source) == _ends(bootstrap, source)


class _Transactions(hooks.Hook):
    """Counts the transactions a producer committed and aborted."""

    def __init__(self) -> None:
        self.commits: list[hooks.TransactionCommitDetails] = []
        self.aborts: list[hooks.TransactionAbortDetails] = []

    def on_transaction_commit(self, details: hooks.TransactionCommitDetails) -> None:
        self.commits.append(details)

    def on_transaction_abort(self, details: hooks.TransactionAbortDetails) -> None:
        self.aborts.append(details)


def _failing_run(
    kafka_cluster: KafkaCluster, tmp_path: Path
) -> tuple[Catalog, str, str, set[int], _Transactions, Any]:
    """3,000 inputs through a transactional consumer whose handler sends each output, then
    raises for three chosen inputs on every attempt."""
    source, sink = unique_topic("eos-fail"), unique_topic("eos-fail-out")
    catalog = _provision(kafka_cluster, tmp_path, _contracts(source, sink))
    bootstrap = kafka_cluster.bootstrap_servers
    total, failing = 3_000, {7, 1500, 2999}
    _load(catalog, bootstrap, source, total)
    seen = _Transactions()
    out = GovernedProducer(
        catalog,
        service="enricher",
        bootstrap_servers=bootstrap,
        transactional_id=f"fail-{source}",
        hooks=[seen],
    )

    def handler(record: Record) -> None:
        out.send(sink, record.value, key=record.key)  # sent, then the handler fails
        if int(record.value) in failing:
            raise ValueError(f"input {int(record.value)} cannot be enriched")

    with GovernedConsumer(
        catalog,
        service="enricher",
        group_id=f"fail-{source}",
        topics=[source],
        bootstrap_servers=bootstrap,
        commit=CommitStrategy.transactional(out, max_records=100),
        retry=RetryPolicy(attempts=3, initial_backoff_s=0.01, jitter_s=0.0),
        overrides={"session.timeout.ms": 6000},
    ) as consumer:
        summary = consumer.run(handler, max_records=total, timeout=240)
    out.close()
    return catalog, source, sink, failing, seen, summary


def test_a_failing_handler_is_aborted_retried_then_dead_lettered_and_the_rest_is_exact(
    kafka_cluster: KafkaCluster, tmp_path: Path, fault_report: Report
) -> None:
    """Outputs of the aborted batches are invisible to read_committed readers, each failing
    record is tried three times and dead-lettered once with its headers, and every other
    input has exactly one output."""
    _, source, sink, failing, seen, summary = _failing_run(kafka_cluster, tmp_path)
    bootstrap = kafka_cluster.bootstrap_servers
    total = 3_000
    outputs = _values(read_all(bootstrap, sink, timeout=60, config=READ_COMMITTED))
    letters = read_all(bootstrap, f"{source}.dlq", timeout=60, config=READ_COMMITTED)
    fault_report(
        f"{len(seen.aborts)} aborted and {len(seen.commits)} committed transactions; "
        f"summary {summary}"
    )
    assert summary.records == total
    assert summary.dead_lettered == 3
    assert summary.retries == 6  # two retries of each failing record
    assert {i: n for i, n in outputs.items() if n != 1} == {}
    assert set(outputs) == set(range(total)) - failing
    assert sorted(int(m.value()) for m in letters) == sorted(failing)
    for letter in letters:
        headers = dict(letter.headers() or [])
        assert headers["dlq.attempts"] == b"3"
        assert headers["dlq.error.type"] == b"builtins.ValueError"
        assert headers["dlq.original.topic"] == source.encode()
        assert headers["dlq.consumer.group"] == f"fail-{source}".encode()
    assert len(seen.aborts) == 9  # three attempts at each failing record, each aborted
    assert {a.reason for a in seen.aborts} == {"handler-error"}
    assert all(isinstance(a.error, ValueError) for a in seen.aborts)
    assert _committed_now(bootstrap, f"fail-{source}", source) == _ends(bootstrap, source)


def test_a_read_uncommitted_reader_does_see_the_aborted_outputs(
    kafka_cluster: KafkaCluster, tmp_path: Path
) -> None:
    """The isolation is real: a raw read_uncommitted consumer reads the outputs of the
    aborted batches (the failing inputs' own among them), which read_committed never
    shows."""
    _, _, sink, failing, seen, _ = _failing_run(kafka_cluster, tmp_path)
    bootstrap = kafka_cluster.bootstrap_servers
    committed = _values(read_all(bootstrap, sink, timeout=60, config=READ_COMMITTED))
    uncommitted = _values(read_all(bootstrap, sink, timeout=60, config=READ_UNCOMMITTED))
    aborted_records = sum(a.records for a in seen.aborts)
    assert aborted_records > 0
    assert sum(uncommitted.values()) >= sum(committed.values()) + aborted_records
    assert all(uncommitted[i] >= 3 for i in failing)  # once per aborted attempt
    assert not failing & set(committed)


def test_a_second_instance_with_the_same_transactional_id_fences_the_first(
    kafka_cluster: KafkaCluster, tmp_path: Path, fault_report: Report
) -> None:
    """Two processors with one transactional id: the older is fenced and stops with an
    error naming the id, the newer finishes, and no output is duplicated."""
    source, sink = unique_topic("eos-zombie"), unique_topic("eos-zombie-out")
    catalog = _provision(kafka_cluster, tmp_path, _contracts(source, sink))
    bootstrap = kafka_cluster.bootstrap_servers
    total, group, tid = 6_000, f"zombie-{source}", f"zombie-{source}"
    _load(catalog, bootstrap, source, total)
    older = _processor(bootstrap, catalog, source, sink, group, tid, 0.002)
    newer: subprocess.Popen[bytes] | None = None
    try:
        assert _wait(lambda: _committed_total(bootstrap, group, source) > 0, 90)
        newer = _processor(bootstrap, catalog, source, sink, group, tid, 0.0)
        assert older.wait(120) == 3, "the older processor was not stopped as fenced"
        assert _wait(lambda: _committed_total(bootstrap, group, source) >= total, 180)
    finally:
        for child in (older, newer):
            if child is not None and child.poll() is None:
                child.send_signal(signal.SIGTERM)
                child.wait(60)
    stderr = _log_of(catalog, tid).read_text()
    said = [line for line in stderr.splitlines() if line.startswith("fenced: ")]
    fault_report(f"the fenced processor said: {said[-1] if said else stderr[-300:]}")
    assert f"transactional producer {tid!r} was fenced" in stderr
    assert "another producer with the same transactional id took over" in stderr
    counts = _values(read_all(bootstrap, sink, timeout=60, config=READ_COMMITTED))
    assert {i: n for i, n in counts.items() if n != 1} == {}
    assert set(counts) == set(range(total))


def test_a_fenced_producer_refuses_everything_naming_its_transactional_id(
    kafka_cluster: KafkaCluster, tmp_path: Path
) -> None:
    """Once a newer producer registered the same id, the older one's transaction fails with
    ProducerFenced, and so does every later send or transaction, naming the id."""
    source, sink = unique_topic("eos-fence"), unique_topic("eos-fence-out")
    catalog = _provision(kafka_cluster, tmp_path, _contracts(source, sink))
    bootstrap = kafka_cluster.bootstrap_servers
    tid = f"fence-{sink}"
    older = GovernedProducer(
        catalog, service="enricher", bootstrap_servers=bootstrap, transactional_id=tid
    )
    with older.transaction():
        older.send(sink, b"1", key=b"k")
    with pytest.raises(ProducerFenced) as fenced, older.transaction():  # noqa: PT012
        older.send(sink, b"2", key=b"k")  # then a newer producer takes the id over
        newer = GovernedProducer(
            catalog, service="enricher", bootstrap_servers=bootstrap, transactional_id=tid
        )
        older.flush(10)
    assert fenced.value.transactional_id == tid
    assert fenced.value.fatal
    with pytest.raises(ProducerFenced, match=tid):
        older.send(sink, b"3", key=b"k")
    with pytest.raises(TransactionError, match=tid), older.transaction():
        pass
    with newer.transaction():
        newer.send(sink, b"4", key=b"k")
    newer.close()
    older.close()
    visible = [m.value() for m in read_all(bootstrap, sink, timeout=60, config=READ_COMMITTED)]
    assert sorted(visible) == [b"1", b"4"]


def test_an_aborted_users_transaction_is_invisible_to_read_committed_readers(
    kafka_cluster: KafkaCluster, tmp_path: Path
) -> None:
    """An exception aborts the with block's transaction: read_committed readers never see
    its records, read_uncommitted ones do."""
    source, sink = unique_topic("eos-user"), unique_topic("eos-user-out")
    catalog = _provision(kafka_cluster, tmp_path, _contracts(source, sink))
    bootstrap = kafka_cluster.bootstrap_servers
    with GovernedProducer(
        catalog, service="enricher", bootstrap_servers=bootstrap, transactional_id=f"u-{sink}"
    ) as producer:
        with pytest.raises(RuntimeError):
            _abort_after(producer, sink, b"0")
        with producer.transaction():
            producer.send(sink, b"1", key=b"k")
    assert [m.value() for m in read_all(bootstrap, sink, config=READ_COMMITTED)] == [b"1"]
    seen = sorted(m.value() for m in read_all(bootstrap, sink, config=READ_UNCOMMITTED))
    assert seen == [b"0", b"1"]


def _abort_after(producer: GovernedProducer, topic: str, value: bytes) -> None:
    with producer.transaction():
        producer.send(topic, value, key=b"k")
        producer.flush(10)
        raise RuntimeError("abort")


def test_a_commit_the_broker_refuses_aborts_and_surfaces_and_the_producer_goes_on(
    kafka_cluster: KafkaCluster, tmp_path: Path, fault_report: Report
) -> None:
    """A record the broker refuses (too large for the topic) fails the commit: the
    transaction is aborted, TransactionError says so and names the record, nothing of it is
    visible, and the producer goes on. (librdkafka resets the partition's sequence only
    after the next transaction to it failed once with OUT_OF_ORDER_SEQUENCE_NUMBER, which
    is aborted too; a raw confluent-kafka producer does the same.)"""
    source, sink = unique_topic("eos-big"), unique_topic("eos-big-out")
    catalog = _provision(kafka_cluster, tmp_path, _contracts(source, sink))
    bootstrap = kafka_cluster.bootstrap_servers
    set_topic_configs(bootstrap, sink, {"max.message.bytes": "1000"})
    with GovernedProducer(
        catalog, service="enricher", bootstrap_servers=bootstrap, transactional_id=f"b-{sink}"
    ) as producer:
        with pytest.raises(TransactionError) as failed, producer.transaction():  # noqa: PT012
            producer.send(sink, b"small", key=b"k")
            producer.send(sink, b"x" * 5000, key=b"k")
        outcomes = []
        for _ in range(2):
            try:
                with producer.transaction():
                    producer.send(sink, b"after", key=b"k")
            except TransactionError as again:
                outcomes.append(f"{again.code} aborted={again.aborted}")
            else:
                outcomes.append("committed")
                break
    fault_report(f"transactions after the refused record: {outcomes}")
    assert outcomes[-1] == "committed"
    assert set(outcomes[:-1]) <= {"OUT_OF_ORDER_SEQUENCE_NUMBER aborted=True"}
    assert failed.value.aborted
    assert not failed.value.fatal
    assert "MSG_SIZE_TOO_LARGE" in {f.code for f in failed.value.failures}
    assert "the transaction was aborted" in str(failed.value)
    assert "the first record not delivered" in str(failed.value)
    assert [m.value() for m in read_all(bootstrap, sink, config=READ_COMMITTED)] == [b"after"]


def test_a_consumer_whose_commits_keep_failing_stops_with_the_abort(
    kafka_cluster: KafkaCluster, tmp_path: Path
) -> None:
    """An output the broker refuses every time: each commit aborts and the batch is read
    again; after MAX_ABORTED_COMMITS in a row run() raises the TransactionError, and the
    group's offsets never moved."""
    source, sink = unique_topic("eos-poison"), unique_topic("eos-poison-out")
    catalog = _provision(kafka_cluster, tmp_path, _contracts(source, sink))
    bootstrap = kafka_cluster.bootstrap_servers
    set_topic_configs(bootstrap, sink, {"max.message.bytes": "1000"})
    _load(catalog, bootstrap, source, 20)
    seen = _Transactions()
    out = GovernedProducer(
        catalog,
        service="enricher",
        bootstrap_servers=bootstrap,
        transactional_id=f"p-{sink}",
        hooks=[seen],
    )

    def handler(record: Record) -> None:
        out.send(sink, record.value * 2000, key=record.key)  # too large for the topic

    consumer = GovernedConsumer(
        catalog,
        service="enricher",
        group_id=f"poison-{source}",
        topics=[source],
        bootstrap_servers=bootstrap,
        commit=CommitStrategy.transactional(out, max_records=10),
        overrides={"session.timeout.ms": 6000},
    )
    try:
        with pytest.raises(TransactionError) as failed:
            consumer.run(handler, timeout=120)
    finally:
        consumer.close()
        out.close()
    assert failed.value.aborted
    assert "MSG_SIZE_TOO_LARGE" in {f.code for f in failed.value.failures}
    assert [a.reason for a in seen.aborts] == ["commit-failed"] * MAX_ABORTED_COMMITS
    assert seen.commits == []
    assert _committed_now(bootstrap, f"poison-{source}", source) == {}


def test_on_revoke_the_open_transaction_commits_before_the_partitions_go(
    kafka_cluster: KafkaCluster, tmp_path: Path
) -> None:
    """A second member joins mid-stream: the first commits its open transaction in the
    revoke (reason "revoke") before its partitions move, and every input has exactly one
    output across both."""
    source, sink = unique_topic("eos-rebal"), unique_topic("eos-rebal-out")
    catalog = _provision(kafka_cluster, tmp_path, _contracts(source, sink))
    bootstrap = kafka_cluster.bootstrap_servers
    total, group = 4_000, f"rebal-{source}"
    _load(catalog, bootstrap, source, total)
    first_seen = _Transactions()
    first_out = GovernedProducer(
        catalog,
        service="enricher",
        bootstrap_servers=bootstrap,
        transactional_id=f"r1-{sink}",
        hooks=[first_seen],
    )

    def first_handler(record: Record) -> None:
        time.sleep(0.002)  # slow enough for the second member to arrive mid-stream
        first_out.send(sink, record.value, key=record.key)

    first = GovernedConsumer(
        catalog,
        service="enricher",
        group_id=group,
        topics=[source],
        bootstrap_servers=bootstrap,
        # One transaction over many polls: the revoke finds it open.
        commit=CommitStrategy.transactional(first_out, max_records=100_000, max_interval_s=30),
        overrides={"session.timeout.ms": 6000},
    )
    second = _processor(bootstrap, catalog, source, sink, group, f"r2-{sink}", 0.0)
    try:
        # The second member joins meanwhile. The first keeps polling until the group has
        # committed everything: a member that stops polling holds up the rebalance, and
        # on a loaded machine the second may only arrive after the first's first run.
        deadline = time.monotonic() + 120
        first.run(first_handler, timeout=20)
        while _committed_total(bootstrap, group, source) < total:
            assert time.monotonic() < deadline, "the group did not commit every input"
            first.run(first_handler, timeout=2)
    finally:
        first.close()
        first_out.close()
        second.send_signal(signal.SIGTERM)
        second.wait(60)
    assert "revoke" in {c.reason for c in first_seen.commits}
    counts = _values(read_all(bootstrap, sink, timeout=60, config=READ_COMMITTED))
    assert {i: n for i, n in counts.items() if n != 1} == {}
    assert set(counts) == set(range(total))


def _once_too_large(
    kafka_cluster: KafkaCluster, tmp_path: Path, name: str, *, flush: bool
) -> tuple[Catalog, str, str, list[int], _Transactions, Any]:
    """40 inputs on one partition through a transactional consumer committing every 10;
    the first output of input 3 is too large for the sink (refused by the broker once),
    its later ones are not. ``flush`` waits for that refusal inside the handler, so that
    the next send finds the transaction already failed."""
    source, sink = unique_topic(name), unique_topic(f"{name}-out")
    catalog = _provision(kafka_cluster, tmp_path, _contracts(source, sink, partitions=1))
    bootstrap = kafka_cluster.bootstrap_servers
    set_topic_configs(bootstrap, sink, {"max.message.bytes": "1000"})
    _load(catalog, bootstrap, source, 40)
    seen = _Transactions()
    out = GovernedProducer(
        catalog,
        service="enricher",
        bootstrap_servers=bootstrap,
        transactional_id=f"t-{sink}",
        hooks=[seen],
    )
    handled: list[int] = []

    def handler(record: Record) -> None:
        value = int(record.value)
        first = value not in handled
        handled.append(value)
        if value == 3 and first:
            out.send(sink, b"x" * 5000, key=record.key)
            if flush:
                out.flush(30)
        else:
            out.send(sink, record.value, key=record.key)

    consumer = GovernedConsumer(
        catalog,
        service="enricher",
        group_id=f"once-{source}",
        topics=[source],
        bootstrap_servers=bootstrap,
        commit=CommitStrategy.transactional(out, max_records=10),
        overrides={"session.timeout.ms": 6000},
    )
    try:
        summary = consumer.run(handler, max_records=40, timeout=120)
    finally:
        consumer.close()
        out.close()
    return catalog, source, sink, handled, seen, summary


def test_a_commit_aborted_mid_batch_ends_the_batch_and_every_output_commits_once(
    kafka_cluster: KafkaCluster, tmp_path: Path
) -> None:
    """A commit that fails after 10 of a polled batch of 40 aborts and rewinds: the other
    30 are not handled in a transaction of their own (that committed their outputs
    without moving the offsets, and the re-read sent them again), but read again. Each
    input's output is committed exactly once and the run counts each input once."""
    _, _, sink, handled, seen, summary = _once_too_large(
        kafka_cluster, tmp_path, "eos-midbatch", flush=False
    )
    bootstrap = kafka_cluster.bootstrap_servers
    outputs = _values(read_all(bootstrap, sink, timeout=30, config=READ_COMMITTED))
    assert outputs == Counter(range(40))
    assert summary.records == 40
    assert {a.reason for a in seen.aborts} == {"commit-failed"}
    assert handled[:10] == list(range(10))  # the first transaction, aborted at its commit
    assert handled[10:20] == list(range(10))  # read again at once, not 10 to 19


def test_a_send_refused_because_the_transaction_lost_a_record_does_not_blame_its_record(
    kafka_cluster: KafkaCluster, tmp_path: Path
) -> None:
    """Once the broker refused an output of input 3, librdkafka refuses every later send
    of that transaction (``_STATE``), here input 4's. That is the transaction's failure,
    not input 4's: it is aborted as a failed commit, input 4 gets no attempt counted and
    is not dead-lettered, and every output is committed exactly once."""
    _, source, sink, _, seen, summary = _once_too_large(
        kafka_cluster, tmp_path, "eos-blame", flush=True
    )
    bootstrap = kafka_cluster.bootstrap_servers
    outputs = _values(read_all(bootstrap, sink, timeout=30, config=READ_COMMITTED))
    assert outputs == Counter(range(40))
    assert read_all(bootstrap, f"{source}.dlq", timeout=5, config=READ_COMMITTED) == []
    assert (summary.records, summary.retries, summary.dead_lettered) == (40, 0, 0)
    assert [a.reason for a in seen.aborts][:1] == ["commit-failed"]
    assert {a.reason for a in seen.aborts} == {"commit-failed"}
