"""asyncio clients: the governed producer and consumer for services that run an event loop.

:class:`AsyncGovernedProducer` and :class:`AsyncGovernedConsumer` enforce exactly what
:class:`~governed_kafka.GovernedProducer` and :class:`~governed_kafka.GovernedConsumer`
enforce (contracts, refusals, Avro serde, hooks, profiles, commit strategies, retries,
dead letters, backpressure, lag), because each runs the same producer or consumer
underneath (``governed_kafka._producer_base``, ``governed_kafka._consumer_base``); and no
call blocks the event loop:

- a send is checked, encoded and queued on the loop, where none of that waits; its
  delivery report, served by the producer's own background thread, resolves an asyncio
  future through ``loop.call_soon_threadsafe``. A full local queue is awaited (with
  backoff) instead of slept on; records sent meanwhile queue up behind, in order.
- every call into the consumer (polls, commits, rebalance callbacks, lag, close) is
  made by one dedicated thread, since the consumer and its offset tracker are
  single-threaded. Handlers run on the loop: concurrently across partitions, one at a
  time and in offset order within a partition.

Construction talks to the cluster (the runtime topic gate, schema registries), so it
happens in ``await client.start()``, or on entering ``async with``.
"""

from __future__ import annotations

from ._aio_consumer import (
    DEFAULT_CONCURRENCY,
    DEFAULT_REVOKE_TIMEOUT_S,
    AsyncGovernedConsumer,
    Handler,
)
from ._aio_producer import AsyncGovernedProducer

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_REVOKE_TIMEOUT_S",
    "AsyncGovernedConsumer",
    "AsyncGovernedProducer",
    "Handler",
]
