"""The tracing hook's own decisions, without a broker: when it wants to see sends."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from governed_kafka import tracing
from governed_kafka.hooks import (
    DeliveryDetails,
    SendDetails,
    TransactionAbortDetails,
    TransactionBeginDetails,
    TransactionCommitDetails,
)
from governed_kafka.tracing import MAX_TRANSACTION_LINKS, OpenTelemetryHook


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


def _traced() -> tuple[OpenTelemetryHook, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return OpenTelemetryHook(tracer_provider=provider), exporter


def _send_in(hook: OpenTelemetryHook, transactional_id: str | None) -> None:
    details = SendDetails(
        topic="out",
        key=b"k",
        value_size=1,
        headers=[],
        client_id="enricher",
        transactional_id=transactional_id,
    )
    observer = hook.on_send(details)
    assert observer is not None
    observer(
        DeliveryDetails(
            topic="out",
            partition=0,
            offset=1,
            key=b"k",
            latency_s=0.0,
            error=None,
            client_id="enricher",
        )
    )


def _ended(sequence: int, *, records: int) -> dict[str, object]:
    return {
        "transactional_id": "tx-1",
        "client_id": "enricher",
        "sequence": sequence,
        "records": records,
        "group_id": "g",
    }


def test_a_committed_transaction_is_one_span_linked_to_its_records_send_spans() -> None:
    """From begin to commit: one INTERNAL span, linked to each send span of the
    transaction (not to sends outside it), saying what it committed."""
    hook, exporter = _traced()
    _send_in(hook, None)
    hook.on_transaction_begin(
        TransactionBeginDetails(transactional_id="tx-1", client_id="enricher", sequence=1)
    )
    for _ in range(3):
        _send_in(hook, "tx-1")
    hook.on_transaction_commit(
        TransactionCommitDetails(
            **_ended(1, records=3),  # type: ignore[arg-type]
            offsets=(("in", 0, 10), ("in", 1, 4)),
            reason="routine",
            duration_s=0.3,
            commit_s=0.02,
        )
    )
    spans = exporter.get_finished_spans()
    [transaction] = [s for s in spans if s.name == "transaction tx-1"]
    sends = [s for s in spans if s.name == "send out"]
    assert transaction.kind is SpanKind.INTERNAL
    linked = {link.context.span_id for link in transaction.links}
    assert linked == {s.context.span_id for s in sends[1:]}
    assert transaction.attributes is not None
    assert transaction.attributes["governed_kafka.transaction.records"] == 3
    assert transaction.attributes["governed_kafka.transaction.offsets"] == 2
    assert transaction.attributes["governed_kafka.transaction.outcome"] == "commit"
    assert transaction.status.status_code is not StatusCode.ERROR


def test_an_aborted_transaction_span_has_an_error_status_naming_why() -> None:
    """An abort ends the transaction's span with an error status and the error's type."""
    hook, exporter = _traced()
    hook.on_transaction_begin(
        TransactionBeginDetails(transactional_id="tx-1", client_id="enricher", sequence=4)
    )
    _send_in(hook, "tx-1")
    hook.on_transaction_abort(
        TransactionAbortDetails(
            **_ended(4, records=1),  # type: ignore[arg-type]
            reason="handler-error",
            duration_s=0.1,
            error=ValueError("bad input"),
        )
    )
    [transaction] = [s for s in exporter.get_finished_spans() if s.name == "transaction tx-1"]
    assert transaction.status.status_code is StatusCode.ERROR
    assert transaction.status.description == "aborted: ValueError: bad input"
    assert transaction.attributes is not None
    assert transaction.attributes["error.type"] == "builtins.ValueError"
    assert transaction.attributes["governed_kafka.transaction.reason"] == "handler-error"
    assert len(transaction.links) == 1


def test_a_transaction_span_keeps_a_bounded_number_of_links() -> None:
    """A large transaction links at most MAX_TRANSACTION_LINKS send spans."""
    hook, exporter = _traced()
    hook.on_transaction_begin(
        TransactionBeginDetails(transactional_id="tx-1", client_id="enricher", sequence=1)
    )
    for _ in range(MAX_TRANSACTION_LINKS + 5):
        _send_in(hook, "tx-1")
    hook.on_transaction_commit(
        TransactionCommitDetails(
            **_ended(1, records=MAX_TRANSACTION_LINKS + 5),  # type: ignore[arg-type]
            offsets=(),
            reason="user",
            duration_s=0.1,
            commit_s=0.01,
        )
    )
    [transaction] = [s for s in exporter.get_finished_spans() if s.name == "transaction tx-1"]
    assert len(transaction.links) == MAX_TRANSACTION_LINKS
