"""FaultProxy in front of the real broker: each fault does what it says, and only that."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator

import pytest
from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import AdminClient

from governed_kafka.testing import ApiKey, FaultProxy, LocalBroker
from kafka_helpers import read_all, unique_topic, values


def _request(api_key: int, correlation_id: int, body: bytes = b"") -> bytes:
    """A version-0 request frame with a null client id."""
    payload = struct.pack(">hhih", api_key, 0, correlation_id, -1) + body
    return struct.pack(">i", len(payload)) + payload


def _api_versions(correlation_id: int) -> bytes:
    return _request(ApiKey.API_VERSIONS, correlation_id)


def _metadata(correlation_id: int) -> bytes:
    return _request(ApiKey.METADATA, correlation_id, struct.pack(">i", 0))


def _receive(sock: socket.socket, size: int) -> bytes | None:
    """Exactly ``size`` bytes, or None if the other side closed the connection first."""
    data = b""
    while len(data) < size:
        try:
            chunk = sock.recv(size - len(data))
        except ConnectionResetError:
            return None
        if not chunk:
            return None
        data += chunk
    return data


def _response(sock: socket.socket) -> int | None:
    """The correlation id of the next response, or None if the connection was closed."""
    head = _receive(sock, 4)
    if head is None:
        return None
    body = _receive(sock, struct.unpack(">i", head)[0])
    return None if body is None else int(struct.unpack(">i", body[:4])[0])


def _connect(proxy: FaultProxy, timeout: float = 10.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", proxy.port), timeout=timeout)


def _round_trip(proxy: FaultProxy, correlation_id: int = 1) -> int | None:
    with _connect(proxy) as sock:
        sock.sendall(_api_versions(correlation_id))
        return _response(sock)


def _answered(proxy: FaultProxy) -> bool:
    """Whether a fresh connection gets an answer; a reset may come as early as connect()."""
    try:
        return _round_trip(proxy) is not None
    except (ConnectionResetError, BrokenPipeError):
        return False


@pytest.fixture
def proxy(tansu_broker: LocalBroker) -> Iterator[FaultProxy]:
    """A proxy of this test's own in front of the session broker (seed 0)."""
    with FaultProxy(tansu_broker.bootstrap_servers, seed=0) as started:
        yield started


def test_healthy_proxy_passes_records_through_unchanged(
    proxied_kafka_broker: LocalBroker,
) -> None:
    """Records produced through a proxy without faults land as sent, and nothing is dropped."""
    proxy = proxied_kafka_broker.proxy
    assert proxy is not None
    topic = unique_topic()
    proxied_kafka_broker.create_topic(topic)
    producer = Producer({"bootstrap.servers": proxied_kafka_broker.bootstrap_servers})
    for i in range(100):
        producer.produce(topic, f"v{i}".encode(), key=b"k")
    assert producer.flush(15) == 0
    assert values(read_all(proxied_kafka_broker.bootstrap_servers, topic)) == [
        f"v{i}".encode() for i in range(100)
    ]
    stats = proxy.stats()
    assert stats.requests_forwarded > 0
    assert stats.responses_forwarded > 0
    assert (stats.responses_dropped, stats.connections_closed) == (0, 0)


def test_proxied_broker_advertises_the_proxy_address(proxied_kafka_broker: LocalBroker) -> None:
    """A broker behind a proxy names the proxy in Metadata, so clients reconnect through it."""
    proxy = proxied_kafka_broker.proxy
    assert proxy is not None
    admin = AdminClient({"bootstrap.servers": proxied_kafka_broker.direct_bootstrap_servers})
    brokers = admin.list_topics(timeout=10).brokers.values()
    assert [(b.host, b.port) for b in brokers] == [("127.0.0.1", proxy.port)]
    assert proxied_kafka_broker.bootstrap_servers == proxy.bootstrap_servers


