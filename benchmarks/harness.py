"""The small harness every benchmark script shares.

Benchmarks compare governed_kafka with the raw client *in the same run*, on the same
broker and the same payloads, and print ratios; the absolute figures depend on the
machine, the ratios much less. Each variant runs ``repeats`` times, interleaved with
the others so that drift (thermal, the broker's own memory growth) hits every variant
alike; the figure reported is the median, with the spread (min..max) beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from governed_kafka.testing import LocalBroker


def environment() -> dict[str, object]:
    """What the figures were measured on: machine, Python and library versions."""
    import confluent_kafka

    versions = {}
    for package in ("governed-kafka", "confluent-kafka", "fastavro", "opentelemetry-api"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "not installed"
    versions["librdkafka"] = confluent_kafka.libversion()[0]
    return {
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        **versions,
    }


def print_environment() -> None:
    env = environment()
    print("environment: " + ", ".join(f"{k}={v}" for k, v in env.items()))


@contextmanager
def broker(bootstrap_servers: str | None) -> Iterator[str]:
    """Yield bootstrap servers: the given ones, or a LocalBroker started for the run."""
    if bootstrap_servers:
        yield bootstrap_servers
        return
    with LocalBroker() as local:
        print(f"broker: embedded LocalBroker at {local.bootstrap_servers}", file=sys.stderr)
        yield local.bootstrap_servers


def arguments(
    description: str, *, repeats: int = 5, messages: int = 100_000
) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--bootstrap-servers", help="use this cluster instead of a LocalBroker")
    parser.add_argument("--repeats", type=int, default=repeats, help="timed runs per variant")
    parser.add_argument("--messages", type=int, default=messages, help="records per run")
    parser.add_argument("--json", dest="json_path", help="also write the results here")
    parser.add_argument(
        "--replication-factor",
        type=int,
        default=1,
        help="replication factor of the benchmark topics, with min.insync.replicas "
        "min(2, RF); 3 on a 3-broker cluster",
    )
    return parser


def create_topic(bootstrap: str, name: str, partitions: int, replication_factor: int) -> None:
    """Create a benchmark topic (``min.insync.replicas`` min(2, RF)) and wait until every
    broker knows it."""
    import time

    import confluent_kafka.admin

    admin = confluent_kafka.admin.AdminClient({"bootstrap.servers": bootstrap})
    topic = confluent_kafka.admin.NewTopic(
        name,
        num_partitions=partitions,
        replication_factor=replication_factor,
        config={"min.insync.replicas": str(min(2, replication_factor))},
    )
    for future in admin.create_topics([topic]).values():
        future.result(30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = admin.list_topics(timeout=10).topics.get(name)
        if found is not None and all(p.leader >= 0 for p in found.partitions.values()):
            return
        time.sleep(0.05)


def compare(
    variants: Mapping[str, Callable[[], float]],
    *,
    repeats: int,
    warmup: int = 1,
) -> dict[str, list[float]]:
    """Run every variant ``warmup`` times untimed, then ``repeats`` times interleaved.

    Each variant returns a rate (higher is better). Returns the rates per variant.
    """
    for _ in range(warmup):
        for run in variants.values():
            run()
    rates: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, run in variants.items():
            rates[name].append(run())
    return rates


def report(
    rates: Mapping[str, list[float]],
    *,
    baseline: str,
    unit: str,
    target: tuple[str, float] | None = None,
    json_path: str | None = None,
) -> dict[str, object]:
    """Print a table of medians, spreads and ratios to ``baseline``; return it as data."""
    base = statistics.median(rates[baseline])
    rows = []
    width = max(len(n) for n in rates)
    print(f"{'variant':<{width}}  {'median':>12}  {'min..max':>23}  ratio")
    for name, values in rates.items():
        med = statistics.median(values)
        ratio = med / base
        rows.append(
            {
                "variant": name,
                "median": med,
                "min": min(values),
                "max": max(values),
                "ratio": ratio,
                "runs": values,
            }
        )
        spread = f"{min(values):,.0f}..{max(values):,.0f}"
        print(f"{name:<{width}}  {med:>12,.0f}  {spread:>23}  {ratio:.2f}x  {unit}")
    result: dict[str, object] = {
        "unit": unit,
        "baseline": baseline,
        "rows": rows,
        "environment": environment(),
    }
    if target is not None:
        name, minimum = target
        ratio = statistics.median(rates[name]) / base
        verdict = "meets" if ratio >= minimum else "MISSES"
        print(f"target: {name} >= {minimum:.2f}x {baseline}: {ratio:.2f}x ({verdict})")
        result["target"] = {"variant": name, "minimum": minimum, "ratio": ratio}
    if json_path:
        with open(json_path, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=2)
    return result


def instructions(script: str, *args: str, label: str) -> dict[str, int]:
    """Run ``python -c script *args`` under valgrind's callgrind; return the instructions
    it executed, ``{"all": total, "main": the main thread's}``.

    Raises ``SystemExit`` naming ``label`` when valgrind is missing or the child failed.
    """
    if shutil.which("valgrind") is None:
        raise SystemExit(f"{label}: needs valgrind on PATH (apt install valgrind)")
    with tempfile.TemporaryDirectory() as out:
        done = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--separate-threads=yes",
                f"--callgrind-out-file={out}/cg",
                sys.executable,
                "-c",
                script,
                *args,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        found = re.search(r"Collected : (\d+)", done.stderr)
        if done.returncode != 0 or found is None:
            raise SystemExit(f"{label}: the child failed:\n{done.stderr[-2000:]}")
        first = Path(out) / "cg-01"  # the first thread is the one that runs Python
        text = first.read_text() if first.exists() else ""
        totals = re.search(r"^(?:totals|summary): (\d+)", text, re.MULTILINE)
    return {"all": int(found.group(1)), "main": int(totals.group(1)) if totals else 0}
