"""Governed librdkafka configuration: the one place where dotted keys are built and checked.

A client's configuration is laid down in this order, later layers winning:

1. connection basics the library owns (``bootstrap.servers``, ``client.id``);
2. the profile (producers) or consumer defaults;
3. the caller's ``overrides``, after :func:`check_overrides` refused anything that
   is unknown, belongs to the other kind of client, is owned by the library, or would
   weaken a governed setting;
4. the governed settings themselves, so nothing above can replace them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final, Literal, get_args

import attrs

from ._librdkafka_keys import (
    CALLBACK_KEYS,
    CONSUMER_KEYS,
    DEPRECATED_KEYS,
    GLOBAL_KEYS,
    PRODUCER_KEYS,
    SECRET_KEYS,
)
from .errors import ConfigError
from .profiles import Profile

__all__ = [
    "ACKS",
    "AUTO_OFFSET_RESET",
    "ENABLE_IDEMPOTENCE",
    "GROUP_PROTOCOL",
    "ISOLATION_LEVEL",
    "MAX_IN_FLIGHT",
    "MAX_TRANSACTION_TIMEOUT_MS",
    "MIN_TRANSACTION_TIMEOUT_MS",
    "PARTITIONER",
    "REDACTED",
    "TRANSACTION_TIMEOUT_MS",
    "GroupProtocol",
    "Overrides",
    "admin_config",
    "consumer_config",
    "is_secret",
    "producer_config",
    "redacted",
    "scrub",
]

Scalar = str | int | float | bool

#: ``oauth_cb``: a SASL/OAUTHBEARER token provider (the AWS MSK IAM signer, an OIDC
#: client ...). librdkafka calls it with ``sasl.oauthbearer.config`` and it returns
#: ``(token, expiry in seconds since the epoch)``, optionally with a principal and
#: SASL extensions; the one callable an override may be.
OAuthTokenProvider = Callable[..., Any]

#: One configuration value: a scalar, or the ``oauth_cb`` token provider.
Setting = Scalar | OAuthTokenProvider
Overrides = Mapping[str, Setting]

#: The override that may be a callable, and why it is not a hook.
OAUTH_CALLBACK: Final = "oauth_cb"

#: ``enable.idempotence=true``: the broker de-duplicates a batch the producer retried
#: after a lost response, and keeps per-partition order across retries.
ENABLE_IDEMPOTENCE: Final = True

#: ``acks=all``: a record is acknowledged only when every in-sync replica has it, so the
#: loss of the leader right after an acknowledgement loses nothing.
ACKS: Final = "all"

#: ``max.in.flight.requests.per.connection=5``: the most the idempotent producer can keep
#: in flight per connection while still guaranteeing order.
MAX_IN_FLIGHT: Final = 5

#: ``partitioner=murmur2_random``: the same key lands on the same partition as with the
#: Java client (murmur2), so services in any language agree on keyed order; keyless
#: records are spread at random.
PARTITIONER: Final = "murmur2_random"

#: ``isolation.level=read_committed``: consumers never see records of aborted transactions.
ISOLATION_LEVEL: Final = "read_committed"

#: ``auto.offset.reset=earliest``: a new group starts at the oldest retained record, so
#: nothing written before its first poll is skipped without anyone deciding to skip it.
AUTO_OFFSET_RESET: Final = "earliest"

#: ``partition.assignment.strategy=cooperative-sticky``: rebalances move only the
#: partitions that must move instead of stopping the whole group.
ASSIGNMENT_STRATEGY: Final = "cooperative-sticky"

#: How a consumer takes part in its group: ``classic`` (JoinGroup/SyncGroup, the client
#: assigns partitions) or ``consumer`` (KIP-848, Kafka 4.0+: the broker assigns them and
#: hands them over incrementally).
GroupProtocol = Literal["classic", "consumer"]

#: ``group.protocol=classic``: the protocol every Kafka version and every other broker
#: speaks. The consumer protocol is opt-in until measured better on the clusters served.
GROUP_PROTOCOL: Final[GroupProtocol] = "classic"

#: Keys the consumer group protocol moves to the broker or replaces, and why a consumer
#: of that protocol refuses them.
_CLASSIC_ONLY: Final[Mapping[str, str]] = {
    "partition.assignment.strategy": (
        "the broker assigns partitions (choose its assignor with group.remote.assignor)"
    ),
    "session.timeout.ms": ("the session timeout is the broker's group.consumer.session.timeout.ms"),
    "heartbeat.interval.ms": (
        "the heartbeat interval is the broker's group.consumer.heartbeat.interval.ms"
    ),
    "group.protocol.type": "the protocol has no protocol type",
}

_INT32_MAX = 2_147_483_647

#: ``transaction.timeout.ms=60000``: how long the transaction coordinator lets a
#: transaction stay open before it aborts it (librdkafka's and the Java client's
#: default). It bounds how long a crashed producer's open transaction holds back
#: ``read_committed`` readers when no successor with the same transactional id fences it.
TRANSACTION_TIMEOUT_MS: Final = 60_000

#: The shortest ``transaction.timeout.ms`` a transactional producer may set: below a
#: second, an ordinary batch and its commit cannot fit in one transaction.
MIN_TRANSACTION_TIMEOUT_MS: Final = 1_000

#: The longest ``transaction.timeout.ms`` a transactional producer may set: the
#: brokers' default ``transaction.max.timeout.ms`` (15 minutes), above which they refuse
#: ``init_transactions`` with INVALID_TRANSACTION_TIMEOUT.
MAX_TRANSACTION_TIMEOUT_MS: Final = 900_000

#: Keys librdkafka requires to stay within the transaction timeout when set explicitly,
#: and the margin each needs below it.
_WITHIN_TRANSACTION_TIMEOUT: Final[Mapping[str, int]] = {
    "delivery.timeout.ms": 0,
    "message.timeout.ms": 0,
    "socket.timeout.ms": 100,
}

#: What a secret's value is shown as, wherever a configuration is shown (librdkafka's word).
REDACTED: Final = "[redacted]"

_SECRET_WORDS: Final = ("password", "secret", "passphrase")


def is_secret(key: str) -> bool:
    """Whether the value of configuration key ``key`` is a secret, never to be shown.

    The one list (:data:`~governed_kafka._librdkafka_keys.SECRET_KEYS`), and any key
    whose name says password, secret or passphrase.
    """
    if key in SECRET_KEYS:
        return True
    lowered = key.lower()
    return any(word in lowered for word in _SECRET_WORDS)


def redacted(config: Mapping[str, object]) -> dict[str, Any]:
    """``config`` with every secret's value replaced by :data:`REDACTED`, and the token
    provider (``oauth_cb``) by ``"[callable]"``."""
    return {
        k: REDACTED if is_secret(k) else "[callable]" if callable(v) else v
        for k, v in config.items()
    }


def scrub(text: str, config: Mapping[str, object]) -> str:
    """``text`` with the value of every secret of ``config`` replaced by :data:`REDACTED`."""
    for key, value in config.items():
        if is_secret(key) and isinstance(value, str) and value:
            text = text.replace(value, REDACTED)
    return text


def _shown(key: str, value: object) -> object:
    """``value`` as an error may carry it: a secret's is never carried."""
    return REDACTED if is_secret(key) else value


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip().lower()


