"""How a consumer retries a failing handler before it dead-letters the record."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

import attrs
import tenacity as _t

from .errors import ConfigError, RetriesExhausted

__all__ = ["RetriesExhausted", "RetryPolicy"]

T = TypeVar("T")

#: Attempts per record, the first one included.
DEFAULT_ATTEMPTS: Final = 3
#: First backoff, doubled at each further attempt ...
DEFAULT_INITIAL_BACKOFF_S: Final = 0.1
#: ... up to this ...
DEFAULT_MAX_BACKOFF_S: Final = 2.0
#: ... with up to this much random jitter added, so retries of many consumers spread out.
DEFAULT_JITTER_S: Final = 0.1


def _attempts(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        msg = f"RetryPolicy.attempts must be >= 1, got {value}"
        raise ValueError(msg)


def _non_negative(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value < 0:
        msg = f"RetryPolicy.{attribute.name} must be >= 0, got {value}"
        raise ValueError(msg)


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """Attempts and backoff for a handler that raises.

    A record whose handler raised one of ``retry_on`` (and none of ``give_up_on``) is
    handed to the handler again, up to ``attempts`` times in all, waiting an exponential
    backoff with jitter in between. When the attempts are exhausted, or the error is not
    retryable, the record goes to the topic's dead-letter topic.

    Backoff blocks the sync consumer's poll loop, so the longest total wait must stay well
    under ``max.poll.interval.ms``; the consumer refuses a policy that does not. (The
    asyncio consumer awaits the backoff and goes on polling, under the same limit.)
    """

    attempts: int = attrs.field(default=DEFAULT_ATTEMPTS, validator=_attempts)
    initial_backoff_s: float = attrs.field(
        default=DEFAULT_INITIAL_BACKOFF_S, validator=_non_negative
    )
    max_backoff_s: float = attrs.field(default=DEFAULT_MAX_BACKOFF_S, validator=_non_negative)
    jitter_s: float = attrs.field(default=DEFAULT_JITTER_S, validator=_non_negative)
    #: Errors worth another attempt.
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    #: Errors that are never retried, even when they match ``retry_on``.
    give_up_on: tuple[type[BaseException], ...] = ()

    @classmethod
    def never(cls) -> RetryPolicy:
        """One attempt: a failing record goes straight to the dead-letter topic."""
        return cls(attempts=1)

    def retryable(self, error: BaseException) -> bool:
        """Whether ``error`` may be retried at all."""
        return isinstance(error, self.retry_on) and not isinstance(error, self.give_up_on)

    def worst_case_wait_s(self) -> float:
        """The longest a record can spend waiting between attempts."""
        total = 0.0
        for attempt in range(self.attempts - 1):
            total += min(self.initial_backoff_s * 2**attempt, self.max_backoff_s) + self.jitter_s
        return total

    def check_fits(self, max_poll_interval_s: float) -> None:
        """Refuse (``ConfigError``) a policy whose worst wait on one record is not well under
        ``max.poll.interval.ms``: the group would evict the consumer mid-retry."""
        worst = self.worst_case_wait_s()
        if worst >= max_poll_interval_s / 2:
            msg = (
                f"retry policy may wait {worst:.1f} s on one record, which is not well under "
                f"max.poll.interval.ms ({max_poll_interval_s:.0f} s): the group would "
                "evict this consumer mid-retry; lower the backoff or attempts, or raise "
                "max.poll.interval.ms"
            )
            raise ConfigError(msg, key="max.poll.interval.ms", value=max_poll_interval_s)

    def backoff_s(self, attempt: int) -> float:
        """The wait after failed attempt ``attempt`` (1 for the first), as :meth:`call`
        waits it: the same tenacity strategy, jitter included.

        For retries that cannot run inside one call, such as a transactional consumer's,
        which aborts, rewinds and meets the record again in a later batch.
        """
        state = _t.RetryCallState(retry_object=_t.Retrying(), fn=None, args=(), kwargs={})
        state.attempt_number = attempt
        return float(self._wait()(state))

    def call(
        self,
        fn: Callable[[], T],
        *,
        first_error: BaseException,
        on_retry: Callable[[int, BaseException, float], object] | None = None,
    ) -> tuple[T, int]:
        """Retry ``fn`` whose first attempt already failed with ``first_error``.

        Returns ``fn``'s result and the number of attempts made (first included) once it
        succeeds. When the attempts are exhausted or an error is not retryable, raises
        :class:`RetriesExhausted` carrying the last error and the attempts made.
        ``on_retry(attempt, error, wait_s)`` is called before each wait.
        """
        attempts = 0
        try:
            for attempt in _t.Retrying(**self._tenacity(on_retry)):
                with attempt:
                    attempts += 1
                    if attempts == 1:
                        raise first_error  # the attempt the caller already made
                    return fn(), attempts
        except Exception as error:  # KeyboardInterrupt and SystemExit pass through
            raise RetriesExhausted(error, attempts) from error
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover

    async def acall(
        self,
        fn: Callable[[], Awaitable[T]],
        *,
        first_error: BaseException,
        on_retry: Callable[[int, BaseException, float], object] | None = None,
    ) -> tuple[T, int]:
        """:meth:`call` for a coroutine function: the backoff is awaited, not slept.

        Cancelling the caller cancels the attempt or the wait in progress;
        ``asyncio.CancelledError`` is never retried nor turned into
        :class:`RetriesExhausted`.
        """
        attempts = 0
        try:
            async for attempt in _t.AsyncRetrying(**self._tenacity(on_retry)):
                with attempt:
                    attempts += 1
                    if attempts == 1:
                        raise first_error
                    return await fn(), attempts
        except Exception as error:  # CancelledError is a BaseException: it passes through
            raise RetriesExhausted(error, attempts) from error
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover

    def _wait(self) -> _t.wait.wait_base:
        """Exponential backoff from ``initial_backoff_s`` up to ``max_backoff_s``, plus jitter."""
        return _t.wait_exponential(
            multiplier=self.initial_backoff_s, max=self.max_backoff_s
        ) + _t.wait_random(0, self.jitter_s)

    def _tenacity(
        self, on_retry: Callable[[int, BaseException, float], object] | None
    ) -> dict[str, Any]:
        """The tenacity strategies of this policy, shared by :meth:`call` and :meth:`acall`."""

        def before_sleep(state: _t.RetryCallState) -> None:
            if on_retry is not None and state.outcome is not None:
                error = state.outcome.exception()
                wait = state.next_action.sleep if state.next_action else 0.0
                if error is not None:
                    on_retry(state.attempt_number, error, wait)

        return {
            "stop": _t.stop_after_attempt(self.attempts),
            "wait": self._wait(),
            "retry": _t.retry_if_exception(self.retryable),
            "before_sleep": before_sleep,
            "reraise": True,
        }
