"""GovernedConsumer against a real broker: commits, dead letters, backpressure, lag."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from conftest import Broker, CatalogFactory, on_apache_kafka
from governed_kafka import (
    Catalog,
    CommitStrategy,
    GovernanceViolation,
    GovernedConsumer,
    GovernedProducer,
    Record,
    RetryPolicy,
    hooks,
    profiles,
)
from governed_kafka import _consumer_base as consumer_module
from governed_kafka.testing import LocalBroker
from kafka_helpers import create_topics, read_all, write_catalog

FAST = {"session.timeout.ms": 6000}


def _contracts(topic: str, *, partitions: int = 3, dlq: bool = True) -> str:
    text = f"""
    [[topics]]
    name = "{topic}"
    owner = "team-test"
    partitions = {partitions}
    replication_factor = 1
    retention_ms = 3600000
    producers = ["checkout"]
    consumers = ["billing"]
    """
    if dlq:
        text += f"""
    dead_letter_topic = "{topic}.dlq"

    [[topics]]
    name = "{topic}.dlq"
    owner = "team-test"
    partitions = 1
    replication_factor = 1
    retention_ms = 3600000
    producers = ["billing"]
    consumers = ["ops"]
    """
    return text


def _produce(catalog: Catalog, bootstrap: str, topic: str, count: int, *, start: int = 0) -> None:
    with GovernedProducer(catalog, service="checkout", bootstrap_servers=bootstrap) as producer:
        for i in range(start, start + count):
            producer.send(topic, str(i).encode(), key=f"k{i % 13}")


def _committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    """The group's committed offsets, read with a raw client outside the group."""
    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "log_level": 0})
    try:
        tps = reader.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
    finally:
        reader.close()
    return {tp.partition: tp.offset for tp in tps if tp.offset >= 0}


class Recorder(hooks.Hook):
    """Collects every event it sees, with the time it saw it."""

    def __init__(self) -> None:
        self.events: list[tuple[str, float, Any]] = []
        self.lock = threading.Lock()

    def _add(self, name: str, details: Any) -> None:
        with self.lock:
            self.events.append((name, time.monotonic(), details))

    def of(self, name: str) -> list[Any]:
        with self.lock:
            return [d for n, _, d in self.events if n == name]

    def timed(self, name: str) -> list[tuple[float, Any]]:
        with self.lock:
            return [(t, d) for n, t, d in self.events if n == name]

    def on_commit(self, details: hooks.CommitDetails) -> None:
        self._add("commit", details)

    def on_rebalance(self, details: hooks.RebalanceDetails) -> None:
        self._add("rebalance", details)

    def on_backpressure(self, details: hooks.BackpressureDetails) -> None:
        self._add("backpressure", details)

    def on_dead_letter(self, details: hooks.DeadLetterDetails) -> None:
        self._add("dead_letter", details)

    def on_retry(self, details: hooks.RetryDetails) -> None:
        self._add("retry", details)

    def on_slow_handler(self, details: hooks.SlowHandlerDetails) -> None:
        self._add("slow", details)


@pytest.fixture
def group(topic_name: str) -> str:
    return f"group-{topic_name}"


def fast(group_protocol: str = "classic") -> dict[str, Any]:
    """Overrides that make group joins quick under ``group_protocol``.

    Under KIP-848's protocol the broker owns the session timeout (the test cluster sets
    it low), so there is nothing to override.
    """
    return dict(FAST) if group_protocol == "classic" else {}


def _consumer(
    catalog: Catalog,
    bootstrap: str,
    topic: str,
    group: str,
    *,
    group_protocol: str = "classic",
    **kwargs: Any,
) -> GovernedConsumer:
    overrides = {**fast(group_protocol), **kwargs.pop("overrides", {})}
    return GovernedConsumer(
        catalog,
        service="billing",
        group_id=group,
        topics=[topic],
        bootstrap_servers=bootstrap,
        overrides=overrides,
        group_protocol=group_protocol,  # type: ignore[arg-type]
        **kwargs,
    )


