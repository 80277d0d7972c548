"""AsyncGovernedConsumer against a real broker: order, commits, rebalances, cancellation."""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_consumer import Recorder, _committed, _contracts, fast

from aio_helpers import threads_gone
from conftest import Broker, CatalogFactory
from governed_kafka import (
    Catalog,
    CommitStrategy,
    GovernanceViolation,
    GovernedProducer,
    Record,
    RetryPolicy,
    hooks,
    profiles,
)
from governed_kafka.aio import AsyncGovernedConsumer
from governed_kafka.testing import LocalBroker
from kafka_helpers import create_topics, read_all, write_catalog

pytestmark = pytest.mark.asyncio


def _produce(
    catalog: Catalog, bootstrap: str, topic: str, count: int, *, one_by_one: bool = False
) -> None:
    profile = profiles.LOW_LATENCY if one_by_one else profiles.DURABLE
    with GovernedProducer(
        catalog, service="checkout", bootstrap_servers=bootstrap, profile=profile
    ) as producer:
        for i in range(count):
            future = producer.send(topic, str(i).encode(), key=f"k{i % 13}")
            if one_by_one:
                future.result(10)


def _ends(bootstrap: str, topic: str) -> dict[int, int]:
    """One past the last offset of each non-empty partition, read back with a raw consumer."""
    ends: dict[int, int] = {}
    for record in read_all(bootstrap, topic):
        ends[record.partition()] = record.offset() + 1
    return ends


@pytest.fixture(scope="module")
def stallable() -> Iterator[LocalBroker]:
    """A private broker the tests of this module may freeze and resume."""
    with LocalBroker() as broker:
        yield broker


@pytest.fixture
def group(topic_name: str) -> str:
    return f"group-{topic_name}"


def _consumer(
    catalog: Catalog,
    bootstrap: str,
    topic: str,
    group: str,
    *,
    group_protocol: str = "classic",
    **kwargs: Any,
) -> AsyncGovernedConsumer:
    overrides = {**fast(group_protocol), **kwargs.pop("overrides", {})}
    return AsyncGovernedConsumer(
        catalog,
        service="billing",
        group_id=group,
        topics=[topic],
        bootstrap_servers=bootstrap,
        overrides=overrides,
        group_protocol=group_protocol,  # type: ignore[arg-type]
        **kwargs,
    )


async def test_run_handles_every_record_and_commits_the_end(
    kafka_broker: Broker,
    provisioned: CatalogFactory,
    topic_name: str,
    group: str,
    group_protocol: str,
) -> None:
    """run() awaits the handler once per record and commits each partition's end."""
    catalog = provisioned(_contracts(topic_name))
    bootstrap = kafka_broker.bootstrap_servers
    _produce(catalog, bootstrap, topic_name, 600)
    seen: list[bytes] = []

    async def handler(record: Record) -> None:
        await asyncio.sleep(0)
        seen.append(record.value)

    async with _consumer(
        catalog, bootstrap, topic_name, group, group_protocol=group_protocol
    ) as consumer:
        summary = await consumer.run(handler, max_records=600, timeout=60)
    assert summary.records == 600
    assert sorted(int(v) for v in seen) == list(range(600))
    assert _committed(bootstrap, group, topic_name, 3) == _ends(bootstrap, topic_name)


async def test_async_for_yields_records_and_commits_those_it_moved_past(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str, group: str
) -> None:
    """async for yields each record once; a record counts as processed when the loop moves
    past it, so the one the loop broke on is not committed."""
    catalog = provisioned(_contracts(topic_name, partitions=1))
    bootstrap = kafka_broker.bootstrap_servers
    _produce(catalog, bootstrap, topic_name, 30)
    seen: list[int] = []
    async with _consumer(catalog, bootstrap, topic_name, group) as consumer:
        async for record in consumer:
            seen.append(record.offset)
            if record.offset == 19:
                break
    assert seen == list(range(20))
    assert _committed(bootstrap, group, topic_name, 1) == {0: 19}


