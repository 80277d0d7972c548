"""What a consumer hands to the application: :class:`Record`, its value and key decoded.

A record is built once per consumed message, on the consume path, by the border with
librdkafka (``governed_kafka._kafka``); the decoder of its topic turns the value's bytes
(and the key's, with a ``key_schema``) into what the contract says they hold.
:class:`Topic` is a topic a consumer reads with its decoder made ready: Avro values
(:class:`AvroValue`), JSON Schema and Protobuf values (:class:`SchemaValue`), and keys
of any of the three formats (:class:`Decoding`).
"""

from __future__ import annotations

from collections.abc import Callable
from io import BytesIO
from typing import TYPE_CHECKING, Any, NamedTuple

from ._wire import SchemaReader, WriterSchemas
from .avro import EVENT_TYPE_HEADER, HEADER_SIZE, AvroReader, AvroSchema
from .schemas import load_schema, reader, subjects

if TYPE_CHECKING:
    from .contracts import TopicContract

__all__ = ["Decoder", "Record", "Topic", "new_record"]

#: Headers as librdkafka hands them over: ``(name, value)`` pairs, or ``None``.
ConsumedHeaders = list[tuple[str, bytes | None]] | None

#: Turns a record's bytes into ``(key, value, event_type)``:
#: ``(key, value, headers, partition, offset)``.
Decoder = Callable[
    [bytes | None, bytes | None, ConsumedHeaders, int, int], tuple[Any, Any, str | None]
]


class Record(NamedTuple):
    """One consumed record, its value decoded by the topic's contract.

    Immutable: a handler cannot change what the consumer will mark processed or
    dead-letter. A named tuple because a consumer builds one per record on its hot path,
    where it costs a third of a frozen class.
    """

    topic: str
    partition: int
    offset: int
    #: Decoded key with a ``key_schema`` (as the value is decoded), else its bytes.
    key: Any
    #: Decoded value: a dict for Avro topics, JSON for JSON Schema ones, a message for
    #: Protobuf ones, ``bytes`` for raw topics, ``None`` for tombstones.
    value: Any
    headers: tuple[tuple[str, bytes | None], ...]
    #: Record timestamp in milliseconds since the epoch, or ``None``.
    timestamp: int | None
    #: The event type of the value (``"payments.OrderCreated"``: its Avro record, JSON
    #: Schema title or Protobuf message), if any.
    event_type: str | None = None
    #: The value exactly as it was read, before decoding.
    raw_value: bytes | None = None
    #: The key exactly as it was read, before decoding.
    raw_key: bytes | None = None

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


#: Builds a :class:`Record` from a tuple of its ten fields, skipping ``NamedTuple``'s
#: keyword handling: ``new_record(Record, (topic, partition, ...))``.
new_record = tuple.__new__


class Topic:
    """A topic a consumer reads, with its contract and decoder made ready."""

    __slots__ = ("contract", "decode", "name")

    def __init__(self, contract: TopicContract, registry: WriterSchemas | None) -> None:
        self.contract = contract
        self.name = contract.name
        #: Turns a record's key and value into ``(key, value, event_type)``; ``None`` for
        #: topics without schema.
        self.decode: Decoder | None = None
        if registry is None or (not contract.value_schema and contract.key_schema is None):
            return
        root = contract.schema_root
        current = contract.current_value_schema
        value: Decoder | None = None
        if current is not None:
            schema = load_schema(current, root=root, topic=self.name, key="value_schema")
            others = []
            if contract.subject_strategy != "topic":  # each event type its own subject
                others = [
                    s.current
                    for s in subjects(contract, root=root)
                    if s.role == "value" and s.current != schema
                ]
            found = reader(schema, registry, topic=self.name, others=others)
            if isinstance(found, AvroReader):
                assert isinstance(schema, AvroSchema)
                value = AvroValue(found, schema, several=bool(others))
            else:
                value = SchemaValue(found)
        key = None
        if contract.key_schema is not None:
            schema = load_schema(contract.key_schema, root=root, topic=self.name, key="key_schema")
            key = reader(schema, registry, topic=self.name, role="key")
        self.decode = value if key is None and value is not None else Decoding(value, key)

    def __repr__(self) -> str:
        return f"<Topic {self.name}>"


