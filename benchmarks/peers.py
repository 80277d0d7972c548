"""governed_kafka against other Python Kafka clients: quixstreams, aiokafka, faststream.

Every client on the same broker in the same run, each figure printed as a ratio to raw
confluent-kafka measured in that run:

  produce   100-byte values over 1,000 keys into 6 partitions, every record delivered
            before the clock stops; every client idempotent with acks=all and DURABLE's
            linger (5 ms) and batch size, as far as it has those settings
  consume   those records read from the start by a fresh group per run, committing as
            each row says; prefetched: the rate counts from the first record received
            to the last, so the group join is not timed
  latency   end-to-end p50/p99 at a steady 1,000 records/s into one partition, as
            benchmarks/e2e_latency.py measures it (its raw and governed functions are
            the raw and governed rows here); every client with LOW_LATENCY's settings
            (no linger, fetches that wait at most 10 ms)

Each variant runs once untimed, which also finds out whether it can run on this broker,
then ``--repeats`` times interleaved with the others; figures are medians with the
spread beside them. Raw and governed run in this process, as in the other benchmarks;
each run of a peer is a new interpreter of the peer's own virtual environment
(quixstreams pins a confluent-kafka older than governed_kafka allows), whose start-up
is not timed (benchmarks/peer_clients/ holds what it runs).

Set up the peers once:

    python3.11 -m venv .venv-quix
    .venv-quix/bin/pip install 'quixstreams==3.28.1' 'confluent-kafka<2.13'
    python3.11 -m venv .venv-aio
    .venv-aio/bin/pip install 'aiokafka==0.14.0' 'faststream[kafka]==0.7.8'

then, from the project's own environment:

    python benchmarks/peers.py --quix-python .venv-quix/bin/python \\
        --aiokafka-python .venv-aio/bin/python --faststream-python .venv-aio/bin/python
    python benchmarks/peers.py ... --apache-kafka 3     # a 3-node Apache Kafka cluster

The interpreters may also come from $PEERS_QUIX_PYTHON, $PEERS_AIOKAFKA_PYTHON and
$PEERS_FASTSTREAM_PYTHON. Without ``--apache-kafka`` or ``--bootstrap-servers`` the
embedded broker is started. A peer whose interpreter is not given or lacks its library
keeps its rows, each saying what to install; a peer that cannot run on the broker
(aiokafka's idempotent producer on the embedded broker) says why on its row.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import confluent_kafka

import consume_overhead
import e2e_latency
import harness
import produce_overhead
from governed_kafka import Catalog, profiles
from governed_kafka._config import producer_config

HERE = Path(__file__).resolve().parent
PARTITIONS = produce_overhead.PARTITIONS
KEYS = produce_overhead.KEYS
VALUE = produce_overhead.VALUE
SESSION = {"session.timeout.ms": 6000}
#: Longest one run of a peer may take, start-up and group join included.
PEER_TIMEOUT_S = 900.0

Result = TypeVar("Result")


class NotRun(Exception):
    """A variant that did not run; the message says why and, if it is missing, what to
    install."""


@dataclass(frozen=True, kw_only=True)
class Peer:
    """A client measured in an interpreter of its own."""

    name: str
    #: What ``pip install`` needs in the peer's interpreter.
    install: str
    #: The file under ``peer_clients/`` that holds its measurements.
    script: str
    #: The command-line option and the environment variable that name its interpreter.
    option: str
    environment: str
    #: The distributions whose versions the report gives.
    reported: tuple[str, ...]


QUIXSTREAMS = Peer(
    name="quixstreams",
    install="'quixstreams==3.28.1' 'confluent-kafka<2.13'",
    script="quixstreams_peer.py",
    option="--quix-python",
    environment="PEERS_QUIX_PYTHON",
    reported=("quixstreams", "confluent-kafka"),
)
AIOKAFKA = Peer(
    name="aiokafka",
    install="'aiokafka==0.14.0'",
    script="aiokafka_peer.py",
    option="--aiokafka-python",
    environment="PEERS_AIOKAFKA_PYTHON",
    reported=("aiokafka",),
)
FASTSTREAM = Peer(
    name="faststream",
    install="'faststream[kafka]==0.7.8'",
    script="faststream_peer.py",
    option="--faststream-python",
    environment="PEERS_FASTSTREAM_PYTHON",
    reported=("faststream", "aiokafka"),
)
PEERS = (QUIXSTREAMS, AIOKAFKA, FASTSTREAM)


@dataclass(frozen=True)
class Interpreter:
    """A peer's interpreter, found to have the peer's library, or why it was not."""

    peer: Peer
    python: str | None
    version: str | None
    missing: str | None

    @classmethod
    def find(cls, peer: Peer, python: str | None) -> Interpreter:
        hint = f"install {peer.install} into a venv and pass its python as {peer.option}"
        if not python:
            return cls(
                peer, None, None, f"{peer.option} (or ${peer.environment}) not given; {hint}"
            )
        probe = (
            "import importlib.metadata as m, json; "
            f"print(json.dumps({{d: m.version(d) for d in {peer.reported!r}}}))"
        )
        try:
            found = subprocess.run(
                [python, "-c", probe], capture_output=True, text=True, timeout=60, check=True
            )
        except OSError as exc:
            return cls(peer, python, None, f"{python} cannot be run ({exc.strerror}); {hint}")
        except subprocess.SubprocessError:
            missing = " or ".join(peer.reported)
            return cls(peer, python, None, f"{missing} not installed in {python}; {hint}")
        versions: dict[str, str] = json.loads(found.stdout)
        return cls(peer, python, ", ".join(f"{d} {v}" for d, v in versions.items()), None)

    def run(self, measure: str, bootstrap: str, topic: str, records: int, **options: Any) -> Any:
        """Run one measurement in the peer's interpreter and return its result."""
        if self.missing:
            raise NotRun(f"not run: {self.missing}")
        assert self.python is not None
        command = [
            self.python,
            str(HERE / "peer_clients" / self.peer.script),
            measure,
            "--bootstrap-servers",
            bootstrap,
            "--topic",
            topic,
            "--records",
            str(records),
            "--group",
            f"peers-{self.peer.name}-{uuid.uuid4().hex}",
        ]
        for name, value in options.items():
            command += [f"--{name.replace('_', '-')}", json.dumps(value)]
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=PEER_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise NotRun(
                f"{self.peer.name} {measure}: no result within {PEER_TIMEOUT_S:.0f} s"
            ) from exc
        lines = done.stdout.strip().splitlines()
        if done.returncode != 0 or not lines:
            tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise NotRun(f"{self.peer.name} {measure} failed (exit {done.returncode}): {tail}")
        result = json.loads(lines[-1])
        if "cannot_run" in result:
            raise NotRun(f"could not run here: {result['cannot_run']}")
        return result


