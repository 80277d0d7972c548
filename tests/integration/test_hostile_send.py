"""Fuzzing send(): whatever the arguments, a governed error or a sent record, never a crash."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_consumer import _contracts

from conftest import CatalogFactory
from governed_kafka import DeliveryFuture, GovernedKafkaError, GovernedProducer
from governed_kafka.testing import LocalBroker
from kafka_helpers import read_all

EXAMPLE_SCHEMAS = Path(__file__).parent.parent.parent / "examples" / "schemas"

#: Every code point, lone surrogates and NUL included.
ANY_CHAR = st.characters(exclude_categories=())
TEXT = st.text(ANY_CHAR, max_size=20)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    TEXT,
    st.binary(max_size=20),
    st.builds(bytearray, st.binary(max_size=8)),
    st.builds(memoryview, st.binary(max_size=8)),
    st.just(object()),
)
ANYTHING = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(TEXT, st.integers()), inner, max_size=4),
        st.tuples(inner, inner),
    ),
    max_leaves=8,
)
HASHABLE = st.one_of(st.none(), st.integers(), st.floats(), TEXT, st.binary(max_size=8))
RESERVED = st.sampled_from(["event-type", "event-type\x00", "dlq.x", ""])
HEADER_NAME = st.one_of(TEXT, RESERVED, SCALARS)
HEADER_VALUE = st.one_of(st.binary(max_size=20), TEXT, st.none(), SCALARS)
HEADERS = st.one_of(
    st.none(),
    st.dictionaries(st.one_of(TEXT, RESERVED, HASHABLE), HEADER_VALUE, max_size=4),
    st.lists(st.tuples(HEADER_NAME, HEADER_VALUE), max_size=4),
    st.lists(ANYTHING, max_size=3),
    ANYTHING,
)
KEY = st.one_of(st.binary(min_size=1, max_size=20), TEXT, ANYTHING)

#: Orders whose every field is either right or anything at all.
ORDER_FIELDS = {
    "order_id": st.text(max_size=8),
    "customer_id": st.text(max_size=8),
    "amount_cents": st.integers(min_value=-(2**63), max_value=2**63 - 1),
    "currency": st.sampled_from(["EUR", "USD", "GBP"]),
    "created_at": st.integers(min_value=1, max_value=2**40),
}
ORDER = st.fixed_dictionaries(
    {name: st.one_of(good, ANYTHING) for name, good in ORDER_FIELDS.items()},
    optional={"extra": ANYTHING},
)


def _sends(producer: GovernedProducer, topic: str, value: st.SearchStrategy[Any]) -> list[Any]:
    """Fuzz send() on ``topic``; return the futures of the sends that were accepted."""
    accepted: list[DeliveryFuture] = []

    @settings(
        max_examples=250,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(value=value, key=KEY, headers=HEADERS)
    def send(value: object, key: object, headers: object) -> None:
        try:
            future = producer.send(topic, value, key=key, headers=headers)  # type: ignore[arg-type]
        except (GovernedKafkaError, TypeError, ValueError):
            return
        accepted.append(future)

    send()
    return accepted


def test_fuzzed_sends_raise_only_governed_errors_and_refusals_send_nothing(
    kafka_broker: LocalBroker, provisioned: CatalogFactory, tmp_path: Path, topic_name: str
) -> None:
    """Keys, values and headers of any type and any unicode: refused with a governed error (or
    the documented TypeError/ValueError), or sent; the topics hold exactly the accepted sends."""
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    shutil.copy(EXAMPLE_SCHEMAS / "order_created.v1.avsc", schemas)
    avro_topic = f"{topic_name}.avro"
    catalog = provisioned(
        _contracts(topic_name, partitions=1, dlq=False)
        + _contracts(avro_topic, partitions=1, dlq=False).replace(
            'producers = ["checkout"]',
            'value_schema = "schemas/order_created.v1.avsc"\n    producers = ["checkout"]',
        )
    )
    bootstrap = kafka_broker.bootstrap_servers
    with GovernedProducer(catalog, service="checkout", bootstrap_servers=bootstrap) as producer:
        raw = _sends(producer, topic_name, ANYTHING)
        avro = _sends(producer, avro_topic, ORDER)
        producer.flush(30)
    assert all(f.exception(0) is None for f in raw + avro)
    assert len(read_all(bootstrap, topic_name)) == len(raw)
    assert len(read_all(bootstrap, avro_topic)) == len(avro)
    assert avro  # the strategy does reach the broker, so the count above means something
