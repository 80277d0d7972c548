"""Kafka's keyed partitioning: which partition a key lands on, as the Java client computes it.

The producers themselves partition inside librdkafka (``murmur2_random``); this is for
the places that must predict it without producing, such as ``plan`` saying how many
keys a partition increase would move.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

__all__ = ["keys_moved", "murmur2", "partition_for"]

_M = 0x5BD1E995
_SEED = 0x9747B28C
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's ``Utils.murmur2(data)``, as a signed 32-bit int."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    whole = length - length % 4
    for (word,) in struct.iter_unpack("<I", data[:whole]):
        k = (word * _M) & _MASK
        k ^= k >> 24
        h = ((h * _M) & _MASK) ^ ((k * _M) & _MASK)
    tail = data[whole:]
    if len(tail) >= 3:
        h ^= tail[2] << 16
    if len(tail) >= 2:
        h ^= tail[1] << 8
    if tail:
        h ^= tail[0]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for(key: bytes, partitions: int) -> int:
    """The partition of ``key`` among ``partitions``: ``toPositive(murmur2(key)) % partitions``."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def keys_moved(keys: Iterable[bytes], before: int, after: int) -> tuple[int, int]:
    """``(moved, distinct)``: of the distinct ``keys``, how many land elsewhere with
    ``after`` partitions than with ``before``."""
    distinct = set(keys)
    moved = sum(1 for key in distinct if partition_for(key, before) != partition_for(key, after))
    return moved, len(distinct)
