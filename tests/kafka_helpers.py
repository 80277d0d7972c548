"""Test-side helpers that read and write the broker directly, independently of the library."""

from __future__ import annotations

import textwrap
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Message, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
)


def unique_topic(prefix: str = "test") -> str:
    """A topic name no other test uses, matching the usual ``domain.entity.event.vN`` pattern."""
    return f"{prefix}.t{uuid.uuid4().hex[:12]}.created.v1"


def create_topics(bootstrap: str, topics: Iterable[tuple[str, int, dict[str, str]]]) -> None:
    """Create ``(name, partitions, configs)`` topics with the raw admin client."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = [NewTopic(n, num_partitions=p, replication_factor=1, config=c) for n, p, c in topics]
    for future in admin.create_topics(new, operation_timeout=10).values():
        future.result(10)
    wait_visible_everywhere(bootstrap, [t.topic for t in new])


def create_topic(
    bootstrap: str, name: str, *, partitions: int = 1, rf: int = 1, **configs: str
) -> None:
    """Create one topic with the raw admin client; config names use ``_`` for ``.``."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    config = {k.replace("_", "."): v for k, v in configs.items()}
    new = NewTopic(name, num_partitions=partitions, replication_factor=rf, config=config)
    admin.create_topics([new], operation_timeout=10)[name].result(10)
    wait_visible_everywhere(bootstrap, [name])


def wait_visible_everywhere(bootstrap: str, names: list[str]) -> None:
    """:func:`wait_visible` on each bootstrap broker in turn: under load one broker can
    learn of a new topic seconds after another, and the client under test may ask either."""
    for address in bootstrap.split(","):
        wait_visible(AdminClient({"bootstrap.servers": address}), names)


def wait_visible(admin: AdminClient, names: list[str], *, timeout: float = 15.0) -> None:
    """Wait until metadata shows every topic of ``names`` with a leader for each partition.

    A multi-broker cluster answers CreateTopics before every broker has the new
    metadata; asking right away can find the topic missing. Three answers in a row that
    show it (from whichever brokers librdkafka asks) are taken as propagated.
    """
    deadline = time.monotonic() + timeout
    in_a_row = 0
    while in_a_row < 3:
        if time.monotonic() > deadline:
            msg = f"topics {names} not visible with leaders within {timeout} s"
            raise TimeoutError(msg)
        topics = admin.list_topics(timeout=5).topics
        ready = all(
            name in topics
            and topics[name].error is None
            and all(p.leader >= 0 for p in topics[name].partitions.values())
            for name in names
        )
        in_a_row = in_a_row + 1 if ready else 0
        time.sleep(0.02)


def topic_names(bootstrap: str) -> set[str]:
    """Every topic on the cluster (listing all topics never auto-creates one)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    return set(admin.list_topics(timeout=10).topics)


def describe_topic(bootstrap: str, topic: str) -> tuple[int, int, dict[str, str]]:
    """``(partitions, replication factor, configs)`` of ``topic``, read with DescribeConfigs."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    metadata = admin.list_topics(timeout=10).topics[topic]
    replicas = {len(p.replicas) for p in metadata.partitions.values()}
    assert len(replicas) == 1, replicas
    resource = ConfigResource("topic", topic)
    entries = admin.describe_configs([resource], request_timeout=10)[resource].result(10)
    configs = {k: e.value for k, e in entries.items() if e.value is not None}
    return len(metadata.partitions), replicas.pop(), configs


def set_topic_configs(bootstrap: str, topic: str, configs: dict[str, str]) -> None:
    """Change topic configs behind the library's back (IncrementalAlterConfigs)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    entries = [
        ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in configs.items()
    ]
    resource = ConfigResource("topic", topic, incremental_configs=entries)
    admin.incremental_alter_configs([resource], request_timeout=10)[resource].result(10)


def partition_count(bootstrap: str, topic: str, config: dict[str, str] | None = None) -> int:
    admin = AdminClient({"bootstrap.servers": bootstrap, **(config or {})})
    return len(admin.list_topics(topic, timeout=10).topics[topic].partitions)


def read_all(
    bootstrap: str, topic: str, *, timeout: float = 15.0, config: dict[str, str] | None = None
) -> list[Message]:
    """Every record of ``topic``, read with a raw consumer from the beginning.

    ``config`` adds client settings (SASL credentials).

    Done when each partition's position reaches the high watermark reported by fetch
    responses (ListOffsets is not trusted: see DESIGN.md's broker facts).
    """
    partitions = partition_count(bootstrap, topic, config)
    consumer = Consumer(
        {
            **(config or {}),
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "log_level": 0,
        }
    )
    tps = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)]
    consumer.assign(tps)
    records: list[Message] = []
    at_end: set[int] = set()
    deadline = time.monotonic() + timeout
    try:
        while len(at_end) < partitions:
            if time.monotonic() > deadline:
                msg = f"reading {topic} did not reach the end within {timeout} s"
                raise TimeoutError(msg)
            for message in consumer.consume(1000, 0.2):
                error = message.error()
                if error is None:
                    records.append(message)
                    at_end.discard(message.partition())
                elif error.code() == error._PARTITION_EOF:
                    at_end.add(message.partition())
                else:
                    raise KafkaException(error)
    finally:
        consumer.close()
    return records


def values(records: list[Message]) -> list[bytes | None]:
    return [r.value() for r in records]


def write_catalog(directory: Path, body: str, name: str = "governance.toml") -> Path:
    """Write a contracts file (dedented) and return its path."""
    path = directory / name
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path
