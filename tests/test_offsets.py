"""The offset book: what a consumer holds, processed and may commit, without a broker."""

from __future__ import annotations

import time

from governed_kafka._offsets import OffsetBook
from governed_kafka._records import Record

T = "shop.order.created.v1"


def _record(partition: int, offset: int) -> Record:
    return Record(T, partition, offset, None, b"v", (), None)


def _read(book: OffsetBook, partition: int, offsets: list[int], *, in_order: bool) -> None:
    """What a read does: each delivered offset through the partition's lane."""
    lane = book.lanes({T: None}, in_order=in_order)(T, partition)
    assert lane is not None
    track, decode = lane
    assert decode is None
    for offset in offsets:
        if track is not None:
            track(offset)
    book.taken(len(offsets))


def test_a_partition_not_held_has_no_lane() -> None:
    """A record of a partition the consumer does not hold is not read into the book."""
    book = OffsetBook()
    book.assign([(T, 0)])
    lanes = book.lanes({T: None}, in_order=False)
    assert lanes(T, 1) is None
    assert lanes(T, 0) is not None


def test_records_read_in_any_order_are_tracked_one_by_one() -> None:
    """For poll_batch (any order), every delivered offset is pending until processed."""
    book = OffsetBook()
    book.assign([(T, 0)])
    _read(book, 0, [5, 6, 7], in_order=False)
    offsets = book.get((T, 0))
    assert offsets is not None
    assert list(offsets.pending) == [5, 6, 7]
    assert book.in_flight == 3


def test_an_in_order_read_with_nothing_pending_tracks_nothing() -> None:
    """run() finishes records in order: their position simply moves past each one."""
    book = OffsetBook()
    book.assign([(T, 0)])
    _read(book, 0, [5, 6, 7], in_order=True)
    offsets = book.get((T, 0))
    assert offsets is not None
    assert not offsets.pending
    assert offsets.processed_in_order(5)
    assert offsets.position == 6


def test_an_in_order_read_behind_pending_records_tracks_them() -> None:
    """With records still pending (a deferred one), an in-order read tracks its own too."""
    book = OffsetBook()
    book.assign([(T, 0)])
    _read(book, 0, [5], in_order=False)
    _read(book, 0, [6, 7], in_order=True)
    offsets = book.get((T, 0))
    assert offsets is not None
    assert list(offsets.pending) == [5, 6, 7]
    assert offsets.processed_in_order(6)
    assert offsets.position is None  # 5 is not processed yet


def test_marking_counts_each_record_once() -> None:
    """mark() counts a processed record once, and not one of a partition no longer held."""
    book = OffsetBook()
    book.assign([(T, 0)])
    _read(book, 0, [0, 1], in_order=False)
    assert book.mark((T, 0), 1)
    assert not book.mark((T, 0), 1)
    assert not book.mark((T, 9), 0)
    assert (book.in_flight, book.processed_since_commit) == (1, 1)
    offsets = book.get((T, 0))
    assert offsets is not None
    assert offsets.position is None  # 0 still holds the prefix back


def test_held_counts_processed_records_behind_an_unprocessed_one() -> None:
    """A first record never processed holds every later one of its partition."""
    book = OffsetBook()
    book.assign([(T, 0)])
    _read(book, 0, list(range(10)), in_order=False)
    for offset in range(1, 10):
        book.mark((T, 0), offset)
    assert book.in_flight == 1
    assert book.held() == 10


def test_dropping_partitions_forgets_their_records_in_flight() -> None:
    """A revoked or lost partition's unprocessed records no longer count in flight."""
    book = OffsetBook()
    book.assign([(T, 0), (T, 1)])
    _read(book, 0, [0, 1, 2], in_order=False)
    _read(book, 1, [0], in_order=False)
    book.drop([(T, 0)])
    assert book.keys() == [(T, 1)]
    assert book.in_flight == 1
    assert book.get((T, 0)) is None


def test_assigning_a_held_partition_again_keeps_its_offsets() -> None:
    """An incremental assignment that names a partition already held changes nothing."""
    book = OffsetBook()
    book.assign([(T, 0)])
    _read(book, 0, [3], in_order=False)
    book.mark((T, 0), 3)
    book.assign([(T, 0), (T, 1)])
    offsets = book.get((T, 0))
    assert offsets is not None
    assert offsets.position == 4


