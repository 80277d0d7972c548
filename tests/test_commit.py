"""Commit strategies and the offset tracker: never commit past an unprocessed record."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from governed_kafka import CommitStrategy
from governed_kafka._offsets import PartitionOffsets


def test_in_order_processing_advances_the_position() -> None:
    """Processing delivered records in order moves the position one past the last."""
    offsets = PartitionOffsets()
    for offset in (10, 11, 12):
        offsets.delivered(offset)
    offsets.processed(10)
    offsets.processed(11)
    assert offsets.position == 12
    assert offsets.in_flight == 1


def test_out_of_order_completion_never_commits_past_a_gap() -> None:
    """A record finished early stays uncommittable until every earlier record is done."""
    offsets = PartitionOffsets()
    for offset in range(5):
        offsets.delivered(offset)
    offsets.processed(3)
    offsets.processed(1)
    assert offsets.position is None
    offsets.processed(0)
    assert offsets.position == 2
    offsets.processed(2)
    assert offsets.position == 4
    offsets.processed(4)
    assert offsets.position == 5
    assert offsets.in_flight == 0


def test_sparse_offsets_use_the_delivered_records_not_integers() -> None:
    """Gaps in offsets (compaction, transaction markers) do not block the position."""
    offsets = PartitionOffsets()
    for offset in (100, 105, 109):
        offsets.delivered(offset)
    offsets.processed(100)
    offsets.processed(105)
    assert offsets.position == 106
    offsets.processed(109)
    assert offsets.position == 110


def test_marking_twice_or_marking_unknown_offsets_changes_nothing() -> None:
    """A record marked twice, or one that was already passed, is ignored."""
    offsets = PartitionOffsets()
    offsets.delivered(7)
    offsets.delivered(8)
    assert offsets.processed(7)
    assert not offsets.processed(7)
    assert not offsets.processed(3)
    assert offsets.position == 8
    assert offsets.in_flight == 1


@given(st.permutations(list(range(30))), st.integers(min_value=0, max_value=30))
def test_position_is_always_the_longest_processed_prefix(order: list[int], done: int) -> None:
    """For any completion order, the position is one past the longest processed prefix."""
    offsets = PartitionOffsets()
    for offset in range(30):
        offsets.delivered(offset)
    finished = set(order[:done])
    for offset in order[:done]:
        offsets.processed(offset)
    prefix = 0
    while prefix in finished:
        prefix += 1
    assert offsets.position == (prefix if prefix else None)
    assert offsets.in_flight == 30 - done


def test_uncommitted_reflects_progress_since_the_last_commit() -> None:
    """A partition needs a commit only when its position moved past the committed one."""
    offsets = PartitionOffsets()
    assert not offsets.uncommitted
    offsets.delivered(0)
    offsets.processed(0)
    assert offsets.uncommitted
    offsets.committed = 1
    assert not offsets.uncommitted


def test_per_record_is_due_after_every_record() -> None:
    """per_record commits after each processed record and never with nothing new."""
    strategy = CommitStrategy.per_record()
    assert strategy.due(1, 0.0)
    assert not strategy.due(0, 100.0)
    assert strategy.synchronous


def test_batched_is_due_on_count_or_interval() -> None:
    """batched commits after max_records records or max_interval_s seconds, asynchronously."""
    strategy = CommitStrategy.batched(max_records=100, max_interval_s=2.0)
    assert not strategy.due(99, 1.9)
    assert strategy.due(100, 0.0)
    assert strategy.due(1, 2.0)
    assert not strategy.due(0, 10.0)
    assert not strategy.synchronous


def test_manual_is_never_due() -> None:
    """manual never commits by itself."""
    strategy = CommitStrategy.manual()
    assert not strategy.due(1_000_000, 1_000_000.0)


@pytest.mark.parametrize(("records", "interval"), [(0, 1.0), (10, 0.0), (10, -1.0)])
def test_batched_refuses_nonsense_bounds(records: int, interval: float) -> None:
    """A batch bound of zero records or a non-positive interval is refused."""
    with pytest.raises(ValueError, match="max_"):
        CommitStrategy.batched(max_records=records, max_interval_s=interval)


def test_each_strategy_answers_the_consumers_questions() -> None:
    """The strategy objects, not string comparisons, say how run() settles and commits."""
    per_record, batched, manual = (
        CommitStrategy.per_record(),
        CommitStrategy.batched(max_records=7, max_interval_s=1.5),
        CommitStrategy.manual(),
    )
    assert (per_record.settle_every, batched.settle_every, manual.settle_every) == (1, 7, None)
    assert [s.commits_every_record for s in (per_record, batched, manual)] == [True, False, False]
    assert [s.commits_when_run_ends for s in (per_record, batched, manual)] == [True, True, False]
    assert (batched.max_records, batched.max_interval_s) == (7, 1.5)
    assert per_record.max_records is None
    assert [s.kind for s in (per_record, batched, manual)] == ["per_record", "batched", "manual"]


def test_strategies_are_values_shown_as_their_factory_calls() -> None:
    """Equal factory calls give equal strategies, each an instance of CommitStrategy."""
    assert CommitStrategy.batched(max_records=3) == CommitStrategy.batched(max_records=3)
    assert CommitStrategy.batched(max_records=3) != CommitStrategy.batched(max_records=4)
    assert CommitStrategy.manual() == CommitStrategy.manual()
    assert isinstance(CommitStrategy.per_record(), CommitStrategy)
    assert repr(CommitStrategy.batched(max_records=3, max_interval_s=2.0)) == (
        "CommitStrategy.batched(max_records=3, max_interval_s=2.0)"
    )
