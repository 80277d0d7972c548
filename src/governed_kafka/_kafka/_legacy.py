"""The border's former surface, kept while the clients move to the typed one (temporary)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from ._clients import construct, with_callbacks
from ._errors import broker_error

__all__ = [
    "Consumer",
    "KafkaError",
    "KafkaException",
    "Message",
    "TopicPartition",
    "broker_error",
    "new_consumer",
]


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
