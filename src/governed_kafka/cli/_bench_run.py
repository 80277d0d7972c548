"""What ``governed-kafka bench`` runs: every profile and the raw client, in the same run.

For each variant (each chosen :mod:`~governed_kafka.profiles` profile, and a raw
confluent-kafka row with the same durability settings: idempotence and ``acks=all``)
and each repetition, on a fresh topic:

1. **produce**: send ``messages`` records as fast as the client takes them and wait
   until all are delivered: records/s and MB/s. Values are ``value_size`` bytes of
   JSON-like text (``value_format="bytes"``), or Avro records of about that size in the
   Confluent wire format (``"avro"``): each variant then encodes every record, the
   governed producer checking it against the contract's schema first, the raw client
   with plain fastavro;
2. **consume**: a fresh consumer group reads them back, decoding each value (Avro
   values: the governed consumer by schema id, the raw one with plain fastavro) and
   committing in batches of 500: records/s from the first record to the last (the
   group join is not timed);
3. **latency**: ``latency_messages`` records sent at a steady ``latency_rate`` while the
   consumer keeps reading: send-to-delivery latency (from ``send()`` to the moment the
   delivery report reaches the application) p50/p95/p99, and end-to-end latency (from
   ``send()`` to the consumer handing the record to its handler) p50/p99. Latency is
   measured at a steady rate below saturation because latency at saturation measures
   only the depth of the queue.

A warm-up run per variant (produce only) is not recorded. Each figure is the median of
``repeats`` runs, reported with its spread (min..max).
"""

from __future__ import annotations

import io
import json
import os
import platform
import random
import struct
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Final, Literal, Protocol

import attrs
import fastavro

from .. import _kafka, profiles
from .._config import redacted
from .._librdkafka_keys import GLOBAL_KEYS
from .._stats import Figure, percentile, summarize
from ..avro import frame, parse_schema, schema_id_of
from ..commit import CommitStrategy
from ..consumer import GovernedConsumer, Record
from ..contracts import Catalog
from ..producer import GovernedProducer

__all__ = ["AVRO_SCHEMA", "BenchReport", "BenchRow", "BenchSettings", "environment", "run_bench"]

#: Name of the raw-client row.
RAW: Final = "raw confluent-kafka"

_SERVICE: Final = "bench"
_TIMESTAMP = struct.Struct(">q")

Progress = Callable[[str, int], None]


def _shown_overrides(overrides: tuple[tuple[str, object], ...]) -> str:
    return repr(tuple(redacted(dict(overrides)).items()))


@attrs.frozen(kw_only=True)
class BenchSettings:
    """What to measure."""

    messages: int = 20_000
    value_size: int = 1024
    keys: int = 1_000
    partitions: int = 6
    value_format: Literal["bytes", "avro"] = "bytes"
    repeats: int = 3
    latency_messages: int = 2_000
    latency_rate: int = 2_000
    profiles: tuple[profiles.Profile, ...] = tuple(profiles.PROFILES.values())
    raw_baseline: bool = True
    #: Replication factor and ``min.insync.replicas`` of the benchmark topics; ``None``
    #: leaves both to the broker's defaults.
    replication_factor: int | None = None
    min_insync_replicas: int | None = None
    #: Extra librdkafka settings for every client (TLS, SASL, session timeouts); secrets
    #: among them are shown as ``[redacted]`` in ``repr`` and in the report's JSON.
    producer_overrides: tuple[tuple[str, str | int | float | bool], ...] = attrs.field(
        default=(), repr=_shown_overrides
    )
    consumer_overrides: tuple[tuple[str, str | int | float | bool], ...] = attrs.field(
        default=(), repr=_shown_overrides
    )

    def __attrs_post_init__(self) -> None:
        if self.value_size < _TIMESTAMP.size:
            msg = f"value_size must be at least {_TIMESTAMP.size} bytes (the send timestamp)"
            raise ValueError(msg)
        for name in ("messages", "keys", "partitions", "repeats", "latency_messages"):
            if getattr(self, name) < 1:
                msg = f"{name} must be >= 1"
                raise ValueError(msg)
        if self.value_format not in {"bytes", "avro"}:
            msg = f"value_format must be 'bytes' or 'avro', not {self.value_format!r}"
            raise ValueError(msg)
        if self.latency_rate < 1:
            msg = "latency_rate must be >= 1 record per second"
            raise ValueError(msg)
        for name in ("replication_factor", "min_insync_replicas"):
            value = getattr(self, name)
            if value is not None and value < 1:
                msg = f"{name} must be >= 1 (or None for the broker's default)"
                raise ValueError(msg)

    @property
    def steps(self) -> int:
        """Progress units of a whole benchmark."""
        variants = len(self.profiles) + (1 if self.raw_baseline else 0)
        return variants * (1 + 3 * self.repeats)


