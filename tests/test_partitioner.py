"""Keyed partitioning predicted in Python matches Kafka's Java client."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from governed_kafka._partitioner import keys_moved, murmur2, partition_for
from murmur2 import java_partition
from murmur2 import murmur2 as reference
from test_murmur2_reference import JAVA_VECTORS


def test_murmur2_matches_the_java_vectors() -> None:
    """Every vector of Kafka's own murmur2 test gives the Java value."""
    for data, expected in JAVA_VECTORS:
        assert murmur2(data) == expected


@given(st.binary(max_size=64), st.integers(min_value=1, max_value=1000))
def test_partition_agrees_with_the_independent_reference(data: bytes, partitions: int) -> None:
    """For any key and partition count, the partition is the reference's."""
    assert murmur2(data) == reference(data)
    assert partition_for(data, partitions) == java_partition(data, partitions)


def test_keys_moved_counts_distinct_keys_that_change_partition() -> None:
    """Each distinct key counts once; a key keeps its partition only if both counts agree."""
    keys = [f"k{i}".encode() for i in range(200)] * 3
    moved, distinct = keys_moved(keys, 3, 6)
    assert distinct == 200
    expected = sum(
        1
        for i in range(200)
        if java_partition(f"k{i}".encode(), 3) != java_partition(f"k{i}".encode(), 6)
    )
    assert moved == expected
    assert keys_moved(keys, 4, 4) == (0, 200)
