"""The platform policy every topic contract is held to.

A :class:`Policy` comes from the ``[policy]`` table of ``governance.toml``, with the
``[environments.NAME]`` table of the chosen environment laid over it.
"""

from __future__ import annotations

import re
from typing import Literal

import attrs

__all__ = ["COMPATIBILITY_MODES", "Compatibility", "Policy", "Severity", "Violation"]

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

#: Replication factor below which acks=all cannot survive the loss of a broker.
DURABLE_REPLICATION_FACTOR = 3

#: min.insync.replicas below which acks=all is acknowledged by a single replica.
DURABLE_MIN_INSYNC_REPLICAS = 2


@attrs.frozen(kw_only=True)
class Policy:
    """Platform-wide rules for topic contracts.

    The defaults are the durable ones: they are what a production cluster should demand
    when a contracts file says nothing.
    """

    #: Regular expression every topic name must match in full, or ``None`` for any name.
    topic_name_pattern: str | None = None
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

    def name_matches(self, topic: str) -> bool:
        """Return whether ``topic`` satisfies ``topic_name_pattern``."""
        if self.topic_name_pattern is None:
            return True
        return re.fullmatch(self.topic_name_pattern, topic) is not None


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
