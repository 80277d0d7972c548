"""The admin requests governed_kafka makes, with plain values in and out.

Topic governance (``plan``, ``apply``, the runtime gate), group lag, the testing
brokers' readiness checks and the recent keys a partition increase would move.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Final

from confluent_kafka import (
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._config import AlterConfigOpType, ConfigEntry, ConfigResource
from confluent_kafka.admin._listoffsets import OffsetSpec
from confluent_kafka.cimpl import NewPartitions, NewTopic

from ..errors import BrokerError
from ._acls import AclAdmin
from ._clients import LIBRDKAFKA_LOGGER, construct
from ._errors import broker_error, code_of, translated
from ._errors import wait_for as _wait

#: Topic errors in metadata that still mean "the topic exists".
_EXISTS_WITH_ERROR: Final = frozenset({KafkaError.LEADER_NOT_AVAILABLE})

#: Pause between two looks at metadata or configs that are not there yet.
_RETRY_PAUSE_S: Final = 0.1

#: A topic spec for :meth:`Admin.create_topics`: name, partitions, replication factor
#: (-1: the broker's default), configs.
TopicSpec = tuple[str, int, int, Mapping[str, str]]


def new_admin_client(config: Mapping[str, object]) -> AdminClient:
    """librdkafka's admin client (inside the border only)."""
    client: AdminClient = construct(AdminClient, {**config, "logger": LIBRDKAFKA_LOGGER})
    return client


