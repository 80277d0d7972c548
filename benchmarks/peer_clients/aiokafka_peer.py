"""aiokafka's measurements for ``benchmarks/peers.py``; runs in a venv with aiokafka.

  produce   ``fut = await producer.send(...)`` per record, every future awaited at the
            end: records are batched while earlier ones are in flight, as aiokafka's
            docs describe ("Message buffering"), and every outcome is known
  consume   ``getmany(max_records=500)``, then ``await consumer.commit()`` per batch
  latency   the same producer, paced, and an ``async for`` consumer in the same loop

The producer and consumer keyword arguments come from peers.py (aiokafka's names for
the settings the raw and governed clients use).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import _common
import aiokafka  # type: ignore[import-untyped]
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import (  # type: ignore[import-untyped]
    KafkaConnectionError,
    KafkaError,
)


def _init_producer_id_versions() -> str:
    from aiokafka.protocol.transaction import InitProducerIdRequest  # type: ignore[import-untyped]

    return ", ".join(f"v{c.API_VERSION}" for c in InitProducerIdRequest.CLASSES)


async def started(producer: AIOKafkaProducer, options: dict[str, Any]) -> AIOKafkaProducer:
    """Start ``producer``, or say why it cannot start on this broker."""
    try:
        await producer.start()
    except KafkaError as exc:
        await producer.stop()
        why = f"AIOKafkaProducer.start() failed: {type(exc).__name__}: {exc}"
        if options.get("enable_idempotence") and not isinstance(exc, KafkaConnectionError):
            why += (
                f" (enable_idempotence=True: the broker refused InitProducerId, which "
                f"aiokafka {aiokafka.__version__} sends as {_init_producer_id_versions()})"
            )
        raise _common.CannotRun(why) from exc
    return producer


async def _produce(args: argparse.Namespace) -> dict[str, Any]:
    producer = await started(
        AIOKafkaProducer(bootstrap_servers=args.bootstrap_servers, **args.producer_options),
        args.producer_options,
    )
    try:
        await producer.send_and_wait(args.topic, b"warm-up", key=_common.KEYS[0])
        keys = _common.KEYS
        n_keys = len(keys)
        value = _common.VALUE
        topic = args.topic
        send = producer.send
        started_at = time.perf_counter()
        futures = [await send(topic, value, key=keys[i % n_keys]) for i in range(args.records)]
        await asyncio.gather(*futures)
        elapsed = time.perf_counter() - started_at
    finally:
        await producer.stop()
    return {"rate": args.records / elapsed}


async def _consume(args: argparse.Namespace) -> dict[str, Any]:
    consumer = AIOKafkaConsumer(
        args.topic,
        bootstrap_servers=args.bootstrap_servers,
        group_id=args.group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **args.consumer_options,
    )
    await consumer.start()
    seen = 0
    first = 0.0
    try:
        while seen < args.records:
            batches = await consumer.getmany(timeout_ms=1000, max_records=500)
            for records in batches.values():
                for _ in records:
                    if not seen:
                        first = time.perf_counter()
                    seen += 1
            if batches:
                await consumer.commit()
        elapsed = time.perf_counter() - first
    finally:
        await consumer.stop()
    return {"rate": (seen - 1) / elapsed}


async def _latency(args: argparse.Namespace) -> dict[str, Any]:
    consumer = AIOKafkaConsumer(
        args.topic,
        bootstrap_servers=args.bootstrap_servers,
        group_id=args.group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **args.consumer_options,
    )
    producer = AIOKafkaProducer(bootstrap_servers=args.bootstrap_servers, **args.producer_options)
    await consumer.start()
    try:
        await started(producer, args.producer_options)
    except _common.CannotRun:
        await consumer.stop()
        raise
    latencies: list[float] = []
    ready = asyncio.Event()

    async def read() -> None:
        seen = 0
        async for msg in consumer:
            elapsed = _common.latency_ms(msg.value)
            seen += 1
            if elapsed is None:
                ready.set()
            else:
                latencies.append(elapsed)
            if seen == args.records + 1:
                return

    try:
        reader = asyncio.create_task(read())
        await producer.send_and_wait(args.topic, _common.READY, key=b"k")
        await asyncio.wait_for(ready.wait(), 60)
        futures = []
        begin = time.perf_counter()
        for i in range(args.records):
            ahead = begin + i / args.rate - time.perf_counter()
            if ahead > 0:
                await asyncio.sleep(ahead)
            futures.append(await producer.send(args.topic, _common.stamped(), key=b"k"))
        await asyncio.gather(*futures)
        await asyncio.wait_for(reader, 60)
    finally:
        await producer.stop()
        await consumer.stop()
    return {"latencies_ms": _common.settled(latencies, args.records)}


if __name__ == "__main__":
    _common.main(
        {
            "produce": lambda args: asyncio.run(_produce(args)),
            "consume": lambda args: asyncio.run(_consume(args)),
            "latency": lambda args: asyncio.run(_latency(args)),
        }
    )