def _is_int_between(low: int, high: int) -> Callable[[str], bool]:
    def accepts(text: str) -> bool:
        try:
            return low <= int(text) <= high
        except ValueError:
            return False

    return accepts


@attrs.frozen
class _Rule:
    """A governed key: the values it may take and why."""

    keys: tuple[str, ...]
    requirement: str
    reason: str
    accepts: Callable[[str], bool]


_PRODUCER_RULES: tuple[_Rule, ...] = (
    _Rule(
        ("enable.idempotence",),
        "must be true",
        "without idempotence a retried batch can be written twice or out of order",
        lambda v: v == "true",
    ),
    _Rule(
        ("acks", "request.required.acks"),
        "must be 'all' (-1)",
        "weaker acks acknowledge records that the loss of one broker can erase",
        lambda v: v in {"all", "-1"},
    ),
    _Rule(
        ("max.in.flight.requests.per.connection", "max.in.flight"),
        f"must be between 1 and {MAX_IN_FLIGHT}",
        f"the idempotent producer keeps order only with at most {MAX_IN_FLIGHT} requests in flight",
        _is_int_between(1, MAX_IN_FLIGHT),
    ),
    _Rule(
        ("partitioner",),
        f"must be {PARTITIONER!r}",
        "other partitioners put the same key on a different partition than the Java client",
        lambda v: v == PARTITIONER,
    ),
    _Rule(
        ("retries", "message.send.max.retries"),
        f"must stay unbounded ({_INT32_MAX})",
        "retries are bounded by delivery.timeout.ms instead; set that to limit delivery time",
        lambda v: v == str(_INT32_MAX),
    ),
)

