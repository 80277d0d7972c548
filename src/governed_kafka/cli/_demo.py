"""``governed-kafka demo``: the whole product in a minute, on the embedded broker.

Lint the contracts, plan and apply them on a real broker, send governed records and
watch refused ones fail with their reason, consume with explicit commits and a dead
letter, read the lag, and compare two profiles with the raw client.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from .. import profiles
from ..cluster import Cluster
from ..commit import CommitStrategy
from ..consumer import GovernedConsumer, Record
from ..contracts import Catalog
from ..errors import GovernanceViolation, GovernedKafkaError, SerializationError
from ..lag import group_lag
from ..producer import GovernedProducer
from ..retry import RetryPolicy
from ._bench import render as render_bench
from ._bench_run import BenchSettings, run_bench
from ._common import console, err_console, fail, main
from ._lag import render as render_lag
from ._print import print_applied, print_plan, print_violations, quiet_client_logs

ORDERS = "payments.order.created.v1"
DEAD_LETTERS = f"{ORDERS}.dlq"

#: The demo's consumers share the embedded broker with nothing: short joins.
_CONSUMER = {"session.timeout.ms": 6000}


def _step(number: int, title: str) -> None:
    console.print()
    console.print(Rule(f"[bold]{number}. {title}[/]", align="left"))


@contextmanager
def _contracts() -> Iterator[Path]:
    """The demo's contracts file and schemas, copied where the user can read them."""
    with tempfile.TemporaryDirectory(prefix="governed-kafka-demo-") as tmp:
        with as_file(files(__package__).joinpath("demo_contracts")) as source:
            shutil.copytree(source, tmp, dirs_exist_ok=True)
        yield Path(tmp) / "governance.toml"


def _order(i: int, *, currency: str = "EUR") -> dict[str, Any]:
    return {
        "order_id": f"order-{i:04d}",
        "customer_id": f"customer-{i % 5}",
        "amount_cents": 1000 + 250 * i,
        "currency": currency,
        "created_at": int(time.time() * 1000),
        "items": [{"sku": f"sku-{i % 3}", "quantity": 1 + i % 2, "price_cents": 1000 + 250 * i}],
        "channel": "web",
    }


def _refused(what: str, attempt: Any) -> None:
    try:
        attempt()
    except (GovernanceViolation, SerializationError) as exc:
        rule = getattr(exc, "rule", None) or f"field {exc.field}"
        console.print(f"  [red]refused[/] {what}: [dim]{type(exc).__name__} ({escape(rule)})[/]")
        console.print(Text(f"    {exc}"))
    else:  # pragma: no cover - the demo would be lying
        fail(f"the demo expected {what} to be refused, and it was accepted")


@main.command()
@click.option("--skip-bench", is_flag=True, help="Leave out the short profile benchmark.")
def demo(skip_bench: bool) -> None:
    """An end-to-end walk-through on the embedded broker (about a minute)."""
    from ..testing import BrokerNotFoundError, LocalBroker

    quiet_client_logs()
    with _contracts() as path:
        _step(1, "Contracts as code: lint")
        console.print(f"contracts: {escape(str(path))} (environment [bold]local[/])")
        catalog = Catalog.load(path, environment="local")
        violations = catalog.lint()
        print_violations(violations)
        console.print(f"lint: {len(violations)} violations in {len(catalog)} topics")
        strict = Catalog.load(path)
        console.print(
            "the same file without the local overrides holds production to RF 3 and min ISR 2: "
            f"{len(strict.lint())} violations"
        )

        try:
            broker = LocalBroker().start()
        except BrokerNotFoundError as exc:
            fail(str(exc))
        err_console.print(
            f"[dim]embedded broker (Tansu, memory only) at {escape(broker.bootstrap_servers)}[/]"
        )
        try:
            _walk_through(catalog, broker.bootstrap_servers, skip_bench=skip_bench)
        except GovernedKafkaError as exc:
            fail(f"the demo stopped: {exc}")
        finally:
            broker.stop()
    console.print()
    console.print(Rule("[bold green]done[/]", align="left"))
    console.print(
        "Next: docs/tutorial.md walks through the same steps in your own service; "
        "`governed-kafka bench` compares the profiles properly."
    )


