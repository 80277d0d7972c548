"""An asyncio HTTP service that publishes one governed event per request.

``POST /orders`` takes an order as JSON. The service sends it to
``payments.order.created.v1`` with :class:`governed_kafka.aio.AsyncGovernedProducer`,
keyed by its ``order_id``, and answers once the broker has it. The topic's contract
(``examples/governance.toml``) decides what may be sent: the Avro schema, the required
key, the event type. A refused order is answered with the reason, and nothing is sent.

    202 {"topic": ..., "partition": 1, "offset": 12}    written
    422 {"error": ..., "rule": ..., "field": ...}       refused by the contract
    503 {"error": ...}                                  local queue full (backpressure)
    502 {"error": ...}                                  not delivered

It uses the standard library's ``asyncio.start_server`` only, so the example needs no web
framework; with FastAPI, aiohttp or Starlette the handler body is the same.

Run it against the embedded broker (``pip install "governed-kafka[local]"``); it starts
a local broker and creates the topics of the contracts::

    python examples/async_service.py
    curl -s -X POST http://127.0.0.1:8080/orders \\
        -d '{"order_id": "o-1", "customer_id": "c-1", "amount_cents": 1999, "currency": "EUR"}'

or against a cluster whose topics exist (``governed-kafka apply``)::

    python examples/async_service.py --bootstrap-servers kafka-1:9092 --env prod

Stop it with Ctrl-C: in-flight sends finish, then the producer closes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import time
from pathlib import Path
from typing import Any

from governed_kafka import (
    BackpressureTimeout,
    Catalog,
    DeliveryError,
    GovernanceViolation,
    SerializationError,
)
from governed_kafka.aio import AsyncGovernedProducer

CONTRACTS = Path(__file__).with_name("governance.toml")
ORDERS = "payments.order.created.v1"
SERVICE = "checkout"

#: Largest request body accepted, in bytes.
MAX_BODY = 64 * 1024

_REASONS = {200: "OK", 202: "Accepted", 400: "Bad Request", 404: "Not Found"}
_REASONS |= {413: "Payload Too Large", 422: "Unprocessable Entity"}
_REASONS |= {502: "Bad Gateway", 503: "Service Unavailable"}


class BadRequest(Exception):
    """The request is not HTTP this service understands."""


async def read_request(reader: asyncio.StreamReader) -> tuple[str, str, bytes]:
    """Method, path and body of one HTTP/1.1 request."""
    head = await reader.readuntil(b"\r\n\r\n")
    request_line, *header_lines = head.decode("latin-1").split("\r\n")
    try:
        method, path, _version = request_line.split(" ")
    except ValueError:
        raise BadRequest(f"malformed request line {request_line!r}") from None
    headers = {}
    for line in header_lines:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    if length > MAX_BODY:
        raise BadRequest(f"body of {length} bytes is over {MAX_BODY}")
    body = await reader.readexactly(length) if length else b""
    return method, path, body


def response(status: int, payload: dict[str, Any]) -> bytes:
    body = json.dumps(payload).encode()
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, '')}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body


class OrderService:
    """Turns HTTP requests into governed events."""

    def __init__(self, producer: AsyncGovernedProducer) -> None:
        self.producer = producer

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            method, path, body = await read_request(reader)
            status, payload = await self.route(method, path, body)
        except (BadRequest, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as bad:
            status, payload = 400, {"error": str(bad)}
        writer.write(response(status, payload))
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()

    async def route(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        if (method, path) == ("GET", "/healthz"):
            return 200, {"status": "ok"}
        if (method, path) != ("POST", "/orders"):
            return 404, {"error": f"no route for {method} {path}"}
        try:
            order = json.loads(body)
        except ValueError as exc:
            return 400, {"error": f"body is not JSON: {exc}"}
        if not isinstance(order, dict):
            return 400, {"error": "body must be a JSON object"}
        order.setdefault("created_at", int(time.time() * 1000))
        return await self.publish(order)

    async def publish(self, order: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        try:
            written = await self.producer.send(ORDERS, order, key=order.get("order_id"))
        except GovernanceViolation as refused:
            return 422, {"error": str(refused), "rule": refused.rule, "field": refused.field}
        except SerializationError as refused:
            return 422, {"error": str(refused), "rule": "schema", "field": refused.field}
        except BackpressureTimeout as busy:
            return 503, {"error": str(busy)}
        except DeliveryError as failed:
            return 502, {"error": str(failed)}
        return 202, {
            "topic": written.topic,
            "partition": written.partition,
            "offset": written.offset,
        }


async def serve(producer: AsyncGovernedProducer, host: str, port: int) -> asyncio.Server:
    """Start answering HTTP on ``host:port`` (port 0: any free one)."""
    return await asyncio.start_server(OrderService(producer).handle, host, port)


async def run(catalog: Catalog, bootstrap_servers: str, host: str, port: int) -> None:
    async with AsyncGovernedProducer(
        catalog, service=SERVICE, bootstrap_servers=bootstrap_servers
    ) as producer:
        server = await serve(producer, host, port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        address = server.sockets[0].getsockname()
        print(f"order service on http://{address[0]}:{address[1]} (Ctrl-C stops it)")
        async with server:
            await stop.wait()
        print("stopping: finishing the sends in flight")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap-servers", help="a cluster whose topics exist")
    parser.add_argument("--env", default="local", help="contracts environment (default local)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    catalog = Catalog.load(CONTRACTS, environment=args.env)
    if args.bootstrap_servers:
        asyncio.run(run(catalog, args.bootstrap_servers, args.host, args.port))
        return
    from governed_kafka.cluster import Cluster
    from governed_kafka.testing import LocalBroker

    with LocalBroker() as broker:
        print(f"embedded broker at {broker.bootstrap_servers}")
        Cluster(broker.bootstrap_servers).apply(catalog)  # create the contracts' topics
        asyncio.run(run(catalog, broker.bootstrap_servers, args.host, args.port))


if __name__ == "__main__":
    main()
