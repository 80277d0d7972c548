"""Governed client configuration: what overrides may change, and what they may not."""

from __future__ import annotations

import pytest

from governed_kafka import ConfigError, GovernedProducer, profiles
from governed_kafka._config import (
    GOVERNED_CONSUMER,
    GOVERNED_PRODUCER,
    consumer_config,
    producer_config,
)
from governed_kafka.contracts import Catalog

WEAKENING_PRODUCER_OVERRIDES = [
    ("enable.idempotence", False),
    ("enable.idempotence", "false"),
    ("acks", 1),
    ("acks", "0"),
    ("request.required.acks", "1"),
    ("max.in.flight.requests.per.connection", 6),
    ("max.in.flight", 100),
    ("partitioner", "consistent_random"),
    ("partitioner", "murmur2"),
    ("retries", 3),
    ("message.send.max.retries", 0),
    ("transactional.id", "tx-1"),
]


@pytest.mark.parametrize(("key", "value"), WEAKENING_PRODUCER_OVERRIDES)
def test_weakening_producer_override_is_refused_naming_the_key(key: str, value: object) -> None:
    """An override that weakens a governed producer setting raises ConfigError naming that key."""
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as refused:
        producer_config(
            bootstrap_servers="127.0.0.1:1",
            client_id="svc",
            profile=profiles.DURABLE,
            overrides={key: value},  # type: ignore[dict-item]
        )
    assert refused.value.key == key
    assert refused.value.value == value


@pytest.mark.parametrize(
    ("key", "value"),
    [("acks", "all"), ("acks", -1), ("enable.idempotence", True), ("max.in.flight", 3)],
)
def test_override_restating_a_governed_value_is_accepted(key: str, value: object) -> None:
    """Restating or tightening a governed setting is not a weakening and is accepted."""
    config = producer_config(
        bootstrap_servers="127.0.0.1:1",
        client_id="svc",
        profile=profiles.DURABLE,
        overrides={key: value},  # type: ignore[dict-item]
    )
    assert config["acks"] == "all"


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("linger.mss", "not a librdkafka producer property"),
        ("group.id", "pass group_id="),
        ("auto.offset.reset", "consumer property"),
        ("bootstrap.servers", "bootstrap_servers="),
        ("error_cb", "hook"),
        ("on_delivery", "DeliveryFuture"),
        ("logger", "governed_kafka.librdkafka"),
        ("queuing.strategy", "deprecated"),
    ],
)
def test_unknown_owned_or_wrong_scope_keys_are_refused(key: str, reason: str) -> None:
    """Unknown, library-owned, deprecated and consumer keys are refused with the reason."""
    with pytest.raises(ConfigError, match=reason) as refused:
        producer_config(
            bootstrap_servers="127.0.0.1:1",
            client_id="svc",
            profile=profiles.DURABLE,
            overrides={key: "x"},
        )
    assert refused.value.key == key


def test_producer_config_keeps_governed_values_over_profile_and_overrides() -> None:
    """Profile and accepted overrides are applied, and the governed keys hold their values."""
    config = producer_config(
        bootstrap_servers=["127.0.0.1:9092", "127.0.0.1:9093"],
        client_id="svc",
        profile=profiles.HIGH_THROUGHPUT,
        overrides={"linger.ms": 7, "security.protocol": "PLAINTEXT", "client.id": "svc-2"},
    )
    assert config["bootstrap.servers"] == "127.0.0.1:9092,127.0.0.1:9093"
    assert config["linger.ms"] == 7
    assert config["compression.type"] == profiles.HIGH_THROUGHPUT.compression
    assert config["client.id"] == "svc-2"
    for key, value in GOVERNED_PRODUCER.items():
        assert config[key] == value


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("enable.auto.commit", True),
        ("enable.auto.offset.store", "true"),
        ("isolation.level", "read_uncommitted"),
        ("enable.partition.eof", True),
        ("acks", "all"),
    ],
)
def test_weakening_or_foreign_consumer_override_is_refused(key: str, value: object) -> None:
    """A consumer refuses auto-commit, auto offset store, read_uncommitted and producer keys."""
    with pytest.raises(ConfigError) as refused:
        consumer_config(
            bootstrap_servers="127.0.0.1:1",
            client_id="svc",
            group_id="g",
            overrides={key: value},  # type: ignore[dict-item]
        )
    assert refused.value.key == key