@attrs.frozen
class BenchRow:
    """The figures of one variant (a profile, or the raw client)."""

    name: str
    produce_msgs_per_s: Figure
    produce_mb_per_s: Figure
    delivery_p50_ms: Figure
    delivery_p95_ms: Figure
    delivery_p99_ms: Figure
    e2e_p50_ms: Figure
    e2e_p99_ms: Figure
    consume_msgs_per_s: Figure

    def to_dict(self) -> dict[str, object]:
        return {
            f.name: (getattr(self, f.name).to_dict() if f.name != "name" else self.name)
            for f in attrs.fields(BenchRow)
        }


@attrs.frozen
class BenchReport:
    """Every row of one benchmark, with what it ran on."""

    settings: BenchSettings
    rows: tuple[BenchRow, ...]
    environment: dict[str, object]
    broker: str

    def to_dict(self) -> dict[str, object]:
        settings = attrs.asdict(self.settings, recurse=False)
        settings["profiles"] = [p.name for p in self.settings.profiles]
        settings["producer_overrides"] = redacted(dict(self.settings.producer_overrides))
        settings["consumer_overrides"] = redacted(dict(self.settings.consumer_overrides))
        return {
            "settings": settings,
            "broker": self.broker,
            "environment": self.environment,
            "rows": [row.to_dict() for row in self.rows],
        }


