"""When a consumer commits, and what it may commit.

Whatever the strategy, a consumer commits only offsets of records that were
*processed*, and in each partition only up to the first record that was not: the
offset tracker never lets out-of-order completion commit past a gap. The strategies
differ only in *when* they commit, which sets how much work a crash replays:

============  ===========================  =====================================
strategy      commits                      a crash replays at most
============  ===========================  =====================================
per_record    after every record,          the record being processed
              synchronously
batched       every ``max_records``        ``max_records`` records, or
              processed records or every   ``max_interval_s`` worth of records
              ``max_interval_s``,          (whichever comes first), plus those
              asynchronously               being processed
manual        when the application calls   everything processed since the
              ``consumer.commit()``        application last committed
transactional like batched, each batch in   nothing twice to ``read_committed``
              one transaction of its       readers: a crash aborts the open
              producer with the handler's  transaction, whose records and
              sends                        offsets are never visible
============  ===========================  =====================================

``transactional(producer, ...)`` is the exactly-once strategy (consume-transform-
produce, KIP-98 and KIP-447): the records the handler sends through ``producer`` and
the batch's input offsets are committed together or not at all. A handler error aborts
the batch and rewinds to the last committed offsets; see ``docs/exactly-once.md``.

No strategy ever loses a record: a record is committed only after it was processed
(or sent to the dead-letter topic). All of them commit synchronously when partitions
are revoked and when the consumer closes, so an orderly rebalance or shutdown replays
nothing that was processed.

Each factory returns a strategy object of a private class (``_PerRecord``,
``_Batched``, ``_Manual``, ``_Transactional``) that answers the consumer's questions (is
a commit due, does it wait for the broker, is each record committed before the next, is
what was processed committed when ``run()`` returns, does it commit in transactions); a
new strategy is a new class, not a new case in the consumer. What a consumer has
processed and committed is kept by its offset book (``governed_kafka._offsets``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Final

import attrs

from .errors import ConfigError

if TYPE_CHECKING:
    from ._producer_base import ProducerBase

__all__ = ["CommitStrategy"]

#: Default batch: commit after this many processed records ...
DEFAULT_BATCH_RECORDS: Final = 500
#: ... or after this many seconds, whichever comes first.
DEFAULT_BATCH_INTERVAL_S: Final = 5.0
#: A transaction's batch ends after this many seconds at the latest: its outputs become
#: visible to ``read_committed`` readers only when it commits, so it is kept short.
DEFAULT_TRANSACTION_INTERVAL_S: Final = 1.0


class CommitStrategy:
    """When processed offsets are committed. Build one with the factory methods."""

    __slots__ = ()

    #: ``"per_record"``, ``"batched"``, ``"manual"`` or ``"transactional"``.
    kind: ClassVar[str] = ""
    #: Commit once this many records were processed since the last commit (batched).
    max_records: int | None = None
    #: Commit once this many seconds passed since the last commit (batched).
    max_interval_s: float | None = None
    #: The producer whose transactions hold the batches (transactional).
    producer: ProducerBase | None = None

    @classmethod
    def per_record(cls) -> CommitStrategy:
        """Commit synchronously after every processed record: the smallest replay, the slowest."""
        return _PerRecord()

    @classmethod
    def batched(
        cls,
        *,
        max_records: int = DEFAULT_BATCH_RECORDS,
        max_interval_s: float = DEFAULT_BATCH_INTERVAL_S,
    ) -> CommitStrategy:
        """Commit asynchronously every ``max_records`` processed records or ``max_interval_s``."""
        if max_records < 1:
            msg = f"max_records must be >= 1, got {max_records}"
            raise ValueError(msg)
        if max_interval_s <= 0:
            msg = f"max_interval_s must be > 0, got {max_interval_s}"
            raise ValueError(msg)
        return _Batched(max_records=max_records, max_interval_s=max_interval_s)

    @classmethod
    def manual(cls) -> CommitStrategy:
        """Commit only when the application calls ``consumer.commit()`` (and on revoke/close)."""
        return _Manual()

    @classmethod
    def transactional(
        cls,
        producer: ProducerBase,
        *,
        max_records: int = DEFAULT_BATCH_RECORDS,
        max_interval_s: float = DEFAULT_TRANSACTION_INTERVAL_S,
    ) -> CommitStrategy:
        """Each batch (``max_records`` processed records, or ``max_interval_s``) is one
        transaction of ``producer``: what the handler sends through it and the batch's
        input offsets are committed together, or not at all.

        ``producer`` is a :class:`~governed_kafka.GovernedProducer` made with
        ``transactional_id=`` (with ``AsyncGovernedConsumer`` too: its ``send()`` queues
        without waiting). Anything else raises :class:`~governed_kafka.errors.ConfigError`.
        """
        if max_records < 1:
            msg = f"max_records must be >= 1, got {max_records}"
            raise ValueError(msg)
        if max_interval_s <= 0:
            msg = f"max_interval_s must be > 0, got {max_interval_s}"
            raise ValueError(msg)
        transactions = getattr(producer, "transactions", _MISSING)
        if transactions is _MISSING:
            msg = (
                "CommitStrategy.transactional needs a GovernedProducer made with "
                f"transactional_id=, got {producer!r} (with AsyncGovernedConsumer, pass a "
                "GovernedProducer too: its send() queues without blocking the loop)"
            )
            raise ConfigError(msg, key="transactional.id", value=producer)
        if transactions is None:
            msg = (
                f"CommitStrategy.transactional needs a transactional producer: {producer!r} "
                "was made without transactional_id="
            )
            raise ConfigError(msg, key="transactional.id")
        return _Transactional(
            producer=producer, max_records=max_records, max_interval_s=max_interval_s
        )

    @property
    def synchronous(self) -> bool:
        """Whether routine commits wait for the broker's answer."""
        return True

    def due(self, processed_since: int, seconds_since: float) -> bool:
        """Whether a routine commit is due, ``processed_since`` records and ``seconds_since``
        seconds after the last one."""
        return False

    @property
    def settle_every(self) -> int | None:
        """Processed records after which ``run()`` asks :meth:`due` within a batch
        (``None``: only when the batch is done)."""
        return None

    @property
    def commits_every_record(self) -> bool:
        """Whether each record is committed before the next one of its partition starts."""
        return False

    @property
    def commits_when_run_ends(self) -> bool:
        """Whether what was processed is committed when ``run()`` returns."""
        return True

    @property
    def commits_in_transactions(self) -> bool:
        """Whether each batch is a transaction of :attr:`producer` (offsets sent to it)."""
        return False