def test_only_moved_positions_are_committed_and_the_counters_restart() -> None:
    """to_commit() names each partition whose position moved, then starts counting again."""
    book = OffsetBook()
    book.assign([(T, 0), (T, 1)])
    _read(book, 0, [0, 1], in_order=False)
    book.mark((T, 0), 0)
    before = time.monotonic()
    assert book.to_commit() == ((T, 0, 1),)
    assert book.processed_since_commit == 0
    assert book.last_commit >= before
    book.committed(((T, 0, 1),))
    assert book.to_commit() == ()


def test_to_commit_can_be_limited_to_some_partitions() -> None:
    """On revoke, only the revoked partitions' positions are committed."""
    book = OffsetBook()
    book.assign([(T, 0), (T, 1)])
    for partition in (0, 1):
        _read(book, partition, [0], in_order=False)
        book.mark((T, partition), 0)
    assert book.to_commit(only=[(T, 1)]) == ((T, 1, 1),)


def test_a_failed_asynchronous_commit_is_committed_again() -> None:
    """not_committed() undoes a commit only where it still is the last one."""
    book = OffsetBook()
    book.assign([(T, 0), (T, 1)])
    for partition in (0, 1):
        _read(book, partition, [0, 1], in_order=False)
        book.mark((T, partition), 0)
    book.committed(book.to_commit())
    book.mark((T, 1), 1)
    book.committed(book.to_commit())  # partition 1 moved on to 2 meanwhile
    book.not_committed(((T, 0, 1), (T, 1, 1)))
    assert book.to_commit() == ((T, 0, 1),)


def test_deferred_records_are_tracked_for_the_next_read() -> None:
    """Records read in order but not handled become pending, once each, in offset order."""
    book = OffsetBook()
    book.assign([(T, 0)])
    _read(book, 0, [0, 1, 2], in_order=True)
    book.defer([_record(0, 1), _record(0, 2)])
    book.defer([_record(0, 2)])
    offsets = book.get((T, 0))
    assert offsets is not None
    assert list(offsets.pending) == [1, 2]


def test_a_held_record_stays_uncommitted_until_it_is_marked() -> None:
    """hold() tracks a record an in-order read did not (a dead letter in the making)."""
    book = OffsetBook()
    book.assign([(T, 0)])
    _read(book, 0, [4, 5], in_order=True)
    book.hold((T, 0), 4)
    offsets = book.get((T, 0))
    assert offsets is not None
    assert list(offsets.pending) == [4]
    assert book.to_commit() == ()  # not until it is dead-lettered
    assert book.mark((T, 0), 4)
    assert offsets.position == 5
    assert offsets.processed_in_order(5)
    assert offsets.position == 6


def test_settled_counts_records_processed_in_a_batch() -> None:
    """run() settles the counts of a batch at once."""
    book = OffsetBook()
    book.assign([(T, 0)])
    _read(book, 0, [0, 1, 2], in_order=True)
    book.settled(3)
    assert (book.in_flight, book.processed_since_commit) == (0, 3)


def test_a_rewind_undoes_everything_since_the_last_commit() -> None:
    """After rewind() each partition is back at its committed position: nothing pending,
    nothing in flight, nothing to commit, and the undone records are counted."""
    book = OffsetBook()
    book.assign([(T, 0), (T, 1)])
    _read(book, 0, [0, 1, 2], in_order=False)
    book.mark((T, 0), 0)
    book.committed(book.to_commit())
    book.mark((T, 0), 1)
    _read(book, 1, [0, 1], in_order=False)
    book.mark((T, 1), 0)
    assert book.rewind() == 2
    assert book.in_flight == 0
    assert book.processed_since_commit == 0
    assert book.to_commit() == ()
    first, second = book.get((T, 0)), book.get((T, 1))
    assert first is not None
    assert second is not None
    assert (first.position, first.committed, list(first.pending)) == (1, 1, [])
    assert (second.position, second.committed, list(second.pending)) == (None, None, [])