# -- the settings every client gets ----------------------------------------------------


def _librdkafka_producer(profile: profiles.Profile) -> dict[str, Any]:
    """The raw and governed producers' librdkafka settings, for a peer built on librdkafka."""
    config = producer_config(
        bootstrap_servers="-", client_id="bench", profile=profile, overrides=None
    )
    del config["bootstrap.servers"], config["client.id"]
    return config


def _aiokafka_producer(profile: profiles.Profile) -> dict[str, Any]:
    """aiokafka's names for what it has of those settings (it has no local queue bound,
    one batch in flight per partition, and partitions keys with murmur2 like the
    others)."""
    return {
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": int(profile.linger_ms),
        "max_batch_size": profile.batch_size,
        "compression_type": None if profile.compression == "none" else profile.compression,
    }


def _aiokafka_consumer(profile: profiles.Profile | None) -> dict[str, Any]:
    fetch = (
        {}
        if profile is None
        else {
            "fetch_max_wait_ms": profile.fetch_wait_max_ms,
            "fetch_min_bytes": profile.fetch_min_bytes,
        }
    )
    return {"session_timeout_ms": 6000, "heartbeat_interval_ms": 2000, **fetch}


# -- raw and governed rows that the other benchmarks do not have ----------------------


def _topic(bootstrap: str, partitions: int, rf: int) -> str:
    name = f"bench.peers.t{uuid.uuid4().hex[:10]}.v1"
    harness.create_topic(bootstrap, name, partitions, rf)
    return name


def _fill(bootstrap: str, topic: str, records: int) -> None:
    producer = confluent_kafka.Producer(
        _librdkafka_producer(profiles.DURABLE) | {"bootstrap.servers": bootstrap}
    )
    for i in range(records):
        while True:
            try:
                producer.produce(topic, VALUE, KEYS[i % len(KEYS)])
                break
            except BufferError:
                producer.poll(0.01)
    producer.flush(120)


