"""The runtime gate of a consumer: before it joins its group, the cluster holds every
topic it reads (and their dead-letter topics) as their contracts say, and grants its
service the rights the contracts imply.
"""

from __future__ import annotations

from collections.abc import Sequence

from . import cluster
from ._config import Overrides
from .contracts import Catalog


def verify_topics(
    catalog: Catalog,
    config: Overrides,
    *,
    service: str,
    group: str,
    reads: Sequence[str],
    dead_letters: Sequence[str],
) -> None:
    """Rights first (without them, the topics would look missing or unreadable), then
    every topic against its contract (``topic.missing``, ``topic.drift``)."""
    live = cluster.Cluster._from_client_config(config, cluster.DEFAULT_TIMEOUT_S)
    verify_access(
        catalog,
        config,
        service=service,
        group=group,
        reads=reads,
        dead_letters=dead_letters,
        live=live,
    )
    used = list(reads) + [dlq for dlq in dict.fromkeys(dead_letters) if dlq not in reads]
    live.verify(catalog, used)


def verify_access(
    catalog: Catalog,
    config: Overrides,
    *,
    service: str,
    group: str,
    reads: Sequence[str],
    dead_letters: Sequence[str],
    live: cluster.Cluster | None = None,
) -> None:
    """For a service with a principal: READ on its topics and group, WRITE on their
    dead-letter topics, or :class:`~governed_kafka.errors.AccessDenied`."""
    if catalog.service(service) is None:
        return
    if live is None:
        live = cluster.Cluster._from_client_config(config, cluster.DEFAULT_TIMEOUT_S)
    live.verify_access(
        catalog, service=service, reads=list(reads), writes=list(dead_letters), group=group
    )
