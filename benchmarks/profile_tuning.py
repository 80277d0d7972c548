"""The evidence behind the profiles' values: candidate settings measured in the same run.

Each candidate is a profile (linger, batch size, compression, queue) run through the
same benchmark as ``governed-kafka bench`` (``governed_kafka.cli._bench_run.run_bench``): produce
throughput, send-to-delivery latency at a steady rate and consume throughput, on
``--value-size`` bytes of JSON-like text, medians of ``--repeats`` interleaved runs,
with the raw client (same durability settings, librdkafka's defaults otherwise) as the
baseline.

The shipped profiles are among the candidates: DURABLE (none, 5 ms), BALANCED (lz4,
10 ms), HIGH_THROUGHPUT (lz4, 5 ms, large queue, large fetches) and LOW_LATENCY (none,
no linger). The others are the roads not taken.

    python benchmarks/profile_tuning.py [--messages 100000] [--repeats 5] [--value-size 1024]
"""

from __future__ import annotations

import json

import attrs

import harness
from governed_kafka import profiles
from governed_kafka.cli._bench_run import RAW, BenchSettings, run_bench

CANDIDATES = (
    profiles.DURABLE,
    profiles.BALANCED,
    profiles.HIGH_THROUGHPUT,
    profiles.LOW_LATENCY,
    attrs.evolve(profiles.HIGH_THROUGHPUT, name="lz4, 20 ms", linger_ms=20),
    attrs.evolve(profiles.HIGH_THROUGHPUT, name="lz4, 5 ms, 4 MB batches", batch_size=4_000_000),
    attrs.evolve(profiles.HIGH_THROUGHPUT, name="zstd, 5 ms", compression="zstd"),
    attrs.evolve(profiles.LOW_LATENCY, name="lz4, no linger", compression="lz4"),
)


def main() -> None:
    parser = harness.arguments(__doc__.splitlines()[0], messages=100_000)
    parser.add_argument("--value-size", type=int, default=1024, help="bytes per value")
    args = parser.parse_args()
    harness.print_environment()
    # A short session timeout lets each run's consumer group form quickly on the
    # embedded broker, which waits out the previous member's session otherwise.
    overrides = () if args.bootstrap_servers else (("session.timeout.ms", 6000),)
    settings = BenchSettings(
        messages=args.messages,
        value_size=args.value_size,
        repeats=args.repeats,
        profiles=CANDIDATES,
        consumer_overrides=overrides,
    )
    candidates = {p.name: p for p in CANDIDATES}
    with harness.broker(args.bootstrap_servers) as bootstrap:
        report = run_bench(bootstrap, settings)
    print(
        f"{args.messages:,} records of {args.value_size} B, 1,000 keys, 6 partitions, "
        f"{args.repeats} runs each; latency at 2,000 records/s"
    )
    raw_rate = next(r for r in report.rows if r.name == RAW).produce_msgs_per_s.median
    header = (
        f"{'candidate':<24} {'linger':>6} {'batch':>9} {'comp':>5} "
        f"{'produce rec/s':>14} {'vs raw':>6} {'min..max':>19} "
        f"{'p50 ms':>7} {'p99 ms':>7} {'e2e p99':>8} {'consume':>9}"
    )
    print(header)
    for row in report.rows:
        p = candidates.get(row.name)
        shape = (
            f"{p.linger_ms:>6g} {p.batch_size:>9,} {p.compression:>5}"
            if p
            else f"{'-':>6} {'-':>9} {'-':>5}"
        )
        produce = row.produce_msgs_per_s
        spread = f"{produce.low:,.0f}..{produce.high:,.0f}"
        print(
            f"{row.name:<24} {shape} {produce.median:>14,.0f} {produce.median / raw_rate:>5.2f}x "
            f"{spread:>19} {row.delivery_p50_ms.median:>7.1f} {row.delivery_p99_ms.median:>7.1f} "
            f"{row.e2e_p99_ms.median:>8.0f} "
            f"{row.consume_msgs_per_s.median:>9,.0f}"
        )
    rows = [r for r in report.rows if r.name != RAW]
    best = max(rows, key=lambda r: r.produce_msgs_per_s.median)
    p50 = min(rows, key=lambda r: r.delivery_p50_ms.median)
    p99 = min(rows, key=lambda r: r.delivery_p99_ms.median)
    print(
        f"highest produce rate: {best.name}; lowest delivery latency: p50 {p50.name}, "
        f"p99 {p99.name}"
    )
    if args.json_path:
        with open(args.json_path, "w", encoding="utf-8") as fh:
            json.dump(report.to_dict(), fh, indent=2)


if __name__ == "__main__":
    main()