def test_run_processes_every_record_and_commits_the_end(
    kafka_broker: Broker,
    provisioned: CatalogFactory,
    topic_name: str,
    group: str,
    group_protocol: str,
) -> None:
    """run() hands every record to the handler once and commits each partition's end."""
    catalog = provisioned(_contracts(topic_name))
    bootstrap = kafka_broker.bootstrap_servers
    _produce(catalog, bootstrap, topic_name, 600)
    seen: list[bytes] = []
    with _consumer(
        catalog, bootstrap, topic_name, group, group_protocol=group_protocol
    ) as consumer:
        summary = consumer.run(lambda r: seen.append(r.value), max_records=600, timeout=60)
    assert summary.records == 600
    assert sorted(int(v) for v in seen) == list(range(600))
    per_partition: dict[int, int] = {}
    for record in read_all(bootstrap, topic_name):
        per_partition[record.partition()] = record.offset() + 1
    assert _committed(bootstrap, group, topic_name, 3) == per_partition


def test_records_keep_their_key_headers_and_timestamp(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str, group: str
) -> None:
    """A consumed Record carries the key, headers, timestamp and raw bytes that were sent."""
    catalog = provisioned(_contracts(topic_name, partitions=1))
    bootstrap = kafka_broker.bootstrap_servers
    with GovernedProducer(catalog, service="checkout", bootstrap_servers=bootstrap) as producer:
        sent = producer.send_and_wait(topic_name, b"payload", key=b"k1", headers={"h": b"v"})
    with _consumer(catalog, bootstrap, topic_name, group) as consumer:
        records: list[Record] = []
        consumer.run(records.append, max_records=1, timeout=30)
    (record,) = records
    assert (record.topic, record.partition, record.offset) == (topic_name, 0, 0)
    assert (record.key, record.value, record.raw_value) == (b"k1", b"payload", b"payload")
    assert record.headers == (("h", b"v"),)
    assert record.header("h") == b"v"
    assert record.timestamp == sent.timestamp


def test_out_of_order_processing_commits_only_the_processed_prefix(
    kafka_broker: Broker,
    provisioned: CatalogFactory,
    topic_name: str,
    group: str,
    group_protocol: str,
) -> None:
    """With records finished out of order, the commit stops at the first unprocessed one."""
    catalog = provisioned(_contracts(topic_name, partitions=1))
    bootstrap = kafka_broker.bootstrap_servers
    _produce(catalog, bootstrap, topic_name, 10)
    with _consumer(
        catalog,
        bootstrap,
        topic_name,
        group,
        group_protocol=group_protocol,
        commit=CommitStrategy.manual(),
    ) as consumer:
        records: list[Record] = []
        deadline = time.monotonic() + 30
        while len(records) < 10 and time.monotonic() < deadline:
            records += consumer.poll_batch(max_records=10, timeout=0.5)
        by_offset = {r.offset: r for r in records}
        for offset in (0, 1, 2, 5, 6, 9):
            consumer.mark_processed(by_offset[offset])
        consumer.commit()
        assert _committed(bootstrap, group, topic_name, 1) == {0: 3}
        for offset in (3, 4):
            consumer.mark_processed(by_offset[offset])
        consumer.commit()
        assert _committed(bootstrap, group, topic_name, 1) == {0: 7}
        assert consumer.in_flight == 2


