"""What every command shares: the group, the consoles, clean errors, JSON output."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import click
from rich.console import Console

from ..errors import GovernedKafkaError

F = TypeVar("F", bound=Callable[..., Any])

#: Width of output that is not a terminal (CI logs, files): tables stay on one line each.
_PIPE_WIDTH = 120


def _width() -> int | None:
    if sys.stdout.isatty():
        return None  # the terminal's own width
    return max(int(os.environ.get("COLUMNS", "0") or 0), _PIPE_WIDTH)


#: Human output.
console = Console(highlight=False, width=_width())
#: Problems and progress, so that stdout stays clean for --json.
err_console = Console(stderr=True, highlight=False, width=_width())


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="governed-kafka", prog_name="governed-kafka")
def main() -> None:
    """Governed Kafka: contracts as code, safe clients, measured profiles."""


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``message`` as an error (no traceback) and exit with ``code``."""
    err_console.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    sys.exit(code)


def clean_errors(fn: F) -> F:
    """Turn the library's errors into a one-line message and exit code 1, not a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except GovernedKafkaError as exc:
            fail(str(exc))

    return wrapper  # type: ignore[return-value]


def emit_json(data: object) -> None:
    """Write ``data`` to stdout as JSON."""
    click.echo(json.dumps(data, indent=2, default=str))
