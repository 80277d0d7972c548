"""Services' rights on the cluster: the ACLs a catalog implies, and its quotas.

``[services.NAME]`` tables bind each service to the principal it authenticates as. From
them and the topic contracts follow the rights every principal needs, and no more:

* a listed **producer** of a topic: WRITE and DESCRIBE on the topic (and, with the
  policy's ``idempotent_write_acls``, IDEMPOTENT_WRITE on the cluster, which brokers
  before Kafka 2.8 demand of idempotent producers);
* a listed **consumer** of a topic: READ and DESCRIBE on the topic, and READ on its
  consumer groups: its ``group_ids``, or what the policy's ``group_id_pattern`` allows
  when that is a name or a prefix;
* both: DESCRIBE_CONFIGS on the topic, which the clients' runtime gate reads;
* a service with ``transactional_ids``: WRITE and DESCRIBE on them.

Dead-letter and retry topics are ordinary contracts, so their producers and consumers
get their rights the same way. Names become LITERAL ACLs, prefixes (``billing-*`` in
``group_ids``, ``^{service}-.*$`` as a ``group_id_pattern``) PREFIXED ones.

:func:`compare` holds the implied ACLs against a cluster's: those missing, and those on
the resources the catalog manages (its topics, its services' groups and transactional
ids) that no contract implies, which includes every right of a principal on a topic it
is not listed for. ``governed-kafka plan`` shows both; ``apply`` creates the missing ones
and deletes the others only with ``--prune``.

Quotas (``producer_byte_rate``, ``consumer_byte_rate``) are checked at load and shown by
``plan`` with the command that sets them (:class:`QuotaAdvice`): librdkafka has no
client-quota API, so ``apply`` cannot.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Final, Literal

import attrs

from .errors import BrokerError
from .policy import SERVICE_PLACEHOLDER, Policy, Severity, Violation

if TYPE_CHECKING:
    from .contracts import Catalog, ServiceContract, TopicContract

__all__ = [
    "CLUSTER_RESOURCE",
    "REDRIVE_GROUP_PREFIX",
    "Acl",
    "AclComparison",
    "AclResult",
    "Operation",
    "PatternType",
    "QuotaAdvice",
    "ResourceType",
    "acl_result",
    "check_services",
    "compare",
    "group_resources",
    "implied_acls",
    "quota_advice",
]

ResourceType = Literal["topic", "group", "transactional_id", "cluster"]
PatternType = Literal["literal", "prefixed"]
Operation = Literal[
    "all",
    "read",
    "write",
    "create",
    "delete",
    "alter",
    "describe",
    "cluster_action",
    "describe_configs",
    "alter_configs",
    "idempotent_write",
    "unknown",
]
Permission = Literal["allow", "deny"]
#: What became of one ACL change: as :data:`governed_kafka.cluster.Outcome`.
AclOutcome = Literal["applied", "failed"]

#: The operations a producer needs on its topics, and a consumer on its topics:
#: DESCRIBE_CONFIGS too, which the clients' runtime gate reads (cleanup policy, min ISR).
_PRODUCE: Final[tuple[Operation, ...]] = ("write", "describe", "describe_configs")
_CONSUME: Final[tuple[Operation, ...]] = ("read", "describe", "describe_configs")
_TRANSACT: Final[tuple[Operation, ...]] = ("write", "describe")
#: What a consumer needs on its topics' retry topics: it writes failed records there
#: and reads them back when due.
_TIER: Final[tuple[Operation, ...]] = ("write", "read", "describe", "describe_configs")

#: The group under which ``governed-kafka dlq redrive`` records its progress through a
#: dead-letter topic is this prefix and the topic's name.
REDRIVE_GROUP_PREFIX: Final = "governed-kafka-redrive."

#: The one resource name of the cluster resource type.
CLUSTER_RESOURCE: Final = "kafka-cluster"


@attrs.frozen(kw_only=True, order=True)
class Acl:
    """One ACL binding: ``principal`` may (or may not) do ``operation`` on a resource."""

    principal: str
    resource_type: ResourceType
    resource_name: str
    pattern_type: PatternType
    operation: Operation
    permission: Permission = "allow"
    host: str = "*"
    #: Why the catalog implies it (empty for ACLs read from a cluster).
    reason: str = attrs.field(default="", eq=False, order=False)

    def covers(self, resource_type: ResourceType, name: str) -> bool:
        """Whether the binding applies to the resource ``name`` of ``resource_type``."""
        if self.resource_type != resource_type:
            return False
        if self.resource_name == "*" and self.pattern_type == "literal":
            return True
        if self.pattern_type == "prefixed":
            return name.startswith(self.resource_name)
        return name == self.resource_name

    def describe(self) -> str:
        """One line: ``User:checkout may WRITE topic 'orders' (literal)``."""
        verb = "may" if self.permission == "allow" else "may not"
        where = "" if self.host == "*" else f" from {self.host}"
        return (
            f"{self.principal} {verb} {self.operation.upper()} {self.resource_type} "
            f"{self.resource_name!r} ({self.pattern_type}){where}"
        )

    def to_dict(self) -> dict[str, object]:
        """The binding as plain data, for JSON."""
        return attrs.asdict(self)

    def to_spec(self) -> tuple[str, str, str, str, str, str, str]:
        """The binding as the admin client's plain tuple (``reason`` left out)."""
        return (
            self.principal,
            self.resource_type,
            self.resource_name,
            self.pattern_type,
            self.operation,
            self.permission,
            self.host,
        )

    @classmethod
    def from_spec(cls, spec: tuple[str, str, str, str, str, str, str]) -> Acl:
        """A binding read from a cluster, from the admin client's plain tuple."""
        principal, resource, name, pattern, operation, permission, host = spec
        return cls(
            principal=principal,
            resource_type=resource,  # type: ignore[arg-type]
            resource_name=name,
            pattern_type=pattern,  # type: ignore[arg-type]
            operation=operation,  # type: ignore[arg-type]
            permission=permission,  # type: ignore[arg-type]
            host=host,
        )


