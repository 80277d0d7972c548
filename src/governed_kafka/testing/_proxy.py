"""A loopback TCP proxy in front of a Kafka broker that injects faults on command.

The proxy reads Kafka's framing (a 4-byte big-endian size before every request and
response) so that it can act on whole responses: drop one (the request reached the
broker, its answer never reaches the client), hold one back, or hold everything back.
It understands nothing else of the protocol, so it works with any broker and client
speaking plaintext Kafka.

All sockets live on one asyncio event loop in a background thread; the control methods
may be called from any thread and take effect before they return.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import enum
import logging
import random
import socket
import struct
import threading
from collections.abc import Callable, Collection
from types import TracebackType
from typing import Final, TypeVar

import attrs

__all__ = ["ApiKey", "FaultProxy", "FaultStats"]

_log = logging.getLogger("governed_kafka.testing.proxy")

_T = TypeVar("_T")

#: Largest frame the proxy accepts (bytes). Kafka's own limit for a request is 100 MiB
#: (``socket.request.max.bytes``); anything larger means the bytes are not Kafka framing
#: (TLS, HTTP, a client pointed at the wrong port) and the connection is closed.
MAX_FRAME_BYTES: Final = 1 << 30

#: How long a control call waits for the proxy's event loop to apply it (seconds).
_CONTROL_TIMEOUT_S: Final = 10.0

#: Bytes a connection's reader buffers before it stops reading from its socket. asyncio's
#: default (64 KiB) would pause and resume the socket many times for every 1 MiB batch.
_READ_BUFFER_BYTES: Final = 1 << 20

#: How many responses of one connection may wait in the proxy (held back by latency or
#: a stall) before it stops reading from the broker; TCP then pushes back on the broker.
_MAX_QUEUED_RESPONSES: Final = 256

_SIZE = struct.Struct(">i")
_LINGER_RESET = struct.pack("ii", 1, 0)


class ApiKey(enum.IntEnum):
    """Kafka request types, for :meth:`FaultProxy.drop_responses` ``api_keys=``."""

    PRODUCE = 0
    FETCH = 1
    LIST_OFFSETS = 2
    METADATA = 3
    OFFSET_COMMIT = 8
    OFFSET_FETCH = 9
    FIND_COORDINATOR = 10
    JOIN_GROUP = 11
    HEARTBEAT = 12
    LEAVE_GROUP = 13
    SYNC_GROUP = 14
    API_VERSIONS = 18
    CREATE_TOPICS = 19
    INIT_PRODUCER_ID = 22


@attrs.frozen(kw_only=True)
class FaultStats:
    """What a :class:`FaultProxy` did since it started: a snapshot of its counters."""

    #: Client connections accepted and connected through to the broker.
    connections_accepted: int
    #: Client connections reset at once because the proxy was refusing connections.
    connections_refused: int
    #: Client connections the proxy closed as a fault (a dropped response or
    #: :meth:`FaultProxy.close_connections`), not counting the refused ones.
    connections_closed: int
    #: Client connections closed because the broker could not be reached.
    upstream_failures: int
    #: Requests passed from clients to the broker.
    requests_forwarded: int
    #: Responses passed from the broker to clients.
    responses_forwarded: int
    #: Responses discarded by :meth:`FaultProxy.drop_responses` (each one closed its connection).
    responses_dropped: int
    #: Bytes passed to the broker (framing included).
    bytes_to_broker: int
    #: Bytes passed to clients (framing included).
    bytes_to_clients: int


class _Counters:
    """The mutable counters behind :class:`FaultStats`; touched only on the event loop."""

    def __init__(self) -> None:
        self.connections_accepted = 0
        self.connections_refused = 0
        self.connections_closed = 0
        self.upstream_failures = 0
        self.requests_forwarded = 0
        self.responses_forwarded = 0
        self.responses_dropped = 0
        self.bytes_to_broker = 0
        self.bytes_to_clients = 0

    def snapshot(self) -> FaultStats:
        return FaultStats(**vars(self))


class _ProtocolError(Exception):
    """The bytes on a connection are not Kafka framing."""


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    """One whole frame, size prefix included; ``IncompleteReadError`` at end of stream."""
    head = await reader.readexactly(4)
    (size,) = _SIZE.unpack(head)
    if not 0 < size <= MAX_FRAME_BYTES:
        msg = f"frame size {size} is not Kafka framing"
        raise _ProtocolError(msg)
    return head + await reader.readexactly(size)


def _parse_address(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        msg = f"expected 'host:port', got {address!r}"
        raise ValueError(msg)
    return host, int(port)


class _Connection:
    """One client connection and its connection to the broker."""

    __slots__ = ("api_keys", "client", "closed", "last_release", "upstream")

    def __init__(self, client: asyncio.StreamWriter, upstream: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream = upstream
        #: correlation id -> api key of the requests awaiting their response.
        self.api_keys: dict[bytes, int] = {}
        self.last_release = 0.0
        self.closed = False

    def close(self) -> None:
        """Close both sides; responses already written to the client are still sent."""
        if not self.closed:
            self.closed = True
            self.client.close()
            self.upstream.close()

    def abort(self) -> None:
        self.closed = True
        self.client.transport.abort()
        self.upstream.transport.abort()


class FaultProxy:
    """A loopback TCP proxy for Kafka traffic that drops, delays or stalls on command.

    Put it between clients and a broker, and make the broker advertise the proxy's
    address so that every connection the clients open goes through it
    (``LocalBroker(proxy=FaultProxy(seed=7))`` does both). Then, from the test:

    - :meth:`drop_responses`: discard a fraction of responses and close their
      connection; the request reached the broker, so the client cannot know whether
      its write happened;
    - :meth:`add_latency`: hold every response back for a while;
    - :meth:`stall`: pass nothing in either direction for a duration;
    - :meth:`refuse_connections`: reset every new connection at once;
    - :meth:`close_connections`: close every open connection now;
    - :meth:`heal`: back to normal.

    Random choices come from ``seed``: the same seed drops the same responses, by their
    order of arrival at the proxy. :meth:`stats` says what the proxy did.

    :param upstream: the broker, ``"host:port"``; may be set later through
        :attr:`upstream`, before clients connect.
    :param host: where to listen: loopback by default.
    :param port: where to listen: a free port by default.
    :param seed: seed of the random choices.
    """

    def __init__(
        self,
        upstream: str | None = None,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        seed: int = 0,
    ) -> None:
        self._upstream = _parse_address(upstream) if upstream is not None else None
        self.host = host
        self._requested_port = port or 0
        self._port: int | None = None
        self.seed = seed
        self._random = random.Random(seed)  # noqa: S311 - reproducible faults, not secrets
        self._counters = _Counters()
        self._connections: set[_Connection] = set()
        self._drop_fraction = 0.0
        self._drop_api_keys: frozenset[int] | None = None
        self._latency_s = 0.0
        self._jitter_s = 0.0
        self._refusing = False
        self._stall_timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._thread_id: int | None = None
        self._flowing: asyncio.Event | None = None
        self._stopping: asyncio.Event | None = None
        self._lifecycle = threading.Lock()

    # ------------------------------------------------------------------ addresses

    @property
    def port(self) -> int:
        """The port the proxy listens on (known once started)."""
        if self._port is None:
            msg = "FaultProxy is not started"
            raise RuntimeError(msg)
        return self._port

    @property
    def bootstrap_servers(self) -> str:
        """``host:port`` of the proxy, to hand to clients."""
        return f"{self.host}:{self.port}"

    @property
    def upstream(self) -> str | None:
        """The broker behind the proxy, ``"host:port"``."""
        return None if self._upstream is None else f"{self._upstream[0]}:{self._upstream[1]}"

    @upstream.setter
    def upstream(self, address: str) -> None:
        # One tuple assignment: connections opened from now on see the new broker.
        self._upstream = _parse_address(address)

    @property
    def running(self) -> bool:
        """Whether the proxy is listening."""
        return self._thread is not None and self._thread.is_alive()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FaultProxy:
        """Listen and serve in a background thread; return once the port is bound.

        A proxy started again after :meth:`stop` listens on the same port as before.
        """
        with self._lifecycle:
            if self.running:
                return self
            ready: concurrent.futures.Future[int] = concurrent.futures.Future()
            self._thread = threading.Thread(
                target=self._run, args=(ready,), name="governed-kafka-fault-proxy", daemon=True
            )
            self._thread.start()
            try:
                self._port = ready.result(_CONTROL_TIMEOUT_S)
            except BaseException:
                self._thread.join(_CONTROL_TIMEOUT_S)
                self._thread = None
                raise
            _log.info("fault proxy on %s -> %s", self.bootstrap_servers, self.upstream)
            return self

    def stop(self, timeout: float = 10.0) -> None:
        """Close every connection, stop listening and end the background thread."""
        with self._lifecycle:
            thread, loop, stopping = self._thread, self._loop, self._stopping
            if thread is None or loop is None or stopping is None:
                return
            with contextlib.suppress(RuntimeError):  # the loop already ended
                loop.call_soon_threadsafe(stopping.set)
            thread.join(timeout)
            self._thread = None

    def _run(self, ready: concurrent.futures.Future[int]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread_id = threading.get_ident()
        try:
            loop.run_until_complete(self._main(ready))
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            else:  # pragma: no cover - the loop itself failed after start
                _log.exception("fault proxy stopped on an error")
        finally:
            loop.close()

    async def _main(self, ready: concurrent.futures.Future[int]) -> None:
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._stopping = asyncio.Event()
        port = self._port if self._port is not None else self._requested_port
        server = await asyncio.start_server(
            self._serve, self.host, port, reuse_address=True, limit=_READ_BUFFER_BYTES
        )
        ready.set_result(server.sockets[0].getsockname()[1])
        try:
            await self._stopping.wait()
        finally:
            server.close()
            if self._stall_timer is not None:
                self._stall_timer.cancel()
            for connection in list(self._connections):
                connection.abort()
            current = asyncio.current_task()
            tasks = [t for t in asyncio.all_tasks() if t is not current]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            # A connection accepted while stopping has its handler cancelled before it
            # ran: asyncio closes its transport in a done-callback, and the close itself
            # takes another turn of the loop. Give them those turns before the loop ends,
            # or the client's socket stays open.
            for _ in range(3):
                await asyncio.sleep(0)
            await server.wait_closed()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.bootstrap_servers if self._port is not None else "not started"
        return f"<FaultProxy {where} -> {self.upstream} seed={self.seed}>"

    # ------------------------------------------------------------------ control

    def _control(self, action: Callable[[], _T]) -> _T:
        """Run ``action`` on the event loop and return its result."""
        loop = self._loop
        if not self.running or loop is None:
            msg = "FaultProxy is not running; start() it first"
            raise RuntimeError(msg)
        if threading.get_ident() == self._thread_id:
            return action()
        done: concurrent.futures.Future[_T] = concurrent.futures.Future()

        def run() -> None:
            try:
                done.set_result(action())
            except BaseException as exc:  # handed back to the caller's thread
                done.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return done.result(_CONTROL_TIMEOUT_S)

    def drop_responses(self, fraction: float, *, api_keys: Collection[int] | None = None) -> None:
        """From now on, drop each response with probability ``fraction`` and close its connection.

        The request was passed to the broker and acted upon; only its response is lost.
        ``api_keys`` limits the drops to responses of those request types
        (:class:`ApiKey`); by default every response may be dropped. ``0`` stops dropping.
        """
        if not 0.0 <= fraction <= 1.0:
            msg = f"drop_responses(fraction=...) must be between 0 and 1, got {fraction!r}"
            raise ValueError(msg)
        keys = None if api_keys is None else frozenset(int(k) for k in api_keys)

        def apply() -> None:
            self._drop_fraction = fraction
            self._drop_api_keys = keys

        self._control(apply)

    def add_latency(self, seconds: float, *, jitter: float = 0.0) -> None:
        """Hold every response back ``seconds`` (plus up to ``jitter`` more, at random).

        Responses of one connection keep their order. ``0`` removes the latency.
        """
        if seconds < 0 or jitter < 0:
            msg = f"add_latency() needs seconds >= 0 and jitter >= 0, got {seconds!r}, {jitter!r}"
            raise ValueError(msg)

        def apply() -> None:
            self._latency_s = seconds
            self._jitter_s = jitter

        self._control(apply)

    def stall(self, seconds: float | None = None) -> None:
        """Pass nothing, in either direction, for ``seconds`` (until :meth:`heal` if ``None``).

        Connections stay open and bytes wait in the proxy and the socket buffers, as
        with a broker that stopped answering. A new stall replaces the current one.
        """
        if seconds is not None and seconds < 0:
            msg = f"stall(seconds=...) must be >= 0, got {seconds!r}"
            raise ValueError(msg)

        def apply() -> None:
            assert self._flowing is not None
            assert self._loop is not None
            if self._stall_timer is not None:
                self._stall_timer.cancel()
                self._stall_timer = None
            self._flowing.clear()
            if seconds is not None:
                self._stall_timer = self._loop.call_later(seconds, self._flowing.set)

        self._control(apply)

    def refuse_connections(self, refuse: bool = True) -> None:
        """Reset every new connection at once (``refuse=False`` accepts them again).

        Connections already open are left alone; see :meth:`close_connections`.
        """

        def apply() -> None:
            self._refusing = refuse

        self._control(apply)

    def close_connections(self) -> int:
        """Close every open connection now, as a broker that hung up would; return how many."""

        def apply() -> int:
            connections = [c for c in self._connections if not c.closed]
            for connection in connections:
                connection.close()
            self._counters.connections_closed += len(connections)
            return len(connections)

        return self._control(apply)

    def heal(self) -> None:
        """Back to normal: no drops, no latency, no stall, new connections accepted."""

        def apply() -> None:
            assert self._flowing is not None
            self._drop_fraction = 0.0
            self._drop_api_keys = None
            self._latency_s = 0.0
            self._jitter_s = 0.0
            self._refusing = False
            if self._stall_timer is not None:
                self._stall_timer.cancel()
                self._stall_timer = None
            self._flowing.set()

        self._control(apply)

    def stats(self) -> FaultStats:
        """What the proxy did so far."""
        if not self.running:
            return self._counters.snapshot()
        return self._control(self._counters.snapshot)

    @property
    def open_connections(self) -> int:
        """How many client connections are open through the proxy."""
        return self._control(lambda: sum(not c.closed for c in self._connections))

    # ------------------------------------------------------------------ traffic

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._refusing:
            self._counters.connections_refused += 1
            sock = writer.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
            writer.transport.abort()
            return
        upstream_address = self._upstream
        try:
            if upstream_address is None:
                msg = "no upstream broker set"
                raise ConnectionRefusedError(msg)
            up_reader, up_writer = await asyncio.open_connection(
                *upstream_address, limit=_READ_BUFFER_BYTES
            )
        except OSError as exc:
            self._counters.upstream_failures += 1
            _log.debug("fault proxy: broker %s unreachable: %s", upstream_address, exc)
            writer.transport.abort()
            return
        self._counters.connections_accepted += 1
        connection = _Connection(writer, up_writer)
        self._connections.add(connection)
        pumps = [
            asyncio.ensure_future(self._requests(reader, connection)),
            asyncio.ensure_future(self._responses(up_reader, connection)),
        ]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            connection.close()
            self._connections.discard(connection)

    async def _requests(self, reader: asyncio.StreamReader, connection: _Connection) -> None:
        """Pass requests to the broker, noting each one's type by its correlation id."""
        flowing = self._flowing
        assert flowing is not None
        counters = self._counters
        upstream = connection.upstream
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError, _ProtocolError):
            while True:
                frame = await _read_frame(reader)
                if len(frame) >= 12:
                    # Request header: api_key int16, api_version int16, correlation_id int32.
                    connection.api_keys[frame[8:12]] = int.from_bytes(frame[4:6], "big")
                if not flowing.is_set():
                    await flowing.wait()
                upstream.write(frame)
                await upstream.drain()
                counters.requests_forwarded += 1
                counters.bytes_to_broker += len(frame)

    async def _responses(self, reader: asyncio.StreamReader, connection: _Connection) -> None:
        """Read responses from the broker as they come; a second task passes them on."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue(_MAX_QUEUED_RESPONSES)
        writer = asyncio.ensure_future(self._pass_responses(queue, connection))
        try:
            with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError, _ProtocolError):
                while not writer.done():
                    frame = await _read_frame(reader)
                    await queue.put((loop.time(), frame))
            if not writer.done():
                await queue.put(None)  # the broker hung up: pass on what came before
                await writer
        finally:
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)

    async def _pass_responses(
        self, queue: asyncio.Queue[tuple[float, bytes] | None], connection: _Connection
    ) -> None:
        loop = asyncio.get_running_loop()
        flowing = self._flowing
        assert flowing is not None
        counters = self._counters
        client = connection.client
        with contextlib.suppress(ConnectionError):
            while (item := await queue.get()) is not None:
                arrived, frame = item
                if self._latency_s or self._jitter_s:
                    extra = self._random.uniform(0, self._jitter_s) if self._jitter_s else 0.0
                    release = max(connection.last_release, arrived + self._latency_s + extra)
                    connection.last_release = release
                    delay = release - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                if not flowing.is_set():
                    await flowing.wait()
                if self._drops(connection, frame):
                    counters.responses_dropped += 1
                    counters.connections_closed += 1
                    connection.close()
                    return
                client.write(frame)
                await client.drain()
                counters.responses_forwarded += 1
                counters.bytes_to_clients += len(frame)

    def _drops(self, connection: _Connection, frame: bytes) -> bool:
        """Whether this response is to be dropped (one random draw per eligible response)."""
        api_key = connection.api_keys.pop(frame[4:8], None)
        if not self._drop_fraction:
            return False
        if self._drop_api_keys is not None and api_key not in self._drop_api_keys:
            return False
        return self._random.random() < self._drop_fraction
