"""What a producer or consumer is asked to be: its options, checked once.

The public constructors (``GovernedProducer``, ``GovernedConsumer`` and their asyncio
twins) keep their explicit, typed keyword arguments and hand them over as one frozen
options object; what can be checked without the catalog or the cluster is checked here,
when the object is made, with the same errors the constructors always raised.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

import attrs

from . import profiles
from ._config import GroupProtocol, Overrides
from .commit import CommitStrategy
from .errors import ConfigError
from .registry import SchemaRegistry
from .retry import RetryPolicy
from .skew import SkewPolicy

__all__ = [
    "DEFAULT_BATCH",
    "DEFAULT_MAX_BLOCK_S",
    "DEFAULT_MAX_IN_FLIGHT",
    "DEFAULT_SKEW_POLICY",
    "DEFAULT_TRANSACTION_INIT_TIMEOUT_S",
    "ConsumerOptions",
    "ProducerOptions",
]

#: How long ``send()`` may block on a full local queue before raising
#: ``BackpressureTimeout`` (seconds). The Java client's ``max.block.ms`` default.
DEFAULT_MAX_BLOCK_S: Final = 60.0

#: How long a transactional producer's construction waits for ``init_transactions``
#: (seconds): a transaction coordinator loading its state after a failover answers
#: within this on a healthy cluster.
DEFAULT_TRANSACTION_INIT_TIMEOUT_S: Final = 30.0

#: The skew watch's default policy (see :mod:`governed_kafka.skew`).
DEFAULT_SKEW_POLICY: Final = SkewPolicy()

#: Unprocessed records above which the consumer pauses its partitions.
DEFAULT_MAX_IN_FLIGHT: Final = 10_000

#: Records asked of librdkafka per poll.
DEFAULT_BATCH: Final = 500

Servers = str | list[str] | tuple[str, ...]


def _name(instance: object, attribute: attrs.Attribute[str], value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        msg = f"{attribute.name} must be a non-empty name, got {value!r}"
        raise ValueError(msg)


def _profile(instance: object, attribute: attrs.Attribute[profiles.Profile], value: object) -> None:
    if not isinstance(value, profiles.Profile):
        msg = f"profile must be a governed_kafka.profiles.Profile, got {value!r}"
        raise TypeError(msg)


def _hooks(value: Iterable[object]) -> tuple[object, ...]:
    return tuple(value)


def _topics(value: str | Sequence[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def _commit_strategy(value: CommitStrategy | None) -> CommitStrategy:
    return CommitStrategy.batched() if value is None else value


def _retry_policy(value: RetryPolicy | None) -> RetryPolicy:
    return RetryPolicy() if value is None else value


@attrs.frozen(kw_only=True)
class ProducerOptions:
    """The options of a governed producer (see ``GovernedProducer`` for each)."""

    service: str = attrs.field(validator=_name)
    bootstrap_servers: Servers
    profile: profiles.Profile = attrs.field(validator=_profile)
    hooks: tuple[object, ...] = attrs.field(converter=_hooks)
    overrides: Overrides | None
    max_block_s: float = attrs.field()
    registry: SchemaRegistry | None
    auto_register: bool
    verify_topics: bool | None
    skew: SkewPolicy | None = attrs.field()
    #: The producer's transactional id (``None``: no transactions).
    transactional_id: str | None = attrs.field(default=None)
    #: How long construction waits for ``init_transactions`` (seconds).
    transaction_init_timeout_s: float = attrs.field(default=DEFAULT_TRANSACTION_INIT_TIMEOUT_S)

    @transactional_id.validator
    def _transactional_id(self, attribute: attrs.Attribute[str | None], value: object) -> None:
        if value is None:
            return
        if not isinstance(value, str) or not value.strip() or value != value.strip():
            msg = (
                "transactional_id must be a non-empty name without surrounding whitespace, "
                f"got {value!r}"
            )
            raise ConfigError(msg, key="transactional.id", value=value)

    @transaction_init_timeout_s.validator
    def _init_timeout(self, attribute: attrs.Attribute[float], value: float) -> None:
        if not value > 0:
            msg = f"transaction_init_timeout_s must be > 0, got {value!r}"
            raise ValueError(msg)

    @max_block_s.validator
    def _max_block_s(self, attribute: attrs.Attribute[float], value: float) -> None:
        if value < 0:
            msg = f"max_block_s must be >= 0, got {value!r}"
            raise ValueError(msg)

    @skew.validator
    def _skew(self, attribute: attrs.Attribute[SkewPolicy | None], value: object) -> None:
        if value is not None and not isinstance(value, SkewPolicy):
            msg = f"skew must be a governed_kafka.skew.SkewPolicy or None, got {value!r}"
            raise TypeError(msg)


@attrs.frozen(kw_only=True)
class ConsumerOptions:
    """The options of a governed consumer (see ``GovernedConsumer`` for each)."""

    service: str = attrs.field(validator=_name)
    group_id: str = attrs.field(validator=_name)
    topics: tuple[str, ...] = attrs.field(converter=_topics)
    bootstrap_servers: Servers
    #: When processed offsets are committed (``None`` given: batched).
    commit: CommitStrategy = attrs.field(converter=_commit_strategy)
    #: Attempts and backoff for a failing handler (``None`` given: the defaults).
    retry: RetryPolicy = attrs.field(converter=_retry_policy)
    hooks: tuple[object, ...] = attrs.field(converter=_hooks)
    overrides: Overrides | None
    max_in_flight: int = attrs.field()
    #: Records held below which paused partitions resume (``None``: half of
    #: ``max_in_flight``, see :attr:`low_watermark`).
    resume_below: int | None
    profile: profiles.Profile
    registry: SchemaRegistry | None
    verify_topics: bool | None
    group_protocol: GroupProtocol
    client_rack: str | None

    @topics.validator
    def _some_topics(
        self, attribute: attrs.Attribute[tuple[str, ...]], value: tuple[str, ...]
    ) -> None:
        if not value:
            msg = "topics must name at least one topic"
            raise ValueError(msg)

    @max_in_flight.validator
    def _max_in_flight(self, attribute: attrs.Attribute[int], value: int) -> None:
        if value < 1:
            msg = f"max_in_flight must be >= 1, got {value}"
            raise ValueError(msg)

    @property
    def low_watermark(self) -> int:
        """Records held below which paused partitions resume."""
        return self.resume_below if self.resume_below is not None else self.max_in_flight // 2
