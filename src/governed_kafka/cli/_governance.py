"""``lint``, ``plan`` and ``apply``: contracts checked offline and held against a cluster.

Exit codes (DESIGN.md): ``lint`` 0 clean, 1 violations; ``plan`` 0 in sync, 2 changes
pending, 1 violations or errors; ``apply`` 0 ok, 1 refused or failed.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import attrs
import click
from rich import box
from rich.table import Table
from rich.text import Text

from .._kafka import LIBRDKAFKA_LOGGER
from ..acls import Acl
from ..cluster import DEFAULT_TIMEOUT_S, ApplyResult, Cluster, Plan, TopicChange
from ..contracts import Catalog
from ..lint import RULES
from ..policy import Violation
from ..registry import ConfluentSchemaRegistry
from ._common import (
    SettingsError,
    clean_errors,
    cluster_settings,
    connection_options,
    console,
    emit_json,
    main,
    split_registry_settings,
)

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

#: Width of the rule column: the longest rule id.
_RULE_WIDTH = max(len(rule) for rule in RULES)


def _contracts_file(fn: F) -> F:
    fn = click.option(
        "--env",
        "environment",
        metavar="E",
        default=None,
        help="Environment whose overrides apply (an [environments.E] table of the file).",
    )(fn)
    fn = click.option("--json", "as_json", is_flag=True, help="Machine output on stdout.")(fn)
    return click.argument("file", type=click.Path(dir_okay=False, path_type=str))(fn)


def _cluster_options(fn: F) -> F:
    fn = click.option(
        "--bootstrap-servers",
        "-b",
        metavar="B",
        help=(
            "host:port[,host:port...] of the cluster; default: bootstrap.servers of the "
            "connection settings."
        ),
    )(fn)
    fn = click.option(
        "--timeout",
        type=click.FloatRange(min=0, min_open=True),
        default=DEFAULT_TIMEOUT_S,
        show_default=True,
        help="Longest wait for any one admin request, in seconds.",
    )(fn)
    fn = click.option(
        "--schema-registry",
        "schema_registry",
        metavar="URL",
        default=None,
        help=(
            "Also hold the contracts' schema subjects against this Confluent-compatible "
            "registry (credentials: schema.registry.basic.auth.user.info in --config-file); "
            "default: schema.registry.url of the connection settings, else none."
        ),
    )(fn)
    return connection_options(fn)


def _quiet_client_logs() -> None:
    """librdkafka's connection chatter stays out of the output; errors are reported once."""
    if not LIBRDKAFKA_LOGGER.handlers:
        LIBRDKAFKA_LOGGER.addHandler(logging.NullHandler())


def _cluster(
    bootstrap_servers: str | None,
    timeout: float,
    client_config: Sequence[str],
    config_file: str | None,
    schema_registry: str | None = None,
) -> tuple[Cluster, ConfluentSchemaRegistry | None]:
    """The cluster, and the schema registry when one is named (option or settings)."""
    servers, settings = cluster_settings(
        bootstrap_servers=bootstrap_servers, config_file=config_file, pairs=client_config
    )
    assert servers is not None
    kafka, registry_settings = split_registry_settings(settings)
    if schema_registry is not None:
        registry_settings["url"] = schema_registry
    registry = None
    if registry_settings.get("url"):
        try:
            registry = ConfluentSchemaRegistry(registry_settings)
        except ImportError as exc:
            raise SettingsError(str(exc)) from None
        except ValueError as exc:  # the client refuses a setting; its message names it
            shown = ", ".join(sorted(registry_settings))
            msg = f"schema registry settings refused ({shown}): {type(exc).__name__}"
            raise SettingsError(msg) from None
    elif registry_settings:
        shown = ", ".join(sorted(registry_settings))
        msg = f"schema registry settings given ({shown}) but no registry URL (--schema-registry)"
        raise SettingsError(msg)
    _quiet_client_logs()
    return Cluster(servers, overrides=kafka, timeout=timeout), registry


def _by_topic(items: Iterable[T], topic: Callable[[T], str | None]) -> dict[str, list[T]]:
    groups: dict[str, list[T]] = {}
    for item in items:
        groups.setdefault(topic(item) or "(catalog)", []).append(item)
    return groups


