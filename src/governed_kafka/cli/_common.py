"""What every command shares: the group, the consoles, clean errors, JSON output, and the
connection settings of the commands that connect to a cluster.

Everything printed that comes from a file, the command line or the cluster is printed
as text, never read as Rich markup: a topic named ``evil[/]`` is shown as it is.

Connection settings (``plan``, ``apply``, ``lag``, ``bench``) come from three places,
later ones winning: a librdkafka/Java ``client.properties`` file (``--config-file``, or
``$GOVERNED_KAFKA_CONFIG_FILE``), environment variables ``GOVERNED_KAFKA_X_<KEY>`` (the
librdkafka key upper-cased, dots as underscores: ``GOVERNED_KAFKA_X_SASL_PASSWORD``),
and ``-X key=value`` arguments. Secrets belong in the first two: arguments are visible
to every user of the machine in ``ps``. ``bootstrap.servers`` may come from any of them
when ``--bootstrap-servers`` is not given.

Schema-registry settings (``plan`` and ``apply`` with ``--schema-registry``) come from
the same places, spelled as Confluent's Java clients spell them in a
``client.properties`` file: ``schema.registry.url``,
``schema.registry.basic.auth.user.info`` (or ``basic.auth.user.info``),
``schema.registry.ssl.ca.location`` and the other keys of :data:`REGISTRY_KEYS`. They
are handed to the registry client, never to librdkafka.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, NoReturn, TypeVar

import click
from rich.console import Console
from rich.text import Text

from .._librdkafka_keys import CONSUMER_KEYS, GLOBAL_KEYS, PRODUCER_KEYS
from .._text import NotUtf8, decode_utf8
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
    """Print ``message`` as an error (no traceback) and exit with ``code``.

    The message is printed as it is: it names files, topics and keys, never markup.
    """
    err_console.print(Text.assemble(("error:", "bold red"), " ", message), soft_wrap=True)
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


# --------------------------------------------------------------------------- connection settings

#: Names the client.properties file when ``--config-file`` is not given.
CONFIG_FILE_ENV: Final = "GOVERNED_KAFKA_CONFIG_FILE"

#: ``GOVERNED_KAFKA_X_SASL_PASSWORD=...`` sets ``sasl.password``.
SETTING_ENV_PREFIX: Final = "GOVERNED_KAFKA_X_"

#: Prefix of the schema-registry settings in a client.properties file.
REGISTRY_PREFIX: Final = "schema.registry."

#: Settings of confluent-kafka's schema-registry client, by their client.properties name.
REGISTRY_KEYS: Final = frozenset(
    {
        f"{REGISTRY_PREFIX}{key}"
        for key in (
            "url",
            "basic.auth.user.info",
            "basic.auth.credentials.source",
            "ssl.ca.location",
            "ssl.certificate.location",
            "ssl.key.location",
            "ssl.key.password",
            "timeout",
            "proxy",
        )
    }
    # The Java clients' unprefixed spellings of the registry's basic-auth settings.
    | {"basic.auth.user.info", "basic.auth.credentials.source"}
)

_KNOWN_KEYS: Final = GLOBAL_KEYS | PRODUCER_KEYS | CONSUMER_KEYS | REGISTRY_KEYS
_BY_ENV_NAME: Final = {key.upper().replace(".", "_"): key for key in _KNOWN_KEYS}


class SettingsError(click.ClickException):
    """Connection settings that cannot be read: one line, exit code 2 like a usage error."""

    exit_code = 2


def connection_options(fn: F) -> F:
    """``-X KEY=VALUE`` and ``--config-file FILE``, for every command that connects."""
    fn = click.option(
        "--config-file",
        "-F",
        "config_file",
        type=click.Path(dir_okay=True, path_type=str),
        envvar=CONFIG_FILE_ENV,
        show_envvar=True,
        metavar="FILE",
        help=(
            "librdkafka/Java client.properties file: key=value lines, # or ! comments "
            "(TLS, SASL, bootstrap.servers ...). Keep secrets here or in "
            f"{SETTING_ENV_PREFIX}<KEY> variables, not in -X."
        ),
    )(fn)
    return click.option(
        "-X",
        "client_config",
        multiple=True,
        metavar="KEY=VALUE",
        help=(
            "librdkafka setting, repeatable; wins over the file and over "
            f"{SETTING_ENV_PREFIX}<KEY> variables (e.g. {SETTING_ENV_PREFIX}SASL_PASSWORD)."
        ),
    )(fn)


def _properties(path: str) -> dict[str, str]:
    try:
        with open(path, "rb") as file:
            raw = file.read()
    except OSError as exc:
        raise SettingsError(f"config file {path}: cannot read it: {exc.strerror or exc}") from None
    try:
        text = decode_utf8(raw)
    except NotUtf8 as exc:
        msg = f"config file {path}, line {exc.line}: not UTF-8 (column {exc.column})"
        raise SettingsError(msg) from None
    settings: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped[0] in "#!":
            continue
        key, sep, value = stripped.partition("=")
        key = key.strip()
        where = f"config file {path}, line {number}"
        if not sep or not key:
            raise SettingsError(f"{where}: expected key=value (the line is not shown)")
        if key not in _KNOWN_KEYS:
            msg = f"{where}: {key!r} is not a librdkafka property (its value is not shown)"
            raise SettingsError(msg)
        settings[key] = value.strip()
    return settings


def _environment(environ: Mapping[str, str]) -> dict[str, str]:
    settings: dict[str, str] = {}
    for name, value in sorted(environ.items()):
        if not name.startswith(SETTING_ENV_PREFIX):
            continue
        key = _BY_ENV_NAME.get(name[len(SETTING_ENV_PREFIX) :])
        if key is None:
            msg = (
                f"environment variable {name}: no librdkafka property has that name "
                f"({SETTING_ENV_PREFIX} then the key upper-cased, dots as underscores)"
            )
            raise SettingsError(msg)
        settings[key] = value
    return settings


def _arguments(pairs: Sequence[str]) -> dict[str, str]:
    settings = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            msg = "expected KEY=VALUE (the argument is not shown)"
            raise click.BadParameter(msg, param_hint="-X")
        settings[key.strip()] = value
    return settings


def client_settings(
    *, config_file: str | None, pairs: Sequence[str], environ: Mapping[str, str]
) -> tuple[dict[str, str], str | None]:
    """The connection settings of a command, and ``bootstrap.servers`` if they give it.

    The file first, then ``GOVERNED_KAFKA_X_<KEY>`` variables, then ``-X`` pairs; what
    cannot be read raises :class:`SettingsError` naming the file and line (or the
    variable), never a value.
    """
    settings = _properties(config_file) if config_file else {}
    settings.update(_environment(environ))
    settings.update(_arguments(pairs))
    bootstrap = settings.pop("bootstrap.servers", None)
    alias = settings.pop("metadata.broker.list", None)
    return settings, bootstrap or alias


def cluster_settings(
    *,
    bootstrap_servers: str | None,
    config_file: str | None,
    pairs: Sequence[str],
    required: bool = True,
) -> tuple[str | None, dict[str, str]]:
    """``(bootstrap servers, other settings)`` of a command; the option wins over settings."""
    settings, from_settings = client_settings(
        config_file=config_file, pairs=pairs, environ=os.environ
    )
    servers = bootstrap_servers or from_settings
    if servers is None and required:
        msg = (
            "no cluster given: pass --bootstrap-servers, or set bootstrap.servers in "
            f"--config-file or {SETTING_ENV_PREFIX}BOOTSTRAP_SERVERS"
        )
        raise SettingsError(msg)
    return servers, settings


def split_registry_settings(settings: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """``(librdkafka settings, schema-registry client settings)`` of a command.

    Registry keys lose their ``schema.registry.`` prefix; ``basic.auth.credentials.source``
    is dropped, since the client reads ``basic.auth.user.info`` whenever it is given.
    """
    kafka: dict[str, str] = {}
    registry: dict[str, str] = {}
    for key, value in settings.items():
        if key not in REGISTRY_KEYS:
            kafka[key] = value
            continue
        name = key.removeprefix(REGISTRY_PREFIX)
        if name != "basic.auth.credentials.source":
            registry[name] = value
    return kafka, registry
