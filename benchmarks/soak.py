"""Bounded soak: produce and consume continuously while a FaultProxy injects random faults.

A GovernedProducer sends keyed records at a steady rate and a GovernedConsumer reads
them, both through a FaultProxy in front of an embedded broker. A fault thread, driven
by ``--seed``, alternates calm spells with random faults: dropped responses, latency,
stalls, connections closed, connections refused. At the end the faults stop, the
producer closes, the consumer catches up, and the topic is read back with a raw
consumer. The report:

  sent        records accepted by send()
  delivered   futures resolved as delivered / failed
  in log      distinct records in the topic, and copies beyond the first (duplicates)
  lost        delivered records missing from the log
  consumed    records handed to the handler: distinct, and redeliveries (at-least-once)
  missed      records in the log the consumer never saw
  rss         resident memory after warm-up and at the end, and the growth

Not part of CI: it runs for minutes.

    python benchmarks/soak.py --minutes 3 [--seed 1] [--rate 2000] [--json soak.json]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import confluent_kafka

import harness
from governed_kafka import (
    BackpressureTimeout,
    Catalog,
    CommitStrategy,
    DeliveryFuture,
    GovernedConsumer,
    GovernedProducer,
    Record,
)
from governed_kafka.testing import FaultProxy, LocalBroker

PARTITIONS = 6
KEYS = 1000

_PENDING, _DELIVERED, _FAILED = 0, 1, 2


def rss_bytes() -> int:
    """Resident memory of this process (Linux: VmRSS; elsewhere: the peak)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class Ledger:
    """What happened to each record, one byte per sequence number (keeps the soak's own
    memory small next to the clients' it measures)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.outcome = bytearray()
        self.consumed = bytearray()
        self.consumed_total = 0
        self.sent = 0
        self.refused = 0

    def accept(self, seq: int) -> None:
        with self.lock:
            self.outcome.append(_PENDING)
            self.sent = seq + 1

    def settle(self, seq: int, future: DeliveryFuture) -> None:
        self.outcome[seq] = _FAILED if future.exception(0) is not None else _DELIVERED

    def consume(self, seq: int) -> None:
        with self.lock:
            if seq >= len(self.consumed):
                self.consumed.extend(bytes(seq + 1 - len(self.consumed)))
            self.consumed[seq] = min(255, self.consumed[seq] + 1)
            self.consumed_total += 1


def _catalog(topic: str) -> Catalog:
    return Catalog.from_dict(
        {
            "topics": [
                {
                    "name": topic,
                    "partitions": PARTITIONS,
                    "replication_factor": 1,
                    "key": "required",
                    "producers": ["soak-producer"],
                    "consumers": ["soak-consumer"],
                }
            ]
        }
    )


def produce(
    producer: GovernedProducer, topic: str, ledger: Ledger, rate: float, stop: threading.Event
) -> None:
    """Send records at ``rate`` per second until ``stop``."""
    seq = 0
    started = time.monotonic()
    while not stop.is_set():
        due = started + seq / rate
        ahead = due - time.monotonic()
        if ahead > 0:
            stop.wait(ahead)
            continue
        try:
            future = producer.send(topic, f"{seq:010d}".encode(), key=f"key-{seq % KEYS}")
        except BackpressureTimeout:
            ledger.refused += 1
            continue
        ledger.accept(seq)
        future.add_done_callback(lambda f, s=seq: ledger.settle(s, f))
        seq += 1


def consume(consumer: GovernedConsumer, ledger: Ledger) -> None:
    def handle(record: Record) -> None:
        ledger.consume(int(record.value))

    consumer.run(handle)


FAULTS = ("drop", "latency", "stall", "close", "outage")


def inject_faults(
    proxy: FaultProxy, rng: random.Random, stop: threading.Event, counts: Counter[str]
) -> None:
    """Alternate calm spells (2-6 s) with one random fault held for 1-4 s."""
    while not stop.wait(rng.uniform(2.0, 6.0)):
        kind = rng.choice(FAULTS)
        hold = rng.uniform(1.0, 4.0)
        counts[kind] += 1
        if kind == "drop":
            proxy.drop_responses(rng.uniform(0.01, 0.10))
        elif kind == "latency":
            proxy.add_latency(rng.uniform(0.05, 0.5), jitter=rng.uniform(0.0, 0.2))
        elif kind == "stall":
            proxy.stall(hold)
        elif kind == "close":
            proxy.close_connections()
        else:  # outage: every connection gone, and none accepted for a while
            proxy.refuse_connections()
            proxy.close_connections()
        stop.wait(hold)
        proxy.heal()


def read_log(bootstrap: str, topic: str, timeout: float = 120.0) -> Counter[int]:
    """Copies of each sequence number in the topic, read with a raw consumer."""
    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"soak-reader-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
        }
    )
    start = confluent_kafka.OFFSET_BEGINNING
    consumer.assign([confluent_kafka.TopicPartition(topic, p, start) for p in range(PARTITIONS)])
    copies: Counter[int] = Counter()
    at_end: set[int] = set()
    deadline = time.monotonic() + timeout
    try:
        while len(at_end) < PARTITIONS:
            if time.monotonic() > deadline:
                msg = f"reading {topic} back did not reach its end within {timeout} s"
                raise TimeoutError(msg)
            for message in consumer.consume(1000, 0.5):
                error = message.error()
                if error is None:
                    copies[int(message.value())] += 1
                    at_end.discard(message.partition())
                elif error.code() == confluent_kafka.KafkaError._PARTITION_EOF:
                    at_end.add(message.partition())
                else:
                    raise confluent_kafka.KafkaException(error)
    finally:
        consumer.close()
    return copies


def soak(minutes: float, seed: int, rate: float, drain_s: float) -> dict[str, Any]:
    rss_start = rss_bytes()
    topic = f"soak.orders.t{uuid.uuid4().hex[:10]}.v1"
    catalog = _catalog(topic)
    ledger = Ledger()
    fault_counts: Counter[str] = Counter()
    with LocalBroker(proxy=FaultProxy(seed=seed)) as broker:
        proxy = broker.proxy
        assert proxy is not None
        broker.create_topic(topic, partitions=PARTITIONS)
        producer = GovernedProducer(
            catalog, service="soak-producer", bootstrap_servers=broker.bootstrap_servers
        )
        consumer = GovernedConsumer(
            catalog,
            service="soak-consumer",
            group_id=f"soak-{seed}",
            topics=topic,
            bootstrap_servers=broker.bootstrap_servers,
            commit=CommitStrategy.batched(),
            overrides={"session.timeout.ms": 6000},
        )
        stop_producing, stop_faults = threading.Event(), threading.Event()
        threads = {
            "producer": threading.Thread(
                target=produce, args=(producer, topic, ledger, rate, stop_producing)
            ),
            "consumer": threading.Thread(target=consume, args=(consumer, ledger)),
            "faults": threading.Thread(
                target=inject_faults,
                args=(proxy, random.Random(seed), stop_faults, fault_counts),
            ),
        }
        started = time.monotonic()
        threads["producer"].start()
        threads["consumer"].start()
        warmup = min(30.0, minutes * 60 / 6)
        time.sleep(warmup)  # clients connected, group joined, buffers sized
        rss_warm = rss_bytes()
        print(f"warm after {warmup:.0f} s: rss {rss_warm / 2**20:.1f} MiB; faults start")
        threads["faults"].start()
        end = started + minutes * 60
        rss_samples = [round(rss_warm / 2**20, 1)]
        while time.monotonic() < end:
            time.sleep(min(30.0, end - time.monotonic()))
            rss_samples.append(round(rss_bytes() / 2**20, 1))
            print(
                f"  t={time.monotonic() - started:5.0f} s sent={ledger.sent:,} "
                f"consumed={ledger.consumed_total:,} faults={sum(fault_counts.values())} "
                f"rss={rss_samples[-1]} MiB",
                flush=True,
            )
        stop_faults.set()
        threads["faults"].join()
        proxy.heal()
        stop_producing.set()
        threads["producer"].join()
        producer.close()  # every future was looked at: nothing to report here
        sent = ledger.sent
        delivered = ledger.outcome.count(_DELIVERED)
        drain_until = time.monotonic() + drain_s
        while time.monotonic() < drain_until:
            with ledger.lock:
                seen = len(ledger.consumed) - ledger.consumed.count(0)
            if seen >= delivered:
                break
            time.sleep(0.5)
        consumer.stop()
        threads["consumer"].join(60)
        rss_end = rss_bytes()
        log = read_log(broker.bootstrap_servers, topic)
        stats = proxy.stats()
        elapsed = time.monotonic() - started

    outcome = ledger.outcome
    lost = [s for s in range(sent) if outcome[s] == _DELIVERED and log[s] == 0]
    failed_in_log = [s for s in range(sent) if outcome[s] == _FAILED and log[s] > 0]
    consumed = ledger.consumed + bytes(max(0, sent - len(ledger.consumed)))
    missed = [s for s in log if consumed[s] == 0]
    distinct_consumed = len(consumed) - consumed.count(0)
    return {
        "minutes": minutes,
        "elapsed_s": round(elapsed, 1),
        "seed": seed,
        "rate": rate,
        "faults": dict(fault_counts),
        "proxy": {
            "responses_dropped": stats.responses_dropped,
            "connections_closed": stats.connections_closed,
            "connections_refused": stats.connections_refused,
            "requests_forwarded": stats.requests_forwarded,
        },
        "sent": sent,
        "refused_by_backpressure": ledger.refused,
        "delivered": delivered,
        "failed": outcome.count(_FAILED),
        "pending": outcome.count(_PENDING),
        "in_log": len(log),
        "duplicates_in_log": sum(n - 1 for n in log.values()),
        "lost": len(lost),
        "failed_but_in_log": len(failed_in_log),
        "consumed": ledger.consumed_total,
        "consumed_distinct": distinct_consumed,
        "redelivered": ledger.consumed_total - distinct_consumed,
        "missed_by_consumer": len(missed),
        "rss_start_mib": round(rss_start / 2**20, 1),
        "rss_warm_mib": round(rss_warm / 2**20, 1),
        "rss_end_mib": round(rss_end / 2**20, 1),
        "rss_growth_mib": round((rss_end - rss_warm) / 2**20, 1),
        "rss_every_30s_mib": rss_samples,
        "environment": harness.environment(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=3.0, help="how long to soak")
    parser.add_argument("--seed", type=int, default=1, help="seed of the random faults")
    parser.add_argument("--rate", type=float, default=2000.0, help="records sent per second")
    parser.add_argument(
        "--drain", type=float, default=120.0, help="seconds the consumer may take to catch up"
    )
    parser.add_argument("--json", dest="json_path", help="also write the report here")
    args = parser.parse_args()
    harness.print_environment()
    result = soak(args.minutes, args.seed, args.rate, args.drain)
    width = max(len(k) for k in result)
    for key, value in result.items():
        if key != "environment":
            print(f"{key:<{width}}  {value}")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(result, indent=2), encoding="utf-8")
    clean = result["lost"] == 0 and result["duplicates_in_log"] == 0 and result["pending"] == 0
    print("verdict: " + ("zero lost, zero duplicates" if clean else "LOSS OR DUPLICATES"))
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
