"""KafkaCluster with real JVMs: starting, failing to start, restarts, SASL and ACLs."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient
from test_local_broker import _alive, _wait_dead

from governed_kafka.testing import BrokerStartError, KafkaCluster
from kafka_helpers import read_all

pytestmark = pytest.mark.apache_kafka


def test_a_taken_port_fails_the_start_with_the_nodes_log() -> None:
    """A client port someone else holds stops the start quickly, showing the node's log."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        # The bound is for a JVM starved of CPU (other tests share two cores): the node
        # fails as soon as it binds, which an idle machine reaches in seconds.
        with pytest.raises(BrokerStartError, match="Address already in use") as failed:
            KafkaCluster(brokers=1, ports=[port], startup_timeout=180).start()
    assert time.monotonic() - started < 180
    assert "Address already in use" in failed.value.log


def test_a_node_that_exits_at_start_raises_with_its_last_log_lines() -> None:
    """A broker setting the broker refuses makes the node exit; the error carries its log."""
    cluster = KafkaCluster(brokers=1, broker_config={"num.io.threads": "zero"})
    with pytest.raises(BrokerStartError, match=r"num\.io\.threads") as failed:
        cluster.start()
    assert "exit" in str(failed.value)
    assert not cluster._nodes  # nothing left running or on disk


def test_start_never_waits_past_the_startup_timeout() -> None:
    """A node that can never be ready (its quorum lacks a voter) fails after startup_timeout."""
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        nowhere = unused.getsockname()[1]
    cluster = KafkaCluster(brokers=1, startup_timeout=30)
    original = cluster._properties

    def two_voters(node: object) -> str:
        text = original(node)  # type: ignore[arg-type]
        voters = next(line for line in text.splitlines() if line.startswith("controller.q"))
        return text.replace(voters, f"{voters},2@127.0.0.1:{nowhere}")

    cluster._properties = two_voters  # type: ignore[method-assign]
    started = time.monotonic()
    # On a loaded machine the timeout may already run out while the storage is formatted.
    with pytest.raises(BrokerStartError, match=r"within (the startup timeout \()?30 s"):
        cluster.start()
    assert time.monotonic() - started < 30 + 10


def test_a_killed_node_starts_again_with_its_data() -> None:
    """kill() then start() of a node keeps its log directory: the records are still there."""
    with KafkaCluster(brokers=1) as cluster:
        cluster.create_topic("kept.over.restart.v1", replication_factor=1)
        producer = Producer({"bootstrap.servers": cluster.bootstrap_servers})
        for n in range(10):
            producer.produce("kept.over.restart.v1", str(n).encode())
        assert producer.flush(30) == 0
        pid = cluster.pid(1)
        cluster.kill(1)
        assert not cluster.running(1)
        assert pid is not None
        assert _wait_dead(pid)
        cluster.start(1)
        assert cluster.running(1)
        records = read_all(cluster.bootstrap_servers, "kept.over.restart.v1", timeout=60)
    assert [r.value() for r in records] == [str(n).encode() for n in range(10)]


def test_the_jvms_die_with_a_killed_owner_that_started_them_from_a_thread(
    tmp_path: Path,
) -> None:
    """A cluster started from a worker thread dies with its process when that is SIGKILLed."""
    pid_file = tmp_path / "jvm.pid"
    script = textwrap.dedent(
        f"""
        import threading, time
        from governed_kafka.testing import KafkaCluster
        clusters = []
        thread = threading.Thread(target=lambda: clusters.append(KafkaCluster().start()))
        thread.start()
        thread.join()
        open({str(pid_file)!r}, "w").write(str(clusters[0].pid(1)))
        time.sleep(120)
        """
    )
    owner = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 120
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline, "the owner never started its cluster"
            assert owner.poll() is None, "the owner died before starting its cluster"
            time.sleep(0.1)
        jvm = int(pid_file.read_text())
        assert _alive(jvm)
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait()
    assert _wait_dead(jvm), "the broker JVM outlived the process that started it"


def test_sasl_users_and_the_authorizer_tell_principals_apart() -> None:
    """With SASL and StandardAuthorizer, admin (the super user) creates and writes a topic;
    a user without ACLs is refused by the broker; an unauthenticated client gets nowhere."""
    users = {"checkout": "checkout-secret"}
    with KafkaCluster(brokers=1, sasl_users=users, authorizer=True) as cluster:
        topic = "secured.orders.created.v1"
        cluster.create_topic(topic, replication_factor=1)
        admin = Producer(cluster.client_config())
        admin.produce(topic, b"by-admin")
        assert admin.flush(30) == 0
        denied: list[str] = []
        checkout = Producer(
            {**cluster.client_config("checkout"), "error_cb": lambda e: denied.append(e.name())}
        )
        checkout.produce(topic, b"by-checkout", on_delivery=lambda e, m: denied.append(e.name()))
        checkout.flush(30)
        assert "TOPIC_AUTHORIZATION_FAILED" in denied
        plain = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
        with pytest.raises(KafkaException):
            plain.list_topics(timeout=3)
        plain_mechanism = {**cluster.client_config("checkout"), "sasl.mechanism": "PLAIN"}
        assert AdminClient(plain_mechanism).list_topics(timeout=10).brokers
        records = read_all(
            cluster.bootstrap_servers,
            topic,
            timeout=30,
            config=cluster.security_config(),
        )
    assert [r.value() for r in records] == [b"by-admin"]
