"""The one thread that makes every call into an asyncio consumer's ConsumerBase.

librdkafka's consumer and the consumer's offset book are single-threaded: the asyncio
consumer runs its polls, commits, rebalance callbacks, lag and close on one
:class:`Worker` thread, and awaits each call from the event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["Worker"]

T = TypeVar("T")

_Call = tuple["concurrent.futures.Future[Any]", Callable[[], Any]]


class Worker:
    """The one thread that makes every call into a consumer.

    Calls run in the order they were submitted. A call may serve the queue itself while
    it waits for the event loop (:meth:`serve_until`): a rebalance callback, which runs
    inside a poll, waits that way for the loop to finish the revoked partitions' work,
    and that work's own calls (marking records processed, dead letters) run meanwhile.
    """

    def __init__(self, name: str) -> None:
        self._calls: queue.SimpleQueue[_Call | object | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[[], T]) -> concurrent.futures.Future[T]:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._calls.put((future, fn))
        return future

    async def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the worker thread and await its result."""
        return await asyncio.wrap_future(self.submit(fn))

    def signal(self, token: object) -> None:
        """Wake a :meth:`serve_until` that waits for ``token``."""
        self._calls.put(token)

    def stop(self) -> None:
        """Let the thread end once the calls submitted so far have run."""
        self._calls.put(None)

    @property
    def current(self) -> bool:
        """Whether the caller runs on the worker thread."""
        return threading.current_thread() is self._thread

    def _serve(self) -> None:
        while True:
            item = self._calls.get()
            if item is None:
                return
            if isinstance(item, tuple):
                _run(item)
            # Anything else is a token whose serve_until() gave up waiting: dropped.

    def serve_until(self, token: object, timeout: float) -> bool:
        """Run submitted calls here, inside the current one, until ``token`` arrives."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                item = self._calls.get(timeout=remaining)
            except queue.Empty:
                return False
            if item is token:
                return True
            if item is None:
                self._calls.put(None)  # the stop is for the outer loop
                return False
            if isinstance(item, tuple):
                _run(item)


def _run(call: _Call) -> None:
    future, fn = call
    if not future.set_running_or_notify_cancel():
        return  # its caller stopped waiting before it started
    try:
        result = fn()
    except BaseException as exc:
        future.set_exception(exc)
    else:
        future.set_result(result)
