"""faststream's measurements for ``benchmarks/peers.py``; runs in a venv with
``faststream[kafka]`` (its Kafka broker is built on aiokafka).

  produce   ``await broker.publish(..., no_confirm=True)`` per record, which returns
            aiokafka's delivery future; every future awaited at the end
  consume   a batch subscriber (``batch=True, max_records=500``) with
            ``AckPolicy.ACK``: the batch's offsets committed after its handler returns
  consume-default  a per-record subscriber with faststream's default AckPolicy.ACK_FIRST:
            aiokafka's auto-commit (every 5 s) of what was received, processed or not
  latency   a per-record subscriber in the same loop as a paced publisher

The keyword arguments come from peers.py: aiokafka's names, which faststream passes on.
faststream's own log (a line per record or batch received and processed, on stdout) is
turned off with ``logger=None``, so that the figures are the client's, not the log's.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import _common
from faststream import AckPolicy
from faststream.kafka import KafkaBroker


async def _started(broker: KafkaBroker, options: dict[str, Any]) -> None:
    """Start ``broker``, or say why it cannot start on this broker."""
    from aiokafka.errors import (  # type: ignore[import-untyped]
        KafkaConnectionError,
        KafkaError,
    )

    try:
        await broker.start()
    except KafkaError as exc:
        await broker.stop()
        why = f"KafkaBroker.start() failed: {type(exc).__name__}: {exc}"
        if options.get("enable_idempotence") and not isinstance(exc, KafkaConnectionError):
            why += (
                " (enable_idempotence=True: faststream starts an idempotent aiokafka "
                "producer, and the broker refused its InitProducerId)"
            )
        raise _common.CannotRun(why) from exc


async def _produce(args: argparse.Namespace) -> dict[str, Any]:
    broker = KafkaBroker(args.bootstrap_servers.split(","), logger=None, **args.producer_options)
    await _started(broker, args.producer_options)
    try:
        await broker.publish(b"warm-up", args.topic, key=_common.KEYS[0])
        keys = _common.KEYS
        n_keys = len(keys)
        value = _common.VALUE
        topic = args.topic
        publish = broker.publish
        started = time.perf_counter()
        futures = [
            await publish(value, topic, key=keys[i % n_keys], no_confirm=True)
            for i in range(args.records)
        ]
        await asyncio.gather(*futures)
        elapsed = time.perf_counter() - started
    finally:
        await broker.stop()
    return {"rate": args.records / elapsed}


async def _consume(args: argparse.Namespace) -> dict[str, Any]:
    broker = KafkaBroker(args.bootstrap_servers.split(","), logger=None)
    seen = 0
    first = last = 0.0
    done = asyncio.Event()

    @broker.subscriber(  # type: ignore[untyped-decorator]
        args.topic,
        group_id=args.group,
        auto_offset_reset="earliest",
        batch=True,
        max_records=500,
        ack_policy=AckPolicy.ACK,
        **args.consumer_options,
    )
    async def count(values: list[bytes]) -> None:
        nonlocal seen, first, last
        if not seen:
            first = time.perf_counter()
        seen += len(values)
        last = time.perf_counter()
        if seen >= args.records:
            done.set()

    await _started(broker, {})
    try:
        await asyncio.wait_for(done.wait(), 600)
    finally:
        await broker.stop()
    return {"rate": (seen - 1) / (last - first)}


async def _consume_default(args: argparse.Namespace) -> dict[str, Any]:
    broker = KafkaBroker(args.bootstrap_servers.split(","), logger=None)
    seen = 0
    first = last = 0.0
    done = asyncio.Event()

    @broker.subscriber(  # type: ignore[untyped-decorator]
        args.topic, group_id=args.group, auto_offset_reset="earliest", **args.consumer_options
    )
    async def count(value: bytes) -> None:
        nonlocal seen, first, last
        last = time.perf_counter()
        if not seen:
            first = last
        seen += 1
        if seen >= args.records:
            done.set()

    await _started(broker, {})
    try:
        await asyncio.wait_for(done.wait(), 600)
    finally:
        await broker.stop()
    return {"rate": (seen - 1) / (last - first)}


async def _latency(args: argparse.Namespace) -> dict[str, Any]:
    broker = KafkaBroker(args.bootstrap_servers.split(","), logger=None, **args.producer_options)
    latencies: list[float] = []
    ready = asyncio.Event()
    done = asyncio.Event()

    @broker.subscriber(  # type: ignore[untyped-decorator]
        args.topic, group_id=args.group, auto_offset_reset="earliest", **args.consumer_options
    )
    async def measure(value: bytes) -> None:
        elapsed = _common.latency_ms(value)
        if elapsed is None:
            ready.set()
            return
        latencies.append(elapsed)
        if len(latencies) == args.records:
            done.set()

    await _started(broker, args.producer_options)
    try:
        await broker.publish(_common.READY, args.topic, key=b"k")
        await asyncio.wait_for(ready.wait(), 60)
        futures = []
        begin = time.perf_counter()
        for i in range(args.records):
            ahead = begin + i / args.rate - time.perf_counter()
            if ahead > 0:
                await asyncio.sleep(ahead)
            futures.append(
                await broker.publish(_common.stamped(), args.topic, key=b"k", no_confirm=True)
            )
        await asyncio.gather(*futures)
        await asyncio.wait_for(done.wait(), 60)
    finally:
        await broker.stop()
    return {"latencies_ms": _common.settled(latencies, args.records)}


if __name__ == "__main__":
    _common.main(
        {
            "produce": lambda args: asyncio.run(_produce(args)),
            "consume": lambda args: asyncio.run(_consume(args)),
            "consume-default": lambda args: asyncio.run(_consume_default(args)),
            "latency": lambda args: asyncio.run(_latency(args)),
        }
    )
