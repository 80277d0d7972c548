"""librdkafka's consumer: records built from its messages, offsets, watermarks, groups.

:meth:`ConsumerClient.read` is the consume path: it turns one batch of librdkafka's
messages into :class:`~governed_kafka._records.Record` objects, decoded by the decoder
of each partition's lane, and tells the offset book of each delivered offset through
the lane's tracker. Rebalance and commit callbacks reach the consumer as plain values.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import attrs
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from .._records import Decoder, Record, new_record
from ..errors import AccessDenied, DeserializationError
from ._acls import AUTHORIZATION_ERRORS
from ._clients import OnStats, OnThrottle, construct, with_callbacks
from ._errors import Failure, broker_error, failure, translated

__all__ = ["CommitAnswer", "ConsumerClient", "GroupMetadata", "Key", "Lane", "Offsets"]

_log = logging.getLogger("governed_kafka.consumer")

#: A partition: ``(topic, partition)``.
Key = tuple[str, int]

#: Offsets to commit, or committed: ``(topic, partition, offset)``.
Offsets = tuple[tuple[str, int, int], ...]


class GroupMetadata(Protocol):
    """A consumer's group metadata (group, generation, member id), opaque above the border:
    what a transactional producer sends with the offsets so the group coordinator can
    fence a zombie member (KIP-447)."""


#: How :meth:`ConsumerClient.read` handles one partition's records: the tracker to tell
#: of each delivered offset (``None``: nothing to track) and the decoder of its keys and
#: values (``None``: raw bytes).
Lane = tuple[Callable[[int], None] | None, Decoder | None]

#: The lane of a partition, or ``None`` for a partition the consumer no longer holds.
Lanes = Callable[[str, int], Lane | None]

#: A rebalance callback: the partitions assigned, revoked or lost.
OnRebalance = Callable[[list[Key]], None]

#: Records whose key or value did not decode, with why: ``(record, error)``; the
#: record's ``value`` is ``None``, ``raw_value`` and ``raw_key`` hold the bytes.
Rejected = list[tuple[Record, DeserializationError]]


@attrs.frozen
class CommitAnswer:
    """The broker's answer to an asynchronous commit, served by a later poll."""

    #: What was committed, sorted.
    offsets: Offsets
    #: The commit's error, or that of its first failed partition; ``None`` if it succeeded.
    failure: Failure | None
    #: The partitions whose commit failed (all of them when the request failed whole).
    failed: Offsets


def _undecoded(msg: Message, headers: list[tuple[str, bytes | None]] | None) -> Record:
    """The record of a message whose key or value did not decode: no value, the key
    and the value's bytes kept as they were read."""
    timestamp_type, timestamp = msg.timestamp()
    return new_record(
        Record,
        (
            msg.topic() or "",
            msg.partition() or 0,
            msg.offset() or 0,
            msg.key(),
            None,
            tuple(headers) if headers else (),
            timestamp if timestamp_type else None,
            None,
            msg.value(),
            msg.key(),
        ),
    )


def _keys(partitions: list[TopicPartition]) -> list[Key]:
    return [(tp.topic, tp.partition) for tp in partitions]


def _offsets(partitions: list[TopicPartition]) -> Offsets:
    return tuple(sorted((tp.topic, tp.partition, tp.offset) for tp in partitions))


