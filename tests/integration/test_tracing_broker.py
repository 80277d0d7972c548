"""OpenTelemetry tracing across a real broker, recorded by the SDK's in-memory exporter."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import (
    CarrierT,
    Getter,
    Setter,
    TextMapPropagator,
    default_getter,
    default_setter,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    StatusCode,
    TraceFlags,
)

from conftest import CatalogFactory
from governed_kafka import (
    Catalog,
    DeliveryError,
    GovernedConsumer,
    GovernedProducer,
    Record,
    RetryPolicy,
)
from governed_kafka.testing import LocalBroker
from governed_kafka.tracing import OpenTelemetryHook
from kafka_helpers import create_topics, read_all

CONSUMER_OVERRIDES = {"session.timeout.ms": 6000}


def _topic(name: str, *, partitions: int = 1, extra: str = "") -> str:
    return f"""
    [[topics]]
    name = "{name}"
    owner = "team-test"
    partitions = {partitions}
    replication_factor = 1
    retention_ms = 3600000
    producers = ["checkout"]
    consumers = ["billing"]
    {extra}
    """


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    """An in-memory exporter behind a fresh SDK tracer provider (see ``hook``)."""
    return InMemorySpanExporter()


@pytest.fixture
def hook(exporter: InMemorySpanExporter) -> OpenTelemetryHook:
    """A tracing hook whose spans end up in ``exporter``."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return OpenTelemetryHook(tracer_provider=provider)


def _checkout(bootstrap: str, catalog: Catalog, *hooks: object, **options: Any) -> GovernedProducer:
    """The producing service of these tests, with ``hooks``."""
    return GovernedProducer(
        catalog, service="checkout", bootstrap_servers=bootstrap, hooks=hooks, **options
    )


def _named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == name]


def _consume(
    bootstrap: str,
    catalog: Any,
    topic: str,
    hook: OpenTelemetryHook,
    count: int,
    handler: Any = None,
    **options: Any,
) -> list[Record]:
    seen: list[Record] = []
    with GovernedConsumer(
        catalog,
        service="billing",
        group_id=f"g-{uuid.uuid4().hex[:8]}",
        topics=topic,
        bootstrap_servers=bootstrap,
        hooks=[hook],
        overrides=CONSUMER_OVERRIDES,
        **options,
    ) as consumer:
        consumer.run(handler or seen.append, max_records=count, timeout=30)
    return seen


def test_the_process_span_is_a_child_of_the_send_span_across_the_broker(
    kafka_broker: LocalBroker,
    provisioned: CatalogFactory,
    topic_name: str,
    hook: OpenTelemetryHook,
    exporter: InMemorySpanExporter,
) -> None:
    """The consumer's process span has the producer's send span as parent, in one trace."""
    catalog = provisioned(_topic(topic_name))
    bootstrap = kafka_broker.bootstrap_servers
    with _checkout(bootstrap, catalog, hook) as producer:
        producer.send_and_wait(topic_name, b"order-1", key=b"customer-7")
    _consume(bootstrap, catalog, topic_name, hook, 1)
    [send] = _named(exporter, f"send {topic_name}")
    [process] = _named(exporter, f"process {topic_name}")
    assert process.parent is not None
    assert process.parent.span_id == send.context.span_id
    assert process.context.trace_id == send.context.trace_id
    assert process.parent.is_remote


def test_the_send_span_follows_the_messaging_conventions(
    kafka_broker: LocalBroker,
    provisioned: CatalogFactory,
    topic_name: str,
    hook: OpenTelemetryHook,
    exporter: InMemorySpanExporter,
) -> None:
    """A send span is a PRODUCER span 'send <topic>' with the Kafka attributes, OK status."""
    catalog = provisioned(_topic(topic_name, partitions=3))
    with _checkout(kafka_broker.bootstrap_servers, catalog, hook) as producer:
        metadata = producer.send_and_wait(topic_name, b"order-1", key=b"customer-7")
    [span] = _named(exporter, f"send {topic_name}")
    assert span.kind is SpanKind.PRODUCER
    assert span.status.status_code is StatusCode.UNSET
    assert dict(span.attributes or {}) == {
        "messaging.system": "kafka",
        "messaging.operation.name": "send",
        "messaging.operation.type": "send",
        "messaging.destination.name": topic_name,
        "messaging.client.id": "checkout",
        "messaging.kafka.message.key": "customer-7",
        "messaging.message.body.size": 7,
        "messaging.destination.partition.id": str(metadata.partition),
        "messaging.kafka.offset": metadata.offset,
    }


