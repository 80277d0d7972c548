"""A topic compared with its contract: what ``plan`` lists and what the runtime gate refuses.

:class:`TopicState` is a topic as the cluster reports it, :class:`TopicChange` one way
it differs from its contract (:func:`differences`, :func:`create_change`), and
:func:`gate_drift` what the gate of producers and consumers refuses; :func:`unique` the
contracts by name. The classes are re-exported by :mod:`governed_kafka.cluster`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal

import attrs

from .contracts import Catalog, TopicContract

__all__ = [
    "KAFKA_TOPIC_DEFAULTS",
    "ChangeKind",
    "TopicChange",
    "TopicState",
    "config_change",
    "create_change",
    "differences",
    "gate_drift",
    "normal",
    "unique",
]

#: Kafka's documented defaults of the configs the gate and ``plan`` compare, used when a
#: broker does not report a config at all (some report only configs set explicitly).
KAFKA_TOPIC_DEFAULTS: Final[Mapping[str, str]] = {
    "cleanup.policy": "delete",
    "min.insync.replicas": "1",
    "retention.ms": "604800000",
    "retention.bytes": "-1",
}

ChangeKind = Literal["create", "partitions", "replication-factor", "config"]


@attrs.frozen(kw_only=True)
class TopicState:
    """A topic as the cluster reports it."""

    name: str
    partitions: int
    replication_factor: int
    #: Topic configs the broker reported, as ``(name, value)`` pairs sorted by name.
    configs: tuple[tuple[str, str], ...] = ()

    def config(self, key: str) -> str | None:
        """The value of topic config ``key``: reported, else Kafka's default, else ``None``."""
        reported = dict(self.configs).get(key)
        return reported if reported is not None else KAFKA_TOPIC_DEFAULTS.get(key)


@attrs.frozen(kw_only=True)
class TopicChange:
    """One difference between a contract and the live topic.

    ``field`` is the contract field (``"partitions"``, ``"replication_factor"``) or the
    broker's config name (``"retention.ms"``); ``live`` and ``wanted`` are the values as
    text (``live`` is ``None`` when the topic or config is absent). ``refused`` says why
    ``apply`` will not make the change; ``None`` means it will.
    """

    topic: str
    kind: ChangeKind
    field: str | None = None
    live: str | None = None
    wanted: str | None = None
    refused: str | None = None
    #: For a ``create``: the topic configs it will be created with.
    configs: tuple[tuple[str, str], ...] = ()
    #: For a partition increase: distinct keys among the partitions' recent records
    #: (the last :data:`~governed_kafka.cluster.RECENT_RECORDS_PER_PARTITION` of each),
    #: and how many of them the new partition count sends to another partition.
    #: ``None`` when not measured.
    keys_seen: int | None = None
    keys_moving: int | None = None

    @property
    def safe(self) -> bool:
        """Whether ``apply`` makes this change."""
        return self.refused is None

    @property
    def impact(self) -> str | None:
        """What applying the change does to the topic's data, when that needs saying."""
        if self.keys_seen is None or self.keys_moving is None:
            return None
        return (
            f"{self.keys_moving} of {self.keys_seen} recently seen keys move to another "
            "partition: their order holds only within a partition, so records of a moved "
            "key may be read out of order around the change (drain consumers first)"
        )

    def describe(self) -> str:
        """One sentence saying what differs."""
        if self.kind == "create":
            return f"missing: create with {self.wanted}"
        live = "(not set)" if self.live is None else self.live
        text = f"{self.field}: live {live}, contract {self.wanted}"
        return f"{text}; {self.impact}" if self.impact else text

    def to_dict(self) -> dict[str, object]:
        """The change as plain data, for JSON."""
        data = attrs.asdict(self)
        data["configs"] = dict(self.configs)
        data["safe"] = self.safe
        data["impact"] = self.impact
        return data


def normal(key: str, value: str) -> str:
    value = value.strip()
    if key == "cleanup.policy":
        return ",".join(sorted(p.strip() for p in value.split(",")))
    return value


