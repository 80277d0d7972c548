"""The health watch's judgement: each status from the evidence that makes it, and the probes.

The watch is driven here with a real offset book and chosen clocks (no broker is
involved in judging); tests/integration/test_health_broker.py shows the statuses of consumers
on both brokers.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from governed_kafka._health import HealthWatch
from governed_kafka._offsets import OffsetBook
from governed_kafka._records import Record
from governed_kafka.health import SEVERITY, HealthReport, serve_probes
from governed_kafka.hooks import HookChain

KEY = ("t.a.b.v1", 0)


class Evidence:
    """What a consumer would show its watch: a book, a poll time, a watermark."""

    def __init__(self) -> None:
        self.book = OffsetBook()
        self.book.assign([KEY])
        self.last_poll = time.monotonic()
        self.current: Record | None = None
        self.high: int | None = 0
        self.closed = False
        self.watch = HealthWatch(
            group_id="g",
            max_poll_interval_s=300,
            hooks=HookChain([]),
            book=self.book,
            last_poll=lambda: self.last_poll,
            current=lambda: self.current,
            high_watermark=lambda key: self.high,
            closed=lambda: self.closed,
            tiers=None,
        )

    def processed_to(self, position: int) -> None:
        offsets = self.book.get(KEY)
        assert offsets is not None
        offsets.processed_in_order(position - 1)

    def sample(self, at: float) -> None:
        self.watch.sample(at)

    def report(self, **options: Any) -> HealthReport:
        self.last_poll = time.monotonic()
        return self.watch.report(**options)


def test_processing_as_records_come_is_ok() -> None:
    """Lag that does not grow over the window is ok, and the consumer live and ready."""
    evidence = Evidence()
    now = time.monotonic()
    evidence.high = 100
    evidence.processed_to(90)
    evidence.sample(now - 5)
    evidence.high = 110
    evidence.processed_to(105)
    report = evidence.report(window_s=10)
    assert report.status == "ok"
    assert (report.live, report.ready) == (True, True)
    (partition,) = report.partitions
    assert (partition.lag, partition.position, partition.high_watermark) == (5, 105, 110)


def test_lag_that_grew_over_the_window_is_lagging() -> None:
    """Lag above zero that grew from the window's first sample is lagging, with the numbers."""
    evidence = Evidence()
    now = time.monotonic()
    evidence.high = 100
    evidence.processed_to(90)
    evidence.sample(now - 5)
    evidence.high = 200
    evidence.processed_to(95)
    report = evidence.report(window_s=10)
    assert report.status == "lagging"
    assert report.partitions[0].reason.startswith("lag grew from 10 to 105")
    assert report.live


def test_no_new_record_over_the_window_is_idle() -> None:
    """Nothing waiting and the high watermark unchanged for the whole window is idle."""
    evidence = Evidence()
    now = time.monotonic()
    evidence.high = 50
    evidence.processed_to(50)
    evidence.sample(now - 9.5)
    assert evidence.report(window_s=10).status == "idle"


def test_a_handler_on_one_record_too_long_is_stalled_and_not_live() -> None:
    """A record a handler has been on for longer than stalled_after_s stalls its partition."""
    evidence = Evidence()
    record = Record(KEY[0], 0, 7, None, b"", (), None)
    evidence.watch.started(record)
    time.sleep(0.2)
    report = evidence.report(window_s=10, stalled_after_s=0.1)
    assert report.status == "stalled"
    assert (report.live, report.ready) == (False, False)
    assert "offset 7" in report.partitions[0].reason
    evidence.watch.finished(record)
    assert evidence.report(window_s=10, stalled_after_s=0.1).status != "stalled"


def test_no_poll_for_too_long_is_stopped_and_closed_is_stopped() -> None:
    """No poll for longer than stopped_after_s is stopped; so is a closed consumer."""
    evidence = Evidence()
    evidence.last_poll = time.monotonic() - 5
    report = evidence.watch.report(window_s=10, stopped_after_s=2)
    assert report.status == "stopped"
    assert "no poll for 5" in report.reasons[0]
    assert not report.live
    evidence.closed = True
    report = evidence.report(window_s=10)
    assert (report.status, report.ready) == ("stopped", False)
    assert "closed" in report.partitions[0].reason


def test_a_position_that_went_back_is_rewound() -> None:
    """A processed position below one seen before (an offset reset) is rewound for the window."""
    evidence = Evidence()
    now = time.monotonic()
    evidence.high = 100
    evidence.processed_to(80)
    evidence.sample(now - 3)
    evidence.book.drop([KEY])
    evidence.book.assign([KEY])  # given back, read again from an earlier offset
    evidence.processed_to(10)
    report = evidence.report(window_s=10)
    assert report.status == "rewound"
    assert report.partitions[0].reason == "processed position went back 80 -> 10"


def test_the_overall_status_is_the_worst_and_the_window_is_bounded() -> None:
    """Severity orders the statuses; a window beyond the kept samples is refused by name."""
    assert sorted(SEVERITY, key=SEVERITY.__getitem__) == [
        "idle",
        "ok",
        "lagging",
        "rewound",
        "stalled",
        "stopped",
    ]
    with pytest.raises(ValueError, match="window_s must be above 0 and at most 120"):
        Evidence().report(window_s=600)


def test_probes_answer_200_when_live_or_ready_and_503_when_not() -> None:
    """/livez and /readyz follow the report; other paths are 404."""
    evidence = Evidence()
    with serve_probes(evidence.report) as probes:
        base = f"http://127.0.0.1:{probes.port}"
        with urllib.request.urlopen(f"{base}/livez", timeout=5) as answer:
            assert answer.status == 200
            assert json.loads(answer.read())["status"] in {"ok", "idle"}
        evidence.closed = True
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{base}/readyz", timeout=5)
        assert refused.value.code == 503
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"{base}/metrics", timeout=5)
        assert missing.value.code == 404
