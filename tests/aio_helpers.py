"""Helpers of the asyncio tests: loop-blocking detection and a tiny producer queue."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import threading
from collections.abc import Iterator

from governed_kafka import profiles

#: A profile whose local queue holds five records: a paused broker fills it at once.
TINY_QUEUE = profiles.Profile(
    name="tiny-queue",
    linger_ms=0,
    batch_size=1000,
    batch_num_messages=1,
    compression="none",
    queue_max_messages=5,
    queue_max_kbytes=1024,
)


class _SlowCallbacks(logging.Handler):
    """Collects asyncio debug mode's reports of callbacks that held the loop too long."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.reports: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Executing"):
            self.reports.append(message)


@contextlib.contextmanager
def slow_callbacks(threshold_s: float) -> Iterator[list[str]]:
    """Within the block, every loop callback or task step longer than ``threshold_s`` is
    listed in the yielded list (asyncio debug mode's own slow-callback detection).

    The objects alive before the block are frozen out of garbage collection meanwhile: a
    full collection of the whole test process takes tens of milliseconds, and would be
    reported against whichever step it happened to interrupt.
    """
    loop = asyncio.get_running_loop()
    handler = _SlowCallbacks()
    logger = logging.getLogger("asyncio")
    logger.addHandler(handler)
    debug, threshold = loop.get_debug(), loop.slow_callback_duration
    gc.collect()
    gc.freeze()
    loop.set_debug(True)
    loop.slow_callback_duration = threshold_s
    try:
        yield handler.reports
    finally:
        loop.set_debug(debug)
        loop.slow_callback_duration = threshold
        logger.removeHandler(handler)
        gc.unfreeze()


async def ticks_during(awaitable: asyncio.Future[object], *, every_s: float = 0.01) -> int:
    """How many times a ticker task ran while ``awaitable`` was pending."""
    count = 0

    async def tick() -> None:
        nonlocal count
        while True:
            await asyncio.sleep(every_s)
            count += 1

    ticker = asyncio.create_task(tick())
    try:
        await asyncio.wait({awaitable})
    finally:
        ticker.cancel()
    return count


async def threads_gone(prefix: str, *, timeout: float = 15.0) -> bool:
    """Whether, within ``timeout``, no thread whose name starts with ``prefix`` remains."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while any(t.name.startswith(prefix) for t in threading.enumerate()):
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True
