"""Dead letters: where a consumer puts a record it cannot process, and what it says.

A record whose handler still fails after its retries, or whose bytes do not decode, is
published to its topic's dead-letter topic, through a governed producer of the
consumer's own service (so the dead-letter topic's contract holds there too), with
headers naming the error, the original topic, partition, offset and timestamp, the
attempts made and the consumer. A topic without dead-letter topic stops the consumer
instead: skipping the record would lose it.

A transactional consumer publishes its dead letters through its transactional producer
(:meth:`DeadLetters.send_through`), inside the batch's transaction: a dead letter is
visible exactly when the offset it stands for is committed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Final

from . import _config
from ._config import Overrides
from ._records import Record
from ._routes import HeaderList, sendable_header_name
from .contracts import Catalog, TopicContract
from .errors import GovernanceViolation
from .hooks import DeadLetterDetails, HookChain
from .producer import GovernedProducer
from .registry import SchemaRegistry

if TYPE_CHECKING:
    from ._producer_base import ProducerBase

__all__ = ["DEAD_LETTER_HEADERS", "DeadLetters"]

_log = logging.getLogger("governed_kafka.consumer")

#: Headers a dead letter carries, besides the original record's own headers.
DEAD_LETTER_HEADERS: Final = (
    "dlq.error.type",
    "dlq.error.message",
    "dlq.original.topic",
    "dlq.original.partition",
    "dlq.original.offset",
    "dlq.original.timestamp",
    "dlq.attempts",
    "dlq.consumer.group",
    "dlq.consumer.service",
)

#: Longest error message a dead letter carries in ``dlq.error.message``.
_MAX_ERROR_MESSAGE: Final = 4096


class DeadLetters:
    """Publishes the dead letters of one consumer.

    :param contracts: the contract of each topic the consumer reads.

    Checks at once that every dead-letter topic has a contract and that ``service`` is
    one of its producers. The producer is made at the first dead letter.
    """

    def __init__(
        self,
        catalog: Catalog,
        contracts: Mapping[str, TopicContract],
        *,
        service: str,
        group_id: str,
        bootstrap_servers: str | list[str] | tuple[str, ...],
        overrides: Overrides | None,
        registry: SchemaRegistry | None,
        hooks: HookChain,
    ) -> None:
        self.catalog = catalog
        self._contracts = contracts
        self.service = service
        self.group_id = group_id
        self._bootstrap_servers = bootstrap_servers
        self._overrides = dict(overrides or {})
        self._registry = registry
        self._hooks = hooks
        self._producer: ProducerBase | None = None
        #: Whether dead letters go into the transactions of the application's producer.
        self._transactional = False
        for contract in contracts.values():
            self._check_rights(contract)

    def _check_rights(self, contract: TopicContract) -> None:
        dlq = contract.dead_letter_topic
        if dlq is None:
            return
        if dlq not in self.catalog:
            msg = f"dead-letter topic {dlq!r} of {contract.name!r} has no contract"
            raise GovernanceViolation(
                msg,
                rule="dead-letter.missing",
                topic=contract.name,
                field="dead_letter_topic",
                value=dlq,
            )
        if self.service not in self.catalog.topic(dlq).producers:
            msg = (
                f"service {self.service!r} consumes {contract.name!r} but is not a producer "
                f"of its dead-letter topic {dlq!r}: add it to that contract's producers"
            )
            raise GovernanceViolation(
                msg,
                rule="dead-letter.not-producer",
                topic=dlq,
                field="producers",
                value=self.service,
            )

    def publish(
        self,
        record: Record,
        error: BaseException,
        *,
        attempts: int,
        undecodable: bool = False,
        origin: tuple[str, int, int] | None = None,
        partition: int | None = None,
        extra: Sequence[tuple[str, str | bytes | None]] = (),
    ) -> None:
        """Publish ``record`` (its key and value as they were read) to its dead-letter topic.

        ``attempts`` is how many times a handler was tried; an ``undecodable`` record
        (its bytes did not decode) reaches no handler, and the hooks see no record. Raises
        :class:`~governed_kafka.errors.GovernanceViolation` (``dead-letter.missing``)
        when the topic declares no dead-letter topic. A record read from a retry topic
        names its ``origin`` (topic, partition, offset), whose dead-letter topic it goes
        to; ``partition`` picks the dead-letter topic's partition (key order keeps a
        partition's keys in the same partition), ``extra`` adds headers.
        """
        topic, at, offset = origin or (record.topic, record.partition, record.offset)
        where = f"{topic}[{at}]@{offset}"
        dlq = self._contracts[topic].dead_letter_topic
        if dlq is None:
            msg = (
                f"record {where} failed ({type(error).__name__}: {error}) and topic {topic!r} "
                "declares no dead_letter_topic: stopping rather than skipping it (its offset "
                "stays uncommitted)"
            )
            raise GovernanceViolation(
                msg, rule="dead-letter.missing", topic=topic, field="dead_letter_topic"
            ) from error
        dlq_contract = self.catalog.topic(dlq)
        sent = self._sender().send(
            dlq,
            record.raw_value if record.raw_value is not None else b"",
            key=None if dlq_contract.key == "forbidden" else record.raw_key,
            headers=self._headers(record, error, attempts, (topic, at, offset)) + list(extra),
            partition=partition,
        )
        if not self._transactional:  # else the transaction's commit delivers it, or aborts
            sent.result()
        _log.warning("dead-lettered %s to %s after %d attempts: %s", where, dlq, attempts, error)
        if self._hooks.dead_letter is not None:
            self._hooks.dead_letter(
                DeadLetterDetails(
                    group_id=self.group_id,
                    record=None if undecodable else record,
                    topic=topic,
                    partition=at,
                    offset=offset,
                    dead_letter_topic=dlq,
                    error=error,
                    attempts=attempts,
                )
            )

    def _headers(
        self, record: Record, error: BaseException, attempts: int, origin: tuple[str, int, int]
    ) -> HeaderList:
        """The record's own headers (those a producer may send) and the dead-letter ones."""
        headers = record.headers
        topic, partition, offset = origin
        where = f"{topic}[{partition}]@{offset}"
        letter: HeaderList = [
            (k, v)
            for k, v in headers
            if not k.startswith(("dlq.", "retry.")) and sendable_header_name(k)
        ]
        dropped = sum(1 for k, _ in headers if not sendable_header_name(k))
        if dropped:  # another client wrote names no governed producer sends (an empty one)
            _log.warning(
                "dead letter of %s: %d headers with unsendable names left out", where, dropped
            )
        timestamp = record.timestamp
        letter += [
            ("dlq.error.type", f"{type(error).__module__}.{type(error).__qualname__}"),
            ("dlq.error.message", str(error)[:_MAX_ERROR_MESSAGE]),
            ("dlq.original.topic", topic),
            ("dlq.original.partition", str(partition)),
            ("dlq.original.offset", str(offset)),
            ("dlq.original.timestamp", "" if timestamp is None else str(timestamp)),
            ("dlq.attempts", str(attempts)),
            ("dlq.consumer.group", self.group_id),
            ("dlq.consumer.service", self.service),
        ]
        return letter

    def send_through(self, producer: ProducerBase) -> None:
        """Publish through ``producer``, the transactional producer of a transactional
        consumer: each dead letter joins the open transaction."""
        for contract in self._contracts.values():
            dlq = contract.dead_letter_topic
            if dlq is not None and producer.service not in self.catalog.topic(dlq).producers:
                msg = (
                    f"the transactional producer of service {producer.service!r} publishes "
                    f"the dead letters of {contract.name!r}, but is not a producer of its "
                    f"dead-letter topic {dlq!r}: add it to that contract's producers"
                )
                raise GovernanceViolation(
                    msg,
                    rule="dead-letter.not-producer",
                    topic=dlq,
                    field="producers",
                    value=producer.service,
                )
        self._producer = producer
        self._transactional = True

    def sender(self) -> ProducerBase:
        """The producer dead letters (and retry tiers' records) go through."""
        return self._sender()

    def _sender(self) -> ProducerBase:
        if self._producer is None:
            shared = _config.shared_connection(self._overrides)
            shared.pop("client.id", None)
            self._producer = GovernedProducer(
                self.catalog,
                service=self.service,
                bootstrap_servers=self._bootstrap_servers,
                overrides=shared,
                registry=self._registry,
                verify_topics=False,  # the consumer checked its dead-letter topics already
            )
        return self._producer

    def close(self) -> None:
        """Deliver what was published and release the producer, if this owns one (the
        application closes its own transactional producer)."""
        if self._producer is not None and not self._transactional:
            self._producer.close()
