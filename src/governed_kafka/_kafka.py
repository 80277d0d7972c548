"""The only module that imports ``confluent_kafka``.

It creates the librdkafka clients from governed configuration dicts and translates
``KafkaError``/``KafkaException`` into governed_kafka errors, always with
``raise ... from exc``. No confluent type leaves the package's private modules.
"""

from __future__ import annotations

import concurrent.futures
import importlib.metadata
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, cast

import confluent_kafka
from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._acl import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
)
from confluent_kafka.admin._config import AlterConfigOpType, ConfigEntry, ConfigResource
from confluent_kafka.admin._resource import ResourcePatternType, ResourceType
from confluent_kafka.cimpl import NewPartitions, NewTopic

from ._config import REDACTED, is_secret, scrub
from .errors import BrokerError, ConfigError, DeliveryError

__all__ = [
    "Admin",
    "AdminClient",
    "ConfigResource",
    "Consumer",
    "KafkaError",
    "KafkaException",
    "Message",
    "NewTopic",
    "Producer",
    "TopicPartition",
    "broker_error",
    "client_versions",
    "delivery_error",
    "new_admin",
    "new_consumer",
    "new_producer",
]

#: librdkafka's own log lines go here, at their syslog level mapped to logging levels.
LIBRDKAFKA_LOGGER = logging.getLogger("governed_kafka.librdkafka")

_log = logging.getLogger("governed_kafka")

_CONFIG_KEY = re.compile(r'configuration property "([^"]+)"')

#: Error codes meaning "this message will never be delivered by retrying it as is".
_PURGED = {KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT}


def client_versions() -> dict[str, str]:
    """Versions of the client libraries underneath, for logs and benchmark reports."""
    return {
        "confluent-kafka": importlib.metadata.version("confluent-kafka"),
        "librdkafka": confluent_kafka.libversion()[0],
    }


def _construct(factory: Callable[[dict[str, Any]], Any], config: Mapping[str, object]) -> Any:
    """Create a client; librdkafka's refusal becomes a ConfigError without any secret in it."""
    try:
        return factory(dict(config))
    except KafkaException as exc:
        err = exc.args[0] if exc.args else None
        text = scrub(err.str() if isinstance(err, KafkaError) else str(exc), config)
        match = _CONFIG_KEY.search(text)
        key = match.group(1) if match else "?"
        msg = f"configuration refused by librdkafka: {text}"
        value = REDACTED if is_secret(key) else config.get(key)
        raise ConfigError(msg, key=key, value=value) from None
    except (TypeError, ValueError) as exc:
        msg = f"configuration refused by librdkafka: {scrub(str(exc), config)}"
        raise ConfigError(msg, key="?") from None


def _error_callback(
    role: str, on_fatal: Callable[[KafkaError], None] | None
) -> Callable[[KafkaError], None]:
    def error_cb(err: KafkaError) -> None:
        if err.fatal():
            _log.error("%s fatal error: %s", role, err.str())
            if on_fatal is not None:
                on_fatal(err)
        elif err.code() in {KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT}:
            _log.warning("%s: %s", role, err.str())
        else:
            _log.info("%s: %s", role, err.str())

    return error_cb


def _observability(
    full: dict[str, object],
    on_throttle: Callable[[str, int, float], None] | None,
    on_stats: Callable[[dict[str, Any]], None] | None,
) -> None:
    if on_throttle is not None:

        def throttle_cb(event: Any) -> None:
            on_throttle(event.broker_name, event.broker_id, event.throttle_time)

        full["throttle_cb"] = throttle_cb
    if on_stats is not None:

        def stats_cb(text: str) -> None:
            try:
                stats = json.loads(text)
            except ValueError:
                _log.warning("librdkafka statistics were not JSON; skipped")
                return
            on_stats(stats)

        full["stats_cb"] = stats_cb