def _literal(text: str) -> str | None:
    """``text`` as the plain string a regular expression of it matches, or ``None`` when
    it holds regular-expression syntax other than escaped characters."""
    out = []
    chars = iter(text)
    for char in chars:
        if char == "\\":
            escaped = next(chars, "")
            if not escaped or escaped.isalnum():
                return None  # \d, \w, \b ... are classes, not characters
            out.append(escaped)
        elif char in ".^$*+?{}[]()|":
            return None
        else:
            out.append(char)
    return "".join(out)


def _pattern_resource(pattern: str, service: str) -> tuple[str, PatternType] | None:
    """The group resource a ``group_id_pattern`` allows for ``service``, when it is a name
    (``^{service}$``) or a prefix (``^{service}-.*$``); ``None`` otherwise."""
    body = pattern.replace(SERVICE_PLACEHOLDER, service.replace("\\", "\\\\"))
    body = body.removeprefix("^").removesuffix("$")
    for tail in (".*", ".+"):
        if body.endswith(tail) and not body.endswith("\\" + tail):
            prefix = _literal(body.removesuffix(tail))
            return (prefix, "prefixed") if prefix else None
    literal = _literal(body)
    return (literal, "literal") if literal else None


def _named(names: Iterable[str]) -> list[tuple[str, PatternType]]:
    return [
        (name.removesuffix("*"), "prefixed") if name.endswith("*") else (name, "literal")
        for name in names
    ]


def group_resources(service: ServiceContract, policy: Policy) -> list[tuple[str, PatternType]]:
    """The consumer groups ``service`` may use, as ACL resources: its ``group_ids``, else
    the policy's ``group_id_pattern`` when that is a name or a prefix; else none."""
    if service.group_ids:
        return _named(service.group_ids)
    if policy.group_id_pattern is None:
        return []
    found = _pattern_resource(policy.group_id_pattern, service.name)
    return [found] if found is not None else []


def implied_acls(catalog: Catalog) -> tuple[Acl, ...]:
    """Every ACL the catalog implies, once each, sorted."""
    found: dict[Acl, Acl] = {}

    def add(*acls: Acl) -> None:
        for acl in acls:
            found.setdefault(acl, acl)

    policy = catalog.policy
    for topic in catalog.topics:
        for name in topic.producers:
            service = catalog.service(name)
            if service is None:
                continue
            why = f"{name} is a listed producer of {topic.name}"
            for operation in _PRODUCE:
                add(_acl(service, "topic", topic.name, "literal", operation, reason=why))
            if policy.idempotent_write_acls:
                add(
                    _acl(
                        service,
                        "cluster",
                        CLUSTER_RESOURCE,
                        "literal",
                        "idempotent_write",
                        reason=why,
                    )
                )
        for name in topic.consumers:
            service = catalog.service(name)
            if service is None:
                continue
            why = f"{name} is a listed consumer of {topic.name}"
            for operation in _CONSUME:
                add(_acl(service, "topic", topic.name, "literal", operation, reason=why))
            for group, pattern in group_resources(service, policy):
                add(_acl(service, "group", group, pattern, "read", reason=f"{name} consumes in it"))
            add(*_tier_acls(service, topic))
    for service in catalog.services:
        for tid, pattern in _named(service.transactional_ids):
            why = f"{service.name} produces in transactions under it"
            for operation in _TRANSACT:
                add(_acl(service, "transactional_id", tid, pattern, operation, reason=why))
    return tuple(sorted(found.values()))


