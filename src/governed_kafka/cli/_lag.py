"""``governed-kafka lag``: committed offsets against the log end, per partition."""

from __future__ import annotations

import click
from rich.table import Table

from ..lag import LagReport, group_lag
from ._common import clean_errors, console, emit_json, main


def _cell(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def render(report: LagReport) -> Table:
    """The report as a table: one row per partition, totals in the caption."""
    table = Table(title=f"lag of group {report.group_id}", title_justify="left")
    table.add_column("topic")
    table.add_column("partition", justify="right")
    table.add_column("log end", justify="right")
    table.add_column("committed", justify="right")
    table.add_column("commit lag", justify="right")
    for entry in report:
        table.add_row(
            entry.topic,
            str(entry.partition),
            _cell(entry.high_watermark),
            _cell(entry.committed),
            _cell(entry.commit_lag),
        )
    table.caption = f"total commit lag: {report.commit_lag:,} records"
    return table


@main.command()
@click.option("--group", "group_id", required=True, help="Consumer group to report on.")
@click.option("--bootstrap-servers", required=True, help="host:port[,host:port...]")
@click.option("--timeout", default=10.0, show_default=True, help="Seconds to wait for the cluster.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@clean_errors
def lag(group_id: str, bootstrap_servers: str, timeout: float, as_json: bool) -> None:
    """Lag report of consumer group GROUP: log end, committed offset and lag per partition."""
    report = group_lag(bootstrap_servers, group_id, timeout=timeout)
    if as_json:
        emit_json(report.to_dict())
        return
    if not report.partitions:
        console.print(f"group {group_id!r} has committed no offsets on this cluster")
        return
    console.print(render(report))
