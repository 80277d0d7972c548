"""Transactions without a broker: what is refused before any traffic, and why."""

from __future__ import annotations

import time
from typing import Any

import pytest

from governed_kafka import (
    Catalog,
    CommitStrategy,
    ConfigError,
    ContractError,
    GovernanceViolation,
    GovernedProducer,
    RetryPolicy,
    TransactionError,
    profiles,
)
from governed_kafka._config import producer_config

NOWHERE = "127.0.0.1:1"


def _catalog(*, exactly_once: bool = False, services: dict[str, Any] | None = None) -> Catalog:
    data: dict[str, Any] = {
        "policy": {"min_replication_factor": 1, "min_insync_replicas": 1},
        "topics": [
            {
                "name": "shop.order.enriched.v1",
                "partitions": 3,
                "replication_factor": 1,
                "exactly_once": exactly_once,
                "producers": ["enricher"],
                "consumers": ["auditor"],
            }
        ],
    }
    if services is not None:
        data["services"] = services
    return Catalog.from_dict(data)


def _config(**overrides: Any) -> dict[str, Any]:
    tid = overrides.pop("transactional_id", "enricher-1")
    return producer_config(
        bootstrap_servers=NOWHERE,
        client_id="enricher",
        profile=profiles.DURABLE,
        overrides=overrides,
        transactional_id=tid,
    )


def _plain_producer(catalog: Catalog | None = None) -> GovernedProducer:
    return GovernedProducer(
        catalog or _catalog(),
        service="enricher",
        bootstrap_servers=NOWHERE,
        verify_topics=False,
        overrides={"log_level": 0},
    )


# ---------------------------------------------------------------- configuration


def test_a_transactional_producer_runs_with_its_id_and_the_governed_timeout() -> None:
    """transactional_id= sets transactional.id, and transaction.timeout.ms is 60 s."""
    config = _config()
    assert config["transactional.id"] == "enricher-1"
    assert config["transaction.timeout.ms"] == 60_000
    assert config["enable.idempotence"] is True


def test_transactional_id_in_overrides_is_refused_pointing_at_the_keyword() -> None:
    """The id comes only as the constructor keyword, which checks it against the contract."""
    with pytest.raises(ConfigError, match="pass transactional_id= to the producer") as refused:
        _config(**{"transactional.id": "sneaky"})
    assert refused.value.key == "transactional.id"


def test_transaction_timeout_is_refused_on_a_producer_without_transactions() -> None:
    """transaction.timeout.ms means nothing without transactions: refused, naming the key."""
    with pytest.raises(ConfigError, match="applies to transactional producers only") as refused:
        _config(transactional_id=None, **{"transaction.timeout.ms": 30_000})
    assert refused.value.key == "transaction.timeout.ms"


@pytest.mark.parametrize("value", [999, 900_001, "soon"])
def test_a_transaction_timeout_outside_its_bounds_is_refused(value: object) -> None:
    """transaction.timeout.ms must lie between 1 s and the brokers' 15 min maximum."""
    with pytest.raises(ConfigError, match="between 1000 and 900000") as refused:
        _config(**{"transaction.timeout.ms": value})
    assert refused.value.key == "transaction.timeout.ms"
    assert refused.value.value == value


def test_a_transaction_timeout_within_its_bounds_is_taken() -> None:
    """A shorter transaction timeout, with the delivery timeout inside it, is accepted."""
    config = _config(**{"transaction.timeout.ms": 10_000, "delivery.timeout.ms": 10_000})
    assert config["transaction.timeout.ms"] == 10_000


@pytest.mark.parametrize(
    ("key", "value"), [("delivery.timeout.ms", 120_000), ("socket.timeout.ms", 59_950)]
)
def test_timeouts_longer_than_the_transaction_are_refused(key: str, value: int) -> None:
    """A record may not outlive its transaction: longer delivery or socket timeouts are
    refused, naming the key and the transaction timeout."""
    with pytest.raises(ConfigError, match=r"transaction\.timeout\.ms \(60000\)") as refused:
        _config(**{key: value})
    assert refused.value.key == key


@pytest.mark.parametrize("tid", ["", "  ", " enricher-1", 7])
def test_a_malformed_transactional_id_is_refused(tid: object) -> None:
    """An empty, padded or non-string transactional id is refused before any connection."""
    with pytest.raises(ConfigError, match="transactional_id must be a non-empty name") as refused:
        GovernedProducer(
            _catalog(),
            service="enricher",
            bootstrap_servers=NOWHERE,
            verify_topics=False,
            transactional_id=tid,  # type: ignore[arg-type]
        )
    assert refused.value.key == "transactional.id"


def test_an_unreachable_cluster_fails_construction_within_the_init_timeout() -> None:
    """init_transactions that gets no answer raises TransactionError naming the id, in time."""
    started = time.monotonic()
    with pytest.raises(TransactionError, match="'enricher-1' got no answer within 1 s") as failed:
        GovernedProducer(
            _catalog(),
            service="enricher",
            bootstrap_servers=NOWHERE,
            verify_topics=False,
            overrides={"log_level": 0},
            transactional_id="enricher-1",
            transaction_init_timeout_s=1.0,
        )
    assert time.monotonic() - started < 5
    assert failed.value.transactional_id == "enricher-1"
    assert failed.value.operation == "init_transactions"
    assert failed.value.retriable