def environment() -> dict[str, object]:
    """Machine, Python and library versions the figures were measured with."""
    found: dict[str, object] = {
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }
    for package in ("governed-kafka", "confluent-kafka", "fastavro", "opentelemetry-api"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    found.update(_kafka.client_versions())
    return found


# ---------------------------------------------------------------- one measured run


@attrs.define
class _Run:
    produce_msgs_per_s: float = 0.0
    produce_mb_per_s: float = 0.0
    delivery_ms: list[float] = attrs.field(factory=list)
    e2e_ms: list[float] = attrs.field(factory=list)
    consume_msgs_per_s: float = 0.0


class _Reader(Protocol):
    """A consumer of one variant, reading one topic in one group."""

    def read(
        self, want: int, counts: Callable[[Any], bool], stop: threading.Event | None = None
    ) -> float:
        """Read until ``want`` records counted (``counts(value)`` is true); return their rate.

        ``value`` is the decoded value: bytes, or the Avro record as a dict.
        """

    def close(self) -> None:
        """Commit and leave the group."""


class _Clients(Protocol):
    """The producer and consumers of one variant, behind one small interface."""

    def send(
        self, topic: str, value: object, key: bytes, on_done: Callable[[float], None] | None
    ) -> None:
        """Send one record (encoding it); ``on_done(seconds)`` when its delivery is reported."""

    def flush(self) -> None:
        """Wait until everything sent is delivered."""

    def serve(self, seconds: float) -> None:
        """Wait up to ``seconds``, serving delivery reports if the client needs it (it
        may return sooner, once it served one; the caller waits again)."""

    def close_producer(self) -> None:
        """Deliver and release the producer."""

    def reader(self, topic: str, group: str) -> _Reader:
        """A consumer of ``topic`` in a new group, from the beginning."""


class _Rate:
    """Counts records and times the first and the last."""

    __slots__ = ("first", "last", "seen")

    def __init__(self) -> None:
        self.seen = 0
        self.first = self.last = 0.0

    def tick(self) -> None:
        now = time.perf_counter()
        if not self.seen:
            self.first = now
        self.seen += 1
        self.last = now

    @property
    def per_second(self) -> float:
        if self.seen < 2 or self.last <= self.first:
            return 0.0
        return (self.seen - 1) / (self.last - self.first)


#: Longest a benchmark phase may wait for records before giving up.
_READ_TIMEOUT_S: Final = 120.0


class _GovernedReader:
    def __init__(self, consumer: GovernedConsumer) -> None:
        self.consumer = consumer

    def read(
        self, want: int, counts: Callable[[Any], bool], stop: threading.Event | None = None
    ) -> float:
        rate = _Rate()

        def handler(record: Record) -> None:
            if counts(record.value):
                rate.tick()

        deadline = time.monotonic() + _READ_TIMEOUT_S
        while rate.seen < want and time.monotonic() < deadline:
            if stop is not None and stop.is_set():
                break
            self.consumer.run(handler, timeout=0.2)
        return rate.per_second

    def close(self) -> None:
        self.consumer.close()


class _Governed:
    def __init__(
        self,
        bootstrap: str,
        profile: profiles.Profile,
        catalog: Catalog,
        settings: BenchSettings,
    ) -> None:
        self.bootstrap = bootstrap
        self.catalog = catalog
        self.settings = settings
        self.profile = profile
        self.producer = GovernedProducer(
            catalog,
            service=_SERVICE,
            bootstrap_servers=bootstrap,
            profile=profile,
            overrides=dict(settings.producer_overrides),
        )

    def send(
        self, topic: str, value: object, key: bytes, on_done: Callable[[float], None] | None
    ) -> None:
        if on_done is None:
            self.producer.send(topic, value, key=key)
            return
        started = time.perf_counter()
        future = self.producer.send(topic, value, key=key)
        future.add_done_callback(lambda _: on_done(time.perf_counter() - started))

    def flush(self) -> None:
        self.producer.flush()

    def serve(self, seconds: float) -> None:
        time.sleep(seconds)  # the producer serves its own delivery reports

    def close_producer(self) -> None:
        self.producer.close()

    def reader(self, topic: str, group: str) -> _Reader:
        return _GovernedReader(
            GovernedConsumer(
                self.catalog,
                service=_SERVICE,
                group_id=group,
                topics=[topic],
                bootstrap_servers=self.bootstrap,
                commit=CommitStrategy.batched(max_records=500, max_interval_s=5.0),
                overrides=dict(self.settings.consumer_overrides),
                profile=self.profile,
            )
        )


def _take_queued(consumer: _kafka.RawConsumer, most: int, timeout: float) -> list[Any]:
    """What is queued, else wait up to ``timeout`` for one message and take what came with
    it: the governed consumer's loop, so the raw row waits no longer for a batch to fill."""
    batch = list(consumer.consume(most, 0))
    if not batch:
        batch = list(consumer.consume(1, timeout))
        if batch:
            batch += consumer.consume(most - 1, 0)
    return batch


class _RawReader:
    def __init__(self, consumer: _kafka.RawConsumer, decode: Callable[[bytes], Any] | None) -> None:
        self.consumer = consumer
        self.decode = decode

    def read(
        self, want: int, counts: Callable[[Any], bool], stop: threading.Event | None = None
    ) -> float:
        rate = _Rate()
        decode = self.decode
        deadline = time.monotonic() + _READ_TIMEOUT_S
        while rate.seen < want and time.monotonic() < deadline:
            if stop is not None and stop.is_set():
                break
            batch = _take_queued(self.consumer, 500, 0.2)
            for msg in batch:
                if msg.error() is not None:
                    continue
                data = msg.value() or b""
                if counts(data if decode is None else decode(data)):
                    rate.tick()
            if batch:
                # Batched commits, as the governed consumer makes them.
                self.consumer.commit(asynchronous=True)
        return rate.per_second

    def close(self) -> None:
        self.consumer.close()


class _Raw:
    def __init__(self, bootstrap: str, settings: BenchSettings, values: _Values) -> None:
        self.bootstrap = bootstrap
        self.settings = settings
        self.values = values
        config: dict[str, object] = {
            "bootstrap.servers": bootstrap,
            "client.id": f"{_SERVICE}-raw",
            # The same durability as the governed producer; everything else librdkafka's default.
            "enable.idempotence": True,
            "acks": "all",
            **dict(settings.producer_overrides),
        }
        self.producer = _kafka.raw_producer(config)
        self.sends = 0

    def send(
        self, topic: str, value: object, key: bytes, on_done: Callable[[float], None] | None
    ) -> None:
        callback = None if on_done is None else _Stopwatch(on_done)
        encode = self.values.encode
        data: Any = value if encode is None else encode(value)
        while True:
            try:
                self.producer.produce(topic, data, key, on_delivery=callback)
                break
            except BufferError:
                self.producer.poll(0.01)
        self.sends += 1
        if not self.sends % 1000:
            self.producer.poll(0)

    def serve(self, seconds: float) -> None:
        self.producer.poll(max(seconds, 0.0))

    def flush(self) -> None:
        self.producer.flush()

    def close_producer(self) -> None:
        self.producer.flush()

    def reader(self, topic: str, group: str) -> _Reader:
        config: dict[str, object] = {
            "bootstrap.servers": self.bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            **dict(self.settings.consumer_overrides),
        }
        consumer = _kafka.raw_consumer(config)
        consumer.subscribe([topic])
        return _RawReader(consumer, self.values.decode)


class _Stopwatch:
    """A raw delivery callback reporting the seconds since it was made."""

    __slots__ = ("on_done", "started")

    def __init__(self, on_done: Callable[[float], None]) -> None:
        self.on_done = on_done
        self.started = time.perf_counter()

    def __call__(self, err: object, msg: object) -> None:
        self.on_done(time.perf_counter() - self.started)


def _catalog(topic: str, settings: BenchSettings, schema: Path | None) -> Catalog:
    contract: dict[str, object] = {
        "name": topic,
        "partitions": settings.partitions,
        "replication_factor": settings.replication_factor or 1,
        "key": "required",
        "producers": [_SERVICE],
        "consumers": [_SERVICE],
    }
    if schema is None:
        return Catalog.from_dict({"topics": [contract]})
    contract["value_schema"] = schema.name
    return Catalog.from_dict({"topics": [contract]}, path=schema.parent / "governance.toml")


def _create_topic(bootstrap: str, topic: str, settings: BenchSettings) -> None:
    config: dict[str, object] = {"bootstrap.servers": bootstrap}
    # Connection settings (TLS, SASL) apply to the admin client too.
    config.update({k: v for k, v in settings.producer_overrides if k in GLOBAL_KEYS})
    admin = _kafka.Admin(config, timeout=30)
    configs = {}
    if settings.min_insync_replicas is not None:
        configs["min.insync.replicas"] = str(settings.min_insync_replicas)
    spec = (topic, settings.partitions, settings.replication_factor or -1, configs)
    error = admin.create_topics([spec])[topic]
    if error is not None:
        raise error
    admin.wait_visible([topic])


def _payload(size: int) -> bytes:
    """``size`` bytes that compress like real event payloads (JSON-ish text, about 2:1).

    A value of one repeated byte would flatter compression; random bytes would deny it.
    """
    rng = random.Random(size)  # noqa: S311 - benchmark payloads, not secrets
    parts: list[bytes] = []
    length = 0
    while length < size:
        part = (
            f'{{"order_id":"o-{rng.randrange(10**8):08d}","sku":"sku-{rng.randrange(500)}",'
            f'"qty":{rng.randrange(1, 9)},"price_cents":{rng.randrange(100, 99999)},'
            f'"note":"{rng.choice(_WORDS)} {rng.choice(_WORDS)}"}}'
        ).encode()
        parts.append(part)
        length += len(part)
    return b"".join(parts)[:size]


_WORDS = ("gift", "express", "fragile", "repeat", "priority", "bulk", "return", "new")


#: The benchmark's Avro record: the send time (for end-to-end latency) and order-like fields;
#: ``note`` pads the encoded record to the requested value size.
AVRO_SCHEMA: Final[dict[str, object]] = {
    "type": "record",
    "name": "BenchEvent",
    "namespace": "governed_kafka.bench",
    "fields": [
        {"name": "sent_ns", "type": "long"},
        {"name": "order_id", "type": "string"},
        {"name": "sku", "type": "string"},
        {"name": "qty", "type": "int"},
        {"name": "price_cents", "type": "long"},
        {"name": "note", "type": "string"},
    ],
}


class _Values:
    """The values of one benchmark: how to make one, and how the raw client encodes it.

    ``encode``/``decode`` are the raw client's own (de)serialization, ``None`` for bytes;
    the governed clients use the topic's contract instead.
    """

    def __init__(self, settings: BenchSettings, schema_dir: Path) -> None:
        self.schema: Path | None = None
        self.encode: Callable[[Any], bytes] | None = None
        self.decode: Callable[[bytes], Any] | None = None
        if settings.value_format == "bytes":
            self.payload: object = _payload(settings.value_size - _TIMESTAMP.size)
            return
        self.schema = schema_dir / "bench_event.avsc"
        self.schema.write_text(json.dumps(AVRO_SCHEMA), encoding="utf-8")
        parsed = fastavro.parse_schema(AVRO_SCHEMA)
        header = frame(schema_id_of(parse_schema(AVRO_SCHEMA)), b"")
        record: dict[str, object] = {
            "order_id": "o-00012345",
            "sku": "sku-17",
            "qty": 2,
            "price_cents": 4999,
            "note": "",
        }
        # Pad ``note`` until the framed record is value_size bytes (its length prefix grows too).
        target = settings.value_size - _HEADER_SIZE
        pad = max(target - len(self._avro(parsed, {"sent_ns": time.monotonic_ns(), **record})), 0)
        while True:
            record["note"] = _payload(pad).decode("ascii")
            size = len(self._avro(parsed, {"sent_ns": time.monotonic_ns(), **record}))
            if size <= target or pad == 0:
                break
            pad -= size - target
        self.payload = record

        def encode(value: dict[str, object]) -> bytes:
            return header + self._avro(parsed, value)

        def decode(data: bytes) -> dict[str, object]:
            buffer = io.BytesIO(data)
            buffer.seek(_HEADER_SIZE)
            return fastavro.schemaless_reader(buffer, parsed, None)  # type: ignore[return-value]

        self.encode, self.decode = encode, decode

    @staticmethod
    def _avro(parsed: Any, value: dict[str, object]) -> bytes:
        buffer = io.BytesIO()
        fastavro.schemaless_writer(buffer, parsed, value)
        return buffer.getvalue()

    def value(self, sent_ns: int) -> object:
        """A value carrying ``sent_ns``, the send time on the monotonic clock."""
        if isinstance(self.payload, bytes):
            return _TIMESTAMP.pack(sent_ns) + self.payload
        return {"sent_ns": sent_ns, **self.payload}  # type: ignore[dict-item]

    def sent_ns(self, value: Any) -> int:
        """The send time carried by a decoded ``value``."""
        if isinstance(value, dict):
            sent: int = value["sent_ns"]
            return sent
        stamp: int = _TIMESTAMP.unpack_from(value)[0]
        return stamp


_HEADER_SIZE: Final = 5


class _Bench:
    def __init__(
        self, bootstrap: str, settings: BenchSettings, progress: Progress | None, values: _Values
    ) -> None:
        self.bootstrap = bootstrap
        self.settings = settings
        self.progress = progress or (lambda _text, _steps: None)
        self.keys = [f"key-{i:06d}".encode() for i in range(settings.keys)]
        self.values = values

    def clients(self, variant: profiles.Profile | None, topic: str) -> _Clients:
        if variant is None:
            return _Raw(self.bootstrap, self.settings, self.values)
        catalog = _catalog(topic, self.settings, self.values.schema)
        return _Governed(self.bootstrap, variant, catalog, self.settings)

    def run(self, variant: profiles.Profile | None, *, warm_up: bool) -> _Run:
        settings = self.settings
        topic = f"bench.{uuid.uuid4().hex[:12]}.records.v1"
        _create_topic(self.bootstrap, topic, settings)
        clients = self.clients(variant, topic)
        result = _Run()
        name = variant.name if variant else RAW
        try:
            value = self.values.value(time.monotonic_ns())
            clients.send(topic, value, self.keys[0], None)  # connect, get a PID
            clients.flush()
            count = max(settings.messages // 10, 1) if warm_up else settings.messages
            keys = self.keys
            n_keys = len(keys)
            send = clients.send
            started = time.perf_counter()
            for i in range(count):
                send(topic, value, keys[i % n_keys], None)
            clients.flush()
            elapsed = time.perf_counter() - started
            result.produce_msgs_per_s = count / elapsed
            result.produce_mb_per_s = count * settings.value_size / elapsed / 1e6
            self.progress(f"{name}: {'warm-up' if warm_up else 'produce'}", 1)
            if warm_up:
                return result
            reader = clients.reader(topic, f"bench-{uuid.uuid4().hex[:8]}")
            try:
                result.consume_msgs_per_s = reader.read(count + 1, lambda _value: True)
                self.progress(f"{name}: consume", 1)
                self.latency(clients, reader, topic, result)
                self.progress(f"{name}: latency", 1)
            finally:
                reader.close()
        finally:
            clients.close_producer()
        return result

    def latency(self, clients: _Clients, reader: _Reader, topic: str, result: _Run) -> None:
        """Steady-rate sends while ``reader`` (already at the end of the log) reads them."""
        settings = self.settings
        marker = time.monotonic_ns()
        received: list[float] = []
        sent_ns = self.values.sent_ns

        def counts(value: object) -> bool:
            sent = sent_ns(value)
            if sent < marker:
                return False
            received.append((time.monotonic_ns() - sent) / 1e6)
            return True

        stop = threading.Event()
        reading = threading.Thread(
            target=reader.read, args=(settings.latency_messages, counts, stop), daemon=True
        )
        reading.start()
        deliveries: list[float] = []
        interval = 1 / settings.latency_rate
        value_at = self.values.value
        begin = time.perf_counter()
        for i in range(settings.latency_messages):
            # Until the record's time: the raw producer's poll() returns as soon as it
            # served a report, and every client must send on the same schedule.
            while (wait := begin + i * interval - time.perf_counter()) > 0:
                clients.serve(wait)
            clients.send(
                topic,
                value_at(time.monotonic_ns()),
                self.keys[i % len(self.keys)],
                lambda seconds: deliveries.append(seconds * 1000),
            )
        clients.flush()
        reading.join(timeout=_READ_TIMEOUT_S)
        stop.set()
        reading.join()
        result.delivery_ms = deliveries
        result.e2e_ms = received


def run_bench(
    bootstrap_servers: str,
    settings: BenchSettings,
    *,
    broker: str | None = None,
    progress: Progress | None = None,
) -> BenchReport:
    """Run the benchmark against ``bootstrap_servers`` and return every row."""
    variants: list[profiles.Profile | None] = list(settings.profiles)
    if settings.raw_baseline:
        variants.append(None)
    runs: dict[str, list[_Run]] = {(v.name if v else RAW): [] for v in variants}
    # The Avro schema file lives as long as the catalogs that read it.
    with tempfile.TemporaryDirectory(prefix="governed-kafka-bench-") as schema_dir:
        values = _Values(settings, Path(schema_dir))
        bench = _Bench(bootstrap_servers, settings, progress, values)
        for variant in variants:
            bench.run(variant, warm_up=True)
        for _ in range(settings.repeats):
            for variant in variants:  # interleaved: drift hits every variant alike
                runs[variant.name if variant else RAW].append(bench.run(variant, warm_up=False))
    rows = tuple(_row(name, measured) for name, measured in runs.items())
    return BenchReport(
        settings=settings,
        rows=rows,
        environment=environment(),
        broker=broker or bootstrap_servers,
    )


def _row(name: str, runs: Sequence[_Run]) -> BenchRow:
    def of(values: list[float], q: float) -> float:
        return percentile(values, q) if values else float("nan")

    return BenchRow(
        name=name,
        produce_msgs_per_s=summarize([r.produce_msgs_per_s for r in runs]),
        produce_mb_per_s=summarize([r.produce_mb_per_s for r in runs]),
        delivery_p50_ms=summarize([of(r.delivery_ms, 50) for r in runs]),
        delivery_p95_ms=summarize([of(r.delivery_ms, 95) for r in runs]),
        delivery_p99_ms=summarize([of(r.delivery_ms, 99) for r in runs]),
        e2e_p50_ms=summarize([of(r.e2e_ms, 50) for r in runs]),
        e2e_p99_ms=summarize([of(r.e2e_ms, 99) for r in runs]),
        consume_msgs_per_s=summarize([r.consume_msgs_per_s for r in runs]),
    )


def plot(report: BenchReport, path: str) -> list[str]:
    """Save a throughput against p99 delivery latency scatter, one labelled point per row.

    Returns the labels drawn, one per row.

    Needs matplotlib: ``pip install "governed-kafka[plot]"``.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        msg = 'plotting needs matplotlib: pip install "governed-kafka[plot]"'
        raise ImportError(msg) from exc
    figure, axes = plt.subplots(figsize=(8, 5.5))
    labels: list[str] = []
    for row in report.rows:
        x = row.delivery_p99_ms.median
        y = row.produce_msgs_per_s.median
        xerr = [[x - row.delivery_p99_ms.low], [row.delivery_p99_ms.high - x]]
        yerr = [[y - row.produce_msgs_per_s.low], [row.produce_msgs_per_s.high - y]]
        marker = "s" if row.name == RAW else "o"
        axes.errorbar(x, y, xerr=xerr, yerr=yerr, fmt=marker, capsize=3)
        # Alternate label heights so that neighbouring points keep readable labels.
        axes.annotate(
            row.name, (x, y), textcoords="offset points", xytext=(6, 6 if len(labels) % 2 else -14)
        )
        labels.append(row.name)
    settings = report.settings
    axes.set_xlabel("p99 send-to-delivery latency (ms, steady rate)")
    axes.set_ylabel("producer throughput (records/s)")
    axes.set_title(
        f"{settings.messages:,} records of {settings.value_size} B, {settings.keys:,} keys, "
        f"{settings.partitions} partitions; median of {settings.repeats} (bars: min..max)",
        fontsize=9,
    )
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return labels
