"""The governed consumer: explicit commits of processed records only.

``GovernedConsumer`` never auto-commits and never stores an offset on its own. It
tracks, per partition, which delivered records were processed, and commits only up to
the first one that was not (see :mod:`governed_kafka.commit`). When partitions are
revoked, and when it closes, it commits what was processed synchronously before the
partitions go; lost partitions (an expired session) are dropped without committing,
because another member may already own them.

A handler that raises is retried by the :class:`~governed_kafka.retry.RetryPolicy`;
when the attempts are exhausted, or the record cannot be decoded, the record is
published to its topic's dead-letter topic with headers saying what went wrong and
where it came from, and consumption goes on. A topic without a dead-letter topic
stops the consumer instead: skipping the record would lose it.

The consumer is :class:`~governed_kafka._consumer_base.ConsumerBase` with this
module's constructor; :class:`Record` is defined in ``governed_kafka._records``, the
offset book in ``governed_kafka._offsets``, commits in ``governed_kafka._commits``, dead
letters in ``governed_kafka._dead_letters``.
"""

from __future__ import annotations

from collections.abc import Sequence

from . import profiles
from ._config import GROUP_PROTOCOL, GroupProtocol, Overrides
from ._consumer_base import CLOSE_TIMEOUT_S, ConsumerBase
from ._dead_letters import DEAD_LETTER_HEADERS
from ._handling import RunSummary
from ._options import DEFAULT_BATCH, DEFAULT_MAX_IN_FLIGHT, ConsumerOptions
from ._records import Record
from .commit import CommitStrategy
from .contracts import Catalog
from .health import DEFAULT_STALLED_AFTER_S, DEFAULT_WINDOW_S, HealthReport
from .registry import SchemaRegistry
from .retry import RetryPolicy

__all__ = [
    "CLOSE_TIMEOUT_S",
    "DEAD_LETTER_HEADERS",
    "DEFAULT_BATCH",
    "DEFAULT_MAX_IN_FLIGHT",
    "GovernedConsumer",
    "Record",
    "RunSummary",
]


class GovernedConsumer(ConsumerBase):
    """Consume governed topics with explicit, processed-only commits.

    :param catalog: the loaded contracts.
    :param service: this service's name; it must be a listed consumer of every topic,
        and a listed producer of their dead-letter topics.
    :param group_id: the consumer group.
    :param topics: topic names to subscribe to.
    :param bootstrap_servers: ``"host:port,host:port"`` or a list of them.
    :param commit: when processed offsets are committed (default: batched).
    :param retry: attempts and backoff for a failing handler.
    :param hooks: observers of records, commits, rebalances, retries, dead letters.
    :param overrides: further librdkafka settings. Keys that weaken the commit rules,
        producer keys and unknown keys raise :class:`~governed_kafka.errors.ConfigError`.
    :param max_in_flight: records held (taken and not yet committable: unprocessed, or
        processed behind an unprocessed one) above which partitions are paused.
    :param resume_below: records held below which they resume
        (default: half of ``max_in_flight``).
    :param profile: fetch batching (:mod:`governed_kafka.profiles`); never commit rules.
    :param registry: where writer schemas are found by the id in each value
        (:mod:`governed_kafka.registry`); by default a
        :class:`~governed_kafka.registry.LocalSchemaRegistry` built from the catalog.
        Values of schema topics are decoded and resolved to the contract's current
        schema; bytes that do not decode go to the dead-letter topic.
    :param verify_topics: check at construction, before joining the group, that every
        topic read (and each one's dead-letter topic) exists on the cluster and matches
        its contract; a mismatch raises :class:`~governed_kafka.errors.GovernanceViolation`
        (``topic.missing``, ``topic.drift``). ``None`` follows :attr:`Catalog.verify_topics
        <governed_kafka.contracts.Catalog.verify_topics>`.
    :param group_protocol: ``"classic"`` (default; every Kafka-protocol broker) or
        ``"consumer"``, the consumer group protocol of KIP-848 (Apache Kafka 4.0+): the
        broker assigns partitions and moves them incrementally, so members that keep
        their partitions never stop. Under it the session timeout, heartbeat interval
        and assignor belong to the broker: overrides of ``session.timeout.ms``,
        ``heartbeat.interval.ms`` and ``partition.assignment.strategy`` raise
        :class:`~governed_kafka.errors.ConfigError`. The commit rules are the same.
    :param client_rack: the rack (availability zone) this consumer runs in
        (``client.rack``): on a cluster with a rack-aware replica selector it fetches
        from a replica in its own rack instead of crossing to the leader's.

    ``group_id`` must match the policy's ``group_id_pattern`` when it sets one
    (rule ``consumer.group-id-pattern``).
    """

    def __init__(
        self,
        catalog: Catalog,
        *,
        service: str,
        group_id: str,
        topics: str | Sequence[str],
        bootstrap_servers: str | list[str] | tuple[str, ...],
        commit: CommitStrategy | None = None,
        retry: RetryPolicy | None = None,
        hooks: Sequence[object] = (),
        overrides: Overrides | None = None,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        resume_below: int | None = None,
        profile: profiles.Profile = profiles.DURABLE,
        registry: SchemaRegistry | None = None,
        verify_topics: bool | None = None,
        group_protocol: GroupProtocol = GROUP_PROTOCOL,
        client_rack: str | None = None,
    ) -> None:
        options = ConsumerOptions(
            service=service,
            group_id=group_id,
            topics=topics,
            bootstrap_servers=bootstrap_servers,
            commit=commit,
            retry=retry,
            hooks=hooks,
            overrides=overrides,
            max_in_flight=max_in_flight,
            resume_below=resume_below,
            profile=profile,
            registry=registry,
            verify_topics=verify_topics,
            group_protocol=group_protocol,
            client_rack=client_rack,
        )
        super().__init__(catalog, options)

    def health(
        self,
        *,
        window_s: float = DEFAULT_WINDOW_S,
        stalled_after_s: float = DEFAULT_STALLED_AFTER_S,
        stopped_after_s: float | None = None,
    ) -> HealthReport:
        """This consumer's health per partition and overall (:mod:`governed_kafka.health`).

        Judged from what the consumer itself saw over the last ``window_s`` seconds; no
        request is made, so it is cheap enough for every probe and safe from any thread.
        """
        return self._watch.report(
            window_s=window_s, stalled_after_s=stalled_after_s, stopped_after_s=stopped_after_s
        )

    def __enter__(self) -> GovernedConsumer:
        return self