def _tier_acls(service: ServiceContract, topic: TopicContract) -> list[Acl]:
    """What a consumer of ``topic`` needs for its retry topics and, with key order, to
    rebuild its parked keys from the dead-letter topic (read it, and the redrive
    group's progress)."""
    acls = []
    for tier in topic.retry_topics:
        why = f"{service.name} consumes {topic.name}, whose retry topic this is"
        for operation in _TIER:
            acls.append(_acl(service, "topic", tier, "literal", operation, reason=why))
    dlq = topic.dead_letter_topic
    if topic.ordering == "key" and dlq is not None:
        why = f"{service.name} rebuilds the parked keys of {topic.name} (ordering = 'key')"
        for operation in _CONSUME:
            acls.append(_acl(service, "topic", dlq, "literal", operation, reason=why))
        group = REDRIVE_GROUP_PREFIX + dlq
        acls.append(_acl(service, "group", group, "literal", "describe", reason=why))
    return acls


def _acl(
    service: ServiceContract,
    resource_type: ResourceType,
    name: str,
    pattern: PatternType,
    operation: Operation,
    *,
    reason: str,
) -> Acl:
    return Acl(
        principal=service.principal,
        resource_type=resource_type,
        resource_name=name,
        pattern_type=pattern,
        operation=operation,
        reason=reason,
    )


@attrs.frozen(kw_only=True)
class AclComparison:
    """Implied ACLs against a cluster's."""

    #: Implied and absent from the cluster: ``apply`` creates them.
    missing: tuple[Acl, ...]
    #: On a resource the catalog manages, and implied by no contract: ``apply --prune``
    #: deletes them.
    unmanaged: tuple[Acl, ...]
    #: Implied and present.
    in_sync: tuple[Acl, ...]


def _managed(catalog: Catalog) -> list[tuple[ResourceType, str, PatternType]]:
    managed: list[tuple[ResourceType, str, PatternType]] = [
        ("topic", t.name, "literal") for t in catalog.topics
    ]
    for service in catalog.services:
        managed += [("group", g, p) for g, p in group_resources(service, catalog.policy)]
        managed += [("transactional_id", t, p) for t, p in _named(service.transactional_ids)]
    return managed


def _overlaps(acl: Acl, kind: ResourceType, name: str, pattern: PatternType) -> bool:
    """Whether ``acl`` grants or denies anything on the managed resource ``name``."""
    if acl.resource_type != kind:
        return False
    if pattern == "literal":
        return acl.covers(kind, name)
    if acl.pattern_type == "literal" and acl.resource_name == "*":
        return True
    # A managed prefix: names and prefixes inside it, and prefixes that contain it.
    return acl.resource_name.startswith(name) or (
        acl.pattern_type == "prefixed" and name.startswith(acl.resource_name)
    )


def compare(catalog: Catalog, live: Iterable[Acl]) -> AclComparison:
    """What differs between the catalog's ACLs and ``live``, the cluster's."""
    implied = implied_acls(catalog)
    present = set(live)
    managed = _managed(catalog)

    def on_managed(acl: Acl) -> bool:
        return any(_overlaps(acl, kind, name, pattern) for kind, name, pattern in managed)

    wanted = set(implied)
    return AclComparison(
        missing=tuple(a for a in implied if a not in present),
        unmanaged=tuple(sorted(a for a in present if a not in wanted and on_managed(a))),
        in_sync=tuple(a for a in implied if a in present),
    )


