"""Validation of Python values against a parsed Avro schema, in two halves.

fastavro's writer is permissive: it truncates ``1.5`` into a ``long``, writes ``"no"``
as ``true``, writes a 40-bit number into an ``int`` and drops dict keys the schema does
not know. So every value is checked here before fastavro sees it:

- :func:`compile_check` turns a schema into a predicate, generated as straight-line
  Python source once per schema (as attrs generates ``__init__``), because it runs on
  every send and must cost a fraction of the encoding itself;
- :func:`explain` walks the schema plainly and says what is wrong and where
  (``items[2].price_cents``); it runs only after the predicate said no.

Both follow the same rules; the property tests hold them to it.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import itertools
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final

__all__ = [
    "PRIMITIVES",
    "Explainer",
    "Problem",
    "branch_name",
    "compile_check",
    "compile_tagger",
    "describe",
    "explain",
    "kind_of",
    "named_types",
]

Schema = Any  # a fastavro-parsed schema: str, dict or list

Problem = tuple[str, str]  # (field path, what is wrong)

INT_MIN: Final = -(2**31)
INT_MAX: Final = 2**31 - 1
LONG_MIN: Final = -(2**63)
LONG_MAX: Final = 2**63 - 1
#: Largest finite float32 and float64: a number beyond either would be written as infinity.
FLOAT_MAX: Final = 3.4028234663852886e38
DOUBLE_MAX: Final = 1.7976931348623157e308

#: Avro's primitive type names.
PRIMITIVES: Final = frozenset(
    {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
)

#: Logical types whose Python value fastavro converts on write, by underlying type.
_LOGICAL_CLASSES: Final[dict[str, tuple[type, ...]]] = {
    "timestamp-millis": (_dt.datetime,),
    "timestamp-micros": (_dt.datetime,),
    "local-timestamp-millis": (_dt.datetime,),
    "local-timestamp-micros": (_dt.datetime,),
    "date": (_dt.date,),
    "time-millis": (_dt.time,),
    "time-micros": (_dt.time,),
    "decimal": (decimal.Decimal,),
    "uuid": (uuid.UUID,),
}


def named_types(schema: Schema) -> dict[str, dict[str, Any]]:
    """Every named type (record, enum, fixed) a parsed schema defines, by full name."""
    names: dict[str, dict[str, Any]] = {}

    def walk(node: Schema) -> None:
        if isinstance(node, list):
            for branch in node:
                walk(branch)
        elif isinstance(node, dict):
            kind = node.get("type")
            if kind in {"record", "error", "enum", "fixed"}:
                if node["name"] in names:
                    return
                names[node["name"]] = node
                for field in node.get("fields", ()):
                    walk(field["type"])
            elif kind == "array":
                walk(node["items"])
            elif kind == "map":
                walk(node["values"])
            elif isinstance(kind, (dict, list)):
                walk(kind)

    walk(schema)
    return names


def kind_of(schema: Schema, names: Mapping[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """The type name of ``schema`` and its definition, references resolved."""
    if isinstance(schema, list):
        return "union", {}
    if isinstance(schema, str):
        if schema in PRIMITIVES:
            return schema, {}
        node = names[schema]
        return node["type"], node
    kind = schema["type"]
    if isinstance(kind, (dict, list)) or (isinstance(kind, str) and kind in names):
        return kind_of(kind, names)
    return ("record" if kind == "error" else kind), schema


def branch_name(schema: Schema, names: Mapping[str, dict[str, Any]]) -> str:
    """How a union branch is named: a named type's full name, else its type name."""
    kind, node = kind_of(schema, names)
    return str(node.get("name", kind))


def describe(schema: Schema, names: Mapping[str, dict[str, Any]]) -> str:
    """A short human name for a schema: ``long``, ``enum payments.Currency``, ``[null, string]``."""
    if isinstance(schema, list):
        return "[" + ", ".join(branch_name(b, names) for b in schema) + "]"
    kind, node = kind_of(schema, names)
    logical = node.get("logicalType") if isinstance(node, dict) else None
    if isinstance(schema, dict) and logical is None:
        logical = schema.get("logicalType")
    if kind in {"record", "enum", "fixed"}:
        return f"{kind} {node['name']}"
    if kind == "array":
        return f"array of {describe(node['items'], names)}"
    if kind == "map":
        return f"map of {describe(node['values'], names)}"
    return f"{kind} ({logical})" if logical else kind


