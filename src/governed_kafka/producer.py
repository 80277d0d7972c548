"""The governed producer: durable by construction, refusing what a contract forbids.

``GovernedProducer`` always runs with idempotence, ``acks=all``, at most five
requests in flight and the Java-compatible ``murmur2_random`` partitioner; an
override that would weaken any of these is refused at construction. Every send is
checked against the topic's contract before anything is queued: a refused send
raises and leaves the topic untouched.

Delivery reports are served without the caller ever polling: the sending thread
serves them in passing while it sends, and a background thread serves them when it
does not. ``send()`` returns a :class:`DeliveryFuture`; a full local queue blocks
the sender for at most ``max_block_s`` (backpressure) and then raises
:class:`~governed_kafka.errors.BackpressureTimeout`; nothing is dropped silently. A
fatal error of the producer (an idempotent producer that can no longer keep its
guarantees) refuses every later send with a
:class:`~governed_kafka.errors.DeliveryError` naming it.

With ``transactional_id=`` the producer is transactional: ``with
producer.transaction():`` commits what the block sent together, or aborts it; a fenced
producer (another instance took over its id) raises
:class:`~governed_kafka.errors.ProducerFenced` from then on.

The producer is :class:`~governed_kafka._producer_base.ProducerBase` with this
module's constructor; its send-time checks live in ``governed_kafka._routes``, its
delivery futures in ``governed_kafka._delivery``.
"""

from __future__ import annotations

from collections.abc import Sequence

from . import profiles
from ._config import Overrides
from ._delivery import DeliveryFuture, RecordMetadata
from ._options import (
    DEFAULT_MAX_BLOCK_S,
    DEFAULT_SKEW_POLICY,
    DEFAULT_TRANSACTION_INIT_TIMEOUT_S,
    ProducerOptions,
)
from ._producer_base import ProducerBase
from ._routes import Headers
from .contracts import Catalog
from .registry import SchemaRegistry
from .skew import SkewPolicy

__all__ = [
    "DEFAULT_MAX_BLOCK_S",
    "DEFAULT_SKEW_POLICY",
    "DEFAULT_TRANSACTION_INIT_TIMEOUT_S",
    "DeliveryFuture",
    "GovernedProducer",
    "Headers",
    "RecordMetadata",
]


class GovernedProducer(ProducerBase):
    """Send records to governed topics with durability and contracts enforced.

    :param catalog: the loaded contracts.
    :param service: this service's name; it must be a listed producer of every topic
        it sends to. Also the default ``client.id``.
    :param bootstrap_servers: ``"host:port,host:port"`` or a list of them.
    :param profile: batching, linger, compression and queue sizes
        (:mod:`governed_kafka.profiles`); never durability.
    :param hooks: observers of sends, deliveries, backpressure, throttling
        (:mod:`governed_kafka.hooks`).
    :param overrides: further librdkafka settings (TLS, SASL, timeouts, ...). Unknown
        keys, consumer keys, keys the library owns and anything that weakens a governed
        setting raise :class:`~governed_kafka.errors.ConfigError` naming the key.
    :param max_block_s: how long ``send()`` may wait for room in a full local queue.
    :param registry: where schema ids come from (:mod:`governed_kafka.registry`); by
        default a :class:`~governed_kafka.registry.LocalSchemaRegistry` built from the
        catalog. Every schema topic's current schema is looked up and checked against
        the registered versions under the topic's compatibility mode here, at
        construction: an incompatible or unregistered schema raises
        :class:`~governed_kafka.errors.GovernanceViolation` before anything is sent.
    :param auto_register: register a current schema the registry does not have instead
        of refusing it. Off by default: registration is a deployment step (``apply``).
    :param verify_topics: check at construction, before any traffic, that every topic this
        service may produce to exists on the cluster and matches its contract
        (partitions, cleanup policy, min ISR); a mismatch raises
        :class:`~governed_kafka.errors.GovernanceViolation` (``topic.missing``,
        ``topic.drift``). ``None`` follows :attr:`Catalog.verify_topics
        <governed_kafka.contracts.Catalog.verify_topics>`: on, except in the ``local``
        environment, unless the policy says otherwise.
    :param skew: how to watch for partition skew and hot keys
        (:class:`~governed_kafka.skew.SkewPolicy`); ``None`` turns the watch off.
    :param transactional_id: makes the producer transactional (exactly-once
        processing, ``docs/exactly-once.md``): the id is registered with the cluster at
        construction (``init_transactions``, which fences an older producer with the same
        id and aborts what it left open), and every send must happen inside a
        transaction: ``with producer.transaction():``, or the handler of a consumer with
        ``CommitStrategy.transactional(producer)``; a send outside one is refused
        (``GovernanceViolation``, rule ``transaction.required``). A service with a
        ``[services.NAME]`` table must declare the id (or a prefix of it) in its
        ``transactional_ids``. ``transaction.timeout.ms`` may then be overridden within
        1 s .. 15 min (default 60 s).
    :param transaction_init_timeout_s: how long construction waits for
        ``init_transactions``; then :class:`~governed_kafka.errors.TransactionError`.
    """

    def __init__(
        self,
        catalog: Catalog,
        *,
        service: str,
        bootstrap_servers: str | list[str] | tuple[str, ...],
        profile: profiles.Profile = profiles.DURABLE,
        hooks: Sequence[object] = (),
        overrides: Overrides | None = None,
        max_block_s: float = DEFAULT_MAX_BLOCK_S,
        registry: SchemaRegistry | None = None,
        auto_register: bool = False,
        verify_topics: bool | None = None,
        skew: SkewPolicy | None = DEFAULT_SKEW_POLICY,
        transactional_id: str | None = None,
        transaction_init_timeout_s: float = DEFAULT_TRANSACTION_INIT_TIMEOUT_S,
    ) -> None:
        options = ProducerOptions(
            service=service,
            bootstrap_servers=bootstrap_servers,
            profile=profile,
            hooks=hooks,
            overrides=overrides,
            max_block_s=max_block_s,
            registry=registry,
            auto_register=auto_register,
            verify_topics=verify_topics,
            skew=skew,
            transactional_id=transactional_id,
            transaction_init_timeout_s=transaction_init_timeout_s,
        )
        super().__init__(catalog, options)

    def __enter__(self) -> GovernedProducer:
        return self
