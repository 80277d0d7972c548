"""What an Avro schema file and an Avro value may cost: read safely, bounded, explained.

Schema files come from a repository anyone may change, and values from a topic anyone
may write to. Three bounds keep both from crashing the process or making it work
without end:

- **nesting**: a schema nests at most :data:`MAX_DEPTH` types deep, and so does a value
  (records, arrays and maps inside each other). Only a recursive schema (a record that
  contains itself) allows deeper values, and fastavro's compiled reader and writer
  recurse on the C stack: a 5,000-byte record of a linked list would crash the process.
  Values of recursive schemas are measured before they are encoded or decoded;
- **collections of items that take no bytes** (``null``, an empty record, a ``fixed`` of
  size 0): every other item takes at least one byte, so a collection cannot hold more
  items than its record has bytes, but these can, and 10 bytes would decode to 10
  million items. At most :data:`MAX_EMPTY_ITEMS` such items are written or read per
  value;
- **what is said about a bad schema**: the schema file may be a credentials file by
  mistake (or on purpose), so :func:`schema_problem` says where (``fields[2].type``) and
  what was expected, and never repeats what the file holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final

__all__ = [
    "MAX_DEPTH",
    "MAX_EMPTY_ITEMS",
    "MAX_JSON_DEPTH",
    "TOO_DEEP",
    "TOO_MANY",
    "binary_guard",
    "has_empty_collections",
    "is_recursive",
    "json_depth_problem",
    "schema_problem",
    "value_too_deep",
]

Schema = Any  # decoded JSON, or a fastavro-parsed schema: str, dict or list

#: How deep a schema's types, and a value's records, arrays and maps, may nest.
MAX_DEPTH: Final = 64

#: How deep a schema file's JSON may nest: a type nests in at most four JSON levels
#: (a record's ``fields`` list, the field object, its ``type``, a union list).
MAX_JSON_DEPTH: Final = 4 * MAX_DEPTH

#: How many items of a type that takes no bytes one value may carry, in all its collections.
MAX_EMPTY_ITEMS: Final = 10_000

_PRIMITIVES: Final = frozenset(
    {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
)
_NAMED: Final = frozenset({"record", "error", "enum", "fixed"})

TOO_DEEP: Final = f"nested more than {MAX_DEPTH} levels deep"
TOO_MANY: Final = f"more than {MAX_EMPTY_ITEMS} items of a type that takes no bytes"


# --------------------------------------------------------------------------- schema files


def json_depth_problem(text: str) -> str | None:
    """Whether the JSON in ``text`` nests deeper than a schema may, read in one pass."""
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return f"{TOO_DEEP} (its JSON nests more than {MAX_JSON_DEPTH} levels)"
        elif char in "]}":
            depth -= 1
    return None


class _Invalid(Exception):
    def __init__(self, path: str, expected: str) -> None:
        super().__init__(path, expected)
        self.path = path
        self.expected = expected


def _at(path: str, step: str) -> str:
    if not path:
        return step.lstrip(".")
    return f"{path}{step}"


class _SchemaWalk:
    """Checks the shape of a decoded schema, depth first, as fastavro reads it."""

    def __init__(self) -> None:
        self.defined: set[str] = set()

    def name(self, node: Mapping[str, Any], path: str, namespace: str | None) -> str | None:
        name = node.get("name")
        if not isinstance(name, str) or not name:
            raise _Invalid(_at(path, ".name"), "a named type needs a non-empty string 'name'")
        space = node.get("namespace", namespace)
        if space is not None and not isinstance(space, str):
            raise _Invalid(_at(path, ".namespace"), "expected a string")
        full = name if "." in name or not space else f"{space}.{name}"
        if full in self.defined:
            raise _Invalid(_at(path, ".name"), "a type of this name is already defined")
        self.defined.add(full)
        return full.rpartition(".")[0] or None

    def reference(self, name: str, namespace: str | None) -> bool:
        if name in _PRIMITIVES or name in self.defined:
            return True
        return namespace is not None and f"{namespace}.{name}" in self.defined

    def walk(self, node: Schema, path: str, namespace: str | None, depth: int) -> None:
        if isinstance(node, str):
            if not self.reference(node, namespace):
                raise _Invalid(
                    path or "the top level",
                    "expected a primitive type name or the name of a type defined before it",
                )
        elif isinstance(node, list):
            for index, branch in enumerate(node):
                if isinstance(branch, list):
                    raise _Invalid(_at(path, f"[{index}]"), "a union may not hold a union")
                self.walk(branch, _at(path, f"[{index}]"), namespace, depth)
        elif isinstance(node, dict):
            self.complex(node, path, namespace, depth)
        else:
            raise _Invalid(
                path or "the top level", "expected a type name, a schema object or a union list"
            )

    def complex(
        self, node: Mapping[str, Any], path: str, namespace: str | None, depth: int
    ) -> None:
        if depth > MAX_DEPTH:
            raise _Invalid("", TOO_DEEP)
        if "type" not in node:
            raise _Invalid(path or "the top level", "a schema object needs a 'type'")
        kind = node["type"]
        if isinstance(kind, (dict, list)):
            self.walk(kind, _at(path, ".type"), namespace, depth)
            return
        if not isinstance(kind, str):
            raise _Invalid(_at(path, ".type"), "expected a type name")
        if kind in _NAMED:
            inner = self.name(node, path, namespace)
            if kind == "enum":
                self.enum(node, path)
            elif kind == "fixed":
                size = node.get("size")
                if isinstance(size, bool) or not isinstance(size, int) or size < 0:
                    raise _Invalid(_at(path, ".size"), "expected a whole number >= 0")
            else:
                self.fields(node, path, inner, depth)
        elif kind in {"array", "map"}:
            key = "items" if kind == "array" else "values"
            if key not in node:
                raise _Invalid(path or "the top level", f"an {kind} needs {key!r}")
            self.walk(node[key], _at(path, f".{key}"), namespace, depth + 1)
        elif not self.reference(kind, namespace):
            raise _Invalid(
                _at(path, ".type"),
                "expected a primitive type name or the name of a type defined before it",
            )

    def enum(self, node: Mapping[str, Any], path: str) -> None:
        symbols = node.get("symbols")
        if (
            not isinstance(symbols, list)
            or not all(isinstance(s, str) for s in symbols)
            or len(set(symbols)) != len(symbols)
        ):
            raise _Invalid(_at(path, ".symbols"), "expected a list of distinct strings")

    def fields(self, node: Mapping[str, Any], path: str, namespace: str | None, depth: int) -> None:
        fields = node.get("fields")
        if not isinstance(fields, list):
            raise _Invalid(_at(path, ".fields"), "expected a list of field objects")
        for index, field in enumerate(fields):
            where = _at(path, f".fields[{index}]")
            if not isinstance(field, dict):
                raise _Invalid(where, "expected a field object")
            if not isinstance(field.get("name"), str):
                raise _Invalid(_at(where, ".name"), "a field needs a string 'name'")
            if "type" not in field:
                raise _Invalid(where, "a field needs a 'type'")
            self.walk(field["type"], _at(where, ".type"), namespace, depth + 1)
            if "default" in field and not _default_fits(field["type"], field["default"]):
                raise _Invalid(_at(where, ".default"), "the default does not fit the field's type")


_DEFAULT_CHECKS: Final[dict[str, Callable[[object], bool]]] = {
    "null": lambda v: v is None,
    "boolean": lambda v: isinstance(v, bool),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "long": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "double": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "bytes": lambda v: isinstance(v, str),
    "string": lambda v: isinstance(v, str),
    "fixed": lambda v: isinstance(v, str),
    "enum": lambda v: isinstance(v, str),
    "array": lambda v: isinstance(v, list),
    "map": lambda v: isinstance(v, dict),
    "record": lambda v: isinstance(v, dict),
    "error": lambda v: isinstance(v, dict),
}


def _default_fits(schema: Schema, default: object) -> bool:
    """Whether a field default has the JSON shape of its type (a union's: its first branch)."""
    if isinstance(schema, list):
        return not schema or _default_fits(schema[0], default)
    kind = schema.get("type") if isinstance(schema, dict) else schema
    if isinstance(kind, (dict, list)):
        return _default_fits(kind, default)
    check = _DEFAULT_CHECKS.get(kind) if isinstance(kind, str) else None
    return True if check is None else check(default)  # a named reference: fastavro decides


def schema_problem(schema: Schema) -> str | None:
    """Where a decoded schema is malformed and what was expected there, or ``None``.

    Never says what the schema holds: only the path (``at fields[2].type: ...``) and the
    expectation. ``None`` means the shape is right as far as this walk can tell.
    """
    try:
        _SchemaWalk().walk(schema, "", None, 1)
    except _Invalid as invalid:
        if not invalid.path:
            return invalid.expected
        return f"at {invalid.path}: {invalid.expected}"
    return None


# --------------------------------------------------------------------------- parsed schemas


def _references(node: Schema, names: Mapping[str, Any], found: set[str]) -> None:
    """The named types ``node`` refers to or defines, not descending into named types."""
    if isinstance(node, list):
        for branch in node:
            _references(branch, names, found)
    elif isinstance(node, str):
        if node in names:
            found.add(node)
    elif isinstance(node, dict):
        kind = node.get("type")
        if kind in _NAMED:
            found.add(node["name"])
        elif kind == "array":
            _references(node["items"], names, found)
        elif kind == "map":
            _references(node["values"], names, found)
        else:
            _references(kind, names, found)


def is_recursive(schema: Schema, names: Mapping[str, dict[str, Any]]) -> bool:
    """Whether some named type of ``schema`` contains itself (a list, a tree)."""
    edges: dict[str, set[str]] = {}
    for name, node in names.items():
        targets: set[str] = set()
        for field in node.get("fields", ()):
            _references(field["type"], names, targets)
        edges[name] = targets
    state: dict[str, int] = {}  # 1: on the path, 2: done
    for start, first in edges.items():
        if state.get(start):
            continue
        stack: list[tuple[str, Iterator[str]]] = [(start, iter(first))]
        state[start] = 1
        while stack:
            name, pending = stack[-1]
            target = next(pending, None)
            if target is None:
                state[name] = 2
                stack.pop()
            elif state.get(target) == 1:
                return True
            elif not state.get(target):
                state[target] = 1
                stack.append((target, iter(edges.get(target, ()))))
    return False


def _resolve(node: Schema, names: Mapping[str, dict[str, Any]]) -> Schema:
    while isinstance(node, str) and node in names:
        node = names[node]
    while isinstance(node, dict) and isinstance(node.get("type"), (dict, list, str)):
        kind = node["type"]
        if isinstance(kind, str) and kind not in names:
            break
        node = names[kind] if isinstance(kind, str) else kind
    return node


def _kind(node: Schema) -> str:
    if isinstance(node, list):
        return "union"
    if isinstance(node, str):
        return node
    kind = node["type"]
    return "record" if kind == "error" else str(kind)


def _zero_size(node: Schema, names: Mapping[str, dict[str, Any]], seen: frozenset[str]) -> bool:
    node = _resolve(node, names)
    kind = _kind(node)
    if kind == "null":
        return True
    if kind == "fixed":
        return int(node["size"]) == 0
    if kind == "record":
        if node["name"] in seen:
            return False  # a record inside itself is never empty: a union separates them
        inner = seen | {node["name"]}
        return all(_zero_size(f["type"], names, inner) for f in node["fields"])
    return False


def has_empty_collections(schema: Schema, names: Mapping[str, dict[str, Any]]) -> bool:
    """Whether some array of ``schema`` holds items that take no bytes."""
    stack = [schema]
    seen: set[int] = set()
    while stack:
        node = _resolve(stack.pop(), names)
        if id(node) in seen:
            continue
        seen.add(id(node))
        kind = _kind(node)
        if kind == "union":
            stack.extend(node)
        elif kind == "record":
            stack.extend(f["type"] for f in node["fields"])
        elif kind == "array":
            if _zero_size(node["items"], names, frozenset()):
                return True
            stack.append(node["items"])
        elif kind == "map":
            stack.append(node["values"])
    return False


# --------------------------------------------------------------------------- values


def value_too_deep(value: object) -> bool:
    """Whether ``value`` nests dicts, lists and tuples more than :data:`MAX_DEPTH` deep."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            continue
        if depth > MAX_DEPTH:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


class _Stop(Exception):
    """The bytes broke a bound (``reason``), or ended early (``reason`` None: not ours to say)."""

    def __init__(self, reason: str | None) -> None:
        super().__init__(reason)
        self.reason = reason


_FIXED_SIZES: Final = {"null": 0, "boolean": 1, "float": 4, "double": 8}


class _Scan:
    """Walks Avro binary data by its writer schema, counting depth and empty items."""

    def __init__(self, names: Mapping[str, dict[str, Any]], data: bytes, offset: int) -> None:
        self.names = names
        self.data = data
        self.pos = offset
        self.empty = 0

    def long(self) -> int:
        data, pos, shift, result = self.data, self.pos, 0, 0
        while True:
            if pos >= len(data) or shift > 63:
                raise _Stop(None)
            byte = data[pos]
            pos += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                break
            shift += 7
        self.pos = pos
        return (result >> 1) ^ -(result & 1)

    def skip(self, size: int) -> None:
        if size < 0 or self.pos + size > len(self.data):
            raise _Stop(None)
        self.pos += size

    def value(self, node: Schema, depth: int) -> None:
        node = _resolve(node, self.names)
        kind = _kind(node)
        size = _FIXED_SIZES.get(kind)
        if size is not None:
            self.skip(size)
        elif kind in {"int", "long", "enum"}:
            self.long()
        elif kind in {"bytes", "string"}:
            self.skip(self.long())
        elif kind == "fixed":
            self.skip(int(node["size"]))
        elif kind == "union":
            index = self.long()
            if not 0 <= index < len(node):
                raise _Stop(None)
            self.value(node[index], depth)
        elif kind == "record":
            if depth > MAX_DEPTH:
                raise _Stop(TOO_DEEP)
            for field in node["fields"]:
                self.value(field["type"], depth + 1)
        elif kind in {"array", "map"}:
            self.blocks(node, kind, depth)

    def blocks(self, node: Mapping[str, Any], kind: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise _Stop(TOO_DEEP)
        inner = node["items"] if kind == "array" else node["values"]
        empty = kind == "array" and _zero_size(inner, self.names, frozenset())
        while True:
            count = self.long()
            if count == 0:
                return
            if count < 0:
                count = -count
                self.long()  # the block's size in bytes
            if empty:
                self.empty += count
                if self.empty > MAX_EMPTY_ITEMS:
                    raise _Stop(TOO_MANY)
                continue
            for _ in range(count):  # each item takes a byte at least: bounded by the data
                if kind == "map":
                    self.skip(self.long())
                self.value(inner, depth + 1)


def binary_guard(
    schema: Schema, names: Mapping[str, dict[str, Any]]
) -> Callable[[bytes, int], str | None] | None:
    """A check of encoded values of ``schema`` against the bounds, or ``None`` if none needs it.

    The check returns what bound the bytes at ``offset`` break, or ``None``: bytes that
    are malformed otherwise are left for the decoder to report. Only schemas that are
    recursive or hold arrays of empty items need it; for every other schema fastavro
    cannot go deeper than the schema, nor read more items than there are bytes.
    """
    if not (is_recursive(schema, names) or has_empty_collections(schema, names)):
        return None

    def check(data: bytes, offset: int) -> str | None:
        scan = _Scan(names, data, offset)
        try:
            scan.value(schema, 1)
        except _Stop as stop:
            return stop.reason
        return None

    return check