def _logical(schema: Schema, node: Mapping[str, Any]) -> str | None:
    if isinstance(schema, dict) and "logicalType" in schema:
        return str(schema["logicalType"])
    logical = node.get("logicalType") if node else None
    return None if logical is None else str(logical)


# --------------------------------------------------------------------------- predicate


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


MISSING: Final = _Missing()


#: Checks of the types that need no helper function; ``{v}`` is the value.
_SCALAR_CHECKS: Final = {
    "null": "{v} is None",
    "boolean": "type({v}) is bool",
    "int": f"(type({{v}}) is int and {INT_MIN} <= {{v}} <= {INT_MAX})",
    "long": f"(type({{v}}) is int and {LONG_MIN} <= {{v}} <= {LONG_MAX})",
    # NaN and the infinities given as such are floats; a finite number too large is not.
    "float": (
        f"((type({{v}}) is float and (-{FLOAT_MAX!r} <= {{v}} <= {FLOAT_MAX!r} "
        f"or {{v}} != {{v}} or {{v}} in _INFINITIES)) "
        f"or (type({{v}}) is int and -{FLOAT_MAX!r} <= {{v}} <= {FLOAT_MAX!r}))"
    ),
    "double": (
        f"(type({{v}}) is float or (type({{v}}) is int and -{DOUBLE_MAX!r} <= {{v}} <= "
        f"{DOUBLE_MAX!r}))"
    ),
    "string": "type({v}) is str",
    "bytes": "type({v}) in _BYTES",
}


