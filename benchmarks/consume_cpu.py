"""CPU time of GovernedConsumer.run() per record on its thread: this tree against a baseline.

The wall-clock benchmark (consume_overhead.py) shares two cores with the broker and
librdkafka's fetch threads, and its spread on a busy machine hides differences of tens
of percent. This one measures the CPU time of the thread that calls ``run()``
(``time.thread_time()``) from the first record handled to the last, in child processes
that alternate between a baseline source tree and this one, reading one topic of Avro
records (written once, by this tree) with a fresh group each; librdkafka's own threads
are not counted. Each child reads ``--messages`` records; the figure is the median over
``--repeats`` children per tree. The raw row is confluent-kafka's ``consume(500)`` with
``fastavro.schemaless_reader`` and an asynchronous commit per batch, timed the same way.

    git archive main src | tar -x -C /tmp/main
    python benchmarks/consume_cpu.py --baseline-src /tmp/main/src [--repeats 7]
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import consume_overhead
import harness

GOVERNED = r"""
import json, sys, time, uuid
sys.path.insert(0, sys.argv[1])
from governed_kafka import Catalog, CommitStrategy, GovernedConsumer
path, bootstrap, topic, messages = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
seen = 0
first = 0.0
def handler(record):
    global seen, first
    if not seen:
        first = time.thread_time()
    seen += 1
with GovernedConsumer(Catalog.load(path), service="bench", group_id=f"cpu-{uuid.uuid4().hex}",
                      topics=[topic], bootstrap_servers=bootstrap,
                      commit=CommitStrategy.batched(max_records=500),
                      overrides={"session.timeout.ms": 6000}, verify_topics=False) as consumer:
    while seen < messages:
        consumer.run(handler, max_records=messages - seen, timeout=5)
    cpu = time.thread_time() - first
print(json.dumps({"cpu_us_per_record": cpu / (seen - 1) * 1e6}))
"""

RAW = r"""
import io, json, sys, time, uuid
import confluent_kafka, fastavro
schema, bootstrap, topic = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
messages = int(sys.argv[4])
parsed = fastavro.parse_schema(schema)
consumer = confluent_kafka.Consumer({"bootstrap.servers": bootstrap,
    "group.id": f"raw-{uuid.uuid4().hex}", "enable.auto.commit": False,
    "auto.offset.reset": "earliest", "log_level": 3, "session.timeout.ms": 6000})
consumer.subscribe([topic])
seen = 0
first = 0.0
reader = fastavro.schemaless_reader
while seen < messages:
    batch = consumer.consume(500, 1.0)
    for msg in batch:
        if msg.error() is not None:
            continue
        if not seen:
            first = time.thread_time()
        reader(io.BytesIO(msg.value()[5:]), parsed, None)
        seen += 1
    if batch:
        consumer.commit(asynchronous=True)
cpu = time.thread_time() - first
consumer.close()
print(json.dumps({"cpu_us_per_record": cpu / (seen - 1) * 1e6}))
"""


def _child(argv: list[str]) -> float:
    out = subprocess.run(
        [sys.executable, "-c", *argv], capture_output=True, text=True, check=True
    ).stdout
    return float(json.loads(out.splitlines()[-1])["cpu_us_per_record"])


def main() -> None:
    parser = harness.arguments(__doc__.splitlines()[0], repeats=7, messages=100_000)
    parser.add_argument("--baseline-src", required=True, type=Path, help="src/ of the baseline")
    args = parser.parse_args()
    trees = {"baseline": args.baseline_src.resolve(), "this tree": Path("src").resolve()}
    harness.print_environment()
    figures: dict[str, list[float]] = {}
    with harness.broker(args.bootstrap_servers) as bootstrap, tempfile.TemporaryDirectory() as d:
        topic = f"bench.cpu.consume.t{uuid.uuid4().hex[:10]}.v1"
        catalog = consume_overhead._catalog(Path(d), topic, args.replication_factor)
        (Path(d) / "governance.toml").write_text(_toml(topic, args.replication_factor))
        consume_overhead.fill(bootstrap, catalog, topic, args.messages)
        path = str(Path(d) / "governance.toml")
        schema = json.dumps(consume_overhead.SCHEMA)
        for _ in range(args.repeats):
            figures.setdefault("raw consume(500) + fastavro", []).append(
                _child([RAW, schema, bootstrap, topic, str(args.messages)])
            )
            for label, tree in trees.items():
                figures.setdefault(label, []).append(
                    _child([GOVERNED, str(tree), path, bootstrap, topic, str(args.messages)])
                )
    print(f"{args.messages:,} Avro records per child, {args.repeats} children per variant")
    print(f"{'variant':<28} {'median us/record':>17} {'min..max':>16}")
    for name, runs in figures.items():
        print(f"{name:<28} {statistics.median(runs):>17.3f} {min(runs):>7.3f}..{max(runs):<7.3f}")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(figures, indent=2), encoding="utf-8")


def _toml(topic: str, rf: int) -> str:
    return f"""\
[policy]
min_replication_factor = 1
min_insync_replicas = 1

[[topics]]
name = "{topic}"
partitions = {consume_overhead.PARTITIONS}
replication_factor = {rf}
key = "required"
value_schema = "order.avsc"
producers = ["bench"]
consumers = ["bench"]
"""


if __name__ == "__main__":
    main()
