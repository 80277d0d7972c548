"""Producing through a healthy FaultProxy against producing to the broker directly.

The fault suite produces 20,000 records through a FaultProxy; this checks that the
proxy, with no fault active, does not dominate such a run. Two embedded brokers run
side by side, one behind a proxy (it advertises the proxy, so every connection goes
through it), one without. Each timed run creates a 6-partition topic, sends
``--messages`` keyed 100-byte records with the raw client (the governed settings and
the DURABLE profile) and waits until all are delivered.

Variants:
  direct    the broker without proxy
  proxied   the broker behind a FaultProxy with no fault active

Target: proxied >= 0.8x direct.

    python benchmarks/proxy_overhead.py [--messages 20000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import time
import uuid

import confluent_kafka

import harness
from governed_kafka import profiles
from governed_kafka._config import producer_config
from governed_kafka.testing import FaultProxy, LocalBroker

PARTITIONS = 6
KEYS = [f"customer-{i:04d}".encode() for i in range(1000)]
VALUE = b"v" * 100


def produce(broker: LocalBroker, messages: int) -> float:
    """Records per second for one run of ``messages`` records."""
    topic = f"bench.proxy.t{uuid.uuid4().hex[:10]}.v1"
    broker.create_topic(topic, partitions=PARTITIONS)
    config = producer_config(
        bootstrap_servers=broker.bootstrap_servers,
        client_id="bench",
        profile=profiles.DURABLE,
        overrides=None,
    )
    producer = confluent_kafka.Producer(config)
    # Connections, metadata and producer id outside the timing: one record per partition.
    for partition in range(PARTITIONS):
        producer.produce(topic, VALUE, KEYS[0], partition=partition)
    producer.flush(30)
    started = time.perf_counter()
    for i in range(messages):
        while True:
            try:
                producer.produce(topic, VALUE, KEYS[i % 1000])
                break
            except BufferError:  # the local queue is full: serve reports to make room
                producer.poll(0.01)
        if not i % 1000:
            producer.poll(0)
    remaining = producer.flush(60)
    elapsed = time.perf_counter() - started
    if remaining:
        msg = f"{remaining} records not delivered within 60 s"
        raise RuntimeError(msg)
    return messages / elapsed


def main() -> None:
    # No --bootstrap-servers: the proxied broker must advertise the proxy, so both are ours.
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per variant")
    parser.add_argument("--messages", type=int, default=20_000, help="records per run")
    parser.add_argument("--json", dest="json_path", help="also write the results here")
    args = parser.parse_args()
    harness.print_environment()
    with LocalBroker() as direct, LocalBroker(proxy=FaultProxy(seed=0)) as proxied:
        rates = harness.compare(
            {
                "direct": lambda: produce(direct, args.messages),
                "proxied": lambda: produce(proxied, args.messages),
            },
            repeats=args.repeats,
        )
        harness.report(
            rates,
            baseline="direct",
            unit="records/s",
            target=("proxied", 0.8),
            json_path=args.json_path,
        )
        assert proxied.proxy is not None
        stats = proxied.proxy.stats()
        print(
            f"proxy: {stats.requests_forwarded:,} requests, {stats.responses_forwarded:,} "
            f"responses, {stats.bytes_to_broker / 2**20:.1f} MiB to the broker"
        )


if __name__ == "__main__":
    main()