def _section(title: str, columns: Sequence[tuple[str, dict[str, Any]]]) -> Table:
    """One topic's table: a bold title, light borders, fixed-width label columns."""
    table = Table(
        title=Text(title, style="bold"), title_justify="left", box=box.SIMPLE_HEAD, expand=True
    )
    for header, options in columns:
        table.add_column(header, **options)
    return table


_SEVERITY: dict[str, tuple[str, str]] = {"error": ("error", "red"), "warning": ("warn", "yellow")}


def _print_violations(violations: Sequence[Violation]) -> None:
    columns: list[tuple[str, dict[str, Any]]] = [
        ("", {"width": 5, "no_wrap": True}),
        ("rule", {"width": _RULE_WIDTH, "no_wrap": True}),
        ("message", {"ratio": 1}),
    ]
    for topic, found in _by_topic(violations, lambda v: v.topic).items():
        table = _section(topic, columns)
        for v in found:
            label, colour = _SEVERITY[v.severity]
            table.add_row(Text(label, style=colour), Text(v.rule), Text(v.message))
        console.print(table)


_UNMANAGED = " (on the cluster, in no contract; left alone): "


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


# --------------------------------------------------------------------------- lint


@main.command()
@_contracts_file
@clean_errors
def lint(*, file: str, environment: str | None, as_json: bool) -> None:
    """Check FILE offline against its policy: names, owners, retention, replication, DLQs.

    Exits 0 when no rule is broken (warnings allowed), 1 on any error.
    """
    catalog = Catalog.load(file, environment=environment)
    violations = catalog.lint()
    errors = [v for v in violations if v.severity == "error"]
    if as_json:
        emit_json(
            {
                "file": str(catalog.path),
                "environment": catalog.environment,
                "topics": len(catalog),
                "errors": len(errors),
                "warnings": len(violations) - len(errors),
                "violations": [attrs.asdict(v) for v in violations],
            }
        )
    else:
        where = f"{catalog.path}" + (f" (env {catalog.environment})" if catalog.environment else "")
        _print_violations(violations)
        warnings = len(violations) - len(errors)
        if errors:
            console.print(
                f"[bold red]{_count(len(errors), 'error')}[/], {_count(warnings, 'warning')} "
                f"in {_count(len(catalog), 'topic')}"
            )
        else:
            console.print(
                Text.assemble(
                    ("clean:", "bold green"),
                    f" {_count(len(catalog), 'topic')}, {_count(warnings, 'warning')} ({where})",
                )
            )
    sys.exit(1 if errors else 0)


# --------------------------------------------------------------------------- plan


def _table(title: str, *headers: str) -> Table:
    table = Table(title=Text(title, style="bold"), title_justify="left", box=box.SIMPLE_HEAD)
    for index, header in enumerate(headers):
        # The first column names the topic: keep it whole, so it can be searched for.
        table.add_column(header, overflow="fold", no_wrap=index == 0)
    return table


def _what(change: TopicChange) -> str:
    return change.field if change.kind == "config" and change.field else change.kind


def _print_changes(plan: Plan) -> None:
    creates = [c for c in plan.changes if c.kind == "create"]
    if creates:
        table = _table("missing topics", "topic", "partitions, RF", "configs", "apply")
        for change in creates:
            configs = "\n".join(f"{k}={v}" for k, v in change.configs)
            table.add_row(
                Text(change.topic),
                Text(str(change.wanted)),
                Text(configs),
                Text("will create", style="green"),
            )
        console.print(table)
    drift = [c for c in plan.changes if c.kind != "create"]
    if drift:
        table = _table("drift", "topic", "what", "live", "contract", "apply")
        for change in drift:
            if change.safe:
                verdict = Text("will fix", style="green")
                if change.impact:
                    verdict.append(f"\n{change.impact}", style="yellow")
            else:
                verdict = Text.assemble(("refused: ", "red"), str(change.refused))
            table.add_row(
                Text(change.topic),
                Text(_what(change)),
                Text(change.live or "(not set)"),
                Text(str(change.wanted)),
                verdict,
            )
        console.print(table)


def _acl_row(table: Table, acl: Acl, verdict: Text) -> None:
    table.add_row(
        Text(acl.principal),
        Text(acl.operation.upper()),
        Text(f"{acl.resource_type} {acl.resource_name} ({acl.pattern_type})"),
        Text(acl.permission if acl.host == "*" else f"{acl.permission} from {acl.host}"),
        verdict,
    )