async def test_the_next_async_for_starts_with_the_record_the_last_one_left(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str, group: str
) -> None:
    """A record left by break is yielded again by the next async for on the same consumer."""
    catalog = provisioned(_contracts(topic_name, partitions=1))
    bootstrap = kafka_broker.bootstrap_servers
    _produce(catalog, bootstrap, topic_name, 10)
    seen: list[int] = []
    async with _consumer(catalog, bootstrap, topic_name, group) as consumer:
        async for record in consumer:
            seen.append(record.offset)
            if record.offset == 4:
                break
        async for record in consumer:
            seen.append(record.offset)
            if record.offset == 9:
                consumer.mark_processed(record)
                break
    assert seen == [0, 1, 2, 3, 4, 4, 5, 6, 7, 8, 9]
    assert _committed(bootstrap, group, topic_name, 1) == {0: 10}


async def test_stop_ends_async_for_commits_and_closes(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str, group: str
) -> None:
    """After stop(), async for ends at its next step, commits the records it moved past,
    and the consumer is closed."""
    catalog = provisioned(_contracts(topic_name, partitions=1))
    bootstrap = kafka_broker.bootstrap_servers
    _produce(catalog, bootstrap, topic_name, 20)
    consumer = await _consumer(catalog, bootstrap, topic_name, group).start()
    seen: list[int] = []
    async for record in consumer:
        seen.append(record.offset)
        if record.offset == 7:
            consumer.stop()
    assert seen == list(range(8))
    assert _committed(bootstrap, group, topic_name, 1) == {0: 8}
    with pytest.raises(Exception, match="closed"):
        await consumer.poll_batch()


async def test_one_partition_is_handled_in_order_and_partitions_run_concurrently(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str, group: str
) -> None:
    """Handlers of one partition never overlap and see offsets in order; handlers of
    different partitions overlap, never more than `concurrency` at once."""
    catalog = provisioned(_contracts(topic_name, partitions=4))
    bootstrap = kafka_broker.bootstrap_servers
    _produce(catalog, bootstrap, topic_name, 400)
    order: dict[int, list[int]] = {}
    active: dict[int, int] = {}
    overlaps: list[str] = []
    running = peak = 0
    rng = random.Random(7)

    async def handler(record: Record) -> None:
        nonlocal running, peak
        partition = record.partition
        active[partition] = active.get(partition, 0) + 1
        running += 1
        peak = max(peak, running)
        if active[partition] > 1:
            overlaps.append(f"{partition}@{record.offset}")
        order.setdefault(partition, []).append(record.offset)
        # Long enough that each partition's records outlast the fetch of the others: on a
        # cluster of several brokers, each partition's first records may come in a fetch
        # response of their own, a little after the others.
        await asyncio.sleep(rng.uniform(0.002, 0.01))
        active[partition] -= 1
        running -= 1

    async with _consumer(catalog, bootstrap, topic_name, group) as consumer:
        await consumer.run(handler, concurrency=3, max_records=400, timeout=60)
    assert overlaps == []
    assert order == {p: list(range(end)) for p, end in _ends(bootstrap, topic_name).items()}
    assert peak == 3  # four busy partitions, three slots: every slot was used, never more


async def test_a_failing_handler_is_retried_then_dead_lettered(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str, group: str
) -> None:
    """A record whose handler keeps failing goes to the DLQ with its story after the
    awaited retries; the other records are handled and everything is committed."""
    catalog = provisioned(_contracts(topic_name, partitions=1))
    bootstrap = kafka_broker.bootstrap_servers
    _produce(catalog, bootstrap, topic_name, 10)
    recorder = Recorder()
    attempts: list[int] = []
    handled: list[bytes] = []

    async def handler(record: Record) -> None:
        if record.value == b"4":
            attempts.append(record.offset)
            raise ValueError("cannot bill order 4")
        handled.append(record.value)

    async with _consumer(
        catalog,
        bootstrap,
        topic_name,
        group,
        retry=RetryPolicy(attempts=3, initial_backoff_s=0.01, jitter_s=0),
        hooks=[recorder],
    ) as consumer:
        summary = await consumer.run(handler, max_records=10, timeout=60)
    assert (summary.records, summary.dead_lettered, summary.retries) == (10, 1, 2)
    assert attempts == [4, 4, 4]
    assert handled == [str(i).encode() for i in range(10) if i != 4]
    [letter] = read_all(bootstrap, f"{topic_name}.dlq")
    headers = dict(letter.headers() or [])
    assert letter.value() == b"4"
    assert headers["dlq.error.type"] == b"builtins.ValueError"
    assert headers["dlq.original.offset"] == b"4"
    assert headers["dlq.attempts"] == b"3"
    [dead] = recorder.of("dead_letter")
    assert (dead.offset, dead.attempts) == (4, 3)
    assert _committed(bootstrap, group, topic_name, 1) == {0: 10}