def test_the_trace_context_travels_as_a_w3c_traceparent_header(
    kafka_broker: LocalBroker,
    provisioned: CatalogFactory,
    topic_name: str,
    hook: OpenTelemetryHook,
    exporter: InMemorySpanExporter,
) -> None:
    """The record on the broker carries traceparent naming the send span."""
    catalog = provisioned(_topic(topic_name))
    with _checkout(kafka_broker.bootstrap_servers, catalog, hook) as producer:
        producer.send_and_wait(topic_name, b"order-1", key=b"k", headers={"app": "x"})
    [span] = _named(exporter, f"send {topic_name}")
    [record] = read_all(kafka_broker.bootstrap_servers, topic_name)
    headers = dict(record.headers() or [])
    context = span.context
    assert headers["traceparent"] == (
        f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}".encode()
    )
    assert context.trace_flags.sampled
    assert headers["app"] == b"x"


class _TestPropagator(TextMapPropagator):
    """A propagator writing its own header, to show the global one is the one used."""

    FIELD = "x-test-trace"

    def inject(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        setter: Setter[CarrierT] = default_setter,
    ) -> None:
        span_context = trace.get_current_span(context).get_span_context()
        if span_context.is_valid:
            setter.set(carrier, self.FIELD, f"{span_context.trace_id:x}:{span_context.span_id:x}")

    def extract(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        getter: Getter[CarrierT] = default_getter,
    ) -> Context:
        found = getter.get(carrier, self.FIELD)
        if not found:
            return context or Context()
        trace_id, span_id = (int(part, 16) for part in found[0].split(":"))
        remote = SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(1))
        return trace.set_span_in_context(NonRecordingSpan(remote), context)

    @property
    def fields(self) -> set[str]:
        return {self.FIELD}


@pytest.fixture
def test_propagator() -> Iterator[None]:
    """Install _TestPropagator as the global propagator for one test."""
    before = propagate.get_global_textmap()
    propagate.set_global_textmap(_TestPropagator())
    try:
        yield
    finally:
        propagate.set_global_textmap(before)


@pytest.mark.usefixtures("test_propagator")
def test_the_applications_global_propagator_is_the_one_used(
    kafka_broker: LocalBroker,
    provisioned: CatalogFactory,
    topic_name: str,
    hook: OpenTelemetryHook,
    exporter: InMemorySpanExporter,
) -> None:
    """With another global propagator, its header is written and read instead of W3C's."""
    catalog = provisioned(_topic(topic_name))
    bootstrap = kafka_broker.bootstrap_servers
    with _checkout(bootstrap, catalog, hook) as producer:
        producer.send_and_wait(topic_name, b"order-1", key=b"k")
    [record] = read_all(bootstrap, topic_name)
    names = [name for name, _ in record.headers() or []]
    assert names == ["x-test-trace"]
    _consume(bootstrap, catalog, topic_name, hook, 1)
    [send] = _named(exporter, f"send {topic_name}")
    [process] = _named(exporter, f"process {topic_name}")
    assert process.parent is not None
    assert process.parent.span_id == send.context.span_id


def test_the_process_span_follows_the_messaging_conventions(
    kafka_broker: LocalBroker,
    provisioned: CatalogFactory,
    topic_name: str,
    hook: OpenTelemetryHook,
    exporter: InMemorySpanExporter,
) -> None:
    """A process span is a CONSUMER span 'process <topic>' with group, partition, offset."""
    catalog = provisioned(_topic(topic_name))
    bootstrap = kafka_broker.bootstrap_servers
    with _checkout(bootstrap, catalog) as producer:
        producer.send_and_wait(topic_name, b"order-1", key=b"customer-7")
    group = f"g-{uuid.uuid4().hex[:8]}"
    with GovernedConsumer(
        catalog,
        service="billing",
        group_id=group,
        topics=topic_name,
        bootstrap_servers=bootstrap,
        hooks=[hook],
        overrides=CONSUMER_OVERRIDES,
    ) as consumer:
        consumer.run(lambda r: None, max_records=1, timeout=30)
    [span] = _named(exporter, f"process {topic_name}")
    assert span.kind is SpanKind.CONSUMER
    assert span.status.status_code is StatusCode.UNSET
    assert span.parent is None  # the record was sent without tracing
    assert dict(span.attributes or {}) == {
        "messaging.system": "kafka",
        "messaging.operation.name": "process",
        "messaging.operation.type": "process",
        "messaging.destination.name": topic_name,
        "messaging.destination.partition.id": "0",
        "messaging.kafka.offset": 0,
        "messaging.consumer.group.name": group,
        "messaging.client.id": "billing",
        "messaging.kafka.message.key": "customer-7",
        "messaging.message.body.size": 7,
        "governed_kafka.attempt": 1,
    }