def test_consumer_config_is_governed() -> None:
    """A consumer runs without auto-commit, stores offsets itself and reads committed data."""
    config = consumer_config(
        bootstrap_servers="127.0.0.1:1",
        client_id="svc",
        group_id="g",
        overrides={"session.timeout.ms": 6000, "auto.offset.reset": "latest"},
    )
    for key, value in GOVERNED_CONSUMER.items():
        assert config[key] == value
    assert config["partition.assignment.strategy"] == "cooperative-sticky"
    assert config["session.timeout.ms"] == 6000
    assert config["auto.offset.reset"] == "latest"


def test_override_values_must_be_scalars() -> None:
    """A list or dict value is refused before librdkafka sees it."""
    with pytest.raises(ConfigError, match="str, int, float or bool") as refused:
        producer_config(
            bootstrap_servers="127.0.0.1:1",
            client_id="svc",
            profile=profiles.DURABLE,
            overrides={"linger.ms": [5]},  # type: ignore[dict-item]
        )
    assert refused.value.key == "linger.ms"


def test_producer_construction_refuses_a_weakening_override_naming_the_key() -> None:
    """GovernedProducer raises ConfigError at construction, before connecting anywhere."""
    catalog = Catalog.from_dict({"topics": []})
    with pytest.raises(ConfigError, match="acks") as refused:
        GovernedProducer(
            catalog, service="svc", bootstrap_servers="127.0.0.1:1", overrides={"acks": 1}
        )
    assert refused.value.key == "acks"


def test_invalid_value_of_a_known_key_is_refused_by_name() -> None:
    """librdkafka's refusal of a bad value becomes a ConfigError naming the property."""
    catalog = Catalog.from_dict({"topics": []})
    with pytest.raises(ConfigError, match="compression") as refused:
        GovernedProducer(
            catalog,
            service="svc",
            bootstrap_servers="127.0.0.1:1",
            overrides={"compression.type": "brotli"},
        )
    assert "compression" in refused.value.key


def test_empty_bootstrap_servers_are_refused() -> None:
    """An empty bootstrap server list is refused with ConfigError on bootstrap.servers."""
    with pytest.raises(ConfigError) as refused:
        producer_config(
            bootstrap_servers=[], client_id="svc", profile=profiles.DURABLE, overrides=None
        )
    assert refused.value.key == "bootstrap.servers"


def _consumer(**kwargs: object) -> dict[str, object]:
    options: dict[str, object] = {
        "bootstrap_servers": "127.0.0.1:1",
        "client_id": "svc",
        "group_id": "g",
        "overrides": None,
    }
    options.update(kwargs)
    return dict(consumer_config(**options))  # type: ignore[arg-type]


def test_classic_protocol_is_the_default_with_cooperative_sticky_assignment() -> None:
    """Without group_protocol the consumer speaks the classic protocol, cooperative-sticky."""
    config = _consumer()
    assert config["group.protocol"] == "classic"
    assert config["partition.assignment.strategy"] == "cooperative-sticky"


def test_consumer_protocol_sets_none_of_the_keys_the_broker_owns() -> None:
    """With group_protocol="consumer" no assignor, session timeout or heartbeat is set."""
    config = _consumer(group_protocol="consumer")
    assert config["group.protocol"] == "consumer"
    assert not {
        "partition.assignment.strategy",
        "session.timeout.ms",
        "heartbeat.interval.ms",
        "group.protocol.type",
    } & set(config)
    assert config["enable.auto.commit"] is False


