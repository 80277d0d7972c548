"""AsyncGovernedProducer against a real broker: what lands, what is refused, backpressure."""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from aio_helpers import TINY_QUEUE, ticks_during
from conftest import CatalogFactory
from governed_kafka import (
    BackpressureTimeout,
    Catalog,
    ClosedError,
    DeliveryError,
    GovernanceViolation,
    RecordMetadata,
    SerializationError,
    hooks,
    profiles,
)
from governed_kafka.aio import AsyncGovernedProducer
from governed_kafka.avro import EVENT_TYPE_HEADER
from governed_kafka.testing import LocalBroker
from kafka_helpers import create_topics, read_all, values, write_catalog

pytestmark = pytest.mark.asyncio

SCHEMAS = Path(__file__).parent.parent.parent / "examples" / "schemas"


def _topic(name: str, *, partitions: int = 1, extra: str = "") -> str:
    return f"""
    [[topics]]
    name = "{name}"
    owner = "team-test"
    partitions = {partitions}
    replication_factor = 1
    retention_ms = 3600000
    producers = ["checkout"]
    consumers = ["billing"]
    {extra}
    """


def _order(i: int) -> dict[str, Any]:
    return {
        "order_id": f"o-{i}",
        "customer_id": "c-1",
        "amount_cents": 1000 + i,
        "currency": "EUR",
        "created_at": 1_700_000_000_000 + i,
    }


def _producer(catalog: Catalog, bootstrap: str, **kwargs: Any) -> AsyncGovernedProducer:
    return AsyncGovernedProducer(catalog, service="checkout", bootstrap_servers=bootstrap, **kwargs)


