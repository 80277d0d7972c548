"""``python -m governed_kafka``: the ``governed-kafka`` command line."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":  # pragma: no cover - exercised through subprocess in tests
    main(prog_name="governed-kafka")
