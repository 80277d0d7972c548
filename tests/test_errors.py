"""The error tree: one base, stdlib parents, payloads that survive pickling."""

from __future__ import annotations

import pickle

import pytest

from governed_kafka import errors


@pytest.mark.parametrize(
    ("error", "stdlib"),
    [
        (errors.ContractError("m", path="f.toml", topic="t", key="k"), ValueError),
        (errors.GovernanceViolation("m", rule="r", topic="t", field="f", value=1), ValueError),
        (errors.ConfigError("m", key="acks", value="1"), ValueError),
        (errors.SerializationError("m", topic="t", field="a.b"), ValueError),
        (errors.DeserializationError("m", topic="t", partition=1, offset=2, data=b"x"), ValueError),
        (errors.BackpressureTimeout("m", topic="t", waited_s=1.0), TimeoutError),
        (errors.ClosedError("m"), RuntimeError),
    ],
)
def test_errors_subclass_the_base_and_their_stdlib_parent(
    error: errors.GovernedKafkaError, stdlib: type[Exception]
) -> None:
    """Every error is a GovernedKafkaError and also the stdlib exception that matches it."""
    assert isinstance(error, errors.GovernedKafkaError)
    assert isinstance(error, stdlib)


def test_payload_survives_pickling() -> None:
    """Keyword-only payloads come back intact after a pickle round trip."""
    error = errors.DeliveryError(
        "lost", topic="t", partition=3, key=b"k", code="MSG_TIMED_OUT", retriable=True
    )
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is errors.DeliveryError
    assert str(copy) == "lost"
    assert (copy.topic, copy.partition, copy.key, copy.code, copy.retriable) == (
        "t",
        3,
        b"k",
        "MSG_TIMED_OUT",
        True,
    )


def test_contract_error_always_lists_its_problems() -> None:
    """A ContractError built from one problem exposes it in ``problems`` too."""
    error = errors.ContractError("bad", path="g.toml", topic="t", key="partitions")
    assert error.problems == (errors.ContractProblem("bad", topic="t", key="partitions"),)


def test_retries_exhausted_is_in_the_tree_and_keeps_its_payload() -> None:
    """RetriesExhausted, raised by RetryPolicy.call(), is a GovernedKafkaError with its payload."""
    from governed_kafka import RetriesExhausted, retry

    assert retry.RetriesExhausted is RetriesExhausted
    error = RetriesExhausted(ValueError("boom"), 3)
    assert isinstance(error, errors.GovernedKafkaError)
    copy = pickle.loads(pickle.dumps(error))
    assert (str(copy.error), copy.attempts) == ("boom", 3)


def test_the_testing_errors_are_in_the_tree() -> None:
    """The errors of governed_kafka.testing share the base and the stdlib parent they name."""
    from governed_kafka.testing import (
        BrokerNotFoundError,
        BrokerStartError,
        KafkaClusterUnavailable,
    )

    assert issubclass(BrokerNotFoundError, errors.GovernedKafkaError)
    assert issubclass(BrokerNotFoundError, FileNotFoundError)
    assert issubclass(BrokerStartError, RuntimeError)
    assert issubclass(KafkaClusterUnavailable, RuntimeError)
    for name in ("BrokerNotFoundError", "BrokerStartError", "KafkaClusterUnavailable"):
        assert name in errors.__doc__
