"""The asyncio clients' checks that need no broker: lifecycle and handler refusals."""

from __future__ import annotations

import functools

import pytest

from governed_kafka import Catalog, ClosedError, Record
from governed_kafka.aio import AsyncGovernedConsumer, AsyncGovernedProducer

pytestmark = pytest.mark.asyncio

TOPIC = "shop.order.created.v1"


@pytest.fixture
def catalog() -> Catalog:
    return Catalog.from_dict(
        {
            "topics": [
                {
                    "name": TOPIC,
                    "partitions": 1,
                    "replication_factor": 1,
                    "producers": ["checkout"],
                    "consumers": ["billing"],
                }
            ]
        }
    )


def _consumer(catalog: Catalog, **kwargs: object) -> AsyncGovernedConsumer:
    return AsyncGovernedConsumer(
        catalog,
        service="billing",
        group_id="billing",
        topics=[TOPIC],
        bootstrap_servers="127.0.0.1:1",
        **kwargs,  # type: ignore[arg-type]
    )


async def test_sending_before_start_says_how_to_start(catalog: Catalog) -> None:
    """A producer used before start() raises ClosedError that names the way to start it."""
    producer = AsyncGovernedProducer(catalog, service="checkout", bootstrap_servers="127.0.0.1:1")
    with pytest.raises(ClosedError, match=r"not started: use `async with` or `await producer"):
        producer.send_nowait(TOPIC, b"x")
    with pytest.raises(ClosedError, match="not started"):
        await producer.flush()


async def test_consuming_before_start_says_how_to_start(catalog: Catalog) -> None:
    """A consumer used before start() raises ClosedError that names the way to start it."""
    consumer = _consumer(catalog)

    async def handler(record: Record) -> None:
        pass

    with pytest.raises(ClosedError, match=r"not started: use `async with` or `await consumer"):
        await consumer.run(handler)
    with pytest.raises(ClosedError, match="not started"):
        await consumer.poll_batch()


async def test_a_closed_producer_cannot_start_again(catalog: Catalog) -> None:
    """start() after close() raises ClosedError instead of building a new producer."""
    producer = AsyncGovernedProducer(catalog, service="checkout", bootstrap_servers="127.0.0.1:1")
    await producer.close()
    with pytest.raises(ClosedError, match="closed"):
        await producer.start()


async def test_a_blocking_handler_is_refused(catalog: Catalog) -> None:
    """run() refuses a plain function as handler: it would block the event loop."""
    consumer = _consumer(catalog)

    def blocking(record: Record) -> None:
        pass

    with pytest.raises(TypeError, match="handler must be an async function"):
        await consumer.run(blocking)  # type: ignore[arg-type]


async def test_async_callables_are_accepted_as_handlers(catalog: Catalog) -> None:
    """A partial of an async function and an object with an async __call__ pass the check."""
    consumer = _consumer(catalog)

    async def handler(record: Record, *, tag: str) -> None:
        pass

    class Handler:
        async def __call__(self, record: Record) -> None:
            pass

    for good in (functools.partial(handler, tag="x"), Handler()):
        with pytest.raises(ClosedError, match="not started"):  # past the handler check
            await consumer.run(good)


async def test_a_negative_revoke_timeout_is_refused(catalog: Catalog) -> None:
    """revoke_timeout_s below zero raises ValueError naming the parameter."""
    with pytest.raises(ValueError, match="revoke_timeout_s must be >= 0"):
        _consumer(catalog, revoke_timeout_s=-1)


async def test_run_refuses_a_concurrency_below_one(catalog: Catalog) -> None:
    """concurrency must allow at least one handler."""
    consumer = _consumer(catalog)

    async def handler(record: Record) -> None:
        pass

    with pytest.raises(ValueError, match="concurrency must be >= 1, got 0"):
        await consumer.run(handler, concurrency=0)