def raw_consume(bootstrap: str, topic: str, records: int) -> float:
    """``consume(500)``, then an asynchronous commit per batch (consume_overhead.py's
    raw loop, without the Avro decoding: these values are bytes)."""
    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"raw-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "log_level": 3,
            **SESSION,
        }
    )
    consumer.subscribe([topic])
    seen = 0
    first = 0.0
    try:
        while seen < records:
            batch = consumer.consume(500, 1.0)
            for msg in batch:
                if msg.error() is not None:
                    continue
                if not seen:
                    first = time.perf_counter()
                msg.value()
                seen += 1
            if batch:
                consumer.commit(asynchronous=True)
        return (seen - 1) / (time.perf_counter() - first)
    finally:
        consumer.close()


def governed_consume(bootstrap: str, topic: str, records: int, rf: int) -> float:
    """``GovernedConsumer.run()`` with ``CommitStrategy.batched(max_records=500)``."""
    catalog = Catalog.from_dict(
        {
            "topics": [
                {
                    "name": topic,
                    "partitions": PARTITIONS,
                    "replication_factor": rf,
                    "consumers": ["bench"],
                }
            ]
        }
    )
    return consume_overhead.governed(bootstrap, catalog, topic, records)


# -- the three benchmarks ---------------------------------------------------------------


def produce_variants(
    bootstrap: str, rf: int, records: int, peers: Mapping[Peer, Interpreter]
) -> dict[str, Callable[[], float]]:
    librdkafka = _librdkafka_producer(profiles.DURABLE)
    aiokafka = _aiokafka_producer(profiles.DURABLE)

    def peer(which: Peer, measure: str, options: dict[str, Any]) -> Callable[[], float]:
        def run() -> float:
            topic = _topic(bootstrap, PARTITIONS, rf)
            result = peers[which].run(measure, bootstrap, topic, records, producer_options=options)
            return float(result["rate"])

        return run

    return {
        "raw confluent-kafka: produce(), no callback": lambda: produce_overhead.raw(
            bootstrap, records, callback=False, rf=rf
        ),
        "raw: produce(..., on_delivery=) per record": lambda: produce_overhead.raw(
            bootstrap, records, callback=True, rf=rf
        ),
        "governed: send(), a future per record": lambda: produce_overhead.governed(
            bootstrap, records, rf
        ),
        "quixstreams: produce()": peer(QUIXSTREAMS, "produce", librdkafka),
        "quixstreams: produce(on_delivery=) per record": peer(
            QUIXSTREAMS, "produce-callback", librdkafka
        ),
        "aiokafka: await send() per record, futures gathered": peer(AIOKAFKA, "produce", aiokafka),
        "faststream: publish(no_confirm=True), futures gathered": peer(
            FASTSTREAM, "produce", aiokafka
        ),
    }


def consume_variants(
    bootstrap: str, rf: int, records: int, peers: Mapping[Peer, Interpreter]
) -> dict[str, Callable[[], float]]:
    topic = _topic(bootstrap, PARTITIONS, rf)
    _fill(bootstrap, topic, records)

    def peer(which: Peer, options: dict[str, Any], measure: str = "consume") -> Callable[[], float]:
        def run() -> float:
            result = peers[which].run(measure, bootstrap, topic, records, consumer_options=options)
            return float(result["rate"])

        return run

    aiokafka = _aiokafka_consumer(None)
    return {
        "raw confluent-kafka: consume(500), async commit per batch": lambda: raw_consume(
            bootstrap, topic, records
        ),
        "governed: run(), CommitStrategy.batched(500), async": lambda: governed_consume(
            bootstrap, topic, records, rf
        ),
        "quixstreams: Application, commit_every=500, waits": peer(QUIXSTREAMS, SESSION),
        "aiokafka: getmany(500), await commit() per batch": peer(AIOKAFKA, aiokafka),
        "faststream: batch subscriber (500), AckPolicy.ACK, waits": peer(FASTSTREAM, aiokafka),
        # Out of the box: commits every 5 s (faststream's before processing).
        "quixstreams: default checkpoints (every 5 s)": peer(
            QUIXSTREAMS, SESSION, "consume-default"
        ),
        "faststream: per-record subscriber, ACK_FIRST (auto-commit)": peer(
            FASTSTREAM, aiokafka, "consume-default"
        ),
    }


