"""Consumer lag as a signal: how far behind, and how much a crash now would replay."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import attrs

__all__ = ["LagReport", "PartitionLag", "group_lag"]


def _behind(end: int | None, at: int | None) -> int | None:
    if end is None or end < 0:
        return None
    if at is None or at < 0:
        # Nothing committed or processed yet: everything retained is still ahead.
        return None
    return max(end - at, 0)


@attrs.frozen(kw_only=True)
class PartitionLag:
    """Offsets of one partition of a consumer group.

    Offsets are Kafka positions: the offset of the *next* record to read, process or
    commit. ``None`` means unknown (nothing committed yet, or not this process's
    partition).
    """

    topic: str
    partition: int
    #: One past the last record in the partition.
    high_watermark: int | None
    #: The group's committed position: where a restarted consumer resumes.
    committed: int | None
    #: One past the last record of the processed prefix, in this process.
    processed: int | None

    @property
    def commit_lag(self) -> int | None:
        """Records between the committed position and the end of the partition."""
        return _behind(self.high_watermark, self.committed)

    @property
    def processing_lag(self) -> int | None:
        """Records not yet processed by this consumer."""
        return _behind(self.high_watermark, self.processed)

    @property
    def replay_exposure(self) -> int | None:
        """Records processed but not committed: what a crash right now would replay."""
        if self.processed is None:
            return None
        return max(self.processed - (self.committed if self.committed is not None else 0), 0)


@attrs.frozen
class LagReport:
    """Lag of every partition a consumer (or group) holds, at one moment."""

    group_id: str
    partitions: tuple[PartitionLag, ...]

    def __iter__(self) -> Iterator[PartitionLag]:
        return iter(self.partitions)

    def __len__(self) -> int:
        return len(self.partitions)

    def partition(self, topic: str, partition: int) -> PartitionLag:
        """The entry for one partition."""
        for entry in self.partitions:
            if entry.topic == topic and entry.partition == partition:
                return entry
        msg = f"no lag entry for {topic}[{partition}] in group {self.group_id!r}"
        raise KeyError(msg)

    @property
    def commit_lag(self) -> int:
        """Total records behind the committed positions (unknown partitions count 0)."""
        return sum(p.commit_lag or 0 for p in self.partitions)

    @property
    def processing_lag(self) -> int:
        """Total records not yet processed (unknown partitions count 0)."""
        return sum(p.processing_lag or 0 for p in self.partitions)

    @property
    def replay_exposure(self) -> int:
        """Total records a crash now would replay."""
        return sum(p.replay_exposure or 0 for p in self.partitions)

    def to_dict(self) -> dict[str, object]:
        """The report as plain data, for JSON output."""
        return {
            "group_id": self.group_id,
            "partitions": [
                {
                    "topic": p.topic,
                    "partition": p.partition,
                    "high_watermark": p.high_watermark,
                    "committed": p.committed,
                    "processed": p.processed,
                    "commit_lag": p.commit_lag,
                    "processing_lag": p.processing_lag,
                    "replay_exposure": p.replay_exposure,
                }
                for p in self.partitions
            ],
            "commit_lag": self.commit_lag,
            "processing_lag": self.processing_lag,
            "replay_exposure": self.replay_exposure,
        }


def group_lag(
    bootstrap_servers: str | list[str] | tuple[str, ...],
    group_id: str,
    *,
    overrides: Mapping[str, str | int | float | bool] | None = None,
    timeout: float = 10.0,
) -> LagReport:
    """Lag of any consumer group, read from the cluster (committed offsets and log ends).

    ``processed`` is unknown from outside the group's processes and stays ``None``.
    Partitions the group never committed on are not listed. ``overrides`` carries
    connection settings (TLS, SASL) for the admin client.
    """
    from . import _config, _kafka

    config: dict[str, object] = {"bootstrap.servers": _config.bootstrap(bootstrap_servers)}
    config.update(_config.check_admin_overrides(overrides))
    admin = _kafka.Admin(config, timeout=timeout)
    committed = admin.group_committed(group_id)
    ends = admin.latest_offsets(sorted(committed))
    return LagReport(
        group_id,
        tuple(
            PartitionLag(
                topic=topic,
                partition=partition,
                high_watermark=ends.get((topic, partition)),
                committed=offset,
                processed=None,
            )
            for (topic, partition), offset in sorted(committed.items())
        ),
    )