async def test_send_returns_metadata_of_the_written_record(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """await send() returns where the broker wrote the record, with its key and headers."""
    catalog = provisioned(_topic(topic_name))
    bootstrap = kafka_broker.bootstrap_servers
    async with _producer(catalog, bootstrap) as producer:
        first = await producer.send(topic_name, b"a", key="k1", headers={"trace": "x"})
        second = await producer.send(topic_name, b"b", key="k2")
    assert (first.topic, first.partition, first.offset) == (topic_name, 0, 0)
    assert second.offset == 1
    assert first.timestamp is not None
    [a, b] = read_all(bootstrap, topic_name)
    assert (a.key(), a.value(), a.headers()) == (b"k1", b"a", [("trace", b"x")])
    assert (b.key(), b.value()) == (b"k2", b"b")


async def test_send_nowait_pipelines_records_in_send_order(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """Futures of many send_nowait() calls resolve to consecutive offsets in send order."""
    catalog = provisioned(_topic(topic_name))
    bootstrap = kafka_broker.bootstrap_servers
    async with _producer(catalog, bootstrap) as producer:
        futures = [producer.send_nowait(topic_name, f"{i}", key=b"k") for i in range(500)]
        assert all(isinstance(f, asyncio.Future) for f in futures)
        metadata = await asyncio.gather(*futures)
    assert [m.offset for m in metadata] == list(range(500))
    assert values(read_all(bootstrap, topic_name)) == [f"{i}".encode() for i in range(500)]


async def test_refused_sends_raise_from_the_call_and_write_nothing(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """Contract refusals raise from send_nowait() itself; the topic holds only later records."""
    catalog = provisioned(_topic(topic_name, extra='key = "required"'))
    rogue = topic_name.replace(".v1", ".v2")
    kafka_broker.create_topic(rogue)
    bootstrap = kafka_broker.bootstrap_servers
    async with _producer(catalog, bootstrap) as producer:
        with pytest.raises(GovernanceViolation) as no_key:
            producer.send_nowait(topic_name, b"x")
        with pytest.raises(GovernanceViolation) as no_contract:
            await producer.send(rogue, b"x", key=b"k")
        with pytest.raises(GovernanceViolation) as tombstone:
            await producer.send(topic_name, None, key=b"k")
        await producer.send(topic_name, b"marker", key=b"marker")
    assert (no_key.value.rule, no_key.value.field) == ("key.required", "key")
    assert no_contract.value.rule == "contract.missing"
    assert tombstone.value.rule == "tombstone.not-compacted"
    assert values(read_all(bootstrap, topic_name)) == [b"marker"]
    assert read_all(bootstrap, rogue) == []


async def test_schema_topics_are_checked_and_encoded_like_the_sync_producer(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, tmp_path: Path, topic_name: str
) -> None:
    """A value that does not fit its schema raises with the field path; a fitting one is
    written in the wire format with its event-type header."""
    shutil.copytree(SCHEMAS, tmp_path / "schemas")
    catalog = provisioned(
        _topic(
            topic_name,
            extra='key = "required"\nvalue_schema = "schemas/order_created.v2.avsc"\n'
            'event_types = ["payments.OrderCreated"]',
        )
    )
    bootstrap = kafka_broker.bootstrap_servers
    bad = {**_order(0), "items": [{"sku": "a", "quantity": "one", "price_cents": 1}]}
    async with _producer(catalog, bootstrap) as producer:
        with pytest.raises(SerializationError) as refused:
            producer.send_nowait(topic_name, bad, key="o-0")
        await producer.send(topic_name, _order(1), key="o-1")
    assert refused.value.field == "items[0].quantity"
    [record] = read_all(bootstrap, topic_name)
    assert record.key() == b"o-1"
    assert record.value()[:1] == b"\x00"  # Confluent wire format: magic byte, schema id, Avro
    assert (EVENT_TYPE_HEADER, b"payments.OrderCreated") in (record.headers() or [])


async def test_hooks_see_each_send_and_its_delivery(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """on_send runs for each record and on_delivery reports where it landed."""
    catalog = provisioned(_topic(topic_name))

    class Seen(hooks.Hook):
        def __init__(self) -> None:
            self.sent: list[str] = []
            self.delivered: list[int | None] = []
            self.lock = threading.Lock()

        def on_send(self, details: hooks.SendDetails) -> None:
            with self.lock:
                self.sent.append(details.topic)
            details.headers.append(("traced", b"yes"))

        def on_delivery(self, details: hooks.DeliveryDetails) -> None:
            with self.lock:
                self.delivered.append(details.offset)

    seen = Seen()
    bootstrap = kafka_broker.bootstrap_servers
    async with _producer(catalog, bootstrap, hooks=[seen]) as producer:
        await asyncio.gather(*(producer.send_nowait(topic_name, b"v", key=b"k") for _ in range(3)))
    assert seen.sent == [topic_name] * 3
    assert sorted(o for o in seen.delivered if o is not None) == [0, 1, 2]
    assert all(r.headers() == [("traced", b"yes")] for r in read_all(bootstrap, topic_name))


async def test_a_failing_delivery_hook_never_fails_a_send(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """A hook raising on every delivery leaves every send delivered; hook_failures counts it."""
    catalog = provisioned(_topic(topic_name))

    class Broken(hooks.Hook):
        def on_delivery(self, details: hooks.DeliveryDetails) -> None:
            raise RuntimeError("hook bug")

    bootstrap = kafka_broker.bootstrap_servers
    async with _producer(catalog, bootstrap, hooks=[Broken()]) as producer:
        written = await asyncio.gather(
            *(producer.send_nowait(topic_name, b"v", key=b"k") for _ in range(5))
        )
        failures = producer.hook_failures
    assert [m.offset for m in written] == [0, 1, 2, 3, 4]
    assert failures == 5


async def test_the_profile_and_governed_settings_are_in_force(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """The producer runs with the profile's batching and the governed durability keys."""
    catalog = provisioned(_topic(topic_name))
    async with _producer(
        catalog, kafka_broker.bootstrap_servers, profile=profiles.LOW_LATENCY
    ) as producer:
        config = producer.config
    expected = profiles.LOW_LATENCY.to_librdkafka()
    assert {k: config[k] for k in expected} == expected
    assert config["enable.idempotence"] is True
    assert config["acks"] == "all"


async def test_send_after_close_is_refused(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """A closed producer refuses sends with ClosedError."""
    catalog = provisioned(_topic(topic_name))
    producer = await _producer(catalog, kafka_broker.bootstrap_servers).start()
    await producer.close()
    with pytest.raises(ClosedError):
        producer.send_nowait(topic_name, b"x", key=b"k")


# ---------------------------------------------------------------- a broker to stall


@pytest.fixture(scope="module")
def stallable() -> Iterator[LocalBroker]:
    """A private broker the tests of this module may freeze and resume."""
    with LocalBroker() as broker:
        yield broker


@pytest.fixture
def stalled_topic(stallable: LocalBroker, tmp_path: Path, topic_name: str) -> Catalog:
    """A one-partition topic on the private broker, and its catalog."""
    policy = "[policy]\nmin_replication_factor = 1\nmin_insync_replicas = 1\n"
    catalog = Catalog.load(write_catalog(tmp_path, policy + _topic(topic_name)))
    create_topics(stallable.bootstrap_servers, [(topic_name, 1, {})])
    return catalog


@pytest_asyncio.fixture
async def tiny(stallable: LocalBroker, stalled_topic: Catalog) -> AsyncIterator[Any]:
    """A started producer with a five-record queue, warmed up, and a way to stall the broker."""
    producer = _producer(
        stalled_topic,
        stallable.bootstrap_servers,
        profile=TINY_QUEUE,
        max_block_s=30,
        overrides={"delivery.timeout.ms": 60_000},
    )
    await producer.start()
    topic = next(iter(stalled_topic)).name
    await producer.send(topic, b"warm-up", key=b"k")
    try:
        yield producer
    finally:
        stallable.resume()
        await producer.close(timeout=30)


async def test_a_full_queue_is_awaited_then_refused_with_backpressure_timeout(
    stallable: LocalBroker, stalled_topic: Catalog, topic_name: str
) -> None:
    """With the broker stalled, a record that finds no room waits max_block_s while the
    loop runs on, then its future fails with BackpressureTimeout; nothing of it is sent."""
    producer = _producer(
        stalled_topic,
        stallable.bootstrap_servers,
        profile=TINY_QUEUE,
        max_block_s=0.5,
        overrides={"delivery.timeout.ms": 60_000},
    )
    async with producer:
        await producer.send(topic_name, b"warm-up", key=b"k")
        stallable.pause()
        try:
            accepted = [producer.send_nowait(topic_name, f"{i}", key=b"k") for i in range(5)]
            late = producer.send_nowait(topic_name, b"late", key=b"k")
            ticks = await ticks_during(late)
            with pytest.raises(BackpressureTimeout) as refused:
                late.result()
        finally:
            stallable.resume()
        delivered = await asyncio.gather(*accepted)
    assert refused.value.topic == topic_name
    assert 0.5 <= refused.value.waited_s < 5
    assert ticks >= 10  # the loop ran a 10 ms ticker all along the wait
    assert [m.offset for m in delivered] == [1, 2, 3, 4, 5]
    written = values(read_all(stallable.bootstrap_servers, topic_name))
    assert written == [b"warm-up"] + [f"{i}".encode() for i in range(5)]


async def test_send_observers_hear_of_a_record_refused_for_backpressure(
    stallable: LocalBroker, stalled_topic: Catalog, topic_name: str
) -> None:
    """A send hook's delivery observer is told of a record that never found room, as
    with the sync producer; the records that were queued report their delivery."""
    outcomes: list[str | None] = []

    class Span(hooks.Hook):
        def on_send(self, details: hooks.SendDetails) -> Any:
            return lambda delivered: outcomes.append(
                None if delivered.error is None else delivered.error.code
            )

    producer = _producer(
        stalled_topic,
        stallable.bootstrap_servers,
        profile=TINY_QUEUE,
        max_block_s=0.5,
        hooks=[Span()],
        overrides={"delivery.timeout.ms": 60_000},
    )
    async with producer:
        await producer.send(topic_name, b"warm-up", key=b"k")
        stallable.pause()
        try:
            accepted = [producer.send_nowait(topic_name, f"{i}", key=b"k") for i in range(5)]
            late = producer.send_nowait(topic_name, b"late", key=b"k")
            await asyncio.wait({late})
        finally:
            stallable.resume()
        await asyncio.gather(*accepted)
    assert isinstance(late.exception(), BackpressureTimeout)
    assert sorted(outcomes, key=str) == ["BackpressureTimeout"] + [None] * 6


async def test_records_that_wait_for_room_keep_their_send_order(
    stallable: LocalBroker, tiny: AsyncGovernedProducer, topic_name: str
) -> None:
    """Records sent while earlier ones wait for room, even once room appears, are written
    after them, in send order."""
    stallable.pause()
    try:
        futures = [tiny.send_nowait(topic_name, f"{i}", key=b"k") for i in range(40)]
        await asyncio.sleep(0.3)
        waiting = sum(not f.done() for f in futures)
    finally:
        stallable.resume()
    for i in range(40, 200):  # while the waiting records drain, the queue has room at times
        futures.append(tiny.send_nowait(topic_name, f"{i}", key=b"k"))
        await asyncio.sleep(0)
    delivered: list[RecordMetadata] = await asyncio.gather(*futures)
    assert waiting == 40
    assert [m.offset for m in delivered] == list(range(1, 201))
    written = values(read_all(stallable.bootstrap_servers, topic_name))
    assert written == [b"warm-up"] + [f"{i}".encode() for i in range(200)]


async def test_cancelling_a_send_that_waits_for_room_withdraws_the_record(
    stallable: LocalBroker, tiny: AsyncGovernedProducer, topic_name: str
) -> None:
    """A send cancelled while it waits for room in the queue is never written."""
    stallable.pause()
    try:
        accepted = [tiny.send_nowait(topic_name, f"{i}", key=b"k") for i in range(5)]
        withdrawn = tiny.send_nowait(topic_name, b"withdrawn", key=b"k")
        after = tiny.send_nowait(topic_name, b"after", key=b"k")
        await asyncio.sleep(0.2)
        withdrawn.cancel()
        await asyncio.sleep(0.2)
    finally:
        stallable.resume()
    await asyncio.gather(*accepted, after)
    assert withdrawn.cancelled()
    written = values(read_all(stallable.bootstrap_servers, topic_name))
    assert written == [b"warm-up"] + [f"{i}".encode() for i in range(5)] + [b"after"]


async def test_a_record_that_is_not_delivered_fails_its_future(
    stallable: LocalBroker, stalled_topic: Catalog, topic_name: str
) -> None:
    """A record that times out in delivery fails its future with DeliveryError."""
    producer = _producer(
        stalled_topic, stallable.bootstrap_servers, overrides={"delivery.timeout.ms": 1500}
    )
    async with producer:
        await producer.send(topic_name, b"warm-up", key=b"k")
        stallable.pause()
        try:
            with pytest.raises(DeliveryError) as failed:
                await asyncio.wait_for(producer.send(topic_name, b"x", key=b"lost"), 15)
        finally:
            stallable.resume()
    assert failed.value.code == "_MSG_TIMED_OUT"
    assert failed.value.key == b"lost"


async def test_flush_waits_for_records_still_waiting_for_room(
    stallable: LocalBroker, tiny: AsyncGovernedProducer, topic_name: str
) -> None:
    """flush() counts records that wait for room as remaining, and returns 0 once all land."""
    stallable.pause()
    try:
        futures = [tiny.send_nowait(topic_name, f"{i}", key=b"k") for i in range(12)]
        remaining = await tiny.flush(timeout=0.3)
    finally:
        stallable.resume()
    assert remaining == 12
    assert await tiny.flush(timeout=30) == 0
    assert all(f.done() and f.exception() is None for f in futures)
