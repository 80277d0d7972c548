"""librdkafka 2.16 configuration property table, by scope.

Data only: the property names known to librdkafka 2.16.0 (as bundled with
confluent-kafka 2.16.1), grouped by the ``C/P`` scope column of librdkafka's
CONFIGURATION.md, plus the configuration keys confluent-kafka-python itself
intercepts. ``governed_kafka`` uses these sets to refuse unknown or
wrong-scope configuration keys before they reach librdkafka.

Sources: librdkafka CONFIGURATION.md (global and topic property tables),
cross-checked against the table compiled into the installed librdkafka 2.16.0
(``rd_kafka_conf_properties_show()``), and confluent-kafka-python's
``src/confluent_kafka/src/confluent_kafka.c`` (``common_conf_setup``,
``producer_conf_set_special``, ``consumer_conf_set_special``).

confluent-kafka-python takes a single flat dict: topic-level properties sit
next to global ones, and ``rd_kafka_conf_set()`` resolves a name against the
global table first, then the default topic table. Topic-level properties are
therefore included in the scope sets. Aliases (e.g. ``bootstrap.servers``,
``linger.ms``, ``acks``) are included as separate names.

Hidden librdkafka properties that the table does not list (for example
``client.software.name`` and ``client.software.version``, which
confluent-kafka-python sets itself) are deliberately absent.
"""

from __future__ import annotations

__all__ = [
    "CALLBACK_KEYS",
    "CONSUMER_KEYS",
    "DEPRECATED_KEYS",
    "GLOBAL_KEYS",
    "PRODUCER_KEYS",
    "SECRET_KEYS",
]


#: Properties of scope ``*``: valid for both producers and consumers.
#: Includes aliases and the dedicated-API (callback/pointer) properties of
#: that scope, which are also listed in :data:`CALLBACK_KEYS`.
GLOBAL_KEYS: frozenset[str] = frozenset(
    {
        "allow.auto.create.topics",
        "api.version.fallback.ms",
        "api.version.request",
        "api.version.request.timeout.ms",
        "background_event_cb",
        "bootstrap.servers",
        "broker.address.family",
        "broker.address.ttl",
        "broker.version.fallback",
        "builtin.features",
        "client.dns.lookup",
        "client.id",
        "client.rack",
        "closesocket_cb",
        "connect_cb",
        "connections.max.idle.ms",
        "debug",
        "default_topic_conf",
        "enable.metrics.push",
        "enable.random.seed",
        "enable.sasl.oauthbearer.unsecure.jwt",
        "enable.ssl.certificate.verification",
        "enabled_events",
        "error_cb",
        "https.ca.location",
        "https.ca.pem",
        "interceptors",
        "internal.termination.signal",
        "log.connection.close",
        "log.queue",
        "log.thread.name",
        "log_cb",
        "log_level",
        "max.in.flight",
        "max.in.flight.requests.per.connection",
        "message.copy.max.bytes",
        "message.max.bytes",
        "metadata.broker.list",
        "metadata.max.age.ms",
        "metadata.recovery.rebootstrap.trigger.ms",
        "metadata.recovery.strategy",
        "oauthbearer_token_refresh_cb",
        "opaque",
        "open_cb",
        "plugin.library.paths",
        "receive.message.max.bytes",
        "reconnect.backoff.jitter.ms",
        "reconnect.backoff.max.ms",
        "reconnect.backoff.ms",
        "resolve_cb",
        "retry.backoff.max.ms",
        "retry.backoff.ms",
        "sasl.kerberos.keytab",
        "sasl.kerberos.kinit.cmd",
        "sasl.kerberos.min.time.before.relogin",
        "sasl.kerberos.principal",
        "sasl.kerberos.service.name",
        "sasl.mechanism",
        "sasl.mechanisms",
        "sasl.oauthbearer.assertion.algorithm",
        "sasl.oauthbearer.assertion.claim.aud",
        "sasl.oauthbearer.assertion.claim.exp.seconds",
        "sasl.oauthbearer.assertion.claim.iss",
        "sasl.oauthbearer.assertion.claim.jti.include",
        "sasl.oauthbearer.assertion.claim.nbf.seconds",
        "sasl.oauthbearer.assertion.claim.sub",
        "sasl.oauthbearer.assertion.file",
        "sasl.oauthbearer.assertion.jwt.template.file",
        "sasl.oauthbearer.assertion.private.key.file",
        "sasl.oauthbearer.assertion.private.key.passphrase",
        "sasl.oauthbearer.assertion.private.key.pem",
        "sasl.oauthbearer.client.credentials.client.id",
        "sasl.oauthbearer.client.credentials.client.secret",
        "sasl.oauthbearer.client.id",
        "sasl.oauthbearer.client.secret",
        "sasl.oauthbearer.config",
        "sasl.oauthbearer.extensions",
        "sasl.oauthbearer.grant.type",
        "sasl.oauthbearer.metadata.authentication.type",
        "sasl.oauthbearer.method",
        "sasl.oauthbearer.scope",
        "sasl.oauthbearer.sub.claim.name",
        "sasl.oauthbearer.token.endpoint.url",
        "sasl.password",
        "sasl.username",
        "security.protocol",
        "socket.blocking.max.ms",
        "socket.connection.setup.timeout.ms",
        "socket.keepalive.enable",
        "socket.max.fails",
        "socket.nagle.disable",
        "socket.receive.buffer.bytes",
        "socket.send.buffer.bytes",
        "socket.timeout.ms",
        "socket_cb",
        "ssl.ca.certificate.stores",
        "ssl.ca.location",
        "ssl.ca.pem",
        "ssl.certificate.location",
        "ssl.certificate.pem",
        "ssl.certificate.verify_cb",
        "ssl.cipher.suites",
        "ssl.crl.location",
        "ssl.curves.list",
        "ssl.endpoint.identification.algorithm",
        "ssl.engine.id",
        "ssl.engine.location",
        "ssl.key.location",
        "ssl.key.password",
        "ssl.key.pem",
        "ssl.keystore.location",
        "ssl.keystore.password",
        "ssl.providers",
        "ssl.sigalgs.list",
        "ssl_ca",
        "ssl_certificate",
        "ssl_engine_callback_data",
        "ssl_key",
        "statistics.interval.ms",
        "stats_cb",
        "throttle_cb",
        "topic.blacklist",
        "topic.metadata.propagation.max.ms",
        "topic.metadata.refresh.fast.cnt",
        "topic.metadata.refresh.fast.interval.ms",
        "topic.metadata.refresh.interval.ms",
        "topic.metadata.refresh.sparse",
    }
)