def test_dropped_produce_response_leaves_the_write_in_the_log(
    proxied_kafka_broker: LocalBroker,
) -> None:
    """A dropped response fails the client's request although the broker applied it."""
    proxy = proxied_kafka_broker.proxy
    assert proxy is not None
    topic = unique_topic()
    proxied_kafka_broker.create_topic(topic)
    producer = Producer(
        {
            "bootstrap.servers": proxied_kafka_broker.bootstrap_servers,
            "enable.idempotence": False,
            "acks": "all",
            "retries": 0,
        }
    )
    producer.list_topics(timeout=10)  # connected before the fault, so only Produce is hit
    reports: list[KafkaError | None] = []
    proxy.drop_responses(1.0, api_keys=[ApiKey.PRODUCE])
    producer.produce(topic, b"did-it-happen", on_delivery=lambda err, msg: reports.append(err))
    producer.flush(15)
    proxy.heal()
    assert len(reports) == 1
    assert reports[0] is not None
    assert values(read_all(proxied_kafka_broker.bootstrap_servers, topic)) == [b"did-it-happen"]
    stats = proxy.stats()
    assert (stats.responses_dropped, stats.connections_closed) == (1, 1)


def test_drops_only_responses_of_the_given_request_types(proxy: FaultProxy) -> None:
    """With api_keys=, other responses pass while the named ones are dropped."""
    proxy.drop_responses(1.0, api_keys=[ApiKey.METADATA])
    with _connect(proxy) as sock:
        sock.sendall(_api_versions(7))
        assert _response(sock) == 7
        sock.sendall(_metadata(8))
        assert _response(sock) is None
    assert proxy.stats().responses_dropped == 1


def _drop_pattern(proxy: FaultProxy, requests: int) -> list[bool]:
    """Send ApiVersions one at a time, reconnecting after each drop; True where dropped."""
    pattern = []
    sock = _connect(proxy)
    try:
        for correlation_id in range(requests):
            sock.sendall(_api_versions(correlation_id))
            answered = _response(sock)
            pattern.append(answered is None)
            if answered is None:
                sock.close()
                sock = _connect(proxy)
    finally:
        sock.close()
    return pattern


def test_same_seed_drops_the_same_responses(tansu_broker: LocalBroker) -> None:
    """Two proxies with one seed drop the same responses of one traffic; another seed differs."""
    patterns = []
    for seed in (11, 11, 12):
        with FaultProxy(tansu_broker.bootstrap_servers, seed=seed) as proxy:
            proxy.drop_responses(0.3)
            patterns.append(_drop_pattern(proxy, 40))
    first, again, other = patterns
    assert first == again
    assert 0 < sum(first) < len(first)
    assert other != first


def test_latency_holds_each_response_back(proxy: FaultProxy) -> None:
    """With add_latency(s), a round trip takes at least s seconds."""
    proxy.add_latency(0.3)
    started = time.monotonic()
    assert _round_trip(proxy) == 1
    assert time.monotonic() - started >= 0.3


def test_latency_with_jitter_keeps_responses_in_order(proxy: FaultProxy) -> None:
    """Random extra latency never reorders the responses of one connection."""
    proxy.add_latency(0.01, jitter=0.2)
    with _connect(proxy) as sock:
        sock.sendall(b"".join(_api_versions(i) for i in range(10)))
        assert [_response(sock) for _ in range(10)] == list(range(10))


def test_stall_holds_all_traffic_until_it_ends(proxy: FaultProxy) -> None:
    """During stall(s) nothing comes back; afterwards the held response arrives."""
    with _connect(proxy) as sock:
        proxy.stall(1.5)
        sock.sendall(_api_versions(3))
        sock.settimeout(0.5)
        with pytest.raises(socket.timeout):
            sock.recv(1)
        sock.settimeout(10)
        assert _response(sock) == 3


def test_stall_without_duration_lasts_until_heal(proxy: FaultProxy) -> None:
    """stall() with no duration holds traffic until heal() is called."""
    with _connect(proxy) as sock:
        proxy.stall()
        sock.sendall(_api_versions(4))
        sock.settimeout(1.0)
        with pytest.raises(socket.timeout):
            sock.recv(1)
        proxy.heal()
        sock.settimeout(10)
        assert _response(sock) == 4