def new_producer(
    config: Mapping[str, object],
    *,
    on_fatal: Callable[[KafkaError], None] | None = None,
    on_throttle: Callable[[str, int, float], None] | None = None,
    on_stats: Callable[[dict[str, Any]], None] | None = None,
) -> Producer:
    """Create a librdkafka producer; a refused configuration raises :class:`ConfigError`."""
    full: dict[str, object] = {
        **config,
        "logger": LIBRDKAFKA_LOGGER,
        "error_cb": _error_callback("producer", on_fatal),
    }
    _observability(full, on_throttle, on_stats)
    producer: Producer = _construct(Producer, full)
    return producer


def new_consumer(
    config: Mapping[str, object],
    *,
    on_fatal: Callable[[KafkaError], None] | None = None,
    on_commit: Callable[[KafkaError | None, list[TopicPartition]], None] | None = None,
    on_throttle: Callable[[str, int, float], None] | None = None,
    on_stats: Callable[[dict[str, Any]], None] | None = None,
) -> Consumer:
    """Create a librdkafka consumer; a refused configuration raises :class:`ConfigError`."""
    full: dict[str, object] = {
        **config,
        "logger": LIBRDKAFKA_LOGGER,
        "error_cb": _error_callback("consumer", on_fatal),
    }
    if on_commit is not None:
        full["on_commit"] = on_commit
    _observability(full, on_throttle, on_stats)
    consumer: Consumer = _construct(Consumer, full)
    return consumer


def new_admin(config: Mapping[str, object]) -> AdminClient:
    """Create an admin client; a refused configuration raises :class:`ConfigError`."""
    full = {**config, "logger": LIBRDKAFKA_LOGGER}
    admin: AdminClient = _construct(AdminClient, full)
    return admin


def delivery_error(err: KafkaError, msg: Message | None) -> DeliveryError:
    """Translate a failed delivery report into a :class:`DeliveryError`."""
    topic = msg.topic() if msg is not None else None
    partition = msg.partition() if msg is not None else None
    if partition is not None and partition < 0:
        partition = None
    raw_key: object = msg.key() if msg is not None else None
    key = raw_key.encode() if isinstance(raw_key, str) else cast("bytes | None", raw_key)
    code = err.name()
    if err.code() in _PURGED:
        reason = "not delivered before the producer closed (purged from its queue)"
    else:
        reason = err.str()
    where = topic if partition is None else f"{topic}[{partition}]"
    message = f"record for {where} not delivered: {code}: {reason}"
    return DeliveryError(
        message,
        topic=topic,
        partition=partition,
        key=key,
        code=code,
        retriable=err.retriable(),
        fatal=err.fatal(),
    )


def broker_error(exc: BaseException | KafkaError, operation: str) -> BrokerError:
    """Translate a ``KafkaException`` (or a bare ``KafkaError``) raised by ``operation``."""
    err = exc.args[0] if isinstance(exc, KafkaException) and exc.args else exc
    if isinstance(err, KafkaError):
        message = f"{operation} failed: {err.name()}: {err.str()}"
        return BrokerError(
            message,
            operation=operation,
            code=err.name(),
            retriable=err.retriable(),
            fatal=err.fatal(),
        )
    return BrokerError(f"{operation} failed: {exc}", operation=operation)


# ------------------------------------------------------------------ group offsets


def group_committed(
    admin: AdminClient, group_id: str, *, timeout: float
) -> dict[tuple[str, int], int]:
    """Offsets the group committed, by ``(topic, partition)`` (OffsetFetch)."""
    from confluent_kafka import ConsumerGroupTopicPartitions

    request = [ConsumerGroupTopicPartitions(group_id)]
    try:
        futures = admin.list_consumer_group_offsets(request, request_timeout=timeout)
        result = futures[group_id].result(timeout)
    except KafkaException as exc:
        raise broker_error(exc, f"fetch committed offsets of group {group_id!r}") from exc
    except TimeoutError as exc:
        raise unreachable(f"fetch committed offsets of group {group_id!r}", timeout) from exc
    return {
        (tp.topic, tp.partition): tp.offset
        for tp in result.topic_partitions or []
        if tp.offset is not None and tp.offset >= 0
    }


