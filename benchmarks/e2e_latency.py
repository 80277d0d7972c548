"""End-to-end latency at a steady rate: GovernedProducer + GovernedConsumer against a raw
confluent_kafka Producer + a raw ``poll()`` loop, same broker, same run.

Each variant sends ``--messages`` records at ``--rate`` records/s, each carrying its send
time, to a one-partition topic that a consumer, already assigned and at the end of the
log, reads in the same process; the latency of a record is the time from just before its
send to its handler (governed) or to ``poll()`` returning it (raw). The first 10% of each
run is a warm-up and is not counted.

  raw         Producer with the profile's producer settings (linger, batching,
              compression), Consumer.poll() loop with the profile's fetch settings
  governed    GovernedProducer(profile=...) and GovernedConsumer(profile=...).run()

Targets (issue 16): LOW_LATENCY p50 <= 1.3x raw's p50 and p99 <= 2x raw's p99; DURABLE
p50 within 1.3x of raw with DURABLE's settings.

    python benchmarks/e2e_latency.py [--messages 3000] [--rate 1000] [--repeats 5]
"""

from __future__ import annotations

import statistics
import struct
import threading
import time
import uuid
from collections.abc import Callable

import confluent_kafka

import harness
from governed_kafka import Catalog, CommitStrategy, GovernedConsumer, GovernedProducer, profiles
from governed_kafka.profiles import Profile

STAMP = struct.Struct(">q")
SESSION = {"session.timeout.ms": 6000}
PAD = b"x" * 92  # 100-byte values


def _topic(bootstrap: str, rf: int) -> tuple[str, Catalog]:
    name = f"bench.latency.t{uuid.uuid4().hex[:10]}.v1"
    harness.create_topic(bootstrap, name, 1, rf)
    catalog = Catalog.from_dict(
        {
            "topics": [
                {
                    "name": name,
                    "partitions": 1,
                    "replication_factor": rf,
                    "producers": ["bench"],
                    "consumers": ["bench"],
                }
            ]
        }
    )
    return name, catalog


def _pace(
    send: Callable[[bytes], None], messages: int, rate: int, serve: Callable[[float], None]
) -> None:
    begin = time.perf_counter()
    for i in range(messages):
        # Until the record's time: a raw producer's poll() returns as soon as it served
        # a delivery report, and sending then would give raw a schedule of its own.
        while (wait := begin + i / rate - time.perf_counter()) > 0:
            serve(wait)
        send(STAMP.pack(time.monotonic_ns()) + PAD)


def _settled(latencies: list[float], messages: int) -> list[float]:
    return latencies[messages // 10 :]


def raw(bootstrap: str, profile: Profile, messages: int, rate: int, rf: int) -> list[float]:
    topic, _ = _topic(bootstrap, rf)
    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"raw-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "log_level": 3,
            **profile.to_librdkafka("consumer"),
            **SESSION,
        }
    )
    consumer.subscribe([topic])
    producer = confluent_kafka.Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            **profile.to_librdkafka(),
        }
    )
    producer.produce(topic, STAMP.pack(0) + PAD, b"k")
    producer.flush(10)
    latencies: list[float] = []
    ready = threading.Event()
    done = threading.Event()

    def read() -> None:
        seen = 0
        while seen < messages + 1 and not done.is_set():
            msg = consumer.poll(0.1)
            if msg is None or msg.error() is not None:
                continue
            seen += 1
            sent = STAMP.unpack_from(msg.value())[0]
            if sent == 0:
                ready.set()  # the warm-up record: the consumer is at the end of the log
                continue
            latencies.append((time.monotonic_ns() - sent) / 1e6)

    reader = threading.Thread(target=read)
    reader.start()
    ready.wait(60)
    _pace(lambda v: producer.produce(topic, v, b"k"), messages, rate, producer.poll)
    producer.flush(30)
    reader.join(60)
    done.set()
    reader.join()
    consumer.close()
    return _settled(latencies, messages)