def test_a_non_positive_init_timeout_is_refused() -> None:
    """transaction_init_timeout_s must be positive."""
    with pytest.raises(ValueError, match="transaction_init_timeout_s must be > 0"):
        GovernedProducer(
            _catalog(),
            service="enricher",
            bootstrap_servers=NOWHERE,
            transactional_id="enricher-1",
            transaction_init_timeout_s=0,
        )


# ---------------------------------------------------------------- the service's ids


def test_an_undeclared_transactional_id_is_refused_before_any_connection() -> None:
    """A service with a [services] table may use only the transactional ids it declares."""
    catalog = _catalog(
        services={"enricher": {"principal": "User:enricher", "transactional_ids": ["enr-*"]}}
    )
    with pytest.raises(GovernanceViolation, match="'enricher-1' is not declared") as refused:
        GovernedProducer(
            catalog,
            service="enricher",
            bootstrap_servers=NOWHERE,
            verify_topics=False,
            transactional_id="enricher-1",
        )
    assert refused.value.rule == "producer.transactional-id"
    assert refused.value.value == "enricher-1"
    assert "enr-*" in str(refused.value)


@pytest.mark.parametrize(
    ("declared", "tid", "allowed"),
    [
        (("enricher-1",), "enricher-1", True),
        (("enricher-1",), "enricher-12", False),
        (("enricher-*",), "enricher-12", True),
        (("enricher-*",), "enrich", False),
        ((), "enricher-1", False),
    ],
)
def test_a_service_allows_its_named_and_prefixed_transactional_ids(
    declared: tuple[str, ...], tid: str, allowed: bool
) -> None:
    """A name allows itself; a trailing '*' allows every id under the prefix."""
    catalog = _catalog(
        services={"enricher": {"principal": "User:e", "transactional_ids": list(declared)}}
    )
    service = catalog.service("enricher")
    assert service is not None
    assert service.allows_transactional_id(tid) is allowed


# ---------------------------------------------------------------- exactly_once topics


def test_exactly_once_must_be_true_or_false() -> None:
    """The contract key is a boolean; anything else is a ContractError naming the key."""
    data: dict[str, Any] = {
        "topics": [{"name": "a.b.c.v1", "partitions": 1, "replication_factor": 1}]
    }
    data["topics"][0]["exactly_once"] = "yes"
    with pytest.raises(ContractError, match="expected true or false") as refused:
        Catalog.from_dict(data)
    assert refused.value.key == "exactly_once"


def test_a_producer_without_transactions_is_refused_on_an_exactly_once_topic() -> None:
    """Sending to an exactly_once topic without transactional_id is refused, nothing queued."""
    producer = _plain_producer(_catalog(exactly_once=True))
    try:
        with pytest.raises(GovernanceViolation, match="must be transactional") as refused:
            producer.send("shop.order.enriched.v1", b"v", key=b"k")
        assert refused.value.rule == "producer.not-transactional"
        assert refused.value.topic == "shop.order.enriched.v1"
        assert producer.flush(0) == 0
    finally:
        producer.close()


def test_a_producer_without_transactions_refuses_transaction() -> None:
    """transaction() on a producer made without transactional_id is a ConfigError."""
    producer = _plain_producer()
    try:
        with pytest.raises(ConfigError, match="has no transactional_id") as refused:
            producer.transaction()
        assert refused.value.key == "transactional.id"
        assert producer.transactional_id is None
    finally:
        producer.close()


# ---------------------------------------------------------------- the strategy


def test_the_transactional_strategy_refuses_a_producer_without_transactions() -> None:
    """CommitStrategy.transactional needs a producer made with transactional_id."""
    producer = _plain_producer()
    try:
        with pytest.raises(ConfigError, match="made without transactional_id") as refused:
            CommitStrategy.transactional(producer)
        assert refused.value.key == "transactional.id"
    finally:
        producer.close()


def test_the_transactional_strategy_refuses_what_is_not_a_governed_producer() -> None:
    """Anything but a GovernedProducer (an asyncio producer too) is refused, saying what to
    pass instead."""
    with pytest.raises(ConfigError, match="pass a GovernedProducer too") as refused:
        CommitStrategy.transactional(object())  # type: ignore[arg-type]
    assert refused.value.key == "transactional.id"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"max_records": 0}, "max_records must be >= 1"), ({"max_interval_s": 0}, "> 0")],
)
def test_the_transactional_strategy_refuses_empty_batches(
    kwargs: dict[str, Any], message: str
) -> None:
    """A batch of no records or no time is refused before the producer is looked at."""
    with pytest.raises(ValueError, match=message):
        CommitStrategy.transactional(object(), **kwargs)  # type: ignore[arg-type]


# ---------------------------------------------------------------- retries across batches


def test_backoff_s_is_the_policy_backoff_with_its_jitter() -> None:
    """backoff_s(n) waits what call() waits after attempt n: exponential, capped, jittered."""
    policy = RetryPolicy(attempts=5, initial_backoff_s=0.1, max_backoff_s=0.3, jitter_s=0.05)
    for attempt, base in [(1, 0.1), (2, 0.2), (3, 0.3), (4, 0.3)]:
        waits = [policy.backoff_s(attempt) for _ in range(50)]
        assert all(base <= w <= base + 0.05 for w in waits), (attempt, waits)
