"""Serde of every format: governed_kafka's writers and readers against confluent-kafka's,
same run.

Same record (4 fields: string, long, string, boolean) in each format, same registry (a
confluent-kafka ``mock://`` registry shared by both sides, so both write the same
schema id, and the bytes are checked equal before timing). Each timed run encodes or
decodes ``--messages`` values in a loop; no broker is involved.

Avro, serialize / deserialize:
  confluent  confluent_kafka.schema_registry.avro.AvroSerializer / AvroDeserializer
  fastavro   plain fastavro.schemaless_writer/reader plus the 5-byte header, no checks
  governed   governed_kafka.avro.AvroWriter.encode (every value checked first) /
             AvroReader.decode (header, id lookup, left-over check)

JSON Schema, serialize / deserialize:
  confluent  confluent_kafka.schema_registry.json_schema.JSONSerializer / JSONDeserializer
             (both validate with jsonschema, their default)
  json       plain json.dumps/loads plus the header, no checks
  governed   governed_kafka.json_schema.JsonSchemaWriter.encode (every value checked) /
             JsonSchemaReader.decode (the value checked against its writer schema)

Protobuf, serialize / deserialize:
  confluent  confluent_kafka.schema_registry.protobuf.ProtobufSerializer (a message) /
             ProtobufDeserializer
  protobuf   plain SerializeToString/FromString plus header and index list, no checks
  governed   governed_kafka.protobuf.ProtobufWriter.encode of the message, and of the
             same value as a dict (checked field by field) / ProtobufReader.decode

Targets: governed >= 2x confluent serializing; deserializing >= 4x for Avro (its
recorded target) and >= 3x for JSON Schema and Protobuf.

    python benchmarks/serde.py [--format avro|json|protobuf|all] [--messages 100000]
                               [--repeats 5] [--json F]
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable

import fastavro
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

import harness
from governed_kafka.avro import AvroReader, AvroWriter, parse_schema
from governed_kafka.registry import ConfluentSchemaRegistry, subject_name

Results = dict[str, object]

TOPIC = "bench.serde.order.v1"
SCHEMA = {
    "type": "record",
    "name": "Order",
    "namespace": "bench",
    "fields": [
        {"name": "order_id", "type": "string"},
        {"name": "amount_cents", "type": "long"},
        {"name": "currency", "type": "string"},
        {"name": "paid", "type": "boolean"},
    ],
}
RECORD = {"order_id": "o-123456", "amount_cents": 1999, "currency": "EUR", "paid": True}
JSON_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "bench.Order",
    "type": "object",
    "properties": {
        "order_id": {"type": "string"},
        "amount_cents": {"type": "integer"},
        "currency": {"type": "string"},
        "paid": {"type": "boolean"},
    },
    "required": ["order_id", "amount_cents", "currency", "paid"],
    "additionalProperties": False,
}
PROTO = """
syntax = "proto3";
package bench;
message Order {
  string order_id = 1;
  int64 amount_cents = 2;
  string currency = 3;
  bool paid = 4;
}
"""


def _rate(operation: Callable[[], object], messages: int) -> Callable[[], float]:
    def run() -> float:
        started = time.perf_counter()
        for _ in range(messages):
            operation()
        return messages / (time.perf_counter() - started)

    return run


def _section(
    title: str,
    serialize: dict[str, Callable[[], float]],
    deserialize: dict[str, Callable[[], float]],
    *,
    repeats: int,
    decode_target: float,
) -> Results:
    print(f"\n{title}: serialize")
    encode = harness.report(
        harness.compare(serialize, repeats=repeats),
        baseline="confluent",
        unit="values/s",
        target=("governed", 2.0),
    )
    print(f"\n{title}: deserialize")
    decode = harness.report(
        harness.compare(deserialize, repeats=repeats),
        baseline="confluent",
        unit="values/s",
        target=("governed", decode_target),
    )
    return {"serialize": encode, "deserialize": decode}


def avro(registry: ConfluentSchemaRegistry, n: int, repeats: int) -> Results:
    schema = parse_schema(SCHEMA)
    schema_id = registry.register(subject_name(TOPIC), schema)
    writer = AvroWriter(schema, schema_id, topic=TOPIC)
    reader = AvroReader(registry, topic=TOPIC, reader_schema=schema)

    context = SerializationContext(TOPIC, MessageField.VALUE)
    serializer = AvroSerializer(registry.client, schema.text)
    deserializer = AvroDeserializer(registry.client)

    parsed = fastavro.parse_schema(SCHEMA)
    header = bytes((0,)) + schema_id.to_bytes(4, "big")

    def fastavro_write() -> bytes:
        buffer = io.BytesIO()
        buffer.write(header)
        fastavro.schemaless_writer(buffer, parsed, RECORD)
        return buffer.getvalue()

    data = writer.encode(RECORD)
    theirs = serializer(RECORD, context)
    assert data == theirs == fastavro_write(), "the three serializers disagree"
    assert reader.decode(theirs) == deserializer(data, context) == RECORD

    def fastavro_read() -> object:
        buffer = io.BytesIO(data)
        buffer.seek(5)
        return fastavro.schemaless_reader(buffer, parsed, None)

    return _section(
        "Avro",
        {
            "confluent": _rate(lambda: serializer(RECORD, context), n),
            "fastavro": _rate(fastavro_write, n),
            "governed": _rate(lambda: writer.encode(RECORD), n),
        },
        {
            "confluent": _rate(lambda: deserializer(data, context), n),
            "fastavro": _rate(fastavro_read, n),
            "governed": _rate(lambda: reader.decode(data), n),
        },
        repeats=repeats,
        decode_target=4.0,
    )


def json_schema(registry: ConfluentSchemaRegistry, n: int, repeats: int) -> Results:
    from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer

    from governed_kafka.json_schema import JsonSchemaReader, JsonSchemaWriter
    from governed_kafka.json_schema import parse_schema as parse_json

    topic = f"{TOPIC}.json"
    schema = parse_json(json.dumps(JSON_SCHEMA))
    schema_id = registry.register(subject_name(topic), schema)
    writer = JsonSchemaWriter(schema, schema_id, topic=topic)
    reader = JsonSchemaReader(registry, topic=topic, reader_schema=schema)
    context = SerializationContext(topic, MessageField.VALUE)
    serializer = JSONSerializer(schema.text, registry.client)
    deserializer = JSONDeserializer(schema.text, schema_registry_client=registry.client)
    header = bytes((0,)) + schema_id.to_bytes(4, "big")

    def plain_write() -> bytes:
        return header + json.dumps(RECORD, separators=(",", ":"), ensure_ascii=False).encode()

    data = writer.encode(RECORD)
    assert data == serializer(RECORD, context) == plain_write(), "the serializers disagree"
    assert reader.decode(data) == deserializer(data, context) == RECORD

    return _section(
        "JSON Schema",
        {
            "confluent": _rate(lambda: serializer(RECORD, context), n),
            "json": _rate(plain_write, n),
            "governed": _rate(lambda: writer.encode(RECORD), n),
        },
        {
            "confluent": _rate(lambda: deserializer(data, context), n),
            "json": _rate(lambda: json.loads(data[5:].decode()), n),
            "governed": _rate(lambda: reader.decode(data), n),
        },
        repeats=repeats,
        decode_target=3.0,
    )


def protobuf(registry: ConfluentSchemaRegistry, n: int, repeats: int) -> Results:
    from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer

    from governed_kafka.protobuf import ProtobufReader, ProtobufWriter
    from governed_kafka.protobuf import parse_schema as parse_proto

    topic = f"{TOPIC}.protobuf"
    schema = parse_proto(PROTO, name="bench/order.proto")
    schema_id = registry.register(subject_name(topic), schema)
    cls = schema.message_class("bench.Order")
    message = cls(**RECORD)
    writer = ProtobufWriter(schema, schema_id, topic=topic)
    reader = ProtobufReader(registry, topic=topic, reader_schema=schema)
    context = SerializationContext(topic, MessageField.VALUE)
    conf = {"use.deprecated.format": False}
    serializer = ProtobufSerializer(cls, registry.client, conf)
    deserializer = ProtobufDeserializer(cls, conf, schema_registry_client=registry.client)
    prefix = bytes((0,)) + schema_id.to_bytes(4, "big") + b"\x00"

    def plain_write() -> bytes:
        return prefix + message.SerializeToString()

    data = writer.encode(message)
    assert data == writer.encode(RECORD) == serializer(message, context) == plain_write()
    assert reader.decode(data) == deserializer(data, context) == message
    from_string = cls.FromString

    return _section(
        "Protobuf",
        {
            "confluent": _rate(lambda: serializer(message, context), n),
            "protobuf": _rate(plain_write, n),
            "governed": _rate(lambda: writer.encode(message), n),
            "governed-dict": _rate(lambda: writer.encode(RECORD), n),
        },
        {
            "confluent": _rate(lambda: deserializer(data, context), n),
            "protobuf": _rate(lambda: from_string(data[6:]), n),
            "governed": _rate(lambda: reader.decode(data), n),
        },
        repeats=repeats,
        decode_target=3.0,
    )


FORMATS = {"avro": avro, "json": json_schema, "protobuf": protobuf}


def main() -> None:
    parser = harness.arguments(__doc__.splitlines()[0], messages=100_000)
    parser.add_argument("--format", choices=[*FORMATS, "all"], default="all")
    args = parser.parse_args()
    harness.print_environment()
    registry = ConfluentSchemaRegistry({"url": "mock://bench"})
    print(f"{args.messages:,} values of a 4-field record, {args.repeats} runs each")
    chosen = FORMATS if args.format == "all" else {args.format: FORMATS[args.format]}
    results = {name: run(registry, args.messages, args.repeats) for name, run in chosen.items()}
    if args.json_path:
        with open(args.json_path, "w", encoding="utf-8") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
