"""Contracts against a live cluster: ``plan``, ``apply``, and the runtime gate.

:class:`Cluster` looks at a cluster through the admin client (Metadata and
DescribeConfigs) and compares every topic with its contract:

* :meth:`Cluster.plan` lists what differs, as :class:`TopicChange` objects: topics to
  create, partition counts, replication factors and topic configs that drifted. Topics
  on the cluster that no contract owns are reported, never touched (internal topics,
  whose names start with ``__``, are ignored).
* :meth:`Cluster.apply` makes the safe changes (creates missing topics with their
  governed configs, sets drifted configs with IncrementalAlterConfigs, adds partitions)
  and refuses the unsafe ones with the reason: a partition decrease, a replication-factor
  change, a cleanup-policy change on a live topic. A broker that lacks the request a
  change needs is named as such.
* With a schema registry (``plan(catalog, registry=...)``), both also hold the
  contracts' schema subjects against it: versions to register, compatibility levels to
  set, registered versions no contract lists (reported, never deleted); see
  :mod:`governed_kafka._schema_plan`.
* :meth:`Cluster.verify` is the runtime gate of :class:`~governed_kafka.GovernedProducer`
  and :class:`~governed_kafka.GovernedConsumer`: it raises
  :class:`~governed_kafka.errors.GovernanceViolation` when a topic a client will use is
  missing or does not match its contract.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Final, Literal

import attrs

from . import _config, _kafka, _partitioner, _topic_diff
from ._config import Overrides, Setting
from ._schema_plan import (
    Outcome,
    SchemaChange,
    SchemaPlan,
    SchemaResult,
    UnlistedVersion,
    apply_schemas,
    plan_schemas,
)
from ._topic_diff import KAFKA_TOPIC_DEFAULTS, ChangeKind, TopicChange, TopicState
from .acls import Acl, AclComparison, AclResult, QuotaAdvice, acl_result, compare, quota_advice
from .contracts import Catalog
from .errors import AccessDenied, BrokerError, GovernanceViolation
from .policy import Violation

if TYPE_CHECKING:
    from .registry import ManagedSchemaRegistry

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "INTERNAL_PREFIX",
    "KAFKA_TOPIC_DEFAULTS",
    "RECENT_RECORDS_PER_PARTITION",
    "ApplyResult",
    "ChangeKind",
    "ChangeResult",
    "Cluster",
    "Outcome",
    "Plan",
    "PlanStatus",
    "SchemaChange",
    "SchemaPlan",
    "SchemaResult",
    "TopicChange",
    "TopicState",
    "UnlistedVersion",
]

#: Longest wait for any one admin request (seconds), so an unreachable cluster is
#: reported instead of waited on.
DEFAULT_TIMEOUT_S: Final = 10.0

#: Records per partition whose keys ``plan`` reads to say how many keys a partition
#: increase moves: the recent traffic, bounded so that a plan stays quick.
RECENT_RECORDS_PER_PARTITION: Final = 1000

#: Topics whose names start with this belong to the cluster itself (offsets,
#: transactions ...): never reported as unmanaged.
INTERNAL_PREFIX: Final = "__"

PlanStatus = Literal["in-sync", "pending", "refused"]


@attrs.frozen(kw_only=True)
class Plan:
    """What ``apply`` would do to make the cluster match the contracts."""

    environment: str | None
    changes: tuple[TopicChange, ...]
    #: Contract topics that exist and match.
    in_sync: tuple[str, ...]
    #: Topics on the cluster that no contract owns (reported, never touched).
    unmanaged: tuple[str, ...]
    #: Lint errors of the contracts themselves; ``apply`` changes nothing while there are any.
    violations: tuple[Violation, ...] = ()
    #: The ACLs the ``[services]`` imply against the cluster's; ``None`` when the catalog
    #: declares no services or the policy turns ``manage_acls`` off.
    acls: AclComparison | None = None
    #: Quotas the contracts set, which ``apply`` cannot set (see :class:`QuotaAdvice`).
    quotas: tuple[QuotaAdvice, ...] = ()
    #: The subjects held against a schema registry; ``None`` when none was given.
    schemas: SchemaPlan | None = None

    @property
    def status(self) -> PlanStatus:
        """``refused`` (lint errors or unsafe changes), ``pending`` (changes, missing or
        unmanaged ACLs, schema versions to register or levels to set) or ``in-sync``."""
        schema_changes = self.schemas.changes if self.schemas is not None else ()
        if (
            self.violations
            or any(not c.safe for c in self.changes)
            or any(not c.safe for c in schema_changes)
        ):
            return "refused"
        acl_changes = self.acls is not None and bool(self.acls.missing or self.acls.unmanaged)
        return "pending" if self.changes or acl_changes or schema_changes else "in-sync"

    @property
    def exit_code(self) -> int:
        """The ``plan`` command's exit code: 0 in sync, 2 changes pending, 1 refused."""
        return {"in-sync": 0, "pending": 2, "refused": 1}[self.status]

    def to_dict(self) -> dict[str, object]:
        """The plan as plain data, for JSON."""
        return {
            "environment": self.environment,
            "status": self.status,
            "changes": [c.to_dict() for c in self.changes],
            "in_sync": list(self.in_sync),
            "unmanaged": list(self.unmanaged),
            "violations": [attrs.asdict(v) for v in self.violations],
            "acls": None
            if self.acls is None
            else {
                "missing": [{"rule": "acl.missing", **a.to_dict()} for a in self.acls.missing],
                "unmanaged": [
                    {"rule": "acl.unmanaged", **a.to_dict()} for a in self.acls.unmanaged
                ],
                "in_sync": len(self.acls.in_sync),
            },
            "quotas": [q.to_dict() for q in self.quotas],
            "schemas": None if self.schemas is None else self.schemas.to_dict(),
        }


