"""The extension point of the governed consumer: its parts, and what is told of rebalances.

:class:`ConsumerBase <governed_kafka._consumer_base.ConsumerBase>` hands a
:class:`ConsumerExtension`, given at construction, its :class:`ConsumerParts` (the
objects it handles, commits and watches with) and tells it of each rebalance before
applying it. The asyncio consumer uses it to let the event loop finish (or cancel) the
handlers of partitions that go, and to handle records on the loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import attrs

from ._batch_transactions import BatchTransactions
from ._commits import Commits
from ._handling import Handling
from ._health import HealthWatch
from ._records import Record

__all__ = ["ConsumerExtension", "ConsumerParts"]

Key = tuple[str, int]


@attrs.frozen
class ConsumerParts:
    """What a :class:`ConsumerBase` hands its extension: how records are handled and
    committed, the same objects the consumer itself uses."""

    handling: Handling
    commits: Commits
    #: The health watch (the asyncio consumer tells it which record each handler is on).
    watch: HealthWatch
    #: Marks a handled batch processed, then commits if due: once, so that a transaction
    #: commits with the offsets of every record whose sends it holds.
    mark_batch: Callable[[list[Record]], None]
    #: The batches' transactions of a transactional consumer, else ``None``.
    batches: BatchTransactions | None = None


class ConsumerExtension(Protocol):
    """What extends a consumer (the asyncio consumer's side of it).

    :meth:`attached` is called once, at the end of construction; the ``before_*``
    calls come inside the rebalance callbacks, on the consumer's thread, before the
    consumer commits (revoke) and forgets the partitions.
    """

    def attached(self, parts: ConsumerParts) -> None:
        """The consumer is built: these are its parts."""
        ...

    def before_revoke(self, partitions: list[Key]) -> None:
        """``partitions`` are revoked: finish their work, they are committed next."""
        ...

    def before_lost(self, partitions: list[Key]) -> None:
        """``partitions`` were lost (the session expired): drop their work."""
        ...