#: Properties of scope ``P``: producer-only, global and topic-level
#: (``acks``, ``partitioner``, ``message.timeout.ms``, ...), with aliases.
PRODUCER_KEYS: frozenset[str] = frozenset(
    {
        "acks",
        "batch.num.messages",
        "batch.size",
        "compression.codec",
        "compression.level",
        "compression.type",
        "delivery.report.only.error",
        "delivery.timeout.ms",
        "dr_cb",
        "dr_msg_cb",
        "enable.gapless.guarantee",
        "enable.idempotence",
        "linger.ms",
        "message.send.max.retries",
        "message.timeout.ms",
        "msg_order_cmp",
        "partitioner",
        "partitioner_cb",
        "produce.offset.report",
        "queue.buffering.backpressure.threshold",
        "queue.buffering.max.kbytes",
        "queue.buffering.max.messages",
        "queue.buffering.max.ms",
        "queuing.strategy",
        "request.required.acks",
        "request.timeout.ms",
        "retries",
        "sticky.partitioning.linger.ms",
        "transaction.timeout.ms",
        "transactional.id",
    }
)

#: Properties of scope ``C``: consumer-only, global and topic-level
#: (``auto.offset.reset``, ...), with aliases. ``max.poll.records`` and
#: ``share.acknowledgement.mode`` apply to share consumers only.
CONSUMER_KEYS: frozenset[str] = frozenset(
    {
        "auto.commit.enable",
        "auto.commit.interval.ms",
        "auto.offset.reset",
        "check.crcs",
        "consume.callback.max.messages",
        "consume_cb",
        "coordinator.query.interval.ms",
        "enable.auto.commit",
        "enable.auto.offset.store",
        "enable.partition.eof",
        "fetch.error.backoff.ms",
        "fetch.max.bytes",
        "fetch.message.max.bytes",
        "fetch.min.bytes",
        "fetch.queue.backoff.ms",
        "fetch.wait.max.ms",
        "group.id",
        "group.instance.id",
        "group.protocol",
        "group.protocol.type",
        "group.remote.assignor",
        "heartbeat.interval.ms",
        "isolation.level",
        "max.partition.fetch.bytes",
        "max.poll.interval.ms",
        "max.poll.records",
        "offset.store.method",
        "offset.store.path",
        "offset.store.sync.interval.ms",
        "offset_commit_cb",
        "partition.assignment.strategy",
        "queued.max.messages.kbytes",
        "queued.min.messages",
        "rebalance_cb",
        "session.timeout.ms",
        "share.acknowledgement.mode",
    }
)

