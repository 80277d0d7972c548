"""``lint``, ``plan`` and ``apply``: contracts checked offline and held against a cluster.

Exit codes (DESIGN.md): ``lint`` 0 clean, 1 violations; ``plan`` 0 in sync, 2 changes
pending, 1 violations or errors; ``apply`` 0 ok, 1 refused or failed.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import attrs
import click
from rich.text import Text

from ..cluster import DEFAULT_TIMEOUT_S, Cluster
from ..contracts import Catalog
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
from ._print import count, print_applied, print_plan, print_violations, quiet_client_logs

F = TypeVar("F", bound=Callable[..., Any])


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
    quiet_client_logs()
    return Cluster(servers, overrides=kafka, timeout=timeout), registry


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
        print_violations(violations)
        warnings = len(violations) - len(errors)
        if errors:
            console.print(
                f"[bold red]{count(len(errors), 'error')}[/], {count(warnings, 'warning')} "
                f"in {count(len(catalog), 'topic')}"
            )
        else:
            console.print(
                Text.assemble(
                    ("clean:", "bold green"),
                    f" {count(len(catalog), 'topic')}, {count(warnings, 'warning')} ({where})",
                )
            )
    sys.exit(1 if errors else 0)


# --------------------------------------------------------------------------- plan


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
        print_plan(result)
    sys.exit(result.exit_code)


# --------------------------------------------------------------------------- apply


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
        print_applied(result, pruned=prune)
    sys.exit(result.exit_code)