class Admin(AclAdmin):
    """An admin client: every call waits at most ``timeout`` seconds and raises
    :class:`~governed_kafka.errors.BrokerError` when the cluster fails or refuses it."""

    def __init__(self, config: Mapping[str, object], *, timeout: float) -> None:
        self._client = new_admin_client(config)
        self.timeout = timeout

    # ------------------------------------------------------------------ metadata

    def topics(self) -> dict[str, tuple[int, int]]:
        """Every topic on the cluster: ``{name: (partitions, replication factor)}``.

        Asks for all topics, never for one by name: some brokers create a topic that a
        Metadata request names, which would turn a look into a change.
        """
        with translated("list topics"):
            metadata = self._client.list_topics(timeout=self.timeout)
        found: dict[str, tuple[int, int]] = {}
        for name, topic in metadata.topics.items():
            if topic.error is not None and topic.error.code() not in _EXISTS_WITH_ERROR:
                continue
            replicas = [len(p.replicas) for p in topic.partitions.values()]
            found[name] = (len(topic.partitions), min(replicas, default=0))
        return found

    def brokers(self, timeout: float) -> set[int] | None:
        """The ids of the brokers metadata lists, or ``None`` if no answer came in ``timeout``."""
        try:
            metadata = self._client.list_topics(timeout=timeout)
        except KafkaException:
            return None
        return set(metadata.brokers)

    def replicas_behind(self, topics: set[str] | None, timeout: float) -> list[str] | None:
        """Partitions (``topic[p]``) without a leader or with a replica out of sync, and
        the named topics that do not exist, of ``topics`` (all topics when ``None``);
        ``None`` if no answer came within ``timeout``."""
        try:
            metadata = self._client.list_topics(timeout=timeout)
        except KafkaException:
            return None
        behind = [
            f"{name}[{pid}]"
            for name, topic in metadata.topics.items()
            if topics is None or name in topics
            for pid, partition in topic.partitions.items()
            if partition.leader < 0 or set(partition.isrs) != set(partition.replicas)
        ]
        return behind + sorted((topics or set()) - set(metadata.topics))

    def wait_visible(self, names: Sequence[str]) -> list[str]:
        """Wait until metadata shows each topic with a leader for every partition.

        A cluster of several brokers answers CreateTopics before every broker has the
        new metadata; a client started right after could find the topic missing.
        Returns the names still not visible after ``timeout`` seconds.
        """
        deadline = time.monotonic() + self.timeout
        pending = list(names)
        while pending:
            try:
                topics = self._client.list_topics(timeout=self.timeout).topics
            except KafkaException:
                topics = {}
            pending = [
                name
                for name in pending
                if name not in topics
                or topics[name].error is not None
                or any(p.leader < 0 for p in topics[name].partitions.values())
            ]
            if not pending or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        return pending

    # ------------------------------------------------------------------ configs

    def topic_configs(self, names: list[str]) -> dict[str, dict[str, str]]:
        """The configs the broker reports for each topic (DescribeConfigs).

        A topic just created is listed by some brokers before the one answering
        DescribeConfigs knows it: ``UNKNOWN_TOPIC_OR_PART`` is asked again until
        ``timeout``.
        """
        if not names:
            return {}
        deadline = time.monotonic() + self.timeout
        result: dict[str, dict[str, str]] = {}
        pending = list(names)
        while pending:
            resources = [ConfigResource("topic", name) for name in pending]
            unknown = []
            with translated("describe topic configs"):
                futures = self._client.describe_configs(resources, request_timeout=self.timeout)
                for resource, future in futures.items():
                    try:
                        entries = _wait(future, self.timeout + 1, "describe topic configs")
                    except KafkaException as exc:
                        gone = code_of(exc) == KafkaError.UNKNOWN_TOPIC_OR_PART
                        if not gone or time.monotonic() > deadline:
                            raise
                        unknown.append(resource.name)
                        continue
                    result[resource.name] = {
                        key: entry.value
                        for key, entry in entries.items()
                        if entry.value is not None
                    }
            pending = unknown
            if pending:
                time.sleep(_RETRY_PAUSE_S)
        return result

    def set_topic_configs(self, name: str, configs: Mapping[str, str]) -> None:
        """Set ``configs`` on topic ``name`` (IncrementalAlterConfigs), leaving the others."""
        entries = [
            ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
            for key, value in configs.items()
        ]
        resource = ConfigResource("topic", name, incremental_configs=entries)
        operation = f"alter configs of topic {name!r}"
        with translated(operation):
            futures = self._client.incremental_alter_configs(
                [resource], request_timeout=self.timeout
            )
            for future in futures.values():
                _wait(future, self.timeout + 1, operation)

    # ------------------------------------------------------------------ topics

    def create_topics(self, specs: Sequence[TopicSpec]) -> dict[str, BrokerError | None]:
        """Create ``(name, partitions, replication factor, configs)`` topics.

        Returns, per topic, ``None`` when it was created or the error that refused it.
        """
        if not specs:
            return {}
        new = [
            NewTopic(name, num_partitions=partitions, replication_factor=rf, config=dict(configs))
            for name, partitions, rf, configs in specs
        ]
        futures = self._client.create_topics(
            new, operation_timeout=self.timeout, request_timeout=self.timeout
        )
        outcome: dict[str, BrokerError | None] = {}
        for name, future in futures.items():
            operation = f"create topic {name!r}"
            try:
                with translated(operation):
                    _wait(future, self.timeout + 1, operation)
            except BrokerError as exc:
                outcome[name] = exc
            else:
                outcome[name] = None
        return outcome

    def add_partitions(self, name: str, total: int) -> None:
        """Grow topic ``name`` to ``total`` partitions (CreatePartitions)."""
        operation = f"add partitions to topic {name!r}"
        with translated(operation):
            futures = self._client.create_partitions(
                [NewPartitions(name, total)],
                operation_timeout=self.timeout,
                request_timeout=self.timeout,
            )
            for future in futures.values():
                _wait(future, self.timeout + 1, operation)

    # ------------------------------------------------------------------ groups

    def group_committed(self, group_id: str) -> dict[tuple[str, int], int]:
        """Offsets the group committed, by ``(topic, partition)`` (OffsetFetch)."""
        request = [ConsumerGroupTopicPartitions(group_id)]
        operation = f"fetch committed offsets of group {group_id!r}"
        with translated(operation, timeout=self.timeout):
            futures = self._client.list_consumer_group_offsets(
                request, request_timeout=self.timeout
            )
            result = futures[group_id].result(self.timeout)
        return {
            (tp.topic, tp.partition): tp.offset
            for tp in result.topic_partitions or []
            if tp.offset is not None and tp.offset >= 0
        }

    def latest_offsets(self, partitions: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """The log end offset of each partition (ListOffsets, latest)."""
        if not partitions:
            return {}
        latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
        request = {TopicPartition(t, p): latest for t, p in partitions}
        with translated("list latest offsets", timeout=self.timeout):
            futures = self._client.list_offsets(request, request_timeout=self.timeout)
            return {
                (tp.topic, tp.partition): f.result(self.timeout).offset for tp, f in futures.items()
            }


def recent_keys(
    config: Mapping[str, object],
    topic: str,
    partitions: int,
    *,
    per_partition: int,
    timeout: float,
) -> list[bytes]:
    """Keys of the last ``per_partition`` records of each partition of ``topic``.

    Keyless records are left out. Reads with a consumer of its own that joins no group
    and commits nothing; stops at each partition's end or after ``timeout`` seconds.
    """
    from confluent_kafka import Consumer

    reader: Consumer = construct(
        Consumer,
        {
            **config,
            "logger": LIBRDKAFKA_LOGGER,
            "group.id": f"governed-kafka-plan-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        },
    )
    operation = f"read recent keys of topic {topic!r}"
    deadline = time.monotonic() + timeout
    keys: list[bytes] = []
    try:
        with translated(operation):
            starts = []
            for partition in range(partitions):
                tp = TopicPartition(topic, partition)
                low, high = reader.get_watermark_offsets(tp, timeout=timeout)
                if high > low:
                    starts.append(TopicPartition(topic, partition, max(low, high - per_partition)))
            reader.assign(starts)
            pending = {tp.partition for tp in starts}
            while pending and time.monotonic() < deadline:
                for message in reader.consume(1000, 0.2):
                    error = message.error()
                    if error is None:
                        key = message.key()
                        if key is not None:
                            keys.append(key if isinstance(key, bytes) else str(key).encode())
                    elif error.code() == KafkaError._PARTITION_EOF:
                        pending.discard(message.partition())
                    else:
                        raise broker_error(error, operation)
    finally:
        reader.close()
    return keys