def test_per_record_strategy_commits_after_each_record(
    kafka_broker: Broker,
    provisioned: CatalogFactory,
    topic_name: str,
    group: str,
    group_protocol: str,
) -> None:
    """per_record commits synchronously once per processed record."""
    catalog = provisioned(_contracts(topic_name, partitions=1))
    bootstrap = kafka_broker.bootstrap_servers
    _produce(catalog, bootstrap, topic_name, 20)
    recorder = Recorder()
    committed_during: list[dict[int, int]] = []

    def handler(record: Record) -> None:
        if record.offset == 10:
            committed_during.append(_committed(bootstrap, group, topic_name, 1))

    with _consumer(
        catalog,
        bootstrap,
        topic_name,
        group,
        group_protocol=group_protocol,
        commit=CommitStrategy.per_record(),
        hooks=[recorder],
    ) as consumer:
        consumer.run(handler, max_records=20, timeout=30)
    routine = [c for c in recorder.of("commit") if c.reason == "routine"]
    assert [c.offsets for c in routine] == [((topic_name, 0, n),) for n in range(1, 21)]
    assert all(c.synchronous and c.error is None for c in routine)
    assert committed_during == [{0: 10}]  # while record 10 runs, 0..9 are committed


def test_manual_strategy_commits_only_when_asked_and_on_close(
    kafka_broker: Broker,
    provisioned: CatalogFactory,
    topic_name: str,
    group: str,
    group_protocol: str,
) -> None:
    """manual never commits by itself; close() still commits what was processed."""
    catalog = provisioned(_contracts(topic_name, partitions=1))
    bootstrap = kafka_broker.bootstrap_servers
    _produce(catalog, bootstrap, topic_name, 30)
    consumer = _consumer(
        catalog,
        bootstrap,
        topic_name,
        group,
        group_protocol=group_protocol,
        commit=CommitStrategy.manual(),
    )
    records: list[Record] = []
    deadline = time.monotonic() + 30
    while len(records) < 30 and time.monotonic() < deadline:
        records += consumer.poll_batch(max_records=30, timeout=0.5)
    for record in records[:12]:
        consumer.mark_processed(record)
    assert _committed(bootstrap, group, topic_name, 1) == {}
    consumer.close()
    assert _committed(bootstrap, group, topic_name, 1) == {0: 12}


def test_failing_handler_is_retried_then_dead_lettered_with_headers(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str, group: str
) -> None:
    """A record whose handler always fails goes to the DLQ with its story; later records run."""
    catalog = provisioned(_contracts(topic_name, partitions=1))
    bootstrap = kafka_broker.bootstrap_servers
    _produce(catalog, bootstrap, topic_name, 10)
    recorder = Recorder()
    handled: list[bytes] = []

    def handler(record: Record) -> None:
        if record.value == b"4":
            raise ValueError("cannot bill order 4")
        handled.append(record.value)

    with _consumer(
        catalog,
        bootstrap,
        topic_name,
        group,
        retry=RetryPolicy(attempts=3, initial_backoff_s=0.01, jitter_s=0),
        hooks=[recorder],
    ) as consumer:
        summary = consumer.run(handler, max_records=10, timeout=60)
    assert summary.dead_lettered == 1
    assert summary.retries == 2
    assert handled == [str(i).encode() for i in range(10) if i != 4]
    (letter,) = read_all(bootstrap, f"{topic_name}.dlq")
    headers = dict(letter.headers() or [])
    assert letter.value() == b"4"
    assert letter.key() == b"k4"
    assert headers["dlq.error.type"] == b"builtins.ValueError"
    assert headers["dlq.error.message"] == b"cannot bill order 4"
    assert headers["dlq.original.topic"] == topic_name.encode()
    assert headers["dlq.original.partition"] == b"0"
    assert headers["dlq.original.offset"] == b"4"
    assert int(headers["dlq.original.timestamp"]) > 0
    assert headers["dlq.attempts"] == b"3"
    assert headers["dlq.consumer.group"] == group.encode()
    assert [r.attempt for r in recorder.of("retry")] == [1, 2]
    (dead,) = recorder.of("dead_letter")
    assert (dead.offset, dead.dead_letter_topic, dead.attempts) == (4, f"{topic_name}.dlq", 3)
    assert _committed(bootstrap, group, topic_name, 1) == {0: 10}


