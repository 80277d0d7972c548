"""The governed producer under broker and network faults: nothing lost, nothing doubled, no
future left hanging.

Every test runs against a broker of its own (behind a FaultProxy where the network is at
fault) and reads the topic back with a raw consumer to check what really landed.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import attrs
import pytest
from confluent_kafka import KafkaError, Message, Producer

from conftest import Report
from governed_kafka import Catalog, DeliveryError, DeliveryFuture, GovernedProducer, profiles
from governed_kafka.testing import ApiKey, LocalBroker
from kafka_helpers import read_all, unique_topic, write_catalog

pytestmark = pytest.mark.slow

RECORDS = 20_000
PARTITIONS = 6

#: Small batches (20 records, no linger) turn 20,000 records into about a thousand
#: Produce requests, so that 2% of responses is a score of lost acknowledgements.
SMALL_BATCHES = attrs.evolve(profiles.LOW_LATENCY, name="small-batches", batch_num_messages=20)


def _catalog(tmp_path: Path, broker: LocalBroker, topic: str) -> Catalog:
    """A contract for one keyed topic produced by "checkout", created on ``broker``."""
    path = write_catalog(
        tmp_path,
        f"""
        [policy]
        min_replication_factor = 1
        min_insync_replicas = 1

        [[topics]]
        name = "{topic}"
        owner = "team-test"
        partitions = {PARTITIONS}
        replication_factor = 1
        retention_ms = 3600000
        key = "required"
        producers = ["checkout"]
        """,
    )
    broker.create_topic(topic, partitions=PARTITIONS)
    return Catalog.load(path)


def _value(i: int) -> bytes:
    return f"order-{i:05d}".encode()


def _key(i: int) -> bytes:
    return f"customer-{i % 250}".encode()


def _copies(records: list[Message]) -> Counter[bytes | None]:
    return Counter(r.value() for r in records)


def _wait_all(futures: list[DeliveryFuture], deadline: float) -> list[DeliveryError | None]:
    """Each future's error (None if delivered); TimeoutError if one is unresolved at deadline."""
    return [f.exception(max(0.0, deadline - time.monotonic())) for f in futures]


def test_governed_producer_delivers_every_record_once_while_responses_drop(
    proxied_kafka_broker: LocalBroker, tmp_path: Path, fault_report: Report
) -> None:
    """With 2% of responses dropped, 20,000 keyed records are all delivered, each exactly once."""
    broker = proxied_kafka_broker
    proxy = broker.proxy
    assert proxy is not None
    topic = unique_topic("faults")
    catalog = _catalog(tmp_path, broker, topic)
    proxy.drop_responses(0.02)
    with GovernedProducer(
        catalog,
        service="checkout",
        bootstrap_servers=broker.bootstrap_servers,
        profile=SMALL_BATCHES,
    ) as producer:
        futures = [producer.send(topic, _value(i), key=_key(i)) for i in range(RECORDS)]
        metadata = [f.result(60) for f in futures]
    dropped = proxy.stats().responses_dropped
    proxy.heal()

    records = read_all(broker.bootstrap_servers, topic, timeout=60)
    landed = {r.value(): (r.partition(), r.offset()) for r in records}
    reported = {_value(i): (m.partition, m.offset) for i, m in enumerate(metadata)}
    unknown = [v for v, (_, offset) in reported.items() if offset is None]
    fault_report(
        f"governed producer: {dropped} responses dropped -> 0 duplicates; "
        f"{len(unknown)} records acknowledged as duplicates of an earlier write (offset None)"
    )
    assert dropped >= 10
    assert _copies(records) == Counter(_value(i) for i in range(RECORDS))
    # Every position reported is where the record is (the broker did not give the
    # offset of batches it acknowledged as duplicates).
    assert {v: p for v, (p, _) in reported.items()} == {v: p for v, (p, _) in landed.items()}
    known = {v: at for v, at in reported.items() if at[1] is not None}
    assert known == {v: landed[v] for v in known}


