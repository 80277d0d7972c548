"""What observability costs on the send path: GovernedProducer.send with and without hooks.

Same broker, same settings (DURABLE profile), same payloads as produce_overhead.py:
100-byte values over 1,000 distinct keys into a 6-partition topic. Each timed run
sends ``--messages`` records and waits until all are delivered.

Variants:
  raw              confluent_kafka.Producer.produce, no callback (for scale)
  no hooks         GovernedProducer.send, no hooks (the baseline)
  tracing, API     OpenTelemetryHook with no SDK configured (the API's no-op tracer)
  tracing, SDK     OpenTelemetryHook on an SDK TracerProvider exporting every span to an
                   InMemorySpanExporter through a SimpleSpanProcessor (a span per record)
  metrics, SDK     OpenTelemetryMetrics on an SDK MeterProvider with an InMemoryMetricReader

Two tables: throughput in wall-clock time, and records per CPU-second of the whole
process (librdkafka's threads included), which shared machines disturb less.

Target: "tracing, API" >= 0.95x "no hooks" (costs at most 5%).

    python benchmarks/hooks_overhead.py [--messages 200000] [--repeats 7]
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence

import confluent_kafka
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import harness
from governed_kafka import GovernedProducer, profiles
from governed_kafka._config import producer_config
from governed_kafka.metrics import OpenTelemetryMetrics
from governed_kafka.tracing import OpenTelemetryHook
from produce_overhead import KEYS, VALUE, _new_topic

PARTITIONS = 6


def _timed(run: Callable[[], None], messages: int, cpu: list[float]) -> float:
    gc.collect()  # start every run with the same garbage: none
    wall0, cpu0 = time.perf_counter(), time.process_time()
    run()
    wall, used = time.perf_counter() - wall0, time.process_time() - cpu0
    cpu.append(messages / used)
    return messages / wall


def raw(bootstrap: str, messages: int, cpu: list[float]) -> float:
    topic, _ = _new_topic(bootstrap)
    config = producer_config(
        bootstrap_servers=bootstrap, client_id="bench", profile=profiles.DURABLE, overrides=None
    )
    producer = confluent_kafka.Producer(config)
    producer.produce(topic, b"warm-up", KEYS[0])
    producer.flush(10)
    produce, poll, keys = producer.produce, producer.poll, KEYS

    def run() -> None:
        for i in range(messages):
            while True:
                try:
                    produce(topic, VALUE, keys[i % 1000])
                    break
                except BufferError:
                    poll(0.005)
            if not i % 1000:
                poll(0)
        producer.flush()

    return _timed(run, messages, cpu)


def governed(
    bootstrap: str,
    messages: int,
    cpu: list[float],
    hooks: Callable[[], Sequence[object]],
    after: Callable[[], object] = lambda: None,
) -> float:
    topic, catalog = _new_topic(bootstrap)
    producer = GovernedProducer(
        catalog, service="bench", bootstrap_servers=bootstrap, hooks=hooks()
    )
    producer.send_and_wait(topic, b"warm-up", key=KEYS[0])
    send, keys = producer.send, KEYS

    def run() -> None:
        for i in range(messages):
            send(topic, VALUE, key=keys[i % 1000])
        producer.flush()

    rate = _timed(run, messages, cpu)
    producer.close()
    after()
    return rate


def main() -> None:
    args = harness.arguments(__doc__.splitlines()[0], messages=200_000, repeats=7).parse_args()
    harness.print_environment()
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])

    cpu: dict[str, list[float]] = {}
    variants: dict[str, Callable[[str, list[float]], float]] = {
        "raw": lambda b, c: raw(b, args.messages, c),
        "no hooks": lambda b, c: governed(b, args.messages, c, lambda: ()),
        "tracing, API": lambda b, c: governed(b, args.messages, c, lambda: [OpenTelemetryHook()]),
        "tracing, SDK": lambda b, c: governed(
            b,
            args.messages,
            c,
            lambda: [OpenTelemetryHook(tracer_provider=tracer_provider)],
            after=exporter.clear,  # the spans of one run must not weigh on the next
        ),
        "metrics, SDK": lambda b, c: governed(
            b, args.messages, c, lambda: [OpenTelemetryMetrics(meter_provider=meter_provider)]
        ),
    }

    def runner(name: str) -> Callable[[], float]:
        samples = cpu.setdefault(name, [])
        return lambda: variants[name](bootstrap, samples)

    with harness.broker(args.bootstrap_servers) as bootstrap:
        rates = harness.compare({name: runner(name) for name in variants}, repeats=args.repeats)
    for samples in cpu.values():
        del samples[0]  # the warm-up run
    print(
        f"{args.messages:,} records of {len(VALUE)} bytes, {len(KEYS):,} keys, "
        f"{PARTITIONS} partitions, {args.repeats} runs each"
    )
    print("\nwall-clock throughput")
    result = harness.report(rates, baseline="no hooks", unit="msg/s", target=("tracing, API", 0.95))
    print("\nrecords per CPU-second of the process")
    cpu_result = harness.report(
        cpu, baseline="no hooks", unit="msg/cpu-s", target=("tracing, API", 0.95)
    )
    if args.json_path:
        import json

        with open(args.json_path, "w", encoding="utf-8") as fh:
            json.dump({"wall": result, "cpu": cpu_result}, fh, indent=2)


if __name__ == "__main__":
    main()
