"""The rules :meth:`Catalog.lint` holds every contract to, offline.

Each rule is a plain function. A *topic rule* takes one contract and the policy in force
and returns the :class:`~governed_kafka.policy.Violation` objects it finds; a *catalog
rule* takes the whole :class:`~governed_kafka.contracts.Catalog`, for rules that look
across topics (duplicates, dead-letter topics). :data:`TOPIC_RULES` and
:data:`CATALOG_RULES` list the rules that run; a further rule module plugs in by adding
its function to one of them::

    TOPIC_RULES = (..., compatibility.check_contract)

Every violation carries a stable rule id (:data:`RULES` lists them with what each
means), so CI output and dashboards can match on it. Environment overrides are applied
when the catalog is loaded, so the rules see the values of the chosen environment.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Final

from .acls import check_services
from .compatibility import check_contract as check_schemas
from .policy import (
    CLEANUP_POLICIES,
    DURABLE_MIN_INSYNC_REPLICAS,
    DURABLE_REPLICATION_FACTOR,
    Policy,
    Severity,
    Violation,
)

if TYPE_CHECKING:
    from .contracts import Catalog, TopicContract

__all__ = [
    "CATALOG_RULES",
    "RULES",
    "TOPIC_RULES",
    "CatalogRule",
    "TopicRule",
    "check_cleanup_policy",
    "check_compacted_key",
    "check_consumers",
    "check_dead_letters",
    "check_duplicates",
    "check_durability",
    "check_exactly_once",
    "check_min_insync_replicas",
    "check_min_insync_vs_replication",
    "check_name",
    "check_owner",
    "check_partitions",
    "check_producers",
    "check_replication_factor",
    "check_retention",
    "check_retry_topics",
    "check_schema_declared",
    "check_tenant",
    "lint",
]

#: A rule over one contract: ``(contract, policy) -> violations``.
TopicRule = Callable[["TopicContract", Policy], Iterable[Violation]]

#: A rule over the whole catalog: ``(catalog) -> violations``.
CatalogRule = Callable[["Catalog"], Iterable[Violation]]

#: Every rule id this module reports, and what breaking it means.
RULES: Final[Mapping[str, str]] = {
    "topic.name-pattern": "the topic name does not match the policy's topic_name_pattern",
    "topic.owner-missing": "the policy requires an owner and the topic names none",
    "topic.retention-missing": (
        "the policy requires retention_ms and the topic (not compacted-only) sets none"
    ),
    "topic.replication-factor": "replication_factor is below the policy minimum",
    "topic.min-insync-replicas": (
        "min_insync_replicas is below the policy minimum, or unset while the minimum is above 1"
    ),
    "topic.min-insync-not-below-rf": (
        "min_insync_replicas is not below replication_factor (allowed only when both are 1)"
    ),
    "topic.durability": (
        "the policy demands durable topics and the topic has replication_factor < 3 "
        "or min_insync_replicas < 2"
    ),
    "topic.partitions-max": "partitions is above the policy's max_partitions",
    "topic.cleanup-policy": "cleanup_policy is not delete, compact or compact,delete",
    "topic.compacted-key": "the topic is compacted but its key is not 'required'",
    "topic.schema-missing": "the policy requires a value_schema and the topic declares none",
    "topic.no-producers": "no service is listed as a producer",
    "topic.no-consumers": "no service is listed as a consumer (warning)",
    "topic.tenant-missing": "the policy requires tenant prefixes and the topic has no tenant",
    "topic.tenant-prefix": "the topic name does not start with its tenant's prefix",
    "topic.duplicate": "the same topic name is declared more than once",
    "dead-letter.missing": "the dead_letter_topic has no contract in the catalog",
    "dead-letter.self": "the topic is its own dead_letter_topic",
    "dead-letter.schema": (
        "the dead-letter topic declares a value_schema or key_schema (it must carry raw bytes)"
    ),
    "dead-letter.key-required": (
        "the dead-letter topic requires a key (key = 'required' or compacted), "
        "so keyless records could not be dead-lettered"
    ),
    "dead-letter.producers": (
        "the dead-letter topic does not list every consumer of its source topic as a producer"
    ),
    "retry.missing": "a retry topic has no contract in the catalog",
    "retry.self": (
        "a retry topic is the topic itself, its dead-letter topic, or a retry topic of "
        "another topic"
    ),
    "retry.dead-letter": "a topic with retry topics declares no dead_letter_topic after them",
    "retry.shape": (
        "a retry topic declares a value_schema or key_schema (it carries the original "
        "bytes) or is compacted"
    ),
    "retry.rights": (
        "a retry topic does not list every consumer of its source topic as a producer and "
        "a consumer"
    ),
    "retry.retention": "a retry topic keeps records for less time than its delay",
    "ordering.key-required": "ordering = 'key' on a topic whose key is not 'required'",
    "ordering.partitions": (
        "ordering = 'key' and a retry topic or the dead-letter topic has another partition "
        "count than the topic"
    ),
    "schema.parse": (
        "a value_schema or key_schema file cannot be read, or is not valid in its format "
        "(.avsc Avro, .json JSON Schema, .proto Protobuf), or its suffix names no format"
    ),
    "schema.subject": (
        "under a record subject strategy, a schema carries no single record to name its "
        "subject after (an Avro union, a JSON Schema without title)"
    ),
    "schema.format": "the versions of one registry subject are in different schema formats",
    "schema.compatibility": (
        "a listed schema version breaks the topic's compatibility mode against earlier ones"
    ),
    "schema.event-types": (
        "an event_types entry is not carried by a current schema (an Avro record, a JSON "
        "Schema title, a Protobuf message), or a record-strategy subject is named after an "
        "event type event_types does not list"
    ),
    "schema.timestamp-field": (
        "timestamp_field is not a long (or timestamp-millis/-micros) field of every record "
        "of an Avro schema"
    ),
    "service.principal-missing": (
        "the policy requires principals and a listed producer or consumer has no "
        "[services.NAME] table"
    ),
    "service.groups": (
        "no consumer-group ACL can be derived for a consuming service: it declares no "
        "group_ids and the group_id_pattern is neither a name nor a prefix (an error when "
        "principals are required, else a warning)"
    ),
    "service.group-pattern": "a service's group_ids entry does not match the group_id_pattern",
    "service.unused": "a [services] entry produces, consumes and transacts nothing (warning)",
    "topic.exactly-once-producer": (
        "the topic sets exactly_once = true and one of its producers has no [services.NAME] "
        "table declaring transactional_ids, so nothing says it writes in transactions"
    ),
}


def _violation(
    rule: str,
    contract: TopicContract,
    field: str | None,
    message: str,
    severity: Severity = "error",
) -> Violation:
    return Violation(
        rule=rule, severity=severity, topic=contract.name, field=field, message=message
    )


# --------------------------------------------------------------------------- topic rules


def check_name(contract: TopicContract, policy: Policy) -> list[Violation]:
    """The name matches ``topic_name_pattern`` in full."""
    if policy.name_matches(contract.name):
        return []
    message = (
        f"name {contract.name!r} does not match the policy's topic_name_pattern "
        f"'{policy.topic_name_pattern}'"
    )
    return [_violation("topic.name-pattern", contract, "name", message)]


def check_owner(contract: TopicContract, policy: Policy) -> list[Violation]:
    """An owner is named when the policy requires one."""
    if not policy.require_owner or contract.owner is not None:
        return []
    message = "no owner: the policy requires every topic to name its owning team (owner = ...)"
    return [_violation("topic.owner-missing", contract, "owner", message)]


def check_retention(contract: TopicContract, policy: Policy) -> list[Violation]:
    """``retention_ms`` is set when the policy requires it, unless the topic is compacted-only."""
    if not policy.require_retention or contract.retention_ms is not None:
        return []
    if contract.cleanup_policy == "compact":
        return []  # a compacted-only log keeps the latest record per key, by design
    message = (
        f"no retention_ms: the policy requires a retention for every topic that deletes "
        f"(cleanup_policy {contract.cleanup_policy!r}); without it the broker default applies"
    )
    return [_violation("topic.retention-missing", contract, "retention_ms", message)]


def check_replication_factor(contract: TopicContract, policy: Policy) -> list[Violation]:
    """``replication_factor`` is at least the policy minimum."""
    if contract.replication_factor >= policy.min_replication_factor:
        return []
    message = (
        f"replication_factor {contract.replication_factor} is below the policy minimum "
        f"{policy.min_replication_factor}"
    )
    return [_violation("topic.replication-factor", contract, "replication_factor", message)]


def check_min_insync_replicas(contract: TopicContract, policy: Policy) -> list[Violation]:
    """``min_insync_replicas`` is at least the policy minimum (unset counts as the broker's 1)."""
    declared = contract.min_insync_replicas
    if declared is None:
        if policy.min_insync_replicas <= 1:
            return []
        message = (
            f"min_insync_replicas is not set, so the broker default (1 unless the cluster "
            f"changed it) applies, below the policy minimum {policy.min_insync_replicas}"
        )
    elif declared >= policy.min_insync_replicas:
        return []
    else:
        message = (
            f"min_insync_replicas {declared} is below the policy minimum "
            f"{policy.min_insync_replicas}"
        )
    return [_violation("topic.min-insync-replicas", contract, "min_insync_replicas", message)]


def check_min_insync_vs_replication(contract: TopicContract, policy: Policy) -> list[Violation]:
    """``min_insync_replicas`` is below ``replication_factor``, unless the factor is 1."""
    declared = contract.min_insync_replicas
    rf = contract.replication_factor
    if declared is None or rf == 1 or declared < rf:
        return []
    message = (
        f"min_insync_replicas {declared} is not below replication_factor {rf}: with acks=all, "
        "losing a single replica would stop every write to the topic"
    )
    return [_violation("topic.min-insync-not-below-rf", contract, "min_insync_replicas", message)]


def check_durability(contract: TopicContract, policy: Policy) -> list[Violation]:
    """Where the policy demands durability, the topic can honour acks=all + idempotence."""
    if not policy.demands_durability:
        return []
    rf = contract.replication_factor
    min_isr = contract.min_insync_replicas
    rf_short = rf < DURABLE_REPLICATION_FACTOR
    isr_short = min_isr is None or min_isr < DURABLE_MIN_INSYNC_REPLICAS
    if not (rf_short or isr_short):
        return []
    shown_isr = "unset (broker default, usually 1)" if min_isr is None else str(min_isr)
    message = (
        "the governed producer's guarantee (acks=all + idempotence) only protects data when "
        f"replication_factor >= {DURABLE_REPLICATION_FACTOR} and min_insync_replicas >= "
        f"{DURABLE_MIN_INSYNC_REPLICAS}; this topic has replication_factor {rf} and "
        f"min_insync_replicas {shown_isr}, so an acknowledged record can be lost with one broker"
    )
    field: str | None = None  # both fall short: the topic as a whole
    if not isr_short:
        field = "replication_factor"
    elif not rf_short:
        field = "min_insync_replicas"
    return [_violation("topic.durability", contract, field, message)]


def check_partitions(contract: TopicContract, policy: Policy) -> list[Violation]:
    """``partitions`` is at most the policy's ``max_partitions``."""
    limit = policy.max_partitions
    if limit is None or contract.partitions <= limit:
        return []
    message = f"partitions {contract.partitions} is above the policy's max_partitions {limit}"
    return [_violation("topic.partitions-max", contract, "partitions", message)]


def check_cleanup_policy(contract: TopicContract, policy: Policy) -> list[Violation]:
    """``cleanup_policy`` is one Kafka knows."""
    if contract.cleanup_policy in CLEANUP_POLICIES:
        return []
    message = (
        f"cleanup_policy {contract.cleanup_policy!r} is not one of "
        f"{', '.join(map(repr, CLEANUP_POLICIES))}"
    )
    return [_violation("topic.cleanup-policy", contract, "cleanup_policy", message)]


def check_compacted_key(contract: TopicContract, policy: Policy) -> list[Violation]:
    """A compacted topic requires a key: compaction keeps the latest record per key."""
    if not contract.is_compacted or contract.key == "required":
        return []
    message = (
        f"topic is compacted ({contract.cleanup_policy}) but key = {contract.key!r}: "
        "compaction keeps the latest record per key, so set key = 'required'"
    )
    return [_violation("topic.compacted-key", contract, "key", message)]


def check_schema_declared(contract: TopicContract, policy: Policy) -> list[Violation]:
    """A ``value_schema`` is declared when the policy requires one."""
    if not policy.require_schema or contract.value_schema:
        return []
    message = "no value_schema: the policy requires every topic to declare its schema"
    return [_violation("topic.schema-missing", contract, "value_schema", message)]


def check_producers(contract: TopicContract, policy: Policy) -> list[Violation]:
    """At least one service is listed as a producer."""
    if contract.producers:
        return []
    message = "no producers: no service may write to this topic (producers = [...])"
    return [_violation("topic.no-producers", contract, "producers", message)]


def check_consumers(contract: TopicContract, policy: Policy) -> list[Violation]:
    """At least one service is listed as a consumer (a warning: it may be new)."""
    if contract.consumers:
        return []
    message = "no consumers: nothing reads this topic yet (consumers = [...])"
    return [_violation("topic.no-consumers", contract, "consumers", message, "warning")]


def check_tenant(contract: TopicContract, policy: Policy) -> list[Violation]:
    """Where the policy requires tenant prefixes, the name starts with ``"<tenant>."``."""
    if not policy.require_tenant_prefix:
        return []
    if contract.tenant is None:
        message = "no tenant: the policy requires every topic to name its tenant (tenant = ...)"
        return [_violation("topic.tenant-missing", contract, "tenant", message)]
    prefix = f"{contract.tenant}."
    if contract.name.startswith(prefix):
        return []
    message = (
        f"name {contract.name!r} does not start with its tenant's prefix {prefix!r} "
        f"(tenant {contract.tenant!r})"
    )
    return [_violation("topic.tenant-prefix", contract, "name", message)]


# --------------------------------------------------------------------------- catalog rules


def check_duplicates(catalog: Catalog) -> list[Violation]:
    """No topic name is declared twice."""
    counts = Counter(t.name for t in catalog.topics)
    found = []
    reported: set[str] = set()
    for contract in catalog.topics:
        name = contract.name
        if counts[name] > 1 and name not in reported:
            reported.add(name)
            message = f"topic {name!r} is declared {counts[name]} times; keep one contract"
            found.append(_violation("topic.duplicate", contract, "name", message))
    return found


def check_dead_letters(catalog: Catalog) -> list[Violation]:
    """Each declared dead-letter topic exists in the catalog and can take dead letters."""
    found: list[Violation] = []
    for source in catalog.topics:
        name = source.dead_letter_topic
        if name is None:
            continue
        field = "dead_letter_topic"
        if name == source.name:
            message = "topic is its own dead_letter_topic: failed records would be read again"
            found.append(_violation("dead-letter.self", source, field, message))
            continue
        if name not in catalog:
            message = f"dead_letter_topic {name!r} has no contract in this catalog; declare it"
            found.append(_violation("dead-letter.missing", source, field, message))
            continue
        dlq = catalog.topic(name)
        for key, declared in (
            ("value_schema", bool(dlq.value_schema)),
            ("key_schema", dlq.key_schema is not None),
        ):
            if declared:
                message = (
                    f"dead-letter topic of {source.name!r} declares a {key}: dead letters "
                    "carry the original key and value bytes, undecodable ones included, so "
                    "it must carry raw bytes"
                )
                found.append(_violation("dead-letter.schema", dlq, key, message))
        if dlq.key == "required" or dlq.is_compacted:
            why = "is compacted" if dlq.is_compacted else "has key = 'required'"
            message = (
                f"dead-letter topic of {source.name!r} {why}: a keyless record of the source "
                "could not be dead-lettered; use key = 'optional' and cleanup_policy 'delete'"
            )
            found.append(_violation("dead-letter.key-required", dlq, "key", message))
        missing = [c for c in source.consumers if c not in dlq.producers]
        if missing:
            message = (
                f"dead-letter topic of {source.name!r} must list the source's consumers among "
                f"its producers (they publish the dead letters); missing: {', '.join(missing)}"
            )
            found.append(_violation("dead-letter.producers", dlq, "producers", message))
    return found


def check_retry_topics(catalog: Catalog) -> list[Violation]:
    """Each retry tier is a governed topic the source's consumers may use, followed by a
    dead-letter topic; key order needs a required key and equal partition counts."""
    found: list[Violation] = []
    owners: dict[str, str] = {}
    for source in catalog.topics:
        for tier in source.retry_topics:
            owners.setdefault(tier, source.name)
    for source in catalog.topics:
        if source.ordering == "key" and source.key != "required":
            message = (
                f"ordering = 'key' needs key = 'required' (the key is what keeps order), "
                f"got key = {source.key!r}"
            )
            found.append(_violation("ordering.key-required", source, "ordering", message))
        if source.retry_topics and source.dead_letter_topic is None:
            message = "retry_topics need a dead_letter_topic: where a record goes after the last"
            found.append(_violation("retry.dead-letter", source, "dead_letter_topic", message))
        lane = [*source.retry_topics, *filter(None, [source.dead_letter_topic])]
        for name, delay in source.retry_tiers:
            found.extend(_tier_problems(catalog, source, name, delay, owners))
        if source.ordering == "key":
            for name in lane:
                if name in catalog and catalog.topic(name).partitions != source.partitions:
                    message = (
                        f"ordering = 'key' keeps each partition's keys in the same partition "
                        f"of its retry and dead-letter topics: {name!r} has "
                        f"{catalog.topic(name).partitions} partitions, {source.name!r} has "
                        f"{source.partitions}"
                    )
                    found.append(_violation("ordering.partitions", source, "partitions", message))
    return found


def _tier_problems(
    catalog: Catalog, source: TopicContract, name: str, delay: int, owners: Mapping[str, str]
) -> list[Violation]:
    field = "retry_topics"
    if name in {source.name, source.dead_letter_topic} or owners.get(name) != source.name:
        what = "the topic itself" if name == source.name else "not its own"
        if name == source.dead_letter_topic:
            what = "its dead-letter topic"
        elif owners.get(name) != source.name:
            what = f"a retry topic of {owners.get(name)!r} too"
        message = f"retry topic {name!r} is {what}: each tier belongs to one topic"
        return [_violation("retry.self", source, field, message)]
    if name not in catalog:
        message = f"retry topic {name!r} has no contract in this catalog; declare it"
        return [_violation("retry.missing", source, field, message)]
    found = []
    tier = catalog.topic(name)
    if tier.value_schema or tier.key_schema is not None or tier.is_compacted:
        why = "is compacted"
        if tier.value_schema or tier.key_schema is not None:
            why = "declares a value_schema" if tier.value_schema else "declares a key_schema"
        message = (
            f"retry topic of {source.name!r} {why}: it carries the original records' bytes "
            "until they are due; use no value_schema and cleanup_policy 'delete'"
        )
        found.append(_violation("retry.shape", tier, "value_schema", message))
    missing = [c for c in source.consumers if c not in tier.producers or c not in tier.consumers]
    if missing:
        message = (
            f"retry topic of {source.name!r} must list the source's consumers among its "
            f"producers and consumers (they write failed records and read them back); "
            f"missing: {', '.join(missing)}"
        )
        found.append(_violation("retry.rights", tier, "producers", message))
    if tier.retention_ms is not None and 0 <= tier.retention_ms <= delay:
        message = (
            f"retry topic of {source.name!r} keeps records {tier.retention_ms} ms, not longer "
            f"than its delay of {delay} ms: records would be deleted before they are due"
        )
        found.append(_violation("retry.retention", tier, "retention_ms", message))
    return found


def check_exactly_once(catalog: Catalog) -> list[Violation]:
    """Every producer of an ``exactly_once`` topic declares the transactional ids it
    writes with (``[services.NAME].transactional_ids``), which also grant their ACLs."""
    found = []
    for contract in catalog.topics:
        if not contract.exactly_once:
            continue
        for name in contract.producers:
            service = catalog.service(name)
            if service is not None and service.transactional_ids:
                continue
            where = (
                f"its [services.{name}] table declares no transactional_ids"
                if service is not None
                else f"it has no [services.{name}] table declaring transactional_ids"
            )
            message = (
                f"exactly_once = true, but producer {name!r} is not declared transactional: "
                f"{where}; its producers are refused unless made with a transactional_id"
            )
            found.append(_violation("topic.exactly-once-producer", contract, "producers", message))
    return found


#: Rules run on every contract, in this order.
TOPIC_RULES: tuple[TopicRule, ...] = (
    check_name,
    check_tenant,
    check_owner,
    check_partitions,
    check_replication_factor,
    check_min_insync_replicas,
    check_min_insync_vs_replication,
    check_durability,
    check_cleanup_policy,
    check_compacted_key,
    check_retention,
    check_schema_declared,
    check_producers,
    check_consumers,
    check_schemas,
)

#: Rules run once on the whole catalog.
CATALOG_RULES: tuple[CatalogRule, ...] = (
    check_duplicates,
    check_dead_letters,
    check_retry_topics,
    check_services,
    check_exactly_once,
)


def lint(
    catalog: Catalog,
    *,
    topic_rules: Iterable[TopicRule] | None = None,
    catalog_rules: Iterable[CatalogRule] | None = None,
) -> list[Violation]:
    """Run the rules over ``catalog``; violations come grouped by topic, in file order."""
    per_topic = TOPIC_RULES if topic_rules is None else tuple(topic_rules)
    found: list[Violation] = []
    for contract in catalog.topics:
        for rule in per_topic:
            found.extend(rule(contract, catalog.policy))
    for catalog_rule in CATALOG_RULES if catalog_rules is None else catalog_rules:
        found.extend(catalog_rule(catalog))
    order: dict[str, int] = {}
    for index, contract in enumerate(catalog.topics):
        order.setdefault(contract.name, index)
    return sorted(found, key=lambda v: -1 if v.topic is None else order.get(v.topic, len(order)))
