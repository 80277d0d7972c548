"""``governed-kafka lag``: committed offsets against the log end, per partition."""

from __future__ import annotations

import click
from rich.table import Table
from rich.text import Text

from ..lag import LagReport, group_lag
from ._common import clean_errors, cluster_settings, connection_options, console, emit_json, main


def _cell(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def render(report: LagReport) -> Table:
    """The report as a table: one row per partition, totals in the caption.

    Topic and group names come from the cluster: they are shown as text, never as markup.
    """
    table = Table(title=Text(f"lag of group {report.group_id}"), title_justify="left")
    table.add_column("topic")
    table.add_column("partition", justify="right")
    table.add_column("log end", justify="right")
    table.add_column("committed", justify="right")
    table.add_column("commit lag", justify="right")
    for entry in report:
        table.add_row(
            Text(entry.topic),
            str(entry.partition),
            _cell(entry.high_watermark),
            _cell(entry.committed),
            _cell(entry.commit_lag),
        )
    table.caption = f"total commit lag: {report.commit_lag:,} records"
    return table


@main.command()
@click.option("--group", "group_id", required=True, help="Consumer group to report on.")
@click.option(
    "--bootstrap-servers",
    help="host:port[,host:port...]; default: bootstrap.servers of the connection settings.",
)
@click.option("--timeout", default=10.0, show_default=True, help="Seconds to wait for the cluster.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@connection_options
@clean_errors
def lag(  # noqa: PLR0917 - one parameter per command-line option
    group_id: str,
    bootstrap_servers: str | None,
    timeout: float,
    as_json: bool,
    client_config: tuple[str, ...],
    config_file: str | None,
) -> None:
    """Lag report of consumer group GROUP: log end, committed offset and lag per partition."""
    servers, settings = cluster_settings(
        bootstrap_servers=bootstrap_servers, config_file=config_file, pairs=client_config
    )
    assert servers is not None
    report = group_lag(servers, group_id, overrides=settings, timeout=timeout)
    if as_json:
        emit_json(report.to_dict())
        return
    if not report.partitions:
        console.print(Text(f"group {group_id!r} has committed no offsets on this cluster"))
        return
    console.print(render(report))
