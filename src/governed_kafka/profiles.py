"""Named client profiles: throughput and latency trade-offs that never touch durability.

A :class:`Profile` can express batching, linger, compression and local queue sizes of
producers and the fetch batching of consumers, and nothing else: it has no field for
``acks``, idempotence, in-flight requests, the partitioner, retries or commits, so no
profile can weaken them. The governed values are laid over the profile by the clients
(see :mod:`governed_kafka._config`).

``DURABLE`` is the default. Every profile delivers with the same guarantee
(``acks=all``, idempotent, Java-compatible keyed partitioning); they differ in how long
records wait to form batches, how they are compressed, and how many accepted but not
yet delivered records a process may hold in memory, which is what a crash of the
process would lose before ``send()`` futures resolve.

Choose by measurement: ``governed-kafka bench`` compares the profiles on your cluster.
"""

from __future__ import annotations

from typing import Literal

import attrs

__all__ = [
    "BALANCED",
    "CONSUMER_PROFILE_KEYS",
    "DURABLE",
    "HIGH_THROUGHPUT",
    "LOW_LATENCY",
    "PROFILES",
    "PROFILE_KEYS",
    "Compression",
    "Profile",
    "by_name",
]

Compression = Literal["none", "gzip", "snappy", "lz4", "zstd"]

_COMPRESSIONS: frozenset[str] = frozenset({"none", "gzip", "snappy", "lz4", "zstd"})

#: The librdkafka keys a profile may set on a producer. Nothing else can come from a profile.
PROFILE_KEYS: frozenset[str] = frozenset(
    {
        "linger.ms",
        "batch.size",
        "batch.num.messages",
        "compression.type",
        "queue.buffering.max.messages",
        "queue.buffering.max.kbytes",
    }
)

#: The librdkafka keys a profile may set on a consumer.
CONSUMER_PROFILE_KEYS: frozenset[str] = frozenset({"fetch.wait.max.ms", "fetch.min.bytes"})


def _positive(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value <= 0:
        msg = f"Profile.{attribute.name} must be positive, got {value!r}"
        raise ValueError(msg)


def _compression(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if value not in _COMPRESSIONS:
        msg = f"Profile.compression must be one of {sorted(_COMPRESSIONS)}, got {value!r}"
        raise ValueError(msg)


def _linger(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0 <= value <= 900_000:
        msg = f"Profile.linger_ms must be between 0 and 900000, got {value!r}"
        raise ValueError(msg)


@attrs.frozen(kw_only=True)
class Profile:
    """Throughput and latency settings of a producer.

    Derive variants with :func:`attrs.evolve`:
    ``attrs.evolve(profiles.BALANCED, name="bulk-import", linger_ms=100)``.
    """

    #: Shown in logs, benchmarks and ``repr``.
    name: str
    #: How long a record may wait for others to fill a batch (``linger.ms``).
    linger_ms: float = attrs.field(validator=_linger)
    #: Upper bound of a batch in bytes (``batch.size``).
    batch_size: int = attrs.field(validator=_positive)
    #: Upper bound of a batch in records (``batch.num.messages``).
    batch_num_messages: int = attrs.field(validator=_positive)
    #: Codec applied per batch (``compression.type``).
    compression: Compression = attrs.field(validator=_compression)
    #: Records accepted but not yet delivered, at most (``queue.buffering.max.messages``).
    queue_max_messages: int = attrs.field(validator=_positive)
    #: Bytes accepted but not yet delivered, at most (``queue.buffering.max.kbytes``, in KiB).
    queue_max_kbytes: int = attrs.field(validator=_positive)
    #: Longest a consumer's fetch waits at the broker for data (``fetch.wait.max.ms``).
    fetch_wait_max_ms: int = attrs.field(default=100, validator=_positive)
    #: Bytes a fetch waits for before the broker answers (``fetch.min.bytes``).
    fetch_min_bytes: int = attrs.field(default=1, validator=_positive)

    def to_librdkafka(
        self, role: Literal["producer", "consumer"] = "producer"
    ) -> dict[str, str | int | float]:
        """Return the profile as librdkafka configuration for a producer or a consumer.

        Producer keys come from ``PROFILE_KEYS``, consumer keys from
        ``CONSUMER_PROFILE_KEYS``, and from nowhere else.
        """
        if role == "consumer":
            return {
                "fetch.wait.max.ms": self.fetch_wait_max_ms,
                "fetch.min.bytes": self.fetch_min_bytes,
            }
        return {
            "linger.ms": self.linger_ms,
            "batch.size": self.batch_size,
            "batch.num.messages": self.batch_num_messages,
            "compression.type": self.compression,
            "queue.buffering.max.messages": self.queue_max_messages,
            "queue.buffering.max.kbytes": self.queue_max_kbytes,
        }


#: The default. Short linger, no compression, and a local queue bounded to 100,000
#: records / 64 MiB so that a crashed process loses at most that much accepted work.
DURABLE = Profile(
    name="durable",
    linger_ms=5,
    batch_size=1_000_000,
    batch_num_messages=10_000,
    compression="none",
    queue_max_messages=100_000,
    queue_max_kbytes=65_536,
)

#: A little more linger and lz4: fewer, smaller requests for services with steady traffic.
BALANCED = Profile(
    name="balanced",
    linger_ms=10,
    batch_size=1_000_000,
    batch_num_messages=10_000,
    compression="lz4",
    queue_max_messages=200_000,
    queue_max_kbytes=262_144,
)

#: lz4, a short linger and a large queue: the most records per second, at the price of
#: more accepted-but-undelivered records in memory and of larger consumer fetches.
#: Measured on the embedded broker (benchmarks/RESULTS.md): lz4 is what raises the rate
#: (about 1.7x on JSON-like values); a longer linger or larger batches lower it for a
#: Python producer, whose pending delivery futures are what grows with them.
HIGH_THROUGHPUT = Profile(
    name="high-throughput",
    linger_ms=5,
    batch_size=1_000_000,
    batch_num_messages=10_000,
    compression="lz4",
    queue_max_messages=1_000_000,
    queue_max_kbytes=1_048_576,
    fetch_wait_max_ms=500,
    fetch_min_bytes=65_536,
)

#: No linger and no compression: each record leaves as soon as the connection is free,
#: and consumers fetch without waiting for more data.
LOW_LATENCY = Profile(
    name="low-latency",
    linger_ms=0,
    batch_size=131_072,
    batch_num_messages=1_000,
    compression="none",
    queue_max_messages=100_000,
    queue_max_kbytes=65_536,
    fetch_wait_max_ms=10,
)

#: Every named profile, by name.
PROFILES: dict[str, Profile] = {
    p.name: p for p in (DURABLE, BALANCED, HIGH_THROUGHPUT, LOW_LATENCY)
}


def by_name(name: str) -> Profile:
    """Return the named profile (``"durable"``, ``"balanced"``, ...); ``_`` and case are ignored."""
    key = name.strip().lower().replace("_", "-")
    try:
        return PROFILES[key]
    except KeyError:
        msg = f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}"
        raise ValueError(msg) from None
