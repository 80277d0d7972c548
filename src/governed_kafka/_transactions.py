"""The transactions of a transactional producer: begin, commit with offsets, abort.

A producer made with ``transactional_id=`` holds a :class:`Transactions`. It registers
the id with the cluster at construction (:meth:`Transactions.init`, which fences any
older producer that used the id and aborts what it left open), and from then on every
record the producer sends belongs to the open transaction: a send while none is open is
refused (:meth:`Transactions.refusal`, rule ``transaction.required``).

Who opens a transaction owns it until it is committed or aborted: the application
(``with producer.transaction():``, :meth:`Transactions.scope`) or a consumer whose commit
strategy is transactional (``governed_kafka._txn_commits``), which commits its input
offsets in it. Commit retries what librdkafka says may be retried, within the
transaction timeout; an abortable failure aborts the transaction and raises
:class:`~governed_kafka.errors.TransactionError` with ``aborted`` set; a fatal one
(:class:`~governed_kafka.errors.ProducerFenced` above all) leaves the producer unusable,
and every later send or transaction names it. The hooks see each begin, commit and
abort.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Final

import tenacity as _t

from . import _kafka
from .errors import DeliveryError, GovernanceViolation, TransactionError
from .hooks import (
    HookChain,
    TransactionAbortDetails,
    TransactionBeginDetails,
    TransactionCommitDetails,
)

__all__ = ["USER", "Transactions"]

_log = logging.getLogger("governed_kafka.producer")

#: Longest a send refused with ``_STATE`` waits for the report of the record its
#: transaction lost (the refusal can come first).
_LOSS_WAIT_S: Final = 5.0

#: First and longest pause between calls librdkafka says may be repeated.
_RETRY_FIRST_WAIT_S: Final = 0.05
_RETRY_MAX_WAIT_S: Final = 1.0

#: Who holds a transaction the application opened with ``with producer.transaction()``.
USER: Final = "user"


def _retriable(error: BaseException) -> bool:
    return isinstance(error, TransactionError) and error.retriable and not error.fatal


class Transactions:
    """The transactions of one producer (see the module docs).

    :param client: librdkafka's producer, made with ``transactional.id``.
    :param timeout_s: the producer's ``transaction.timeout.ms``, in seconds: how long a
        commit or abort may take in all, retries included.
    :param failures: where the producer's delivery reports put the open transaction's
        failed records.
    """

    def __init__(
        self,
        client: _kafka.ProducerClient,
        hooks: HookChain,
        *,
        client_id: str,
        timeout_s: float,
        failures: list[DeliveryError] | None = None,
    ) -> None:
        assert client.transactional_id is not None
        self._client = client
        #: The open transaction's first failed records (filled as their reports come).
        self._failures = [] if failures is None else failures
        self._hooks = hooks
        #: The producer's transactional id.
        self.transactional_id: str = client.transactional_id
        self.client_id = client_id
        self.timeout_s = timeout_s
        #: Whether a transaction is open: sends are accepted only then.
        self.open = False
        #: Who holds the open transaction: ``"user"`` or a consumer's group id.
        self.owner: str | None = None
        #: Transactions begun so far (the open one included).
        self.sequence = 0
        #: Records sent in the open transaction.
        self.records = 0
        self._began = 0.0
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ state

    def lost_a_record(self, refusal: BaseException) -> TransactionError | None:
        """Whether ``refusal``, what a send of the open transaction raised, means that the
        transaction already lost a record: librdkafka then refuses every send with
        ``_STATE`` until the transaction is aborted, whatever record it is.

        Serves delivery reports for up to ``_LOSS_WAIT_S`` for the failed record to be
        reported; returns the error naming it, or ``None`` if none failed.
        """
        if not (isinstance(refusal, DeliveryError) and refusal.code == "_STATE" and self.open):
            return None
        deadline = time.monotonic() + _LOSS_WAIT_S
        while not self._failures and time.monotonic() < deadline:
            self._client.poll(0.05)
        if not self._failures:
            return None
        undelivered = tuple(self._failures)
        msg = (
            f"transaction {self.sequence} of {self.transactional_id!r} lost a record before "
            f"its commit ({undelivered[0]}), and librdkafka refuses its sends until it is "
            "aborted"
        )
        return TransactionError(
            msg,
            transactional_id=self.transactional_id,
            operation="send",
            code=undelivered[0].code,
            abortable=True,
            failures=undelivered,
        )

    @property
    def fatal(self) -> TransactionError | None:
        """The fatal error that left the producer unusable, if it had one."""
        return self._client.fatal_transaction_error("the transaction")

    def refusal(self, topic: str) -> Exception:
        """Why a send to ``topic`` is refused: no transaction is open, or the producer
        had a fatal error (which is then the refusal)."""
        fatal = self._client.fatal_transaction_error(f"send to {topic!r}")
        if fatal is not None:
            return fatal
        msg = (
            f"send to {topic!r} refused: producer {self.transactional_id!r} is transactional "
            "and no transaction is open; send inside `with producer.transaction():`, or from "
            "the handler of a consumer whose commit strategy is CommitStrategy.transactional"
        )
        return GovernanceViolation(
            msg,
            rule="transaction.required",
            topic=topic,
            field="transactional_id",
            value=self.transactional_id,
        )

    def _raise_if_fatal(self, operation: str) -> None:
        fatal = self._client.fatal_transaction_error(operation)
        if fatal is not None:
            self.open = False
            raise fatal

    # ------------------------------------------------------------------ calls

    def _call(self, operation: Callable[[float], None], deadline: float) -> None:
        """Call ``operation(timeout)`` again while librdkafka says it may, until ``deadline``."""
        retrying = _t.Retrying(
            retry=_t.retry_if_exception(_retriable),
            stop=lambda _state: time.monotonic() >= deadline,
            wait=_t.wait_exponential(multiplier=_RETRY_FIRST_WAIT_S, max=_RETRY_MAX_WAIT_S),
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                operation(max(deadline - time.monotonic(), 0.1))

    def init(self, timeout_s: float) -> None:
        """Register the transactional id with its coordinator, within ``timeout_s``.

        Fences every older producer with the same id and aborts the transaction it left
        open. Raises :class:`TransactionError` when the cluster does not answer in time
        (``retriable``) or refuses; ``AccessDenied`` without the right on the id.
        """
        try:
            self._call(self._client.init_transactions, time.monotonic() + timeout_s)
        except TransactionError as exc:
            if exc.code != "_TIMED_OUT":
                raise
            msg = (
                f"init_transactions of transactional producer {self.transactional_id!r} got "
                f"no answer within {timeout_s:g} s: is the cluster reachable, and can it run "
                "transactions (a transaction state log with enough in-sync replicas)?"
            )
            raise TransactionError(
                msg,
                transactional_id=self.transactional_id,
                operation="init_transactions",
                code=exc.code,
                retriable=True,
            ) from exc

    def begin(self, owner: str) -> None:
        """Open a transaction for ``owner``; one at a time."""
        with self._lock:
            self._raise_if_fatal("begin_transaction")
            if self.open:
                msg = (
                    f"cannot begin a transaction on {self.transactional_id!r}: one is already "
                    f"open (held by {self._holder(self.owner)}); a transactional producer runs "
                    "one transaction at a time"
                )
                raise TransactionError(
                    msg,
                    transactional_id=self.transactional_id,
                    operation="begin_transaction",
                    code="_STATE",
                )
            self._client.begin_transaction()
            self._failures.clear()
            self.open = True
            self.owner = owner
            self.sequence += 1
            self.records = 0
            self._began = time.monotonic()
        if self._hooks.transaction_begin is not None:
            self._hooks.transaction_begin(
                TransactionBeginDetails(
                    transactional_id=self.transactional_id,
                    client_id=self.client_id,
                    sequence=self.sequence,
                )
            )

    @staticmethod
    def _holder(owner: str | None) -> str:
        if owner == USER:
            return "a `with producer.transaction():` block"
        return f"the consumer of group {owner!r}"

    def _check_owner(self, owner: str, operation: str) -> None:
        self._raise_if_fatal(operation)
        if not self.open or self.owner != owner:
            why = (
                "no transaction is open"
                if not self.open
                else f"the open transaction is held by {self._holder(self.owner)}"
            )
            msg = f"cannot {operation} on {self.transactional_id!r}: {why}"
            raise TransactionError(
                msg, transactional_id=self.transactional_id, operation=operation, code="_STATE"
            )

    def commit(
        self,
        owner: str,
        *,
        reason: str,
        offsets: _kafka.Offsets = (),
        group: _kafka.GroupMetadata | None = None,
        group_id: str | None = None,
    ) -> None:
        """Commit the open transaction, with ``offsets`` of ``group`` in it when given.

        Retries what may be retried within the transaction timeout. An abortable failure
        (a record not delivered, the group moved on) aborts the transaction and raises
        :class:`TransactionError` with ``aborted`` set; a fatal one raises it (fenced:
        :class:`ProducerFenced`) and the producer can do nothing more.
        """
        with self._lock:
            self._check_owner(owner, "commit_transaction")
            started = time.monotonic()
            deadline = started + self.timeout_s
            try:
                if offsets:
                    assert group is not None
                    self._call(
                        lambda timeout: self._client.send_offsets_to_transaction(
                            offsets, group, timeout
                        ),
                        deadline,
                    )
                self._call(self._client.commit_transaction, deadline)
            except TransactionError as failed:
                if failed.fatal:
                    self.open = False
                    raise
                self._aborted_after(failed, owner, reason=reason, group_id=group_id)
            self.open = False
            self.owner = None
            ended = time.monotonic()
            records = self.records
        if self._hooks.transaction_commit is not None:
            self._hooks.transaction_commit(
                TransactionCommitDetails(
                    transactional_id=self.transactional_id,
                    client_id=self.client_id,
                    sequence=self.sequence,
                    records=records,
                    group_id=group_id,
                    offsets=tuple(offsets),
                    reason=reason,
                    duration_s=ended - self._began,
                    commit_s=ended - started,
                )
            )

    def _aborted_after(
        self, failed: TransactionError, owner: str, *, reason: str, group_id: str | None
    ) -> None:
        """A commit failed without being fatal: abort, then raise that it was aborted,
        naming the transaction's first records that were not delivered."""
        records = self.records
        self.abort(owner, reason="commit-failed", error=failed, group_id=group_id)
        undelivered = tuple(self._failures)
        first = f"; the first record not delivered: {undelivered[0]}" if undelivered else ""
        msg = (
            f"commit ({reason}) of transaction {self.sequence} of {self.transactional_id!r} "
            f"failed ({failed}) and the transaction was aborted: none of its {records} "
            f"records, nor the offsets sent with it, will be visible{first}"
        )
        raise TransactionError(
            msg,
            transactional_id=self.transactional_id,
            operation="commit_transaction",
            code=failed.code,
            retriable=failed.retriable,
            aborted=True,
            failures=undelivered,
        ) from failed

    def abort(
        self,
        owner: str,
        *,
        reason: str,
        error: BaseException | None = None,
        group_id: str | None = None,
    ) -> None:
        """Abort the open transaction: none of its records will ever be visible.

        Raises :class:`TransactionError` if the abort itself fails (fatal: the producer
        can do nothing more).
        """
        with self._lock:
            self._check_owner(owner, "abort_transaction")
            deadline = time.monotonic() + self.timeout_s
            # Let the records already queued reach their partitions first: aborted right
            # after they were queued, while librdkafka still adds their partitions to the
            # transaction, the coordinator can be asked to abort a transaction it never
            # saw begin, and answers INVALID_TXN_STATE, which librdkafka makes fatal
            # (confluentinc/librdkafka#4849, seen on Kafka 4.1).
            self._client.flush(max(deadline - time.monotonic(), 0.1))
            try:
                self._call(self._client.abort_transaction, deadline)
            except TransactionError:
                self.open = False
                raise
            self.open = False
            self.owner = None
            ended = time.monotonic()
            records = self.records
        _log.info(
            "transaction %d of %r aborted (%s): %d records discarded%s",
            self.sequence,
            self.transactional_id,
            reason,
            records,
            "" if error is None else f" ({type(error).__name__}: {error})",
        )
        if self._hooks.transaction_abort is not None:
            self._hooks.transaction_abort(
                TransactionAbortDetails(
                    transactional_id=self.transactional_id,
                    client_id=self.client_id,
                    sequence=self.sequence,
                    records=records,
                    group_id=group_id,
                    reason=reason,
                    duration_s=ended - self._began,
                    error=error,
                )
            )

    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        """``with producer.transaction():``: begin; commit on exit; abort on an exception,
        then re-raise it."""
        self.begin(USER)
        try:
            yield
        except BaseException as exc:
            if self.open and self.owner == USER:
                try:
                    self.abort(USER, reason="user", error=exc)
                except TransactionError as failed:  # the block's own error is the one to see
                    _log.error("aborting after %r failed too: %s", exc, failed)
            raise
        self.commit(USER, reason="user")

    def close(self) -> None:
        """The producer closes: abort a transaction still open (it was never committed)."""
        if not self.open or self.fatal is not None:
            return
        owner = self.owner
        assert owner is not None
        _log.warning(
            "producer %r closes with transaction %d open (held by %s): aborting it",
            self.transactional_id,
            self.sequence,
            self._holder(owner),
        )
        try:
            self.abort(owner, reason="close")
        except TransactionError as failed:
            _log.error("closing %r: %s", self.transactional_id, failed)
