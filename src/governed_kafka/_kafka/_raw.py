"""librdkafka's clients as they are, for the raw baseline of ``governed-kafka bench``.

The benchmark compares the governed clients with the raw ones in the same run, so the
raw row must pay for nothing governed_kafka adds: these are confluent-kafka's own
producer and consumer, typed by the few calls the benchmark makes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, Protocol

from confluent_kafka import Consumer, Producer

from ._clients import LIBRDKAFKA_LOGGER, construct

__all__ = ["RawConsumer", "RawMessage", "RawProducer", "raw_consumer", "raw_producer"]


class RawProducer(Protocol):
    """confluent-kafka's ``Producer``, as the benchmark uses it."""

    def produce(
        self,
        topic: str,
        value: Any = None,
        key: Any = None,
        *,
        on_delivery: Callable[[Any, Any], None] | None = None,
    ) -> None: ...
    def poll(self, timeout: float = ...) -> int: ...
    def flush(self, timeout: float = ...) -> int: ...


class RawMessage(Protocol):
    """A consumed message: its error (``None`` for a record) and its value."""

    def error(self) -> object | None: ...
    def value(self) -> bytes | None: ...


class RawConsumer(Protocol):
    """confluent-kafka's ``Consumer``, as the benchmark uses it."""

    def subscribe(self, topics: list[str]) -> None: ...
    def consume(self, num_messages: int = ..., timeout: float = ...) -> Sequence[RawMessage]: ...
    def commit(self, *, asynchronous: Literal[True] = ...) -> None: ...
    def close(self) -> None: ...


def raw_producer(config: Mapping[str, object]) -> RawProducer:
    """A plain librdkafka producer (a refused configuration raises ``ConfigError``)."""
    producer: RawProducer = construct(Producer, {**config, "logger": LIBRDKAFKA_LOGGER})
    return producer


def raw_consumer(config: Mapping[str, object]) -> RawConsumer:
    """A plain librdkafka consumer (a refused configuration raises ``ConfigError``)."""
    consumer: RawConsumer = construct(Consumer, {**config, "logger": LIBRDKAFKA_LOGGER})
    return consumer
