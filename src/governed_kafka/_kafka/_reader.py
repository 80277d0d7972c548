"""Reading ranges of a log without joining a group, and a group's offsets with metadata.

:class:`LogReader` is a librdkafka consumer of its own: it is assigned partitions and
reads each from a start offset to an end offset fixed before it starts (bounded work),
yielding :class:`LogEntry` values. Given a ``group_id`` it also fetches and commits that
group's offsets with their metadata, without joining the group (what a simple consumer
may do while the group has no members). Retry tiers rebuild their parked keys with it,
and ``governed-kafka dlq`` reads dead letters and records its progress with it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple

from confluent_kafka import Consumer, KafkaError, TopicPartition

from ..errors import BrokerError
from ._clients import LIBRDKAFKA_LOGGER, construct
from ._consumer import GroupMetadata
from ._errors import broker_error, translated

__all__ = ["LogEntry", "LogReader"]

Key = tuple[str, int]


class LogEntry(NamedTuple):
    """One record as it is in the log: bytes, not decoded."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]
    #: Milliseconds since the epoch, or ``None``.
    timestamp: int | None

    def header(self, name: str) -> bytes | None:
        """The last value of header ``name``, or ``None`` if absent."""
        for key, value in reversed(self.headers):
            if key == name:
                return value
        return None


class LogReader:
    """Reads bounded ranges of partitions; fetches and commits ``group_id``'s offsets.

    :param config: connection settings (``bootstrap.servers``, security).
    :param group_id: the group whose offsets :meth:`committed` and :meth:`commit` use;
        without one, a fresh name that no one else uses (nothing is committed).
    """

    def __init__(self, config: Mapping[str, object], *, group_id: str | None = None) -> None:
        self.group_id = group_id or f"governed-kafka-reader-{uuid.uuid4().hex}"
        self._client: Consumer = construct(
            Consumer,
            {
                **config,
                "logger": LIBRDKAFKA_LOGGER,
                "group.id": self.group_id,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "enable.partition.eof": True,
                "auto.offset.reset": "earliest",
            },
        )

    def partitions(self, topic: str, *, timeout: float) -> int:
        """How many partitions ``topic`` has (0 when it does not exist)."""
        with translated(f"describe topic {topic!r}", timeout=timeout):
            found = self._client.list_topics(topic, timeout=timeout).topics.get(topic)
        if found is None or found.error is not None:
            return 0
        return len(found.partitions)

    def watermarks(self, key: Key, *, timeout: float) -> tuple[int, int]:
        """``(low, high)``: the first offset still in the log, and one past the last."""
        with translated(f"watermarks of {key[0]}[{key[1]}]", timeout=timeout):
            low, high = self._client.get_watermark_offsets(
                TopicPartition(*key), timeout=timeout, cached=False
            )
        return int(low), int(high)

    def read(self, ranges: Mapping[Key, tuple[int, int]], *, timeout: float) -> Iterator[LogEntry]:
        """Yield the records of each partition from its start offset to before its end.

        Raises :class:`~governed_kafka.errors.BrokerError` when reading the ranges takes
        longer than ``timeout`` seconds or the cluster fails the read. The time the caller
        spends between two records (a redrive commits a transaction for each) is not
        counted: only the time spent in here waiting for and taking records is.
        """
        wanted = {key: span for key, span in ranges.items() if span[1] > span[0]}
        if not wanted:
            return
        operation = f"read {len(wanted)} partitions ({', '.join(f'{t}[{p}]' for t, p in wanted)})"
        deadline = time.monotonic() + timeout
        with translated(operation):
            self._client.assign([TopicPartition(t, p, span[0]) for (t, p), span in wanted.items()])
        try:
            while wanted:
                if time.monotonic() > deadline:
                    text = f"{operation}: not done within {timeout:.0f} s"
                    raise BrokerError(text, operation=operation, code="_TIMED_OUT")
                with translated(operation):
                    messages = self._client.consume(500, 0.2)
                for msg in messages:
                    error = msg.error()
                    key = (str(msg.topic()), int(msg.partition() or 0))
                    if error is not None:
                        if error.code() == KafkaError._PARTITION_EOF:
                            wanted.pop(key, None)
                            continue
                        raise broker_error(error, operation)
                    span = wanted.get(key)
                    offset = int(msg.offset() or 0)
                    if span is None or offset >= span[1]:
                        wanted.pop(key, None)
                        continue
                    timestamp_type, timestamp = msg.timestamp()
                    headers: Any = msg.headers()
                    raw_key: Any = msg.key()
                    handed = time.monotonic()
                    yield LogEntry(
                        key[0],
                        key[1],
                        offset,
                        raw_key,
                        msg.value(),
                        tuple(headers) if headers else (),
                        timestamp if timestamp_type else None,
                    )
                    deadline += time.monotonic() - handed  # the caller's time is its own
                    if offset + 1 >= span[1]:
                        wanted.pop(key, None)
        finally:
            with translated(operation):
                self._client.unassign()

    def committed(self, keys: Sequence[Key], *, timeout: float) -> dict[Key, tuple[int, str]]:
        """The group's committed offset and metadata of each of ``keys`` that has one."""
        operation = f"fetch committed offsets of {self.group_id!r}"
        with translated(operation, timeout=timeout):
            found = self._client.committed([TopicPartition(t, p) for t, p in keys], timeout=timeout)
        return {
            (tp.topic, tp.partition): (tp.offset, tp.metadata or "")
            for tp in found
            if tp.offset is not None and tp.offset >= 0
        }

    def commit(self, key: Key, offset: int, *, metadata: str = "") -> None:
        """Commit ``offset`` (the next to read) for ``key`` under the group, synchronously."""
        operation = f"commit {key[0]}[{key[1]}]@{offset} for group {self.group_id!r}"
        tp = TopicPartition(key[0], key[1], offset, metadata)
        with translated(operation):
            result = self._client.commit(offsets=[tp], asynchronous=False) or []
        for answered in result:
            if answered.error is not None:
                raise broker_error(answered.error, operation)

    def group_metadata(self) -> GroupMetadata:
        """The group's metadata as a non-member sees it, for offsets sent to a transaction
        (accepted while the group has no members)."""
        with translated(f"group metadata of {self.group_id!r}"):
            metadata: GroupMetadata = self._client.consumer_group_metadata()
        return metadata

    def close(self) -> None:
        """Release the consumer (it never joined a group, so nothing waits)."""
        with translated("close a log reader"):
            self._client.close()

    def __enter__(self) -> LogReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