_CONSUMER_RULES: tuple[_Rule, ...] = (
    _Rule(
        ("enable.auto.commit",),
        "must be false",
        "auto-commit commits records that were fetched, not processed, and loses them on a crash",
        lambda v: v == "false",
    ),
    _Rule(
        ("enable.auto.offset.store",),
        "must be false",
        "offsets are stored only for processed records, by the consumer's offset tracker",
        lambda v: v == "false",
    ),
    _Rule(
        ("isolation.level",),
        f"must be {ISOLATION_LEVEL!r}",
        "read_uncommitted exposes records of transactions that are later aborted",
        lambda v: v == ISOLATION_LEVEL,
    ),
)

#: Keys the library sets itself, and what to use instead.
_OWNED: dict[str, str] = {
    "bootstrap.servers": "pass bootstrap_servers= to the constructor",
    "metadata.broker.list": "pass bootstrap_servers= to the constructor",
    "group.id": "pass group_id= to the constructor",
    "group.protocol": "pass group_protocol= to the constructor",
    "transactional.id": (
        "pass transactional_id= to the producer's constructor, which initializes the "
        "transactions and checks the id against the service's contract"
    ),
    "enable.partition.eof": "the consumer manages end-of-partition events itself",
    "on_delivery": "use the DeliveryFuture returned by send(), or a hook",
    "dr_cb": "use the DeliveryFuture returned by send(), or a hook",
    "dr_msg_cb": "use the DeliveryFuture returned by send(), or a hook",
    "on_commit": "use a hook (governed_kafka.hooks)",
    "error_cb": "use a hook (governed_kafka.hooks)",
    "throttle_cb": "use a hook (governed_kafka.hooks)",
    "stats_cb": "use a hook (governed_kafka.hooks)",
    "logger": "librdkafka logs go to the 'governed_kafka.librdkafka' logger",
    "log_cb": "librdkafka logs go to the 'governed_kafka.librdkafka' logger",
    "default.topic.config": "set topic-level properties at the top level, where they are checked",
}


def _scope_refusal(
    key: str, *, scope: str, own_keys: frozenset[str], other_keys: frozenset[str]
) -> str | None:
    """Why ``key`` is not a property of this kind of client, or ``None`` when it is."""
    if key in own_keys:
        return None
    if key in other_keys:
        other = {"producer": "consumer", "consumer": "producer"}.get(scope, "producer or consumer")
        article = "an" if scope[0] in "aeiou" else "a"
        return (
            f"override {key!r} is refused: it is a {other} property, ignored by {article} {scope}"
        )
    return f"override {key!r} is refused: not a librdkafka {scope} property"


