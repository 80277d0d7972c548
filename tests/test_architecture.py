"""The package's architecture rules, checked on its source with ``ast``.

The rules, each a test below:

- **One border.** Only ``governed_kafka._kafka`` (the package and its submodules)
  imports ``confluent_kafka`` or names one of its types. Every import counts, also
  inside functions and under ``if TYPE_CHECKING:``. The types are the classes
  confluent-kafka defines (in its top level, ``admin`` and ``schema_registry``), less
  names governed_kafka gives its own classes; one is named by importing it from the
  border (``from ._kafka import Message``) or by reading it as an attribute of the
  border module or of ``confluent_kafka`` (``_kafka.Message``).
- **No import cycle.** The graph of imports between governed_kafka modules, counting
  imports inside functions, has no cycle; only imports under ``if TYPE_CHECKING:`` are
  left out (they never run).
- **No module over 800 lines.**
- **The asyncio clients use the sync ones through package-public names only.** In the
  asyncio modules (``aio.py`` and ``_aio_*.py``): no name starting with ``_`` is
  imported from another governed_kafka module; no attribute ``x._name`` is read or
  written unless ``x`` is ``self`` or ``cls`` and ``_name`` is defined in that same
  module (assigned to ``self``/``cls`` there, or defined in one of its class bodies);
  and no class subclasses a class of another governed_kafka module (extension is by
  composition and the extension points the sync modules document). No other module
  imports an asyncio module.
- **The offset book is the only writer of offsets.** Outside ``governed_kafka._offsets``
  no module assigns the ``pending``, ``done``, ``position`` or ``committed`` attribute of
  an object other than ``self``, nor calls a method that changes an object's ``pending``
  or ``done`` (``append``, ``popleft``, ``add`` ...).
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).parent.parent / "src" / "governed_kafka"
PACKAGE = "governed_kafka"

#: The longest a module may grow.
MAX_LINES = 800

#: Where confluent-kafka's classes live (``cimpl`` is its C extension).
_CONFLUENT_ROOTS = {"confluent_kafka", "cimpl"}


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__``)."""
    found = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _tree(name: str) -> ast.Module:
    return ast.parse(MODULES[name].read_text(encoding="utf-8"), filename=str(MODULES[name]))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(node: ast.AST, *, type_checking: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement below ``node``; those under ``if TYPE_CHECKING:`` only when
    ``type_checking``."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            if type_checking:
                yield from _imports(child, type_checking=True)
            for orelse in child.orelse:
                yield from _imports(orelse, type_checking=type_checking)
            continue
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child
        yield from _imports(child, type_checking=type_checking)


def _absolute(module: str, node: ast.ImportFrom) -> str:
    """The module an ``ImportFrom`` reads from, made absolute."""
    if not node.level:
        return node.module or ""
    is_package = MODULES[module].name == "__init__.py"
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    """The governed_kafka modules an import statement executes."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name.split(".")[0] == PACKAGE:
                yield alias.name
        return
    source = _absolute(module, node)
    if source.split(".")[0] != PACKAGE:
        return
    for alias in node.names:
        if f"{source}.{alias.name}" in MODULES:
            yield f"{source}.{alias.name}"  # a submodule: its package is imported already
        else:
            yield source


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module in MODULES:
        edges = graph.setdefault(module, set())
        for node in _imports(_tree(module), type_checking=False):
            edges.update(t for t in _targets(module, node) if t in MODULES and t != module)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _in_border(module: str) -> bool:
    return module == f"{PACKAGE}._kafka" or module.startswith(f"{PACKAGE}._kafka.")


def _confluent_types() -> set[str]:
    """The classes confluent-kafka defines (not those it imports), less governed_kafka's own."""
    names: set[str] = set()
    for name in ("confluent_kafka", "confluent_kafka.admin", "confluent_kafka.schema_registry"):
        module = importlib.import_module(name)
        names.update(
            n
            for n, value in vars(module).items()
            if isinstance(value, type)
            and value.__module__.split(".")[0] in {"confluent_kafka", "cimpl"}
        )
    own = {
        node.name
        for module in MODULES
        for node in ast.walk(_tree(module))
        if isinstance(node, ast.ClassDef)
    }
    return names - own


def _border_aliases(module: str, tree: ast.Module) -> set[str]:
    """Names under which ``module`` binds the border module itself."""
    aliases = set()
    for node in _imports(tree, type_checking=True):
        if isinstance(node, ast.Import):
            aliases.update(a.asname for a in node.names if a.asname and _in_border(a.name))
        else:
            source = _absolute(module, node)
            aliases.update(
                alias.asname or alias.name
                for alias in node.names
                if _in_border(f"{source}.{alias.name}")
            )
    return aliases


def test_only_the_border_imports_confluent_kafka_or_names_its_types() -> None:
    """No module outside governed_kafka._kafka imports confluent_kafka or names its classes."""
    confluent = _confluent_types()
    assert {"KafkaException", "Message", "TopicPartition", "SchemaRegistryClient"} <= confluent
    leaks = []
    for module in MODULES:
        if _in_border(module):
            continue
        tree = _tree(module)
        for node in _imports(tree, type_checking=True):
            if isinstance(node, ast.Import):
                leaks += [
                    f"{module}:{node.lineno} imports {a.name}"
                    for a in node.names
                    if a.name.split(".")[0] == "confluent_kafka"
                ]
                continue
            source = _absolute(module, node)
            if source.split(".")[0] == "confluent_kafka":
                leaks.append(f"{module}:{node.lineno} imports {source}")
            elif _in_border(source):
                leaks += [
                    f"{module}:{node.lineno} imports {source}.{a.name}"
                    for a in node.names
                    if a.name in confluent
                ]
        border = _border_aliases(module, tree)
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Attribute) and node.attr in confluent):
                continue
            root = node.value
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name) and (root.id in border or root.id == "confluent_kafka"):
                leaks.append(f"{module}:{node.lineno} names {root.id}...{node.attr}")
    assert leaks == []