def latency_variants(
    bootstrap: str, rf: int, records: int, rate: int, peers: Mapping[Peer, Interpreter]
) -> dict[str, Callable[[], list[float]]]:
    profile = profiles.LOW_LATENCY
    librdkafka_producer = {"enable.idempotence": True, "acks": "all", **profile.to_librdkafka()}
    librdkafka_consumer = {**profile.to_librdkafka("consumer"), **SESSION}

    def peer(
        which: Peer, producer: dict[str, Any], consumer: dict[str, Any]
    ) -> Callable[[], list[float]]:
        def run() -> list[float]:
            topic = _topic(bootstrap, 1, rf)
            result = peers[which].run(
                "latency",
                bootstrap,
                topic,
                records,
                rate=rate,
                producer_options=producer,
                consumer_options=consumer,
            )
            return list(result["latencies_ms"])

        return run

    aiokafka_producer = _aiokafka_producer(profile)
    aiokafka_consumer = _aiokafka_consumer(profile)
    return {
        "raw confluent-kafka: poll() loop": lambda: e2e_latency.raw(
            bootstrap, profile, records, rate, rf
        ),
        "governed: run()": lambda: e2e_latency.governed(bootstrap, profile, records, rate, rf),
        "quixstreams: Application": peer(QUIXSTREAMS, librdkafka_producer, librdkafka_consumer),
        "aiokafka: async for": peer(AIOKAFKA, aiokafka_producer, aiokafka_consumer),
        "faststream: subscriber": peer(FASTSTREAM, aiokafka_producer, aiokafka_consumer),
    }


# -- running and reporting -------------------------------------------------------------


@dataclass
class Measured:
    """What a variant gave: one result per timed run, or why it has none."""

    runs: list[Any]
    not_run: str | None = None


def interleaved(variants: Mapping[str, Callable[[], Result]], repeats: int) -> dict[str, Measured]:
    """Run each variant once untimed, then ``repeats`` times interleaved; a variant that
    cannot run keeps its row with the reason."""
    measured = {name: Measured([]) for name in variants}
    for round_ in range(repeats + 1):
        for name, run in variants.items():
            entry = measured[name]
            if entry.not_run:
                continue
            print(f"  {name} ({'warm-up' if not round_ else f'run {round_}'})", file=sys.stderr)
            try:
                result = run()
            except NotRun as exc:
                entry.not_run = str(exc) if not round_ else f"failed in run {round_}: {exc}"
                print(f"    {entry.not_run}", file=sys.stderr)
                continue
            if round_:
                entry.runs.append(result)
    return measured


def print_rates(title: str, measured: Mapping[str, Measured], unit: str) -> dict[str, Any]:
    baseline = next(iter(measured))
    base = statistics.median(measured[baseline].runs) if measured[baseline].runs else None
    width = max(len(n) for n in measured)
    print(f"\n{title}")
    print(f"  {'variant':<{width}}  {'median ' + unit:>14}  {'min..max':>21}  vs raw")
    rows: dict[str, Any] = {}
    for name, entry in measured.items():
        if entry.not_run:
            print(f"  {name:<{width}}  {entry.not_run}")
            rows[name] = {"not_run": entry.not_run}
            continue
        median = statistics.median(entry.runs)
        ratio = f"{median / base:.2f}x" if base else "-"
        spread = f"{min(entry.runs):,.0f}..{max(entry.runs):,.0f}"
        print(f"  {name:<{width}}  {median:>14,.0f}  {spread:>21}  {ratio}")
        rows[name] = {
            "median": median,
            "runs": entry.runs,
            "ratio": median / base if base else None,
        }
    return rows


def print_latencies(title: str, measured: Mapping[str, Measured]) -> dict[str, Any]:
    def quantiles(entry: Measured, q: float) -> list[float]:
        return [e2e_latency._quantile(run, q) for run in entry.runs]

    baseline = measured[next(iter(measured))]
    base = (
        (statistics.median(quantiles(baseline, 0.5)), statistics.median(quantiles(baseline, 0.99)))
        if baseline.runs
        else None
    )
    width = max(len(n) for n in measured)
    print(f"\n{title}")
    print(
        f"  {'variant':<{width}}  {'p50 ms':>8}  {'p99 ms':>8}  {'p50 min..max':>15}"
        "  vs raw p50 / p99"
    )
    rows: dict[str, Any] = {}
    for name, entry in measured.items():
        if entry.not_run:
            print(f"  {name:<{width}}  {entry.not_run}")
            rows[name] = {"not_run": entry.not_run}
            continue
        p50s, p99s = quantiles(entry, 0.5), quantiles(entry, 0.99)
        p50, p99 = statistics.median(p50s), statistics.median(p99s)
        ratio = f"{p50 / base[0]:.2f}x / {p99 / base[1]:.2f}x" if base else "-"
        spread = f"{min(p50s):.1f}..{max(p50s):.1f}"
        print(f"  {name:<{width}}  {p50:>8.1f}  {p99:>8.1f}  {spread:>15}  {ratio}")
        rows[name] = {"p50_ms": p50, "p99_ms": p99, "p50_runs": p50s, "p99_runs": p99s}
    return rows