@attrs.frozen(kw_only=True)
class ChangeResult:
    """What ``apply`` did with one change."""

    change: TopicChange
    #: ``applied``; ``refused`` (unsafe); ``failed`` (the broker refused or lacks the
    #: request); ``skipped`` (the contracts fail lint, so nothing was changed).
    outcome: Outcome
    message: str

    def to_dict(self) -> dict[str, object]:
        """The result as plain data, for JSON."""
        return {"change": self.change.to_dict(), "outcome": self.outcome, "message": self.message}


@attrs.frozen(kw_only=True)
class ApplyResult:
    """Every change of a plan and what became of it."""

    plan: Plan
    results: tuple[ChangeResult, ...]
    #: The ACLs created, and (with ``prune``) deleted.
    acl_results: tuple[AclResult, ...] = ()
    #: The schema versions registered and compatibility levels set.
    schema_results: tuple[SchemaResult, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether every change was applied and the contracts are clean."""
        return (
            not self.plan.violations
            and all(r.outcome == "applied" for r in self.results)
            and all(r.outcome == "applied" for r in self.acl_results)
            and all(r.outcome == "applied" for r in self.schema_results)
        )

    @property
    def exit_code(self) -> int:
        """The ``apply`` command's exit code: 0 ok, 1 anything refused or failed."""
        return 0 if self.ok else 1

    def to_dict(self) -> dict[str, object]:
        """The result as plain data, for JSON."""
        return {
            "ok": self.ok,
            "results": [r.to_dict() for r in self.results],
            "acl_results": [r.to_dict() for r in self.acl_results],
            "schema_results": [r.to_dict() for r in self.schema_results],
            "unmanaged": list(self.plan.unmanaged),
            "violations": [attrs.asdict(v) for v in self.plan.violations],
        }


def _why_unsupported(error: BrokerError, request: str, kip: str, what: str) -> str:
    if error.code == _kafka.UNSUPPORTED:
        return (
            f"the broker does not support {request} ({kip}), so {what} cannot be done "
            "through the admin API; do it with the cluster's own tooling"
        )
    return str(error)


# --------------------------------------------------------------------------- the cluster


class Cluster:
    """A live cluster seen through the admin client.

    :param bootstrap_servers: ``"host:port,host:port"`` or a list of them.
    :param overrides: librdkafka settings for the admin client (TLS, SASL, ...); only
        global properties are accepted.
    :param timeout: longest wait for any one admin request, in seconds.
    """

    def __init__(
        self,
        bootstrap_servers: str | list[str] | tuple[str, ...],
        *,
        overrides: Overrides | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        client_id: str = "governed-kafka-admin",
    ) -> None:
        config = _config.admin_config(
            bootstrap_servers=bootstrap_servers, client_id=client_id, overrides=overrides
        )
        self._init(config, timeout)

    def _init(self, config: Mapping[str, Setting], timeout: float) -> None:
        if timeout <= 0:
            msg = f"timeout must be > 0 seconds, got {timeout!r}"
            raise ValueError(msg)
        self.bootstrap_servers = str(config["bootstrap.servers"])
        self.timeout = timeout
        self._connection = dict(config)
        self._admin = _kafka.Admin(config, timeout=timeout)

    @classmethod
    def _from_client_config(cls, config: Mapping[str, Setting], timeout: float) -> Cluster:
        """A cluster seen with the connection settings of a producer or consumer."""
        cluster = cls.__new__(cls)
        cluster._init(_config.shared_connection(config), timeout)
        return cluster

    # ------------------------------------------------------------------ looking

    def _topics(self) -> dict[str, tuple[int, int]]:
        try:
            return self._admin.topics()
        except BrokerError as exc:
            if exc.code not in _kafka.UNREACHABLE:
                raise
            msg = (
                f"cannot reach the cluster at {self.bootstrap_servers} within "
                f"{self.timeout:g} s ({exc.code}): check the bootstrap servers and that the "
                "brokers are up"
            )
            raise BrokerError(msg, operation="connect", code=exc.code, retriable=True) from exc

    def topic_names(self) -> list[str]:
        """Names of every topic on the cluster, internal ones included, sorted."""
        return sorted(self._topics())

    def describe(self, names: Iterable[str]) -> dict[str, TopicState]:
        """The live state of each named topic that exists; absent topics are left out."""
        return self._describe(names, self._topics())

    def _describe(
        self, names: Iterable[str], listed: Mapping[str, tuple[int, int]]
    ) -> dict[str, TopicState]:
        present = [n for n in dict.fromkeys(names) if n in listed]
        configs = self._admin.topic_configs(present)
        return {
            name: TopicState(
                name=name,
                partitions=listed[name][0],
                replication_factor=listed[name][1],
                configs=tuple(sorted(configs.get(name, {}).items())),
            )
            for name in present
        }

    # ------------------------------------------------------------------ plan and apply

    def plan(self, catalog: Catalog, *, registry: ManagedSchemaRegistry | None = None) -> Plan:
        """Compare every contract with the cluster (and ``registry``); change nothing."""
        contracts = _topic_diff.unique(catalog)
        listed = self._topics()
        live = self._describe((c.name for c in contracts), listed)
        changes: list[TopicChange] = []
        in_sync: list[str] = []
        for contract in contracts:
            state = live.get(contract.name)
            if state is None:
                changes.append(_topic_diff.create_change(contract))
                continue
            found = [
                self._with_impact(change) for change in _topic_diff.differences(contract, state)
            ]
            if found:
                changes.extend(found)
            else:
                in_sync.append(contract.name)
        owned = {c.name for c in contracts}
        unmanaged = sorted(
            n for n in listed if n not in owned and not n.startswith(INTERNAL_PREFIX)
        )
        violations = tuple(v for v in catalog.lint() if v.severity == "error")
        return Plan(
            environment=catalog.environment,
            changes=tuple(changes),
            in_sync=tuple(in_sync),
            unmanaged=tuple(unmanaged),
            violations=violations,
            acls=self._compare_acls(catalog),
            quotas=quota_advice(catalog, self.bootstrap_servers),
            schemas=None if registry is None else plan_schemas(catalog, registry),
        )

    def _compare_acls(self, catalog: Catalog) -> AclComparison | None:
        if not catalog.services or not catalog.policy.manage_acls:
            return None
        return compare(catalog, [Acl.from_spec(spec) for spec in self._admin.acls()])

    def _with_impact(self, change: TopicChange) -> TopicChange:
        """A partition increase, with how many recently seen keys it would move."""
        if change.kind != "partitions" or not change.safe:
            return change
        before, after = int(str(change.live)), int(str(change.wanted))
        keys = _kafka.recent_keys(
            self._connection,
            change.topic,
            before,
            per_partition=RECENT_RECORDS_PER_PARTITION,
            timeout=self.timeout,
        )
        moving, seen = _partitioner.keys_moved(keys, before, after)
        return attrs.evolve(change, keys_seen=seen, keys_moving=moving)

    def apply(
        self,
        catalog: Catalog,
        *,
        prune: bool = False,
        registry: ManagedSchemaRegistry | None = None,
    ) -> ApplyResult:
        """Make the safe changes of :meth:`plan`; refuse the unsafe ones, saying why.

        Missing ACLs are created; unmanaged ones (on resources the catalog manages, implied
        by no contract) are deleted only with ``prune``, after the missing ones exist.
        With ``registry``, each subject's compatibility is set and its missing versions
        are registered oldest first, after the topics exist; registered versions no
        contract lists are left alone. Nothing is changed while the contracts fail lint.
        Each change is independent: one that fails or is refused does not stop the
        others (but a subject whose level could not be set gets no versions).
        """
        plan = self.plan(catalog, registry=registry)
        if plan.violations:
            why = (
                f"not applied: the contracts break {len(plan.violations)} lint rule(s); "
                "fix them first (governed-kafka lint)"
            )
            skipped = tuple(
                ChangeResult(change=c, outcome="skipped", message=why) for c in plan.changes
            )
            schema_skipped = tuple(
                SchemaResult(change=c, outcome="skipped", message=why)
                for c in (plan.schemas.changes if plan.schemas is not None else ())
            )
            return ApplyResult(plan=plan, results=skipped, schema_results=schema_skipped)
        results: dict[int, ChangeResult] = {}
        for index, change in enumerate(plan.changes):
            if not change.safe:
                results[index] = ChangeResult(
                    change=change, outcome="refused", message=str(change.refused)
                )
        self._create_missing(catalog, plan, results)
        self._set_configs(plan, results)
        self._add_partitions(plan, results)
        return ApplyResult(
            plan=plan,
            results=tuple(results[i] for i in range(len(plan.changes))),
            acl_results=self._apply_acls(plan, prune=prune),
            schema_results=(
                apply_schemas(plan.schemas, registry)
                if plan.schemas is not None and registry is not None
                else ()
            ),
        )

    def _apply_acls(self, plan: Plan, *, prune: bool) -> tuple[AclResult, ...]:
        if plan.acls is None:
            return ()
        done: list[AclResult] = []
        created = self._admin.create_acls([a.to_spec() for a in plan.acls.missing])
        for acl in plan.acls.missing:
            done.append(acl_result(acl, "create", created.get(acl.to_spec())))
        self._wait_for_acls([spec for spec, error in created.items() if error is None])
        if prune:
            deleted = self._admin.delete_acls([a.to_spec() for a in plan.acls.unmanaged])
            for acl in plan.acls.unmanaged:
                done.append(acl_result(acl, "delete", deleted.get(acl.to_spec())))
        return tuple(done)

    def _wait_for_acls(self, created: list[_kafka.AclSpec]) -> None:
        """Return once the brokers' authorizers hold the ACLs just created (bounded by the
        timeout): like new topics, new ACLs reach the brokers a moment after CreateAcls
        returns, and a client started right after ``apply`` would be refused."""
        deadline = time.monotonic() + self.timeout
        pending = set(created)
        while pending and time.monotonic() < deadline:
            pending -= set(self._admin.acls())
            if pending:
                time.sleep(0.1)

    def _create_missing(
        self, catalog: Catalog, plan: Plan, results: dict[int, ChangeResult]
    ) -> None:
        creates = {i: c for i, c in enumerate(plan.changes) if c.kind == "create"}
        specs = []
        for change in creates.values():
            contract = catalog.topic(change.topic)
            specs.append(
                (
                    contract.name,
                    contract.partitions,
                    contract.replication_factor,
                    dict(change.configs),
                )
            )
        outcome = self._admin.create_topics(specs)
        created = [name for name, error in outcome.items() if error is None]
        not_visible = set(self._admin.wait_visible(created))
        for index, change in creates.items():
            error = outcome.get(change.topic)
            if error is None:
                message = f"created with {change.wanted}"
                if change.topic in not_visible:
                    message += (
                        f"; not yet in every broker's metadata after {self.timeout:g} s "
                        "(clients started right away may not find it)"
                    )
                results[index] = ChangeResult(change=change, outcome="applied", message=message)
            else:
                results[index] = ChangeResult(change=change, outcome="failed", message=str(error))

    def _set_configs(self, plan: Plan, results: dict[int, ChangeResult]) -> None:
        by_topic: dict[str, dict[int, TopicChange]] = {}
        for index, change in enumerate(plan.changes):
            if change.kind == "config" and change.safe:
                by_topic.setdefault(change.topic, {})[index] = change
        for topic, changes in by_topic.items():
            wanted = {str(c.field): str(c.wanted) for c in changes.values()}
            try:
                self._admin.set_topic_configs(topic, wanted)
            except BrokerError as exc:
                shown = ", ".join(f"{k}={v}" for k, v in wanted.items())
                why = _why_unsupported(
                    exc, "IncrementalAlterConfigs", "KIP-339, Kafka 2.3+", f"setting {shown}"
                )
                for index, change in changes.items():
                    results[index] = ChangeResult(change=change, outcome="failed", message=why)
            else:
                for index, change in changes.items():
                    results[index] = ChangeResult(
                        change=change,
                        outcome="applied",
                        message=(
                            f"set {change.field}={change.wanted} (was {change.live or 'not set'})"
                        ),
                    )

    def _add_partitions(self, plan: Plan, results: dict[int, ChangeResult]) -> None:
        for index, change in enumerate(plan.changes):
            if change.kind != "partitions" or not change.safe:
                continue
            total = int(str(change.wanted))
            try:
                self._admin.add_partitions(change.topic, total)
            except BrokerError as exc:
                why = _why_unsupported(
                    exc,
                    "CreatePartitions",
                    "KIP-195, Kafka 1.0+",
                    f"growing {change.topic!r} from {change.live} to {total} partitions",
                )
                results[index] = ChangeResult(change=change, outcome="failed", message=why)
            else:
                results[index] = ChangeResult(
                    change=change,
                    outcome="applied",
                    message=f"partitions {change.live} -> {total}",
                )

    # ------------------------------------------------------------------ the runtime gate

    def verify_access(
        self,
        catalog: Catalog,
        *,
        service: str,
        writes: Iterable[str] = (),
        reads: Iterable[str] = (),
        group: str | None = None,
    ) -> None:
        """Refuse, before any traffic, a client whose principal lacks a right it needs.

        Asks the cluster what the client's own principal may do (KIP-430's authorized
        operations): WRITE on each topic of ``writes``, READ on each of ``reads`` and on
        ``group``. Raises :class:`AccessDenied` (rule ``acl.missing``) naming the first
        missing right, the resource and the service's principal, and listing every
        other one. A cluster that does not say what it grants is not refused.
        """
        writes, reads = list(dict.fromkeys(writes)), list(dict.fromkeys(reads))
        declared = catalog.service(service)
        principal = declared.principal if declared is not None else None
        who = principal or f"the principal of service {service!r}"
        granted = self._admin.topic_operations(list(dict.fromkeys([*writes, *reads])))
        missing: list[tuple[str, str, str]] = []
        for operation, names in (("write", writes), ("read", reads)):
            for name in names:
                rights = granted.get(name)
                if rights is not None and not rights & {operation, "all"}:
                    missing.append(("topic", name, operation))
        if group is not None:
            rights = self._admin.group_operations(group)
            if rights is not None and not rights & {"read", "all"}:
                missing.append(("group", group, "read"))
        if not missing:
            return
        lines = [
            f"{who} may not {operation.upper()} {kind} {name!r}"
            for kind, name, operation in missing
        ]
        fix = f" (grant it: governed-kafka apply {catalog.path})" if declared is not None else ""
        message = (
            lines[0] + fix
            if len(lines) == 1
            else f"{len(lines)} rights missing{fix}:\n  " + "\n  ".join(lines)
        )
        kind, name, operation = missing[0]
        raise AccessDenied(
            message, principal=principal, resource_type=kind, resource=name, operation=operation
        )

    def verify(self, catalog: Catalog, topics: Iterable[str]) -> None:
        """Refuse, before any traffic, topics that are missing or differ from their contracts.

        Checks that each topic exists, that its partition count, cleanup policy and
        (when the contract sets it) ``min.insync.replicas`` match, and that it has at
        least the contract's replication factor (more copies are drift for ``plan``,
        not a reason to refuse a client). Raises
        :class:`GovernanceViolation` (rule ``topic.missing`` or ``topic.drift``) naming
        every problem found.
        """
        contracts = [catalog.topic(name) for name in dict.fromkeys(topics)]
        if not contracts:
            return
        live = self.describe(c.name for c in contracts)
        problems: list[tuple[str, str, str | None, object, str]] = []
        for contract in contracts:
            state = live.get(contract.name)
            if state is None:
                problems.append(
                    (
                        "topic.missing",
                        contract.name,
                        None,
                        None,
                        f"topic {contract.name!r} does not exist on the cluster "
                        f"(create it: governed-kafka apply {catalog.path})",
                    )
                )
                continue
            problems.extend(_topic_diff.gate_drift(contract, state))
        if not problems:
            return
        rule, topic, field, value, _ = problems[0]
        lines = [p[4] for p in problems]
        message = (
            lines[0]
            if len(lines) == 1
            else f"{len(lines)} live topics do not match their contracts:\n  " + "\n  ".join(lines)
        )
        raise GovernanceViolation(message, rule=rule, topic=topic, field=field, value=value)