def governed(bootstrap: str, profile: Profile, messages: int, rate: int, rf: int) -> list[float]:
    topic, catalog = _topic(bootstrap, rf)
    consumer = GovernedConsumer(
        catalog,
        service="bench",
        group_id=f"governed-{uuid.uuid4().hex}",
        topics=[topic],
        bootstrap_servers=bootstrap,
        commit=CommitStrategy.batched(max_records=500, max_interval_s=1.0),
        overrides=SESSION,
        profile=profile,
        verify_topics=False,
    )
    producer = GovernedProducer(
        catalog, service="bench", bootstrap_servers=bootstrap, profile=profile, verify_topics=False
    )
    producer.send_and_wait(topic, STAMP.pack(0) + PAD, key=b"k", timeout=30)
    latencies: list[float] = []
    ready = threading.Event()

    def handle(record: object) -> None:
        sent = STAMP.unpack_from(record.value)[0]  # type: ignore[attr-defined]
        if sent == 0:
            ready.set()
            return
        latencies.append((time.monotonic_ns() - sent) / 1e6)

    reader = threading.Thread(
        target=lambda: consumer.run(handle, max_records=messages + 1, timeout=120)
    )
    reader.start()
    ready.wait(60)
    _pace(lambda v: producer.send(topic, v, key=b"k"), messages, rate, time.sleep)
    producer.flush(30)
    reader.join()
    producer.close()
    consumer.close()
    return _settled(latencies, messages)


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = harness.arguments(__doc__.splitlines()[0], repeats=5, messages=3000)
    parser.add_argument("--rate", type=int, default=1000, help="records per second")
    parser.add_argument(
        "--profiles", default="low-latency,durable", help="comma-separated profiles"
    )
    args = parser.parse_args()
    harness.print_environment()
    chosen = [profiles.by_name(n) for n in args.profiles.split(",")]
    rf = args.replication_factor
    results: dict[str, dict[str, list[float]]] = {}
    with harness.broker(args.bootstrap_servers) as bootstrap:
        for profile in chosen:
            runs: dict[str, list[list[float]]] = {"raw": [], "governed": []}
            variants = {
                "raw": lambda p=profile: raw(bootstrap, p, args.messages, args.rate, rf),
                "governed": lambda p=profile: governed(bootstrap, p, args.messages, args.rate, rf),
            }
            for run in variants.values():  # warm-up, not counted
                run()
            for _ in range(args.repeats):
                for name, run in variants.items():
                    runs[name].append(run())
            results[profile.name] = {
                f"{name} p{q}": [_quantile(r, q / 100) for r in measured]
                for name, measured in runs.items()
                for q in (50, 99)
            }
    print(
        f"{args.messages:,} records of 100 B at {args.rate:,}/s per run, one partition "
        f"(RF {rf}), {args.repeats} runs per variant, first 10% of each run not counted"
    )
    report: dict[str, object] = {}
    for name, figures in results.items():
        print(f"\n{name}: end-to-end latency, ms (median of runs; min..max)")
        for label, values in figures.items():
            spread = f"({min(values):.2f}..{max(values):.2f})"
            print(f"  {label:<13} {statistics.median(values):8.2f}  {spread}")
        p50 = statistics.median(figures["governed p50"]) / statistics.median(figures["raw p50"])
        p99 = statistics.median(figures["governed p99"]) / statistics.median(figures["raw p99"])
        print(f"  governed / raw: p50 {p50:.2f}x, p99 {p99:.2f}x")
        report[name] = {"figures": figures, "p50_ratio": p50, "p99_ratio": p99}
    if args.json_path:
        import json

        with open(args.json_path, "w", encoding="utf-8") as fh:
            json.dump({"results": report, "environment": harness.environment()}, fh, indent=2)


if __name__ == "__main__":
    main()