async def test_without_a_dead_letter_topic_run_stops_and_leaves_the_record_uncommitted(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str, group: str
) -> None:
    """A poison record on a topic without DLQ ends run() with GovernanceViolation; the
    records before it are committed, it is not."""
    catalog = provisioned(_contracts(topic_name, partitions=1, dlq=False))
    bootstrap = kafka_broker.bootstrap_servers
    _produce(catalog, bootstrap, topic_name, 10)

    async def handler(record: Record) -> None:
        if record.value == b"6":
            raise ValueError("poison")

    async with _consumer(
        catalog, bootstrap, topic_name, group, retry=RetryPolicy.never()
    ) as consumer:
        with pytest.raises(GovernanceViolation) as stopped:
            await consumer.run(handler, max_records=10, timeout=60)
    assert stopped.value.rule == "dead-letter.missing"
    assert _committed(bootstrap, group, topic_name, 1) == {0: 6}


async def test_cancelling_run_mid_handler_does_not_commit_that_record(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str, group: str
) -> None:
    """Cancelling the task awaiting run() cancels the handler in flight; the records
    before it are committed, the cancelled one is not."""
    catalog = provisioned(_contracts(topic_name, partitions=1))
    bootstrap = kafka_broker.bootstrap_servers
    _produce(catalog, bootstrap, topic_name, 10)
    reached = asyncio.Event()
    outcome: list[str] = []

    async def handler(record: Record) -> None:
        if record.offset == 5:
            reached.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                outcome.append("cancelled")
                raise

    async with _consumer(catalog, bootstrap, topic_name, group) as consumer:
        task = asyncio.create_task(consumer.run(handler, timeout=60))
        await asyncio.wait_for(reached.wait(), 30)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert _committed(bootstrap, group, topic_name, 1) == {0: 5}
    assert outcome == ["cancelled"]
    assert _committed(bootstrap, group, topic_name, 1) == {0: 5}  # close() adds nothing


async def test_the_next_run_starts_with_the_record_a_cancelled_run_was_handling(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str, group: str
) -> None:
    """A record whose handler was cancelled is handled first by the next run, then the rest."""
    catalog = provisioned(_contracts(topic_name, partitions=1))
    bootstrap = kafka_broker.bootstrap_servers
    _produce(catalog, bootstrap, topic_name, 10)
    reached = asyncio.Event()
    finished: list[int] = []

    async def hangs_on_3(record: Record) -> None:
        if record.offset == 3:
            reached.set()
            await asyncio.Event().wait()
        finished.append(record.offset)

    async def handler(record: Record) -> None:
        finished.append(record.offset)

    async with _consumer(catalog, bootstrap, topic_name, group) as consumer:
        task = asyncio.create_task(consumer.run(hangs_on_3, timeout=60))
        await asyncio.wait_for(reached.wait(), 30)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        summary = await consumer.run(handler, max_records=7, timeout=60)
    assert finished == list(range(10))
    assert summary.records == 7
    assert _committed(bootstrap, group, topic_name, 1) == {0: 10}


async def test_stop_finishes_the_handlers_in_flight_commits_and_closes(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str, group: str
) -> None:
    """stop() lets the handler in flight finish, then run() commits, leaves and closes."""
    catalog = provisioned(_contracts(topic_name, partitions=1))
    bootstrap = kafka_broker.bootstrap_servers
    _produce(catalog, bootstrap, topic_name, 100)
    consumer = await _consumer(catalog, bootstrap, topic_name, group).start()
    finished: list[int] = []

    async def handler(record: Record) -> None:
        if record.offset == 30:
            threading.Thread(target=consumer.stop).start()  # from another thread, as a signal
            await asyncio.sleep(0.3)
        finished.append(record.offset)

    summary = await consumer.run(handler, timeout=60)
    assert finished == list(range(31))
    assert summary.records == 31
    assert _committed(bootstrap, group, topic_name, 1) == {0: 31}
    with pytest.raises(Exception, match="closed"):
        await consumer.poll_batch()