def test_without_a_dead_letter_topic_the_consumer_stops_instead_of_skipping(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str, group: str
) -> None:
    """A poison record on a topic without DLQ stops run(); its offset stays uncommitted."""
    catalog = provisioned(_contracts(topic_name, partitions=1, dlq=False))
    bootstrap = kafka_broker.bootstrap_servers
    _produce(catalog, bootstrap, topic_name, 10)

    def handler(record: Record) -> None:
        if record.value == b"6":
            raise ValueError("poison")

    with (
        _consumer(catalog, bootstrap, topic_name, group, retry=RetryPolicy.never()) as consumer,
        pytest.raises(GovernanceViolation, match="no dead_letter_topic") as stopped,
    ):
        consumer.run(handler, max_records=10, timeout=60)
    assert stopped.value.rule == "dead-letter.missing"
    assert "@6" in str(stopped.value)
    assert isinstance(stopped.value.__cause__, ValueError)
    assert _committed(bootstrap, group, topic_name, 1) == {0: 6}


def test_unlisted_service_cannot_consume(provisioned: CatalogFactory, topic_name: str) -> None:
    """A service that is not a listed consumer is refused at construction."""
    catalog = provisioned(_contracts(topic_name), create=False)
    with pytest.raises(GovernanceViolation) as refused:
        GovernedConsumer(
            catalog,
            service="analytics",
            group_id="g",
            topics=[topic_name],
            bootstrap_servers="127.0.0.1:1",
        )
    assert refused.value.rule == "consumer.not-listed"
    assert refused.value.topic == topic_name


def test_consumer_that_cannot_write_its_dead_letters_is_refused(
    provisioned: CatalogFactory, topic_name: str
) -> None:
    """A consumer whose DLQ contract does not list it as producer is refused up front."""
    text = _contracts(topic_name).replace('producers = ["billing"]', 'producers = ["ops"]')
    catalog = provisioned(text, create=False)
    with pytest.raises(GovernanceViolation) as refused:
        GovernedConsumer(
            catalog,
            service="billing",
            group_id="g",
            topics=[topic_name],
            bootstrap_servers="127.0.0.1:1",
        )
    assert refused.value.rule == "dead-letter.not-producer"


def test_slow_processing_pauses_and_resumes_intake(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str, group: str
) -> None:
    """Above max_in_flight unprocessed records partitions pause; below the low mark they resume."""
    catalog = provisioned(_contracts(topic_name, partitions=2))
    bootstrap = kafka_broker.bootstrap_servers
    _produce(catalog, bootstrap, topic_name, 400)
    recorder = Recorder()
    with _consumer(
        catalog,
        bootstrap,
        topic_name,
        group,
        max_in_flight=50,
        resume_below=10,
        hooks=[recorder],
    ) as consumer:
        held: list[Record] = []
        deadline = time.monotonic() + 30
        while not consumer.paused and time.monotonic() < deadline:
            held += consumer.poll_batch(max_records=100, timeout=0.5)
        assert consumer.paused
        assert consumer.in_flight == len(held) > 50
        # While paused, polling brings nothing new.
        for _ in range(4):
            assert consumer.poll_batch(max_records=100, timeout=0.25) == []
        for record in held[: len(held) - 10]:
            consumer.mark_processed(record)
        assert not consumer.paused
        consumer.mark_processed(held[-1])
        rest = held[-10:-1]
        for record in rest:
            consumer.mark_processed(record)
        more: list[Record] = []
        while len(held) + len(more) < 400 and time.monotonic() < deadline:
            batch = consumer.poll_batch(max_records=40, timeout=0.5)
            for record in batch:
                consumer.mark_processed(record)
            more += batch
    kinds = [b.kind for b in recorder.of("backpressure")]
    assert kinds[:2] == ["pause", "resume"]
    values = sorted(int(r.value) for r in held + more)
    assert values == list(range(400))