def test_the_handler_runs_inside_its_process_span(
    kafka_broker: LocalBroker,
    provisioned: CatalogFactory,
    topic_name: str,
    hook: OpenTelemetryHook,
    exporter: InMemorySpanExporter,
) -> None:
    """While the handler runs, the current span is the record's process span."""
    catalog = provisioned(_topic(topic_name))
    bootstrap = kafka_broker.bootstrap_servers
    with _checkout(bootstrap, catalog) as producer:
        producer.send_and_wait(topic_name, b"order-1", key=b"k")
    current: list[int] = []
    _consume(
        bootstrap,
        catalog,
        topic_name,
        hook,
        1,
        handler=lambda r: current.append(trace.get_current_span().get_span_context().span_id),
    )
    [span] = _named(exporter, f"process {topic_name}")
    assert current == [span.context.span_id]


def test_a_failing_attempt_marks_its_process_span_as_an_error(
    kafka_broker: LocalBroker,
    provisioned: CatalogFactory,
    topic_name: str,
    hook: OpenTelemetryHook,
    exporter: InMemorySpanExporter,
) -> None:
    """A handler that fails once gets an ERROR span with error.type, then an OK retry span."""
    catalog = provisioned(_topic(topic_name))
    bootstrap = kafka_broker.bootstrap_servers
    with _checkout(bootstrap, catalog) as producer:
        producer.send_and_wait(topic_name, b"order-1", key=b"k")
    calls: list[int] = []

    def flaky(record: Record) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("first attempt fails")

    _consume(
        bootstrap,
        catalog,
        topic_name,
        hook,
        1,
        handler=flaky,
        retry=RetryPolicy(attempts=2, initial_backoff_s=0, jitter_s=0),
    )
    first, second = sorted(
        _named(exporter, f"process {topic_name}"),
        key=lambda s: (s.attributes or {})["governed_kafka.attempt"],
    )
    assert first.status.status_code is StatusCode.ERROR
    assert (first.attributes or {})["error.type"] == "builtins.ValueError"
    assert [e.name for e in first.events] == ["exception"]
    assert second.status.status_code is StatusCode.UNSET
    assert (second.attributes or {})["governed_kafka.attempt"] == 2


def test_a_batch_handler_span_links_every_records_context(
    kafka_broker: LocalBroker,
    provisioned: CatalogFactory,
    topic_name: str,
    hook: OpenTelemetryHook,
    exporter: InMemorySpanExporter,
) -> None:
    """A batch span carries one link per record, to that record's send span."""
    catalog = provisioned(_topic(topic_name, partitions=2))
    bootstrap = kafka_broker.bootstrap_servers
    with _checkout(bootstrap, catalog, hook) as producer:
        for i in range(8):
            producer.send(topic_name, f"v{i}", key=f"k{i}")
    sends = {s.context.span_id for s in _named(exporter, f"send {topic_name}")}
    batches: list[list[Record]] = []
    with GovernedConsumer(
        catalog,
        service="billing",
        group_id=f"g-{uuid.uuid4().hex[:8]}",
        topics=topic_name,
        bootstrap_servers=bootstrap,
        hooks=[hook],
        overrides=CONSUMER_OVERRIDES,
    ) as consumer:
        consumer.run_batches(batches.append, max_records=8, timeout=30)
    spans = _named(exporter, f"process {topic_name}")
    assert len(spans) == len(batches)
    linked = [link.context.span_id for span in spans for link in span.links]
    assert sorted(linked) == sorted(sends)
    for span, batch in zip(sorted(spans, key=lambda s: s.start_time or 0), batches, strict=True):
        assert span.kind is SpanKind.CONSUMER
        assert (span.attributes or {})["messaging.batch.message_count"] == len(batch)
        assert len(span.links) == len(batch)
        assert span.parent is None


def test_empty_polls_make_no_spans(
    kafka_broker: LocalBroker,
    provisioned: CatalogFactory,
    topic_name: str,
    hook: OpenTelemetryHook,
    exporter: InMemorySpanExporter,
) -> None:
    """A consumer polling an empty topic for two seconds records no span at all."""
    catalog = provisioned(_topic(topic_name))
    with GovernedConsumer(
        catalog,
        service="billing",
        group_id=f"g-{uuid.uuid4().hex[:8]}",
        topics=topic_name,
        bootstrap_servers=kafka_broker.bootstrap_servers,
        hooks=[hook],
        overrides=CONSUMER_OVERRIDES,
    ) as consumer:
        summary = consumer.run(lambda r: None, timeout=2)
    assert summary.records == 0
    assert exporter.get_finished_spans() == ()


