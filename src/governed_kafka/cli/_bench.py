"""``governed-kafka bench``: compare profiles (and the raw client) on a real broker."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import click
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from .. import profiles
from .._librdkafka_keys import CONSUMER_KEYS, GLOBAL_KEYS, PRODUCER_KEYS
from .._stats import Figure
from ._bench_run import BenchReport, BenchSettings, plot, run_bench
from ._common import (
    clean_errors,
    cluster_settings,
    connection_options,
    console,
    err_console,
    fail,
    main,
)

#: Session timeout for benchmark consumers on the embedded broker: its group joins take
#: about half of it, and nothing else shares that broker.
_EMBEDDED_SESSION_TIMEOUT_MS = 4000


def _rate(value: Figure) -> str:
    def short(x: float) -> str:
        return f"{x / 1e6:.2f}M" if x >= 1e6 else f"{x / 1e3:.0f}k" if x >= 1e4 else f"{x:,.0f}"

    if len(value.runs) == 1:
        return short(value.median)
    return f"{short(value.median)} [dim]{short(value.low)}-{short(value.high)}[/]"


def _ms(value: Figure) -> str:
    if len(value.runs) == 1:
        return f"{value.median:.1f}"
    return f"{value.median:.1f} [dim]{value.low:.1f}-{value.high:.1f}[/]"


def render(report: BenchReport) -> list[Table]:
    """Two tables (throughput, latency): one row per variant, medians with min-max."""
    settings = report.settings
    throughput = Table(
        title=(
            f"throughput: {settings.messages:,} records x {settings.value_size} B"
            f"{' Avro' if settings.value_format == 'avro' else ''}, "
            f"{settings.keys:,} keys, {settings.partitions} partitions "
            + (
                f"(median of {settings.repeats}, dim: min-max)"
                if settings.repeats > 1
                else "(one run)"
            )
        ),
        title_justify="left",
    )
    throughput.add_column("variant")
    throughput.add_column("produce rec/s", justify="right")
    throughput.add_column("produce MB/s", justify="right")
    throughput.add_column("consume rec/s", justify="right")
    latency = Table(
        title=f"latency at a steady {settings.latency_rate:,} records/s, in ms",
        title_justify="left",
        caption=Text(f"broker: {report.broker}"),
    )
    latency.add_column("variant")
    for label in ("delivery p50", "p95", "p99", "end-to-end p50", "p99"):
        latency.add_column(label, justify="right")
    for row in report.rows:
        throughput.add_row(
            Text(row.name),
            _rate(row.produce_msgs_per_s),
            _ms(row.produce_mb_per_s),
            _rate(row.consume_msgs_per_s),
        )
        latency.add_row(
            Text(row.name),
            _ms(row.delivery_p50_ms),
            _ms(row.delivery_p95_ms),
            _ms(row.delivery_p99_ms),
            _ms(row.e2e_p50_ms),
            _ms(row.e2e_p99_ms),
        )
    return [throughput, latency]


@contextlib.contextmanager
def _apache_kafka(brokers: int) -> Iterator[tuple[str, str]]:
    from ..testing import BrokerStartError, KafkaCluster, KafkaClusterUnavailable

    cluster = KafkaCluster(brokers=brokers)
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        bar.add_task(f"starting Apache Kafka {cluster.version}, {brokers} node(s)", total=None)
        try:
            cluster.start()
        except (KafkaClusterUnavailable, BrokerStartError) as exc:
            fail(f"--apache-kafka {brokers}: {exc}")
    err_console.print(
        f"started Apache Kafka {cluster.version} with {brokers} node(s) at "
        f"{cluster.bootstrap_servers} (KRaft, one JVM per node, on this machine)"
    )
    try:
        yield (
            cluster.bootstrap_servers,
            (
                f"Apache Kafka {cluster.version}, {brokers} node(s) on this machine, "
                f"topics RF {min(3, brokers)}, min ISR {min(2, brokers)}"
            ),
        )
    finally:
        cluster.stop()


@contextlib.contextmanager
def _broker(bootstrap_servers: str | None, apache_kafka: int | None) -> Iterator[tuple[str, str]]:
    if bootstrap_servers:
        yield bootstrap_servers, bootstrap_servers
        return
    if apache_kafka is not None:
        with _apache_kafka(apache_kafka) as started:
            yield started
        return
    from ..testing import BrokerNotFoundError, LocalBroker

    try:
        broker = LocalBroker().start()
    except BrokerNotFoundError as exc:
        fail(f"no --bootstrap-servers given and {exc}")
    err_console.print(
        Text(
            "no --bootstrap-servers given: started the embedded broker at "
            f"{broker.bootstrap_servers} (Tansu, memory only, on this machine)"
        )
    )
    try:
        yield broker.bootstrap_servers, f"embedded Tansu at {broker.bootstrap_servers}"
    finally:
        broker.stop()


def _split(
    settings: dict[str, str],
) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    """Connection settings as ``(producer overrides, consumer overrides)``."""
    producer = tuple((k, v) for k, v in settings.items() if k in GLOBAL_KEYS | PRODUCER_KEYS)
    consumer = tuple((k, v) for k, v in settings.items() if k in GLOBAL_KEYS | CONSUMER_KEYS)
    return producer, consumer


def _writable(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror or exc}")


@main.command()
@click.option(
    "--bootstrap-servers",
    help=(
        "Cluster to measure; default: bootstrap.servers of the connection settings, else "
        "start the embedded broker."
    ),
)
@click.option(
    "--apache-kafka",
    "apache_kafka",
    type=click.IntRange(min=1),
    help=(
        "Start an Apache Kafka cluster of this many nodes on this machine and measure there "
        "(topics RF min(3, N), min ISR min(2, N)); needs Java 17+, and Maven once."
    ),
)
@click.option(
    "--profiles",
    "profile_names",
    default=",".join(profiles.PROFILES),
    show_default=True,
    help="Comma-separated profiles to compare.",
)
@click.option("--messages", default=20_000, show_default=True, help="Records per produce run.")
@click.option(
    "--value-size", default=1024, show_default=True, help="Bytes per value (JSON-like text)."
)
@click.option("--keys", default=1_000, show_default=True, help="Distinct keys (cardinality).")
@click.option("--partitions", default=6, show_default=True, help="Partitions of each test topic.")
@click.option(
    "--format",
    "value_format",
    type=click.Choice(["bytes", "avro"]),
    default="bytes",
    show_default=True,
    help="Values: JSON-like bytes, or Avro records (schema-checked, wire format).",
)
@click.option("--repeats", default=3, show_default=True, help="Measured runs per variant.")
@click.option(
    "--latency-rate", default=2_000, show_default=True, help="Records/s while measuring latency."
)
@click.option(
    "--latency-messages", default=2_000, show_default=True, help="Records per latency run."
)
@click.option("--no-raw", is_flag=True, help="Skip the raw confluent-kafka baseline row.")
@click.option(
    "--json", "json_path", type=click.Path(dir_okay=False), help="Write the report as JSON."
)
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False),
    help="Save a PNG plot (needs the [plot] extra).",
)
@connection_options
@clean_errors
def bench(  # noqa: PLR0917 - one parameter per command-line option
    bootstrap_servers: str | None,
    apache_kafka: int | None,
    profile_names: str,
    messages: int,
    value_size: int,
    keys: int,
    partitions: int,
    value_format: str,
    repeats: int,
    latency_rate: int,
    latency_messages: int,
    no_raw: bool,
    json_path: str | None,
    plot_path: str | None,
    client_config: tuple[str, ...],
    config_file: str | None,
) -> None:
    """Measure throughput and latency of each profile against the raw client, same run.

    Connection settings apply to every client of the run: global ones (TLS, SASL) to
    all, producer and consumer ones to the clients of their kind.
    """
    bootstrap_servers, connection = cluster_settings(
        bootstrap_servers=bootstrap_servers,
        config_file=config_file,
        pairs=client_config,
        required=False,
    )
    if bootstrap_servers and apache_kafka is not None:
        fail("give --bootstrap-servers or --apache-kafka, not both")
    try:
        chosen = tuple(profiles.by_name(n) for n in profile_names.split(",") if n.strip())
    except ValueError as exc:
        fail(str(exc))
    if plot_path:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            fail('--plot needs matplotlib: pip install "governed-kafka[plot]"')
    for output in (json_path, plot_path):
        if output:  # find out now, not after minutes of measuring, that it cannot be written
            _writable(Path(output))
    rf = min(3, apache_kafka) if apache_kafka is not None else None
    min_isr = min(2, apache_kafka) if apache_kafka is not None else None
    with _broker(bootstrap_servers, apache_kafka) as (servers, label):
        embedded: dict[str, str | int | float | bool] = (
            {}
            if bootstrap_servers or apache_kafka is not None
            else {"session.timeout.ms": _EMBEDDED_SESSION_TIMEOUT_MS}
        )
        producer_overrides, for_consumers = _split(connection)
        consumer_overrides = (*embedded.items(), *for_consumers)
        try:
            settings = BenchSettings(
                messages=messages,
                value_size=value_size,
                keys=keys,
                partitions=partitions,
                value_format=value_format,  # type: ignore[arg-type]
                repeats=repeats,
                latency_rate=latency_rate,
                latency_messages=latency_messages,
                profiles=chosen,
                raw_baseline=not no_raw,
                producer_overrides=producer_overrides,
                consumer_overrides=consumer_overrides,
                replication_factor=rf,
                min_insync_replicas=min_isr,
            )
        except ValueError as exc:
            fail(str(exc))
        with Progress(
            TextColumn("{task.description:<32}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err_console,
            transient=True,
        ) as bar:
            task = bar.add_task("warming up", total=settings.steps)
            report = run_bench(
                servers,
                settings,
                broker=label,
                progress=lambda text, steps: bar.update(task, advance=steps, description=text),
            )
    for table in render(report):
        console.print(table)
    if json_path:
        Path(json_path).write_text(json.dumps(report.to_dict(), indent=2), encoding="utf-8")
        err_console.print(Text(f"wrote {json_path}"))
    if plot_path:
        plot(report, plot_path)
        err_console.print(Text(f"wrote {plot_path}"))
