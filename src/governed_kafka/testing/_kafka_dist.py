"""Java and the Apache Kafka broker's jars, for :class:`~governed_kafka.testing.KafkaCluster`.

The jars come, in this order, from ``kafka_home=`` or ``$GOVERNED_KAFKA_KAFKA_HOME`` (an
unpacked Kafka distribution), from the cache (``~/.cache/governed-kafka/kafka-<version>``,
under ``$XDG_CACHE_HOME`` when that is set), or from Maven Central into that cache: the
first run needs Maven and the network, later runs neither.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import subprocess
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from ..errors import GovernedKafkaError

__all__ = [
    "DEFAULT_VERSION",
    "HOME_ENV",
    "MIN_JAVA",
    "KafkaClusterUnavailable",
    "KafkaDist",
    "find_java",
    "find_kafka",
]

#: The Apache Kafka release a :class:`KafkaCluster` runs unless told otherwise.
DEFAULT_VERSION: Final = "4.1.1"

#: Environment variable naming an unpacked Kafka distribution to use instead of Maven.
HOME_ENV: Final = "GOVERNED_KAFKA_KAFKA_HOME"

#: Oldest Java the Kafka 4.x broker runs on.
MIN_JAVA: Final = 17

#: Longest wait for Maven to resolve the broker's jars on a first run (seconds).
MAVEN_TIMEOUT_S: Final = 900.0

_JAVA_HINT = (
    f"install a Java {MIN_JAVA}+ runtime (e.g. `apt install openjdk-17-jre-headless`, "
    "`brew install openjdk@17`) and put `java` on PATH or set JAVA_HOME"
)
_MAVEN_HINT = (
    "install Maven (e.g. `apt install maven`, `brew install maven`) so the broker's jars can "
    f"be fetched from Maven Central once, or set {HOME_ENV} to an unpacked Kafka distribution"
)


class KafkaClusterUnavailable(GovernedKafkaError, RuntimeError):
    """What a :class:`~governed_kafka.testing.KafkaCluster` needs is missing.

    The message says what to install (Java, Maven) or what to fix (a Kafka home without
    jars). Never a reason to skip a test: the Apache Kafka tier needs these to run.
    """


_VERSION = re.compile(r'version "(\d+)(?:\.(\d+))?')


def find_java() -> tuple[str, int]:
    """Return the ``java`` to run the broker with and its major version.

    ``$JAVA_HOME/bin/java`` when ``JAVA_HOME`` is set, else ``java`` on ``PATH``; raises
    :class:`KafkaClusterUnavailable` when there is none or it is older than Java 17.
    """
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java or not os.access(java, os.X_OK):
        where = f"JAVA_HOME={home!r} has no bin/java" if home else "no `java` on PATH"
        msg = f"KafkaCluster needs Java {MIN_JAVA} or newer: {where}; {_JAVA_HINT}"
        raise KafkaClusterUnavailable(msg)
    try:
        shown = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        msg = f"KafkaCluster cannot run {java!r} -version: {exc}; {_JAVA_HINT}"
        raise KafkaClusterUnavailable(msg) from exc
    match = _VERSION.search(shown.stderr + shown.stdout)
    if match is None:
        msg = f"KafkaCluster cannot tell the version of {java!r}; {_JAVA_HINT}"
        raise KafkaClusterUnavailable(msg)
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8.0_392" is Java 8
        major = int(match.group(2))
    if major < MIN_JAVA:
        msg = f"KafkaCluster needs Java {MIN_JAVA} or newer; {java} is Java {major}: {_JAVA_HINT}"
        raise KafkaClusterUnavailable(msg)
    return java, major


class KafkaDist:
    """The jars of one Kafka release: ``classpath`` for ``java -cp``, and its ``version``."""

    def __init__(self, libs: Path, version: str) -> None:
        self.libs = libs
        self.version = version

    @property
    def classpath(self) -> str:
        """Every jar of the release, as a ``java -cp`` wildcard."""
        return str(self.libs / "*")

    def __repr__(self) -> str:
        return f"<KafkaDist {self.version} at {self.libs}>"


_SERVER_JAR = re.compile(r"kafka_2\.1[23]-(\d+\.\d+\.\d+[^/]*)\.jar")


def _from_libs(libs: Path, what: str) -> KafkaDist:
    jars = sorted(
        m.group(1) for p in libs.glob("kafka_2.1*.jar") if (m := _SERVER_JAR.match(p.name))
    )
    if not jars:
        msg = (
            f"{what} has no broker jar (libs/kafka_2.13-<version>.jar); point it at an "
            "unpacked Apache Kafka distribution (the directory holding bin/ and libs/)"
        )
        raise KafkaClusterUnavailable(msg)
    return KafkaDist(libs, jars[0])


def cache_root() -> Path:
    """Where resolved broker jars are kept between runs."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "governed-kafka"