def config_change(contract: TopicContract, key: str, wanted: str, live: str | None) -> TopicChange:
    refused = None
    if key == "cleanup.policy":
        refused = (
            f"changing cleanup.policy of a live topic from {live!r} to {wanted!r} changes what "
            "its data means (compaction keeps only the latest record per key; deletion drops "
            "records by age or size): create a new topic version instead"
        )
    return TopicChange(
        topic=contract.name, kind="config", field=key, live=live, wanted=wanted, refused=refused
    )


def differences(contract: TopicContract, state: TopicState) -> list[TopicChange]:
    """Every way ``state`` differs from ``contract``."""
    changes = []
    name = contract.name
    if state.partitions > contract.partitions:
        changes.append(
            TopicChange(
                topic=name,
                kind="partitions",
                field="partitions",
                live=str(state.partitions),
                wanted=str(contract.partitions),
                refused=(
                    f"Kafka cannot remove partitions: the topic has {state.partitions}; "
                    "to shrink it, create a new topic version and migrate"
                ),
            )
        )
    elif state.partitions < contract.partitions:
        changes.append(
            TopicChange(
                topic=name,
                kind="partitions",
                field="partitions",
                live=str(state.partitions),
                wanted=str(contract.partitions),
            )
        )
    if state.replication_factor != contract.replication_factor:
        changes.append(
            TopicChange(
                topic=name,
                kind="replication-factor",
                field="replication_factor",
                live=str(state.replication_factor),
                wanted=str(contract.replication_factor),
                refused=(
                    "changing the replication factor moves replicas between brokers (a "
                    "partition reassignment), which apply does not do; reassign with the "
                    "cluster's own tooling"
                ),
            )
        )
    for key, wanted in sorted(contract.topic_configs().items()):
        live = state.config(key)
        if live is None or normal(key, live) != normal(key, wanted):
            changes.append(config_change(contract, key, wanted, live))
    return changes


def create_change(contract: TopicContract) -> TopicChange:
    return TopicChange(
        topic=contract.name,
        kind="create",
        wanted=(
            f"{contract.partitions} partition{'s' if contract.partitions != 1 else ''}, "
            f"replication factor {contract.replication_factor}"
        ),
        configs=tuple(sorted(contract.topic_configs().items())),
    )


def gate_drift(
    contract: TopicContract, state: TopicState
) -> list[tuple[str, str, str | None, object, str]]:
    """What the runtime gate refuses in ``state``: partitions, too few replicas, cleanup
    policy, min ISR."""
    found: list[tuple[str, str, str | None, object, str]] = []
    name = contract.name
    if state.partitions != contract.partitions:
        found.append(
            (
                "topic.drift",
                name,
                "partitions",
                state.partitions,
                f"topic {name!r} has {state.partitions} partitions live, "
                f"the contract says {contract.partitions}",
            )
        )
    if state.replication_factor < contract.replication_factor:
        found.append(
            (
                "topic.drift",
                name,
                "replication_factor",
                state.replication_factor,
                f"topic {name!r} has replication factor {state.replication_factor} live, "
                f"the contract says {contract.replication_factor}: fewer copies than the "
                "contract promises",
            )
        )
    live_policy = state.config("cleanup.policy")
    if live_policy is None or normal("cleanup.policy", live_policy) != normal(
        "cleanup.policy", contract.cleanup_policy
    ):
        found.append(
            (
                "topic.drift",
                name,
                "cleanup_policy",
                live_policy,
                f"topic {name!r} has cleanup.policy {live_policy!r} live, "
                f"the contract says {contract.cleanup_policy!r}",
            )
        )
    if contract.min_insync_replicas is not None:
        live_isr = state.config("min.insync.replicas")
        if live_isr != str(contract.min_insync_replicas):
            found.append(
                (
                    "topic.drift",
                    name,
                    "min_insync_replicas",
                    live_isr,
                    f"topic {name!r} has min.insync.replicas {live_isr} live, "
                    f"the contract says {contract.min_insync_replicas}",
                )
            )
    return found


def unique(catalog: Catalog) -> list[TopicContract]:
    """Contracts by name, first one winning (duplicates are a lint error)."""
    seen: dict[str, TopicContract] = {}
    for contract in catalog.topics:
        seen.setdefault(contract.name, contract)
    return list(seen.values())
