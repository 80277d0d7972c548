"""How the results of ``lint``, ``plan`` and ``apply`` are printed: tables per topic.

Shared by those commands and by ``demo``, which walks through the same steps.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from rich import box
from rich.table import Table
from rich.text import Text

from .._kafka import LIBRDKAFKA_LOGGER
from ..acls import Acl
from ..cluster import ApplyResult, Plan, TopicChange
from ..lint import RULES
from ..policy import Violation
from ._common import console

T = TypeVar("T")

#: Width of the rule column: the longest rule id.
_RULE_WIDTH = max(len(rule) for rule in RULES)


def quiet_client_logs() -> None:
    """librdkafka's connection chatter stays out of the output; errors are reported once."""
    if not LIBRDKAFKA_LOGGER.handlers:
        LIBRDKAFKA_LOGGER.addHandler(logging.NullHandler())


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


def print_violations(violations: Sequence[Violation]) -> None:
    """Lint violations, one table per topic (catalog-wide ones under ``(catalog)``)."""
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


def count(n: int, noun: str) -> str:
    """``"1 topic"``, ``"2 topics"``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


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


def print_plan(plan: Plan) -> None:
    """What ``plan`` found: lint errors, topics to create, drift, ACLs, schema subjects,
    unmanaged topics, a summary."""
    if plan.violations:
        console.print("[bold red]the contracts fail lint:[/]")
        print_violations(plan.violations)
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
        + (f", {count(len(plan.violations), 'lint error')}" if plan.violations else "")
        + acls
        + schemas
    )


def print_applied(result: ApplyResult, *, pruned: bool = False) -> None:
    """What ``apply`` did, change by change, and whether all of it succeeded."""
    if result.plan.violations:
        console.print("[bold red]the contracts fail lint; nothing was changed:[/]")
        print_violations(result.plan.violations)
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
            f"[bold green]ok:[/] {count(applied, 'change')} applied, "
            f"{len(result.plan.in_sync)} already in sync"
        )
    else:
        console.print(f"[bold red]not ok:[/] {applied} of {count(len(outcomes), 'change')} applied")
