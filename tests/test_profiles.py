"""Profiles tune throughput and latency and cannot express a governed setting."""

from __future__ import annotations

import attrs
import pytest

from governed_kafka import profiles
from governed_kafka._config import GOVERNED_CONSUMER, GOVERNED_PRODUCER


@pytest.mark.parametrize("profile", list(profiles.PROFILES.values()), ids=list(profiles.PROFILES))
def test_profile_emits_only_tuning_keys(profile: profiles.Profile) -> None:
    """A profile's librdkafka settings are batching, linger, compression and queue sizes only."""
    config = profile.to_librdkafka()
    assert set(config) == profiles.PROFILE_KEYS
    assert not set(config) & set(GOVERNED_PRODUCER)
    consumer = profile.to_librdkafka("consumer")
    assert set(consumer) == profiles.CONSUMER_PROFILE_KEYS
    assert not set(consumer) & set(GOVERNED_CONSUMER)


@pytest.mark.parametrize(
    "governed",
    [
        "acks",
        "enable_idempotence",
        "partitioner",
        "max_in_flight",
        "retries",
        "overrides",
        "enable_auto_commit",
        "isolation_level",
    ],
)
def test_profile_has_no_field_for_a_governed_setting(governed: str) -> None:
    """Building a profile with a governed setting fails: the class has no such field."""
    with pytest.raises(TypeError, match=governed):
        attrs.evolve(profiles.DURABLE, **{governed: "0"})


def test_profile_fields_are_exactly_the_tuning_knobs() -> None:
    """The Profile class declares no field beyond name and the tuning knobs."""
    names = {f.name for f in attrs.fields(profiles.Profile)}
    assert names == {
        "name",
        "linger_ms",
        "batch_size",
        "batch_num_messages",
        "compression",
        "queue_max_messages",
        "queue_max_kbytes",
        "fetch_wait_max_ms",
        "fetch_min_bytes",
    }


def test_profile_rejects_an_unknown_codec() -> None:
    """An unsupported compression codec is refused when the profile is built."""
    with pytest.raises(ValueError, match="compression"):
        attrs.evolve(profiles.DURABLE, compression="brotli")


def test_durable_is_the_producers_default() -> None:
    """GovernedProducer defaults to the DURABLE profile."""
    import inspect

    from governed_kafka import GovernedProducer

    default = inspect.signature(GovernedProducer).parameters["profile"].default
    assert default is profiles.DURABLE


@pytest.mark.parametrize("name", ["HIGH_THROUGHPUT", "high-throughput", "High_Throughput"])
def test_profiles_are_found_by_name(name: str) -> None:
    """by_name accepts the constant's name or the profile's name, any case."""
    assert profiles.by_name(name) is profiles.HIGH_THROUGHPUT


def test_unknown_profile_name_lists_the_choices() -> None:
    """An unknown profile name is refused with the list of known ones."""
    with pytest.raises(ValueError, match="durable, balanced"):
        profiles.by_name("fastest")