def test_a_handler_near_max_poll_interval_is_reported(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str, group: str
) -> None:
    """A handler that blocks for most of max.poll.interval.ms fires the slow-handler hook."""
    catalog = provisioned(_contracts(topic_name, partitions=1))
    bootstrap = kafka_broker.bootstrap_servers
    _produce(catalog, bootstrap, topic_name, 2)
    recorder = Recorder()

    def handler(record: Record) -> None:
        if record.offset == 0:
            time.sleep(5.5)

    with _consumer(
        catalog,
        bootstrap,
        topic_name,
        group,
        overrides={"max.poll.interval.ms": 6500},
        hooks=[recorder],
        retry=RetryPolicy(attempts=1),
    ) as consumer:
        consumer.run(handler, max_records=2, timeout=60)
    (slow,) = recorder.of("slow")
    assert slow.record is not None
    assert slow.record.offset == 0
    assert slow.max_poll_interval_s == 6.5
    assert 5.2 <= slow.elapsed_s < 6.5


def test_retry_policy_that_outlasts_max_poll_interval_is_refused(
    provisioned: CatalogFactory, topic_name: str
) -> None:
    """A retry policy whose waits approach max.poll.interval.ms is refused at construction."""
    from governed_kafka import ConfigError

    catalog = provisioned(_contracts(topic_name), create=False)
    with pytest.raises(ConfigError, match=r"max\.poll\.interval\.ms") as refused:
        GovernedConsumer(
            catalog,
            service="billing",
            group_id="g",
            topics=[topic_name],
            bootstrap_servers="127.0.0.1:1",
            retry=RetryPolicy(attempts=10, initial_backoff_s=10, max_backoff_s=60),
        )
    assert refused.value.key == "max.poll.interval.ms"


def test_lag_report_matches_offsets_checked_independently(
    kafka_broker: Broker, provisioned: CatalogFactory, topic_name: str, group: str
) -> None:
    """lag() agrees with the broker's committed offsets and the records written."""
    catalog = provisioned(_contracts(topic_name, partitions=1))
    bootstrap = kafka_broker.bootstrap_servers
    with GovernedProducer(
        catalog, service="checkout", bootstrap_servers=bootstrap, profile=profiles.DURABLE
    ) as producer:
        if on_apache_kafka(kafka_broker):
            # Real ListOffsets: the records go in multi-record batches.
            for i in range(30):
                producer.send(topic_name, str(i).encode(), key=b"k")
            assert producer.flush(10) == 0
        else:
            # One record per request: the embedded broker's ListOffsets is only right so.
            for i in range(30):
                producer.send_and_wait(topic_name, str(i).encode(), key=b"k")
    end = len(read_all(bootstrap, topic_name))
    with _consumer(
        catalog, bootstrap, topic_name, group, commit=CommitStrategy.manual()
    ) as consumer:
        records: list[Record] = []
        deadline = time.monotonic() + 30
        while len(records) < 30 and time.monotonic() < deadline:
            records += consumer.poll_batch(max_records=30, timeout=0.5)
        for record in records[:12]:
            consumer.mark_processed(record)
        consumer.commit()
        for record in records[12:20]:
            consumer.mark_processed(record)
        report = consumer.lag()
        committed = _committed(bootstrap, group, topic_name, 1)[0]
    entry = report.partition(topic_name, 0)
    assert (entry.high_watermark, entry.committed, entry.processed) == (end, committed, 20)
    assert committed == 12
    assert (entry.commit_lag, entry.processing_lag, entry.replay_exposure) == (18, 10, 8)


