"""Bad input the catalogue in docs/reliability.md lists, each with what the library does."""

from __future__ import annotations

import threading
import time

import pytest
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
)
from governed_kafka.testing import LocalBroker
from kafka_helpers import create_topics, read_all


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
