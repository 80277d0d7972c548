"""Consumer health against a real broker: ok while processing, lagging, stalled on a slow
handler, idle, stopped when closed; the asyncio consumer's; the OpenTelemetry gauge."""

from __future__ import annotations

import asyncio
import threading
import time

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from test_consumer import FAST, _contracts, _produce

from conftest import Broker, CatalogFactory
from governed_kafka import GovernedConsumer, Record
from governed_kafka.aio import AsyncGovernedConsumer
from governed_kafka.metrics import OpenTelemetryMetrics


def _consumer(catalog: object, bootstrap: str, topic: str, **options: object) -> GovernedConsumer:
    return GovernedConsumer(
        catalog,  # type: ignore[arg-type]
        service="billing",
        group_id=f"h-{topic}",
        topics=[topic],
        bootstrap_servers=bootstrap,
        overrides=FAST,
        **options,  # type: ignore[arg-type]
    )


def test_a_consumer_that_keeps_up_is_ok_then_idle_then_stopped_when_closed(
    kafka_broker: Broker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """Processing everything is ok; no new record for the window is idle; closed is stopped."""
    catalog = provisioned(_contracts(topic_name, partitions=1))
    bootstrap = kafka_broker.bootstrap_servers
    _produce(catalog, bootstrap, topic_name, 20)
    consumer = _consumer(catalog, bootstrap, topic_name)
    handled: list[int] = []
    deadline = time.monotonic() + 30
    while len(handled) < 20 and time.monotonic() < deadline:
        consumer.run(lambda r: handled.append(r.offset), timeout=0.5)
    report = consumer.health(window_s=3)
    assert report.status == "ok", report.reasons
    (partition,) = report.partitions
    assert (partition.topic, partition.lag, partition.position) == (topic_name, 0, 20)
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:  # polling, nothing new, a probe asking meanwhile
        consumer.run(lambda r: None, timeout=0.5)
        consumer.health(window_s=3)
    report = consumer.health(window_s=3)
    assert report.status == "idle", report.reasons
    assert (report.live, report.ready) == (True, True)
    consumer.close()
    report = consumer.health(window_s=3)
    assert (report.status, report.live, report.ready) == ("stopped", False, False)


def test_a_slow_handler_is_stalled_and_lag_that_grows_is_lagging(
    kafka_broker: Broker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """While a handler sleeps on one record the partition is stalled (not live); records
    arriving faster than they are processed make it lagging."""
    catalog = provisioned(_contracts(topic_name, partitions=1))
    bootstrap = kafka_broker.bootstrap_servers
    _produce(catalog, bootstrap, topic_name, 5)
    release = threading.Event()
    reports = []

    def handler(record: Record) -> None:
        if record.offset == 2:
            release.wait(20)
        else:
            time.sleep(0.3)

    with _consumer(catalog, bootstrap, topic_name) as consumer:
        runner = threading.Thread(target=consumer.run, args=(handler,), kwargs={"timeout": 25})
        runner.start()
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                report = consumer.health(window_s=5, stalled_after_s=1.5)
                if report.status == "stalled":
                    reports.append(report)
                    break
                time.sleep(0.2)
            _produce(catalog, bootstrap, topic_name, 50, start=5)
            release.set()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                report = consumer.health(window_s=5, stalled_after_s=1.5)
                if report.status == "lagging":
                    reports.append(report)
                    break
                time.sleep(0.2)
        finally:
            release.set()
            consumer.stop()
            runner.join(30)
    stalled, lagging = reports
    assert not stalled.live
    assert "the handler has been on offset 2" in stalled.partitions[0].reason
    assert lagging.live
    assert lagging.partitions[0].reason.startswith("lag grew from")


def test_the_asyncio_consumer_reports_its_handlers_and_the_gauge_shows_health(
    kafka_broker: Broker, provisioned: CatalogFactory, topic_name: str
) -> None:
    """An asyncio handler stuck on a record stalls its partition; the health gauge reports
    each partition's status rank for the consumers it watches."""
    catalog = provisioned(_contracts(topic_name, partitions=1))
    bootstrap = kafka_broker.bootstrap_servers
    _produce(catalog, bootstrap, topic_name, 3)
    reader = InMemoryMetricReader()
    metrics = OpenTelemetryMetrics(meter_provider=MeterProvider(metric_readers=[reader]))

    async def scenario() -> tuple[str, str, list[tuple[str, int]]]:
        release = asyncio.Event()

        async def handler(record: Record) -> None:
            if record.offset == 1:
                await release.wait()

        async with AsyncGovernedConsumer(
            catalog,
            service="billing",
            group_id=f"h-{topic_name}",
            topics=[topic_name],
            bootstrap_servers=bootstrap,
            overrides=FAST,
        ) as consumer:
            metrics.watch_health(lambda: consumer.health(window_s=5, stalled_after_s=1))
            run = asyncio.create_task(consumer.run(handler, timeout=20))
            status = "?"
            deadline = time.monotonic() + 15
            while status != "stalled" and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
                status = consumer.health(window_s=5, stalled_after_s=1).status
            data = reader.get_metrics_data()
            points = [
                (str(p.attributes.get("status")), int(p.value))
                for rm in data.resource_metrics
                for sm in rm.scope_metrics
                for m in sm.metrics
                if m.name == "governed_kafka.consumer.health"
                for p in m.data.data_points
            ]
            reason = consumer.health(window_s=5, stalled_after_s=1).partitions[0].reason
            release.set()
            consumer.stop()
            await run
            return status, reason, points

    status, reason, points = asyncio.run(scenario())
    assert status == "stalled"
    assert "offset 1" in reason
    assert ("stalled", 4) in points
