"""No call into the asyncio clients blocks the event loop, even while the broker is stalled."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from pathlib import Path

import pytest

from aio_helpers import TINY_QUEUE, slow_callbacks
from governed_kafka import BackpressureTimeout, Catalog, CommitStrategy, Record
from governed_kafka.aio import AsyncGovernedConsumer, AsyncGovernedProducer
from governed_kafka.testing import LocalBroker
from kafka_helpers import create_topics, unique_topic, write_catalog

pytestmark = pytest.mark.asyncio

#: A loop callback or task step longer than this counts as blocking the loop. Work done
#: on the loop (encoding a record, dispatching a batch) takes well under a millisecond;
#: a blocking call into librdkafka while the broker is stalled would take seconds.
THRESHOLD_S = 0.02


async def test_the_detector_reports_a_call_that_blocks_the_loop() -> None:
    """The slow-callback detector the next test relies on does report a blocking call."""
    with slow_callbacks(THRESHOLD_S) as reports:
        await asyncio.sleep(0)
        time.sleep(THRESHOLD_S * 3)  # blocks the loop, as a blocking client call would
        await asyncio.sleep(0)
    assert len(reports) == 1


@pytest.mark.slow
async def test_no_call_blocks_the_loop_while_the_broker_is_stalled(tmp_path: Path) -> None:
    """With the broker frozen, sending, waiting for room, flushing, consuming, committing,
    asking for lag, starting and closing all leave the loop free: no callback or task step
    of the loop takes longer than a few milliseconds."""
    topic = unique_topic("aio")
    body = f"""
    [policy]
    min_replication_factor = 1
    min_insync_replicas = 1

    [[topics]]
    name = "{topic}"
    owner = "team-test"
    partitions = 2
    replication_factor = 1
    retention_ms = 3600000
    producers = ["checkout"]
    consumers = ["billing"]
    """
    catalog = Catalog.load(write_catalog(tmp_path, body))
    with LocalBroker() as broker:
        bootstrap = broker.bootstrap_servers
        create_topics(bootstrap, [(topic, 2, {})])
        producer = AsyncGovernedProducer(
            catalog,
            service="checkout",
            bootstrap_servers=bootstrap,
            profile=TINY_QUEUE,
            max_block_s=1.0,
        )
        consumer = AsyncGovernedConsumer(
            catalog,
            service="billing",
            group_id=f"group-{topic}",
            topics=[topic],
            bootstrap_servers=bootstrap,
            commit=CommitStrategy.manual(),
            overrides={"session.timeout.ms": 6000},
        )
        late_producer = AsyncGovernedProducer(
            catalog, service="checkout", bootstrap_servers=bootstrap, verify_topics=True
        )
        handled: list[Record] = []

        async def handler(record: Record) -> None:
            handled.append(record)

        async with producer, consumer:
            await asyncio.gather(*(producer.send_nowait(topic, b"v", key=b"k") for _ in range(5)))
            await consumer.run(handler, max_records=5, timeout=30)
            # Should a call block the loop, the broker still resumes (from another thread),
            # so the blocked call returns and is reported instead of hanging the test.
            safety = threading.Timer(15, broker.resume)
            with slow_callbacks(THRESHOLD_S) as reports:
                broker.pause()
                safety.start()
                try:
                    # The queue holds five records: the other fifteen wait, then are refused.
                    sends = [producer.send_nowait(topic, b"v", key=f"{i}") for i in range(20)]
                    answered, _ = await asyncio.wait(sends, timeout=2.0)
                    remaining = await producer.flush(timeout=0.3)
                    await consumer.run(handler, timeout=0.5)
                    polled = await consumer.poll_batch(timeout=0.3)
                    commit = asyncio.create_task(consumer.commit())  # the broker cannot answer
                    lag = asyncio.create_task(consumer.lag(timeout=1.0))
                    start = asyncio.create_task(late_producer.start())  # the topic gate waits
                    done, _ = await asyncio.wait({commit, lag, start}, timeout=0.5)
                    await asyncio.sleep(0.2)
                finally:
                    broker.resume()
                    safety.cancel()
                with contextlib.suppress(Exception):
                    await asyncio.gather(commit, lag, start)
                await late_producer.close()
                await consumer.close()
                await producer.close()
        assert reports == []
    # The calls did meet a stalled broker: otherwise this test would prove nothing.
    assert len(answered) == 15
    assert all(isinstance(f.exception(), BackpressureTimeout) for f in answered)
    assert remaining > 0
    assert done == set()
    assert len(handled) == 5
    assert polled == []
