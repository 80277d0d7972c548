"""Instructions per send: the governed producer against the raw client, counted by valgrind.

Wall-clock and CPU-time figures of the send path swing with the load on a shared
machine; instruction counts do not, or much less. Each variant runs in a child process
under valgrind's callgrind (all threads, librdkafka's included) twice, sending
``--messages`` and ``--messages`` + 40,000 records of 100 bytes over 1,000 keys into 6
partitions with DURABLE settings, every record delivered; the figure is the difference
divided by 40,000, so start-up cancels out. Variants:

- ``raw``: ``produce(topic, value, key)``, ``poll(0)`` every 64 sends;
- ``raw+callback``: the same with one shared delivery callback passed positionally;
- ``raw+future``: the same with a ``concurrent.futures.Future`` per record, resolved by
  its own callback: what a raw client's caller writes to learn each record's outcome;
- ``governed``: ``GovernedProducer.send()``, a ``DeliveryFuture`` per record;
- ``baseline``: ``send()`` of the source tree given with ``--baseline-src``.

Needs valgrind (``apt install valgrind``); one run takes a few minutes.

    python benchmarks/send_instructions.py [--baseline-src /tmp/main/src] [--repeats 1]
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import harness

CHILD = r"""
import sys
tree, mode, bootstrap, topic, count = sys.argv[1:6]
sys.path.insert(0, tree)
from governed_kafka import Catalog, GovernedProducer, profiles
from governed_kafka._config import producer_config
keys = [f"customer-{i:04d}".encode() for i in range(1000)]
value = b"v" * 100
count = int(count)
if mode == "governed":
    contract = {"name": topic, "partitions": 6, "replication_factor": 1, "key": "required",
                "producers": ["bench"]}
    producer = GovernedProducer(Catalog.from_dict({"topics": [contract]}), service="bench",
                                bootstrap_servers=bootstrap, profile=profiles.DURABLE,
                                verify_topics=False)
    send = producer.send
    for i in range(count):
        send(topic, value, key=keys[i % 1000])
    producer.flush()
    producer.close()
else:
    import concurrent.futures
    import confluent_kafka
    config = producer_config(bootstrap_servers=bootstrap, client_id="raw",
                             profile=profiles.DURABLE, overrides={})
    raw = confluent_kafka.Producer(dict(config))
    produce, poll, Future = raw.produce, raw.poll, concurrent.futures.Future
    def callback(err, msg):
        pass
    def resolver(future):
        def resolve(err, msg):
            if err is None:
                future.set_result(msg)
            else:
                future.set_exception(confluent_kafka.KafkaException(err))
        return resolve
    for i in range(count):
        if mode == "raw+callback":
            produce(topic, value, keys[i % 1000], -1, callback)
        elif mode == "raw+future":
            produce(topic, value, keys[i % 1000], -1, resolver(Future()))
        else:
            produce(topic, value, keys[i % 1000])
        if not i % 64:
            poll(0)
    raw.flush()
"""

_EXTRA = 40_000


def _instructions(tree: Path, mode: str, bootstrap: str, topic: str, count: int) -> int:
    args = (str(tree), mode, bootstrap, topic, str(count))
    return harness.instructions(CHILD, *args, label=f"send_instructions.py, {mode}")["all"]


def main() -> None:
    parser = harness.arguments(__doc__.splitlines()[0], repeats=1, messages=5_000)
    parser.add_argument("--baseline-src", type=Path, help="src/ of a tree to compare with")
    args = parser.parse_args()
    here = Path(__file__).resolve().parent.parent / "src"
    variants = [("raw", here), ("raw+callback", here), ("raw+future", here), ("governed", here)]
    if args.baseline_src is not None:
        variants.append(("baseline", args.baseline_src.resolve()))
    harness.print_environment()
    figures: dict[str, list[float]] = {}
    with harness.broker(args.bootstrap_servers) as bootstrap:
        topic = f"bench.instr.t{uuid.uuid4().hex[:10]}.v1"
        harness.create_topic(bootstrap, topic, 6, 1)
        for _ in range(args.repeats):
            for name, tree in variants:
                mode = "governed" if name == "baseline" else name
                low = _instructions(tree, mode, bootstrap, topic, args.messages)
                high = _instructions(tree, mode, bootstrap, topic, args.messages + _EXTRA)
                per_send = (high - low) / _EXTRA
                figures.setdefault(name, []).append(per_send)
                print(f"{name:<14} {per_send:>8,.0f} instructions per send", flush=True)
    raw, callback = min(figures["raw"]), min(figures["raw+callback"])
    print(f"\n{'variant':<14} {'instr/send':>10} {'vs raw':>8} {'vs raw+callback':>16}")
    for name, runs in figures.items():
        best = min(runs)
        print(f"{name:<14} {best:>10,.0f} {raw / best:>7.2f}x {callback / best:>15.2f}x")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(figures, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