class _Compiler:
    """Generates the source of one predicate per record, array, map and union."""

    def __init__(self, names: Mapping[str, dict[str, Any]]) -> None:
        self.names = names
        self.namespace: dict[str, Any] = {
            "_MISSING": MISSING,
            "_datetime": _dt.datetime,
            "_date": _dt.date,
            "_time": _dt.time,
            "_Decimal": decimal.Decimal,
            "_UUID": uuid.UUID,
            "_NUMBER": (int, float),
            "_INFINITIES": (float("inf"), float("-inf")),
            "_BYTES": (bytes, bytearray),
        }
        self.functions: list[str] = []
        self.records: dict[str, str] = {}
        self.counter = itertools.count()

    def constant(self, value: object) -> str:
        name = f"_c{next(self.counter)}"
        self.namespace[name] = value
        return name

    def expr(self, schema: Schema, var: str) -> str:
        """A Python expression that is true when ``var`` fits ``schema``."""
        kind, node = kind_of(schema, self.names)
        logical = _logical(schema, node)
        base = self.base_expr(schema, kind, node, var)
        classes = _LOGICAL_CLASSES.get(logical or "")
        if classes is None or (logical == "decimal" and kind not in {"bytes", "fixed"}):
            return base
        # Logical types also take the Python class fastavro converts from.
        if logical == "date":
            check = f"(type({var}) is _date or isinstance({var}, _date))"
        else:
            check = f"isinstance({var}, {self.constant(classes)})"
        return f"({base} or {check})"

    def base_expr(self, schema: Schema, kind: str, node: dict[str, Any], var: str) -> str:
        template = _SCALAR_CHECKS.get(kind)
        if template is not None:
            return template.format(v=var)
        if kind == "union":
            return "(" + " or ".join(self.expr(b, var) for b in schema) + ")"
        build: Callable[[dict[str, Any], str], str] = getattr(self, f"_{kind}_expr")
        return build(node, var)

    def _fixed_expr(self, node: dict[str, Any], var: str) -> str:
        return f"(type({var}) in _BYTES and len({var}) == {int(node['size'])})"

    def _enum_expr(self, node: dict[str, Any], var: str) -> str:
        symbols = self.constant(frozenset(node["symbols"]))
        return f"(type({var}) is str and {var} in {symbols})"

    def _record_expr(self, node: dict[str, Any], var: str) -> str:
        return f"{self.record(node)}({var})"

    def _array_expr(self, node: dict[str, Any], var: str) -> str:
        return f"(type({var}) is list and {self.array(node)}({var}))"

    def _map_expr(self, node: dict[str, Any], var: str) -> str:
        return f"(type({var}) is dict and {self.map(node)}({var}))"

    def record(self, node: dict[str, Any]) -> str:
        name = node["name"]
        if name in self.records:
            return self.records[name]
        func = f"_record{next(self.counter)}"
        self.records[name] = func  # before the body: records may refer to themselves
        fields = node["fields"]
        keys = self.constant(frozenset(f["name"] for f in fields))
        # With every field required and present, no key is unknown iff the sizes match,
        # which is cheaper to ask than a subset test.
        all_required = not any("default" in f for f in fields)
        lines = [f"def {func}(v):", "    if type(v) is not dict:", "        return False"]
        if not all_required:
            lines += [f"    if not v.keys() <= {keys}:", "        return False"]
        for field in node["fields"]:
            key = repr(field["name"])
            check = self.expr(field["type"], "x")
            if "default" in field:
                lines += [f"    if {key} in v:", f"        x = v[{key}]"]
                lines += [f"        if not {check}:", "            return False"]
            else:
                lines += [f"    x = v.get({key}, _MISSING)", f"    if not {check}:"]
                lines += ["        return False"]
        lines.append(f"    return len(v) == {len(fields)}" if all_required else "    return True")
        self.functions.append("\n".join(lines))
        return func

    def array(self, node: dict[str, Any]) -> str:
        func = f"_array{next(self.counter)}"
        check = self.expr(node["items"], "x")
        self.functions.append(
            f"def {func}(v):\n    for x in v:\n        if not {check}:\n"
            "            return False\n    return True"
        )
        return func

    def map(self, node: dict[str, Any]) -> str:
        func = f"_map{next(self.counter)}"
        check = self.expr(node["values"], "x")
        self.functions.append(
            f"def {func}(v):\n    for k, x in v.items():\n"
            f"        if type(k) is not str or not {check}:\n"
            "            return False\n    return True"
        )
        return func

    def build(self, schema: Schema) -> Callable[[object], bool]:
        top = self.expr(schema, "v")
        entry = "_check"
        if kind_of(schema, self.names)[0] == "record" and _logical(schema, {}) is None:
            entry = top.partition("(")[0]  # the record's own function: one call less
        else:
            self.functions.append(f"def _check(v):\n    return {top}")
        source = "\n\n".join(self.functions)
        code = compile(source, "<governed_kafka avro check>", "exec")
        exec(code, self.namespace)  # noqa: S102 - source generated above from a parsed schema
        check: Callable[[object], bool] = self.namespace[entry]
        return check


def compile_check(
    schema: Schema, names: Mapping[str, dict[str, Any]] | None = None
) -> Callable[[object], bool]:
    """Return a predicate: does a Python value fit ``schema`` exactly?

    Exactly means: every field without a default is present, no dict key is unknown to
    its record, numbers fit their Avro width, ``bool`` is not a number, enum symbols and
    union branches are the declared ones.
    """
    return _Compiler(named_types(schema) if names is None else names).build(schema)


# --------------------------------------------------------------------------- explanation


