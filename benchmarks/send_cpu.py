"""CPU time of GovernedProducer.send() on the sending thread: this tree against a baseline.

The wall-clock benchmarks (produce_overhead.py) share two cores with the broker and
librdkafka's threads, and their spread on a busy machine hides differences of a few
percent. This one measures the CPU time of the thread that calls ``send()``
(``time.thread_time()``), in child processes that alternate between a baseline source
tree and this one, against one broker: 100-byte values, bytes keys, without headers and
with two headers. Each child sends ``--messages`` records; the figure is the median over
``--repeats`` children per variant.

    git archive main src | tar -x -C /tmp/main
    python benchmarks/send_cpu.py --baseline-src /tmp/main/src [--repeats 11]
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import harness

CHILD = r"""
import json, sys, time, uuid
sys.path.insert(0, sys.argv[1])
import confluent_kafka.admin as admin_module
from governed_kafka import Catalog, GovernedProducer, profiles
bootstrap, messages, with_headers = sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
name = f"bench.cpu.t{uuid.uuid4().hex[:10]}.v1"
admin = admin_module.AdminClient({"bootstrap.servers": bootstrap})
new = admin_module.NewTopic(name, num_partitions=6, replication_factor=1)
for future in admin.create_topics([new]).values():
    future.result(10)
topic = {"name": name, "partitions": 6, "replication_factor": 1, "key": "required",
         "producers": ["bench"]}
producer = GovernedProducer(Catalog.from_dict({"topics": [topic]}), service="bench",
                            bootstrap_servers=bootstrap, profile=profiles.DURABLE)
keys = [f"customer-{i:04d}".encode() for i in range(1000)]
value = b"v" * 100
headers = [("trace-id", b"0123456789abcdef"), ("source", "checkout")]
producer.send_and_wait(name, b"warm-up", key=keys[0])
send = producer.send
started = time.thread_time()
if with_headers:
    for i in range(messages):
        send(name, value, key=keys[i % 1000], headers=headers)
else:
    for i in range(messages):
        send(name, value, key=keys[i % 1000])
cpu = time.thread_time() - started
producer.flush()
producer.close()
print(json.dumps({"cpu_us_per_send": cpu / messages * 1e6}))
"""


def main() -> None:
    parser = harness.arguments(__doc__.splitlines()[0], repeats=11, messages=100_000)
    parser.add_argument("--baseline-src", required=True, type=Path, help="src/ of the baseline")
    args = parser.parse_args()
    trees = {"baseline": args.baseline_src.resolve(), "this tree": Path("src").resolve()}
    harness.print_environment()
    figures: dict[str, list[float]] = {}
    with harness.broker(args.bootstrap_servers) as bootstrap:
        for headers in ("0", "1"):
            for _ in range(args.repeats):
                for label, tree in trees.items():
                    out = subprocess.run(
                        [
                            sys.executable,
                            "-c",
                            CHILD,
                            str(tree),
                            bootstrap,
                            str(args.messages),
                            headers,
                        ],
                        capture_output=True,
                        text=True,
                        check=True,
                    ).stdout
                    name = f"{label}, {'two headers' if headers == '1' else 'no headers'}"
                    figures.setdefault(name, []).append(
                        json.loads(out.splitlines()[-1])["cpu_us_per_send"]
                    )
    print(f"{args.messages:,} sends per child, {args.repeats} children per variant")
    print(f"{'variant':<28} {'median us/send':>15} {'min..max':>16}")
    for name, runs in figures.items():
        print(f"{name:<28} {statistics.median(runs):>15.3f} {min(runs):>7.3f}..{max(runs):<7.3f}")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(figures, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
