"""What one ``run()`` of the asyncio consumer keeps: its counts, its end, its lanes.

:class:`Run` is the state of one call (handled records, the error that ended it, the
event that ends it); :class:`Lane` holds one partition's records waiting for the
handler, handled one at a time; :func:`check_handler` refuses a handler that would block
the event loop.
"""

from __future__ import annotations

import asyncio
import inspect
from collections import deque
from collections.abc import Awaitable, Callable

from ._handling import RunStats
from ._records import Record

__all__ = ["Handler", "Lane", "Run", "check_handler"]

#: An async handler of one record.
Handler = Callable[[Record], Awaitable[object]]


class Lane:
    """The records of one partition waiting for the handler, handled one at a time."""

    __slots__ = ("records", "task")

    def __init__(self) -> None:
        self.records: deque[Record] = deque()
        self.task: asyncio.Task[None] | None = None


class Run:
    """The state of one ``run()`` call."""

    def __init__(
        self, handler: Handler, concurrency: int, limit: int | None, *, commit_each: bool
    ) -> None:
        self.handler = handler
        #: Whether each record is committed before its partition's next one starts.
        self.commit_each = commit_each
        self.slots = asyncio.Semaphore(concurrency)
        self.limit = limit
        self.dispatched = 0
        self.stats = RunStats()
        self.finished = asyncio.Event()
        self.halting = False
        self.error: BaseException | None = None
        self.done = asyncio.get_running_loop().create_future()

    def fail(self, error: BaseException) -> None:
        """End the run with ``error`` (the first one wins)."""
        if self.error is None:
            self.error = error
        self.finished.set()

    def handled(self) -> None:
        """A record was handled; the run ends at its limit."""
        self.stats.records += 1
        if self.limit is not None and self.stats.records >= self.limit:
            self.finished.set()


def check_handler(handler: object) -> None:
    """Refuse a handler that is not an async function: it would block the event loop."""
    call = getattr(type(handler), "__call__", None)  # noqa: B004 - the class's, not the instance's
    if inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(call):
        return
    msg = (
        f"handler must be an async function (async def handler(record): ...), got {handler!r}; "
        "a blocking handler would stall the event loop"
    )
    raise TypeError(msg)