@attrs.frozen(repr=False)
class _PerRecord(CommitStrategy):
    kind: ClassVar[str] = "per_record"

    def due(self, processed_since: int, seconds_since: float) -> bool:
        return processed_since > 0

    @property
    def settle_every(self) -> int:
        return 1

    @property
    def commits_every_record(self) -> bool:
        return True

    def __repr__(self) -> str:
        return "CommitStrategy.per_record()"


@attrs.frozen(repr=False)
class _Batched(CommitStrategy):
    kind: ClassVar[str] = "batched"
    max_records: int
    max_interval_s: float

    @property
    def synchronous(self) -> bool:
        return False

    def due(self, processed_since: int, seconds_since: float) -> bool:
        if processed_since <= 0:
            return False
        return processed_since >= self.max_records or seconds_since >= self.max_interval_s

    @property
    def settle_every(self) -> int:
        return self.max_records

    def __repr__(self) -> str:
        return (
            f"CommitStrategy.batched(max_records={self.max_records}, "
            f"max_interval_s={self.max_interval_s})"
        )


@attrs.frozen(repr=False)
class _Manual(CommitStrategy):
    kind: ClassVar[str] = "manual"

    @property
    def commits_when_run_ends(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "CommitStrategy.manual()"


_MISSING: Final = object()


@attrs.frozen(repr=False)
class _Transactional(_Batched):
    """Batched by the same bounds, each batch committed in a transaction of ``producer``."""

    kind: ClassVar[str] = "transactional"
    producer: ProducerBase = attrs.field(eq=False, kw_only=True)

    @property
    def synchronous(self) -> bool:
        return True

    @property
    def commits_in_transactions(self) -> bool:
        return True

    def __repr__(self) -> str:
        return (
            f"CommitStrategy.transactional({self.producer!r}, max_records={self.max_records}, "
            f"max_interval_s={self.max_interval_s})"
        )