def _print_acls(plan: Plan) -> None:
    if plan.acls is None or not (plan.acls.missing or plan.acls.unmanaged):
        return
    table = _table("ACLs", "principal", "operation", "resource", "permission", "apply")
    for acl in plan.acls.missing:
        _acl_row(table, acl, Text.assemble(("will create", "green"), f" ({acl.reason})"))
    for acl in plan.acls.unmanaged:
        _acl_row(
            table,
            acl,
            Text.assemble(("unmanaged", "yellow"), ": no contract implies it; --prune deletes it"),
        )
    console.print(table)


def _print_quotas(plan: Plan) -> None:
    if not plan.quotas:
        return
    table = _table("quotas (not set by apply: no client-quota API)", "service", "set them with")
    for advice in plan.quotas:
        table.add_row(Text(advice.service), Text(advice.command))
    console.print(table)


def _print_schemas(plan: Plan) -> None:
    schemas = plan.schemas
    if schemas is None:
        return
    if schemas.changes:
        table = _table(f"schemas ({schemas.registry})", "subject", "what", "apply")
        for change in schemas.changes:
            if change.safe:
                verdict = Text(
                    "will register" if change.kind == "register" else "will set", "green"
                )
            else:
                verdict = Text.assemble(("refused: ", "red"), str(change.refused))
            table.add_row(Text(change.subject), Text(change.describe()), verdict)
        console.print(table)
    _print_unlisted(plan)


def _print_unlisted(plan: Plan) -> None:
    if plan.schemas is None or not plan.schemas.unlisted:
        return
    shown = ", ".join(
        f"{u.subject} version {u.version} (id {u.schema_id})" for u in plan.schemas.unlisted
    )
    console.print(
        Text.assemble(("unlisted", "yellow"), " (registered, in no contract; left alone): ", shown)
    )


def _print_plan(plan: Plan) -> None:
    if plan.violations:
        console.print("[bold red]the contracts fail lint:[/]")
        _print_violations(plan.violations)
    _print_changes(plan)
    _print_acls(plan)
    _print_schemas(plan)
    _print_quotas(plan)
    if plan.unmanaged:
        console.print(Text.assemble(("unmanaged", "yellow"), _UNMANAGED, ", ".join(plan.unmanaged)))
    creates = sum(1 for c in plan.changes if c.kind == "create")
    refused = sum(1 for c in plan.changes if not c.safe)
    changes = len(plan.changes) - creates - refused
    acls = ""
    if plan.acls is not None:
        acls = (
            f"; ACLs: {len(plan.acls.missing)} to create, {len(plan.acls.unmanaged)} "
            f"unmanaged, {len(plan.acls.in_sync)} in sync"
        )
    schemas = ""
    if plan.schemas is not None:
        kinds = [c.kind for c in plan.schemas.changes if c.safe]
        schemas = (
            f"; schemas: {kinds.count('register')} to register, "
            f"{kinds.count('compatibility')} levels to set, {len(plan.schemas.unlisted)} "
            f"unlisted, {len(plan.schemas.in_sync)} subjects in sync"
        )
    console.print(
        f"plan: {creates} to create, {changes} to change, {refused} refused, "
        f"{len(plan.in_sync)} in sync, {len(plan.unmanaged)} unmanaged"
        + (f", {_count(len(plan.violations), 'lint error')}" if plan.violations else "")
        + acls
        + schemas
    )


@main.command()
@_contracts_file
@_cluster_options
@clean_errors
def plan(
    *,
    file: str,
    environment: str | None,
    as_json: bool,
    bootstrap_servers: str | None,
    timeout: float,
    client_config: tuple[str, ...],
    config_file: str | None,
    schema_registry: str | None,
) -> None:
    """Compare FILE with the live cluster; change nothing.

    Lists missing topics, partition and replication differences, config drift,
    unmanaged topics, and, for the [services] of FILE, ACLs to create and unmanaged ACLs.
    With --schema-registry, per subject: listed schema versions not registered,
    registered versions no contract lists, and compatibility levels that differ.
    Exits 0 in sync, 2 when changes are pending, 1 when the contracts fail lint or a
    change would be refused.
    """
    cluster, registry = _cluster(
        bootstrap_servers, timeout, client_config, config_file, schema_registry
    )
    catalog = Catalog.load(file, environment=environment)
    result = cluster.plan(catalog, registry=registry)
    if as_json:
        emit_json(result.to_dict())
    else:
        _print_plan(result)
    sys.exit(result.exit_code)