def latest_offsets(
    admin: AdminClient, partitions: list[tuple[str, int]], *, timeout: float
) -> dict[tuple[str, int], int]:
    """The log end offset of each partition (ListOffsets, latest)."""
    from confluent_kafka.admin._listoffsets import OffsetSpec

    if not partitions:
        return {}
    latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
    request = {TopicPartition(t, p): latest for t, p in partitions}
    try:
        futures = admin.list_offsets(request, request_timeout=timeout)
        return {(tp.topic, tp.partition): f.result(timeout).offset for tp, f in futures.items()}
    except KafkaException as exc:
        raise broker_error(exc, "list latest offsets") from exc
    except TimeoutError as exc:
        raise unreachable("list latest offsets", timeout) from exc


def recent_keys(
    config: Mapping[str, object],
    topic: str,
    partitions: int,
    *,
    per_partition: int,
    timeout: float,
) -> list[bytes]:
    """Keys of the last ``per_partition`` records of each partition of ``topic``.

    Keyless records are left out. Reads with a consumer of its own that joins no group
    and commits nothing; stops at each partition's end or after ``timeout`` seconds.
    """
    reader = new_consumer(
        {
            **config,
            "group.id": f"governed-kafka-plan-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    operation = f"read recent keys of topic {topic!r}"
    deadline = time.monotonic() + timeout
    keys: list[bytes] = []
    try:
        starts = []
        for partition in range(partitions):
            tp = TopicPartition(topic, partition)
            low, high = reader.get_watermark_offsets(tp, timeout=timeout)
            if high > low:
                starts.append(TopicPartition(topic, partition, max(low, high - per_partition)))
        reader.assign(starts)
        pending = {tp.partition for tp in starts}
        while pending and time.monotonic() < deadline:
            for message in reader.consume(1000, 0.2):
                error = message.error()
                if error is None:
                    key = message.key()
                    if key is not None:
                        keys.append(key if isinstance(key, bytes) else str(key).encode())
                elif error.code() == KafkaError._PARTITION_EOF:
                    pending.discard(message.partition())
                else:
                    raise broker_error(error, operation)
    except KafkaException as exc:
        raise broker_error(exc, operation) from exc
    finally:
        reader.close()
    return keys


def unreachable(operation: str, timeout: float) -> BrokerError:
    """The cluster did not answer ``operation`` within ``timeout`` seconds."""
    message = (
        f"{operation} failed: no answer from the cluster within {timeout:g} s "
        "(are the bootstrap servers right and reachable?)"
    )
    return BrokerError(message, operation=operation, code="_TIMED_OUT", retriable=True)


#: Error names meaning the cluster could not be reached at all.
UNREACHABLE = frozenset({"_TRANSPORT", "_TIMED_OUT", "_ALL_BROKERS_DOWN", "_RESOLVE"})

#: Error name of a request the broker does not implement.
UNSUPPORTED = "_UNSUPPORTED_FEATURE"

#: Topic errors in metadata that still mean "the topic exists".
_EXISTS_WITH_ERROR = {KafkaError.LEADER_NOT_AVAILABLE}


def _wait(future: Any, timeout: float, operation: str) -> Any:
    """The result of an admin future, waiting at most ``timeout`` seconds."""
    try:
        return future.result(timeout)
    except (concurrent.futures.TimeoutError, TimeoutError):
        msg = f"{operation} failed: _TIMED_OUT: no answer within {timeout:.0f} s"
        raise BrokerError(msg, operation=operation, code="_TIMED_OUT", retriable=True) from None


#: An ACL binding as plain values: ``(principal, resource type, resource name, pattern
#: type, operation, permission, host)``, each in lower case as :mod:`governed_kafka.acls`
#: spells them (``"topic"``, ``"prefixed"``, ``"write"``, ``"allow"``; ``"cluster"`` is
#: Kafka's cluster resource).
AclSpec = tuple[str, str, str, str, str, str, str]

_RESOURCE_TYPES: dict[str, Any] = {
    "topic": ResourceType.TOPIC,
    "group": ResourceType.GROUP,
    "transactional_id": ResourceType.TRANSACTIONAL_ID,
    "cluster": ResourceType.BROKER,
}
_PATTERN_TYPES: dict[str, Any] = {
    "literal": ResourcePatternType.LITERAL,
    "prefixed": ResourcePatternType.PREFIXED,
}
_PERMISSIONS: dict[str, Any] = {"allow": AclPermissionType.ALLOW, "deny": AclPermissionType.DENY}
_OPERATIONS: dict[str, Any] = {
    op.name.lower(): op for op in AclOperation if op not in {AclOperation.ANY}
}


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
    for name, value in _RESOURCE_TYPES.items():
        if binding.restype == value:
            resource = name
            break
    else:
        return None
    pattern = {v: k for k, v in _PATTERN_TYPES.items()}.get(binding.resource_pattern_type)
    permission = {v: k for k, v in _PERMISSIONS.items()}.get(binding.permission_type)
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


def _operations(granted: Any) -> frozenset[str] | None:
    if granted is None:
        return None
    return frozenset(op.name.lower() for op in granted)


class Admin:
    """The admin requests topic governance makes, with plain values in and out.

    Every call waits at most ``timeout`` seconds and raises :class:`BrokerError` when the
    cluster fails or refuses it; confluent types never leave this class.
    """

    def __init__(self, config: Mapping[str, object], *, timeout: float) -> None:
        self._client = new_admin(config)
        self.timeout = timeout

    def topics(self) -> dict[str, tuple[int, int]]:
        """Every topic on the cluster: ``{name: (partitions, replication factor)}``.

        Asks for all topics, never for one by name: some brokers create a topic that a
        Metadata request names, which would turn a look into a change.
        """
        try:
            metadata = self._client.list_topics(timeout=self.timeout)
        except KafkaException as exc:
            raise broker_error(exc, "list topics") from exc
        found: dict[str, tuple[int, int]] = {}
        for name, topic in metadata.topics.items():
            if topic.error is not None and topic.error.code() not in _EXISTS_WITH_ERROR:
                continue
            replicas = [len(p.replicas) for p in topic.partitions.values()]
            found[name] = (len(topic.partitions), min(replicas, default=0))
        return found

    def topic_configs(self, names: list[str]) -> dict[str, dict[str, str]]:
        """The configs the broker reports for each topic (DescribeConfigs).

        A topic just created is listed by some brokers before the one answering
        DescribeConfigs knows it: ``UNKNOWN_TOPIC_OR_PART`` is asked again until
        ``timeout``.
        """
        if not names:
            return {}
        operation = "describe topic configs"
        deadline = time.monotonic() + self.timeout
        result: dict[str, dict[str, str]] = {}
        pending = list(names)
        while pending:
            resources = [ConfigResource("topic", name) for name in pending]
            unknown = []
            try:
                futures = self._client.describe_configs(resources, request_timeout=self.timeout)
                for resource, future in futures.items():
                    try:
                        entries = _wait(future, self.timeout + 1, operation)
                    except KafkaException as exc:
                        err = exc.args[0] if exc.args else None
                        code = err.code() if isinstance(err, KafkaError) else None
                        if code != KafkaError.UNKNOWN_TOPIC_OR_PART or time.monotonic() > deadline:
                            raise
                        unknown.append(resource.name)
                        continue
                    result[resource.name] = {
                        key: entry.value
                        for key, entry in entries.items()
                        if entry.value is not None
                    }
            except KafkaException as exc:
                raise broker_error(exc, operation) from exc
            pending = unknown
            if pending:
                time.sleep(0.1)
        return result

    def create_topics(
        self, specs: Sequence[tuple[str, int, int, Mapping[str, str]]]
    ) -> dict[str, BrokerError | None]:
        """Create ``(name, partitions, replication factor, configs)`` topics.

        Returns, per topic, ``None`` when it was created or the error that refused it.
        """
        if not specs:
            return {}
        new = [
            NewTopic(name, num_partitions=partitions, replication_factor=rf, config=dict(configs))
            for name, partitions, rf, configs in specs
        ]
        futures = self._client.create_topics(
            new, operation_timeout=self.timeout, request_timeout=self.timeout
        )
        outcome: dict[str, BrokerError | None] = {}
        for name, future in futures.items():
            operation = f"create topic {name!r}"
            try:
                _wait(future, self.timeout + 1, operation)
            except KafkaException as exc:
                outcome[name] = broker_error(exc, operation)
            except BrokerError as exc:
                outcome[name] = exc
            else:
                outcome[name] = None
        return outcome

    def wait_visible(self, names: Sequence[str]) -> list[str]:
        """Wait until metadata shows each topic with a leader for every partition.

        A cluster of several brokers answers CreateTopics before every broker has the
        new metadata; a client started right after could find the topic missing.
        Returns the names still not visible after ``timeout`` seconds.
        """
        deadline = time.monotonic() + self.timeout
        pending = list(names)
        while pending:
            try:
                topics = self._client.list_topics(timeout=self.timeout).topics
            except KafkaException:
                topics = {}
            pending = [
                name
                for name in pending
                if name not in topics
                or topics[name].error is not None
                or any(p.leader < 0 for p in topics[name].partitions.values())
            ]
            if not pending or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        return pending

    def set_topic_configs(self, name: str, configs: Mapping[str, str]) -> None:
        """Set ``configs`` on topic ``name`` (IncrementalAlterConfigs), leaving the others."""
        entries = [
            ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
            for key, value in configs.items()
        ]
        resource = ConfigResource("topic", name, incremental_configs=entries)
        operation = f"alter configs of topic {name!r}"
        try:
            futures = self._client.incremental_alter_configs(
                [resource], request_timeout=self.timeout
            )
            for future in futures.values():
                _wait(future, self.timeout + 1, operation)
        except KafkaException as exc:
            raise broker_error(exc, operation) from exc

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
        from confluent_kafka import TopicCollection

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
                err = exc.args[0] if exc.args else None
                code = err.code() if isinstance(err, KafkaError) else None
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
                err = exc.args[0] if exc.args else None
                code = err.code() if isinstance(err, KafkaError) else None
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
        outcome: dict[AclSpec, BrokerError | None] = {}
        for spec, future in zip(specs, futures.values(), strict=True):
            operation = f"create ACL {spec}"
            try:
                _wait(future, self.timeout + 1, operation)
            except KafkaException as exc:
                outcome[spec] = broker_error(exc, operation)
            except BrokerError as exc:
                outcome[spec] = exc
            else:
                outcome[spec] = None
        return outcome

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
        outcome: dict[AclSpec, BrokerError | None] = {}
        for spec, future in zip(specs, futures.values(), strict=True):
            operation = f"delete ACL {spec}"
            try:
                _wait(future, self.timeout + 1, operation)
            except KafkaException as exc:
                outcome[spec] = broker_error(exc, operation)
            except BrokerError as exc:
                outcome[spec] = exc
            else:
                outcome[spec] = None
        return outcome

    def add_partitions(self, name: str, total: int) -> None:
        """Grow topic ``name`` to ``total`` partitions (CreatePartitions)."""
        operation = f"add partitions to topic {name!r}"
        try:
            futures = self._client.create_partitions(
                [NewPartitions(name, total)],
                operation_timeout=self.timeout,
                request_timeout=self.timeout,
            )
            for future in futures.values():
                _wait(future, self.timeout + 1, operation)
        except KafkaException as exc:
            raise broker_error(exc, operation) from exc
