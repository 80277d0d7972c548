"""Skew watch internals: the policy, the heavy-key summary and the windows (no broker)."""

from __future__ import annotations

import random
import time

import pytest

from governed_kafka.hooks import SkewDetails
from governed_kafka.skew import SkewPolicy, _HeavyKeys, _SkewTracker


def test_sample_every_must_be_a_power_of_two() -> None:
    """A sampling rate that is not a power of two is refused, naming the field."""
    with pytest.raises(ValueError, match=r"sample_every must be a power of two.*got 3"):
        SkewPolicy(sample_every=3)


def test_min_samples_cannot_exceed_the_window() -> None:
    """A window that closes before it may be judged is refused."""
    with pytest.raises(ValueError, match=r"min_samples \(200\) must not exceed window_samples"):
        SkewPolicy(window_samples=100, min_samples=200)


def test_max_ratio_must_exceed_one() -> None:
    """A ratio of 1 would call every partition skewed, so it is refused."""
    with pytest.raises(ValueError, match="max_ratio must be > 1"):
        SkewPolicy(max_ratio=1.0)


def test_policy_is_frozen_and_keyword_only() -> None:
    """SkewPolicy takes keywords only and cannot be changed after construction."""
    policy = SkewPolicy(sample_every=8)
    with pytest.raises(AttributeError):
        policy.sample_every = 16  # type: ignore[misc]
    with pytest.raises(TypeError):
        SkewPolicy(8)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("partitions", "threshold"),
    [(1, 1.0), (2, 0.75), (3, 2 / 3), (6, 1 / 3), (12, 1 / 6)],
)
def test_threshold_is_twice_the_fair_share_or_halfway_to_all(
    partitions: int, threshold: float
) -> None:
    """The default threshold is 2/partitions, capped at halfway from fair share to 100%."""
    assert SkewPolicy().threshold(partitions) == pytest.approx(threshold)


def test_heavy_keys_keep_a_key_above_their_guarantee() -> None:
    """A key with more than 1/(capacity+1) of the additions is kept, among 10,000 others."""
    summary = _HeavyKeys(capacity=8)
    rng = random.Random(7)
    stream = [b"hot"] * 1500 + [f"k{rng.randrange(10_000)}".encode() for _ in range(8500)]
    rng.shuffle(stream)
    for key in stream:
        summary.add(key, 0)
    top = summary.top(1)
    assert top[0][0] == b"hot"
    assert 1500 - summary.error <= top[0][2] <= 1500


def test_heavy_keys_memory_is_bounded_whatever_the_cardinality() -> None:
    """100,000 distinct keys never take more than the summary's capacity in counters."""
    summary = _HeavyKeys(capacity=16)
    largest = 0
    for i in range(100_000):
        summary.add(f"key-{i}".encode(), i % 6)
        largest = max(largest, len(summary.counts))
    assert largest <= 16
    assert len(summary.partitions) <= 16


def test_heavy_keys_can_be_listed_for_one_partition() -> None:
    """top(partition=p) lists only keys whose records went to p."""
    summary = _HeavyKeys(capacity=8)
    for key, partition, times in [(b"a", 0, 5), (b"b", 1, 9), (b"c", 0, 3)]:
        for _ in range(times):
            summary.add(key, partition)
    assert [k for k, _, _ in summary.top(5, partition=0)] == [b"a", b"c"]


def _tracker(**policy: object) -> tuple[_SkewTracker, list[SkewDetails]]:
    alarms: list[SkewDetails] = []
    settings: dict[str, object] = {"window_samples": 100, "min_samples": 50, **policy}
    tracker = _SkewTracker(
        SkewPolicy(**settings),  # type: ignore[arg-type]
        partitions={"t": 4},
        on_skew=alarms.append,
    )
    return tracker, alarms


def _send(tracker: _SkewTracker, partition: int, key: bytes | None) -> None:
    """One sampled send whose delivery report comes back at once."""
    tracker.delivered("t", tracker.sample("t"), partition, key)


