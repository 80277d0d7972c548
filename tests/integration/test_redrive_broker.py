"""``governed-kafka dlq show`` and ``dlq redrive`` against a real broker: dead letters listed,
sent back re-validated, each exactly once, even across a SIGKILL mid-redrive."""

from __future__ import annotations

import datetime
import json
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

from click.testing import CliRunner
from test_consumer import FAST, _committed
from test_retry_tiers import produce, run_until, tier_contracts, tiered_consumer

from conftest import Broker, CatalogFactory, on_apache_kafka
from governed_kafka import Catalog, GovernedConsumer, Record, RetryPolicy, _kafka
from governed_kafka.cli import main
from kafka_helpers import read_all, write_catalog


def _contracts(topic: str, *, key: str = "optional") -> str:
    return f"""
    [[topics]]
    name = "{topic}"
    partitions = 1
    replication_factor = 1
    retention_ms = 3600000
    key = "{key}"
    producers = ["checkout"]
    consumers = ["billing"]
    dead_letter_topic = "{topic}.dlq"

    [[topics]]
    name = "{topic}.dlq"
    partitions = 1
    replication_factor = 1
    retention_ms = 3600000
    producers = ["billing"]
    consumers = ["ops"]
    """


def _dead_letter_all(catalog: Catalog, bootstrap: str, topic: str, count: int) -> None:
    """Consume ``count`` records with a handler that always fails: all become dead letters."""

    def handler(record: Record) -> None:
        raise KeyError(f"no account for {record.value!r}")

    with GovernedConsumer(
        catalog,
        service="billing",
        group_id=f"dl-{topic}",
        topics=[topic],
        bootstrap_servers=bootstrap,
        retry=RetryPolicy.never(),
        overrides=FAST,
    ) as consumer:
        deadline = time.monotonic() + 60
        handled = 0
        while handled < count and time.monotonic() < deadline:
            handled += consumer.run(handler, timeout=0.5).records
    assert handled == count


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def _redriven(bootstrap: str, topic: str) -> Counter[bytes]:
    """How many records of ``topic`` carry each ``redrive.from`` value."""
    found: Counter[bytes] = Counter()
    for message in read_all(bootstrap, topic):
        origin = dict(message.headers() or []).get("redrive.from")
        if origin is not None:
            found[origin] += 1
    return found