def test_raw_producer_without_idempotence_duplicates_under_the_same_faults(
    proxied_kafka_broker: LocalBroker, fault_report: Report
) -> None:
    """A raw non-idempotent producer delivers every record at least once; its copies are
    reported, not asserted: they are why the governed producer is idempotent.
    """
    broker = proxied_kafka_broker
    proxy = broker.proxy
    assert proxy is not None
    topic = unique_topic("faults")
    broker.create_topic(topic, partitions=PARTITIONS)
    producer = Producer(
        {
            "bootstrap.servers": broker.bootstrap_servers,
            "enable.idempotence": False,
            "acks": "all",
            "retries": 2_147_483_647,
            "max.in.flight.requests.per.connection": 5,
            "linger.ms": 0,
            "batch.num.messages": 20,
            "partitioner": "murmur2_random",
        }
    )
    failures: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            failures.append(err)

    proxy.drop_responses(0.02)
    for i in range(RECORDS):
        producer.produce(topic, _value(i), key=_key(i), on_delivery=on_delivery)
        producer.poll(0)
    assert producer.flush(60) == 0
    dropped = proxy.stats().responses_dropped
    proxy.heal()

    copies = _copies(read_all(broker.bootstrap_servers, topic, timeout=60))
    duplicates = sum(n - 1 for n in copies.values())
    doubled = sum(1 for n in copies.values() if n > 1)
    fault_report(
        f"raw producer (acks=all, enable.idempotence=false, retries on): {dropped} responses "
        f"dropped -> {duplicates} duplicate records ({doubled} of {RECORDS} values written "
        f"more than once, {len(failures)} delivery failures)"
    )
    assert dropped >= 10
    assert not failures
    assert set(copies) == {_value(i) for i in range(RECORDS)}


def test_governed_producer_rides_out_a_stalled_broker(tmp_path: Path) -> None:
    """A broker frozen (SIGSTOP) for 6 s mid-stream loses and doubles nothing, and every
    future resolves once it resumes.
    """
    with LocalBroker() as broker:
        topic = unique_topic("faults")
        catalog = _catalog(tmp_path, broker, topic)
        # Requests time out during the stall (2 s < 6 s) and are retried while the
        # frozen broker still holds the originals: the duplicate-making case.
        producer = GovernedProducer(
            catalog,
            service="checkout",
            bootstrap_servers=broker.bootstrap_servers,
            profile=SMALL_BATCHES,
            overrides={"socket.timeout.ms": 2000},
        )
        half = RECORDS // 2
        futures = [producer.send(topic, _value(i), key=_key(i)) for i in range(half)]
        broker.pause()
        paused_at = time.monotonic()
        try:
            futures += [producer.send(topic, _value(i), key=_key(i)) for i in range(half, RECORDS)]
            time.sleep(max(0.0, paused_at + 6.0 - time.monotonic()))
            unresolved_during_stall = sum(not f.done() for f in futures)
        finally:
            broker.resume()
        errors = _wait_all(futures, time.monotonic() + 60)
        producer.close()

        records = read_all(broker.bootstrap_servers, topic, timeout=60)
    assert unresolved_during_stall > 0
    assert errors == [None] * RECORDS
    assert _copies(records) == Counter(_value(i) for i in range(RECORDS))


def test_batch_acknowledged_as_a_duplicate_reports_no_offset_rather_than_a_wrong_one(
    proxied_kafka_broker: LocalBroker, tmp_path: Path
) -> None:
    """A retried batch the broker already had is delivered once, and its records report no
    offset instead of other records' offsets.
    """
    broker = proxied_kafka_broker
    proxy = broker.proxy
    assert proxy is not None
    topic = unique_topic("faults")
    catalog = _catalog(tmp_path, broker, topic)
    key = b"one-partition"
    with GovernedProducer(
        catalog, service="checkout", bootstrap_servers=broker.bootstrap_servers
    ) as producer:
        before = [producer.send_and_wait(topic, b"before-%d" % i, key=key) for i in range(5)]
        proxy.drop_responses(1.0, api_keys=[ApiKey.PRODUCE])
        futures = [producer.send(topic, _value(i), key=key) for i in range(10)]
        deadline = time.monotonic() + 30
        while proxy.stats().responses_dropped == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        proxy.heal()  # the retry reaches the broker, which already has the batch
        retried = [f.result(30) for f in futures]

    partition = before[0].partition
    records = [r for r in read_all(broker.bootstrap_servers, topic) if r.partition() == partition]
    assert proxy.stats().responses_dropped >= 1
    assert [r.value() for r in records] == [b"before-%d" % i for i in range(5)] + [
        _value(i) for i in range(10)
    ]
    assert [m.offset for m in before] == [0, 1, 2, 3, 4]
    assert [(m.partition, m.offset) for m in retried] == [(partition, None)] * 10


