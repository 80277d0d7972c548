"""RetryPolicy: attempts, which errors retry, and the worst-case wait."""

from __future__ import annotations

import asyncio

import pytest

from governed_kafka import RetryPolicy
from governed_kafka.retry import RetriesExhausted


def _flaky(failures: int, error: type[Exception] = ValueError) -> tuple[list[int], object]:
    calls: list[int] = []

    def fn() -> str:
        calls.append(1)
        if len(calls) < failures:
            raise error("not yet")
        return "ok"

    return calls, fn


def test_succeeds_once_an_attempt_succeeds() -> None:
    """A handler failing twice then succeeding returns its result after three attempts."""
    policy = RetryPolicy(attempts=5, initial_backoff_s=0, jitter_s=0)
    calls, fn = _flaky(failures=2)
    result, attempts = policy.call(fn, first_error=ValueError("first"))  # type: ignore[arg-type]
    assert result == "ok"
    assert attempts == 3  # the caller's failed first attempt, one more failure, a success
    assert len(calls) == 2


def test_exhausted_attempts_carry_the_last_error_and_count() -> None:
    """When every attempt fails, RetriesExhausted carries the last error and the attempt count."""
    policy = RetryPolicy(attempts=3, initial_backoff_s=0, jitter_s=0)
    calls, fn = _flaky(failures=99)
    with pytest.raises(RetriesExhausted) as exhausted:
        policy.call(fn, first_error=ValueError("first"))  # type: ignore[arg-type]
    assert exhausted.value.attempts == 3
    assert str(exhausted.value.error) == "not yet"
    assert len(calls) == 2


def test_errors_outside_retry_on_are_not_retried() -> None:
    """An error that is not retryable ends the attempts at once."""
    policy = RetryPolicy(attempts=5, retry_on=(TimeoutError,), initial_backoff_s=0)
    calls, fn = _flaky(failures=99)
    with pytest.raises(RetriesExhausted) as exhausted:
        policy.call(fn, first_error=KeyError("bad data"))  # type: ignore[arg-type]
    assert exhausted.value.attempts == 1
    assert calls == []


def test_give_up_on_wins_over_retry_on() -> None:
    """give_up_on excludes errors that retry_on would otherwise retry."""
    policy = RetryPolicy(attempts=5, give_up_on=(KeyError,), initial_backoff_s=0)
    assert policy.retryable(ValueError())
    assert not policy.retryable(KeyError())


def test_on_retry_reports_each_wait() -> None:
    """on_retry is told the failed attempt's number, its error and the wait before the next."""
    policy = RetryPolicy(attempts=3, initial_backoff_s=0.001, max_backoff_s=0.002, jitter_s=0)
    seen: list[tuple[int, str, float]] = []
    _, fn = _flaky(failures=99)
    with pytest.raises(RetriesExhausted):
        policy.call(
            fn,  # type: ignore[arg-type]
            first_error=ValueError("first"),
            on_retry=lambda n, e, w: seen.append((n, str(e), w)),
        )
    assert [(n, e) for n, e, _ in seen] == [(1, "first"), (2, "not yet")]
    assert all(0 < w <= 0.002 for _, _, w in seen)


def test_keyboard_interrupt_is_never_swallowed() -> None:
    """A KeyboardInterrupt from the handler propagates instead of counting as a failure."""
    policy = RetryPolicy(attempts=3, initial_backoff_s=0)

    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        policy.call(interrupted, first_error=ValueError("first"))


def test_worst_case_wait_sums_capped_backoffs_and_jitter() -> None:
    """worst_case_wait_s adds each capped exponential backoff plus the full jitter."""
    policy = RetryPolicy(attempts=4, initial_backoff_s=1.0, max_backoff_s=3.0, jitter_s=0.5)
    assert policy.worst_case_wait_s() == pytest.approx((1 + 0.5) + (2 + 0.5) + (3 + 0.5))


def test_never_makes_one_attempt() -> None:
    """RetryPolicy.never() sends a failing record straight on."""
    policy = RetryPolicy.never()
    with pytest.raises(RetriesExhausted) as exhausted:
        policy.call(lambda: None, first_error=ValueError("x"))
    assert exhausted.value.attempts == 1


@pytest.mark.parametrize("field", ["attempts", "initial_backoff_s", "max_backoff_s", "jitter_s"])
def test_nonsense_values_are_refused(field: str) -> None:
    """Zero attempts and negative waits are refused when the policy is built."""
    with pytest.raises(ValueError, match=field):
        RetryPolicy(**{field: 0 if field == "attempts" else -1})  # type: ignore[arg-type]


async def _attempts_until(failures: int, calls: list[int]) -> str:
    calls.append(1)
    if len(calls) < failures:
        raise ValueError("not yet")
    return "ok"


@pytest.mark.asyncio
async def test_acall_retries_a_coroutine_until_it_succeeds() -> None:
    """acall() awaits further attempts of a coroutine function until one succeeds."""
    policy = RetryPolicy(attempts=5, initial_backoff_s=0, jitter_s=0)
    calls: list[int] = []
    retried: list[tuple[int, str]] = []
    result, attempts = await policy.acall(
        lambda: _attempts_until(2, calls),
        first_error=ValueError("first"),
        on_retry=lambda n, error, wait: retried.append((n, str(error))),
    )
    assert (result, attempts) == ("ok", 3)
    assert retried == [(1, "first"), (2, "not yet")]


@pytest.mark.asyncio
async def test_acall_exhausted_attempts_carry_the_last_error() -> None:
    """When every awaited attempt fails, RetriesExhausted carries the last error and count."""
    policy = RetryPolicy(attempts=3, initial_backoff_s=0, jitter_s=0)
    calls: list[int] = []
    with pytest.raises(RetriesExhausted) as exhausted:
        await policy.acall(lambda: _attempts_until(99, calls), first_error=ValueError("first"))
    assert exhausted.value.attempts == 3
    assert str(exhausted.value.error) == "not yet"


@pytest.mark.asyncio
async def test_acall_passes_cancellation_through_without_retrying() -> None:
    """Cancelling an attempt is neither retried nor reported as exhausted retries."""
    policy = RetryPolicy(attempts=5, initial_backoff_s=0, jitter_s=0)
    started = asyncio.Event()

    async def hangs() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(policy.acall(hangs, first_error=ValueError("first")))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
