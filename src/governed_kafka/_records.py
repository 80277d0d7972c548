"""What a consumer hands to the application: :class:`Record`, its value decoded.

A record is built once per consumed message, on the consume path, by the border with
librdkafka (``governed_kafka._kafka``); the decoder of its topic turns the value's bytes
into what the contract says it holds. :class:`Topic` is a topic a consumer reads with
its decoder made ready: Avro values today (:class:`AvroValue`); another value format
adds a decoder of its own beside it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from .avro import EVENT_TYPE_HEADER, AvroReader, AvroSchema, WriterSchemas, load_schema

if TYPE_CHECKING:
    from .contracts import TopicContract

__all__ = ["Decoder", "Record", "Topic", "new_record"]

#: Headers as librdkafka hands them over: ``(name, value)`` pairs, or ``None``.
ConsumedHeaders = list[tuple[str, bytes | None]] | None

#: Turns a value's bytes into ``(decoded, event_type)``: ``(data, headers, partition, offset)``.
Decoder = Callable[[bytes | None, ConsumedHeaders, int, int], tuple[Any, str | None]]


class Record(NamedTuple):
    """One consumed record, its value decoded by the topic's contract.

    Immutable: a handler cannot change what the consumer will mark processed or
    dead-letter. A named tuple because a consumer builds one per record on its hot path,
    where it costs a third of a frozen class.
    """

    topic: str
    partition: int
    offset: int
    key: bytes | None
    #: Decoded value: a dict for Avro topics, ``bytes`` for raw topics, ``None`` for tombstones.
    value: Any
    headers: tuple[tuple[str, bytes | None], ...]
    #: Record timestamp in milliseconds since the epoch, or ``None``.
    timestamp: int | None
    #: The Avro record full name of the value (``"payments.OrderCreated"``), if any.
    event_type: str | None = None
    #: The value exactly as it was read, before decoding.
    raw_value: bytes | None = None

    def header(self, name: str) -> bytes | None:
        """The last value of header ``name``, or ``None`` if absent."""
        for key, value in reversed(self.headers):
            if key == name:
                return value
        return None

    def __repr__(self) -> str:
        return (
            f"Record(topic={self.topic!r}, partition={self.partition}, offset={self.offset}, "
            f"key={self.key!r}, value={self.value!r}, event_type={self.event_type!r})"
        )


#: Builds a :class:`Record` from a tuple of its nine fields, skipping ``NamedTuple``'s
#: keyword handling: ``new_record(Record, (topic, partition, ...))``.
new_record = tuple.__new__


class Topic:
    """A topic a consumer reads, with its contract and decoder made ready."""

    __slots__ = ("contract", "decode", "name")

    def __init__(self, contract: TopicContract, registry: WriterSchemas | None) -> None:
        self.contract = contract
        self.name = contract.name
        #: Turns a value into ``(decoded, event_type)``; ``None`` for raw-bytes topics.
        self.decode: Decoder | None = None
        current = contract.current_value_schema
        if current is not None and registry is not None:
            reader_schema = load_schema(current, topic=contract.name, key="value_schema")
            self.decode = AvroValue(
                AvroReader(registry, topic=contract.name, reader_schema=reader_schema),
                reader_schema,
            )

    def __repr__(self) -> str:
        return f"<Topic {self.name}>"


class AvroValue:
    """Decode a schema topic's value and name its event type.

    A contract whose current schema is one record type has one event type, known here;
    only for a union of records does the ``event-type`` header (or the decoded value)
    tell which one a value is.
    """

    __slots__ = ("event_type", "reader")

    def __init__(self, reader: AvroReader, reader_schema: AvroSchema) -> None:
        self.reader = reader
        types = reader_schema.event_types
        self.event_type = types[0] if len(types) == 1 and not reader_schema.is_union else None

    def __call__(
        self,
        data: bytes | None,
        headers: ConsumedHeaders,
        partition: int,
        offset: int,
    ) -> tuple[Any, str | None]:
        if data is None:
            return None, None  # a tombstone
        if self.event_type is not None:
            return self.reader.decode(data, partition=partition, offset=offset), self.event_type
        event_type = None
        if headers:
            for name, raw in headers:
                if name == EVENT_TYPE_HEADER and raw is not None:
                    event_type = raw.decode("utf-8", "replace")
        return self.reader.decode_event(
            data, partition=partition, offset=offset, event_type=event_type
        )