def _send_until_killed(
    producer: GovernedProducer, topic: str, broker: LocalBroker
) -> list[DeliveryFuture]:
    """Kill the broker mid-stream: once the first deliveries are back, while later records
    are in flight or queued; then send more to the dead broker.
    """
    futures = [producer.send(topic, _value(i), key=_key(i)) for i in range(2000)]
    futures[100].result(30)
    broker.kill()
    futures += [producer.send(topic, _value(i), key=_key(i)) for i in range(2000, 3000)]
    return futures


DELIVERY_TIMEOUT_S = 3.0


def _doomed_producer(catalog: Catalog, broker: LocalBroker) -> GovernedProducer:
    return GovernedProducer(
        catalog,
        service="checkout",
        bootstrap_servers=broker.bootstrap_servers,
        profile=SMALL_BATCHES,
        overrides={"delivery.timeout.ms": int(DELIVERY_TIMEOUT_S * 1000)},
    )


def test_killed_broker_fails_every_outstanding_send_within_the_delivery_timeout(
    tmp_path: Path,
) -> None:
    """After the broker dies, each send resolves within delivery.timeout.ms: delivered with
    an offset or failed with DeliveryError, never both, never neither.
    """
    with LocalBroker() as broker:
        topic = unique_topic("faults")
        catalog = _catalog(tmp_path, broker, topic)
        producer = _doomed_producer(catalog, broker)
        futures = _send_until_killed(producer, topic, broker)
        # delivery.timeout.ms runs from each send; the last send came after the kill.
        deadline = time.monotonic() + DELIVERY_TIMEOUT_S + 5.0
        errors = _wait_all(futures, deadline)
        producer.close()  # every outcome was looked at: nothing left to report
    delivered = [f.result(0) for f, e in zip(futures, errors, strict=True) if e is None]
    failed = [e for e in errors if e is not None]

    assert len(delivered) + len(failed) == len(futures)
    assert delivered  # the broker died mid-stream, not before it
    assert failed
    assert all(isinstance(e, DeliveryError) and e.code == "_MSG_TIMED_OUT" for e in failed)
    assert all(e.topic == topic and e.key is not None for e in failed)
    # Offsets are assigned by the broker alone: each partition's delivered offsets are
    # exactly 0..n-1, so no delivery was reported that the broker had not written.
    by_partition: dict[int, list[int]] = {}
    for m in delivered:
        assert m.offset is not None
        by_partition.setdefault(m.partition, []).append(m.offset)
    for offsets in by_partition.values():
        assert sorted(offsets) == list(range(len(offsets)))


def test_close_reports_every_record_the_dead_broker_never_got(tmp_path: Path) -> None:
    """close() after the broker died raises DeliveryError counting every undelivered record
    nobody looked at, even beyond the 1000 it lists.
    """
    with LocalBroker() as broker:
        topic = unique_topic("faults")
        catalog = _catalog(tmp_path, broker, topic)
        producer = _doomed_producer(catalog, broker)
        producer.send_and_wait(topic, b"before", key=b"k", timeout=30)
        broker.kill()
        looked_at = producer.send(topic, b"looked-at", key=b"k")
        ignored: list[DeliveryFuture] = [
            producer.send(topic, _value(i), key=_key(i)) for i in range(1500)
        ]
        assert isinstance(looked_at.exception(DELIVERY_TIMEOUT_S + 10), DeliveryError)
        with pytest.raises(DeliveryError) as at_close:
            producer.close()
    error = at_close.value
    assert str(error).startswith("1500 accepted records were not delivered")
    assert "1501 failed in all" in str(error)
    assert len(error.failures) == 1000
    assert {f.code for f in error.failures} == {"_MSG_TIMED_OUT"}
    assert all(isinstance(f.exception(0), DeliveryError) for f in ignored)