class Decoding:
    """Decode a record's key (by the ``key_schema``) and value (by its decoder).

    A key's bytes that do not decode raise
    :class:`~governed_kafka.errors.DeserializationError` as a value's do, so the record
    is dead-lettered the same way.
    """

    __slots__ = ("key", "value")

    def __init__(self, value: Decoder | None, key: SchemaReader | None) -> None:
        self.value = value
        self.key = key

    def __call__(
        self,
        key: bytes | None,
        data: bytes | None,
        headers: ConsumedHeaders,
        partition: int,
        offset: int,
    ) -> tuple[Any, Any, str | None]:
        decoded = key
        if key is not None and self.key is not None:
            decoded = self.key.decode(key, partition=partition, offset=offset)
        if self.value is None:
            return decoded, data, None
        _, value, event_type = self.value(key, data, headers, partition, offset)
        return decoded, value, event_type


class SchemaValue:
    """Decode a JSON Schema or Protobuf topic's value; its event type comes with it (the
    writer schema's title, or the message the index list names)."""

    __slots__ = ("reader",)

    def __init__(self, reader: SchemaReader) -> None:
        self.reader = reader

    def __call__(
        self,
        key: bytes | None,
        data: bytes | None,
        headers: ConsumedHeaders,
        partition: int,
        offset: int,
    ) -> tuple[Any, Any, str | None]:
        if data is None:
            return key, None, None  # a tombstone
        value, event_type = self.reader.decode_event(data, partition=partition, offset=offset)
        return key, value, event_type


#: What the fast path of :class:`AvroValue` answers for a value it could not read.
_UNREAD: Any = object()


class AvroValue:
    """Decode an Avro topic's value and name its event type.

    A contract whose current schema is one record type, and which carries no other,
    has one event type, known here; otherwise (a union of records, or several event
    types under a record subject strategy) the ``event-type`` header, or the decoded
    value, tells which one a value is.
    """

    __slots__ = ("_fast_header", "_fast_read", "event_type", "reader")

    def __init__(self, reader: AvroReader, reader_schema: AvroSchema, *, several: bool) -> None:
        self.reader = reader
        types = reader_schema.event_types
        single = len(types) == 1 and not reader_schema.is_union and not several
        self.event_type = types[0] if single else None
        #: The fast path (one event type): the 5-byte header of the last value decoded
        #: and the fastavro reader of its schema id (``AvroReader.fast_reader``).
        self._fast_header = b"\xff"  # matches no wire-format value (magic byte 0)
        self._fast_read: Callable[[BytesIO], Any] | None = None

    def __call__(
        self,
        key: bytes | None,
        data: bytes | None,
        headers: ConsumedHeaders,
        partition: int,
        offset: int,
    ) -> tuple[Any, Any, str | None]:
        if data is None:
            return key, None, None  # a tombstone
        event_type = self.event_type
        if event_type is not None:
            if data.startswith(self._fast_header):
                buffer = BytesIO(data)
                buffer.seek(HEADER_SIZE)
                try:
                    value = self._fast_read(buffer)  # type: ignore[misc]
                except Exception:  # decode() below says what is wrong
                    value = _UNREAD
                if value is not _UNREAD and buffer.tell() == len(data):
                    return key, value, event_type
            value = self.reader.decode(data, partition=partition, offset=offset)
            self._fast_read = self.reader.fast_reader(data)
            self._fast_header = data[:HEADER_SIZE] if self._fast_read is not None else b"\xff"
            return key, value, event_type
        event_type = None
        if headers:
            for name, raw in headers:
                if name == EVENT_TYPE_HEADER and raw is not None:
                    event_type = raw.decode("utf-8", "replace")
        value, event_type = self.reader.decode_event(
            data, partition=partition, offset=offset, event_type=event_type
        )
        return key, value, event_type