def _refusal(
    key: str,
    value: object,
    *,
    scope: str,
    own_keys: frozenset[str],
    other_keys: frozenset[str],
    rules: tuple[_Rule, ...],
) -> str | None:
    """Why override ``key`` is refused, or ``None`` when it is accepted."""
    shown = _shown(key, value)
    refusal: str | None = None
    if key in _OWNED:
        refusal = f"override {key!r} is refused: the library sets it ({_OWNED[key]})"
    elif any(key in rule.keys and not rule.accepts(_text(value)) for rule in rules):
        rule = next(r for r in rules if key in r.keys)
        refusal = f"override {key}={shown!r} is refused: {key} {rule.requirement}; {rule.reason}"
    elif key == OAUTH_CALLBACK:
        if not callable(value):
            refusal = (
                f"override {key!r} is refused: it must be a callable token provider, "
                f"not {type(value).__name__}"
            )
    elif key in CALLBACK_KEYS:
        refusal = f"override {key!r} is refused: callbacks are set through hooks"
    elif key in DEPRECATED_KEYS:
        refusal = f"override {key!r} is refused: librdkafka deprecated it and ignores it"
    else:
        refusal = _scope_refusal(key, scope=scope, own_keys=own_keys, other_keys=other_keys)
        if refusal is None and not isinstance(value, (bool, int, float, str)):
            refusal = (
                f"override {key!r} is refused: values are str, int, float or bool, "
                f"not {type(value).__name__}"
            )
    return refusal


def _check(
    overrides: Overrides | None,
    *,
    scope: str,
    own_keys: frozenset[str],
    other_keys: frozenset[str],
    rules: tuple[_Rule, ...],
) -> dict[str, Setting]:
    checked: dict[str, Setting] = {}
    items: Mapping[Any, Any] = overrides or {}
    for key, value in items.items():
        if not isinstance(key, str):
            msg = f"configuration keys are strings, got {type(key).__name__}"
            raise ConfigError(msg, key=str(key))
        refused = _refusal(
            key, value, scope=scope, own_keys=own_keys, other_keys=other_keys, rules=rules
        )
        if refused is not None:
            raise ConfigError(refused, key=key, value=_shown(key, value))
        checked[key] = value
    return checked


_PRODUCER_SCOPE = GLOBAL_KEYS | PRODUCER_KEYS
_CONSUMER_SCOPE = GLOBAL_KEYS | CONSUMER_KEYS


def check_producer_overrides(overrides: Overrides | None) -> dict[str, Setting]:
    """Return ``overrides`` if a producer may take them, else raise :class:`ConfigError`."""
    return _check(
        overrides,
        scope="producer",
        own_keys=_PRODUCER_SCOPE,
        other_keys=CONSUMER_KEYS - _PRODUCER_SCOPE,
        rules=_PRODUCER_RULES,
    )


def check_consumer_overrides(overrides: Overrides | None) -> dict[str, Setting]:
    """Return ``overrides`` if a consumer may take them, else raise :class:`ConfigError`."""
    return _check(
        overrides,
        scope="consumer",
        own_keys=_CONSUMER_SCOPE,
        other_keys=PRODUCER_KEYS - _CONSUMER_SCOPE,
        rules=_CONSUMER_RULES,
    )


def check_admin_overrides(overrides: Overrides | None) -> dict[str, Setting]:
    """Return ``overrides`` if an admin client may take them, else raise :class:`ConfigError`.

    An admin client takes the global properties only: connection, security, logging.
    """
    return _check(
        overrides,
        scope="admin client",
        own_keys=GLOBAL_KEYS,
        other_keys=(PRODUCER_KEYS | CONSUMER_KEYS) - GLOBAL_KEYS,
        rules=(),
    )


def shared_connection(config: Mapping[str, Setting]) -> dict[str, Setting]:
    """The part of a producer's or consumer's configuration an admin client can reuse.

    Connection, security (the ``oauth_cb`` token provider too) and logging settings
    carry over; batching, commit and delivery settings do not.
    """
    return {k: v for k, v in config.items() if k in GLOBAL_KEYS or k == OAUTH_CALLBACK}


