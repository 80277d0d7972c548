"""A consumer process for the tier hand-off crash test: it fails one record (which goes to
its retry topic), then stalls on the next, so it can be killed before any commit.

Usage: python crash_tier_consumer.py BOOTSTRAP CATALOG TOPIC GROUP OUTPUT
Writes ``handled VALUE`` per record it handles and ``stalling`` before it stalls.
"""

from __future__ import annotations

import os
import sys
import time

from governed_kafka import Catalog, CommitStrategy, GovernedConsumer, Record, RetryPolicy


def main() -> None:
    bootstrap, catalog_path, topic, group, output = sys.argv[1:6]
    consumer = GovernedConsumer(
        Catalog.load(catalog_path),
        service="billing",
        group_id=group,
        topics=[topic],
        bootstrap_servers=bootstrap,
        retry=RetryPolicy.never(),
        commit=CommitStrategy.batched(max_records=100_000, max_interval_s=3600),
        overrides={"session.timeout.ms": 6000},
    )
    fd = os.open(output, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def handler(record: Record) -> None:
        value = record.value.decode()
        if value == "fail":
            raise ValueError("to the tier")
        if value == "stall":
            os.write(fd, b"stalling\n")
            time.sleep(600)  # killed here: the failed record is in its tier, nothing committed
        os.write(fd, f"handled {value}\n".encode())

    consumer.run(handler)


if __name__ == "__main__":
    main()