def test_show_lists_dead_letters_with_error_origin_attempts_and_age(
    kafka_broker: Broker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """dlq show --json gives each dead letter's error, origin and attempts; --where filters."""
    catalog = provisioned(_contracts(topic_name))
    bootstrap = kafka_broker.bootstrap_servers
    produce(catalog, bootstrap, topic_name, [("k1", "a"), ("k2", "b")])
    _dead_letter_all(catalog, bootstrap, topic_name, 2)
    common = ["--contracts", str(catalog.path), "-b", bootstrap]
    code, out = _cli("dlq", "show", topic_name, *common, "--json")
    assert code == 0
    letters = json.loads(out)
    assert [(x["origin_topic"], x["origin_offset"], x["key"]) for x in letters] == [
        (topic_name, 0, "k1"),
        (topic_name, 1, "k2"),
    ]
    assert letters[0]["error_type"] == "builtins.KeyError"
    assert "no account for b'a'" in letters[0]["error_message"]
    assert letters[0]["attempts"] == 1
    assert letters[0]["age_s"] >= 0
    code, out = _cli("dlq", "show", topic_name, *common, "--json", "--where", "key=k2")
    assert [x["offset"] for x in json.loads(out)] == [1]
    code, out = _cli("dlq", "show", topic_name, *common)
    assert code == 0
    assert "KeyError" in out
    assert "2 dead letters shown" in out
    code, out = _cli("dlq", "show", topic_name, *common, "--where", "colour=red")
    assert code == 2
    assert "colour=red" in out


def test_redrive_sends_back_once_and_a_misfit_stays_and_is_reported(
    kafka_broker: Broker, provisioned: CatalogFactory, topic_name: str, tmp_path: Path
) -> None:
    """Dead letters go back to their topic with key, headers and a redrive header; one that
    the current contract refuses (its key is now required) stays and is reported; a dry run
    and a rerun send nothing more."""
    catalog = provisioned(_contracts(topic_name))
    bootstrap = kafka_broker.bootstrap_servers
    produce(catalog, bootstrap, topic_name, [("k1", "a"), ("k2", "b")])
    with_keyless = catalog.path.read_text()
    from governed_kafka import GovernedProducer

    with GovernedProducer(catalog, service="checkout", bootstrap_servers=bootstrap) as producer:
        producer.send(topic_name, b"keyless", headers={"trace": "t-1"})
    _dead_letter_all(catalog, bootstrap, topic_name, 3)
    (tmp_path / "now").mkdir()
    now_required = write_catalog(
        tmp_path / "now", with_keyless.replace('key = "optional"', 'key = "required"', 1)
    )
    common = ["--contracts", str(now_required), "-b", bootstrap, "--service", "checkout"]

    code, out = _cli("dlq", "redrive", topic_name, *common, "--dry-run", "--json")
    assert code == 2
    report = json.loads(out)
    assert [r["outcome"] for r in report["records"]] == [
        "would-redrive",
        "would-redrive",
        "does-not-fit",
    ]
    assert "requires a key" in report["records"][2]["reason"]
    assert _redriven(bootstrap, topic_name) == Counter()  # a dry run sends nothing

    code, out = _cli("dlq", "redrive", topic_name, *common)
    assert code == 2
    assert "2 redriven, 1 stay" in out
    sent = [m for m in read_all(bootstrap, topic_name) if m.offset() >= 3]
    assert [(m.key(), m.value()) for m in sent] == [(b"k1", b"a"), (b"k2", b"b")]
    headers = dict(sent[0].headers() or [])
    assert headers["redrive.from"] == f"{topic_name}.dlq/0/0".encode()
    assert not any(name.startswith("dlq.") for name in headers)

    code, out = _cli("dlq", "redrive", topic_name, *common, "--json")
    assert [r["outcome"] for r in json.loads(out)["records"]] == ["does-not-fit"]
    assert _redriven(bootstrap, topic_name) == Counter(
        {f"{topic_name}.dlq/0/0".encode(): 1, f"{topic_name}.dlq/0/1".encode(): 1}
    )


def test_where_redrives_only_the_chosen_and_a_later_run_the_rest(
    kafka_broker: Broker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """--where error-type picks dead letters; those not chosen are redriven by a later run,
    and none twice."""
    catalog = provisioned(_contracts(topic_name))
    bootstrap = kafka_broker.bootstrap_servers
    produce(catalog, bootstrap, topic_name, [("k1", "a"), ("k2", "boom"), ("k3", "c")])

    def handler(record: Record) -> None:
        raise (RuntimeError if record.value == b"boom" else KeyError)("failed")

    with GovernedConsumer(
        catalog,
        service="billing",
        group_id=f"dl-{topic_name}",
        topics=[topic_name],
        bootstrap_servers=bootstrap,
        retry=RetryPolicy.never(),
        overrides=FAST,
    ) as consumer:
        run_until(
            consumer,
            lambda: len(read_all(bootstrap, f"{topic_name}.dlq", timeout=5)) == 3,
            handler,
            30,
        )
    common = ["--contracts", str(catalog.path), "-b", bootstrap, "--service", "checkout"]
    code, out = _cli(
        "dlq", "redrive", topic_name, *common, "--where", "error-type=RuntimeError", "--json"
    )
    assert code == 0
    outcomes = [(r["offset"], r["outcome"]) for r in json.loads(out)["records"]]
    assert outcomes == [(0, "not-chosen"), (1, "redriven"), (2, "not-chosen")]
    code, out = _cli("dlq", "redrive", topic_name, *common, "--json")
    assert [(r["offset"], r["outcome"]) for r in json.loads(out)["records"]] == [
        (0, "redriven"),
        (2, "redriven"),
    ]
    assert sorted(_redriven(bootstrap, topic_name).values()) == [1, 1, 1]


def test_sigkill_mid_redrive_then_rerun_redrives_each_dead_letter_exactly_once(
    kafka_broker: Broker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """A redrive killed with SIGKILL partway, then run again: every dead letter is back in
    its topic exactly once."""
    catalog = provisioned(_contracts(topic_name))
    bootstrap = kafka_broker.bootstrap_servers
    # A transaction per dead letter: tens per second on the replicated cluster, hundreds
    # on the embedded broker; enough either way for the kill to land mid-redrive.
    total = 400 if on_apache_kafka(kafka_broker) else 1500
    produce(catalog, bootstrap, topic_name, [(f"k{i}", str(i)) for i in range(total)])
    _dead_letter_all(catalog, bootstrap, topic_name, total)
    command = [
        sys.executable,
        "-m",
        "governed_kafka",
        "dlq",
        "redrive",
        topic_name,
        "--contracts",
        str(catalog.path),
        "-b",
        bootstrap,
        "--service",
        "checkout",
    ]
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        group = f"governed-kafka-redrive.{topic_name}.dlq"
        while (
            time.monotonic() < deadline
            and _committed(bootstrap, group, f"{topic_name}.dlq", 1).get(0, 0) < 50
        ):
            time.sleep(0.02)
        assert child.poll() is None, "the redrive finished before it could be killed"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    before = _redriven(bootstrap, topic_name)
    assert 50 <= sum(before.values()) < total
    rerun = subprocess.run(command, check=False, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    after = _redriven(bootstrap, topic_name)
    assert set(after) == {f"{topic_name}.dlq/0/{o}".encode() for o in range(total)}
    assert set(after.values()) == {1}


def test_a_key_parked_in_the_dead_letters_is_released_in_order_by_redrive(
    kafka_broker: Broker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """With key order, a key whose record was dead-lettered parks its later records in the
    dead-letter topic too; redrive sends them back and the consumer handles them in order,
    before the key's newer records."""
    catalog = provisioned(tier_contracts(topic_name, partitions=1, delays=("1s",), ordering="key"))
    bootstrap = kafka_broker.bootstrap_servers
    group = f"g-{topic_name}"
    produce(catalog, bootstrap, topic_name, [("k", "1"), ("k", "2"), ("other", "x")])
    handled: list[str] = []
    broken = {"1"}

    def handler(record: Record) -> None:
        value = record.value.decode()
        if value in broken:
            raise ValueError("broken until fixed")
        handled.append(value)

    with tiered_consumer(catalog, bootstrap, topic_name, group) as consumer:
        run_until(
            consumer,
            lambda: len(read_all(bootstrap, f"{topic_name}.dlq", timeout=5)) == 2,
            handler,
            40,
        )
        assert handled == ["x"]
        broken.clear()  # the bug is fixed: redrive
        code, out = _cli(
            "dlq",
            "redrive",
            topic_name,
            "--contracts",
            str(catalog.path),
            "-b",
            bootstrap,
            "--service",
            "checkout",
        )
        assert code == 0, out
        produce(catalog, bootstrap, topic_name, [("k", "3")])
        run_until(consumer, lambda: len(handled) == 4, handler, 30)
    assert handled == ["x", "1", "2", "3"]


EXAMPLE_SCHEMAS = Path(__file__).parent.parent.parent / "examples" / "schemas"


def _avro_contracts(topic: str, versions: list[str]) -> str:
    return _contracts(topic).replace(
        'key = "optional"', f'key = "optional"\n    value_schema = {versions!r}', 1
    )


def test_redrive_decodes_by_the_writer_schema_and_sends_by_the_current_one(
    kafka_broker: Broker, provisioned: CatalogFactory, topic_name: str, tmp_path: Path
) -> None:
    """A dead letter written under schema v1 is re-validated against the contract whose
    current schema is v2 and sent back encoded by v2, its new fields at their defaults."""
    for folder in (tmp_path / "schemas", tmp_path / "now" / "schemas"):
        folder.mkdir(parents=True)
        for name in ("order_created.v1.avsc", "order_created.v2.avsc"):
            (folder / name).write_bytes((EXAMPLE_SCHEMAS / name).read_bytes())
    catalog = provisioned(_avro_contracts(topic_name, ["schemas/order_created.v1.avsc"]))
    bootstrap = kafka_broker.bootstrap_servers
    order = {
        "order_id": "o-1",
        "customer_id": "c-1",
        "amount_cents": 1250,
        "currency": "EUR",
        "created_at": 1_700_000_000_000,
    }
    from governed_kafka import GovernedProducer

    with GovernedProducer(catalog, service="checkout", bootstrap_servers=bootstrap) as producer:
        producer.send(topic_name, order, key="o-1")
    _dead_letter_all(catalog, bootstrap, topic_name, 1)
    both = ["schemas/order_created.v1.avsc", "schemas/order_created.v2.avsc"]
    policy = catalog.path.read_text().split("[[topics]]")[0]
    now = Catalog.load(
        write_catalog(tmp_path / "now", policy + textwrap.dedent(_avro_contracts(topic_name, both)))
    )
    assert now.topic(topic_name).current_value_schema == tmp_path / "now" / both[1]
    code, out = _cli(
        "dlq",
        "redrive",
        topic_name,
        "--contracts",
        str(now.path),
        "-b",
        bootstrap,
        "--service",
        "checkout",
        "--json",
    )
    assert code == 0, out
    assert [r["outcome"] for r in json.loads(out)["records"]] == ["redriven"]
    values: list[object] = []

    def handler(record: Record) -> None:
        if record.header("redrive.from") is not None:
            values.append(record.value)

    with GovernedConsumer(
        now,
        service="billing",
        group_id=f"after-{topic_name}",
        topics=[topic_name],
        bootstrap_servers=bootstrap,
        overrides=FAST,
    ) as consumer:
        run_until(consumer, lambda: bool(values), handler, 30)
    created = datetime.datetime.fromtimestamp(1_700_000_000, tz=datetime.timezone.utc)
    assert values == [{**order, "created_at": created, "items": [], "channel": None}]


def test_a_read_does_not_count_the_time_its_caller_spends_on_each_record(
    kafka_broker: Broker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """The read behind redrive and the parked-key rebuild times its own waiting only: a
    caller that spends longer on the records than the read's timeout (a redrive commits
    a transaction for each) still reads the whole range."""
    catalog = provisioned(_contracts(topic_name))
    bootstrap = kafka_broker.bootstrap_servers
    total = 1200  # more than one fetch of the reader: it waits again after the first
    produce(catalog, bootstrap, topic_name, [(f"k{i}", str(i)) for i in range(total)])
    seen = []
    with _kafka.LogReader({"bootstrap.servers": bootstrap}) as reader:
        started = time.monotonic()
        for entry in reader.read({(topic_name, 0): (0, total)}, timeout=3):
            seen.append(int(entry.value))
            if len(seen) == 1:
                time.sleep(4)
    assert seen == list(range(total))
    assert time.monotonic() - started > 4  # longer than the timeout, in the caller