def test_stop_from_another_thread_finishes_the_record_commits_and_leaves(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str, group: str
) -> None:
    """stop() lets the current record finish, commits what was processed and closes."""
    catalog = provisioned(_contracts(topic_name, partitions=1))
    bootstrap = kafka_broker.bootstrap_servers
    _produce(catalog, bootstrap, topic_name, 200)
    consumer = _consumer(catalog, bootstrap, topic_name, group)
    finished: list[int] = []

    def handler(record: Record) -> None:
        if record.offset == 50:
            threading.Thread(target=consumer.stop).start()
            time.sleep(0.3)  # stop() arrives mid-record; the record must still complete
        finished.append(record.offset)

    summary = consumer.run(handler, timeout=60)
    assert finished == list(range(51))
    assert summary.records == 51
    assert _committed(bootstrap, group, topic_name, 1) == {0: 51}
    with pytest.raises(Exception, match="closed"):
        consumer.poll_batch()


def test_run_resumes_where_the_previous_run_stopped(
    kafka_broker: Broker,
    provisioned: CatalogFactory,
    topic_name: str,
    group: str,
    group_protocol: str,
) -> None:
    """Records fetched but not handled when a run ends are handled by the next run, once."""
    catalog = provisioned(_contracts(topic_name, partitions=1))
    bootstrap = kafka_broker.bootstrap_servers
    _produce(catalog, bootstrap, topic_name, 100)
    seen: list[int] = []
    with _consumer(
        catalog, bootstrap, topic_name, group, group_protocol=group_protocol
    ) as consumer:
        first = consumer.run(lambda r: seen.append(r.offset), max_records=30, timeout=60)
        second = consumer.run(lambda r: seen.append(r.offset), max_records=70, timeout=60)
    assert (first.records, second.records) == (30, 70)
    assert seen == list(range(100))


def test_batch_handler_isolates_the_poison_record(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str, group: str
) -> None:
    """A failing batch is retried, then split so only the record failing alone is dead-lettered."""
    catalog = provisioned(_contracts(topic_name, partitions=1))
    bootstrap = kafka_broker.bootstrap_servers
    _produce(catalog, bootstrap, topic_name, 20)
    handled: list[bytes] = []

    def handler(batch: list[Record]) -> None:
        if any(r.value == b"7" for r in batch):
            raise ValueError("batch contains order 7")
        handled.extend(r.value for r in batch)

    with _consumer(
        catalog,
        bootstrap,
        topic_name,
        group,
        retry=RetryPolicy(attempts=2, initial_backoff_s=0, jitter_s=0),
    ) as consumer:
        summary = consumer.run_batches(handler, max_batch=20, max_records=20, timeout=60)
    assert summary.records == 20
    assert summary.dead_lettered == 1
    assert sorted(handled) == sorted(str(i).encode() for i in range(20) if i != 7)
    assert [m.value() for m in read_all(bootstrap, f"{topic_name}.dlq")] == [b"7"]
    assert _committed(bootstrap, group, topic_name, 1) == {0: 20}


