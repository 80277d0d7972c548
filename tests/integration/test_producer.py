"""GovernedProducer against a real broker: what lands, where, and what is refused."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from conftest import CatalogFactory
from governed_kafka import (
    BackpressureTimeout,
    Catalog,
    ClosedError,
    DeliveryError,
    GovernanceViolation,
    GovernedProducer,
    SerializationError,
    profiles,
)
from governed_kafka.testing import KafkaCluster, LocalBroker
from kafka_helpers import create_topics, read_all, values
from murmur2 import java_partition


def _topic(name: str, *, partitions: int = 1, extra: str = "") -> str:
    return f"""
    [[topics]]
    name = "{name}"
    owner = "team-test"
    partitions = {partitions}
    replication_factor = 1
    retention_ms = 3600000
    producers = ["checkout"]
    consumers = ["billing"]
    {extra}
    """


def test_sends_land_in_order_with_consecutive_offsets(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """Governed sends to one partition land in send order at offsets 0..n-1."""
    catalog = provisioned(_topic(topic_name))
    with GovernedProducer(
        catalog, service="checkout", bootstrap_servers=kafka_broker.bootstrap_servers
    ) as producer:
        futures = [producer.send(topic_name, f"order-{i}", key=b"k") for i in range(50)]
        metadata = [f.result(10) for f in futures]
    assert [m.offset for m in metadata] == list(range(50))
    assert {(m.topic, m.partition) for m in metadata} == {(topic_name, 0)}
    assert values(read_all(kafka_broker.bootstrap_servers, topic_name)) == [
        f"order-{i}".encode() for i in range(50)
    ]


def test_send_and_wait_returns_metadata_of_the_written_record(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """send_and_wait returns the topic, partition, offset and timestamp the broker assigned."""
    catalog = provisioned(_topic(topic_name))
    before_ms = int(time.time() * 1000)
    with GovernedProducer(
        catalog, service="checkout", bootstrap_servers=kafka_broker.bootstrap_servers
    ) as producer:
        first = producer.send_and_wait(topic_name, b"a", key="k1", headers={"trace": "x"})
        second = producer.send_and_wait(topic_name, b"b", key="k2")
    assert (first.topic, first.partition, first.offset) == (topic_name, 0, 0)
    assert second.offset == 1
    assert first.timestamp is not None
    assert before_ms - 1000 <= first.timestamp <= int(time.time() * 1000) + 1000
    record = read_all(kafka_broker.bootstrap_servers, topic_name)[0]
    assert record.key() == b"k1"
    assert record.headers() == [("trace", b"x")]


def test_same_key_lands_on_the_java_clients_partition(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """Every key lands on the partition Kafka's Java murmur2 partitioner computes for it."""
    partitions = 12
    catalog = provisioned(_topic(topic_name, partitions=partitions))
    keys = [f"customer-{i}".encode() for i in range(300)]
    with GovernedProducer(
        catalog, service="checkout", bootstrap_servers=kafka_broker.bootstrap_servers
    ) as producer:
        futures = {key: producer.send(topic_name, b"v", key=key) for key in keys}
        landed = {key: f.result(10).partition for key, f in futures.items()}
    expected = {key: java_partition(key, partitions) for key in keys}
    assert landed == expected
    assert len(set(landed.values())) == partitions  # the keys really spread


