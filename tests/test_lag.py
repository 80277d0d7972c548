"""LagReport arithmetic: commit lag, processing lag, replay exposure."""

from __future__ import annotations

from governed_kafka import LagReport, PartitionLag


def test_lag_figures_follow_from_the_offsets() -> None:
    """Commit lag, processing lag and replay exposure are differences of the three positions."""
    entry = PartitionLag(topic="t", partition=0, high_watermark=100, committed=60, processed=90)
    assert entry.commit_lag == 40
    assert entry.processing_lag == 10
    assert entry.replay_exposure == 30


def test_unknown_positions_give_unknown_lag() -> None:
    """With nothing committed or processed the figures are None, not invented zeros."""
    entry = PartitionLag(topic="t", partition=0, high_watermark=100, committed=None, processed=None)
    assert entry.commit_lag is None
    assert entry.processing_lag is None
    assert entry.replay_exposure is None


def test_processed_without_commit_is_all_exposed() -> None:
    """Everything processed since the start is exposed when nothing was committed."""
    entry = PartitionLag(topic="t", partition=0, high_watermark=10, committed=None, processed=7)
    assert entry.replay_exposure == 7


def test_report_totals_and_lookup() -> None:
    """The report sums its partitions and finds one by topic and partition."""
    report = LagReport(
        "g",
        (
            PartitionLag(topic="t", partition=0, high_watermark=10, committed=5, processed=8),
            PartitionLag(topic="t", partition=1, high_watermark=4, committed=4, processed=4),
        ),
    )
    assert (report.commit_lag, report.processing_lag, report.replay_exposure) == (5, 2, 3)
    assert report.partition("t", 1).commit_lag == 0
    assert report.to_dict()["replay_exposure"] == 3


def test_the_lag_table_shows_broker_names_literally() -> None:
    """Topic and group names from the broker are shown as they are, never read as markup."""
    from rich.console import Console

    from governed_kafka.cli._lag import render

    report = LagReport(
        "g[/]",
        (PartitionLag(topic="t[/]x", partition=0, high_watermark=5, committed=1, processed=None),),
    )
    console = Console(record=True, width=200)
    console.print(render(report))
    text = console.export_text()
    assert "t[/]x" in text
    assert "g[/]" in text
