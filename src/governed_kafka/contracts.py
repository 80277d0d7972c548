"""Topic contracts as code: ``governance.toml`` loaded into a :class:`Catalog`.

One file drives CI lint, ``plan``/``apply`` against a cluster, and the runtime gate of
every producer and consumer. The format is documented in ``docs/governance.md``.

Loading is strict: an unknown key, a value of the wrong type, a topic name Kafka would
refuse, a topic declared twice, a schema path outside the file's folder, or an
environment that the file does not declare raises
:class:`~governed_kafka.errors.ContractError` naming the file, the topic and the key.
Loading checks structure only; whether a well-formed contract obeys the policy is
:meth:`Catalog.lint`'s question.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final, Literal

import attrs

from ._durations import duration_ms
from ._text import NotUtf8, decode_utf8
from .errors import ContractError, ContractProblem, GovernanceViolation
from .lint import lint as _lint
from .policy import (
    CLEANUP_POLICIES,
    COMPATIBILITY_MODES,
    SERVICE_PLACEHOLDER,
    Compatibility,
    Policy,
    Violation,
    pattern_problem,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = [
    "CLEANUP_POLICIES",
    "KEY_RULES",
    "LOCAL_ENVIRONMENT",
    "MAX_TOPIC_NAME_LENGTH",
    "ORDERINGS",
    "SUBJECT_STRATEGIES",
    "Catalog",
    "KeyRule",
    "Ordering",
    "ServiceContract",
    "SubjectStrategy",
    "TopicContract",
]

KeyRule = Literal["required", "optional", "forbidden"]

#: ``"key"``: no record of a key overtakes an earlier one of the same key that waits in a
#: retry topic or the dead-letter topic; ``"none"``: a failed record leaves its place.
Ordering = Literal["none", "key"]

#: Allowed values of a contract's ``ordering``.
ORDERINGS: tuple[Ordering, ...] = ("none", "key")

#: Allowed values of a contract's ``key``.
KEY_RULES: tuple[KeyRule, ...] = ("required", "optional", "forbidden")

SubjectStrategy = Literal["topic", "record", "topic_record"]

#: Allowed values of a contract's ``subject_strategy``: how registry subjects are named
#: (``<topic>-value``; the record's name; ``<topic>-<record>``).
SUBJECT_STRATEGIES: tuple[SubjectStrategy, ...] = ("topic", "record", "topic_record")

#: The environment whose clients skip the live-topic check unless the policy asks for it.
LOCAL_ENVIRONMENT = "local"

#: Longest topic name Kafka accepts.
MAX_TOPIC_NAME_LENGTH: Final = 249

#: The characters Kafka allows in a topic name.
_TOPIC_NAME: Final = re.compile(r"[a-zA-Z0-9._-]+")


@attrs.frozen(kw_only=True)
class TopicContract:
    """What a topic is, who may use it, and what it carries.

    Paths are absolute (resolved against the contracts file). ``value_schema`` lists
    the schema versions oldest first; the last one is current.
    """

    name: str
    owner: str | None = None
    tenant: str | None = None
    description: str | None = None
    partitions: int
    replication_factor: int
    min_insync_replicas: int | None = None
    cleanup_policy: str = "delete"
    retention_ms: int | None = None
    retention_bytes: int | None = None
    key: KeyRule = "optional"
    key_schema: Path | None = None
    value_schema: tuple[Path, ...] = ()
    compatibility: Compatibility | None = None
    event_types: tuple[str, ...] = ()
    producers: tuple[str, ...] = ()
    consumers: tuple[str, ...] = ()
    dead_letter_topic: str | None = None
    #: Retry topics (tiers), in the order a failing record passes through them.
    retry_topics: tuple[str, ...] = ()
    #: How long a record waits in each retry topic before it is handled again, in ms.
    retry_delays_ms: tuple[int, ...] = ()
    ordering: Ordering = "none"
    timestamp_field: str | None = None
    #: Further Kafka topic configs the contract pins (``max.message.bytes`` ...).
    configs: tuple[tuple[str, str], ...] = ()
    #: How the topic's registry subjects are named (:mod:`governed_kafka.schemas`).
    subject_strategy: SubjectStrategy = "topic"
    #: The folder Protobuf imports are resolved in and confined to: the contracts
    #: file's folder (``None`` for a contract built in code: each file's own folder).
    schema_root: Path | None = attrs.field(default=None, eq=False)
    #: Whether every write to the topic must be transactional (its producers declare
    #: ``transactional_ids``; a producer without ``transactional_id`` is refused).
    exactly_once: bool = False

    @property
    def is_compacted(self) -> bool:
        """Whether the log is compacted (records with the same key replace each other)."""
        return "compact" in self.cleanup_policy.split(",")

    @property
    def retry_tiers(self) -> tuple[tuple[str, int], ...]:
        """``(retry topic, delay in ms)`` of each tier, first tier first."""
        return tuple(zip(self.retry_topics, self.retry_delays_ms, strict=False))

    @property
    def current_value_schema(self) -> Path | None:
        """The schema producers write with: the last listed version."""
        return self.value_schema[-1] if self.value_schema else None

    def topic_configs(self) -> dict[str, str]:
        """Kafka topic configs this contract sets, as the broker names and spells them."""
        configs = {"cleanup.policy": self.cleanup_policy}
        if self.retention_ms is not None:
            configs["retention.ms"] = str(self.retention_ms)
        if self.retention_bytes is not None:
            configs["retention.bytes"] = str(self.retention_bytes)
        if self.min_insync_replicas is not None:
            configs["min.insync.replicas"] = str(self.min_insync_replicas)
        configs.update(self.configs)
        return configs


@attrs.frozen(kw_only=True)
class ServiceContract:
    """Who a service is on the cluster, from a ``[services.NAME]`` table.

    ``group_ids`` and ``transactional_ids`` are names, or prefixes written with a
    trailing ``*`` (``"billing-*"``): they become LITERAL and PREFIXED ACLs.
    """

    name: str
    #: The principal the service authenticates as, ``Type:name`` (``User:checkout``).
    principal: str
    #: The consumer groups it may use; empty means what ``group_id_pattern`` allows.
    group_ids: tuple[str, ...] = ()
    #: The transactional ids its producers may use.
    transactional_ids: tuple[str, ...] = ()
    #: Produce and fetch quotas in bytes per second (applied with Kafka's own tooling).
    producer_byte_rate: int | None = None
    consumer_byte_rate: int | None = None

    def allows_transactional_id(self, transactional_id: str) -> bool:
        """Whether ``transactional_id`` is one of :attr:`transactional_ids` (a name, or
        under a prefix written with a trailing ``*``)."""
        return any(
            transactional_id.startswith(name[:-1])
            if name.endswith("*")
            else transactional_id == name
            for name in self.transactional_ids
        )

    @property
    def user(self) -> str | None:
        """The user name of a ``User:`` principal, else ``None``."""
        kind, _, name = self.principal.partition(":")
        return name if kind == "User" else None


@attrs.frozen(kw_only=True)
class Catalog:
    """Every topic contract of one ``governance.toml``, for one environment."""

    #: The contracts file, absolute.
    path: Path
    #: The environment whose overrides were applied, or ``None`` for the base values.
    environment: str | None
    policy: Policy
    #: Every contract, in file order. Loading refuses a name declared twice; a catalog
    #: built directly may hold duplicates, which lint reports.
    topics: tuple[TopicContract, ...]
    #: Environments the file declares.
    environments: frozenset[str] = frozenset()
    #: The ``[services]`` tables, in file order.
    services: tuple[ServiceContract, ...] = ()
    _by_name: Mapping[str, TopicContract] = attrs.field(
        init=False, repr=False, eq=False, factory=dict
    )
    _services: Mapping[str, ServiceContract] = attrs.field(
        init=False, repr=False, eq=False, factory=dict
    )

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {t.name: t for t in self.topics})
        object.__setattr__(self, "_services", {s.name: s for s in self.services})

    def service(self, name: str) -> ServiceContract | None:
        """The ``[services.NAME]`` contract of ``name``, or ``None`` when it has none."""
        return self._services.get(name)

    @classmethod
    def load(cls, path: str | Path, environment: str | None = None) -> Catalog:
        """Load and check a contracts file, applying ``environment``'s overrides."""
        source = Path(path).expanduser().resolve()
        try:
            text = decode_utf8(source.read_bytes())
        except FileNotFoundError:
            msg = f"{source}: contracts file not found"
            raise ContractError(msg, path=str(source)) from None
        except OSError as exc:
            msg = f"{source}: cannot read contracts file: {exc.strerror or exc}"
            raise ContractError(msg, path=str(source)) from exc
        except NotUtf8 as exc:
            msg = f"{source}: {exc}; a contracts file is UTF-8 text"
            raise ContractError(msg, path=str(source)) from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            msg = f"{source}: not valid TOML: {exc}"
            raise ContractError(msg, path=str(source)) from exc
        except RecursionError:
            msg = f"{source}: not valid TOML here: arrays or tables nested too deeply to read"
            raise ContractError(msg, path=str(source)) from None
        return cls.from_dict(data, path=source, environment=environment)

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        *,
        path: str | Path = "<memory>",
        environment: str | None = None,
    ) -> Catalog:
        """Build a catalog from parsed TOML data; relative paths resolve against ``path``."""
        return _Loader(Path(path), environment).load(data)

    def topic(self, name: str) -> TopicContract:
        """Return the contract of ``name``; a topic without one is refused."""
        try:
            return self._by_name[name]
        except KeyError:
            msg = f"topic {name!r} has no contract in {self.path}"
            raise GovernanceViolation(
                msg, rule="contract.missing", topic=name, field="name", value=name
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[TopicContract]:
        return iter(self.topics)

    def __len__(self) -> int:
        return len(self.topics)

    def lint(self) -> list[Violation]:
        """Check every contract against the policy, offline; return what breaks a rule.

        The rules, with their stable ids, are listed in :mod:`governed_kafka.lint` and in
        ``docs/governance.md``. An empty list means the catalog is clean.
        """
        return _lint(self)

    @property
    def verify_topics(self) -> bool:
        """Whether clients on this catalog check their live topics at construction by default.

        The policy's ``verify_topics`` when it sets one; otherwise on, except for the
        environment named ``local`` (:data:`LOCAL_ENVIRONMENT`).
        """
        if self.policy.verify_topics is not None:
            return self.policy.verify_topics
        return self.environment != LOCAL_ENVIRONMENT

    def produced_by(self, service: str) -> tuple[TopicContract, ...]:
        """Contracts that list ``service`` among their producers."""
        return tuple(t for t in self._by_name.values() if service in t.producers)

    def consumed_by(self, service: str) -> tuple[TopicContract, ...]:
        """Contracts that list ``service`` among their consumers."""
        return tuple(t for t in self._by_name.values() if service in t.consumers)


# --------------------------------------------------------------------------- loading


class _Bad(Exception):
    """A value of the wrong shape; the loader adds file, topic and key."""


def _int(minimum: int) -> Callable[[object], int]:
    def convert(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            msg = f"expected an integer >= {minimum}, got {value!r}"
            raise _Bad(msg)
        if value < minimum:
            msg = f"must be >= {minimum}, got {value}"
            raise _Bad(msg)
        return value

    return convert


def _str(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        msg = f"expected a non-empty string, got {value!r}"
        raise _Bad(msg)
    return value


def _bool(value: object) -> bool:
    if not isinstance(value, bool):
        msg = f"expected true or false, got {value!r}"
        raise _Bad(msg)
    return value


def _choice(*choices: str) -> Callable[[object], str]:
    def convert(value: object) -> str:
        if value not in choices:
            msg = f"expected one of {', '.join(map(repr, choices))}, got {value!r}"
            raise _Bad(msg)
        return str(value)

    return convert


def _str_list(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        msg = f"expected a list of strings, got {value!r}"
        raise _Bad(msg)
    items = tuple(_str(v) for v in value)
    duplicates = sorted(v for v, n in Counter(items).items() if n > 1)
    if duplicates:
        msg = f"lists {', '.join(map(repr, duplicates))} more than once"
        raise _Bad(msg)
    return items


def _topic_name_problem(name: str) -> str | None:
    """Why Kafka would refuse ``name`` as a topic name, or ``None`` when it would not."""
    if len(name) > MAX_TOPIC_NAME_LENGTH:
        return f"is {len(name)} characters long; Kafka allows at most {MAX_TOPIC_NAME_LENGTH}"
    if name in {".", ".."}:
        return f"{name!r} is not a topic name Kafka allows"
    if _TOPIC_NAME.fullmatch(name) is None:
        return (
            f"{name!r} has characters Kafka does not allow in a topic name (only a-z A-Z 0-9 . _ -)"
        )
    return None


def _topic_name(value: object) -> str:
    name = _str(value)
    problem = _topic_name_problem(name)
    if problem is not None:
        raise _Bad(problem)
    return name


def _regex(value: object) -> str:
    pattern = _str(value)
    problem = pattern_problem(pattern)
    if problem is not None:
        raise _Bad(problem)
    return pattern


def _group_id_pattern(value: object) -> str:
    pattern = _str(value)
    problem = pattern_problem(pattern.replace(SERVICE_PLACEHOLDER, "service"))
    if problem is not None:
        raise _Bad(problem)
    return pattern


def _cleanup_policy(value: object) -> str:
    # Membership in CLEANUP_POLICIES is a lint rule; here only the shape is checked,
    # and the two spellings of the combined policy are made one.
    text = _str(value).replace(" ", "")
    if set(text.split(",")) == {"compact", "delete"}:
        return "compact,delete"
    return text


def _configs(value: object) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict):
        msg = f"expected a table of Kafka topic configs, got {value!r}"
        raise _Bad(msg)
    pairs = []
    for name, raw in value.items():
        if isinstance(raw, bool):
            text = "true" if raw else "false"
        elif isinstance(raw, (int, float, str)):
            text = str(raw)
        else:
            msg = f"config {name!r}: expected a string, number or boolean, got {raw!r}"
            raise _Bad(msg)
        pairs.append((str(name), text))
    return tuple(sorted(pairs))


#: Topic configs a contract sets through its own keys; ``configs`` may not repeat them.
_OWN_CONFIGS = {
    "cleanup.policy": "cleanup_policy",
    "retention.ms": "retention_ms",
    "retention.bytes": "retention_bytes",
    "min.insync.replicas": "min_insync_replicas",
}

_POLICY_FIELDS: dict[str, Callable[[object], object]] = {
    "topic_name_pattern": _regex,
    "min_replication_factor": _int(1),
    "min_insync_replicas": _int(1),
    "max_partitions": _int(1),
    "require_owner": _bool,
    "require_retention": _bool,
    "require_schema": _bool,
    "default_compatibility": _choice(*COMPATIBILITY_MODES),
    "require_tenant_prefix": _bool,
    "group_id_pattern": _group_id_pattern,
    "verify_topics": _bool,
    "require_principals": _bool,
    "manage_acls": _bool,
    "idempotent_write_acls": _bool,
}


def _delays(value: object) -> tuple[int, ...]:
    if not isinstance(value, list):
        msg = f'expected a list of durations such as ["30s", "10m"], got {value!r}'
        raise _Bad(msg)
    try:
        return tuple(duration_ms(v) for v in value)
    except ValueError as exc:
        raise _Bad(str(exc)) from None


_TOPIC_FIELDS: dict[str, Callable[[object], object]] = {
    "name": _topic_name,
    "owner": _str,
    "tenant": _str,
    "description": _str,
    "partitions": _int(1),
    "replication_factor": _int(1),
    "min_insync_replicas": _int(1),
    "cleanup_policy": _cleanup_policy,
    "retention_ms": _int(-1),
    "retention_bytes": _int(-1),
    "key": _choice(*KEY_RULES),
    "key_schema": _str,
    "value_schema": lambda v: (_str(v),) if isinstance(v, str) else _str_list(v),
    "compatibility": _choice(*COMPATIBILITY_MODES),
    "event_types": _str_list,
    "producers": _str_list,
    "consumers": _str_list,
    "dead_letter_topic": _topic_name,
    "retry_topics": lambda v: tuple(_topic_name(t) for t in _str_list(v)),
    "retry_delays": _delays,
    "ordering": _choice(*ORDERINGS),
    "timestamp_field": _str,
    "configs": _configs,
    "subject_strategy": _choice(*SUBJECT_STRATEGIES),
    "exactly_once": _bool,
}


def _principal(value: object) -> str:
    text = _str(value)
    if _PRINCIPAL.fullmatch(text) is None:
        msg = (
            f"expected a Kafka principal 'Type:name' such as 'User:checkout', got {text!r} "
            "(one principal: no wildcard, no whitespace)"
        )
        raise _Bad(msg)
    return text


def _resource_names(value: object) -> tuple[str, ...]:
    names = _str_list(value)
    for name in names:
        stem = name.removesuffix("*")
        if not stem or "*" in stem or any(c.isspace() for c in name):
            msg = (
                f"{name!r}: expected a name, or a prefix ending in '*' ('billing-*'); "
                "a bare '*' would grant every resource of its kind"
            )
            raise _Bad(msg)
    return names


_SERVICE_FIELDS: dict[str, Callable[[object], object]] = {
    "principal": _principal,
    "group_ids": _resource_names,
    "transactional_ids": _resource_names,
    "producer_byte_rate": _int(1),
    "consumer_byte_rate": _int(1),
}

#: A Kafka principal: its type, a colon, its name, with no wildcard or whitespace.
_PRINCIPAL: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]*:[^\s*]+")

_REQUIRED_TOPIC_FIELDS = ("name", "partitions", "replication_factor")

#: Keys of a topic that an environment may not change: they are its identity.
_FIXED_TOPIC_FIELDS = frozenset({"name", "environments"})


class _Loader:
    def __init__(self, path: Path, environment: str | None) -> None:
        self.path = path
        self.base = path.parent
        self.environment = environment
        self.problems: list[ContractProblem] = []

    def problem(
        self,
        message: str,
        *,
        topic: str | None = None,
        key: str | None = None,
        service: str | None = None,
    ) -> None:
        self.problems.append(ContractProblem(message, topic=topic, key=key, service=service))

    def load(self, data: Mapping[str, Any]) -> Catalog:
        unknown = sorted(set(data) - {"policy", "environments", "topics", "services"})
        for key in unknown:
            self.problem(
                f"unknown top-level key {key!r} (expected policy, environments, topics, services)",
                key=key,
            )
        environments = self.declared_environments(data)
        if self.environment is not None and self.environment not in environments:
            declared = ", ".join(sorted(environments)) or "none"
            self.problem(
                f"environment {self.environment!r} is not declared "
                f"(declared: {declared}; add an [environments.{self.environment}] table)",
                key="environments",
            )
        policy = self.policy(data)
        topics = self.topics(data)
        services = self.services(data)
        if self.problems:
            raise self.error()
        return Catalog(
            path=self.path,
            environment=self.environment,
            policy=policy,
            topics=topics,
            environments=frozenset(environments),
            services=services,
        )

    def error(self) -> ContractError:
        first = self.problems[0]
        lines = [self.describe(p) for p in self.problems]
        message = (
            lines[0] if len(lines) == 1 else f"{len(lines)} problems:\n  " + "\n  ".join(lines)
        )
        return ContractError(
            message,
            path=str(self.path),
            topic=first.topic,
            key=first.key,
            problems=self.problems,
            service=first.service,
        )

    def describe(self, problem: ContractProblem) -> str:
        where = [str(self.path)]
        if problem.service is not None:
            where.append(f"service {problem.service!r}")
        if problem.topic is not None:
            where.append(f"topic {problem.topic!r}")
        if problem.key is not None:
            where.append(f"key {problem.key!r}")
        return f"{': '.join(where)}: {problem.message}"

    def declared_environments(self, data: Mapping[str, Any]) -> set[str]:
        names: set[str] = set()
        envs = data.get("environments", {})
        if isinstance(envs, dict):
            names.update(envs)
        else:
            self.problem(f"expected a table of environments, got {envs!r}", key="environments")
        topics = data.get("topics", [])
        if isinstance(topics, list):
            for topic in topics:
                if isinstance(topic, dict) and isinstance(topic.get("environments"), dict):
                    names.update(topic["environments"])
        services = data.get("services", {})
        if isinstance(services, dict):
            for service in services.values():
                if isinstance(service, dict) and isinstance(service.get("environments"), dict):
                    names.update(service["environments"])
        return names

    def overlay(
        self, table: Mapping[str, Any], envs: object, *, topic: str | None, prefix: str
    ) -> dict[str, Any]:
        """Return ``table`` with the chosen environment's overrides laid over it."""
        merged = dict(table)
        if self.environment is None or envs is None:
            return merged
        if not isinstance(envs, dict):
            self.problem(f"expected a table of environments, got {envs!r}", topic=topic, key=prefix)
            return merged
        override = envs.get(self.environment, {})
        if not isinstance(override, dict):
            self.problem(
                f"expected a table of overrides, got {override!r}",
                topic=topic,
                key=f"{prefix}.{self.environment}",
            )
            return merged
        merged.update(override)
        return merged

    def policy(self, data: Mapping[str, Any]) -> Policy:
        table = data.get("policy", {})
        if not isinstance(table, dict):
            self.problem(f"expected a [policy] table, got {table!r}", key="policy")
            return Policy()
        merged = self.overlay(table, data.get("environments"), topic=None, prefix="environments")
        values = self.fields(merged, _POLICY_FIELDS, topic=None, where="policy")
        return Policy(**values)

    def fields(
        self,
        table: Mapping[str, Any],
        spec: Mapping[str, Callable[[object], object]],
        *,
        topic: str | None,
        where: str,
        service: str | None = None,
    ) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for key, raw in table.items():
            convert = spec.get(key)
            if convert is None:
                self.problem(
                    f"unknown key in [{where}]; known keys: {', '.join(sorted(spec))}",
                    topic=topic,
                    key=key,
                    service=service,
                )
                continue
            try:
                values[key] = convert(raw)
            except _Bad as exc:
                self.problem(str(exc), topic=topic, key=key, service=service)
        return values

    def topics(self, data: Mapping[str, Any]) -> tuple[TopicContract, ...]:
        tables = data.get("topics", [])
        if not isinstance(tables, list):
            self.problem(f"expected [[topics]] tables, got {tables!r}", key="topics")
            return ()
        contracts = []
        for index, table in enumerate(tables):
            contract = self.topic(index, table)
            if contract is not None:
                contracts.append(contract)
        counts = Counter(c.name for c in contracts)
        for name, count in counts.items():
            if count > 1:
                self.problem(
                    f"declared {count} times; keep one contract per topic", topic=name, key="name"
                )
        return tuple(contracts)

    def topic(self, index: int, table: object) -> TopicContract | None:
        if not isinstance(table, dict):
            self.problem(f"topics[{index}]: expected a table, got {table!r}", key="topics")
            return None
        name = table.get("name")
        label = name if isinstance(name, str) and name else f"topics[{index}]"
        envs = table.get("environments")
        self.check_fixed_fields(envs, topic=label)
        merged = self.overlay(
            {k: v for k, v in table.items() if k != "environments"},
            envs,
            topic=label,
            prefix="environments",
        )
        before = len(self.problems)
        values = self.fields(merged, _TOPIC_FIELDS, topic=label, where="topics")
        for key in _REQUIRED_TOPIC_FIELDS:
            if key not in merged:
                self.problem("required key is missing", topic=label, key=key)
        for config, key in _OWN_CONFIGS.items():
            if config in dict(values.get("configs", ())):
                self.problem(
                    f"set {config!r} with the topic's own key {key!r}", topic=label, key="configs"
                )
        if "retry_delays" in values:
            values["retry_delays_ms"] = values.pop("retry_delays")
        if len(values.get("retry_topics", ())) != len(values.get("retry_delays_ms", ())):
            self.problem(
                "retry_delays must give one delay per entry of retry_topics",
                topic=label,
                key="retry_delays",
            )
        if "key_schema" in values:
            values["key_schema"] = self.resolve(values["key_schema"], topic=label, key="key_schema")
        if "value_schema" in values:
            values["value_schema"] = tuple(
                self.resolve(p, topic=label, key="value_schema") for p in values["value_schema"]
            )
        if len(self.problems) > before:
            return None
        if values.get("key_schema") is not None or values.get("value_schema"):
            values["schema_root"] = self.base.resolve()
        return TopicContract(**values)

    def services(self, data: Mapping[str, Any]) -> tuple[ServiceContract, ...]:
        tables = data.get("services", {})
        if not isinstance(tables, dict):
            self.problem(f"expected [services.NAME] tables, got {tables!r}", key="services")
            return ()
        services = []
        for name, table in tables.items():
            if not isinstance(table, dict):
                self.problem(f"expected a table, got {table!r}", service=name, key="services")
                continue
            before = len(self.problems)
            merged = self.overlay(
                {k: v for k, v in table.items() if k != "environments"},
                table.get("environments"),
                topic=None,
                prefix=f"services.{name}.environments",
            )
            values = self.fields(
                merged, _SERVICE_FIELDS, topic=None, where="services.NAME", service=name
            )
            if "principal" not in merged:
                self.problem("required key is missing", service=name, key="principal")
            if len(self.problems) == before:
                services.append(ServiceContract(name=str(name), **values))
        return tuple(services)

    def check_fixed_fields(self, envs: object, *, topic: str) -> None:
        if not isinstance(envs, dict):
            return
        for env_name, override in envs.items():
            if isinstance(override, dict):
                for key in sorted(_FIXED_TOPIC_FIELDS & set(override)):
                    self.problem(
                        f"an environment may not change {key!r}",
                        topic=topic,
                        key=f"environments.{env_name}.{key}",
                    )

    def resolve(self, relative: str, *, topic: str, key: str) -> Path:
        """``relative`` made absolute; a path leading out of the file's folder is a problem.

        Symlinks are followed before the check, so a link inside the folder that points
        outside it is refused like ``../`` or an absolute path. Nothing is read here.
        """
        folder = self.base.resolve()
        target = (folder / relative).resolve()
        if not target.is_relative_to(folder):
            self.problem(
                f"schema path leads outside the folder of the contracts file ({folder}); "
                "schemas must live in that folder or below it",
                topic=topic,
                key=key,
            )
        return target