async def test_stop_before_run_ends_the_run_at_once_and_closes(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str, group: str
) -> None:
    """A run() started after stop() handles nothing, returns, and leaves the consumer closed."""
    catalog = provisioned(_contracts(topic_name, partitions=1))
    bootstrap = kafka_broker.bootstrap_servers
    _produce(catalog, bootstrap, topic_name, 5)
    consumer = await _consumer(catalog, bootstrap, topic_name, group).start()
    handled: list[int] = []

    async def handler(record: Record) -> None:
        handled.append(record.offset)

    consumer.stop()
    summary = await consumer.run(handler, timeout=30)
    assert (summary.records, handled) == (0, [])
    with pytest.raises(Exception, match="closed"):
        await consumer.poll_batch()


async def test_per_record_strategy_commits_each_record_before_the_partition_moves_on(
    kafka_broker: Broker,
    provisioned: CatalogFactory,
    topic_name: str,
    group: str,
    group_protocol: str,
) -> None:
    """With per_record, a partition's next handler starts only once the previous record
    is committed."""
    catalog = provisioned(_contracts(topic_name, partitions=1))
    bootstrap = kafka_broker.bootstrap_servers
    _produce(catalog, bootstrap, topic_name, 12)
    recorder = Recorder()
    committed_at_start: list[int] = []

    async def handler(record: Record) -> None:
        commits = [c.offsets[0][2] for c in recorder.of("commit") if c.reason == "routine"]
        committed_at_start.append(max(commits, default=0))

    async with _consumer(
        catalog,
        bootstrap,
        topic_name,
        group,
        group_protocol=group_protocol,
        commit=CommitStrategy.per_record(),
        hooks=[recorder],
    ) as consumer:
        await consumer.run(handler, max_records=12, timeout=60)
    assert committed_at_start == list(range(12))


async def test_slow_handlers_pause_intake_and_fast_ones_resume_it(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str, group: str
) -> None:
    """Above max_in_flight unhandled records the partitions pause; they resume below the
    low mark, and every record is handled once."""
    catalog = provisioned(_contracts(topic_name, partitions=2))
    bootstrap = kafka_broker.bootstrap_servers
    _produce(catalog, bootstrap, topic_name, 300)
    recorder = Recorder()
    seen: list[int] = []
    slow = True

    async def handler(record: Record) -> None:
        nonlocal slow
        if slow:
            await asyncio.sleep(0.05)
            slow = not recorder.of("backpressure")
        seen.append(int(record.value))

    async with _consumer(
        catalog,
        bootstrap,
        topic_name,
        group,
        max_in_flight=40,
        resume_below=10,
        hooks=[recorder],
    ) as consumer:
        await consumer.run(handler, concurrency=2, max_records=300, timeout=60)
    kinds = [b.kind for b in recorder.of("backpressure")]
    assert kinds[:2] == ["pause", "resume"]
    assert sorted(seen) == list(range(300))


async def test_lag_reports_committed_and_processed_offsets(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str, group: str
) -> None:
    """lag() agrees with the broker's committed offsets and the records processed."""
    catalog = provisioned(_contracts(topic_name, partitions=1))
    bootstrap = kafka_broker.bootstrap_servers
    _produce(catalog, bootstrap, topic_name, 30, one_by_one=True)
    async with _consumer(
        catalog, bootstrap, topic_name, group, commit=CommitStrategy.manual()
    ) as consumer:
        records: list[Record] = []
        deadline = time.monotonic() + 30
        while len(records) < 30 and time.monotonic() < deadline:
            records += await consumer.poll_batch(max_records=30, timeout=0.5)
        for record in records[:12]:
            consumer.mark_processed(record)
        await consumer.commit()
        for record in records[12:20]:
            consumer.mark_processed(record)
        report = await consumer.lag()
    entry = report.partition(topic_name, 0)
    assert (entry.high_watermark, entry.committed, entry.processed) == (30, 12, 20)
    assert _committed(bootstrap, group, topic_name, 1) == {0: 20}  # close commits the rest