# --------------------------------------------------------------------------- apply


def _print_applied(result: ApplyResult, *, pruned: bool = False) -> None:
    if result.plan.violations:
        console.print("[bold red]the contracts fail lint; nothing was changed:[/]")
        _print_violations(result.plan.violations)
    if result.results:
        colours = {"applied": "green", "refused": "red", "failed": "red", "skipped": "yellow"}
        table = _table("apply", "topic", "what", "outcome", "message")
        for item in result.results:
            table.add_row(
                Text(item.change.topic),
                Text(_what(item.change)),
                Text(item.outcome, style=colours[item.outcome]),
                Text(item.message),
            )
        console.print(table)
    if result.acl_results:
        colours = {"applied": "green", "failed": "red"}
        table = _table("ACLs", "principal", "operation", "resource", "action", "outcome")
        for done in result.acl_results:
            acl = done.acl
            table.add_row(
                Text(acl.principal),
                Text(acl.operation.upper()),
                Text(f"{acl.resource_type} {acl.resource_name} ({acl.pattern_type})"),
                Text(done.action),
                Text.assemble((done.outcome, colours[done.outcome]), f": {done.message}"),
            )
        console.print(table)
    if result.plan.acls is not None and result.plan.acls.unmanaged and not pruned:
        console.print(
            Text.assemble(
                ("unmanaged ACLs", "yellow"),
                f": {len(result.plan.acls.unmanaged)} left in place (apply --prune deletes them)",
            )
        )
    if result.schema_results:
        colours = {"applied": "green", "refused": "red", "failed": "red", "skipped": "yellow"}
        table = _table("schemas", "subject", "what", "outcome", "message")
        for registered in result.schema_results:
            table.add_row(
                Text(registered.change.subject),
                Text(registered.change.kind),
                Text(registered.outcome, style=colours[registered.outcome]),
                Text(registered.message),
            )
        console.print(table)
    _print_unlisted(result.plan)
    if result.plan.unmanaged:
        console.print(
            Text.assemble(("unmanaged", "yellow"), _UNMANAGED, ", ".join(result.plan.unmanaged))
        )
    outcomes = (
        [r.outcome for r in result.results]
        + [r.outcome for r in result.acl_results]
        + [r.outcome for r in result.schema_results]
    )
    applied = outcomes.count("applied")
    if result.ok:
        console.print(
            f"[bold green]ok:[/] {_count(applied, 'change')} applied, "
            f"{len(result.plan.in_sync)} already in sync"
        )
    else:
        console.print(
            f"[bold red]not ok:[/] {applied} of {_count(len(outcomes), 'change')} applied"
        )


@main.command()
@_contracts_file
@_cluster_options
@click.option(
    "--prune",
    is_flag=True,
    help="Also delete ACLs on managed resources that no contract implies.",
)
@clean_errors
def apply(
    *,
    file: str,
    environment: str | None,
    as_json: bool,
    bootstrap_servers: str | None,
    timeout: float,
    client_config: tuple[str, ...],
    config_file: str | None,
    schema_registry: str | None,
    prune: bool,
) -> None:
    """Make the cluster match FILE: create missing topics and ACLs, fix safe drift.

    Refuses unsafe changes (partition decrease, replication-factor change, cleanup-policy
    change on a live topic) and changes nothing while the contracts fail lint. Topics no
    contract owns are left alone; ACLs on managed resources that no contract implies are
    deleted only with --prune. With --schema-registry, sets each subject's compatibility
    to the contract's mode and registers the listed versions it lacks, oldest first;
    registered versions no contract lists are left alone. Exits 0 when everything was
    applied, else 1.
    """
    cluster, registry = _cluster(
        bootstrap_servers, timeout, client_config, config_file, schema_registry
    )
    catalog = Catalog.load(file, environment=environment)
    result = cluster.apply(catalog, prune=prune, registry=registry)
    if as_json:
        emit_json(result.to_dict())
    else:
        _print_applied(result, pruned=prune)
    sys.exit(result.exit_code)
