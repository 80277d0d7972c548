"""Bad input the catalogue in docs/reliability.md lists, each with what the library does."""

from __future__ import annotations

import gc
import shutil
import threading
import time
import tracemalloc
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from test_consumer import FAST, _contracts

from conftest import CatalogFactory
from governed_kafka import (
    BrokerError,
    DeliveryError,
    GovernanceViolation,
    GovernedConsumer,
    GovernedProducer,
    Record,
    SerializationError,
)
from governed_kafka.testing import LocalBroker
from kafka_helpers import create_topics, read_all

EXAMPLE_SCHEMAS = Path(__file__).parent.parent.parent / "examples" / "schemas"
ORDER = {
    "order_id": "o-1",
    "customer_id": "c-1",
    "amount_cents": 1000,
    "currency": "EUR",
    "created_at": 1_700_000_000_000,
}


def test_record_above_the_contracts_max_message_bytes_is_refused(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """A record larger than the max.message.bytes the contract pins is refused before sending."""
    catalog = provisioned(
        _contracts(topic_name, partitions=1, dlq=False).replace(
            'consumers = ["billing"]',
            'consumers = ["billing"]\n    configs = { "max.message.bytes" = 1000 }',
        )
    )
    with GovernedProducer(
        catalog, service="checkout", bootstrap_servers=kafka_broker.bootstrap_servers
    ) as producer:
        with pytest.raises(GovernanceViolation, match=r"max\.message\.bytes \(1000\)") as refused:
            producer.send(topic_name, b"x" * 2000, key=b"k")
        assert refused.value.rule == "message.too-large"
        assert refused.value.topic == topic_name
        producer.send_and_wait(topic_name, b"x" * 500, key=b"k")  # well under: accepted
    assert [len(r.value()) for r in read_all(kafka_broker.bootstrap_servers, topic_name)] == [500]


def test_non_utf8_header_values_arrive_byte_for_byte(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """Header values are bytes: invalid UTF-8 is carried exactly, never decoded or refused."""
    catalog = provisioned(_contracts(topic_name, partitions=1, dlq=False))
    bootstrap = kafka_broker.bootstrap_servers
    odd = b"\xff\xfe\x00\x80binary"
    with GovernedProducer(catalog, service="checkout", bootstrap_servers=bootstrap) as producer:
        producer.send_and_wait(topic_name, b"v", key=b"k", headers=[("blob", odd), ("empty", None)])
    with GovernedConsumer(
        catalog,
        service="billing",
        group_id=f"headers-{topic_name}",
        topics=[topic_name],
        bootstrap_servers=bootstrap,
        overrides=FAST,
    ) as consumer:
        records: list[Record] = []
        consumer.run(records.append, max_records=1, timeout=30)
    assert records[0].header("blob") == odd
    assert records[0].headers == (("blob", odd), ("empty", None))


def test_unreachable_bootstrap_servers_fail_the_topic_check_at_construction(
    provisioned: CatalogFactory, topic_name: str, unused_port: int
) -> None:
    """With the runtime gate on, a producer for an unreachable cluster fails fast and clearly."""
    catalog = provisioned(_contracts(topic_name, dlq=False), create=False)
    started = time.monotonic()
    with pytest.raises(BrokerError, match="cannot reach the cluster") as refused:
        GovernedProducer(
            catalog,
            service="checkout",
            bootstrap_servers=f"127.0.0.1:{unused_port}",
            verify_topics=True,
        )
    assert f"127.0.0.1:{unused_port}" in str(refused.value)
    assert time.monotonic() - started < 30


def test_unreachable_bootstrap_servers_fail_every_send_within_the_delivery_timeout(
    provisioned: CatalogFactory, topic_name: str, unused_port: int
) -> None:
    """Without the gate, sends are accepted, then every one fails loudly; close() reports them."""
    catalog = provisioned(_contracts(topic_name, dlq=False), create=False)
    producer = GovernedProducer(
        catalog,
        service="checkout",
        bootstrap_servers=f"127.0.0.1:{unused_port}",
        verify_topics=False,
        overrides={"delivery.timeout.ms": 1500, "log_level": 0},
    )
    futures = [producer.send(topic_name, str(i).encode(), key=b"k") for i in range(20)]
    started = time.monotonic()
    deadline = started + 15
    while not all(f.done() for f in futures) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(f.done() for f in futures)
    assert time.monotonic() - started < 10
    with pytest.raises(DeliveryError) as at_close:
        producer.close()
    assert len(at_close.value.failures) == 20
    assert {f.code for f in at_close.value.failures} == {"_MSG_TIMED_OUT"}


def test_topic_deleted_while_producing_leaves_no_send_unresolved(
    provisioned: CatalogFactory, topic_name: str
) -> None:
    """Deleting the topic mid-stream resolves every future, delivered or failed, none pending."""
    catalog = provisioned(_contracts(topic_name, partitions=1, dlq=False), create=False)
    with LocalBroker() as broker:
        create_topics(broker.bootstrap_servers, [(topic_name, 1, {})])
        producer = GovernedProducer(
            catalog,
            service="checkout",
            bootstrap_servers=broker.bootstrap_servers,
            overrides={"delivery.timeout.ms": 5000},
        )
        futures = []
        sent_half = threading.Event()

        def send_all() -> None:
            for i in range(2000):
                futures.append(producer.send(topic_name, str(i).encode(), key=b"k"))
                if i == 1000:
                    sent_half.set()
                time.sleep(0.0005)

        sender = threading.Thread(target=send_all)
        sender.start()
        assert sent_half.wait(30)
        admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
        for future in admin.delete_topics([topic_name], operation_timeout=10).values():
            future.result(10)
        sender.join()
        try:
            producer.close(timeout=20)
        except DeliveryError as undelivered:
            failed_at_close = len(undelivered.failures)
        else:
            failed_at_close = 0
    assert len(futures) == 2000
    assert all(f.done() for f in futures)
    delivered = [f for f in futures if f.exception(0) is None]
    failed = [f for f in futures if f.exception(0) is not None]
    assert len(delivered) + len(failed) == 2000
    assert failed_at_close == len(failed)  # close() reported each failure nobody had looked at
    assert len(delivered) >= 1000  # what was sent before the deletion was delivered


@pytest.fixture
def unused_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# ------------------------------------------------------------------ hostile input (issue 14)

MARKER = b"marker"


def _marker_read(bootstrap: str, producer: GovernedProducer, topic: str) -> list[bytes | None]:
    """Send a marker record, then read the whole topic back with an independent raw consumer."""
    producer.send_and_wait(topic, MARKER, key=b"k")
    return [r.value() for r in read_all(bootstrap, topic)]


@pytest.mark.parametrize(
    "headers",
    [
        {"\ud800": b"x"},
        [("ok", b"1"), ("bad\udfff", b"x")],
        {"event-type\x00": b"forged"},
        {"a\x00b": b"x"},
        {"h": "\ud800"},
        {"h": 42},
        {b"bytes-name": b"x"},
        {"": b"x"},
    ],
    ids=[
        "surrogate-name",
        "surrogate-name-in-list",
        "nul-reserved",
        "nul",
        "surrogate-value",
        "int-value",
        "bytes-name",
        "empty-name",
    ],
)
def test_malformed_header_is_refused_naming_it_and_nothing_is_sent(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str, headers: object
) -> None:
    """Header names that cannot be UTF-8, carry NUL or are not str, and values that are not
    bytes, str or None, are refused with SerializationError before the client sees them."""
    catalog = provisioned(_contracts(topic_name, partitions=1, dlq=False))
    bootstrap = kafka_broker.bootstrap_servers
    with GovernedProducer(catalog, service="checkout", bootstrap_servers=bootstrap) as producer:
        with pytest.raises(SerializationError) as refused:
            producer.send(topic_name, b"v", key=b"k", headers=headers)  # type: ignore[arg-type]
        assert refused.value.topic == topic_name
        assert refused.value.field is not None
        assert refused.value.field.startswith("headers")
        assert "header" in str(refused.value)
        assert _marker_read(bootstrap, producer, topic_name) == [MARKER]


def test_nul_in_a_header_name_cannot_forge_the_reserved_event_type_header(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, tmp_path: Path, topic_name: str
) -> None:
    """librdkafka would cut ``event-type\\x00`` to ``event-type``: the name is refused instead."""
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    shutil.copy(EXAMPLE_SCHEMAS / "order_created.v1.avsc", schemas)
    catalog = provisioned(
        _contracts(topic_name, partitions=1, dlq=False).replace(
            'producers = ["checkout"]',
            'value_schema = "schemas/order_created.v1.avsc"\n    producers = ["checkout"]',
        )
    )
    bootstrap = kafka_broker.bootstrap_servers
    with GovernedProducer(catalog, service="checkout", bootstrap_servers=bootstrap) as producer:
        with pytest.raises(SerializationError, match="NUL") as refused:
            producer.send(
                topic_name, ORDER, key=b"k", headers={"event-type\x00": b"payments.Forged"}
            )
        assert refused.value.field == "headers['event-type\\x00']"
        producer.send_and_wait(topic_name, ORDER, key=b"k")
    [record] = read_all(bootstrap, topic_name)
    assert record.headers() == [("event-type", b"payments.OrderCreated")]


@pytest.mark.parametrize(
    ("key", "value", "field"),
    [("\ud800", b"v", "key"), (b"k", "caf\udce9", None)],
    ids=["key", "value"],
)
def test_lone_surrogate_in_a_key_or_value_is_a_serialization_error(
    kafka_broker: LocalBroker,
    provisioned: CatalogFactory,
    topic_name: str,
    key: object,
    value: object,
    field: str | None,
) -> None:
    """A str that cannot be UTF-8 is refused with SerializationError, not UnicodeEncodeError."""
    catalog = provisioned(_contracts(topic_name, partitions=1, dlq=False))
    bootstrap = kafka_broker.bootstrap_servers
    with GovernedProducer(catalog, service="checkout", bootstrap_servers=bootstrap) as producer:
        with pytest.raises(SerializationError, match="UTF-8") as refused:
            producer.send(topic_name, value, key=key)
        assert refused.value.field == field
        assert _marker_read(bootstrap, producer, topic_name) == [MARKER]


def test_lone_surrogate_in_an_avro_string_is_refused_with_its_field_path(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, tmp_path: Path, topic_name: str
) -> None:
    """A schema topic refuses a string field that cannot be UTF-8, naming the field."""
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    shutil.copy(EXAMPLE_SCHEMAS / "order_created.v1.avsc", schemas)
    catalog = provisioned(
        _contracts(topic_name, partitions=1, dlq=False).replace(
            'producers = ["checkout"]',
            'value_schema = "schemas/order_created.v1.avsc"\n    producers = ["checkout"]',
        )
    )
    bootstrap = kafka_broker.bootstrap_servers
    with GovernedProducer(catalog, service="checkout", bootstrap_servers=bootstrap) as producer:
        with pytest.raises(SerializationError) as refused:
            producer.send(topic_name, {**ORDER, "customer_id": "c-\ud800"}, key=b"k")
        assert refused.value.field == "customer_id"
        with pytest.raises(SerializationError) as refused_key:
            producer.send(topic_name, ORDER, key="o-\udfff")
        assert refused_key.value.field == "key"
        producer.send_and_wait(topic_name, ORDER, key=b"k")
    assert len(read_all(bootstrap, topic_name)) == 1


def test_failed_deliveries_release_their_payloads(
    provisioned: CatalogFactory, topic_name: str, unused_port: int
) -> None:
    """Failures whose futures were looked at keep no payload, and close() keeps none either."""
    catalog = provisioned(_contracts(topic_name, dlq=False), create=False)
    producer = GovernedProducer(
        catalog,
        service="checkout",
        bootstrap_servers=f"127.0.0.1:{unused_port}",
        verify_topics=False,
        overrides={"delivery.timeout.ms": 1000, "log_level": 0, "message.max.bytes": 2_000_000},
    )
    size = 500_000
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        futures = [producer.send(topic_name, bytes([i]) * size, key=b"k") for i in range(60)]
        errors = [f.exception(timeout=30) for f in futures]
        assert all(isinstance(e, DeliveryError) for e in errors)
        unobserved = [producer.send(topic_name, bytes([i]) * size, key=b"k") for i in range(60)]
        deadline = time.monotonic() + 30
        while not all(f.done() for f in unobserved) and time.monotonic() < deadline:
            time.sleep(0.05)
        del futures, unobserved
        with pytest.raises(DeliveryError) as at_close:
            producer.close()
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert at_close.value.failures  # still reported by close(), without their values
    assert "60 accepted records" in str(at_close.value)
    assert held < 5 * size, f"{held:,} bytes still held after 120 failed deliveries"


def test_failures_kept_for_close_are_bounded_by_bytes(
    provisioned: CatalogFactory, topic_name: str, unused_port: int
) -> None:
    """Unobserved failures of large-keyed records are counted exactly but kept within a budget."""
    catalog = provisioned(_contracts(topic_name, dlq=False), create=False)
    producer = GovernedProducer(
        catalog,
        service="checkout",
        bootstrap_servers=f"127.0.0.1:{unused_port}",
        verify_topics=False,
        overrides={"delivery.timeout.ms": 1000, "log_level": 0, "message.max.bytes": 2_000_000},
    )
    size = 200_000
    futures = [producer.send(topic_name, b"v", key=bytes([i]) * size) for i in range(100)]
    deadline = time.monotonic() + 30
    while not all(f.done() for f in futures) and time.monotonic() < deadline:
        time.sleep(0.05)
    with pytest.raises(DeliveryError) as at_close:
        producer.close()
    assert "100 accepted records" in str(at_close.value)
    kept = sum(len(f.key or b"") for f in at_close.value.failures)
    assert 0 < len(at_close.value.failures) < 100
    assert kept <= 8 * 1024 * 1024


def test_poll_batch_backpressure_bounds_what_waits_behind_an_unprocessed_record(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """A first record never marked processed holds everything behind it: the consumer pauses
    at max_in_flight records held, not only at max_in_flight unfinished ones."""
    catalog = provisioned(_contracts(topic_name, partitions=1, dlq=False))
    bootstrap = kafka_broker.bootstrap_servers
    with GovernedProducer(catalog, service="checkout", bootstrap_servers=bootstrap) as producer:
        for i in range(3000):
            producer.send(topic_name, str(i).encode(), key=b"k")
    with GovernedConsumer(
        catalog,
        service="billing",
        group_id=f"held-{topic_name}",
        topics=[topic_name],
        bootstrap_servers=bootstrap,
        overrides=FAST,
        max_in_flight=200,
        resume_below=100,
    ) as consumer:
        taken: list[Record] = []
        deadline = time.monotonic() + 30
        while len(taken) < 3000 and time.monotonic() < deadline:
            batch = consumer.poll_batch(max_records=100, timeout=0.2)
            for record in batch:
                if record.offset != 0:
                    consumer.mark_processed(record)
            taken += batch
            if consumer.paused and not batch:
                break
        assert consumer.paused
        assert consumer.in_flight == 1  # only the first record is unfinished ...
        assert len(taken) <= 200 + 100  # ... yet intake stopped at the limit, plus one batch
        first = next(r for r in taken if r.offset == 0)
        consumer.mark_processed(first)  # the whole prefix becomes committable
        assert not consumer.paused


def test_run_counts_undecodable_records_it_dead_letters(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, tmp_path: Path, topic_name: str
) -> None:
    """Undecodable records that run() dead-letters count as handled and as dead-lettered."""
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    shutil.copy(EXAMPLE_SCHEMAS / "order_created.v1.avsc", schemas)
    catalog = provisioned(
        _contracts(topic_name, partitions=1).replace(
            'producers = ["checkout"]',
            'value_schema = "schemas/order_created.v1.avsc"\n    producers = ["checkout"]',
            1,
        )
    )
    bootstrap = kafka_broker.bootstrap_servers
    raw = Producer({"bootstrap.servers": bootstrap})
    for i in range(10):
        raw.produce(topic_name, f"not avro {i}".encode(), b"k")
    raw.flush(10)
    with GovernedProducer(catalog, service="checkout", bootstrap_servers=bootstrap) as producer:
        for i in range(3):
            producer.send_and_wait(topic_name, {**ORDER, "order_id": f"o-{i}"}, key=b"k")
    handled: list[Record] = []
    with GovernedConsumer(
        catalog,
        service="billing",
        group_id=f"undecodable-{topic_name}",
        topics=[topic_name],
        bootstrap_servers=bootstrap,
        overrides=FAST,
    ) as consumer:
        started = time.monotonic()
        summary = consumer.run(handled.append, max_records=13, timeout=60)
        elapsed = time.monotonic() - started
    assert [r.value["order_id"] for r in handled] == ["o-0", "o-1", "o-2"]
    assert summary.records == 13
    assert summary.dead_lettered == 10
    assert elapsed < 45  # it returned at max_records, not at its timeout
    assert len(read_all(bootstrap, f"{topic_name}.dlq")) == 10


def test_a_record_with_a_header_name_a_producer_refuses_is_still_dead_lettered(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, tmp_path: Path, topic_name: str
) -> None:
    """Another client may write an empty header name; dead-lettering that record goes on."""
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    shutil.copy(EXAMPLE_SCHEMAS / "order_created.v1.avsc", schemas)
    catalog = provisioned(
        _contracts(topic_name, partitions=1).replace(
            'producers = ["checkout"]',
            'value_schema = "schemas/order_created.v1.avsc"\n    producers = ["checkout"]',
            1,
        )
    )
    bootstrap = kafka_broker.bootstrap_servers
    raw = Producer({"bootstrap.servers": bootstrap})
    raw.produce(topic_name, b"not avro", b"k", headers=[("", b"anonymous"), ("kept", b"1")])
    raw.flush(10)
    with GovernedConsumer(
        catalog,
        service="billing",
        group_id=f"empty-header-{topic_name}",
        topics=[topic_name],
        bootstrap_servers=bootstrap,
        overrides=FAST,
    ) as consumer:
        summary = consumer.run(lambda record: None, max_records=1, timeout=30)
    assert summary.dead_lettered == 1
    [letter] = read_all(bootstrap, f"{topic_name}.dlq")
    assert letter.value() == b"not avro"
    assert ("kept", b"1") in (letter.headers() or [])
