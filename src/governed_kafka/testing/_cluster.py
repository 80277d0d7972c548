"""A real Apache Kafka cluster in KRaft mode, one JVM per node, on loopback ports."""

from __future__ import annotations

import base64
import logging
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Final

from .. import _kafka
from ._broker import BrokerStartError
from ._kafka_dist import DEFAULT_VERSION, KafkaDist, find_java, find_kafka
from ._tied import TiedProcess

__all__ = ["DEFAULT_JVM_OPTIONS", "KafkaCluster"]

_log = logging.getLogger("governed_kafka.testing")

#: JVM options of every node: a small heap and the serial collector, so that three
#: nodes fit beside the tests on a two-core machine.
DEFAULT_JVM_OPTIONS: Final = (
    "-Xms96m",
    "-Xmx384m",
    "-XX:+UseSerialGC",
    "-XX:MaxDirectMemorySize=128m",
    "-Djava.awt.headless=true",
)

#: The SASL mechanisms the SASL listener offers; ``client_config()`` uses the first.
SASL_MECHANISMS: Final = ("SCRAM-SHA-512", "PLAIN")

#: The super user of an authorized cluster; brokers and controllers authenticate as it.
ADMIN_USER: Final = "admin"

_HOST: Final = "127.0.0.1"

#: Longest a clean stop of one node may take before it is killed (controlled shutdown
#: moves its partition leaderships away first).
_STOP_TIMEOUT_S: Final = 30.0

_SAFE = re.compile(r"[A-Za-z0-9._-]+")
_SAFE_PASSWORD = re.compile(r"[A-Za-z0-9._~!@#$%^&*()+-]+")

#: Broker settings for a small, fast test cluster (every one can be overridden with
#: ``broker_config=``). Group joins do not wait for more members; threads and buffers are
#: sized for two cores; a dead broker is fenced within seconds instead of ~10 s; the log
#: cleaner looks for work every second, so compaction can be observed in a test.
_TEST_DEFAULTS: Final[Mapping[str, str]] = {
    "group.initial.rebalance.delay.ms": "0",
    "auto.create.topics.enable": "false",
    "num.partitions": "1",
    "offsets.topic.num.partitions": "10",
    "transaction.state.log.num.partitions": "10",
    "num.network.threads": "2",
    "num.io.threads": "2",
    "background.threads": "2",
    "num.replica.fetchers": "1",
    "num.recovery.threads.per.data.dir": "1",
    "log.cleaner.threads": "1",
    "log.cleaner.dedupe.buffer.size": str(16 * 1024 * 1024),
    "log.cleaner.backoff.ms": "1000",
    "broker.heartbeat.interval.ms": "500",
    "broker.session.timeout.ms": "6000",
    "replica.lag.time.max.ms": "10000",
    "group.consumer.min.heartbeat.interval.ms": "500",
    "group.consumer.heartbeat.interval.ms": "1000",
    "group.consumer.min.session.timeout.ms": "6000",
    "group.consumer.session.timeout.ms": "10000",
}