def bootstrap(servers: str | list[str] | tuple[str, ...]) -> str:
    """Return ``servers`` as librdkafka's comma-separated ``bootstrap.servers``."""
    items = [servers] if isinstance(servers, str) else list(servers)
    joined = ",".join(s.strip() for s in items if isinstance(s, str) and s.strip())
    if not joined:
        msg = f"bootstrap_servers must name at least one host:port, got {servers!r}"
        raise ConfigError(msg, key="bootstrap.servers", value=servers)
    return joined


#: What the producer always runs with, whatever the profile and overrides say.
GOVERNED_PRODUCER: Final[Mapping[str, Scalar]] = {
    "enable.idempotence": ENABLE_IDEMPOTENCE,
    "acks": ACKS,
    "max.in.flight.requests.per.connection": MAX_IN_FLIGHT,
    "partitioner": PARTITIONER,
}

#: What the consumer always runs with, whatever the overrides say.
GOVERNED_CONSUMER: Final[Mapping[str, Scalar]] = {
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "isolation.level": ISOLATION_LEVEL,
    "enable.partition.eof": False,
}


def _check_transaction_timeout(
    checked: Mapping[str, Setting], transactional_id: str | None
) -> int | None:
    """The ``transaction.timeout.ms`` the overrides set, checked; ``None`` when unset.

    It is accepted only from a transactional producer, between
    :data:`MIN_TRANSACTION_TIMEOUT_MS` and :data:`MAX_TRANSACTION_TIMEOUT_MS`, and with
    the delivery and socket timeouts set explicitly within it (librdkafka's rule).
    """
    key = "transaction.timeout.ms"
    if key not in checked:
        return None
    value = checked[key]
    if transactional_id is None:
        msg = (
            f"override {key}={value!r} is refused: it applies to transactional producers "
            "only; pass transactional_id= to run transactions"
        )
        raise ConfigError(msg, key=key, value=value)
    text = _text(value)
    if not _is_int_between(MIN_TRANSACTION_TIMEOUT_MS, MAX_TRANSACTION_TIMEOUT_MS)(text):
        msg = (
            f"override {key}={value!r} is refused: {key} must be between "
            f"{MIN_TRANSACTION_TIMEOUT_MS} and {MAX_TRANSACTION_TIMEOUT_MS} (the brokers' "
            "default transaction.max.timeout.ms); shorter transactions cannot hold a batch "
            "and its commit, longer ones are refused by the brokers"
        )
        raise ConfigError(msg, key=key, value=value)
    return int(text)


def _check_within_transaction_timeout(config: Mapping[str, Setting], timeout_ms: int) -> None:
    for key, margin in _WITHIN_TRANSACTION_TIMEOUT.items():
        if key not in config:
            continue
        value = config[key]
        try:
            within = int(_text(value)) <= timeout_ms - margin
        except ValueError:
            continue  # librdkafka names the malformed value itself
        if not within:
            below = f"at least {margin} ms below" if margin else "at most"
            msg = (
                f"override {key}={value!r} is refused: a transactional producer needs it "
                f"{below} transaction.timeout.ms ({timeout_ms}), or a record could outlive "
                "the transaction that holds it"
            )
            raise ConfigError(msg, key=key, value=value)


