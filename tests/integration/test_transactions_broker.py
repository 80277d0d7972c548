"""Transactions against a real broker: what both brokers show, and the embedded one's limit.

Each test taking ``kafka_broker`` runs on the embedded broker and on Apache Kafka. The
embedded broker (Tansu 0.6) hides open transactions and commits transactional offsets,
but answers every fetch with an empty list of aborted transactions, so its
``read_committed`` readers see aborted records: what needs that (outputs exactly once
after aborts) is proven on Apache Kafka only, in ``test_exactly_once.py``.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from conftest import Broker, CatalogFactory
from governed_kafka import (
    Catalog,
    CommitStrategy,
    ConfigError,
    GovernanceViolation,
    GovernedConsumer,
    GovernedProducer,
    Record,
    RetryPolicy,
    hooks,
)
from governed_kafka.aio import AsyncGovernedConsumer, AsyncGovernedProducer
from governed_kafka.testing import LocalBroker
from kafka_helpers import create_topics, read_all, write_catalog

READ_COMMITTED = {"isolation.level": "read_committed"}
READ_UNCOMMITTED = {"isolation.level": "read_uncommitted"}
FAST = {"session.timeout.ms": 6000}


def _contracts(topic: str) -> str:
    return f"""
        [[topics]]
        name = "{topic}"
        partitions = 3
        replication_factor = 1
        key = "required"
        producers = ["loader"]
        consumers = ["enricher"]
        dead_letter_topic = "{topic}.dlq"

        [[topics]]
        name = "{topic}.dlq"
        partitions = 1
        replication_factor = 1
        producers = ["enricher"]
        consumers = ["ops"]

        [[topics]]
        name = "{topic}.out"
        partitions = 3
        replication_factor = 1
        key = "required"
        exactly_once = true
        producers = ["enricher"]
        consumers = ["auditor"]
        """


class _Seen(hooks.Hook):
    """Every transaction event and consumer commit, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def on_transaction_begin(self, details: hooks.TransactionBeginDetails) -> None:
        self.events.append(("begin", details))

    def on_transaction_commit(self, details: hooks.TransactionCommitDetails) -> None:
        self.events.append(("commit", details))

    def on_transaction_abort(self, details: hooks.TransactionAbortDetails) -> None:
        self.events.append(("abort", details))

    def on_commit(self, details: hooks.CommitDetails) -> None:
        self.events.append(("offsets", details))

    def of(self, kind: str) -> list[Any]:
        return [d for k, d in self.events if k == kind]


def _out(catalog: Catalog, broker: Broker, tid: str, seen: _Seen | None = None) -> GovernedProducer:
    return GovernedProducer(
        catalog,
        service="enricher",
        bootstrap_servers=broker.bootstrap_servers,
        transactional_id=tid,
        hooks=[seen] if seen else [],
    )


def _load(catalog: Catalog, broker: Broker, topic: str, total: int) -> None:
    with GovernedProducer(
        catalog, service="loader", bootstrap_servers=broker.bootstrap_servers
    ) as producer:
        for i in range(total):
            producer.send(topic, str(i).encode(), key=f"k{i % 17}")


def _on_tansu(broker: LocalBroker, tmp_path: Any, topic: str) -> Catalog:
    """The contracts of ``topic`` on the embedded broker, their topics created."""
    policy = "[policy]\nmin_replication_factor = 1\nmin_insync_replicas = 1\n"
    catalog = Catalog.load(write_catalog(tmp_path, policy + _contracts(topic)))
    create_topics(broker.bootstrap_servers, [(c.name, c.partitions, {}) for c in catalog])
    return catalog


def _committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    reader = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "log_level": 0, **READ_UNCOMMITTED}
    )
    try:
        found = reader.committed([TopicPartition(topic, p) for p in range(3)], timeout=10)
    finally:
        reader.close()
    return {tp.partition: tp.offset for tp in found if tp.offset >= 0}


def _ends(bootstrap: str, topic: str) -> dict[int, int]:
    ends: dict[int, int] = {}
    for message in read_all(bootstrap, topic, config=READ_UNCOMMITTED):
        ends[message.partition()] = max(ends.get(message.partition(), 0), message.offset() + 1)
    return ends


def _failing_block(producer: GovernedProducer, topic: str, value: bytes, error: Exception) -> None:
    """A transaction that sends ``value``, waits for its delivery, then raises ``error``."""
    with producer.transaction():
        producer.send(topic, value, key=b"k")
        producer.flush(10)
        raise error


async def _failing_async_block(
    producer: AsyncGovernedProducer, topic: str, value: bytes, error: Exception
) -> None:
    async with producer.transaction():
        await producer.send(topic, value, key=b"k")
        raise error


