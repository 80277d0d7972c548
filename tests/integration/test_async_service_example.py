"""examples/async_service.py against a real broker: HTTP in, governed events out."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import pytest_asyncio

from governed_kafka import Catalog
from governed_kafka.aio import AsyncGovernedProducer
from governed_kafka.avro import EVENT_TYPE_HEADER
from governed_kafka.cluster import Cluster
from governed_kafka.testing import LocalBroker
from kafka_helpers import read_all

pytestmark = pytest.mark.asyncio

EXAMPLE = Path(__file__).parent.parent.parent / "examples" / "async_service.py"


@pytest.fixture(scope="module")
def example() -> ModuleType:
    """The example service, imported from its file."""
    spec = importlib.util.spec_from_file_location("async_service_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def broker(example: ModuleType) -> Iterator[LocalBroker]:
    """A broker of this module's own, with the example's topics created from its contracts."""
    with LocalBroker() as private:
        catalog = Catalog.load(example.CONTRACTS, environment="local")
        assert Cluster(private.bootstrap_servers).apply(catalog).ok
        yield private


@pytest_asyncio.fixture
async def service(example: ModuleType, broker: LocalBroker) -> AsyncIterator[int]:
    """The example's HTTP server on a free port; yields the port."""
    catalog = Catalog.load(example.CONTRACTS, environment="local")
    async with AsyncGovernedProducer(
        catalog, service=example.SERVICE, bootstrap_servers=broker.bootstrap_servers
    ) as producer:
        server = await example.serve(producer, "127.0.0.1", 0)
        async with server:
            yield server.sockets[0].getsockname()[1]


async def _request(port: int, method: str, path: str, body: object = None) -> tuple[int, Any]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    data = b"" if body is None else json.dumps(body).encode()
    writer.write(
        f"{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Length: {len(data)}\r\n\r\n".encode()
        + data
    )
    await writer.drain()
    raw = await reader.read()
    writer.close()
    head, _, payload = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(payload)


async def test_a_posted_order_is_written_as_a_governed_event(
    service: int, example: ModuleType, broker: LocalBroker
) -> None:
    """POST /orders answers 202 with where the order landed, keyed by its id, in Avro."""
    order = {"order_id": "o-42", "customer_id": "c-7", "amount_cents": 1999, "currency": "EUR"}
    status, answer = await _request(service, "POST", "/orders", order)
    assert status == 202
    assert answer["topic"] == example.ORDERS
    [record] = [r for r in read_all(broker.bootstrap_servers, example.ORDERS) if r.key() == b"o-42"]
    assert (record.partition(), record.offset()) == (answer["partition"], answer["offset"])
    assert (EVENT_TYPE_HEADER, b"payments.OrderCreated") in (record.headers() or [])
    assert record.value()[:1] == b"\x00"  # Confluent wire format


async def test_an_order_the_contract_refuses_is_answered_422_and_not_written(
    service: int, example: ModuleType, broker: LocalBroker
) -> None:
    """An order that does not fit the schema gets 422 naming the field; nothing is written."""
    order = {"order_id": "o-bad", "customer_id": "c-7", "amount_cents": "lots", "currency": "EUR"}
    status, answer = await _request(service, "POST", "/orders", order)
    keyless = {"customer_id": "c-7", "amount_cents": 5, "currency": "EUR"}
    keyless_status, keyless_answer = await _request(service, "POST", "/orders", keyless)
    assert (status, answer["field"]) == (422, "amount_cents")
    assert (keyless_status, keyless_answer["rule"]) == (422, "key.required")
    written = read_all(broker.bootstrap_servers, example.ORDERS)
    assert all(r.key() not in (b"o-bad", None) for r in written)
