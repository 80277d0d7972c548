"""ACL bindings and the rights a principal holds, with plain values in and out.

:class:`AclAdmin` is the part of :class:`~governed_kafka._kafka.Admin` that reads and
writes ACLs (DescribeAcls, CreateAcls, DeleteAcls) and asks the brokers what this
client's principal may do (KIP-430 authorized operations).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Final

from confluent_kafka import KafkaError, KafkaException, TopicCollection
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._acl import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
)
from confluent_kafka.admin._resource import ResourcePatternType, ResourceType

from ..errors import BrokerError
from ._errors import broker_error, code_of
from ._errors import wait_for as _wait

#: An ACL binding as plain values: ``(principal, resource type, resource name, pattern
#: type, operation, permission, host)``, each in lower case as :mod:`governed_kafka.acls`
#: spells them (``"topic"``, ``"prefixed"``, ``"write"``, ``"allow"``; ``"cluster"`` is
#: Kafka's cluster resource).
AclSpec = tuple[str, str, str, str, str, str, str]

_RESOURCE_TYPES: Final[dict[str, Any]] = {
    "topic": ResourceType.TOPIC,
    "group": ResourceType.GROUP,
    "transactional_id": ResourceType.TRANSACTIONAL_ID,
    "cluster": ResourceType.BROKER,
}
_PATTERN_TYPES: Final[dict[str, Any]] = {
    "literal": ResourcePatternType.LITERAL,
    "prefixed": ResourcePatternType.PREFIXED,
}
_PERMISSIONS: Final[dict[str, Any]] = {
    "allow": AclPermissionType.ALLOW,
    "deny": AclPermissionType.DENY,
}
_RESOURCE_NAMES: Final = {v: k for k, v in _RESOURCE_TYPES.items()}
_PATTERN_NAMES: Final = {v: k for k, v in _PATTERN_TYPES.items()}
_PERMISSION_NAMES: Final = {v: k for k, v in _PERMISSIONS.items()}
_OPERATIONS: Final[dict[str, Any]] = {
    op.name.lower(): op for op in AclOperation if op not in {AclOperation.ANY}
}

#: Error codes of a request the broker refused for lack of rights.
_AUTHORIZATION: Final = frozenset(
    {
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.GROUP_AUTHORIZATION_FAILED,
        KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
    }
)

#: Error names of a request the broker refused for lack of rights.
AUTHORIZATION_ERRORS: Final = frozenset(
    {
        "TOPIC_AUTHORIZATION_FAILED",
        "GROUP_AUTHORIZATION_FAILED",
        "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
        "CLUSTER_AUTHORIZATION_FAILED",
    }
)

#: Error codes of a group coordinator that is moving or loading: ask again.
_COORDINATOR_MOVING: Final = frozenset(
    {
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.NOT_COORDINATOR,
    }
)


def _binding(spec: AclSpec) -> AclBinding:
    principal, resource, name, pattern, operation, permission, host = spec
    return AclBinding(
        _RESOURCE_TYPES[resource],
        name,
        _PATTERN_TYPES[pattern],
        principal,
        host,
        _OPERATIONS[operation],
        _PERMISSIONS[permission],
    )


def _spec(binding: Any) -> AclSpec | None:
    """A binding read from the cluster as plain values, ``None`` for kinds not managed."""
    resource = _RESOURCE_NAMES.get(binding.restype)
    if resource is None:
        return None
    pattern = _PATTERN_NAMES.get(binding.resource_pattern_type)
    permission = _PERMISSION_NAMES.get(binding.permission_type)
    if pattern is None or permission is None:
        return None
    return (
        str(binding.principal),
        resource,
        str(binding.name),
        pattern,
        binding.operation.name.lower(),
        permission,
        str(binding.host),
    )


def _operations(granted: Any) -> frozenset[str] | None:
    if granted is None:
        return None
    return frozenset(op.name.lower() for op in granted)


class AclAdmin:
    """ACL requests on an admin client; every call waits at most ``timeout`` seconds."""

    _client: AdminClient
    timeout: float

    def acls(self) -> list[AclSpec]:
        """Every ACL binding on the cluster (DescribeAcls), as plain values.

        A cluster without an authorizer answers with none.
        """
        anything: Any = None  # a filter's "any name, principal, host"
        everything = AclBindingFilter(
            ResourceType.ANY,
            anything,
            ResourcePatternType.ANY,
            anything,
            anything,
            AclOperation.ANY,
            AclPermissionType.ANY,
        )
        operation = "describe ACLs"
        try:
            bindings = _wait(
                self._client.describe_acls(everything, request_timeout=self.timeout),
                self.timeout + 1,
                operation,
            )
        except KafkaException as exc:
            raise broker_error(exc, operation) from exc
        return [spec for spec in map(_spec, bindings) if spec is not None]

    def topic_operations(self, names: Sequence[str]) -> dict[str, frozenset[str] | None]:
        """What this client's principal may do on each topic (KIP-430), in lower case.

        An empty set when the broker will not even describe the topic to it; ``None``
        when the broker does not say (it predates KIP-430, or has no authorizer and
        grants everything).
        """
        if not names:
            return {}
        operation = "describe topic rights"
        futures = self._client.describe_topics(
            TopicCollection(list(names)),
            include_authorized_operations=True,
            request_timeout=self.timeout,
        )
        found: dict[str, frozenset[str] | None] = {}
        for name, future in futures.items():
            try:
                description = _wait(future, self.timeout + 1, operation)
            except KafkaException as exc:
                code = code_of(exc)
                if code in _AUTHORIZATION:
                    found[name] = frozenset()
                    continue
                if code == KafkaError.UNKNOWN_TOPIC_OR_PART:
                    found[name] = None  # missing, and the principal may know it: the gate says
                    continue
                raise broker_error(exc, operation) from exc
            found[name] = _operations(description.authorized_operations)
        return found

    def group_operations(self, group: str) -> frozenset[str] | None:
        """What this client's principal may do on consumer group ``group`` (KIP-430).

        An empty set when the broker refuses to describe the group to it; ``None`` when
        the broker does not say. A group coordinator still loading is asked again until
        ``timeout``.
        """
        operation = f"describe rights on group {group!r}"
        deadline = time.monotonic() + self.timeout
        while True:
            future = self._client.describe_consumer_groups(
                [group], include_authorized_operations=True, request_timeout=self.timeout
            )[group]
            try:
                description = _wait(future, self.timeout + 1, operation)
            except KafkaException as exc:
                code = code_of(exc)
                if code in _AUTHORIZATION:
                    return frozenset()
                if code in _COORDINATOR_MOVING and time.monotonic() < deadline:
                    time.sleep(0.2)
                    continue
                raise broker_error(exc, operation) from exc
            return _operations(description.authorized_operations)

    def create_acls(self, specs: Sequence[AclSpec]) -> dict[AclSpec, BrokerError | None]:
        """Create each binding; per binding, ``None`` when created or the error that refused it."""
        if not specs:
            return {}
        futures = self._client.create_acls(
            [_binding(spec) for spec in specs], request_timeout=self.timeout
        )
        return self._outcomes(specs, futures.values(), "create")

    def delete_acls(self, specs: Sequence[AclSpec]) -> dict[AclSpec, BrokerError | None]:
        """Delete each binding exactly (a filter matching it alone); errors per binding."""
        if not specs:
            return {}
        filters = [
            AclBindingFilter(
                b.restype,
                b.name,
                b.resource_pattern_type,
                b.principal,
                b.host,
                b.operation,
                b.permission_type,
            )
            for b in map(_binding, specs)
        ]
        futures = self._client.delete_acls(filters, request_timeout=self.timeout)
        return self._outcomes(specs, futures.values(), "delete")

    def _outcomes(
        self, specs: Sequence[AclSpec], futures: Any, verb: str
    ) -> dict[AclSpec, BrokerError | None]:
        outcome: dict[AclSpec, BrokerError | None] = {}
        for spec, future in zip(specs, futures, strict=True):
            operation = f"{verb} ACL {spec}"
            try:
                _wait(future, self.timeout + 1, operation)
            except KafkaException as exc:
                outcome[spec] = broker_error(exc, operation)
            except BrokerError as exc:
                outcome[spec] = exc
            else:
                outcome[spec] = None
        return outcome