@pytest.mark.parametrize(
    ("key", "value", "why"),
    [
        ("session.timeout.ms", 6000, "group.consumer.session.timeout.ms"),
        ("heartbeat.interval.ms", 1000, "group.consumer.heartbeat.interval.ms"),
        ("partition.assignment.strategy", "range", "group.remote.assignor"),
        ("group.protocol.type", "consumer", "no protocol type"),
    ],
)
def test_consumer_protocol_refuses_overrides_of_what_the_broker_owns(
    key: str, value: object, why: str
) -> None:
    """Under KIP-848 an override of a broker-owned group setting is refused, saying why."""
    with pytest.raises(ConfigError, match=why) as refused:
        _consumer(group_protocol="consumer", overrides={key: value})
    assert refused.value.key == key
    assert "KIP-848" in str(refused.value)


def test_server_side_assignor_is_refused_with_the_classic_protocol() -> None:
    """group.remote.assignor means nothing to a classic group, so it is refused there."""
    with pytest.raises(ConfigError, match=r"group\.remote\.assignor") as refused:
        _consumer(overrides={"group.remote.assignor": "uniform"})
    assert refused.value.key == "group.remote.assignor"
    config = _consumer(group_protocol="consumer", overrides={"group.remote.assignor": "uniform"})
    assert config["group.remote.assignor"] == "uniform"


def test_group_protocol_is_chosen_by_argument_not_by_override() -> None:
    """group.protocol is the constructor's to set; an unknown protocol name is refused."""
    with pytest.raises(ConfigError, match="group_protocol=") as owned:
        _consumer(overrides={"group.protocol": "consumer"})
    assert owned.value.key == "group.protocol"
    with pytest.raises(ConfigError, match="'classic', 'consumer'") as unknown:
        _consumer(group_protocol="share")
    assert unknown.value.key == "group.protocol"


def test_client_rack_sets_client_rack_once() -> None:
    """client_rack= becomes client.rack; an empty rack, or a second one, is refused."""
    assert _consumer(client_rack="eu-west-1a")["client.rack"] == "eu-west-1a"
    assert "client.rack" not in _consumer()
    with pytest.raises(ConfigError, match="client_rack") as empty:
        _consumer(client_rack=" ")
    assert empty.value.key == "client.rack"
    with pytest.raises(ConfigError, match="not both"):
        _consumer(client_rack="a", overrides={"client.rack": "b"})


# ------------------------------------------------------------------ secrets (issue 14)

SECRETS = {
    "sasl.username": "svc-user",
    "sasl.password": "hunter2-sasl",
    "ssl.key.password": "hunter2-key",
    "sasl.oauthbearer.client.secret": "hunter2-oauth",
    "ssl.keystore.password": "hunter2-keystore",
}


def test_client_config_never_shows_a_secret() -> None:
    """producer.config and consumer.config redact every secret-bearing key, and only those."""
    from governed_kafka import GovernedConsumer

    catalog = Catalog.from_dict(
        {
            "topics": [
                {
                    "name": "a.b",
                    "partitions": 1,
                    "replication_factor": 1,
                    "producers": ["svc"],
                    "consumers": ["svc"],
                }
            ]
        }
    )
    overrides = {**SECRETS, "security.protocol": "sasl_ssl", "sasl.mechanism": "PLAIN"}
    producer = GovernedProducer(
        catalog,
        service="svc",
        bootstrap_servers="127.0.0.1:1",
        overrides={**overrides, "log_level": 0},
        verify_topics=False,
    )
    consumer = GovernedConsumer(
        catalog,
        service="svc",
        group_id="svc",
        topics=["a.b"],
        bootstrap_servers="127.0.0.1:1",
        overrides={**overrides, "log_level": 0},
        verify_topics=False,
    )
    try:
        for config in (producer.config, consumer.config):
            shown = repr(config)
            assert not [s for s in SECRETS.values() if s in shown]
            assert {config[k] for k in SECRETS} == {"[redacted]"}
            assert config["sasl.mechanism"] == "PLAIN"
    finally:
        producer.close()
        consumer.close()


