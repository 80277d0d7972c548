"""The border's former surface, kept while the clients move to the typed one (temporary)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, cast

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from ..errors import DeliveryError
from ._clients import construct, with_callbacks
from ._errors import broker_error, failure
from ._errors import delivery_error as _delivery_error

__all__ = [
    "Consumer",
    "KafkaError",
    "KafkaException",
    "Message",
    "Producer",
    "TopicPartition",
    "broker_error",
    "delivery_error",
    "new_consumer",
    "new_producer",
]


def new_producer(
    config: Mapping[str, object],
    *,
    on_fatal: Callable[[KafkaError], None] | None = None,
    on_throttle: Callable[[str, int, float], None] | None = None,
    on_stats: Callable[[dict[str, Any]], None] | None = None,
) -> Producer:
    full = with_callbacks(config, "producer", on_throttle=on_throttle, on_stats=on_stats)
    producer: Producer = construct(Producer, full)
    return producer


def new_consumer(
    config: Mapping[str, object],
    *,
    on_fatal: Callable[[KafkaError], None] | None = None,
    on_commit: Callable[[KafkaError | None, list[TopicPartition]], None] | None = None,
    on_throttle: Callable[[str, int, float], None] | None = None,
    on_stats: Callable[[dict[str, Any]], None] | None = None,
) -> Consumer:
    full = with_callbacks(config, "consumer", on_throttle=on_throttle, on_stats=on_stats)
    if on_commit is not None:
        full["on_commit"] = on_commit
    consumer: Consumer = construct(Consumer, full)
    return consumer


def delivery_error(err: KafkaError, msg: Message | None) -> DeliveryError:
    raw_key: object = msg.key() if msg is not None else None
    key = raw_key.encode() if isinstance(raw_key, str) else cast("bytes | None", raw_key)
    return _delivery_error(
        err,
        topic=msg.topic() if msg is not None else None,
        partition=msg.partition() if msg is not None else None,
        key=key,
    )


_ = failure