def test_a_window_is_judged_once_its_samples_are_delivered() -> None:
    """99 samples raise nothing; the 100th closes the window and, delivered, judges it."""
    tracker, alarms = _tracker()
    for _ in range(99):
        _send(tracker, 2, b"hot")
    assert alarms == []
    _send(tracker, 2, b"hot")
    assert len(alarms) == 1
    assert (alarms[0].partition, alarms[0].share, alarms[0].partitions) == (2, 1.0, 4)
    assert alarms[0].heavy_keys == ((b"hot", 100),)


def test_a_balanced_window_raises_no_alarm() -> None:
    """Samples spread evenly over the partitions close the window without an alarm."""
    tracker, alarms = _tracker()
    for i in range(400):
        _send(tracker, i % 4, f"k{i}".encode())
    assert alarms == []


def test_windows_follow_send_order_not_delivery_order() -> None:
    """Balanced sends whose reports come back grouped by partition raise no alarm."""
    tracker, alarms = _tracker()
    tickets = [(tracker.sample("t"), i % 4) for i in range(200)]
    for partition in range(4):  # librdkafka answers one partition's batch at a time
        for window, sent_to in tickets:
            if sent_to == partition:
                tracker.delivered("t", window, partition, None)
    assert alarms == []
    assert not tracker.report().topic("t").skewed


def test_a_window_waits_for_its_last_delivery_report() -> None:
    """A full window is judged when its last outstanding sample is delivered, not before."""
    tracker, alarms = _tracker()
    tickets = [tracker.sample("t") for _ in range(100)]
    for window in tickets[:-1]:
        tracker.delivered("t", window, 1, b"hot")
    assert alarms == []
    tracker.delivered("t", tickets[-1], 1, b"hot")
    assert len(alarms) == 1


def test_failed_samples_settle_a_window_without_counting() -> None:
    """Undelivered samples let the window close; they count for no partition."""
    tracker, alarms = _tracker()
    tickets = [tracker.sample("t") for _ in range(100)]
    for window in tickets[:60]:
        tracker.delivered("t", window, 1, b"hot")
    for window in tickets[60:]:
        tracker.failed("t", window)
    assert len(alarms) == 1
    assert alarms[0].window_sends == 60


def test_a_window_with_too_few_deliveries_is_not_judged() -> None:
    """When fewer than min_samples samples of a window were delivered, no alarm is raised."""
    tracker, alarms = _tracker()
    tickets = [tracker.sample("t") for _ in range(100)]
    for window in tickets[:10]:
        tracker.delivered("t", window, 1, b"hot")
    for window in tickets[10:]:
        tracker.failed("t", window)
    assert alarms == []


def test_a_slow_topic_window_closes_on_time_once_it_has_min_samples() -> None:
    """After window_s, the next sample closes a window holding min_samples samples."""
    tracker, alarms = _tracker(window_s=0.05)
    for _ in range(50):
        _send(tracker, 1, b"k")
    time.sleep(0.1)
    _send(tracker, 1, b"k")
    assert len(alarms) == 1
    assert alarms[0].window_sends == 50


def test_keyless_records_count_for_partitions_but_never_as_hot_keys() -> None:
    """A None key moves the partition counts and is never reported as a heavy key."""
    tracker, alarms = _tracker()
    for _ in range(100):
        _send(tracker, 0, None)
    assert alarms[0].heavy_keys == ()
    assert tracker.report().topic("t").partition_counts == ((0, 100),)


def test_the_report_covers_the_last_window_and_the_current_one() -> None:
    """After one full window and ten samples more, the report counts all 110."""
    tracker, _ = _tracker()
    for _ in range(110):
        _send(tracker, 3, b"k")
    view = tracker.report().topic("t")
    assert view.samples == 110
    assert view.hottest_partition == 3
    assert view.skewed
    assert view.heavy_keys[0].key == b"k"
    assert view.heavy_keys[0].partition == 3


def test_report_of_an_unknown_topic_names_it() -> None:
    """Asking the report for a topic with no samples raises KeyError naming the topic."""
    tracker, _ = _tracker()
    with pytest.raises(KeyError, match="orders"):
        tracker.report().topic("orders")