def find_kafka(
    version: str = DEFAULT_VERSION, kafka_home: str | os.PathLike[str] | None = None
) -> KafkaDist:
    """The broker's jars: ``kafka_home``, ``$GOVERNED_KAFKA_KAFKA_HOME``, the cache, or Maven.

    Only the first run resolves with Maven (into the cache, under a lock, so parallel test
    workers resolve once); a failed resolution leaves nothing half-written behind.
    """
    home = kafka_home if kafka_home is not None else os.environ.get(HOME_ENV)
    if home:
        what = f"kafka_home={str(home)!r}" if kafka_home is not None else f"{HOME_ENV}={home!r}"
        return _from_libs(Path(home) / "libs", what)
    if not re.fullmatch(r"\d+\.\d+\.\d+", version):
        msg = (
            f"version must be an Apache Kafka release such as {DEFAULT_VERSION!r}, got {version!r}"
        )
        raise ValueError(msg)
    target = cache_root() / f"kafka-{version}"
    done = target / "libs" / ".complete"
    if done.exists():
        return KafkaDist(target / "libs", version)
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.parent / f"kafka-{version}.lock"):
        if not done.exists():
            _resolve_with_maven(version, target)
    return KafkaDist(target / "libs", version)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


_POM = """\
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>governed-kafka</groupId>
  <artifactId>kafka-broker-classpath</artifactId>
  <version>1</version>
  <dependencies>
    <dependency>
      <groupId>{group}</groupId>
      <artifactId>{artifact}</artifactId>
      <version>{version}</version>
    </dependency>
  </dependencies>
</project>
"""


def _resolve_with_maven(version: str, target: Path) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        msg = (
            f"KafkaCluster has no jars for Kafka {version} in {target} and no `mvn` on "
            f"PATH: {_MAVEN_HINT}"
        )
        raise KafkaClusterUnavailable(msg)
    staging = Path(tempfile.mkdtemp(prefix=f"kafka-{version}-", dir=target.parent))
    try:
        libs = staging / "libs"
        _copy_dependencies(mvn, staging, "org.apache.kafka", "kafka_2.13", version, libs=libs)
        # The broker logs through SLF4J; its Maven artifacts leave the binding to the
        # distribution, so add the Log4j 2 one that matches the release's own Log4j.
        core = sorted(libs.glob("log4j-core-*.jar"))
        if core:
            log4j = core[0].name.removeprefix("log4j-core-").removesuffix(".jar")
            slf4j2 = any(libs.glob("slf4j-api-2.*.jar"))
            binding = "log4j-slf4j2-impl" if slf4j2 else "log4j-slf4j-impl"
            _copy_dependencies(mvn, staging, "org.apache.logging.log4j", binding, log4j, libs=libs)
        (libs / ".complete").write_text(version + "\n", encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _copy_dependencies(
    mvn: str, work: Path, group: str, artifact: str, version: str, *, libs: Path
) -> None:
    pom = work / f"pom-{artifact}.xml"
    pom.write_text(_POM.format(group=group, artifact=artifact, version=version), encoding="utf-8")
    command = [
        mvn,
        "-B",
        "-ntp",
        "-f",
        str(pom),
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={libs}",
    ]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=MAVEN_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as exc:
        msg = f"Maven did not resolve {group}:{artifact}:{version} within {MAVEN_TIMEOUT_S:.0f} s"
        raise KafkaClusterUnavailable(msg) from exc
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-25:])
        msg = (
            textwrap.dedent(
                f"""\
            Maven could not resolve {group}:{artifact}:{version} (exit {done.returncode}); is \
Maven Central reachable, and is {version} a released version? Maven said:
            """
            )
            + tail
        )
        raise KafkaClusterUnavailable(msg)