def _utf8_ok(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _show(value: object) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


class Explainer:
    """Finds what is wrong with values of one schema; keeps its compiled checks."""

    def __init__(self, names: Mapping[str, dict[str, Any]]) -> None:
        self.names = names
        self.checks: dict[int, Callable[[object], bool]] = {}

    def fits(self, schema: Schema, value: object) -> bool:
        check = self.checks.get(id(schema))
        if check is None:
            check = self.checks[id(schema)] = compile_check(schema, self.names)
        return check(value)

    def first(self, schema: Schema, value: object, path: str) -> Problem | None:
        return next(self.problems(schema, value, path), None)

    def problems(  # noqa: PLR0912 - one branch per Avro type, read top to bottom
        self, schema: Schema, value: object, path: str
    ) -> Iterator[Problem]:
        if self.fits(schema, value):
            return
        kind, node = kind_of(schema, self.names)
        expected = describe(schema, self.names)
        where = path or "<value>"
        if kind == "union":
            yield from self.union(schema, value, path)
        elif value is None:
            yield where, f"null is not allowed here: expected {expected}"
        elif value is MISSING:
            yield where, f"required field is missing (it has no default): expected {expected}"
        elif kind == "record":
            yield from self.record(node, value, path)
        elif kind == "array" and type(value) is list:
            for index, item in enumerate(value):
                yield from self.problems(node["items"], item, f"{path}[{index}]")
        elif kind == "map" and type(value) is dict:
            for key, item in value.items():
                if type(key) is not str:
                    yield where, f"map keys must be str, got {_show(key)}"
                else:
                    yield from self.problems(node["values"], item, f"{path}[{key!r}]")
        elif kind == "enum" and type(value) is str:
            symbols = ", ".join(node["symbols"])
            yield where, f"{value!r} is not a symbol of enum {node['name']} ({symbols})"
        elif kind in {"int", "long"} and type(value) is int:
            low, high = (INT_MIN, INT_MAX) if kind == "int" else (LONG_MIN, LONG_MAX)
            yield where, f"{value} is out of range for {kind} ({low}..{high})"
        elif kind in {"float", "double"} and type(value) in {int, float}:
            largest = FLOAT_MAX if kind == "float" else DOUBLE_MAX
            shown = (
                f"{value:.6g}"
                if type(value) is float
                else f"an integer of {len(str(value))} digits"
            )
            yield (
                where,
                f"{shown} is out of range for {kind} (largest finite: {largest:.8g}; it would "
                "be written as infinity)",
            )
        elif kind == "fixed" and type(value) in {bytes, bytearray}:
            size = node["size"]
            yield where, f"expected {size} bytes for {expected}, got {len(value)}"  # type: ignore[arg-type]
        else:
            yield where, f"expected {expected}, got {_show(value)}"

    def unencodable(self, schema: Schema, value: object, path: str) -> str | None:
        """The path of the first str in a fitting ``value`` that cannot be UTF-8, or ``None``."""
        stack = [(schema, value, path)]
        while stack:
            schema, value, path = stack.pop()
            kind, node = kind_of(schema, self.names)
            if kind == "union":
                branch = next((b for b in schema if self.fits(b, value)), None)
                if branch is not None:
                    stack.append((branch, value, path))
            elif type(value) is str:
                if not _utf8_ok(value):
                    return path or "<value>"
            else:
                stack.extend(reversed(list(self._children(kind, node, value, path))))
        return None

    @staticmethod
    def _children(
        kind: str, node: dict[str, Any], value: object, path: str
    ) -> Iterator[tuple[Schema, object, str]]:
        """The parts of a record, array or map value, with their schemas and paths."""
        if kind == "record" and type(value) is dict:
            for field in node["fields"]:
                if field["name"] in value:
                    name = field["name"]
                    yield field["type"], value[name], _join(path, name)
        elif kind == "array" and type(value) is list:
            for index, item in enumerate(value):
                yield node["items"], item, f"{path}[{index}]"
        elif kind == "map" and type(value) is dict:
            for key, item in value.items():
                yield "string", key, path
                yield node["values"], item, f"{path}[{key!r}]"

    def record(self, node: dict[str, Any], value: object, path: str) -> Iterator[Problem]:
        where = path or "<value>"
        if type(value) is not dict:
            yield where, f"expected record {node['name']} (a dict), got {_show(value)}"
            return
        known = {f["name"] for f in node["fields"]}
        for key in value:
            if key not in known:
                yield (
                    _join(path, str(key)),
                    f"unknown field {key!r}: record {node['name']} has no such field "
                    f"(fields: {', '.join(sorted(known))})",
                )
        for field in node["fields"]:
            name = field["name"]
            if name in value:
                yield from self.problems(field["type"], value[name], _join(path, name))
            elif "default" not in field:
                yield from self.problems(field["type"], MISSING, _join(path, name))

    def union(self, schema: list[Any], value: object, path: str) -> Iterator[Problem]:
        where = path or "<value>"
        if value is MISSING:
            expected = describe(schema, self.names)
            yield where, f"required field is missing (it has no default): expected {expected}"
            return
        # Descend into the one branch of the value's shape, if there is just one, so that
        # the path reaches the field inside it that is wrong.
        shaped = [b for b in schema if self._same_shape(b, value)]
        if len(shaped) == 1 and kind_of(shaped[0], self.names)[0] in {"record", "array", "map"}:
            yield from self.problems(shaped[0], value, path)
            return
        if value is None:
            yield where, f"null is not allowed here: expected one of {describe(schema, self.names)}"
            return
        numeric = [b for b in schema if kind_of(b, self.names)[0] in {"float", "double"}]
        if numeric and type(value) in {int, float}:
            yield from self.problems(numeric[-1], value, path)  # the widest: out of range
            return
        yield (
            where,
            f"{_show(value)} matches no branch of union {describe(schema, self.names)}",
        )

    def _same_shape(self, schema: Schema, value: object) -> bool:
        kind = kind_of(schema, self.names)[0]
        if type(value) is dict:
            return kind in {"record", "map"}
        if type(value) is list:
            return kind == "array"
        return False


def explain(
    schema: Schema, value: object, names: Mapping[str, dict[str, Any]] | None = None
) -> Problem | None:
    """The first thing wrong with ``value`` as ``schema``: ``(field path, message)``, or None."""
    explainer = Explainer(named_types(schema) if names is None else names)
    return explainer.first(schema, value, "")


# --------------------------------------------------------------------------- union branches

Tagger = Callable[[Any], Any]


def _identity(value: Any) -> Any:
    return value


def compile_tagger(schema: Schema, names: Mapping[str, dict[str, Any]]) -> Tagger | None:
    """A function that names the branch of every ambiguous union in a checked value.

    fastavro picks a union branch by its own, looser validation: ``b""`` fits an
    ``array`` there (bytes are a sequence), so in ``["null", {"type": "array", ...},
    "bytes"]`` it writes an empty array. Wherever a union has two or more non-null
    branches, the value is rewritten into fastavro's ``(branch name, value)`` notation
    with the branch the strict check chose, so the branch written is the branch meant.
    Returns ``None`` when the schema has no such union (the common case: nothing to do).
    """
    records: dict[str, Tagger | None] = {}

    def build(node: Schema) -> Tagger | None:
        kind, definition = kind_of(node, names)
        if kind == "union":
            return union(node)
        if kind == "record":
            return record(definition)
        if kind == "array":
            items = build(definition["items"])
            return None if items is None else (lambda v: [items(x) for x in v])
        if kind == "map":
            values = build(definition["values"])
            return None if values is None else (lambda v: {k: values(x) for k, x in v.items()})
        return None

    def union(node: list[Any]) -> Tagger | None:
        branches = [
            (branch_name(b, names), compile_check(b, names), build(b) or _identity) for b in node
        ]
        ambiguous = sum(kind_of(b, names)[0] != "null" for b in node) > 1
        nested = any(t is not _identity for _, _, t in branches)
        if not ambiguous and not nested:
            return None
        # fastavro validates an untagged union value against each branch itself, and its
        # validation does not know the (branch, value) notation of unions further in: a
        # union whose branches are tagged inside is tagged too.
        named = ambiguous or nested

        def tag(value: Any) -> Any:
            for name, check, inner in branches:
                if check(value):
                    return (name, inner(value)) if named else inner(value)
            return value

        return tag

    def record(definition: dict[str, Any]) -> Tagger | None:
        name = definition["name"]
        if name in records:  # recursive reference: resolve when called
            return lambda v: (records[name] or _identity)(v)  # noqa: PLW0108 - not built yet
        records[name] = None
        fields = [(f["name"], build(f["type"])) for f in definition["fields"]]
        taggers = [(n, t) for n, t in fields if t is not None]
        if not taggers:
            return None

        def tag(value: Any) -> Any:
            out = dict(value)
            for field, inner in taggers:
                if field in out:
                    out[field] = inner(out[field])
            return out

        records[name] = tag
        return tag

    return build(schema)