def producer_config(
    *,
    bootstrap_servers: str | list[str] | tuple[str, ...],
    client_id: str,
    profile: Profile,
    overrides: Overrides | None,
    transactional_id: str | None = None,
) -> dict[str, Setting]:
    """Build a governed producer's librdkafka configuration.

    With ``transactional_id`` the producer is transactional: ``transactional.id`` is
    set from it and ``transaction.timeout.ms`` is governed (default
    :data:`TRANSACTION_TIMEOUT_MS`, an override checked against its bounds).
    """
    config: dict[str, Setting] = {
        "bootstrap.servers": bootstrap(bootstrap_servers),
        "client.id": client_id,
    }
    config.update(profile.to_librdkafka())
    checked = check_producer_overrides(overrides)
    timeout_ms = _check_transaction_timeout(checked, transactional_id)
    config.update(checked)
    if transactional_id is not None:
        timeout_ms = TRANSACTION_TIMEOUT_MS if timeout_ms is None else timeout_ms
        _check_within_transaction_timeout(checked, timeout_ms)
        config["transactional.id"] = transactional_id
        config["transaction.timeout.ms"] = timeout_ms
    config.update(GOVERNED_PRODUCER)
    return config


def admin_config(
    *,
    bootstrap_servers: str | list[str] | tuple[str, ...],
    client_id: str,
    overrides: Overrides | None,
) -> dict[str, Setting]:
    """Build an admin client's librdkafka configuration."""
    config: dict[str, Setting] = {
        "bootstrap.servers": bootstrap(bootstrap_servers),
        "client.id": client_id,
    }
    config.update(check_admin_overrides(overrides))
    return config


def _check_group_protocol(group_protocol: object, overrides: Mapping[str, Setting]) -> None:
    if group_protocol not in get_args(GroupProtocol):
        msg = (
            f"group_protocol must be one of {', '.join(map(repr, get_args(GroupProtocol)))}, "
            f"got {group_protocol!r}"
        )
        raise ConfigError(msg, key="group.protocol", value=group_protocol)
    if group_protocol == "consumer":
        for key, why in _CLASSIC_ONLY.items():
            if key in overrides:
                msg = f"override {key!r} is refused with group_protocol='consumer' (KIP-848): {why}"
                raise ConfigError(msg, key=key, value=overrides[key])
    elif "group.remote.assignor" in overrides:
        msg = (
            "override 'group.remote.assignor' is refused with group_protocol='classic': "
            "only the consumer group protocol (group_protocol='consumer') assigns on the broker"
        )
        raise ConfigError(
            msg, key="group.remote.assignor", value=overrides["group.remote.assignor"]
        )


def consumer_config(
    *,
    bootstrap_servers: str | list[str] | tuple[str, ...],
    client_id: str,
    group_id: str,
    overrides: Overrides | None,
    profile: Profile | None = None,
    group_protocol: GroupProtocol = GROUP_PROTOCOL,
    client_rack: str | None = None,
) -> dict[str, Setting]:
    """Build a governed consumer's librdkafka configuration.

    With ``group_protocol="consumer"`` (KIP-848) the keys the broker owns under that
    protocol are neither set nor accepted; ``client_rack`` sets ``client.rack``, so a
    cluster with a rack-aware replica selector serves fetches from a replica in the
    consumer's rack.
    """
    checked = check_consumer_overrides(overrides)
    _check_group_protocol(group_protocol, checked)
    if client_rack is not None and (not isinstance(client_rack, str) or not client_rack.strip()):
        msg = f"client_rack must be a non-empty rack name or None, got {client_rack!r}"
        raise ConfigError(msg, key="client.rack", value=client_rack)
    config: dict[str, Setting] = {
        "bootstrap.servers": bootstrap(bootstrap_servers),
        "client.id": client_id,
        "group.id": group_id,
        "auto.offset.reset": AUTO_OFFSET_RESET,
        "group.protocol": group_protocol,
    }
    if group_protocol == "classic":
        config["partition.assignment.strategy"] = ASSIGNMENT_STRATEGY
    if client_rack is not None:
        if "client.rack" in checked:
            msg = "pass the rack once: client_rack= or the client.rack override, not both"
            raise ConfigError(msg, key="client.rack", value=checked["client.rack"])
        config["client.rack"] = client_rack
    if profile is not None:
        config.update(profile.to_librdkafka("consumer"))
    config.update(checked)
    config.update(GOVERNED_CONSUMER)
    return config