@pytest.mark.parametrize("key", sorted(SECRETS))
def test_a_refused_secret_is_never_echoed(key: str) -> None:
    """A secret given with the wrong type is refused by key, its value shown nowhere."""
    secret = ["hunter2", "in-a-list"]
    with pytest.raises(ConfigError) as refused:
        producer_config(
            bootstrap_servers="127.0.0.1:1",
            client_id="svc",
            profile=profiles.DURABLE,
            overrides={key: secret},  # type: ignore[dict-item]
        )
    assert refused.value.key == key
    assert "hunter2" not in str(refused.value)
    assert "hunter2" not in repr(refused.value.value)


def test_a_secret_librdkafka_refuses_is_not_echoed() -> None:
    """librdkafka's own refusal of a secret's value reaches the caller without the value."""
    from governed_kafka import _kafka

    config = producer_config(
        bootstrap_servers="127.0.0.1:1",
        client_id="svc",
        profile=profiles.DURABLE,
        overrides={"ssl.key.pem": "hunter2-not-pem", "security.protocol": "ssl"},
    )
    with pytest.raises(ConfigError) as refused:
        _kafka.ProducerClient(config)
    assert "hunter2" not in str(refused.value)
    assert "hunter2" not in repr(refused.value.value)


def test_secret_keys_cover_what_librdkafka_marks_sensitive() -> None:
    """One list: librdkafka's sensitive properties, their aliases, and Java/registry secrets."""
    from governed_kafka._config import is_secret

    for key in [
        "sasl.password",
        "sasl.username",
        "ssl.key.password",
        "ssl.key.pem",
        "ssl_key",
        "ssl.keystore.password",
        "sasl.oauthbearer.config",
        "sasl.oauthbearer.client.secret",
        "sasl.oauthbearer.client.credentials.client.secret",
        "sasl.oauthbearer.assertion.private.key.passphrase",
        "sasl.oauthbearer.assertion.private.key.pem",
        "sasl.jaas.config",
        "ssl.truststore.password",
        "basic.auth.user.info",
        "bearer.auth.token",
    ]:
        assert is_secret(key), key
    for key in ["bootstrap.servers", "sasl.mechanism", "security.protocol", "linger.ms"]:
        assert not is_secret(key), key


def _token(config: str) -> tuple[str, float]:
    return "token", 0.0


def test_an_oauth_token_provider_is_the_one_callable_override() -> None:
    """oauth_cb may be a callable (an OAUTHBEARER token provider); nothing else may."""
    config = producer_config(
        bootstrap_servers="127.0.0.1:1",
        client_id="svc",
        profile=profiles.DURABLE,
        overrides={"sasl.mechanism": "OAUTHBEARER", "oauth_cb": _token},
    )
    assert config["oauth_cb"] is _token
    with pytest.raises(ConfigError, match="callable token provider") as refused:
        producer_config(
            bootstrap_servers="127.0.0.1:1",
            client_id="svc",
            profile=profiles.DURABLE,
            overrides={"oauth_cb": "not-callable"},
        )
    assert refused.value.key == "oauth_cb"
    with pytest.raises(ConfigError, match="callbacks are set through hooks"):
        producer_config(
            bootstrap_servers="127.0.0.1:1",
            client_id="svc",
            profile=profiles.DURABLE,
            overrides={"consume_cb": _token},
        )


def test_the_token_provider_reaches_admin_clients_and_is_not_shown() -> None:
    """The gate's admin client gets oauth_cb with the connection; config shows no callable."""
    from governed_kafka._config import redacted, shared_connection

    config = consumer_config(
        bootstrap_servers="127.0.0.1:1",
        client_id="svc",
        group_id="g",
        overrides={"security.protocol": "SASL_SSL", "oauth_cb": _token},
    )
    shared = shared_connection(config)
    assert shared["oauth_cb"] is _token
    assert shared["security.protocol"] == "SASL_SSL"
    assert "group.id" not in shared
    assert redacted(config)["oauth_cb"] == "[callable]"