async def test_process_hooks_wrap_each_awaited_attempt(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str, group: str
) -> None:
    """A hook's on_process context is entered before the handler starts and left after
    it finishes, once per attempt."""
    catalog = provisioned(_contracts(topic_name, partitions=1))
    bootstrap = kafka_broker.bootstrap_servers
    _produce(catalog, bootstrap, topic_name, 2)
    trail: list[str] = []

    class Span(hooks.Hook):
        @contextlib.contextmanager
        def _span(self, details: hooks.ProcessDetails) -> Iterator[None]:
            trail.append(f"enter {details.record.offset}/{details.attempt}")
            try:
                yield
            finally:
                trail.append(f"exit {details.record.offset}/{details.attempt}")

        def on_process(self, details: hooks.ProcessDetails) -> Any:
            return self._span(details)

    calls = 0

    async def handler(record: Record) -> None:
        nonlocal calls
        calls += 1
        trail.append(f"handle {record.offset}")
        await asyncio.sleep(0.01)
        if calls == 1:
            raise ValueError("first attempt fails")

    async with _consumer(
        catalog,
        bootstrap,
        topic_name,
        group,
        hooks=[Span()],
        retry=RetryPolicy(attempts=2, initial_backoff_s=0, jitter_s=0),
    ) as consumer:
        await consumer.run(handler, max_records=2, timeout=60)
    assert trail == [
        "enter 0/1",
        "handle 0",
        "exit 0/1",
        "enter 0/2",
        "handle 0",
        "exit 0/2",
        "enter 1/1",
        "handle 1",
        "exit 1/1",
    ]


# ---------------------------------------------------------------- rebalances


async def _until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


@pytest.mark.slow
async def test_revoke_waits_for_handlers_in_flight_and_commits_what_they_processed(
    kafka_broker: Broker,
    provisioned: CatalogFactory,
    topic_name: str,
    group: str,
    group_protocol: str,
) -> None:
    """When a second member joins mid-stream, the first lets the handlers in flight of the
    partitions it gives up finish, commits them synchronously before the partitions go,
    and the new owner starts exactly there: nothing cancelled, replayed or skipped."""
    catalog = provisioned(_contracts(topic_name, partitions=4))
    bootstrap = kafka_broker.bootstrap_servers
    total = 80
    _produce(catalog, bootstrap, topic_name, total)
    first_hooks = Recorder()
    ends_of_first: dict[int, list[tuple[int, float]]] = {}
    cancelled: list[tuple[int, int]] = []
    starts_of_second: dict[int, list[int]] = {}

    async def first_handler(record: Record) -> None:
        try:
            await asyncio.sleep(0.3)  # four slots, four partitions: always one in flight each
        except asyncio.CancelledError:
            cancelled.append((record.partition, record.offset))
            raise
        ends_of_first.setdefault(record.partition, []).append((record.offset, time.monotonic()))

    async def second_handler(record: Record) -> None:
        starts_of_second.setdefault(record.partition, []).append(record.offset)

    def handled() -> int:
        return sum(map(len, ends_of_first.values())) + sum(map(len, starts_of_second.values()))

    first = _consumer(
        catalog,
        bootstrap,
        topic_name,
        group,
        group_protocol=group_protocol,
        hooks=[first_hooks],
        commit=CommitStrategy.manual(),  # whatever it commits, it commits on revoke or close
    )
    second = _consumer(catalog, bootstrap, topic_name, group, group_protocol=group_protocol)
    async with first:
        first_run = asyncio.create_task(first.run(first_handler, concurrency=4, timeout=120))
        await _until(lambda: sum(map(len, ends_of_first.values())) >= 8, 60, "first member")
        await second.start()  # joins the group now, mid-stream
        second_run = asyncio.create_task(second.run(second_handler, concurrency=4, timeout=120))
        await _until(lambda: handled() >= total, 90, "every record")
        first.stop()
        second.stop()
        await asyncio.gather(first_run, second_run)
    assert cancelled == []
    revokes = [(t, c) for t, c in first_hooks.timed("commit") if c.reason == "revoke"]
    assert revokes, "the first member committed nothing when its partitions were revoked"
    revoked_at, revoke = revokes[0]
    moved = {partition: offset for _, partition, offset in revoke.offsets}
    assert moved
    for partition, offset in moved.items():
        finished = ends_of_first[partition]
        # Every record the first member handled in the partition was finished before the
        # commit and is covered by it; the new owner starts right there.
        assert [o for o, _ in finished] == list(range(offset))
        assert all(ended <= revoked_at for _, ended in finished)
        assert starts_of_second[partition][0] == offset
    handled_once = sorted(
        [(p, o) for p, ends in ends_of_first.items() for o, _ in ends]
        + [(p, o) for p, offsets in starts_of_second.items() for o in offsets]
    )
    assert len(handled_once) == len(set(handled_once)) == total
    assert _committed(bootstrap, group, topic_name, 4) == _ends(bootstrap, topic_name)