#: Properties whose description is marked **DEPRECATED**, from any scope
#: (they remain in the scope sets). ``enable.auto.commit`` is left out: only
#: its topic-level legacy alias is deprecated, and a flat-dict key resolves
#: to the global, non-deprecated ``enable.auto.commit`` property.
DEPRECATED_KEYS: frozenset[str] = frozenset(
    {
        "api.version.fallback.ms",
        "api.version.request",
        "auto.commit.enable",
        "broker.version.fallback",
        "msg_order_cmp",
        "offset.store.method",
        "offset.store.path",
        "offset.store.sync.interval.ms",
        "produce.offset.report",
        "queuing.strategy",
        "reconnect.backoff.jitter.ms",
        "socket.blocking.max.ms",
        "ssl.engine.location",
        "topic.metadata.refresh.fast.cnt",
    }
)

#: Keys that are not plain string properties. Every librdkafka property of
#: "Type: see dedicated API" (it cannot be set as a string), plus the keys
#: confluent-kafka-python intercepts and handles in Python: ``error_cb``,
#: ``throttle_cb``, ``stats_cb``, ``oauth_cb``, ``logger`` (all clients),
#: ``on_delivery`` (producer only) and ``on_commit`` (consumer only).
#: ``logger``, ``oauth_cb``, ``on_delivery`` and ``on_commit`` are not
#: librdkafka properties, so they are in no scope set.
CALLBACK_KEYS: frozenset[str] = frozenset(
    {
        "background_event_cb",
        "closesocket_cb",
        "connect_cb",
        "consume_cb",
        "default_topic_conf",
        "dr_cb",
        "dr_msg_cb",
        "error_cb",
        "interceptors",
        "log_cb",
        "logger",
        "msg_order_cmp",
        "oauth_cb",
        "oauthbearer_token_refresh_cb",
        "offset_commit_cb",
        "on_commit",
        "on_delivery",
        "opaque",
        "open_cb",
        "partitioner_cb",
        "rebalance_cb",
        "resolve_cb",
        "socket_cb",
        "ssl.certificate.verify_cb",
        "ssl_ca",
        "ssl_certificate",
        "ssl_engine_callback_data",
        "ssl_key",
        "stats_cb",
        "throttle_cb",
    }
)

#: Properties whose values are secrets or key material: the ones librdkafka 2.16 marks
#: ``_RK_SENSITIVE`` in ``rdkafka_conf.c`` (it redacts them in its own dumps), the alias
#: of one of them, and the secret-bearing settings of the Java client and of schema
#: registry clients that a ``client.properties`` file may hold. governed_kafka shows none
#: of their values anywhere (``config`` properties, errors, reprs, JSON); see
#: ``governed_kafka._config.is_secret``, which also treats any key naming a password,
#: secret or passphrase as one.
SECRET_KEYS: frozenset[str] = frozenset(
    {
        # librdkafka: _RK_SENSITIVE
        "sasl.oauthbearer.assertion.private.key.file",
        "sasl.oauthbearer.assertion.private.key.passphrase",
        "sasl.oauthbearer.assertion.private.key.pem",
        "sasl.oauthbearer.client.secret",
        "sasl.oauthbearer.config",
        "sasl.password",
        "sasl.username",
        "ssl.ca.pem",
        "ssl.key.location",
        "ssl.key.password",
        "ssl.key.pem",
        "ssl.keystore.password",
        "ssl_key",
        # librdkafka: alias of sasl.oauthbearer.client.secret
        "sasl.oauthbearer.client.credentials.client.secret",
        # the Java client and schema registry clients
        "basic.auth.user.info",
        "bearer.auth.client.secret",
        "bearer.auth.token",
        "sasl.jaas.config",
        "schema.registry.basic.auth.user.info",
        "ssl.truststore.password",
    }
)
