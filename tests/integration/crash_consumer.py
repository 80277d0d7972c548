"""A consumer process for the crash test: records what it processes, one line per record.

Usage: python crash_consumer.py BOOTSTRAP CATALOG TOPIC GROUP OUTPUT DELAY_S [PROTOCOL]
Stops cleanly on SIGTERM (stop() from a signal handler).
"""

from __future__ import annotations

import os
import signal
import sys
import time

from governed_kafka import Catalog, CommitStrategy, GovernedConsumer, Record


def main() -> None:
    bootstrap, catalog_path, topic, group, output, delay = sys.argv[1:7]
    protocol = sys.argv[7] if len(sys.argv) > 7 else "classic"
    stopping: list[GovernedConsumer] = []

    def on_sigterm(signum: int, frame: object) -> None:
        if not stopping:
            sys.exit(0)  # still starting: nothing consumed, nothing to commit
        stopping[0].stop()

    # Installed first, so a SIGTERM during start-up is not a crash either.
    signal.signal(signal.SIGTERM, on_sigterm)
    consumer = GovernedConsumer(
        Catalog.load(catalog_path),
        service="billing",
        group_id=group,
        topics=[topic],
        bootstrap_servers=bootstrap,
        commit=CommitStrategy.batched(max_records=50, max_interval_s=60),
        overrides={"session.timeout.ms": 6000} if protocol == "classic" else {},
        group_protocol=protocol,  # type: ignore[arg-type]
    )
    stopping.append(consumer)
    fd = os.open(output, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def handler(record: Record) -> None:
        time.sleep(float(delay))
        os.write(fd, f"{record.partition} {record.offset}\n".encode())

    consumer.run(handler)  # until SIGTERM, or SIGKILL
    os.close(fd)


if __name__ == "__main__":
    main()
