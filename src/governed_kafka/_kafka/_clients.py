"""Creating librdkafka's clients from governed configuration dicts.

A refused configuration becomes a :class:`~governed_kafka.errors.ConfigError` naming
the key, never showing a secret; librdkafka's log lines go to
:data:`LIBRDKAFKA_LOGGER`; its error, throttle and statistics callbacks hand plain
values to the callables the clients give.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

import confluent_kafka
from confluent_kafka import KafkaError, KafkaException

from .._config import REDACTED, is_secret, scrub
from ..errors import ConfigError
from ._errors import Failure, failure

#: librdkafka's own log lines go here, at their syslog level mapped to logging levels.
LIBRDKAFKA_LOGGER: Final = logging.getLogger("governed_kafka.librdkafka")

_log = logging.getLogger("governed_kafka")

_CONFIG_KEY: Final = re.compile(r'configuration property "([^"]+)"')

#: Errors of the connection that are worth a warning, not only an info line.
_CONNECTION_ERRORS: Final = frozenset({KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT})

C = TypeVar("C")

#: librdkafka's throttle callback, as plain values: broker name, broker id, seconds.
OnThrottle = Callable[[str, int, float], None]

#: librdkafka's statistics callback, its JSON parsed.
OnStats = Callable[[dict[str, Any]], None]


def client_versions() -> dict[str, str]:
    """Versions of the client libraries underneath, for logs and benchmark reports."""
    return {
        "confluent-kafka": importlib.metadata.version("confluent-kafka"),
        "librdkafka": confluent_kafka.libversion()[0],
    }


def construct(factory: Callable[[dict[str, Any]], C], config: Mapping[str, object]) -> C:
    """Create a client; librdkafka's refusal becomes a ConfigError without any secret in it."""
    try:
        return factory(dict(config))
    except KafkaException as exc:
        err = exc.args[0] if exc.args else None
        text = scrub(err.str() if isinstance(err, KafkaError) else str(exc), config)
        match = _CONFIG_KEY.search(text)
        key = match.group(1) if match else "?"
        msg = f"configuration refused by librdkafka: {text}"
        value = REDACTED if is_secret(key) else config.get(key)
        raise ConfigError(msg, key=key, value=value) from None
    except (TypeError, ValueError) as exc:
        msg = f"configuration refused by librdkafka: {scrub(str(exc), config)}"
        raise ConfigError(msg, key="?") from None


def with_callbacks(
    config: Mapping[str, object],
    role: str,
    *,
    on_fatal: Callable[[Failure], None] | None = None,
    on_throttle: OnThrottle | None = None,
    on_stats: OnStats | None = None,
) -> dict[str, object]:
    """``config`` with the logger and the error, throttle and statistics callbacks."""
    full: dict[str, object] = {
        **config,
        "logger": LIBRDKAFKA_LOGGER,
        "error_cb": _error_callback(role, on_fatal),
    }
    if on_throttle is not None:

        def throttle_cb(event: Any) -> None:
            on_throttle(event.broker_name, event.broker_id, event.throttle_time)

        full["throttle_cb"] = throttle_cb
    if on_stats is not None:

        def stats_cb(text: str) -> None:
            try:
                stats = json.loads(text)
            except ValueError:
                _log.warning("librdkafka statistics were not JSON; skipped")
                return
            on_stats(stats)

        full["stats_cb"] = stats_cb
    return full


def _error_callback(
    role: str, on_fatal: Callable[[Failure], None] | None
) -> Callable[[KafkaError], None]:
    def error_cb(err: KafkaError) -> None:
        if err.fatal():
            _log.error("%s fatal error: %s", role, err.str())
            if on_fatal is not None:
                on_fatal(failure(err))
        elif err.code() in _CONNECTION_ERRORS:
            _log.warning("%s: %s", role, err.str())
        else:
            _log.info("%s: %s", role, err.str())

    return error_cb
