"""An exactly-once processor for the crash and fencing tests: one output per input, in one
transaction per batch with the input offsets.

Usage: python eos_processor.py BOOTSTRAP CATALOG INPUT OUTPUT GROUP TRANSACTIONAL_ID DELAY_S

Runs until SIGTERM (``stop()``, then a clean exit) or SIGKILL. Each record's handler
waits ``DELAY_S`` (so that a test can kill it mid-stream) and sends the input's value
and key to OUTPUT. A fenced producer makes it print the error and exit with status 3.
"""

from __future__ import annotations

import signal
import sys
import time

from governed_kafka import (
    Catalog,
    CommitStrategy,
    GovernedConsumer,
    GovernedProducer,
    ProducerFenced,
    Record,
)

#: Exit status of a processor whose producer was fenced by a newer one.
FENCED_EXIT = 3


def main() -> None:
    bootstrap, catalog_path, source, sink, group, transactional_id, delay = sys.argv[1:8]
    pause = float(delay)
    catalog = Catalog.load(catalog_path)
    stopping: list[GovernedConsumer] = []

    def on_sigterm(signum: int, frame: object) -> None:
        if not stopping:
            sys.exit(0)  # still starting: nothing consumed, nothing to commit
        stopping[0].stop()

    signal.signal(signal.SIGTERM, on_sigterm)
    out = GovernedProducer(
        catalog,
        service="enricher",
        bootstrap_servers=bootstrap,
        transactional_id=transactional_id,
    )

    def handler(record: Record) -> None:
        if pause:
            time.sleep(pause)
        out.send(sink, record.value, key=record.key)

    consumer = GovernedConsumer(
        catalog,
        service="enricher",
        group_id=group,
        topics=[source],
        bootstrap_servers=bootstrap,
        commit=CommitStrategy.transactional(out, max_records=200, max_interval_s=0.5),
        overrides={"session.timeout.ms": 6000},
    )
    stopping.append(consumer)
    try:
        with consumer:
            consumer.run(handler)
    except ProducerFenced as fenced:
        print(f"fenced: {fenced}", file=sys.stderr, flush=True)
        out.close()
        sys.exit(FENCED_EXIT)
    out.close()


if __name__ == "__main__":
    main()