def test_rebalance_mid_stream_commits_on_revoke_and_never_past_a_gap(
    kafka_broker: Broker,
    provisioned: CatalogFactory,
    topic_name: str,
    group: str,
    group_protocol: str,
) -> None:
    """A member joins and leaves mid-stream: all processed, commits on revoke, none past a gap."""
    catalog = provisioned(_contracts(topic_name, partitions=4))
    bootstrap = kafka_broker.bootstrap_servers
    total = 3000
    _produce(catalog, bootstrap, topic_name, 1000)
    filled = {m.partition() for m in read_all(bootstrap, topic_name)}
    processed: dict[tuple[int, int], int] = {}
    lock = threading.Lock()
    violations: list[str] = []

    class GapCheck(Recorder):
        def on_commit(self, details: hooks.CommitDetails) -> None:
            super().on_commit(details)
            with lock:
                for _, partition, offset in details.offsets:
                    missing = [o for o in range(offset) if (partition, o) not in processed]
                    if missing:
                        violations.append(f"commit {partition}@{offset} before {missing[:5]}")

    def handler(record: Record) -> None:
        time.sleep(0.002)
        with lock:
            key = (record.partition, record.offset)
            processed[key] = processed.get(key, 0) + 1

    strategy = CommitStrategy.batched(max_records=50, max_interval_s=1.0)
    first_hooks, second_hooks = GapCheck(), GapCheck()
    # The first member never commits on its own: whatever it commits, it commits on revoke
    # (or close), which is what this test watches for.
    first = _consumer(
        catalog,
        bootstrap,
        topic_name,
        group,
        group_protocol=group_protocol,
        hooks=[first_hooks],
        commit=CommitStrategy.manual(),
    )
    stop_first = threading.Event()

    def run_first() -> None:
        while not stop_first.is_set():
            first.run(handler, timeout=0.5)

    runner = threading.Thread(target=run_first)
    runner.start()
    second_done = 0
    try:
        deadline = time.monotonic() + 90
        # Whichever partitions the group moves, the first member has processed some of
        # each that holds records, so it has something to commit on revoke.
        while (len(processed) < 300 or {p for p, _ in processed} < filled) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.05)
        second = _consumer(
            catalog,
            bootstrap,
            topic_name,
            group,
            group_protocol=group_protocol,
            hooks=[second_hooks],
            commit=strategy,
        )
        while not second.assignment and time.monotonic() < deadline:
            second_done += second.run(handler, timeout=0.5).records
        # The second member holds partitions now: the rest of the stream is shared.
        _produce(catalog, bootstrap, topic_name, total - 1000, start=1000)
        while second_done < 200 and time.monotonic() < deadline:
            second_done += second.run(handler, timeout=0.5).records
        second.close()  # leaves the group: its partitions go back to the first member
        while len(processed) < total and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop_first.set()
        runner.join()
        first.close()
    assert len(processed) == total, f"{total - len(processed)} records never processed"
    assert violations == []
    revoke_commits = [c for c in first_hooks.of("commit") if c.reason == "revoke"]
    assert revoke_commits, "the first member committed nothing when partitions were revoked"
    assert second_done >= 200
    assert any(r.kind == "revoke" for r in first_hooks.of("rebalance"))
    committed = _committed(bootstrap, group, topic_name, 4)
    ends: dict[int, int] = {}
    for partition, offset in processed:
        ends[partition] = max(ends.get(partition, 0), offset + 1)
    assert committed == ends


@pytest.mark.slow
def test_close_gives_up_leaving_the_group_after_the_close_timeout(
    tmp_path: Path,
    topic_name: str,
    group: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """librdkafka's close has no timeout of its own; close() stops waiting for it after
    CLOSE_TIMEOUT_S, says so, and what was processed is committed all the same."""
    policy = "[policy]\nmin_replication_factor = 1\nmin_insync_replicas = 1\n"
    catalog = Catalog.load(write_catalog(tmp_path, policy + _contracts(topic_name, dlq=False)))
    with LocalBroker() as broker:
        bootstrap = broker.bootstrap_servers
        create_topics(bootstrap, [(topic_name, 3, {})])
        _produce(catalog, bootstrap, topic_name, 30)
        consumer = _consumer(
            catalog, bootstrap, topic_name, group, commit=CommitStrategy.per_record()
        )
        summary = consumer.run(lambda _record: None, max_records=30, timeout=60)
        assert summary.records == 30
        monkeypatch.setattr(consumer_module, "CLOSE_TIMEOUT_S", 0.5)
        broker.pause()  # the group cannot be left: librdkafka's close waits for the broker
        try:
            with caplog.at_level(logging.ERROR, logger="governed_kafka.consumer"):
                consumer.close()
            stuck = [t for t in threading.enumerate() if t.name == f"governed-kafka-close[{group}]"]
            assert stuck, "close() returned because librdkafka's close finished, not the timeout"
            assert f"group {group!r}: the client did not leave the group" in caplog.text
        finally:
            broker.resume()
        for thread in stuck:
            thread.join(60)
        assert sum(_committed(bootstrap, group, topic_name, 3).values()) == 30
