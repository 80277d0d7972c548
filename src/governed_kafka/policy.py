"""The platform policy every topic contract is held to.

A :class:`Policy` comes from the ``[policy]`` table of ``governance.toml``, with the
``[environments.NAME]`` table of the chosen environment laid over it.

Its patterns (``topic_name_pattern``, ``group_id_pattern``) come from a file anyone may
edit, so they run on RE2 (google-re2), whose matching time is linear in the input
whatever the pattern: ``^(a+)+$`` cannot stall a lint run or a consumer. RE2 has no
backreferences or lookaround; a pattern that needs them, or that is longer than
:data:`MAX_PATTERN_LENGTH`, is refused when the contracts file is loaded.
"""

from __future__ import annotations

import functools
from typing import Any, Final, Literal

import attrs
import re2 as _re2

__all__ = [
    "CLEANUP_POLICIES",
    "COMPATIBILITY_MODES",
    "DURABLE_MIN_INSYNC_REPLICAS",
    "DURABLE_REPLICATION_FACTOR",
    "MAX_PATTERN_LENGTH",
    "SERVICE_PLACEHOLDER",
    "Compatibility",
    "Policy",
    "Severity",
    "Violation",
]

Compatibility = Literal[
    "NONE",
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
]

#: Every schema compatibility mode, as written in contracts and in schema registries.
COMPATIBILITY_MODES: tuple[Compatibility, ...] = (
    "NONE",
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
)

#: Valid ``cleanup_policy`` values (Kafka's ``cleanup.policy``).
CLEANUP_POLICIES: tuple[str, ...] = ("delete", "compact", "compact,delete")

#: Replication factor below which acks=all cannot survive the loss of a broker.
DURABLE_REPLICATION_FACTOR = 3

#: min.insync.replicas below which acks=all is acknowledged by a single replica.
DURABLE_MIN_INSYNC_REPLICAS = 2

#: Stands for the consumer's service name inside ``group_id_pattern``.
SERVICE_PLACEHOLDER = "{service}"

#: Longest pattern a contracts file may give, in characters.
MAX_PATTERN_LENGTH: Final = 1000


def _options() -> Any:
    options = _re2.Options()
    options.log_errors = False  # the refusal says what is wrong; RE2 need not print it too
    return options


_OPTIONS: Final = _options()


@functools.lru_cache(maxsize=256)
def _compiled(pattern: str) -> Any:
    return _re2.compile(pattern, _OPTIONS)


def pattern_problem(pattern: str) -> str | None:
    """Why ``pattern`` cannot be a contract pattern, or ``None`` when it can."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        return f"the pattern is longer than {MAX_PATTERN_LENGTH} characters ({len(pattern)})"
    try:
        _compiled(pattern)
    except _re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        text = reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)
        return (
            f"not a valid regular expression for RE2, the linear-time engine contract "
            f"patterns run on: RE2 cannot compile it ({text}); it has no backreferences "
            "or lookaround"
        )
    except UnicodeEncodeError:
        return "not a valid regular expression: it holds text that is not valid Unicode"
    return None


def full_match(pattern: str, text: str) -> bool:
    """Whether ``pattern`` matches the whole of ``text``, in time linear in ``text``."""
    try:
        return _compiled(pattern).fullmatch(text) is not None
    except UnicodeEncodeError:
        return False  # text that is not valid Unicode matches no pattern


def _valid_pattern(instance: object, attribute: attrs.Attribute[Any], value: str | None) -> None:
    """A pattern given in code is held to the rules a contracts file is (ValueError)."""
    if value is None:
        return
    problem = pattern_problem(value.replace(SERVICE_PLACEHOLDER, "service"))
    if problem is not None:
        msg = f"{attribute.name}: {problem}"
        raise ValueError(msg)


@attrs.frozen(kw_only=True)
class Policy:
    """Platform-wide rules for topic contracts.

    The defaults are the durable ones: they are what a production cluster should demand
    when a contracts file says nothing.
    """

    #: Regular expression (RE2) every topic name must match in full, or ``None`` for any.
    topic_name_pattern: str | None = attrs.field(default=None, validator=_valid_pattern)
    #: Smallest replication factor a topic may declare.
    min_replication_factor: int = DURABLE_REPLICATION_FACTOR
    #: Smallest ``min.insync.replicas`` a topic may declare.
    min_insync_replicas: int = DURABLE_MIN_INSYNC_REPLICAS
    #: Largest partition count a topic may declare, or ``None`` for no limit.
    max_partitions: int | None = None
    #: Every topic must name an owning team.
    require_owner: bool = True
    #: Every topic must declare ``retention_ms`` (compacted-only topics excepted).
    require_retention: bool = True
    #: Every topic must declare a ``value_schema``.
    require_schema: bool = False
    #: Compatibility mode of topics that do not declare one.
    default_compatibility: Compatibility = "BACKWARD"
    #: Every topic must declare a ``tenant`` and start with ``"<tenant>."``.
    require_tenant_prefix: bool = False
    #: Regular expression (RE2) every consumer ``group_id`` must match in full, or ``None``
    #: for any group. ``{service}`` stands for the consumer's service name.
    group_id_pattern: str | None = attrs.field(default=None, validator=_valid_pattern)
    #: Whether producers and consumers check the live topics against their contracts at
    #: construction; ``None`` means yes, except in the environment named ``local``.
    verify_topics: bool | None = None
    #: Every producer and consumer a topic lists must have a ``[services.NAME]`` entry
    #: with the principal it authenticates as.
    require_principals: bool = False
    #: Whether ``plan``/``apply`` manage the ACLs the ``[services]`` imply (turn it off
    #: for an environment whose cluster has no authorizer).
    manage_acls: bool = True
    #: Grant producers IDEMPOTENT_WRITE on the cluster too: brokers before Kafka 2.8
    #: (KIP-679) demand it of idempotent producers; later ones need only WRITE.
    idempotent_write_acls: bool = False

    def name_matches(self, topic: str) -> bool:
        """Return whether ``topic`` satisfies ``topic_name_pattern``."""
        if self.topic_name_pattern is None:
            return True
        return full_match(self.topic_name_pattern, topic)

    def group_id_matches(self, group_id: str, *, service: str) -> bool:
        """Return whether ``group_id`` satisfies ``group_id_pattern`` for ``service``."""
        if self.group_id_pattern is None:
            return True
        pattern = self.group_id_pattern.replace(SERVICE_PLACEHOLDER, _re2.escape(service))
        return full_match(pattern, group_id)

    @property
    def demands_durability(self) -> bool:
        """Whether the minimums are high enough for ``acks=all`` to survive a broker loss."""
        return (
            self.min_replication_factor >= DURABLE_REPLICATION_FACTOR
            and self.min_insync_replicas >= DURABLE_MIN_INSYNC_REPLICAS
        )


Severity = Literal["error", "warning"]


@attrs.frozen(kw_only=True)
class Violation:
    """One broken rule found by :meth:`Catalog.lint` or ``plan``.

    ``rule`` is a stable identifier (``"topic.name-pattern"``...); ``field`` is the
    contract key involved (``"replication_factor"``), or ``None`` for the whole topic.
    """

    rule: str
    severity: Severity
    topic: str | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = self.topic or "<catalog>"
        if self.field:
            where = f"{where}.{self.field}"
        return f"{self.severity}: {where}: {self.message} [{self.rule}]"
