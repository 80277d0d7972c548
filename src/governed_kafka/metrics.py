"""Metrics with OpenTelemetry: latency, throughput, errors, lag, commits, backpressure, skew.

:class:`OpenTelemetryMetrics` is a hook on the OpenTelemetry metrics API
(``opentelemetry-api``); the application's SDK decides where the numbers go. Pass the
same hook to producers and consumers. Instruments follow the messaging semantic
conventions where they define one, and are named ``governed_kafka.*`` where not:

- ``messaging.client.operation.duration`` (histogram, s): ``send``, from ``send()`` to
  the delivery report (librdkafka's own measure); ``commit``, from the commit request
  to the broker's answer;
- ``messaging.client.sent.messages`` (counter): records whose delivery report came,
  with ``error.type`` (the error code, e.g. ``_MSG_TIMED_OUT``) on failed ones;
- ``messaging.client.consumed.messages`` (counter): records handed to the application;
- ``messaging.process.duration`` (histogram, s): handler time per record or batch;
- ``governed_kafka.consumer.lag`` (gauge): records between the group's committed
  position and the partition's high watermark;
- ``governed_kafka.consumer.dead_letters``, ``governed_kafka.consumer.retries``,
  ``governed_kafka.consumer.rebalances`` (counters);
- ``governed_kafka.backpressure.events`` (counter): consumer ``pause`` / ``resume``,
  producer ``queue-full``;
- ``governed_kafka.throttle.duration`` (histogram, s): broker quota throttling;
- ``governed_kafka.producer.queue.messages`` (gauge): records in the producer's local
  queue (from librdkafka's statistics);
- ``governed_kafka.producer.skew.alarms`` (counter): skew alarms per topic and partition;
- ``governed_kafka.producer.transactions`` (counter): transactions ended, with
  ``governed_kafka.transaction.outcome`` (``commit``/``abort``) and, for aborts, why
  (``governed_kafka.transaction.reason``: ``handler-error``, ``commit-failed`` ...);
- ``governed_kafka.producer.transaction.duration`` (histogram, s): from a transaction's
  begin to its commit or abort, by outcome;
- ``governed_kafka.producer.transaction.commit.duration`` (histogram, s): the commit
  itself (offsets sent, records delivered, the coordinator's answer): its latency;
- ``governed_kafka.consumer.health`` (gauge): the health status of each partition and of
  the consumer, as its rank (0 idle ... 5 stopped, ``status`` attribute), for consumers
  passed to :meth:`OpenTelemetryMetrics.watch_health`.

The lag gauge is fed by the consumer's own events (the high watermark of each fetch,
the offsets of each commit) and, when ``statistics.interval.ms`` is set on the
client, by librdkafka's statistics (``consumer_lag`` per partition), which know the
group's committed position from the start (before this consumer commits anything)
and keep following partitions that are paused. Revoked and lost partitions drop out.

Per-record cost is kept low, because the OpenTelemetry SDK spends microseconds on
every measurement (attribute validation and hashing): the record counters are exact
totals the hook keeps itself and reports when the SDK collects (asynchronous
counters), and the per-record durations (send latency, handler time) are recorded
for one record in ``duration_sample_every``: their histograms keep the shape of the
distribution, not the number of records, which the counters give.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, Final, Literal

from opentelemetry import metrics as _metrics
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.util.types import AttributeValue

from .errors import ClosedError
from .health import SEVERITY, HealthReport
from .hooks import (
    BackpressureDetails,
    BatchDetails,
    CommitDetails,
    ConsumeDetails,
    DeadLetterDetails,
    DeliveryDetails,
    Hook,
    ProcessDetails,
    RebalanceDetails,
    RetryDetails,
    SkewDetails,
    StatisticsDetails,
    ThrottleDetails,
    TransactionAbortDetails,
    TransactionCommitDetails,
)
from .tracing import (
    ERROR_TYPE,
    MESSAGING_CLIENT_ID,
    MESSAGING_CONSUMER_GROUP_NAME,
    MESSAGING_DESTINATION_NAME,
    MESSAGING_DESTINATION_PARTITION_ID,
    MESSAGING_OPERATION_NAME,
    MESSAGING_OPERATION_TYPE,
    MESSAGING_SYSTEM,
    SCHEMA_URL,
)
from .tracing import GOVERNED_KAFKA_TRANSACTION_OUTCOME as TRANSACTION_OUTCOME
from .tracing import GOVERNED_KAFKA_TRANSACTION_REASON as TRANSACTION_REASON
from .tracing import GOVERNED_KAFKA_TRANSACTIONAL_ID as TRANSACTIONAL_ID

__all__ = ["DEFAULT_DURATION_SAMPLE_EVERY", "DURATION_BUCKETS_S", "OpenTelemetryMetrics"]

#: Histogram bucket boundaries for durations, in seconds: the ones the messaging
#: conventions advise, from 5 ms to 10 s.
DURATION_BUCKETS_S: Final = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
)

#: Which backpressure episode a ``governed_kafka.backpressure.events`` point counts.
BACKPRESSURE_KIND: Final = "governed_kafka.backpressure.kind"
#: Which rebalance event a ``governed_kafka.consumer.rebalances`` point counts.
REBALANCE_KIND: Final = "governed_kafka.rebalance.kind"
#: The broker that throttled the client.
BROKER_ID: Final = "governed_kafka.broker.id"
#: The dead-letter topic a record went to.
DEAD_LETTER_TOPIC: Final = "governed_kafka.dead_letter_topic"

_Attributes = dict[str, AttributeValue]

#: Per-record durations recorded for one record in 16 (see the module docs).
DEFAULT_DURATION_SAMPLE_EVERY: Final = 16

#: librdkafka fetch states of partitions this consumer no longer fetches.
_IDLE_FETCH_STATES: Final = frozenset({"none", "stopping", "stopped"})


def _delivery_attributes(details: DeliveryDetails, error: str | None) -> _Attributes:
    attributes: _Attributes = {
        MESSAGING_SYSTEM: "kafka",
        MESSAGING_OPERATION_NAME: "send",
        MESSAGING_OPERATION_TYPE: "send",
        MESSAGING_DESTINATION_NAME: details.topic,
        MESSAGING_CLIENT_ID: details.client_id,
    }
    if details.partition is not None:
        attributes[MESSAGING_DESTINATION_PARTITION_ID] = str(details.partition)
    if error is not None:
        attributes[ERROR_TYPE] = error
    return attributes


def _consumed_attributes(topic: str, partition: int, group: str, client_id: str) -> _Attributes:
    return {
        MESSAGING_SYSTEM: "kafka",
        MESSAGING_OPERATION_NAME: "poll",
        MESSAGING_OPERATION_TYPE: "receive",
        MESSAGING_DESTINATION_NAME: topic,
        MESSAGING_DESTINATION_PARTITION_ID: str(partition),
        MESSAGING_CONSUMER_GROUP_NAME: group,
        MESSAGING_CLIENT_ID: client_id,
    }


def _error_type(error: BaseException) -> str:
    code = getattr(error, "code", None)
    if isinstance(code, str) and code:
        return code
    return f"{type(error).__module__}.{type(error).__qualname__}"


class _Timer:
    """Records a handler's duration into ``messaging.process.duration`` on exit."""

    __slots__ = ("attributes", "histogram", "started")

    def __init__(self, histogram: _metrics.Histogram, attributes: _Attributes) -> None:
        self.histogram = histogram
        self.attributes = attributes
        self.started = 0.0

    def __enter__(self) -> _Timer:
        self.started = time.perf_counter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        attributes = self.attributes
        if exc is not None:
            attributes = {**attributes, ERROR_TYPE: _error_type(exc)}
        self.histogram.record(time.perf_counter() - self.started, attributes)
        return False


