"""The tracing hook's own decisions, without a broker: when it wants to see sends."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from governed_kafka import tracing
from governed_kafka.tracing import OpenTelemetryHook


def test_with_an_sdk_provider_the_hook_wants_every_send() -> None:
    """A hook given an SDK tracer provider answers wants_send() with True."""
    assert OpenTelemetryHook(tracer_provider=TracerProvider()).wants_send()


def test_with_the_apis_no_op_provider_the_hook_wants_no_send() -> None:
    """A hook given the API's no-op provider never asks for sends."""
    hook = OpenTelemetryHook(tracer_provider=trace.NoOpTracerProvider())
    assert not any(hook.wants_send() for _ in range(1000))


def test_an_sdk_configured_later_is_noticed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Once a global SDK provider appears, the hook wants sends within 64 questions."""
    hook = OpenTelemetryHook()
    assert not hook.wants_send()
    monkeypatch.setattr(tracing, "_global_provider", TracerProvider)
    answers = [hook.wants_send() for _ in range(64)]
    assert answers[-1]
