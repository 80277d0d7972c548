"""quixstreams' measurements for ``benchmarks/peers.py``; runs in quixstreams' own venv.

  produce           Application.get_producer().produce() per record, then flush()
  produce-callback  the same with on_delivery= per record, every report counted
  consume           Application + StreamingDataFrame, a checkpoint (a commit that waits
                    for the broker's answer) every 500 records (commit_every=500),
                    stopped by run(count=N)
  consume-default   the same with quixstreams' default checkpoints, every 5 s
  latency           the same consumer, records paced by a producer thread

quixstreams' producer wraps confluent_kafka.Producer and calls poll(0) after every
produce(); the settings peers.py passes (the raw client's) go in as extra config.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from typing import Any

import _common
from quixstreams import Application


def _application(args: argparse.Namespace, state_dir: str, commit_every: int = 0) -> Application:
    return Application(
        broker_address=args.bootstrap_servers,
        consumer_group=args.group or "peers-quix",
        auto_offset_reset="earliest",
        commit_every=commit_every,
        producer_extra_config=args.producer_options,
        consumer_extra_config=args.consumer_options,
        state_dir=state_dir,
        loglevel="WARNING",
        use_changelog_topics=False,
    )


def produce(args: argparse.Namespace, *, callback: bool = False) -> dict[str, Any]:
    delivered = 0

    def on_delivery(err: object, msg: object) -> None:
        nonlocal delivered
        delivered += 1

    with tempfile.TemporaryDirectory() as state, _application(args, state).get_producer() as p:
        p.produce(args.topic, b"warm-up", _common.KEYS[0])
        p.flush(10)
        keys = _common.KEYS
        n_keys = len(keys)
        value = _common.VALUE
        topic = args.topic
        produce = p.produce
        started = time.perf_counter()
        if callback:
            for i in range(args.records):
                produce(topic, value, keys[i % n_keys], on_delivery=on_delivery)
        else:
            for i in range(args.records):
                produce(topic, value, keys[i % n_keys])
        p.flush()
        elapsed = time.perf_counter() - started
    if callback and delivered != args.records:
        msg = f"{delivered} delivery reports for {args.records} records"
        raise RuntimeError(msg)
    return {"rate": args.records / elapsed}


def consume(args: argparse.Namespace, *, commit_every: int = 500) -> dict[str, Any]:
    seen = 0
    first = last = 0.0

    def count(value: bytes) -> None:
        nonlocal seen, first, last
        last = time.perf_counter()
        if not seen:
            first = last
        seen += 1

    with tempfile.TemporaryDirectory() as state:
        app = _application(args, state, commit_every=commit_every)
        topic = app.topic(args.topic, key_deserializer="bytes", value_deserializer="bytes")
        app.dataframe(topic).update(count)
        app.run(count=args.records, collect=False)
    return {"rate": (seen - 1) / (last - first)}


def latency(args: argparse.Namespace) -> dict[str, Any]:
    latencies: list[float] = []
    ready = threading.Event()

    def measure(value: bytes) -> None:
        elapsed = _common.latency_ms(value)
        if elapsed is None:
            ready.set()
        else:
            latencies.append(elapsed)

    with tempfile.TemporaryDirectory() as state:
        app = _application(args, state)
        topic = app.topic(args.topic, key_deserializer="bytes", value_deserializer="bytes")
        app.dataframe(topic).update(measure)

        def send() -> None:
            with app.get_producer() as producer:
                producer.produce(args.topic, _common.READY, b"k")
                producer.flush(10)
                if not ready.wait(60):
                    app.stop()
                    return
                _common.pace(
                    lambda: producer.produce(args.topic, _common.stamped(), b"k"),
                    args.records,
                    args.rate,
                    producer.poll,
                )

        sender = threading.Thread(target=send)
        sender.start()
        # run() installs signal handlers, so the consumer takes the main thread.
        app.run(count=args.records + 1, timeout=120, collect=False)
        sender.join()
    return {"latencies_ms": _common.settled(latencies, args.records)}


if __name__ == "__main__":
    _common.main(
        {
            "produce": produce,
            "produce-callback": lambda args: produce(args, callback=True),
            "consume": consume,
            "consume-default": lambda args: consume(args, commit_every=0),
            "latency": latency,
        }
    )