class _Tally:
    """Exact running totals per attribute set, reported by an asynchronous counter."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._totals: dict[tuple[Any, ...], list[Any]] = {}

    def add(self, key: tuple[Any, ...], count: int, attributes: Callable[[], _Attributes]) -> None:
        with self._lock:
            entry = self._totals.get(key)
            if entry is None:
                self._totals[key] = [count, attributes()]
            else:
                entry[0] += count

    def observe(self, options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            totals = [(count, attributes) for count, attributes in self._totals.values()]
        for count, attributes in totals:
            yield Observation(count, attributes)


class _LagBook:
    """The latest high watermark and committed position per consumed partition."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # (client id, group, topic, partition) -> [high watermark, committed]
        self._entries: dict[tuple[str, str, str, int], list[int | None]] = {}

    def _entry(self, key: tuple[str, str, str, int]) -> list[int | None]:
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = [None, None]
        return entry

    def high_watermark(self, key: tuple[str, str, str, int], high: int) -> None:
        with self._lock:
            self._entry(key)[0] = high

    def committed(self, key: tuple[str, str, str, int], offset: int) -> None:
        with self._lock:
            self._entry(key)[1] = offset

    def both(self, key: tuple[str, str, str, int], high: int, committed: int) -> None:
        with self._lock:
            self._entries[key] = [high, committed]

    def forget(self, group: str, partitions: Iterable[tuple[str, int]]) -> None:
        """Drop the partitions a member of ``group`` no longer holds."""
        gone = set(partitions)
        with self._lock:
            for key in [k for k in self._entries if k[1] == group and (k[2], k[3]) in gone]:
                del self._entries[key]

    def observe(self, options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            entries = list(self._entries.items())
        for (client_id, group, topic, partition), (high, committed) in entries:
            if high is None or committed is None:
                continue
            yield Observation(
                max(high - committed, 0),
                {
                    MESSAGING_SYSTEM: "kafka",
                    MESSAGING_CONSUMER_GROUP_NAME: group,
                    MESSAGING_DESTINATION_NAME: topic,
                    MESSAGING_DESTINATION_PARTITION_ID: str(partition),
                    MESSAGING_CLIENT_ID: client_id,
                },
            )


class _QueueBook:
    """The latest local queue depth per producer, from librdkafka statistics."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depths: dict[str, int] = {}

    def set(self, client_id: str, depth: int) -> None:
        with self._lock:
            self._depths[client_id] = depth

    def observe(self, options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            depths = list(self._depths.items())
        for client_id, depth in depths:
            yield Observation(depth, {MESSAGING_SYSTEM: "kafka", MESSAGING_CLIENT_ID: client_id})


def _health_of(health: Callable[[], HealthReport]) -> HealthReport | None:
    """The report, or ``None`` from an asyncio consumer not started or closed."""
    try:
        return health()
    except ClosedError:
        return None


class OpenTelemetryMetrics(Hook):
    """Kafka client metrics on the OpenTelemetry metrics API (see the module docs).

    :param meter_provider: where measurements go; by default the global one.
    :param duration_sample_every: record the send latency and handler time of one
        record in this many (1: every record).
    """

    def __init__(
        self,
        *,
        meter_provider: _metrics.MeterProvider | None = None,
        duration_sample_every: int = DEFAULT_DURATION_SAMPLE_EVERY,
    ) -> None:
        from . import __version__

        if duration_sample_every < 1:
            msg = f"duration_sample_every must be >= 1, got {duration_sample_every!r}"
            raise ValueError(msg)
        self._sample_every = duration_sample_every
        self._delivery_countdown = 1  # the first delivery is recorded
        self._process_countdown = 1

        meter = _metrics.get_meter(
            "governed_kafka", __version__, meter_provider=meter_provider, schema_url=SCHEMA_URL
        )
        self._operation_duration = meter.create_histogram(
            "messaging.client.operation.duration",
            unit="s",
            description="Duration of a messaging operation: send to delivery, commit to answer.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS_S,
        )
        self._sent = _Tally()
        meter.create_observable_counter(
            "messaging.client.sent.messages",
            callbacks=[self._sent.observe],
            unit="{message}",
            description="Records the producer attempted to send whose delivery report came.",
        )
        self._consumed = _Tally()
        meter.create_observable_counter(
            "messaging.client.consumed.messages",
            callbacks=[self._consumed.observe],
            unit="{message}",
            description="Records delivered to the application.",
        )
        self._process_duration = meter.create_histogram(
            "messaging.process.duration",
            unit="s",
            description="Time the handler took per record (or per batch).",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS_S,
        )
        self._dead_letters = meter.create_counter(
            "governed_kafka.consumer.dead_letters",
            unit="{message}",
            description="Records published to their dead-letter topic.",
        )
        self._retries = meter.create_counter(
            "governed_kafka.consumer.retries",
            unit="{attempt}",
            description="Handler attempts that failed and will be retried.",
        )
        self._rebalances = meter.create_counter(
            "governed_kafka.consumer.rebalances",
            unit="{event}",
            description="Partitions assigned, revoked or lost.",
        )
        self._backpressure = meter.create_counter(
            "governed_kafka.backpressure.events",
            unit="{event}",
            description="Consumer pauses and resumes, producer local queue full.",
        )
        self._throttle = meter.create_histogram(
            "governed_kafka.throttle.duration",
            unit="s",
            description="Time a broker throttled the client for exceeding a quota.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS_S,
        )
        self._skew_alarms = meter.create_counter(
            "governed_kafka.producer.skew.alarms",
            unit="{alarm}",
            description="Windows in which one partition took more than its share of sends.",
        )
        self._transactions = meter.create_counter(
            "governed_kafka.producer.transactions",
            unit="{transaction}",
            description="Transactions committed or aborted.",
        )
        self._transaction_duration = meter.create_histogram(
            "governed_kafka.producer.transaction.duration",
            unit="s",
            description="Time from a transaction's begin to its commit or abort.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS_S,
        )
        self._commit_duration = meter.create_histogram(
            "governed_kafka.producer.transaction.commit.duration",
            unit="s",
            description="Time a transaction's commit took: offsets, deliveries, answer.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS_S,
        )
        self._lag = _LagBook()
        meter.create_observable_gauge(
            "governed_kafka.consumer.lag",
            callbacks=[self._lag.observe],
            unit="{message}",
            description="Records between the committed position and the high watermark.",
        )
        self._queue = _QueueBook()
        meter.create_observable_gauge(
            "governed_kafka.producer.queue.messages",
            callbacks=[self._queue.observe],
            unit="{message}",
            description="Records in the producer's local queue (librdkafka statistics).",
        )

        self._health: list[Callable[[], HealthReport]] = []
        meter.create_observable_gauge(
            "governed_kafka.consumer.health",
            callbacks=[self._observe_health],
            unit="1",
            description=(
                "Health of each partition and overall (no partition attribute): the status's "
                "rank, 0 idle, 1 ok, 2 lagging, 3 rewound, 4 stalled, 5 stopped"
            ),
        )

    def watch_health(self, health: Callable[[], HealthReport]) -> None:
        """Report ``health`` (a consumer's ``health`` method) in the health gauge."""
        self._health.append(health)

    def _observe_health(self, options: CallbackOptions) -> Iterable[Observation]:
        for health in list(self._health):
            report = _health_of(health)
            if report is None:
                continue
            group = {MESSAGING_CONSUMER_GROUP_NAME: report.group_id, MESSAGING_SYSTEM: "kafka"}
            yield Observation(SEVERITY[report.status], {**group, "status": report.status})
            for partition in report.partitions:
                yield Observation(
                    SEVERITY[partition.status],
                    {
                        **group,
                        MESSAGING_DESTINATION_NAME: partition.topic,
                        MESSAGING_DESTINATION_PARTITION_ID: str(partition.partition),
                        "status": partition.status,
                    },
                )

    # ------------------------------------------------------------------ producer

    def on_delivery(self, details: DeliveryDetails) -> None:
        """Count the record as sent (with its error code if it failed); time one in N."""
        error = None if details.error is None else _error_type(details.error)
        key = (details.topic, details.partition, details.client_id, error)
        self._sent.add(key, 1, lambda: _delivery_attributes(details, error))
        countdown = self._delivery_countdown = self._delivery_countdown - 1
        if countdown > 0:
            return
        self._delivery_countdown = self._sample_every
        if details.latency_s is not None and details.latency_s >= 0:
            self._operation_duration.record(details.latency_s, _delivery_attributes(details, error))

    def on_skew(self, details: SkewDetails) -> None:
        """Count the alarm for its topic and partition."""
        self._skew_alarms.add(
            1,
            {
                MESSAGING_SYSTEM: "kafka",
                MESSAGING_DESTINATION_NAME: details.topic,
                MESSAGING_DESTINATION_PARTITION_ID: str(details.partition),
            },
        )

    def on_transaction_commit(self, details: TransactionCommitDetails) -> None:
        """Count the commit; time the transaction and its commit."""
        attributes: _Attributes = {
            MESSAGING_SYSTEM: "kafka",
            MESSAGING_CLIENT_ID: details.client_id,
            TRANSACTIONAL_ID: details.transactional_id,
            TRANSACTION_OUTCOME: "commit",
        }
        self._transactions.add(1, attributes)
        self._transaction_duration.record(details.duration_s, attributes)
        self._commit_duration.record(details.commit_s, attributes)

    def on_transaction_abort(self, details: TransactionAbortDetails) -> None:
        """Count the abort, by why; time the transaction."""
        attributes: _Attributes = {
            MESSAGING_SYSTEM: "kafka",
            MESSAGING_CLIENT_ID: details.client_id,
            TRANSACTIONAL_ID: details.transactional_id,
            TRANSACTION_OUTCOME: "abort",
        }
        self._transaction_duration.record(details.duration_s, attributes)
        self._transactions.add(1, {**attributes, TRANSACTION_REASON: details.reason})

    # ------------------------------------------------------------------ consumer

    def on_consume(self, details: ConsumeDetails) -> None:
        """Count the records per partition; note each partition's high watermark."""
        group, client_id = details.group_id, details.client_id
        for topic, partition, count in details.partitions:
            self._consumed.add(
                (topic, partition, group, client_id),
                count,
                functools.partial(_consumed_attributes, topic, partition, group, client_id),
            )
        for entry in details.lag:
            key = (details.client_id, details.group_id, entry.topic, entry.partition)
            if entry.high_watermark is not None:
                self._lag.high_watermark(key, entry.high_watermark)
            if entry.committed is not None:
                self._lag.committed(key, entry.committed)

    def on_process(self, details: ProcessDetails) -> _Timer | None:
        """Time the handler on one record in N."""
        countdown = self._process_countdown = self._process_countdown - 1
        if countdown > 0:
            return None
        self._process_countdown = self._sample_every
        record = details.record
        return _Timer(
            self._process_duration,
            {
                MESSAGING_SYSTEM: "kafka",
                MESSAGING_OPERATION_NAME: "process",
                MESSAGING_OPERATION_TYPE: "process",
                MESSAGING_DESTINATION_NAME: record.topic,
                MESSAGING_DESTINATION_PARTITION_ID: str(record.partition),
                MESSAGING_CONSUMER_GROUP_NAME: details.group_id,
            },
        )

    def on_process_batch(self, details: BatchDetails) -> _Timer:
        """Time the handler on one batch."""
        attributes: _Attributes = {
            MESSAGING_SYSTEM: "kafka",
            MESSAGING_OPERATION_NAME: "process",
            MESSAGING_OPERATION_TYPE: "process",
            MESSAGING_CONSUMER_GROUP_NAME: details.group_id,
        }
        topics = {r.topic for r in details.records}
        if len(topics) == 1:
            attributes[MESSAGING_DESTINATION_NAME] = next(iter(topics))
        return _Timer(self._process_duration, attributes)

    def on_commit(self, details: CommitDetails) -> None:
        """Time the commit; on success, the committed positions feed the lag gauge."""
        attributes: _Attributes = {
            MESSAGING_SYSTEM: "kafka",
            MESSAGING_OPERATION_NAME: "commit",
            MESSAGING_OPERATION_TYPE: "settle",
            MESSAGING_CONSUMER_GROUP_NAME: details.group_id,
            MESSAGING_CLIENT_ID: details.client_id,
        }
        if details.error is not None:
            attributes[ERROR_TYPE] = _error_type(details.error)
        self._operation_duration.record(details.duration_s, attributes)
        if details.error is None:
            for topic, partition, offset in details.offsets:
                self._lag.committed((details.client_id, details.group_id, topic, partition), offset)

    def on_rebalance(self, details: RebalanceDetails) -> None:
        """Count the event; revoked and lost partitions leave the lag gauge."""
        self._rebalances.add(
            1,
            {
                MESSAGING_SYSTEM: "kafka",
                MESSAGING_CONSUMER_GROUP_NAME: details.group_id,
                REBALANCE_KIND: details.kind,
            },
        )
        if details.kind != "assign":
            self._lag.forget(details.group_id, details.partitions)

    def on_retry(self, details: RetryDetails) -> None:
        """Count the failed attempt."""
        self._retries.add(
            1,
            {
                MESSAGING_SYSTEM: "kafka",
                MESSAGING_DESTINATION_NAME: details.record.topic,
                MESSAGING_CONSUMER_GROUP_NAME: details.group_id,
                ERROR_TYPE: _error_type(details.error),
            },
        )

    def on_dead_letter(self, details: DeadLetterDetails) -> None:
        """Count the dead letter, by source topic, dead-letter topic and error."""
        self._dead_letters.add(
            1,
            {
                MESSAGING_SYSTEM: "kafka",
                MESSAGING_DESTINATION_NAME: details.topic,
                MESSAGING_CONSUMER_GROUP_NAME: details.group_id,
                DEAD_LETTER_TOPIC: details.dead_letter_topic,
                ERROR_TYPE: _error_type(details.error),
            },
        )

    # ------------------------------------------------------------------ both

    def on_backpressure(self, details: BackpressureDetails) -> None:
        """Count the pause, resume or full queue."""
        attributes: _Attributes = {MESSAGING_SYSTEM: "kafka", BACKPRESSURE_KIND: details.kind}
        if details.topic is not None:
            attributes[MESSAGING_DESTINATION_NAME] = details.topic
        self._backpressure.add(1, attributes)

    def on_throttle(self, details: ThrottleDetails) -> None:
        """Record how long the broker throttled the client."""
        self._throttle.record(
            details.throttle_time_s,
            {
                MESSAGING_SYSTEM: "kafka",
                MESSAGING_CLIENT_ID: details.client_id,
                BROKER_ID: details.broker_id,
            },
        )

    def on_statistics(self, details: StatisticsDetails) -> None:
        """Feed librdkafka's statistics into the lag and queue gauges."""
        stats = details.stats
        if details.role == "producer":
            depth = stats.get("msg_cnt")
            if isinstance(depth, int):
                self._queue.set(details.client_id, depth)
            return
        if details.group_id is None:
            return
        topics = stats.get("topics")
        if not isinstance(topics, Mapping):
            return
        for topic, topic_stats in topics.items():
            partitions = topic_stats.get("partitions") if isinstance(topic_stats, Mapping) else None
            if not isinstance(partitions, Mapping):
                continue
            for number, entry in partitions.items():
                self._partition_statistics(details, topic, number, entry)

    def _partition_statistics(
        self, details: StatisticsDetails, topic: str, number: str, entry: Any
    ) -> None:
        if not isinstance(entry, Mapping):
            return
        try:
            partition = int(number)
        except ValueError:
            return
        lag = entry.get("consumer_lag")
        committed = entry.get("committed_offset")
        if (
            partition < 0  # librdkafka's "unassigned" pseudo-partition
            or entry.get("fetch_state") in _IDLE_FETCH_STATES
            or not isinstance(lag, int)
            or not isinstance(committed, int)
            or lag < 0
            or committed < 0
        ):
            return
        assert details.group_id is not None
        self._lag.both(
            (details.client_id, details.group_id, topic, partition), committed + lag, committed
        )