def test_a_send_span_ends_when_the_delivery_report_arrives(
    provisioned: CatalogFactory,
    topic_name: str,
    hook: OpenTelemetryHook,
    exporter: InMemorySpanExporter,
) -> None:
    """While the broker is frozen the send span stays open; the report ends it."""
    with LocalBroker() as broker:
        catalog = provisioned(_topic(topic_name), create=False)
        create_topics(broker.bootstrap_servers, [(topic_name, 1, {})])
        with _checkout(broker.bootstrap_servers, catalog, hook) as producer:
            producer.send_and_wait(topic_name, b"warm-up", key=b"k")
            exporter.clear()
            broker.pause()
            try:
                future = producer.send(topic_name, b"later", key=b"k")
                time.sleep(0.5)
                open_while_frozen = exporter.get_finished_spans()
            finally:
                broker.resume()
            metadata = future.result(30)
    assert open_while_frozen == ()
    [span] = _named(exporter, f"send {topic_name}")
    assert (span.attributes or {})["messaging.kafka.offset"] == metadata.offset


def test_a_failed_delivery_ends_the_send_span_with_an_error(
    provisioned: CatalogFactory,
    topic_name: str,
    hook: OpenTelemetryHook,
    exporter: InMemorySpanExporter,
) -> None:
    """A record that times out ends its span with ERROR status and the error code."""
    with LocalBroker() as broker:
        catalog = provisioned(_topic(topic_name), create=False)
        create_topics(broker.bootstrap_servers, [(topic_name, 1, {})])
        producer = GovernedProducer(
            catalog,
            service="checkout",
            bootstrap_servers=broker.bootstrap_servers,
            hooks=[hook],
            overrides={"delivery.timeout.ms": 1500},
        )
        producer.send_and_wait(topic_name, b"warm-up", key=b"k")
        exporter.clear()
        broker.pause()
        try:
            error = producer.send(topic_name, b"lost", key=b"k").exception(15)
        finally:
            broker.resume()
        producer.close()
    assert isinstance(error, DeliveryError)
    [span] = _named(exporter, f"send {topic_name}")
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "_MSG_TIMED_OUT"
    assert "messaging.kafka.offset" not in (span.attributes or {})


def test_a_send_refused_by_the_client_ends_its_span_with_an_error(
    kafka_broker: LocalBroker,
    provisioned: CatalogFactory,
    topic_name: str,
    hook: OpenTelemetryHook,
    exporter: InMemorySpanExporter,
) -> None:
    """A record librdkafka refuses at send() ends its span at once, ERROR with the code."""
    catalog = provisioned(_topic(topic_name))
    with _checkout(
        kafka_broker.bootstrap_servers, catalog, hook, overrides={"message.max.bytes": 10_000}
    ) as producer:
        with pytest.raises(DeliveryError):
            producer.send(topic_name, b"x" * 20_000, key=b"big")
        [span] = _named(exporter, f"send {topic_name}")
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "MSG_SIZE_TOO_LARGE"


def test_without_an_sdk_sends_carry_no_trace_header(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """With no SDK configured and nothing in the context, the hook adds no header."""
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    catalog = provisioned(_topic(topic_name))
    hook = OpenTelemetryHook()
    with _checkout(kafka_broker.bootstrap_servers, catalog, hook) as producer:
        producer.send_and_wait(topic_name, b"v", key=b"k")
    assert not hook.wants_send()
    [record] = read_all(kafka_broker.bootstrap_servers, topic_name)
    assert record.headers() is None


def test_without_an_sdk_the_hook_stays_off_the_send_path(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """With no SDK, a producer never calls the hook's on_send, even inside a trace context."""
    calls: list[object] = []

    class Counting(OpenTelemetryHook):
        def on_send(self, details: Any) -> Any:
            calls.append(details)
            return super().on_send(details)

    catalog = provisioned(_topic(topic_name))
    upstream = SpanContext(
        trace_id=0x4BF92F3577B34DA6A3CE929D0E0E4736,
        span_id=0x00F067AA0BA902B7,
        is_remote=True,
        trace_flags=TraceFlags(1),
    )
    with _checkout(kafka_broker.bootstrap_servers, catalog, Counting()) as producer:
        token = otel_context.attach(trace.set_span_in_context(NonRecordingSpan(upstream)))
        try:
            for future in [producer.send(topic_name, b"v", key=b"k") for _ in range(200)]:
                future.result(10)
        finally:
            otel_context.detach(token)
    assert calls == []