@pytest.mark.slow
async def test_revoke_cancels_handlers_that_outlast_the_revoke_timeout(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str, group: str
) -> None:
    """A handler still running when revoke_timeout_s runs out is cancelled; its record is
    not committed, so the partition's new owner handles it."""
    catalog = provisioned(_contracts(topic_name, partitions=2))
    bootstrap = kafka_broker.bootstrap_servers
    _produce(catalog, bootstrap, topic_name, 40)
    hung: dict[int, int] = {}
    cancelled: list[tuple[int, int]] = []
    second_starts: dict[int, int] = {}

    async def hangs_on_the_fifth(record: Record) -> None:
        if record.offset == 4:
            hung[record.partition] = record.offset
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.append((record.partition, record.offset))
                raise

    async def second_handler(record: Record) -> None:
        second_starts.setdefault(record.partition, record.offset)

    first = _consumer(catalog, bootstrap, topic_name, group, revoke_timeout_s=0.5)
    second = _consumer(catalog, bootstrap, topic_name, group)
    async with first:
        first_run = asyncio.create_task(first.run(hangs_on_the_fifth, timeout=120))
        await _until(lambda: len(hung) == 2, 60, "both partitions to hang")
        await second.start()  # joins the group now
        second_run = asyncio.create_task(second.run(second_handler, timeout=120))
        await _until(lambda: second_starts, 60, "the second member's first record")
        second.stop()
        await second_run
        first_run.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await first_run
    assert len(cancelled) == 2  # one by the revoke timeout, one by cancelling the run
    [(partition, offset)] = second_starts.items()
    assert offset == 4  # the cancelled record was not committed: its new owner got it
    assert _committed(bootstrap, group, topic_name, 2)[partition] >= 5


@pytest.mark.slow
async def test_a_cancelled_start_leaves_the_group_again(
    stallable: LocalBroker, tmp_path: Path, topic_name: str, group: str
) -> None:
    """A consumer whose start() was cancelled while the topic gate waited on a frozen
    broker closes once built, so it holds no partitions: the next member gets them all."""
    policy = "[policy]\nmin_replication_factor = 1\nmin_insync_replicas = 1\n"
    catalog = Catalog.load(
        write_catalog(tmp_path, policy + _contracts(topic_name, partitions=2, dlq=False))
    )
    bootstrap = stallable.bootstrap_servers
    create_topics(bootstrap, [(topic_name, 2, {})])
    abandoned = _consumer(catalog, bootstrap, topic_name, group, verify_topics=True)
    stallable.pause()
    try:
        start = asyncio.ensure_future(abandoned.start())
        await asyncio.sleep(0.5)
        start.cancel()
        with pytest.raises(asyncio.CancelledError):
            await start
    finally:
        stallable.resume()
    assert await threads_gone(f"governed-kafka-aio-consumer[{group}]", timeout=30)
    async with _consumer(catalog, bootstrap, topic_name, group) as member:
        await _until_assigned(member, 30)
        assert sorted(member.assignment) == [(topic_name, 0), (topic_name, 1)]


async def _until_assigned(consumer: AsyncGovernedConsumer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not consumer.assignment and time.monotonic() < deadline:
        await consumer.poll_batch(timeout=0.2)