def test_no_import_cycle() -> None:
    """Imports between the package's modules, inside functions too, form no cycle."""
    graph = _graph()
    assert f"{PACKAGE}.consumer" in graph
    assert _cycles(graph) == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_is_longer_than_800_lines(module: str) -> None:
    """Each module stays short enough to read as one concept."""
    lines = len(MODULES[module].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{module} has {lines} lines"


def _aio_modules() -> list[str]:
    return [m for m in MODULES if m.split(".")[-1] == "aio" or m.split(".")[-1].startswith("_aio_")]


def _own_private_names(tree: ast.Module) -> set[str]:
    """Underscore names a module defines for its own objects: assigned to ``self``/``cls``
    attributes, or defined in one of its class bodies."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    names.add(item.name)
                elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    names.add(item.target.id)
                elif isinstance(item, ast.Assign):
                    names.update(t.id for t in item.targets if isinstance(t, ast.Name))
            for item in node.body:
                if isinstance(item, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == "__slots__" for t in item.targets
                ):
                    names.update(
                        e.value
                        for e in ast.walk(item.value)
                        if isinstance(e, ast.Constant) and isinstance(e.value, str)
                    )
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            targets = [node.target]
        for target in targets:
            for part in ast.walk(target):
                if (
                    isinstance(part, ast.Attribute)
                    and isinstance(part.value, ast.Name)
                    and part.value.id in {"self", "cls"}
                ):
                    names.add(part.attr)
    return {n for n in names if n.startswith("_")}


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def test_the_asyncio_clients_reach_into_no_private_member_of_another_module() -> None:
    """The asyncio modules use other modules' package-public names only, by composition."""
    aio = _aio_modules()
    assert f"{PACKAGE}._aio_producer" in aio
    assert f"{PACKAGE}._aio_consumer" in aio
    problems = []
    for module in aio:
        tree = _tree(module)
        own = _own_private_names(tree)
        imported: set[str] = set()  # names bound to governed_kafka modules or their names
        for node in _imports(tree, type_checking=True):
            if not isinstance(node, ast.ImportFrom):
                continue
            source = _absolute(module, node)
            if source.split(".")[0] != PACKAGE:
                continue
            for alias in node.names:
                if _private(alias.name) and f"{source}.{alias.name}" not in MODULES:
                    problems.append(f"{module}:{node.lineno} imports {source}.{alias.name}")
                imported.add(alias.asname or alias.name)
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _private(node.attr):
                owner = node.value
                mine = isinstance(owner, ast.Name) and owner.id in {"self", "cls"}
                if not (mine and node.attr in own):
                    problems.append(f"{module}:{node.lineno} uses .{node.attr}")
            if isinstance(node, ast.ClassDef):
                for base in node.bases:
                    root = base
                    while isinstance(root, ast.Attribute):
                        root = root.value
                    if isinstance(root, ast.Name) and root.id in imported:
                        problems.append(f"{module}:{node.lineno} {node.name} subclasses {root.id}")
    assert problems == []


def test_no_sync_module_imports_an_asyncio_module() -> None:
    """The sync clients know nothing of the asyncio ones: the dependency goes one way."""
    aio = set(_aio_modules())
    graph = _graph()
    for module in MODULES:
        for node in _imports(_tree(module), type_checking=True):
            graph[module].update(t for t in _targets(module, node) if t in MODULES)
    users = sorted(
        f"{module} -> {target}"
        for module, targets in graph.items()
        if module not in aio and module != PACKAGE
        for target in targets & aio
    )
    assert users == []


#: The fields of ``PartitionOffsets`` that only the offset book writes.
_OFFSET_FIELDS = {"pending", "done", "position", "committed"}

#: Methods that change a deque or a set.
_MUTATORS = {
    "append",
    "appendleft",
    "pop",
    "popleft",
    "add",
    "discard",
    "remove",
    "clear",
    "extend",
}


def test_only_the_offset_book_writes_offsets() -> None:
    """No module but governed_kafka._offsets changes what a partition's offsets say."""
    writes = []
    for module in MODULES:
        if module == f"{PACKAGE}._offsets":
            continue
        for node in ast.walk(_tree(module)):
            targets: list[ast.expr] = []
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
                targets = [node.target]
            for target in targets:
                if (
                    isinstance(target, ast.Attribute)
                    and target.attr in _OFFSET_FIELDS
                    and not (isinstance(target.value, ast.Name) and target.value.id == "self")
                ):
                    writes.append(f"{module}:{node.lineno} assigns .{target.attr}")
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in _MUTATORS
                and isinstance(node.func.value, ast.Attribute)
                and node.func.value.attr in {"pending", "done"}
            ):
                writes.append(
                    f"{module}:{node.lineno} calls .{node.func.value.attr}.{node.func.attr}"
                )
    assert writes == []