class ConsumerClient:
    """librdkafka's consumer: the calls a governed consumer makes, errors translated.

    :param group_id: the group, for the operation named in errors and logs.
    :param on_commit: told of each answer to a commit (asynchronous ones are answered
        by a later poll).
    :param principal: the principal the contracts declare for this consumer's service,
        named when the cluster refuses it access.
    """

    def __init__(
        self,
        config: Mapping[str, object],
        *,
        group_id: str,
        on_commit: Callable[[CommitAnswer], None] | None = None,
        on_throttle: OnThrottle | None = None,
        on_stats: OnStats | None = None,
        principal: str | None = None,
    ) -> None:
        self.group_id = group_id
        self.principal = principal
        full = with_callbacks(config, "consumer", on_throttle=on_throttle, on_stats=on_stats)
        if on_commit is not None:

            def committed(err: KafkaError | None, partitions: list[TopicPartition]) -> None:
                failed = [tp for tp in partitions if tp.error is not None]
                first = err if err is not None else failed[0].error if failed else None
                on_commit(
                    CommitAnswer(
                        offsets=_offsets(partitions),
                        failure=None if first is None else failure(first),
                        failed=_offsets(failed or partitions) if first is not None else (),
                    )
                )

            full["on_commit"] = committed
        self._client: Consumer = construct(Consumer, full)

    # ------------------------------------------------------------------ the group

    def subscribe(
        self,
        topics: Sequence[str],
        *,
        on_assign: OnRebalance,
        on_revoke: OnRebalance,
        on_lost: OnRebalance,
    ) -> None:
        """Join the group for ``topics``; rebalances call back with the partitions."""
        self._client.subscribe(
            list(topics),
            on_assign=lambda _, partitions: on_assign(_keys(partitions)),
            on_revoke=lambda _, partitions: on_revoke(_keys(partitions)),
            on_lost=lambda _, partitions: on_lost(_keys(partitions)),
        )

    def pause(self, keys: Sequence[Key]) -> None:
        """Stop fetching ``keys`` (their records stop coming) until :meth:`resume`."""
        self._client.pause([TopicPartition(t, p) for t, p in keys])

    def resume(self, keys: Sequence[Key]) -> None:
        """Fetch ``keys`` again."""
        self._client.resume([TopicPartition(t, p) for t, p in keys])

    def close(self, timeout: float) -> bool:
        """Leave the group and release the consumer; return whether that ended in time.

        librdkafka's close has no timeout, and can wait for a rebalance in progress to
        end before it leaves; it runs on a thread of its own (revoke callbacks run there)
        so that a wait that never ends cannot hang the caller, who waits ``timeout``
        seconds. Its error is raised here, as :class:`~governed_kafka.errors.BrokerError`.
        """
        failure: list[BaseException] = []

        def close() -> None:
            try:
                with translated(f"close the consumer of group {self.group_id!r}"):
                    self._client.close()
            except BaseException as exc:  # re-raised on the caller's thread
                failure.append(exc)

        closing = threading.Thread(
            target=close, name=f"governed-kafka-close[{self.group_id}]", daemon=True
        )
        closing.start()
        closing.join(timeout)
        if closing.is_alive():
            return False
        if failure:
            raise failure[0]
        return True

    # ------------------------------------------------------------------ records

    def read(
        self, max_records: int, timeout: float, lanes: Lanes, rejected: Rejected
    ) -> list[Record]:
        """Poll once: up to ``max_records`` records within ``timeout`` seconds, decoded.

        Records of a partition without lane are left out (revoked during the poll: their
        new owner reads them); records whose key or value does not decode go to
        ``rejected``.
        A fatal consume error raises :class:`~governed_kafka.errors.BrokerError`; others
        are logged and skipped.

        Takes what is already queued without waiting for more: librdkafka's batch
        consume waits until the batch is full or ``timeout`` runs out, which at a low
        rate holds every record for the whole timeout. So: what is queued now; if
        nothing, wait up to ``timeout`` for one record, then take what came with it.
        """
        consume = self._client.consume
        messages = consume(max_records, 0)
        if not messages:
            messages = consume(1, timeout)
            if not messages:
                return []
            if max_records > 1:
                messages += consume(max_records - 1, 0)
        records: list[Record] = []
        append = records.append
        last_topic: str | None = None
        last_partition = -1
        lane: Lane | None = None
        track: Callable[[int], None] | None = None
        decode: Decoder | None = None
        for msg in messages:
            if msg.error() is not None:
                self._consume_error(msg)
                continue
            # A message without error always has topic, partition and offset.
            topic: str = msg.topic()  # type: ignore[assignment]
            partition: int = msg.partition()  # type: ignore[assignment]
            offset: int = msg.offset()  # type: ignore[assignment]
            if partition != last_partition or topic != last_topic:
                lane = lanes(topic, partition)
                if lane is not None:
                    track, decode = lane
                last_topic, last_partition = topic, partition
            if lane is None:
                continue
            if track is not None:
                track(offset)
            data = msg.value()
            raw_key = msg.key()
            headers: list[tuple[str, bytes | None]] | None = msg.headers()  # type: ignore[assignment]
            if decode is None:
                key: Any = raw_key
                value: Any = data
                event_type = None
            else:
                try:
                    key, value, event_type = decode(raw_key, data, headers, partition, offset)
                except DeserializationError as exc:
                    rejected.append((_undecoded(msg, headers), exc))
                    continue
            timestamp_type, timestamp = msg.timestamp()
            append(
                new_record(
                    Record,
                    (
                        topic,
                        partition,
                        offset,
                        key,
                        value,
                        tuple(headers) if headers else (),
                        timestamp if timestamp_type else None,
                        event_type,
                        data,
                        raw_key,
                    ),
                )
            )
        return records

    def _consume_error(self, msg: Message) -> None:
        err = msg.error()
        if err is None:  # pragma: no cover - filtered by the caller
            return
        if err.fatal():
            raise broker_error(err, f"consume ({self.group_id})")
        if err.name() in AUTHORIZATION_ERRORS:
            group = err.name() == "GROUP_AUTHORIZATION_FAILED"
            resource = self.group_id if group else str(msg.topic())
            message = (
                f"the cluster refused {self.principal or 'this consumer'} "
                f"on {'group' if group else 'topic'} {resource!r}: {err.name()}"
            )
            raise AccessDenied(
                message,
                principal=self.principal,
                resource_type="group" if group else "topic",
                resource=resource,
                operation="read",
            )
        _log.warning(
            "group %r: consume error on %s[%s]: %s",
            self.group_id,
            msg.topic(),
            msg.partition(),
            err.str(),
        )

    # ------------------------------------------------------------------ offsets

    def commit(self, offsets: Offsets, *, asynchronous: bool, operation: str) -> None:
        """Commit ``offsets``; synchronously, a refused partition raises
        :class:`~governed_kafka.errors.BrokerError` naming ``operation``."""
        partitions = [TopicPartition(t, p, o) for t, p, o in offsets]
        with translated(operation):
            if asynchronous:
                self._client.commit(offsets=partitions, asynchronous=True)
                return
            result = self._client.commit(offsets=partitions, asynchronous=False) or []
        for tp in result:
            if tp.error is not None:
                raise broker_error(tp.error, operation)

    def committed(self, keys: Sequence[Key], *, timeout: float) -> dict[Key, int | None]:
        """The group's committed position of each of ``keys`` (``None``: nothing committed)."""
        operation = f"fetch committed offsets of {self.group_id!r}"
        partitions = [TopicPartition(t, p) for t, p in keys]
        with translated(operation):
            found = self._client.committed(partitions, timeout=timeout)
        return {
            (tp.topic, tp.partition): tp.offset
            if tp.offset is not None and tp.offset >= 0
            else None
            for tp in found
        }

    def group_metadata(self) -> GroupMetadata:
        """This member's group metadata as of now (it changes with each rebalance)."""
        with translated(f"group metadata of {self.group_id!r}"):
            metadata: GroupMetadata = self._client.consumer_group_metadata()
        return metadata

    def seek(self, positions: Offsets) -> None:
        """Read each partition again from its offset: ``(topic, partition, offset)``.

        Records fetched beyond it and not yet returned are dropped by librdkafka.
        """
        for topic, partition, offset in positions:
            with translated(f"seek {topic}[{partition}] to {offset} ({self.group_id})"):
                self._client.seek(TopicPartition(topic, partition, offset))

    def high_watermark(self, key: Key, *, timeout: float) -> int | None:
        """The partition's high watermark: as of the last fetch, else asked of the broker."""
        tp = TopicPartition(*key)
        with translated(f"watermarks of {key[0]}[{key[1]}]"):
            _, high = self._client.get_watermark_offsets(tp, timeout=timeout, cached=True)
            if high is None or high < 0:
                _, high = self._client.get_watermark_offsets(tp, timeout=timeout, cached=False)
        return high if high is not None and high >= 0 else None

    def fetched_high_watermark(self, key: Key) -> int | None:
        """The partition's high watermark as of the last fetch response; no request is made."""
        try:
            _, high = self._client.get_watermark_offsets(TopicPartition(*key), cached=True)
        except KafkaException:  # pragma: no cover - cached offsets need no broker
            return None
        except RuntimeError:  # closed meanwhile (the watchdog samples from its thread)
            return None
        return high if high is not None and high >= 0 else None
