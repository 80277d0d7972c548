"""Instructions per consumed record: the governed consumer against the raw client,
counted by valgrind.

The consumer's CPU per record, counted rather than timed (timings swing with the load on
a shared machine; instruction counts move by a percent or two). Each variant runs in a
child process under valgrind's callgrind twice, reading ``--messages`` and
``--messages`` + 20,000 prefetched Avro records (the records of
``consume_overhead.py``, one partition) with a fresh group; the figure is the difference
divided by 20,000, so start-up and the group join cancel out. It is given for all
threads (librdkafka's included) and for the consuming thread alone. Variants:

- ``raw``: ``consume(500)``, ``fastavro.schemaless_reader`` on each value, an
  asynchronous commit per batch;
- ``raw+settings``: the same with the governed consumer's librdkafka settings that
  differ from the defaults (``fetch.wait.max.ms`` 100, cooperative-sticky,
  ``read_committed``, no offset store);
- ``raw+record``: the raw loop as a consumer that hands each record to a handler must
  run it: it also reads the key, headers and timestamp, and calls a handler with a
  tuple of the record's fields (topic, partition, offset, key, decoded value, headers,
  timestamp). No client that gives a handler the record can cost less; the governed
  consumer's own cost is what it spends above this;
- ``governed``: ``GovernedConsumer.run()`` with ``CommitStrategy.batched(max_records=500)``
  and a handler that counts;
- ``baseline``: the same of the source tree given with ``--baseline-src``.

Needs valgrind (``apt install valgrind``); one run takes about ten minutes.

    python benchmarks/consume_instructions.py [--baseline-src /tmp/main/src] [--repeats 1]
"""

from __future__ import annotations

import json
import tempfile
import uuid
from pathlib import Path

import consume_cpu
import consume_overhead
import harness

CHILD = r"""
import io, json, sys, uuid
tree, mode, bootstrap, path, topic, count = sys.argv[1:7]
sys.path.insert(0, tree)
count = int(count)
if mode == "governed":
    from governed_kafka import Catalog, CommitStrategy, GovernedConsumer
    seen = 0
    def handler(record):
        global seen
        seen += 1
    with GovernedConsumer(Catalog.load(path), service="bench", group_id=f"g-{uuid.uuid4().hex}",
                          topics=[topic], bootstrap_servers=bootstrap,
                          commit=CommitStrategy.batched(max_records=500),
                          verify_topics=False) as consumer:
        while seen < count:
            consumer.run(handler, max_records=count - seen, timeout=5)
else:
    import confluent_kafka, fastavro
    settings = {"fetch.wait.max.ms": 100, "partition.assignment.strategy": "cooperative-sticky",
                "isolation.level": "read_committed", "enable.auto.offset.store": False}
    schema = fastavro.parse_schema(json.loads(sys.argv[7]))
    consumer = confluent_kafka.Consumer({
        "bootstrap.servers": bootstrap, "group.id": f"raw-{uuid.uuid4().hex}",
        "enable.auto.commit": False, "auto.offset.reset": "earliest", "log_level": 3,
        **(settings if mode == "raw+settings" else {})})
    consumer.subscribe([topic])
    seen, read, handed = 0, fastavro.schemaless_reader, 0
    def handler(record):
        global handed
        handed += 1
    while seen < count:
        batch = consumer.consume(min(500, count - seen), 1.0)
        for message in batch:
            if message.error() is None:
                if mode == "raw+record":
                    headers = message.headers()
                    kind, timestamp = message.timestamp()
                    handler((message.topic(), message.partition(), message.offset(),
                             message.key(), read(io.BytesIO(message.value()[5:]), schema, None),
                             tuple(headers) if headers else (), timestamp if kind else None))
                else:
                    read(io.BytesIO(message.value()[5:]), schema, None)
                seen += 1
        if batch:
            consumer.commit(asynchronous=True)
    consumer.close()
"""

_EXTRA = 20_000


def main() -> None:
    parser = harness.arguments(__doc__.splitlines()[0], repeats=1, messages=5_000)
    parser.add_argument("--baseline-src", type=Path, help="src/ of a tree to compare with")
    args = parser.parse_args()
    here = Path(__file__).resolve().parent.parent / "src"
    variants = [("raw", here), ("raw+settings", here), ("raw+record", here), ("governed", here)]
    if args.baseline_src is not None:
        variants.append(("baseline", args.baseline_src.resolve()))
    harness.print_environment()
    figures: dict[str, list[dict[str, float]]] = {}
    schema = json.dumps(consume_overhead.SCHEMA)
    with harness.broker(args.bootstrap_servers) as bootstrap, tempfile.TemporaryDirectory() as d:
        topic = f"bench.consume.instr.t{uuid.uuid4().hex[:10]}.v1"
        catalog = consume_overhead._catalog(Path(d), topic, 1)
        path = Path(d) / "governance.toml"
        path.write_text(consume_cpu._toml(topic, 1), encoding="utf-8")
        consume_overhead.fill(bootstrap, catalog, topic, args.messages + _EXTRA)
        for _ in range(args.repeats):
            for name, tree in variants:
                mode = "governed" if name == "baseline" else name
                label = f"consume_instructions.py, {name}"

                def run(count: int, tree: Path = tree, mode: str = mode, label: str = label):
                    child = (str(tree), mode, bootstrap, str(path), topic, str(count), schema)
                    return harness.instructions(CHILD, *child, label=label)

                low, high = run(args.messages), run(args.messages + _EXTRA)
                per = {k: (high[k] - low[k]) / _EXTRA for k in ("all", "main")}
                figures.setdefault(name, []).append(per)
                print(
                    f"{name:<14} {per['all']:>8,.0f} per record, all threads; "
                    f"{per['main']:>8,.0f} the consuming thread",
                    flush=True,
                )
    raw = min(f["all"] for f in figures["raw"])
    floor = min(f["all"] for f in figures["raw+record"])
    print(
        f"\n{'variant':<14} {'instr/record':>12} {'raw / variant':>14} {'raw+record / variant':>21}"
    )
    for name, runs in figures.items():
        best = min(f["all"] for f in runs)
        print(f"{name:<14} {best:>12,.0f} {raw / best:>13.2f}x {floor / best:>20.2f}x")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(figures, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
