"""``governed-kafka``: lint, plan and apply contracts, read lag, benchmark, demo.

Each command lives in its own private module and registers itself on :data:`main`.
Human output uses tables and progress bars (rich); ``--json`` gives machine output.
"""

from __future__ import annotations

# Importing a command module registers its commands on ``main``.
from . import _bench, _demo, _dlq, _governance, _lag  # noqa: F401
from ._common import main

__all__ = ["main"]