def _values(bootstrap: str, topic: str) -> Counter[int]:
    return Counter(int(m.value()) for m in read_all(bootstrap, topic, config=READ_COMMITTED))


# ---------------------------------------------------------------- the producer


def test_a_transactions_records_are_visible_only_once_it_commits(
    kafka_broker: Broker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """Inside the block a read_committed reader sees none of its records; after it, all."""
    catalog = provisioned(_contracts(topic_name))
    bootstrap, out = kafka_broker.bootstrap_servers, f"{topic_name}.out"
    seen = _Seen()
    with _out(catalog, kafka_broker, f"tx-{topic_name}", seen) as producer:
        with producer.transaction():
            futures = [producer.send(out, str(i).encode(), key=b"k") for i in range(10)]
            assert producer.flush(10) == 0
            assert all(f.result(10).offset is not None for f in futures)  # on the broker ...
            assert read_all(bootstrap, out, config=READ_COMMITTED) == []  # ... not yet visible
        assert sorted(_values(bootstrap, out)) == list(range(10))
    assert [kind for kind, _ in seen.events] == ["begin", "commit"]
    commit = seen.of("commit")[0]
    assert (commit.records, commit.reason, commit.offsets) == (10, "user", ())
    assert commit.transactional_id == f"tx-{topic_name}"


def test_a_send_outside_a_transaction_is_refused_and_nothing_is_written(
    kafka_broker: Broker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """A transactional producer refuses a send with no transaction open (transaction.required)."""
    catalog = provisioned(_contracts(topic_name))
    out = f"{topic_name}.out"
    with _out(catalog, kafka_broker, f"tx-{topic_name}") as producer:
        with pytest.raises(GovernanceViolation, match="no transaction is open") as refused:
            producer.send(out, b"1", key=b"k")
        assert refused.value.rule == "transaction.required"
        assert refused.value.topic == out
        with producer.transaction():
            producer.send(out, b"2", key=b"k")
    assert [m.value() for m in read_all(kafka_broker.bootstrap_servers, out)] == [b"2"]


def test_an_exception_in_the_block_aborts_the_transaction_and_is_re_raised(
    kafka_broker: Broker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """The block's own exception comes out after the abort; the next transaction runs."""
    catalog = provisioned(_contracts(topic_name))
    out = f"{topic_name}.out"
    seen = _Seen()
    with _out(catalog, kafka_broker, f"tx-{topic_name}", seen) as producer:
        with pytest.raises(KeyError, match="no such order"):
            _failing_block(producer, out, b"1", KeyError("no such order"))
        with producer.transaction():
            producer.send(out, b"2", key=b"k")
    [abort] = seen.of("abort")
    assert (abort.reason, abort.records, abort.sequence) == ("user", 1, 1)
    assert isinstance(abort.error, KeyError)
    assert [d.sequence for d in seen.of("commit")] == [2]


def test_closing_with_a_transaction_open_aborts_it(
    kafka_broker: Broker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """close() never commits a transaction nobody committed: it aborts it."""
    catalog = provisioned(_contracts(topic_name))
    seen = _Seen()
    producer = _out(catalog, kafka_broker, f"tx-{topic_name}", seen)
    block = producer.transaction()
    block.__enter__()
    producer.send(f"{topic_name}.out", b"1", key=b"k")
    producer.close()
    assert [(kind, d.reason) for kind, d in seen.events if kind != "begin"] == [("abort", "close")]


def test_the_embedded_broker_shows_aborted_records_to_read_committed_readers(
    tansu_broker: LocalBroker, tmp_path: Any, topic_name: str
) -> None:
    """The embedded broker's known limit (docs/testing.md): an aborted transaction's records
    reach read_committed readers there. Apache Kafka hides them (test_exactly_once.py)."""
    catalog = _on_tansu(tansu_broker, tmp_path, topic_name)
    out = f"{topic_name}.out"
    with (
        _out(catalog, tansu_broker, f"tx-{topic_name}") as producer,
        pytest.raises(RuntimeError, match="abort it"),
    ):
        _failing_block(producer, out, b"aborted", RuntimeError("abort it"))
    assert [m.value() for m in read_all(tansu_broker.bootstrap_servers, out)] == [b"aborted"]


# ---------------------------------------------------------------- the consumer


def _consumer(catalog: Catalog, broker: Broker, topic: str, out: GovernedProducer, **kw: Any):
    return GovernedConsumer(
        catalog,
        service="enricher",
        group_id=f"g-{topic}",
        topics=[topic],
        bootstrap_servers=broker.bootstrap_servers,
        commit=CommitStrategy.transactional(out, max_records=50),
        retry=RetryPolicy(attempts=3, initial_backoff_s=0.01, jitter_s=0.0),
        overrides=FAST,
        **kw,
    )


def test_a_transactional_consumer_commits_its_offsets_with_its_outputs(
    kafka_broker: Broker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """Without failures every input has one output, the committed offsets are the input's
    end, and each transaction carried the group's offsets (the consumer's commit hooks
    see the same offsets)."""
    catalog = provisioned(_contracts(topic_name))
    bootstrap, out_topic, total = kafka_broker.bootstrap_servers, f"{topic_name}.out", 400
    _load(catalog, kafka_broker, topic_name, total)
    seen = _Seen()
    with _out(catalog, kafka_broker, f"tx-{topic_name}", seen) as out:

        def handler(record: Record) -> None:
            out.send(out_topic, record.value, key=record.key)

        with _consumer(catalog, kafka_broker, topic_name, out, hooks=[seen]) as consumer:
            summary = consumer.run(handler, max_records=total, timeout=60)
    assert summary.records == total
    assert _values(bootstrap, out_topic) == Counter(range(total))
    assert _committed(bootstrap, f"g-{topic_name}", topic_name) == _ends(bootstrap, topic_name)
    commits = seen.of("commit")
    assert commits
    assert all(c.group_id == f"g-{topic_name}" for c in commits)
    assert sum(c.records for c in commits) == total
    offset_commits = [d for d in seen.of("offsets") if d.offsets]
    assert [d.offsets for d in offset_commits] == [c.offsets for c in commits if c.offsets]
    assert seen.of("abort") == []


def test_a_failing_record_is_retried_across_aborted_batches_then_dead_lettered(
    kafka_broker: Broker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """A record whose handler always fails dooms its batch three times (attempts 3), then is
    dead-lettered once, in a committed transaction, and the input is committed to its end."""
    catalog = provisioned(_contracts(topic_name))
    bootstrap, out_topic, total, failing = (
        kafka_broker.bootstrap_servers,
        f"{topic_name}.out",
        300,
        123,
    )
    _load(catalog, kafka_broker, topic_name, total)
    seen = _Seen()
    attempts: Counter[int] = Counter()
    with _out(catalog, kafka_broker, f"tx-{topic_name}", seen) as out:

        def handler(record: Record) -> None:
            value = int(record.value)
            attempts[value] += 1
            out.send(out_topic, record.value, key=record.key)
            if value == failing:
                raise ValueError("cannot enrich 123")

        with _consumer(catalog, kafka_broker, topic_name, out) as consumer:
            summary = consumer.run(handler, max_records=total, timeout=90)
    assert (summary.records, summary.dead_lettered, summary.retries) == (total, 1, 2)
    assert attempts[failing] == 3
    assert [a.reason for a in seen.of("abort")] == ["handler-error"] * 3
    letters = read_all(bootstrap, f"{topic_name}.dlq", config=READ_COMMITTED)
    assert [m.value() for m in letters] == [b"123"]
    assert dict(letters[0].headers() or [])["dlq.attempts"] == b"3"
    assert set(_values(bootstrap, out_topic)) >= set(range(total)) - {failing}
    assert _committed(bootstrap, f"g-{topic_name}", topic_name) == _ends(bootstrap, topic_name)


def test_a_handler_interrupted_mid_record_aborts_its_transaction(
    kafka_broker: Broker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """A KeyboardInterrupt inside a handler, after it sent, comes out of run() and the open
    transaction is aborted, not committed: its sends and offsets never become visible as
    committed."""
    catalog = provisioned(_contracts(topic_name))
    bootstrap, out_topic = kafka_broker.bootstrap_servers, f"{topic_name}.out"
    _load(catalog, kafka_broker, topic_name, 50)
    seen = _Seen()
    with _out(catalog, kafka_broker, f"tx-{topic_name}", seen) as out:

        def handler(record: Record) -> None:
            out.send(out_topic, record.value, key=record.key)
            raise KeyboardInterrupt

        with (
            _consumer(catalog, kafka_broker, topic_name, out) as consumer,
            pytest.raises(KeyboardInterrupt),
        ):
            consumer.run(handler, timeout=60)
    assert [(kind, d.reason) for kind, d in seen.events if kind != "begin"] == [
        ("abort", "handler-error")
    ]
    assert seen.of("commit") == []
    assert _committed(bootstrap, f"g-{topic_name}", topic_name) == {}


def test_run_batches_refuses_the_transactional_strategy(
    tansu_broker: LocalBroker, tmp_path: Any, topic_name: str
) -> None:
    """A batch handler's sends cannot be retried record by record inside one transaction:
    run_batches() refuses the strategy and says to use run()."""
    catalog = _on_tansu(tansu_broker, tmp_path, topic_name)
    with (
        _out(catalog, tansu_broker, f"tx-{topic_name}") as out,
        _consumer(catalog, tansu_broker, topic_name, out) as consumer,
        pytest.raises(ConfigError, match=r"use run\(\)") as refused,
    ):
        consumer.run_batches(lambda records: None)
    assert refused.value.key == "commit"


# ---------------------------------------------------------------- asyncio


@pytest.mark.asyncio
async def test_the_asyncio_producer_commits_and_aborts_its_transactions(
    kafka_broker: Broker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """async with producer.transaction(): commits on exit; an exception aborts and comes out."""
    catalog = provisioned(_contracts(topic_name))
    out, seen = f"{topic_name}.out", _Seen()
    async with AsyncGovernedProducer(
        catalog,
        service="enricher",
        bootstrap_servers=kafka_broker.bootstrap_servers,
        transactional_id=f"tx-{topic_name}",
        hooks=[seen],
    ) as producer:
        async with producer.transaction():
            await producer.send(out, b"1", key=b"k")
            producer.send_nowait(out, b"2", key=b"k")
        with pytest.raises(LookupError):
            await _failing_async_block(producer, out, b"3", LookupError("no"))
        with pytest.raises(GovernanceViolation, match="no transaction is open"):
            producer.send_nowait(out, b"4", key=b"k")
    assert [(k, d.records) for k, d in seen.events if k != "begin"] == [("commit", 2), ("abort", 1)]


@pytest.mark.asyncio
async def test_the_asyncio_consumer_runs_transactional_batches(
    kafka_broker: Broker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """AsyncGovernedConsumer with the transactional strategy: a failing record dooms its
    batch, is retried and dead-lettered; the input is committed to its end."""
    catalog = provisioned(_contracts(topic_name))
    bootstrap, out_topic, total, failing = (
        kafka_broker.bootstrap_servers,
        f"{topic_name}.out",
        300,
        77,
    )
    _load(catalog, kafka_broker, topic_name, total)
    seen = _Seen()
    attempts: Counter[int] = Counter()
    out = _out(catalog, kafka_broker, f"tx-{topic_name}", seen)

    async def handler(record: Record) -> None:
        value = int(record.value)
        attempts[value] += 1
        out.send(out_topic, record.value, key=record.key)
        await asyncio.sleep(0)
        if value == failing:
            raise ValueError("cannot enrich 77")

    async with AsyncGovernedConsumer(
        catalog,
        service="enricher",
        group_id=f"g-{topic_name}",
        topics=[topic_name],
        bootstrap_servers=bootstrap,
        commit=CommitStrategy.transactional(out, max_records=50),
        retry=RetryPolicy(attempts=3, initial_backoff_s=0.01, jitter_s=0.0),
        overrides=FAST,
    ) as consumer:
        summary = await consumer.run(handler, concurrency=4, max_records=total, timeout=90)
    out.close()
    assert (summary.records, summary.dead_lettered, summary.retries) == (total, 1, 2)
    assert attempts[failing] == 3
    assert len(seen.of("abort")) == 3
    letters = read_all(bootstrap, f"{topic_name}.dlq", config=READ_COMMITTED)
    assert [m.value() for m in letters] == [b"77"]
    assert set(_values(bootstrap, out_topic)) >= set(range(total)) - {failing}
    assert _committed(bootstrap, f"g-{topic_name}", topic_name) == _ends(bootstrap, topic_name)


@pytest.mark.asyncio
async def test_async_for_and_poll_batch_refuse_the_transactional_strategy(
    tansu_broker: LocalBroker, tmp_path: Any, topic_name: str
) -> None:
    """Records handed out one by one could commit mid-handling: both refuse, naming run()."""
    catalog = _on_tansu(tansu_broker, tmp_path, topic_name)
    out = _out(catalog, tansu_broker, f"tx-{topic_name}")
    try:
        async with AsyncGovernedConsumer(
            catalog,
            service="enricher",
            group_id=f"g-{topic_name}",
            topics=[topic_name],
            bootstrap_servers=tansu_broker.bootstrap_servers,
            commit=CommitStrategy.transactional(out),
            overrides=FAST,
        ) as consumer:
            with pytest.raises(ConfigError, match="async for does not read") as iterating:
                await consumer.__anext__()
            with pytest.raises(ConfigError, match=r"poll_batch\(\) does not read") as polling:
                await consumer.poll_batch()
    finally:
        out.close()
    assert iterating.value.key == polling.value.key == "commit"
