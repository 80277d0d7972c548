"""``governed-kafka dlq show`` and ``dlq redrive``: dead letters read, and sent back once.

Exit codes: ``show`` 0; ``redrive`` 0 when every chosen dead letter was redriven (or, with
``--dry-run``, would be), 2 when some stay (they do not fit the contract, or wait behind
one of their key that does not), 1 on errors.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click
from rich.table import Table
from rich.text import Text

from .. import _redrive
from ..contracts import Catalog
from ._common import clean_errors, cluster_settings, connection_options, console, emit_json, main

F = TypeVar("F", bound=Callable[..., Any])


def _common(fn: F) -> F:
    fn = click.argument("topic")(fn)
    for option in (
        click.option(
            "--contracts",
            "contracts",
            default="governance.toml",
            show_default=True,
            type=click.Path(dir_okay=False),
            help="The contracts file.",
        ),
        click.option("--env", "environment", metavar="E", help="Environment of the contracts."),
        click.option("--bootstrap-servers", "-b", metavar="B", help="host:port[,host:port...]."),
        click.option(
            "--where",
            "where",
            multiple=True,
            metavar="FIELD=VALUE",
            help=f"Only dead letters whose FIELD ({', '.join(_redrive.WHERE_FIELDS)}) is VALUE.",
        ),
        click.option("--partition", "partitions", type=click.IntRange(min=0), multiple=True),
        click.option("--from-offset", "start", type=click.IntRange(min=0), help="First offset."),
        click.option(
            "--to-offset", "end", type=click.IntRange(min=0), help="Offset to stop before."
        ),
        click.option("--json", "as_json", is_flag=True, help="Machine output on stdout."),
        connection_options,
    ):
        fn = option(fn)
    return fn


def _setup(  # noqa: PLR0917 - the options every dlq command shares
    contracts: str,
    environment: str | None,
    bootstrap_servers: str | None,
    where: Sequence[str],
    client_config: Sequence[str],
    config_file: str | None,
) -> tuple[Catalog, str, dict[str, str], _redrive.Where]:
    catalog = Catalog.load(contracts, environment=environment)
    servers, settings = cluster_settings(
        bootstrap_servers=bootstrap_servers, config_file=config_file, pairs=client_config
    )
    assert servers is not None
    try:
        chosen = _redrive.Where.parse(where)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--where") from None
    return catalog, servers, settings, chosen


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def _letters_table(title: str, rows: Sequence[tuple[_redrive.DeadLetter, str, str]]) -> Table:
    table = Table(title=Text(title), title_justify="left")
    for name in ("partition", "offset", "age", "origin", "attempts", "error", "key", "status"):
        table.add_column(name, justify="right" if name in {"partition", "offset"} else "left")
    for letter, status, reason in rows:
        origin = f"{letter.origin_topic}[{letter.origin_partition}]@{letter.origin_offset}"
        error = f"{letter.error_type.rpartition('.')[2]}: {letter.error_message[:80]}"
        table.add_row(
            str(letter.partition),
            str(letter.offset),
            _age(letter.age_s),
            Text(origin),
            "-" if letter.attempts is None else str(letter.attempts),
            Text("parked behind its key" if letter.parked else error),
            Text("-" if letter.key is None else letter.key.decode("utf-8", "replace")),
            Text(status + (f": {reason}" if reason else "")),
        )
    return table


@main.group()
def dlq() -> None:
    """Dead letters: show them, and redrive them to their original topics."""


@dlq.command()
@_common
@click.option("--limit", default=1000, show_default=True, type=click.IntRange(min=1))
@clean_errors
def show(  # noqa: PLR0917 - one parameter per option
    topic: str,
    contracts: str,
    environment: str | None,
    bootstrap_servers: str | None,
    where: tuple[str, ...],
    partitions: tuple[int, ...],
    start: int | None,
    end: int | None,
    as_json: bool,
    client_config: tuple[str, ...],
    config_file: str | None,
    limit: int,
) -> None:
    """Dead letters of TOPIC (a topic, or its dead-letter topic): error, origin, attempts, age."""
    catalog, servers, settings, chosen = _setup(
        contracts, environment, bootstrap_servers, where, client_config, config_file
    )
    letters = _redrive.dead_letters(
        catalog,
        topic,
        connection={**settings, "bootstrap.servers": servers},
        where=chosen,
        partitions=partitions or None,
        start=start,
        end=end,
        limit=limit,
    )
    if as_json:
        emit_json([letter.to_dict() for letter in letters])
        return
    dlq_topic, _ = _redrive.resolve(catalog, topic)
    rows = [(x, "redriven" if x.redriven else "waiting", "") for x in letters]
    console.print(_letters_table(f"dead letters in {dlq_topic}", rows))
    console.print(Text(f"{len(letters)} dead letters shown (at most {limit})"))


@dlq.command()
@_common
@click.option("--service", required=True, help="The service that sends them back (a producer).")
@click.option("--dry-run", is_flag=True, help="Validate and report; send and commit nothing.")
@click.option(
    "--transactional-id",
    help="Transactional id of the sends (default: governed-kafka-redrive.<dead-letter topic>).",
)
@clean_errors
def redrive(  # noqa: PLR0917 - one parameter per option
    topic: str,
    contracts: str,
    environment: str | None,
    bootstrap_servers: str | None,
    where: tuple[str, ...],
    partitions: tuple[int, ...],
    start: int | None,
    end: int | None,
    as_json: bool,
    client_config: tuple[str, ...],
    config_file: str | None,
    service: str,
    dry_run: bool,
    transactional_id: str | None,
) -> None:
    """Send TOPIC's dead letters back to their original topics, re-validated, each once."""
    catalog, servers, settings, chosen = _setup(
        contracts, environment, bootstrap_servers, where, client_config, config_file
    )
    report = _redrive.redrive(
        catalog,
        topic,
        service=service,
        bootstrap=servers,
        connection=settings,
        where=chosen,
        partitions=partitions or None,
        start=start,
        end=end,
        dry_run=dry_run,
        transactional_id=transactional_id,
    )
    staying = report.count("does-not-fit") + report.count("held")
    if as_json:
        emit_json(report.to_dict())
    else:
        rows = [(r.letter, r.outcome, r.reason) for r in report.records]
        console.print(_letters_table(f"redrive of {report.topic}", rows))
        done = report.count("would-redrive" if dry_run else "redriven")
        verb = "would be redriven" if dry_run else "redriven"
        summary = f"{done} {verb}, {staying} stay (do not fit or wait behind their key)"
        if report.count("not-chosen"):
            summary += f", {report.count('not-chosen')} not chosen"
        if report.recovered:
            summary += f", {report.recovered} found sent already (skipped)"
        total = sum(report.counts.values())
        if total > len(report.records):
            summary += f" (the first {len(report.records)} of {total} listed)"
        console.print(Text(summary))
    if staying:
        sys.exit(2)
