"""Avro serde: governed_kafka's writer and reader against confluent-kafka's, same run.

Same record (4 fields: string, long, string, boolean), same schema, same registry (a
confluent-kafka ``mock://`` registry shared by both sides, so both write the same
schema id). Each timed run encodes or decodes ``--messages`` values in a loop; no
broker is involved.

Variants, serialize:
  confluent  confluent_kafka.schema_registry.avro.AvroSerializer
  fastavro   plain fastavro.schemaless_writer plus the 5-byte header, no checks
  governed   governed_kafka.avro.AvroWriter.encode (every value checked first)

Variants, deserialize:
  confluent  confluent_kafka.schema_registry.avro.AvroDeserializer
  fastavro   plain fastavro.schemaless_reader after the 5-byte header, no checks
  governed   governed_kafka.avro.AvroReader.decode (header, id lookup, left-over check)

Targets: governed >= 2x confluent serializing, >= 4x confluent deserializing.

    python benchmarks/serde.py [--messages 100000] [--repeats 5] [--json F]
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


def _rate(operation: Callable[[], object], messages: int) -> Callable[[], float]:
    def run() -> float:
        started = time.perf_counter()
        for _ in range(messages):
            operation()
        return messages / (time.perf_counter() - started)

    return run


def main() -> None:
    args = harness.arguments(__doc__.splitlines()[0], messages=100_000).parse_args()
    harness.print_environment()

    registry = ConfluentSchemaRegistry({"url": "mock://bench"})
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

    n = args.messages
    print(f"{n:,} values of a 4-field record, {args.repeats} runs each")
    print("\nserialize")
    encode_rates = harness.compare(
        {
            "confluent": _rate(lambda: serializer(RECORD, context), n),
            "fastavro": _rate(fastavro_write, n),
            "governed": _rate(lambda: writer.encode(RECORD), n),
        },
        repeats=args.repeats,
    )
    encode = harness.report(
        encode_rates, baseline="confluent", unit="values/s", target=("governed", 2.0)
    )
    print("\ndeserialize")
    decode_rates = harness.compare(
        {
            "confluent": _rate(lambda: deserializer(data, context), n),
            "fastavro": _rate(fastavro_read, n),
            "governed": _rate(lambda: reader.decode(data), n),
        },
        repeats=args.repeats,
    )
    decode = harness.report(
        decode_rates, baseline="confluent", unit="values/s", target=("governed", 4.0)
    )
    if args.json_path:
        with open(args.json_path, "w", encoding="utf-8") as fh:
            json.dump({"serialize": encode, "deserialize": decode}, fh, indent=2)


if __name__ == "__main__":
    main()