def test_refused_connections_are_reset_while_open_ones_go_on(proxy: FaultProxy) -> None:
    """refuse_connections() resets new connections at once and leaves open ones working."""
    with _connect(proxy) as open_before:
        open_before.sendall(_api_versions(2))
        assert _response(open_before) == 2  # accepted by the proxy, not only by the kernel
        proxy.refuse_connections()
        assert not _answered(proxy)
        open_before.sendall(_api_versions(5))
        assert _response(open_before) == 5
    assert proxy.stats().connections_refused == 1
    proxy.refuse_connections(False)
    assert _round_trip(proxy) == 1


def test_close_connections_hangs_up_every_open_connection(proxy: FaultProxy) -> None:
    """close_connections() closes the open connections, counts them, and new ones work."""
    sockets = [_connect(proxy) for _ in range(2)]
    try:
        for sock in sockets:
            sock.sendall(_api_versions(1))
            assert _response(sock) == 1
        assert proxy.close_connections() == 2
        for sock in sockets:
            assert _receive(sock, 1) is None
    finally:
        for sock in sockets:
            sock.close()
    assert proxy.stats().connections_closed == 2
    assert _round_trip(proxy) == 1


def test_heal_ends_every_fault_at_once(proxy: FaultProxy) -> None:
    """After heal(), a proxy that dropped, delayed, stalled and refused answers normally."""
    proxy.drop_responses(1.0)
    proxy.add_latency(30)
    proxy.stall()
    proxy.refuse_connections()
    proxy.heal()
    with _connect(proxy) as sock:
        sock.settimeout(5)
        sock.sendall(_api_versions(9))
        assert _response(sock) == 9


def test_unreachable_broker_closes_the_client_connection(tansu_broker: LocalBroker) -> None:
    """With no broker behind it, the proxy accepts, then closes, and counts the failure."""
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        nothing_there = f"127.0.0.1:{placeholder.getsockname()[1]}"
    with FaultProxy(nothing_there) as proxy:
        assert not _answered(proxy)
        assert proxy.stats().upstream_failures == 1


def test_bytes_that_are_not_kafka_framing_close_the_connection(proxy: FaultProxy) -> None:
    """A client speaking another protocol is disconnected instead of stalling the proxy."""
    with _connect(proxy) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _receive(sock, 1) is None
    assert _round_trip(proxy) == 1


def test_stop_closes_connections_and_stops_listening(tansu_broker: LocalBroker) -> None:
    """After stop() open connections are closed and new ones are refused by the system."""
    proxy = FaultProxy(tansu_broker.bootstrap_servers).start()
    port = proxy.port
    with _connect(proxy) as sock:
        proxy.stop()
        assert not proxy.running
        assert _receive(sock, 1) is None
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_restarted_broker_behind_a_proxy_is_reached_at_the_same_address(
    proxied_kafka_broker: LocalBroker,
) -> None:
    """LocalBroker.restart() keeps its proxy, so clients find the new broker where they were."""
    address = proxied_kafka_broker.bootstrap_servers
    proxied_kafka_broker.restart()
    assert proxied_kafka_broker.bootstrap_servers == address
    topic = unique_topic()
    proxied_kafka_broker.create_topic(topic)
    producer = Producer({"bootstrap.servers": address})
    producer.produce(topic, b"after-restart")
    assert producer.flush(15) == 0
    assert values(read_all(address, topic)) == [b"after-restart"]


def test_a_broker_cannot_take_both_a_proxy_and_an_advertised_port() -> None:
    """LocalBroker refuses advertised_port= with proxy=: the proxy is what it advertises."""
    with pytest.raises(ValueError, match="advertised_port or proxy"):
        LocalBroker(proxy=FaultProxy(), advertised_port=1234)


def test_open_connections_counts_the_connections_passing_through(proxy: FaultProxy) -> None:
    """open_connections is the number of client connections the proxy is serving now."""
    sockets = [_connect(proxy) for _ in range(3)]
    try:
        for sock in sockets:
            sock.sendall(_api_versions(1))
            assert _response(sock) == 1
        assert proxy.open_connections == 3
        sockets.pop().close()
        deadline = time.monotonic() + 5
        while proxy.open_connections != 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proxy.open_connections == 2
    finally:
        for sock in sockets:
            sock.close()