def _walk_through(catalog: Catalog, bootstrap: str, *, skip_bench: bool) -> None:
    cluster = Cluster(bootstrap)
    _step(2, "Plan and apply the contracts on the broker")
    plan = cluster.plan(catalog)
    print_plan(plan)
    print_applied(cluster.apply(catalog))
    again = cluster.plan(catalog)
    console.print(f"plan again: {again.status} ({len(again.in_sync)} topics in sync)")

    _step(3, "Governed sends: Avro checked against the contract, keyed like the Java client")
    with GovernedProducer(catalog, service="checkout", bootstrap_servers=bootstrap) as producer:
        table = Table(
            "order", "key", "partition", "offset", title="delivered", title_justify="left"
        )
        for i in range(9):
            order = _order(i)
            where = producer.send_and_wait(ORDERS, order, key=order["order_id"])
            table.add_row(
                order["order_id"], order["order_id"], str(where.partition), str(where.offset)
            )
        console.print(table)
        console.print("refused before anything left the process:")
        _refused("an order without a key", lambda: producer.send(ORDERS, _order(90)))
        bad = {**_order(91), "amount_cents": "12.50"}
        _refused(
            "an amount given as a string", lambda: producer.send(ORDERS, bad, key="order-0091")
        )
        bad_item = _order(92)
        bad_item["items"][0]["quantity"] = None
        _refused(
            "an order line without a quantity", lambda: producer.send(ORDERS, bad_item, key="o-92")
        )
        _refused("a tombstone on a delete topic", lambda: producer.send(ORDERS, None, key="o-93"))
        # A producer for a service the contract does not list cannot write either.
        with GovernedProducer(catalog, service="analytics", bootstrap_servers=bootstrap) as rogue:
            _refused("a send by 'analytics'", lambda: rogue.send(ORDERS, _order(94), key="o-94"))
        # One order billing will not be able to process.
        poison = _order(99, currency="GBP")
        producer.send_and_wait(ORDERS, poison, key=poison["order_id"])

    _step(4, "Consume with explicit commits, retries and a dead letter")
    billed: list[str] = []

    def bill(record: Record) -> None:
        if record.value["currency"] == "GBP":
            raise ValueError(f"no GBP price list for {record.value['order_id']}")
        billed.append(record.value["order_id"])

    with GovernedConsumer(
        catalog,
        service="billing",
        group_id="billing",
        topics=[ORDERS],
        bootstrap_servers=bootstrap,
        commit=CommitStrategy.batched(max_records=100, max_interval_s=1.0),
        retry=RetryPolicy(attempts=3, initial_backoff_s=0.05, max_backoff_s=0.2, jitter_s=0.01),
        overrides=_CONSUMER,
    ) as consumer:
        summary = consumer.run(bill, max_records=10, timeout=60)
    console.print(
        f"billed {len(billed)} orders; {summary.retries} retries; "
        f"{summary.dead_lettered} dead-lettered; offsets committed only for handled records"
    )
    _show_dead_letter(catalog, bootstrap)

    _step(5, "Lag as a signal")
    with GovernedProducer(
        catalog, service="checkout", bootstrap_servers=bootstrap, profile=profiles.LOW_LATENCY
    ) as producer:
        for i in range(100, 106):
            order = _order(i)
            producer.send_and_wait(ORDERS, order, key=order["order_id"])  # one per request
    console.print("6 new orders arrived while billing was away:")
    console.print(render_lag(group_lag(bootstrap, "billing")))

    if skip_bench:
        return
    _step(6, "Profiles, measured against the raw client (short run)")
    settings = BenchSettings(
        messages=5_000,
        repeats=1,
        latency_messages=300,
        latency_rate=1_000,
        profiles=(profiles.DURABLE, profiles.LOW_LATENCY),
        consumer_overrides=(("session.timeout.ms", 2000),),
    )
    with console.status("measuring ..."):
        report = run_bench(bootstrap, settings, broker="embedded Tansu")
    for table in render_bench(report):
        console.print(table)


def _show_dead_letter(catalog: Catalog, bootstrap: str) -> None:
    with GovernedConsumer(
        catalog,
        service="ops",
        group_id="ops",
        topics=[DEAD_LETTERS],
        bootstrap_servers=bootstrap,
        commit=CommitStrategy.manual(),
        overrides=_CONSUMER,
    ) as reader:
        letters: list[Record] = []
        deadline = time.monotonic() + 30
        while not letters and time.monotonic() < deadline:
            letters = reader.poll_batch(max_records=1, timeout=0.5)
    if not letters:
        console.print("[red]no dead letter arrived[/]")
        return
    letter = letters[0]
    table = Table("header", "value", title=f"dead letter in {DEAD_LETTERS}", title_justify="left")
    for name, value in letter.headers:
        if name.startswith("dlq."):
            table.add_row(Text(name), Text((value or b"").decode("utf-8", "replace")))
    console.print(table)
