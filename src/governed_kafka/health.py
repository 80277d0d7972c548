"""How a consumer is doing, judged from what only it knows, and probes that serve it.

:meth:`GovernedConsumer.health() <governed_kafka.GovernedConsumer.health>` (and the
asyncio consumer's) returns a :class:`HealthReport`: a status per partition held, an
overall one, and the reasons. The consumer samples, once a second, each partition's
high watermark as of its last fetch, its processed position and its committed offset,
and knows when it last polled and which record each handler is on; an external lag
monitor sees only committed offsets, so a slow but healthy topic looks stuck to it.

Statuses, worst first:

- ``stopped``: no poll for longer than ``stopped_after_s`` (by default 80% of
  ``max.poll.interval.ms``: the group is about to evict the consumer), or it is closed;
- ``stalled``: a handler has been on one record longer than ``stalled_after_s``;
- ``rewound``: the committed offset or the processed position went back within the
  window (an offset reset, or another member committed less);
- ``lagging``: records wait (lag above zero) and the lag grew over the window;
- ``ok``: records are processed as they come (a retry tier waiting for its head to be
  due is ok);
- ``idle``: nothing waits and no new record arrived within the window.

``live`` is false when stopped or stalled (a restart helps); ``ready`` is live and not
closed. :func:`serve_probes` answers ``/livez`` and ``/readyz`` over HTTP with the
standard library; a web framework can call ``health()`` in its own handlers instead
(``docs/operations.md``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Final, Literal

import attrs

__all__ = [
    "DEFAULT_STALLED_AFTER_S",
    "DEFAULT_WINDOW_S",
    "MAX_WINDOW_S",
    "SEVERITY",
    "HealthReport",
    "HealthStatus",
    "PartitionHealth",
    "ProbeServer",
    "serve_probes",
]

HealthStatus = Literal["ok", "lagging", "stalled", "stopped", "idle", "rewound"]

#: Each status's rank, worst highest: the overall status is the worst of the partitions'.
SEVERITY: Final[dict[HealthStatus, int]] = {
    "idle": 0,
    "ok": 1,
    "lagging": 2,
    "rewound": 3,
    "stalled": 4,
    "stopped": 5,
}

#: Window over which lag growth, idleness and rewinds are judged: 60 s.
DEFAULT_WINDOW_S: Final = 60.0

#: Longest window a report can judge: samples are kept for 120 s (one a second).
MAX_WINDOW_S: Final = 120.0

#: A handler on one record longer than this is ``stalled``: 30 s.
DEFAULT_STALLED_AFTER_S: Final = 30.0


@attrs.frozen(kw_only=True)
class PartitionHealth:
    """One partition's status and the numbers it was judged on."""

    topic: str
    partition: int
    status: HealthStatus
    #: Records between the processed position and the last fetched high watermark.
    lag: int | None
    high_watermark: int | None
    #: Offset of the next record to process (``None``: nothing processed yet).
    position: int | None
    committed: int | None
    #: Why the status is what it is (empty for ``ok``).
    reason: str = ""


@attrs.frozen(kw_only=True)
class HealthReport:
    """A consumer's health: overall, per partition, and why."""

    group_id: str
    status: HealthStatus
    #: False when stopped or stalled: the process should be restarted.
    live: bool
    #: Live and open: the consumer should be sent work.
    ready: bool
    partitions: tuple[PartitionHealth, ...]
    reasons: tuple[str, ...]
    window_s: float

    def to_dict(self) -> dict[str, object]:
        """The report as JSON-ready values."""
        return attrs.asdict(self)


class ProbeServer:
    """A running probe server (:func:`serve_probes`); :meth:`close` stops it."""

    def __init__(self, server: ThreadingHTTPServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread

    @property
    def port(self) -> int:
        """The port it listens on (useful with ``port=0``)."""
        return int(self._server.server_address[1])

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> ProbeServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve_probes(
    health: Callable[[], HealthReport], *, host: str = "127.0.0.1", port: int = 0
) -> ProbeServer:
    """Serve ``GET /livez`` and ``GET /readyz`` from ``health`` (``consumer.health``).

    Each answers 200 when the report is live (ready), 503 when not, with the report as
    JSON; any other path is 404. Runs on a daemon thread of its own.
    """

    class Probe(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path not in {"/livez", "/readyz"}:
                self.send_error(404, "only /livez and /readyz are served")
                return
            report = health()
            good = report.live if self.path == "/livez" else report.ready
            body = json.dumps(report.to_dict()).encode()
            self.send_response(200 if good else 503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return  # probes come every few seconds; they are not news

    server = ThreadingHTTPServer((host, port), Probe)
    thread = threading.Thread(
        target=server.serve_forever, name="governed-kafka-probes", daemon=True
    )
    thread.start()
    return ProbeServer(server, thread)