_LOG4J = """\
status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = out
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = WARN
logger.state.name = state.change.logger
logger.state.level = WARN
"""


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((_HOST, 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _cluster_id() -> str:
    """A random Kafka cluster id: a UUID in URL-safe base64, never starting with ``-``
    (the storage tool would read it as an option; Kafka's own ids avoid it too)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not text.startswith("-"):
            return text


class _Node:
    """One KRaft node (controller and broker in one JVM): its ports, files and process."""

    def __init__(self, node_id: int, root: Path, port: int, controller_port: int) -> None:
        self.id = node_id
        self.port = port
        self.controller_port = controller_port
        self.dir = root / f"node-{node_id}"
        self.data = self.dir / "data"
        self.properties = self.dir / "server.properties"
        self.log = self.dir / "node.log"
        self.process: TiedProcess | None = None
        self.paused = False

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.running

    def tail(self, lines: int = 40) -> str:
        if not self.log.exists():
            return ""
        text = self.log.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


class KafkaCluster:
    """Apache Kafka in KRaft mode: ``brokers`` nodes, each its own JVM, on loopback.

    Every node is a combined controller and broker with its own free loopback ports and
    a log directory that survives :meth:`kill`/:meth:`stop` and :meth:`start` of that
    node; the whole cluster's files are removed when the cluster stops. Every JVM dies
    with the process that started it, however that process ends.

    :param brokers: how many nodes (1 or more; 3 for replication with min ISR 2).
    :param version: the Apache Kafka release (4.x) to run.
    :param racks: one ``broker.rack`` per node; turns on the rack-aware replica selector
        so consumers with ``client.rack`` fetch from a replica in their rack.
    :param sasl_users: ``{user: password}``. Clients then connect over SASL_PLAINTEXT
        (SCRAM-SHA-512 or PLAIN) only. An ``admin`` user is added when missing.
    :param authorizer: turn on ``StandardAuthorizer`` with ``admin`` as the only super
        user; needs ``sasl_users``.
    :param kafka_home: an unpacked Kafka distribution to take the jars from (else
        ``$GOVERNED_KAFKA_KAFKA_HOME``, else the cache, else Maven into the cache).
    :param startup_timeout: longest wait, in seconds, for the cluster (or one node) to
        be ready; past it, start raises :class:`BrokerStartError` with the nodes' logs.
    :param broker_config: further ``server.properties`` entries for every node.
    :param ports: the client ports of the nodes, instead of free ones.
    :param jvm_options: options of every node's JVM.
    """

    def __init__(
        self,
        *,
        brokers: int = 1,
        version: str = DEFAULT_VERSION,
        racks: Sequence[str] | None = None,
        sasl_users: Mapping[str, str] | None = None,
        authorizer: bool = False,
        kafka_home: str | Path | None = None,
        startup_timeout: float = 120.0,
        broker_config: Mapping[str, str] | None = None,
        ports: Sequence[int] | None = None,
        jvm_options: Sequence[str] = DEFAULT_JVM_OPTIONS,
    ) -> None:
        if brokers < 1:
            msg = f"brokers must be >= 1, got {brokers!r}"
            raise ValueError(msg)
        if racks is not None and len(racks) != brokers:
            msg = f"racks needs one rack per broker ({brokers}), got {len(racks)}: {racks!r}"
            raise ValueError(msg)
        if ports is not None and len(ports) != brokers:
            msg = f"ports needs one port per broker ({brokers}), got {len(ports)}"
            raise ValueError(msg)
        if authorizer and not sasl_users:
            msg = (
                "authorizer=True needs sasl_users: without authentication every client is "
                "the same anonymous principal, so ACLs could not tell services apart"
            )
            raise ValueError(msg)
        self.users = self._check_users(sasl_users)
        self.brokers = brokers
        self.racks = tuple(racks) if racks is not None else None
        self.authorizer = authorizer
        self.kafka_home = kafka_home
        self.requested_version = version
        self.startup_timeout = startup_timeout
        self.broker_config = dict(broker_config or {})
        self.ports = tuple(ports) if ports is not None else None
        self.jvm_options = tuple(jvm_options)
        self._dist: KafkaDist | None = None
        self._java = ""
        self._root: Path | None = None
        self._nodes: dict[int, _Node] = {}
        self._lock = threading.RLock()

    @staticmethod
    def _check_users(users: Mapping[str, str] | None) -> dict[str, str]:
        if not users:
            return {}
        checked = {}
        for name, password in users.items():
            if not isinstance(name, str) or not _SAFE.fullmatch(name):
                msg = f"sasl_users: user name {name!r} must be letters, digits, '.', '_' or '-'"
                raise ValueError(msg)
            if not isinstance(password, str) or not _SAFE_PASSWORD.fullmatch(password):
                msg = (
                    f"sasl_users: the password of {name!r} must be non-empty and free of "
                    "quotes, commas, brackets, '=', ';', backslashes and whitespace"
                )
                raise ValueError(msg)
            checked[name] = password
        checked.setdefault(ADMIN_USER, secrets.token_urlsafe(18))
        return checked

    # ------------------------------------------------------------------ addresses

    @property
    def version(self) -> str:
        """The Kafka release the nodes run (known once the jars were found)."""
        return self._dist.version if self._dist is not None else self.requested_version

    @property
    def broker_ids(self) -> tuple[int, ...]:
        """The node ids, ``(1, 2, ...)``."""
        return tuple(range(1, self.brokers + 1))

    @property
    def bootstrap_servers(self) -> str:
        """Every node's client address, ``"127.0.0.1:P1,127.0.0.1:P2,..."``."""
        if not self._nodes:
            msg = "KafkaCluster is not started"
            raise RuntimeError(msg)
        return ",".join(f"{_HOST}:{n.port}" for n in self._nodes.values())

    def security_config(self, user: str | None = None) -> dict[str, str]:
        """librdkafka security settings to connect as ``user`` (default: ``admin``).

        Empty for a cluster without SASL. Pass as ``overrides=`` to the governed clients.
        """
        if not self.users:
            if user is not None:
                msg = f"this cluster has no SASL users; it cannot connect as {user!r}"
                raise ValueError(msg)
            return {}
        name = ADMIN_USER if user is None else user
        if name not in self.users:
            msg = f"no SASL user {name!r} on this cluster (users: {sorted(self.users)})"
            raise ValueError(msg)
        return {
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": SASL_MECHANISMS[0],
            "sasl.username": name,
            "sasl.password": self.users[name],
        }

    def client_config(self, user: str | None = None) -> dict[str, str]:
        """librdkafka settings to connect as ``user``: ``bootstrap.servers`` and security."""
        return {"bootstrap.servers": self.bootstrap_servers, **self.security_config(user)}

    # ------------------------------------------------------------------ lifecycle

    def prepare(self) -> KafkaCluster:
        """Find Java and the broker's jars (fetching them with Maven on a first run),
        starting nothing; :meth:`start` does this first.

        Raises :class:`KafkaClusterUnavailable` saying what to install. Useful as a
        set-up step of its own, e.g. in CI before the tests run.
        """
        with self._lock:
            if self._dist is None:
                self._java, _ = find_java()
                self._dist = find_kafka(self.requested_version, self.kafka_home)
            return self

    def start(self, node_id: int | None = None) -> KafkaCluster:
        """Start the cluster, or (with ``node_id``) start that one node again.

        Returns when every running node answers Metadata and lists every running node as
        a registered broker, which needs an elected controller quorum leader.
        """
        with self._lock:
            if node_id is not None:
                node = self._node(node_id)
                if not node.running:
                    self._spawn(node)
                    self._wait_ready([node])
                return self
            if self._nodes:
                for node in self._nodes.values():
                    if not node.running:
                        self._spawn(node)
                self._wait_ready(list(self._nodes.values()))
                return self
            self.prepare()
            attempts = 1 if self.ports is not None else 3
            for attempt in range(1, attempts + 1):
                try:
                    self._start_fresh()
                except BrokerStartError as exc:
                    bind_failed = "Address already in use" in exc.log
                    self._teardown()
                    if attempt == attempts or not bind_failed:
                        raise
                    _log.info("a port was taken while the cluster started; retrying")
                else:
                    return self
            raise AssertionError("unreachable")  # pragma: no cover

    def _start_fresh(self) -> None:
        self._root = Path(tempfile.mkdtemp(prefix="governed-kafka-cluster-"))
        (self._root / "log4j2.properties").write_text(_LOG4J, encoding="utf-8")
        ports = list(self.ports) if self.ports is not None else _free_ports(self.brokers)
        controller_ports = _free_ports(self.brokers)
        self._nodes = {
            node_id: _Node(node_id, self._root, port, cport)
            for node_id, port, cport in zip(self.broker_ids, ports, controller_ports, strict=True)
        }
        cluster_id = _cluster_id()
        for node in self._nodes.values():
            node.data.mkdir(parents=True)
            node.properties.write_text(self._properties(node), encoding="utf-8")
        deadline = time.monotonic() + self.startup_timeout
        with ThreadPoolExecutor(max_workers=self.brokers) as pool:
            list(pool.map(lambda n: self._format(n, cluster_id, deadline), self._nodes.values()))
        for node in self._nodes.values():
            self._spawn(node)
        self._wait_ready(list(self._nodes.values()), deadline)
        _log.info("Kafka %s cluster ready at %s", self.version, self.bootstrap_servers)

    def _properties(self, node: _Node) -> str:
        n = self.brokers
        voters = ",".join(f"{m.id}@{_HOST}:{m.controller_port}" for m in self._nodes.values())
        props: dict[str, str] = {
            "process.roles": "broker,controller",
            "node.id": str(node.id),
            "controller.quorum.voters": voters,
            "controller.listener.names": "CONTROLLER",
            "log.dirs": str(node.data),
            "offsets.topic.replication.factor": str(min(3, n)),
            "transaction.state.log.replication.factor": str(min(3, n)),
            "transaction.state.log.min.isr": str(min(2, n)),
            **_TEST_DEFAULTS,
        }
        if self.users:
            props.update(self._sasl_properties(node))
        else:
            props.update(
                {
                    "listeners": f"PLAINTEXT://{_HOST}:{node.port},"
                    f"CONTROLLER://{_HOST}:{node.controller_port}",
                    "advertised.listeners": f"PLAINTEXT://{_HOST}:{node.port}",
                    "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    "inter.broker.listener.name": "PLAINTEXT",
                }
            )
        if self.racks is not None:
            props["broker.rack"] = self.racks[node.id - 1]
            props["replica.selector.class"] = (
                "org.apache.kafka.common.replica.RackAwareReplicaSelector"
            )
        if self.authorizer:
            props["authorizer.class.name"] = (
                "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
            )
            props["super.users"] = f"User:{ADMIN_USER}"
            props["allow.everyone.if.no.acl.found"] = "false"
        props.update(self.broker_config)
        return "".join(f"{key}={value}\n" for key, value in props.items())

    def _sasl_properties(self, node: _Node) -> dict[str, str]:
        admin = self.users[ADMIN_USER]
        plain_users = " ".join(f'user_{u}="{p}"' for u, p in self.users.items())
        plain = (
            "org.apache.kafka.common.security.plain.PlainLoginModule required "
            f'username="{ADMIN_USER}" password="{admin}" {plain_users};'
        )
        scram = (
            "org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{ADMIN_USER}" password="{admin}";'
        )
        return {
            "listeners": f"SASL_PLAINTEXT://{_HOST}:{node.port},"
            f"CONTROLLER://{_HOST}:{node.controller_port}",
            "advertised.listeners": f"SASL_PLAINTEXT://{_HOST}:{node.port}",
            "listener.security.protocol.map": "SASL_PLAINTEXT:SASL_PLAINTEXT,"
            "CONTROLLER:SASL_PLAINTEXT",
            "inter.broker.listener.name": "SASL_PLAINTEXT",
            "sasl.enabled.mechanisms": ",".join(SASL_MECHANISMS),
            "sasl.mechanism.inter.broker.protocol": "PLAIN",
            "sasl.mechanism.controller.protocol": "PLAIN",
            "listener.name.sasl_plaintext.plain.sasl.jaas.config": plain,
            "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config": scram,
            "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
            "listener.name.controller.plain.sasl.jaas.config": plain,
        }

    def _java_command(self, *args: str) -> list[str]:
        assert self._dist is not None
        assert self._root is not None
        return [
            self._java,
            *self.jvm_options,
            f"-Dlog4j2.configurationFile={self._root / 'log4j2.properties'}",
            "-cp",
            self._dist.classpath,
            *args,
        ]

    def _format(self, node: _Node, cluster_id: str, deadline: float) -> None:
        args = ["kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(node.properties)]
        for user, password in self.users.items():
            args += ["--add-scram", f"{SASL_MECHANISMS[0]}=[name={user},password={password}]"]
        command = self._java_command(*args)
        command.insert(1 + len(self.jvm_options), "-Xmx128m")  # the formatter needs little
        process = TiedProcess(command, log_path=node.log)
        try:
            code = process.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            process.kill()
            msg = (
                f"formatting the storage of node {node.id} did not finish within the "
                f"startup timeout ({self.startup_timeout:g} s):\n{node.tail()}"
            )
            raise BrokerStartError(msg, log=node.tail()) from None
        if code != 0:
            msg = f"formatting the storage of node {node.id} failed (exit {code}):\n{node.tail()}"
            raise BrokerStartError(msg, log=node.tail())

    def _spawn(self, node: _Node) -> None:
        command = self._java_command("kafka.Kafka", str(node.properties))
        try:
            node.process = TiedProcess(command, log_path=node.log, cwd=node.dir)
        except OSError as exc:
            msg = f"node {node.id} could not be started: {exc}\n{node.tail()}"
            raise BrokerStartError(msg, log=node.tail()) from exc
        node.paused = False

    def _wait_ready(self, nodes: Sequence[_Node], deadline: float | None = None) -> None:
        if deadline is None:
            deadline = time.monotonic() + self.startup_timeout
        expected = {n.id for n in self._nodes.values() if n.running and not n.paused}
        for node in nodes:
            self._wait_node(node, expected, deadline)

    def _wait_node(self, node: _Node, expected: set[int], deadline: float) -> None:
        config = {
            "bootstrap.servers": f"{_HOST}:{node.port}",
            **self.security_config(),
            "socket.connection.setup.timeout.ms": 2000,
        }
        admin = _kafka.Admin(config, timeout=self.startup_timeout)
        seen: set[int] = set()
        while True:
            if not node.running:
                code = node.process.returncode if node.process is not None else None
                msg = f"node {node.id} exited during startup (exit code {code}):\n{node.tail()}"
                raise BrokerStartError(msg, log=node.tail())
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                msg = (
                    f"node {node.id} was not ready within {self.startup_timeout:g} s "
                    f"(registered brokers it saw: {sorted(seen)}, expected {sorted(expected)}):"
                    f"\n{node.tail()}"
                )
                raise BrokerStartError(msg, log=node.tail())
            brokers = admin.brokers(timeout=min(remaining, 2.0))
            if brokers is None:
                time.sleep(0.2)
                continue
            seen = brokers
            if expected <= seen:
                return
            time.sleep(0.2)

    def _node(self, node_id: int) -> _Node:
        if not self._nodes:
            msg = "KafkaCluster is not started"
            raise RuntimeError(msg)
        try:
            return self._nodes[node_id]
        except KeyError:
            msg = f"no node {node_id!r} in this cluster (nodes: {list(self._nodes)})"
            raise ValueError(msg) from None

    def stop(self, node_id: int | None = None) -> None:
        """Stop one node cleanly (``SIGTERM``, then ``SIGKILL`` after 30 s), or the whole
        cluster; a whole cluster's files are removed."""
        with self._lock:
            if node_id is not None:
                node = self._node(node_id)
                if node.process is not None:
                    node.process.terminate(_STOP_TIMEOUT_S)
                node.paused = False
                return
            self._teardown()

    def _teardown(self) -> None:
        running = [n for n in self._nodes.values() if n.process is not None]
        for node in running:
            assert node.process is not None
            node.process.signal(signal.SIGCONT)
            node.process.signal(signal.SIGTERM)
        for node in running:
            assert node.process is not None
            # Brokers of a cluster that stops all at once cannot hand leadership to
            # anyone; do not wait for them long.
            node.process.terminate(10.0)
        self._nodes = {}
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None

    def kill(self, node_id: int) -> None:
        """``SIGKILL`` one node; its log directory stays for :meth:`start`."""
        with self._lock:
            node = self._node(node_id)
            if node.process is not None:
                node.process.kill()
            node.paused = False

    def pause(self, node_id: int) -> None:
        """Freeze one node (``SIGSTOP``): its connections stay open, nothing answers."""
        with self._lock:
            node = self._node(node_id)
            if node.process is not None and node.running:
                node.process.signal(signal.SIGSTOP)
                node.paused = True

    def resume(self, node_id: int) -> None:
        """Continue a paused node (``SIGCONT``)."""
        with self._lock:
            node = self._node(node_id)
            if node.process is not None:
                node.process.signal(signal.SIGCONT)
            node.paused = False

    def running(self, node_id: int) -> bool:
        """Whether node ``node_id``'s JVM is alive (a paused node is alive)."""
        return self._node(node_id).running

    def pid(self, node_id: int) -> int | None:
        """The JVM pid of node ``node_id`` while it runs."""
        node = self._node(node_id)
        return node.process.pid if node.running and node.process is not None else None

    def log_tail(self, node_id: int, lines: int = 40) -> str:
        """The last lines node ``node_id`` logged."""
        return self._node(node_id).tail(lines)

    def restore(self) -> None:
        """Bring back every node a test stopped, killed or paused; wait until ready."""
        with self._lock:
            down = [n for n in self._nodes.values() if not n.running or n.paused]
            if not down:
                return
            for node in down:
                if node.paused and node.process is not None:
                    node.process.signal(signal.SIGCONT)
                    node.paused = False
                if not node.running:
                    self._spawn(node)
            self._wait_ready(list(self._nodes.values()))

    # ------------------------------------------------------------------ topics

    def _admin(self, timeout: float) -> _kafka.Admin:
        return _kafka.Admin(self.client_config(), timeout=timeout)

    def create_topic(
        self,
        name: str,
        *,
        partitions: int = 1,
        replication_factor: int | None = None,
        config: Mapping[str, str] | None = None,
        timeout: float = 30.0,
    ) -> None:
        """Create a topic outside any contract (RF defaults to ``min(3, brokers)``)."""
        rf = replication_factor if replication_factor is not None else min(3, self.brokers)
        created = self._admin(timeout).create_topics([(name, partitions, rf, dict(config or {}))])
        error = created[name]
        if error is not None:
            raise error
        self.wait_in_sync([name], timeout=timeout)

    def wait_in_sync(self, topics: Iterable[str] | None = None, *, timeout: float = 60.0) -> None:
        """Wait until every partition (of ``topics``, or of every topic) has a leader and
        all its replicas in sync; raises :class:`TimeoutError` naming those that do not."""
        wanted = set(topics) if topics is not None else None
        admin = self._admin(timeout)
        deadline = time.monotonic() + timeout
        behind: list[str] = []
        while time.monotonic() < deadline:
            found = admin.replicas_behind(wanted, timeout=5)
            if found is not None:
                behind = found
                if not behind:
                    return
            time.sleep(0.2)
        msg = f"not in sync within {timeout:g} s: {', '.join(sorted(behind)[:20])}"
        raise TimeoutError(msg)

    # ------------------------------------------------------------------ protocol

    def __enter__(self) -> KafkaCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        if not self._nodes:
            return f"<KafkaCluster {self.version} x{self.brokers} stopped>"
        states = ", ".join(
            f"{n.id}:{'paused' if n.paused else 'up' if n.running else 'down'}"
            for n in self._nodes.values()
        )
        return f"<KafkaCluster {self.version} at {self.bootstrap_servers} ({states})>"