def test_str_and_bytes_keys_hash_identically(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """A str key is sent as its UTF-8 bytes, so it lands where the bytes key lands."""
    catalog = provisioned(_topic(topic_name, partitions=8))
    with GovernedProducer(
        catalog, service="checkout", bootstrap_servers=kafka_broker.bootstrap_servers
    ) as producer:
        pairs = [
            (
                producer.send_and_wait(topic_name, b"v", key=f"kéy-{i}").partition,
                producer.send_and_wait(topic_name, b"v", key=f"kéy-{i}".encode()).partition,
            )
            for i in range(20)
        ]
    assert all(a == b for a, b in pairs)


def _assert_only_marker(kafka_broker: LocalBroker, producer: GovernedProducer, topic: str) -> None:
    """Send a marker record and check it is the only record of the topic, at offset 0."""
    producer.send_and_wait(topic, b"marker", key=b"marker")
    records = read_all(kafka_broker.bootstrap_servers, topic)
    assert [(r.offset(), r.value()) for r in records] == [(0, b"marker")]


def test_topic_without_contract_is_refused_and_nothing_is_written(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """A send to a topic with no contract raises GovernanceViolation and writes nothing there."""
    catalog = provisioned(_topic(topic_name))
    rogue = topic_name.replace(".v1", ".v2")
    kafka_broker.create_topic(rogue)
    with GovernedProducer(
        catalog, service="checkout", bootstrap_servers=kafka_broker.bootstrap_servers
    ) as producer:
        with pytest.raises(GovernanceViolation, match="no contract") as refused:
            producer.send(rogue, b"x", key=b"k")
        producer.flush(10)
    assert refused.value.rule == "contract.missing"
    assert refused.value.topic == rogue
    assert read_all(kafka_broker.bootstrap_servers, rogue) == []


def test_service_that_is_not_a_listed_producer_is_refused(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """A service missing from the contract's producers cannot send, and nothing is written."""
    catalog = provisioned(_topic(topic_name))
    with (
        GovernedProducer(
            catalog, service="analytics", bootstrap_servers=kafka_broker.bootstrap_servers
        ) as intruder,
        pytest.raises(GovernanceViolation) as refused,
    ):
        intruder.send(topic_name, b"x", key=b"k")
    assert refused.value.rule == "producer.not-listed"
    assert refused.value.value == "analytics"
    assert "checkout" in str(refused.value)
    with GovernedProducer(
        catalog, service="checkout", bootstrap_servers=kafka_broker.bootstrap_servers
    ) as producer:
        _assert_only_marker(kafka_broker, producer, topic_name)


@pytest.mark.parametrize(
    ("extra", "send_kwargs", "rule"),
    [
        ('key = "required"', {"value": b"x"}, "key.required"),
        ('key = "forbidden"', {"value": b"x", "key": b"k"}, "key.forbidden"),
        ('key = "optional"', {"value": None, "key": b"k"}, "tombstone.not-compacted"),
    ],
    ids=["missing-required-key", "key-on-forbidden", "tombstone-on-delete-topic"],
)
def test_contract_refusals_write_nothing(
    kafka_broker: LocalBroker,
    provisioned: CatalogFactory,
    topic_name: str,
    extra: str,
    send_kwargs: dict[str, object],
    rule: str,
) -> None:
    """Each contract rule refuses its send with GovernanceViolation, and the topic stays empty."""
    catalog = provisioned(_topic(topic_name, extra=extra))
    with GovernedProducer(
        catalog, service="checkout", bootstrap_servers=kafka_broker.bootstrap_servers
    ) as producer:
        value = send_kwargs.pop("value")
        with pytest.raises(GovernanceViolation) as refused:
            producer.send(topic_name, value, **send_kwargs)  # type: ignore[arg-type]
        assert refused.value.rule == rule
        assert refused.value.topic == topic_name
        assert topic_name in str(refused.value)
        if rule == "key.forbidden":
            producer.send_and_wait(topic_name, b"marker")
            records = read_all(kafka_broker.bootstrap_servers, topic_name)
            assert [(r.offset(), r.value(), r.key()) for r in records] == [(0, b"marker", None)]
        else:
            _assert_only_marker(kafka_broker, producer, topic_name)


def test_compacted_topic_refuses_keyless_records_but_takes_tombstones(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """A compacted topic refuses keyless records (even with key optional) and takes tombstones."""
    catalog = provisioned(_topic(topic_name, extra='cleanup_policy = "compact"\nkey = "optional"'))
    with GovernedProducer(
        catalog, service="checkout", bootstrap_servers=kafka_broker.bootstrap_servers
    ) as producer:
        with pytest.raises(GovernanceViolation, match="compacted") as refused:
            producer.send(topic_name, b"x")
        assert refused.value.rule == "key.required"
        producer.send_and_wait(topic_name, b"state", key=b"account-1")
        producer.send_and_wait(topic_name, None, key=b"account-1")
    records = read_all(kafka_broker.bootstrap_servers, topic_name)
    assert [(r.key(), r.value()) for r in records] == [
        (b"account-1", b"state"),
        (b"account-1", None),
    ]


def test_value_of_the_wrong_type_is_refused_naming_the_topic(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """A dict sent to a raw-bytes topic raises SerializationError naming the topic."""
    catalog = provisioned(_topic(topic_name))
    with GovernedProducer(
        catalog, service="checkout", bootstrap_servers=kafka_broker.bootstrap_servers
    ) as producer:
        with pytest.raises(SerializationError, match=topic_name) as refused:
            producer.send(topic_name, {"id": 1}, key=b"k")
        assert refused.value.topic == topic_name
        with pytest.raises(SerializationError, match="key") as bad_key:
            producer.send(topic_name, b"x", key=42)
        assert bad_key.value.field == "key"
        with pytest.raises(SerializationError, match="header"):
            producer.send(topic_name, b"x", key=b"k", headers={"n": 1})  # type: ignore[dict-item]
        _assert_only_marker(kafka_broker, producer, topic_name)


def test_close_delivers_everything_accepted(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """Records accepted by send() and never waited on are all delivered by close()."""
    catalog = provisioned(_topic(topic_name, partitions=3))
    producer = GovernedProducer(
        catalog,
        service="checkout",
        bootstrap_servers=kafka_broker.bootstrap_servers,
        profile=profiles.HIGH_THROUGHPUT,
    )
    futures = [producer.send(topic_name, str(i).encode(), key=str(i % 7)) for i in range(5000)]
    producer.close()
    assert all(f.done() for f in futures)
    assert all(f.exception(0) is None for f in futures)
    written = sorted(
        int(v or b"-1") for v in values(read_all(kafka_broker.bootstrap_servers, topic_name))
    )
    assert written == list(range(5000))


def test_delivery_reports_arrive_without_the_caller_polling(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """A done-callback fires for a single send although the caller never polls or waits."""
    catalog = provisioned(_topic(topic_name))
    delivered = threading.Event()
    with GovernedProducer(
        catalog, service="checkout", bootstrap_servers=kafka_broker.bootstrap_servers
    ) as producer:
        future = producer.send(topic_name, b"x", key=b"k")
        future.add_done_callback(lambda f: delivered.set())
        assert delivered.wait(10)
        assert future.result(0).offset == 0


def test_send_after_close_is_refused(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """Sending on a closed producer raises ClosedError instead of queueing into nothing."""
    catalog = provisioned(_topic(topic_name))
    producer = GovernedProducer(
        catalog, service="checkout", bootstrap_servers=kafka_broker.bootstrap_servers
    )
    producer.close()
    with pytest.raises(ClosedError):
        producer.send(topic_name, b"x", key=b"k")


def test_failed_delivery_resolves_the_future_and_close_reports_unobserved_ones(
    provisioned: CatalogFactory, topic_name: str
) -> None:
    """Records that time out fail their futures; close() raises only for those nobody looked at."""
    with LocalBroker() as broker:
        catalog = provisioned(_topic(topic_name), create=False)
        create_topics(broker.bootstrap_servers, [(topic_name, 1, {})])
        producer = GovernedProducer(
            catalog,
            service="checkout",
            bootstrap_servers=broker.bootstrap_servers,
            overrides={"delivery.timeout.ms": 1500},
        )
        producer.send_and_wait(topic_name, b"warm-up", key=b"k")
        broker.pause()
        try:
            looked_at = producer.send(topic_name, b"x", key=b"lost-1")
            ignored = producer.send(topic_name, b"y", key=b"lost-2")
            error = looked_at.exception(15)
            deadline = time.monotonic() + 15
            while not ignored.done() and time.monotonic() < deadline:
                time.sleep(0.05)  # done() does not count as looking at the outcome
        finally:
            broker.resume()
        assert isinstance(error, DeliveryError)
        assert error.topic == topic_name
        assert error.key == b"lost-1"
        assert error.code == "_MSG_TIMED_OUT"
        with pytest.raises(
            DeliveryError, match="1 accepted records were not delivered"
        ) as at_close:
            producer.close()
        assert [f.key for f in at_close.value.failures] == [b"lost-2"]


def test_record_over_the_client_size_limit_is_refused_at_send(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """A record above message.max.bytes raises DeliveryError from send(); nothing is written."""
    catalog = provisioned(_topic(topic_name))
    with GovernedProducer(
        catalog,
        service="checkout",
        bootstrap_servers=kafka_broker.bootstrap_servers,
        overrides={"message.max.bytes": 10_000},
    ) as producer:
        with pytest.raises(DeliveryError) as refused:
            producer.send(topic_name, b"x" * 20_000, key=b"big")
        assert refused.value.code == "MSG_SIZE_TOO_LARGE"
        assert refused.value.key == b"big"
        _assert_only_marker(kafka_broker, producer, topic_name)


def test_full_local_queue_blocks_then_raises_backpressure_timeout(
    provisioned: CatalogFactory, topic_name: str
) -> None:
    """With the broker frozen and a tiny queue, send() waits max_block_s and then refuses."""
    with LocalBroker() as broker:
        catalog = provisioned(_topic(topic_name), create=False)
        create_topics(broker.bootstrap_servers, [(topic_name, 1, {})])
        tiny = profiles.DURABLE.__class__(
            name="tiny",
            linger_ms=0,
            batch_size=1000,
            batch_num_messages=1,
            compression="none",
            queue_max_messages=5,
            queue_max_kbytes=1024,
        )
        producer = GovernedProducer(
            catalog,
            service="checkout",
            bootstrap_servers=broker.bootstrap_servers,
            profile=tiny,
            max_block_s=0.5,
            overrides={"delivery.timeout.ms": 20_000},
        )
        producer.send_and_wait(topic_name, b"warm-up", key=b"k")
        broker.pause()
        time.sleep(0.2)
        try:
            accepted = []
            started = time.monotonic()
            refused = None
            for i in range(100):
                try:
                    accepted.append(producer.send(topic_name, str(i).encode(), key=b"k"))
                except BackpressureTimeout as exc:
                    refused = exc
                    break
            waited = time.monotonic() - started
            pending = sum(not f.done() for f in accepted)
        finally:
            broker.resume()
        assert refused is not None, "100 sends into a 5-record queue were all accepted"
        assert refused.topic == topic_name
        assert 0.5 <= refused.waited_s < 5
        assert waited < 10
        assert 1 <= pending <= 5  # the queue bound, not an unbounded buffer
        producer.close()
        assert all(f.exception(0) is None for f in accepted)
        written = values(read_all(broker.bootstrap_servers, topic_name))
        assert written == [b"warm-up"] + [str(i).encode() for i in range(len(accepted))]


def test_concurrent_senders_lose_nothing(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """Four threads sending through one producer get every record delivered exactly once."""
    catalog = provisioned(_topic(topic_name, partitions=4))
    with GovernedProducer(
        catalog, service="checkout", bootstrap_servers=kafka_broker.bootstrap_servers
    ) as producer:

        def sender(n: int) -> None:
            for i in range(2000):
                producer.send(topic_name, f"{n}-{i}".encode(), key=f"{n}-{i % 10}")

        threads = [threading.Thread(target=sender, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    counts = Counter(values(read_all(kafka_broker.bootstrap_servers, topic_name)))
    assert len(counts) == 8000
    assert set(counts.values()) == {1}


def test_producer_only_routes_topics_it_may_write(
    kafka_broker: LocalBroker, tmp_path: object
) -> None:
    """A catalog with no topic for the service still builds a producer that refuses every send."""
    catalog = Catalog.from_dict(
        {
            "topics": [
                {"name": "a.b.c.v1", "partitions": 1, "replication_factor": 1, "producers": ["x"]}
            ]
        }
    )
    with (
        GovernedProducer(
            catalog, service="y", bootstrap_servers=kafka_broker.bootstrap_servers
        ) as producer,
        pytest.raises(GovernanceViolation) as refused,
    ):
        producer.send("a.b.c.v1", b"v")
    assert refused.value.rule == "producer.not-listed"


@pytest.mark.apache_kafka
def test_a_fatal_producer_error_refuses_every_later_send_naming_it(
    kafka_cluster: KafkaCluster, topic_name: str
) -> None:
    """After a fatal error, send() refuses each record with a DeliveryError naming that error.

    The fatal error is real: with ``enable.gapless.guarantee`` the idempotent producer
    gives up when the broker rejects a batch for good (here: larger than the topic's own
    ``max.message.bytes``, which the contract does not pin), as a gap would follow.
    """
    kafka_cluster.create_topic(topic_name, config={"max.message.bytes": "2000"})
    catalog = Catalog.from_dict(
        {
            "topics": [
                {
                    "name": topic_name,
                    "partitions": 1,
                    "replication_factor": 3,
                    "key": "optional",
                    "producers": ["checkout"],
                }
            ]
        }
    )
    with GovernedProducer(
        catalog,
        service="checkout",
        bootstrap_servers=kafka_cluster.bootstrap_servers,
        overrides={"enable.gapless.guarantee": True},
        verify_topics=False,
    ) as producer:
        producer.send_and_wait(topic_name, b"small", timeout=30)
        rejected = producer.send(topic_name, b"x" * 50_000).exception(30)
        assert rejected is not None
        assert rejected.code == "MSG_SIZE_TOO_LARGE"
        deadline = time.monotonic() + 30
        refused = None
        while refused is None and time.monotonic() < deadline:
            try:
                producer.send_and_wait(topic_name, b"after", timeout=30)
            except DeliveryError as error:
                refused = error
    assert refused is not None
    assert refused.fatal
    assert refused.code == "_GAPLESS_GUARANTEE"
    assert "fatal error" in str(refused)
    assert "_GAPLESS_GUARANTEE" in str(refused)
