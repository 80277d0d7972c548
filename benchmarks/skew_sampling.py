"""What the skew watch costs on the send path, and what sampling does to what it finds.

Same broker, settings and payloads as produce_overhead.py (100-byte values, 1,000
keys, 6 partitions); GovernedProducer.send with the skew watch off and at several
sampling rates (``SkewPolicy(sample_every=N)``; the default is 64).

Part 1, cost: throughput per variant in wall-clock time and per CPU-second of the
process, ratios to "skew off".

Part 2, accuracy: an untimed pass per rate over a skewed stream (one key takes
``--hot-share`` of the sends, the rest spread over 20,000 keys). Reported: samples
taken, whether the hot key is first in ``producer.skew()``, the hottest partition's
share as estimated from the samples against the true share of all sends, and the
skew alarms raised over the judged windows.

    python benchmarks/skew_sampling.py [--messages 200000] [--repeats 7] [--hot-share 0.25]
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable

import harness
from governed_kafka import GovernedProducer
from governed_kafka.hooks import Hook, SkewDetails
from governed_kafka.skew import SkewPolicy
from produce_overhead import KEYS, VALUE, _new_topic

RATES = (1, 4, 16, 64, 256)


def _variant(policy: SkewPolicy | None) -> str:
    if policy is None:
        return "skew off"
    default = " (default)" if policy == SkewPolicy() else ""
    return f"1 in {policy.sample_every}{default}"


def throughput(bootstrap: str, messages: int, policy: SkewPolicy | None, cpu: list[float]) -> float:
    topic, catalog = _new_topic(bootstrap)
    producer = GovernedProducer(catalog, service="bench", bootstrap_servers=bootstrap, skew=policy)
    producer.send_and_wait(topic, b"warm-up", key=KEYS[0])
    send, keys = producer.send, KEYS
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for i in range(messages):
        send(topic, VALUE, key=keys[i % 1000])
    producer.flush()
    wall, used = time.perf_counter() - wall0, time.process_time() - cpu0
    producer.close()
    cpu.append(messages / used)
    return messages / wall


class _Alarms(Hook):
    def __init__(self) -> None:
        self.alarms: list[SkewDetails] = []

    def on_skew(self, details: SkewDetails) -> None:
        self.alarms.append(details)


def accuracy(bootstrap: str, keys: list[bytes], policy: SkewPolicy) -> dict[str, object]:
    topic, catalog = _new_topic(bootstrap)
    alarms = _Alarms()
    with GovernedProducer(
        catalog, service="bench", bootstrap_servers=bootstrap, skew=policy, hooks=[alarms]
    ) as producer:
        futures = [producer.send(topic, VALUE, key=key) for key in keys]
        producer.flush()
        landed = Counter(f.result(30).partition for f in futures)
        view = producer.skew().topic(topic)
    hottest, most = landed.most_common(1)[0]
    rank = next(
        (i + 1 for i, hot in enumerate(view.heavy_keys) if hot.key == b"customer-hot"), None
    )
    windows = len(keys) // (policy.sample_every * policy.window_samples)
    return {
        "sample_every": policy.sample_every,
        "samples": view.samples,
        "hot_key_rank": rank,
        "true_partition": hottest,
        "true_share": most / len(keys),
        "estimated_partition": view.hottest_partition,
        "estimated_share": view.share,
        "alarms": len(alarms.alarms),
        "full_windows": windows,
    }


def main() -> None:
    parser = harness.arguments(__doc__.splitlines()[0], messages=200_000, repeats=7)
    parser.add_argument("--hot-share", type=float, default=0.25, help="share of the hot key")
    args = parser.parse_args()
    harness.print_environment()
    policies: list[SkewPolicy | None] = [None, *(SkewPolicy(sample_every=n) for n in RATES)]
    cpu: dict[str, list[float]] = {}

    def runner(policy: SkewPolicy | None) -> Callable[[], float]:
        samples = cpu.setdefault(_variant(policy), [])
        return lambda: throughput(bootstrap, args.messages, policy, samples)

    rng = random.Random(6)
    keys = [
        b"customer-hot"
        if rng.random() < args.hot_share
        else f"customer-{rng.randrange(20_000)}".encode()
        for _ in range(args.messages)
    ]
    with harness.broker(args.bootstrap_servers) as bootstrap:
        rates = harness.compare({_variant(p): runner(p) for p in policies}, repeats=args.repeats)
        found = [accuracy(bootstrap, keys, SkewPolicy(sample_every=n)) for n in RATES]
    for samples in cpu.values():
        del samples[0]  # the warm-up run
    print(f"{args.messages:,} records of {len(VALUE)} bytes, 6 partitions, {args.repeats} runs")
    print("\nwall-clock throughput")
    wall = harness.report(rates, baseline="skew off", unit="msg/s")
    print("\nrecords per CPU-second of the process")
    per_cpu = harness.report(cpu, baseline="skew off", unit="msg/cpu-s")
    print(
        f"\naccuracy: 'customer-hot' takes {args.hot_share:.0%} of {args.messages:,} sends, "
        "the rest spread over 20,000 keys"
    )
    print(
        f"{'sample_every':>12}  {'samples':>8}  {'hot key rank':>12}  {'true share':>10}  "
        f"{'estimated':>9}  {'error':>6}  {'alarms/windows':>14}"
    )
    for row in found:
        error = abs(float(row["estimated_share"]) - float(row["true_share"]))  # type: ignore[arg-type]
        same = "" if row["estimated_partition"] == row["true_partition"] else " (other partition)"
        print(
            f"{row['sample_every']:>12}  {row['samples']:>8,}  {row['hot_key_rank']!s:>12}  "
            f"{row['true_share']:>10.3f}  {row['estimated_share']:>9.3f}  {error:>6.3f}  "
            f"{row['alarms']!s:>6}/{row['full_windows']!s:<7}{same}"
        )
    if args.json_path:
        import json

        with open(args.json_path, "w", encoding="utf-8") as fh:
            json.dump({"wall": wall, "cpu": per_cpu, "accuracy": found}, fh, indent=2)


if __name__ == "__main__":
    main()
