"""The slow-handler watch: a consumer that stops polling is about to be evicted.

Past ``max.poll.interval.ms`` without a poll the group evicts a member and hands its
partitions on; :func:`watch_slow_handlers`, on a thread of its own, warns (and tells the
``on_slow_handler`` hooks) once the consumer spent most of that interval in a handler.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from .hooks import HookChain, SlowHandlerDetails

if TYPE_CHECKING:
    from ._records import Record

__all__ = ["SLOW_HANDLER_FRACTION", "watch_slow_handlers"]

_log = logging.getLogger("governed_kafka.consumer")

#: Fraction of ``max.poll.interval.ms`` without a poll at which a slow handler is reported.
SLOW_HANDLER_FRACTION: Final = 0.8


def watch_slow_handlers(
    *,
    group_id: str,
    max_poll_interval_s: float,
    hooks: HookChain,
    last_poll: Callable[[], float],
    current: Callable[[], Record | None],
    closed: Callable[[], bool],
) -> None:
    """Until ``closed()``: report each stretch without a poll longer than
    :data:`SLOW_HANDLER_FRACTION` of ``max_poll_interval_s``, once, with the record at hand."""
    interval = min(max(max_poll_interval_s / 20, 0.05), 5.0)
    reported_for = 0.0
    while not closed():
        time.sleep(interval)
        last = last_poll()
        elapsed = time.monotonic() - last
        if elapsed < max_poll_interval_s * SLOW_HANDLER_FRACTION or reported_for == last:
            continue
        reported_for = last
        record = current()
        _log.warning(
            "group %r: no poll for %.1f s of max.poll.interval.ms %.1f s (handling %s); "
            "the group will evict this consumer if it goes on",
            group_id,
            elapsed,
            max_poll_interval_s,
            f"{record.topic}[{record.partition}]@{record.offset}" if record else "nothing",
        )
        if hooks.slow_handler is not None:
            hooks.slow_handler(
                SlowHandlerDetails(
                    group_id=group_id,
                    elapsed_s=elapsed,
                    max_poll_interval_s=max_poll_interval_s,
                    record=record,
                )
            )