def check_services(catalog: Catalog) -> list[Violation]:
    """Lint: services without principals (when required), and groups no ACL can express."""
    found: list[Violation] = []
    policy = catalog.policy
    if policy.require_principals:
        for topic in catalog.topics:
            for role, names in (("producers", topic.producers), ("consumers", topic.consumers)):
                for name in names:
                    if catalog.service(name) is None:
                        found.append(
                            Violation(
                                rule="service.principal-missing",
                                severity="error",
                                topic=topic.name,
                                field=role,
                                message=(
                                    f"{name!r} is listed in {role} but has no "
                                    f"[services.{name}] table with its principal"
                                ),
                            )
                        )
    consumers = {name for t in catalog.topics for name in t.consumers}
    for service in catalog.services:
        if service.name in consumers and not group_resources(service, policy):
            severity: Severity = "error" if policy.require_principals else "warning"
            why = (
                f"the policy's group_id_pattern {policy.group_id_pattern!r} is neither a "
                "name nor a prefix"
                if policy.group_id_pattern
                else "the policy sets no group_id_pattern"
            )
            found.append(
                Violation(
                    rule="service.groups",
                    severity=severity,
                    topic=None,
                    field=f"services.{service.name}.group_ids",
                    message=(
                        f"no consumer-group ACL can be derived for {service.name!r}: {why}; "
                        "declare its group_ids (names, or prefixes ending in '*')"
                    ),
                )
            )
        if service.group_ids and policy.group_id_pattern:
            for group in service.group_ids:
                if not group.endswith("*") and not policy.group_id_matches(
                    group, service=service.name
                ):
                    found.append(
                        Violation(
                            rule="service.group-pattern",
                            severity="error",
                            topic=None,
                            field=f"services.{service.name}.group_ids",
                            message=(
                                f"group {group!r} does not match the policy's "
                                f"group_id_pattern {policy.group_id_pattern!r}"
                            ),
                        )
                    )
    listed = {name for t in catalog.topics for name in (*t.producers, *t.consumers)}
    found.extend(
        Violation(
            rule="service.unused",
            severity="warning",
            topic=None,
            field=f"services.{service.name}",
            message=f"{service.name!r} is neither a producer nor a consumer of any topic",
        )
        for service in catalog.services
        if service.name not in listed and not service.transactional_ids
    )
    return found


@attrs.frozen(kw_only=True)
class AclResult:
    """What ``apply`` did with one ACL: created a missing one, or deleted an unmanaged one."""

    acl: Acl
    action: Literal["create", "delete"]
    outcome: AclOutcome
    message: str

    def to_dict(self) -> dict[str, object]:
        """The result as plain data, for JSON."""
        return {
            "acl": self.acl.to_dict(),
            "action": self.action,
            "outcome": self.outcome,
            "message": self.message,
        }


def _why_failed(error: BrokerError) -> str:
    if error.code == "SECURITY_DISABLED":
        return (
            "the cluster has no authorizer (authorizer.class.name is unset), so it enforces "
            "no ACLs and cannot store them; turn manage_acls off for this environment, or "
            "configure an authorizer"
        )
    return str(error)


def acl_result(
    acl: Acl, action: Literal["create", "delete"], error: BrokerError | None
) -> AclResult:
    """What became of creating or deleting ``acl``: applied, or failed saying why."""
    if error is None:
        verb = "created" if action == "create" else "deleted"
        return AclResult(
            acl=acl, action=action, outcome="applied", message=f"{verb}: {acl.describe()}"
        )
    return AclResult(acl=acl, action=action, outcome="failed", message=_why_failed(error))


@attrs.frozen(kw_only=True)
class QuotaAdvice:
    """A service's quotas from its contract, with the command that applies them.

    librdkafka has no client-quota API, so ``apply`` cannot set them; Kafka's own
    ``kafka-configs.sh`` can.
    """

    service: str
    principal: str
    producer_byte_rate: int | None
    consumer_byte_rate: int | None
    command: str

    def to_dict(self) -> dict[str, object]:
        """The advice as plain data, for JSON."""
        return attrs.asdict(self)


def quota_advice(catalog: Catalog, bootstrap: str) -> tuple[QuotaAdvice, ...]:
    """The quotas the services declare, each with the ``kafka-configs.sh`` call setting it."""
    advice = []
    for service in catalog.services:
        rates = {
            "producer_byte_rate": service.producer_byte_rate,
            "consumer_byte_rate": service.consumer_byte_rate,
        }
        set_rates = ",".join(f"{k}={v}" for k, v in rates.items() if v is not None)
        if not set_rates:
            continue
        kind, _, name = service.principal.partition(":")
        entity = "users" if kind == "User" else "clients"
        command = (
            f"kafka-configs.sh --bootstrap-server {bootstrap} --alter --add-config "
            f"'{set_rates}' --entity-type {entity} --entity-name {name}"
        )
        advice.append(
            QuotaAdvice(
                service=service.name,
                principal=service.principal,
                producer_byte_rate=service.producer_byte_rate,
                consumer_byte_rate=service.consumer_byte_rate,
                command=command,
            )
        )
    return tuple(advice)