def _commit() -> str:
    """The commit of this tree ("+" if it has uncommitted changes), to record with the
    figures."""
    git = ["git", "-C", str(HERE)]
    try:
        head = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        )
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--untracked-files=no", "--", "."],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head.stdout.strip() + ("+" if dirty.stdout.strip() else "")


@contextmanager
def broker(args: argparse.Namespace) -> Iterator[tuple[str, str, int]]:
    """Yield the bootstrap servers, a description, and the topics' replication factor."""
    if args.bootstrap_servers:
        yield args.bootstrap_servers, args.bootstrap_servers, args.replication_factor
        return
    if args.apache_kafka is None:
        with harness.broker(None) as bootstrap:
            yield bootstrap, f"the embedded broker (Tansu) at {bootstrap}", 1
        return
    from governed_kafka.testing import KafkaCluster

    nodes = args.apache_kafka
    print(f"starting Apache Kafka, {nodes} node(s)", file=sys.stderr)
    with KafkaCluster(brokers=nodes) as cluster:
        rf = min(3, nodes)
        yield (
            cluster.bootstrap_servers,
            f"Apache Kafka {cluster.version}, {nodes} node(s) on this machine, topics RF {rf}, "
            f"min ISR {min(2, rf)}",
            rf,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--bootstrap-servers", help="use this cluster")
    where.add_argument(
        "--apache-kafka", type=int, metavar="N", help="start an N-node Apache Kafka cluster"
    )
    parser.add_argument(
        "--replication-factor", type=int, default=1, help="with --bootstrap-servers"
    )
    parser.add_argument("--records", type=int, default=100_000, help="produce and consume")
    parser.add_argument("--latency-records", type=int, default=3000, help="per latency run")
    parser.add_argument("--rate", type=int, default=1000, help="latency: records per second")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per variant")
    parser.add_argument(
        "--only", default="produce,consume,latency", help="comma-separated benchmarks"
    )
    parser.add_argument("--json", dest="json_path", help="also write the results here")
    for peer in PEERS:
        parser.add_argument(
            peer.option,
            default=os.environ.get(peer.environment),
            help=f"python of a venv with {peer.install} (default ${peer.environment})",
        )
    args = parser.parse_args()
    chosen = set(args.only.split(","))
    peers = {p: Interpreter.find(p, getattr(args, p.option[2:].replace("-", "_"))) for p in PEERS}

    harness.print_environment()
    commit = _commit()
    print(f"commit: {commit}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    for interpreter in peers.values():
        found = interpreter.version and f"{interpreter.version} ({interpreter.python})"
        print(f"{interpreter.peer.name}: {found or interpreter.missing}")
    report: dict[str, Any] = {"environment": harness.environment(), "commit": commit}
    report["peers"] = {i.peer.name: i.version or i.missing for i in peers.values()}
    with broker(args) as (bootstrap, described, rf):
        print(f"broker: {described}")
        report["broker"] = described
        if "produce" in chosen:
            print("produce", file=sys.stderr)
            measured = interleaved(
                produce_variants(bootstrap, rf, args.records, peers), args.repeats
            )
            report["produce"] = print_rates(
                f"produce: {args.records:,} records of {len(VALUE)} B, {len(KEYS):,} keys, "
                f"{PARTITIONS} partitions (RF {rf}), idempotent, acks=all, linger 5 ms; "
                f"{args.repeats} runs each",
                measured,
                "msg/s",
            )
        if "consume" in chosen:
            print("consume", file=sys.stderr)
            measured = interleaved(
                consume_variants(bootstrap, rf, args.records, peers), args.repeats
            )
            report["consume"] = print_rates(
                f"consume: {args.records:,} records of {len(VALUE)} B from {PARTITIONS} "
                f"partitions (RF {rf}), a fresh group per run, from the first record received; "
                f"{args.repeats} runs each",
                measured,
                "rec/s",
            )
        if "latency" in chosen:
            print("latency", file=sys.stderr)
            variants = latency_variants(bootstrap, rf, args.latency_records, args.rate, peers)
            measured = interleaved(variants, args.repeats)
            report["latency"] = print_latencies(
                f"end-to-end latency: {args.latency_records:,} records of 100 B at "
                f"{args.rate:,}/s, one partition (RF {rf}), LOW_LATENCY settings, first 10% "
                f"of each run not counted; medians of {args.repeats} runs",
                measured,
            )
    if args.json_path:
        with open(args.json_path, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=2)


if __name__ == "__main__":
    main()
