"""KafkaCluster without a JVM: what it needs, where its jars come from, bad arguments."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from governed_kafka.testing import HOME_ENV, KafkaCluster, KafkaClusterUnavailable
from governed_kafka.testing._kafka_dist import find_java, find_kafka


def _fake_java(directory: Path, banner: str) -> Path:
    """A ``bin/java`` that prints ``banner`` as ``java -version`` does (on stderr)."""
    java = directory / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text(f"#!/bin/sh\necho '{banner}' >&2\n", encoding="utf-8")
    java.chmod(java.stat().st_mode | stat.S_IXUSR)
    return directory


def test_no_java_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without JAVA_HOME or java on PATH the error names Java 17 and how to get it."""
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", "")
    with pytest.raises(KafkaClusterUnavailable, match=r"Java 17 or newer.*no `java` on PATH"):
        find_java()
    with pytest.raises(KafkaClusterUnavailable, match="openjdk-17"):
        KafkaCluster().start()


def test_java_older_than_17_is_refused_naming_its_version(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A Java 11 (or 8, which calls itself 1.8) is refused with the version it reported."""
    monkeypatch.setenv("JAVA_HOME", str(_fake_java(tmp_path / "j11", 'openjdk version "11.0.2"')))
    with pytest.raises(KafkaClusterUnavailable, match="is Java 11"):
        find_java()
    monkeypatch.setenv("JAVA_HOME", str(_fake_java(tmp_path / "j8", 'java version "1.8.0_392"')))
    with pytest.raises(KafkaClusterUnavailable, match="is Java 8"):
        find_java()


def test_java_home_without_a_java_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """JAVA_HOME pointing at a directory with no bin/java is named in the error."""
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    with pytest.raises(KafkaClusterUnavailable, match=r"JAVA_HOME=.* has no bin/java"):
        find_java()


def test_a_java_17_is_accepted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A Java that reports version 17 is taken, with its path and major version."""
    home = _fake_java(tmp_path, 'openjdk version "17.0.15" 2025-04-15')
    monkeypatch.setenv("JAVA_HOME", str(home))
    assert find_java() == (str(home / "bin" / "java"), 17)


def test_kafka_home_without_broker_jars_is_refused_naming_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A Kafka home (argument or environment) with no libs/kafka_2.13-*.jar is named."""
    (tmp_path / "libs").mkdir()
    with pytest.raises(KafkaClusterUnavailable, match=r"kafka_home=.*no broker jar"):
        find_kafka(kafka_home=tmp_path)
    monkeypatch.setenv(HOME_ENV, str(tmp_path))
    with pytest.raises(KafkaClusterUnavailable, match=HOME_ENV):
        find_kafka()


def test_kafka_home_with_broker_jars_gives_its_own_version(tmp_path: Path) -> None:
    """An unpacked distribution is used as it is; its version comes from the broker jar."""
    (tmp_path / "libs").mkdir()
    (tmp_path / "libs" / "kafka_2.13-4.2.0.jar").write_bytes(b"")
    dist = find_kafka("4.1.1", kafka_home=tmp_path)
    assert dist.version == "4.2.0"
    assert dist.classpath == str(tmp_path / "libs" / "*")


def test_no_cached_jars_and_no_maven_says_to_install_maven(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With an empty cache and no mvn, the error says to install Maven or set a Kafka home."""
    monkeypatch.delenv(HOME_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("PATH", "")
    with pytest.raises(KafkaClusterUnavailable, match=rf"install Maven.*{HOME_ENV}"):
        find_kafka("4.1.1")
    assert not any((tmp_path / "governed-kafka").glob("kafka-4.1.1/libs"))


def test_cached_jars_are_used_without_maven(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Jars resolved once (marked complete) are found again with no Maven on PATH."""
    libs = tmp_path / "governed-kafka" / "kafka-4.1.1" / "libs"
    libs.mkdir(parents=True)
    (libs / ".complete").write_text("4.1.1\n")
    monkeypatch.delenv(HOME_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("PATH", "")
    assert find_kafka("4.1.1").libs == libs


def test_a_version_that_is_not_a_release_is_refused() -> None:
    """Only x.y.z release numbers are resolved: nothing else is handed to Maven."""
    with pytest.raises(ValueError, match="Apache Kafka release"):
        find_kafka("4.1; rm -rf /")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"brokers": 0}, "brokers must be >= 1"),
        ({"brokers": 3, "racks": ("a", "b")}, "one rack per broker"),
        ({"brokers": 1, "ports": (1, 2)}, "one port per broker"),
        ({"authorizer": True}, "authorizer=True needs sasl_users"),
        ({"sasl_users": {"bad name": "pw"}}, "user name 'bad name'"),
        ({"sasl_users": {"checkout": 'pw"; x'}}, "the password of 'checkout'"),
    ],
)
def test_bad_arguments_are_refused_before_anything_starts(
    kwargs: dict[str, object], message: str
) -> None:
    """Each impossible configuration is a ValueError saying what is wrong."""
    with pytest.raises(ValueError, match=message):
        KafkaCluster(**kwargs)  # type: ignore[arg-type]


def test_sasl_users_get_an_admin_and_client_settings() -> None:
    """With SASL users an admin is added, and client settings carry the user's credentials
    without starting anything; a cluster without SASL has none to give."""
    cluster = KafkaCluster(sasl_users={"checkout": "pw-1"})
    assert set(cluster.users) == {"checkout", "admin"}
    assert cluster.security_config("checkout") == {
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "checkout",
        "sasl.password": "pw-1",
    }
    assert cluster.security_config()["sasl.username"] == "admin"
    with pytest.raises(ValueError, match="no SASL user 'analytics'"):
        cluster.security_config("analytics")
    with pytest.raises(ValueError, match="no SASL users"):
        KafkaCluster().security_config("checkout")
    with pytest.raises(RuntimeError, match="not started"):
        _ = cluster.bootstrap_servers


def test_cluster_ids_never_start_with_a_dash() -> None:
    """A cluster id is 22 URL-safe base64 characters and never looks like an option."""
    from governed_kafka.testing._cluster import _cluster_id

    ids = [_cluster_id() for _ in range(2000)]
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)
    assert len(set(ids)) == 2000
