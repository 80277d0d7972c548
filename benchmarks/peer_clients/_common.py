"""What every peer measurement shares, written with the standard library only.

Each peer runs in an interpreter of its own, started by ``benchmarks/peers.py``:
quixstreams pins an older confluent-kafka than governed_kafka needs, so the clients
cannot share one environment. A measurement prints one line of JSON on stdout:

  {"rate": 123456.0}                     records per second (produce, consume)
  {"latencies_ms": [...]}                one per record, warm-up already left out
  {"cannot_run": "why"}                  this client cannot do this on this broker

The records are those of the raw and governed measurements: 100-byte values over
1,000 keys (throughput), or 100-byte values that start with their send time
(latency, as in ``benchmarks/e2e_latency.py``).
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

KEYS = [f"customer-{i:04d}".encode() for i in range(1000)]
VALUE = b"v" * 100
STAMP = struct.Struct(">q")
PAD = b"x" * 92
READY = STAMP.pack(0) + PAD  # the first record of a latency run: the consumer is caught up


class CannotRun(Exception):
    """This client cannot run this measurement on this broker; the message says why."""


def stamped() -> bytes:
    """A 100-byte latency record carrying its send time."""
    return STAMP.pack(time.monotonic_ns()) + PAD


def latency_ms(value: bytes) -> float | None:
    """Milliseconds since ``value`` was stamped, or None for the ready record."""
    sent: int = STAMP.unpack_from(value)[0]
    if sent == 0:
        return None
    return (time.monotonic_ns() - sent) / 1e6


def settled(latencies: list[float], records: int) -> list[float]:
    """Leave out the first 10% of a run, as ``benchmarks/e2e_latency.py`` does."""
    return latencies[records // 10 :]


def pace(send: Callable[[], None], records: int, rate: int, wait: Callable[[float], None]) -> None:
    """Call ``send`` ``records`` times at ``rate`` per second."""
    begin = time.perf_counter()
    for i in range(records):
        # Until the record's time: a producer's poll() returns once it served a report.
        while (ahead := begin + i / rate - time.perf_counter()) > 0:
            wait(ahead)
        send()


Measure = Callable[[argparse.Namespace], dict[str, Any]]


def main(measures: Mapping[str, Measure]) -> None:
    """Run the measurement named on the command line and print its result as JSON."""
    parser = argparse.ArgumentParser()
    parser.add_argument("measure", choices=sorted(measures))
    parser.add_argument("--bootstrap-servers", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--records", type=int, required=True)
    parser.add_argument("--rate", type=int, default=1000, help="latency: records per second")
    parser.add_argument("--group", default="", help="consumer group id")
    parser.add_argument(
        "--producer-options", type=json.loads, default={}, help="JSON: producer settings"
    )
    parser.add_argument(
        "--consumer-options", type=json.loads, default={}, help="JSON: consumer settings"
    )
    args = parser.parse_args()
    try:
        result = measures[args.measure](args)
    except CannotRun as exc:
        result = {"cannot_run": str(exc)}
    sys.stdout.write(json.dumps(result) + "\n")
