"""JSON Schema checks compiled into plain Python, and the JSON-safety walk of a value.

:func:`compile_check` turns the common part of JSON Schema (``type``, ``properties``,
``required``, ``additionalProperties``, ``items``, ``enum`` of strings, ``const``,
numeric and length bounds, ``pattern``, ``allOf``/``anyOf``/``oneOf`` and local
``$ref``) into one closure that answers *valid and safe to encode* in a fraction of
the ``jsonschema`` library's time. It is never the judge of a refusal: a value it does
not accept is checked again by ``jsonschema`` and by :func:`first_problem`, whose
answers are the ones reported, so a check that is stricter than the library only costs
time. A schema that uses any other keyword is not compiled at all.

:func:`first_problem` finds what no JSON Schema can accept because JSON cannot carry
it: NaN and the infinities, a dict key that is not a str, bytes, tuples and other
Python objects, and values nested more than :data:`MAX_DEPTH` levels deep.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sized
from typing import Any, Final

__all__ = ["MAX_DEPTH", "Check", "compile_check", "first_problem"]

#: Deepest nesting of arrays and objects a value may have, written or read.
MAX_DEPTH: Final = 64

#: ``check(value, depth) -> bool``: whether ``value`` is valid and safe to encode.
Check = Callable[[Any, int], bool]

#: Keywords that never change whether a value is valid (with format not asserted).
_ANNOTATIONS: Final = frozenset(
    {
        "$schema",
        "$id",
        "$comment",
        "$anchor",
        "$vocabulary",
        "title",
        "description",
        "default",
        "examples",
        "deprecated",
        "readOnly",
        "writeOnly",
        "format",
        "contentEncoding",
        "contentMediaType",
        "$defs",
        "definitions",
    }
)

_COMPILED: Final = frozenset(
    {
        "type",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "enum",
        "const",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "pattern",
        "allOf",
        "anyOf",
        "oneOf",
        "$ref",
    }
)


class _NotCompiled(Exception):
    """The schema uses what the compiler leaves to the library."""


def _scalar(value: Any) -> bool:
    kind = type(value)
    if kind is str or kind is bool or kind is int or value is None:
        return True
    return kind is float and math.isfinite(value)


def safe(value: Any, depth: int) -> bool:
    """Whether ``value`` is a JSON value at most :data:`MAX_DEPTH` levels deep."""
    if _scalar(value):
        return True
    if depth >= MAX_DEPTH:
        return False
    kind = type(value)
    if kind is dict:
        return all(type(k) is str and safe(v, depth + 1) for k, v in value.items())
    if kind is list:
        return all(safe(v, depth + 1) for v in value)
    return False


def first_problem(  # noqa: PLR0911 - one return per kind of problem
    value: Any, path: tuple[str | int, ...] = (), depth: int = 0
) -> Any:
    """``(path, reason)`` of the first part of ``value`` JSON cannot carry, or ``None``."""
    kind = type(value)
    if kind is float and not math.isfinite(value):
        return path, f"{value!r} is not a JSON number (NaN and the infinities are not allowed)"
    if _scalar(value):
        if kind is str:
            try:
                value.encode()
            except UnicodeEncodeError:
                return path, "a str that cannot be UTF-8 (it holds a lone surrogate)"
        return None
    if kind not in (dict, list):
        hint = " (pre-encoded bytes are refused: give the value itself)" if kind is bytes else ""
        return path, f"a {kind.__name__} is not a JSON value{hint}"
    if depth >= MAX_DEPTH:
        return path, f"nested more than {MAX_DEPTH} arrays and objects deep"
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                return path, f"object key {key!r} is a {type(key).__name__}; JSON keys are str"
            found = first_problem(item, (*path, key), depth + 1)
            if found is not None:
                return found
        return None
    for index, item in enumerate(value):
        found = first_problem(item, (*path, index), depth + 1)
        if found is not None:
            return found
    return None


def _is_integer(value: Any) -> bool:
    kind = type(value)
    return kind is int or (kind is float and math.isfinite(value) and value.is_integer())


def _is_number(value: Any) -> bool:
    kind = type(value)
    return kind is int or (kind is float and math.isfinite(value))


_TYPES: Final[Mapping[str, Callable[[Any], bool]]] = {
    "string": lambda v: type(v) is str,
    "integer": _is_integer,
    "number": _is_number,
    "boolean": lambda v: type(v) is bool,
    "null": lambda v: v is None,
    "object": lambda v: type(v) is dict,
    "array": lambda v: type(v) is list,
}


class _Compiler:
    def __init__(self, root: Any, draft: str) -> None:
        self.root = root
        self.draft = draft
        self.refs: dict[str, Check] = {}
        self.active: set[str] = set()

    def ref(self, pointer: str) -> Check:
        if pointer in self.refs:
            return self.refs[pointer]
        if pointer in self.active or not pointer.startswith("#"):
            raise _NotCompiled  # recursive, or outside the file: the library's
        node: Any = self.root
        for raw in pointer[1:].split("/")[1:] if pointer != "#" else []:
            step = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and step in node:
                node = node[step]
            elif isinstance(node, list) and step.isdigit() and int(step) < len(node):
                node = node[int(step)]
            else:
                raise _NotCompiled
        self.active.add(pointer)
        try:
            check = self.node(node)
        finally:
            self.active.discard(pointer)
        self.refs[pointer] = check
        return check

    def node(self, schema: Any) -> Check:  # noqa: PLR0912 - one branch per keyword
        if schema is True:
            return safe
        if schema is False:
            return lambda v, d: False
        if not isinstance(schema, dict) or set(schema) - _ANNOTATIONS - _COMPILED:
            raise _NotCompiled
        if "$ref" in schema and self.draft == "7":
            # Draft 7 ignores the siblings of $ref.
            return self.ref(schema["$ref"])
        checks: list[Check] = []
        if "$ref" in schema:
            checks.append(self.ref(schema["$ref"]))
        kinds = schema.get("type")
        if kinds is not None:
            names = [kinds] if isinstance(kinds, str) else list(kinds)
            if any(n not in _TYPES for n in names):
                raise _NotCompiled
            checks.append(_type_check(tuple(_TYPES[n] for n in names)))
        if "enum" in schema:
            options = schema["enum"]
            if not isinstance(options, list) or not all(type(o) is str for o in options):
                raise _NotCompiled
            allowed = frozenset(options)
            checks.append(lambda v, d: type(v) is str and v in allowed)
        if "const" in schema:
            wanted = schema["const"]
            if type(wanted) is not str:
                raise _NotCompiled
            checks.append(lambda v, d: type(v) is str and v == wanted)
        checks += self.numbers(schema)
        checks += self.lengths(schema)
        if "pattern" in schema:
            search = re.compile(schema["pattern"]).search
            checks.append(lambda v, d: type(v) is not str or search(v) is not None)
        if any(k in schema for k in ("properties", "required", "additionalProperties")):
            checks.append(self.object(schema))
        if "items" in schema:
            if not isinstance(schema["items"], (dict, bool)):
                raise _NotCompiled  # draft 7's tuple form
            item = self.node(schema["items"])
            checks.append(
                lambda v, d: (
                    type(v) is not list or (d < MAX_DEPTH and all(item(x, d + 1) for x in v))
                )
            )
        for combinator in ("allOf", "anyOf", "oneOf"):
            if combinator in schema:
                checks.append(self.combine(combinator, schema[combinator]))
        scalar_only = kinds is not None and all(
            n in _SCALAR_TYPES for n in ([kinds] if isinstance(kinds, str) else kinds)
        )
        if not scalar_only:
            covers_dict = any(
                k in schema for k in ("properties", "required", "additionalProperties")
            )
            checks.append(_guard(covers_dict=covers_dict, covers_list="items" in schema))
        return _all(checks)

    def numbers(self, schema: Mapping[str, Any]) -> list[Check]:
        found: list[Check] = []
        for keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            if keyword in schema:
                bound = schema[keyword]
                if type(bound) not in (int, float):
                    raise _NotCompiled  # draft 4's boolean form, or no number at all
                found.append(_bound_check(keyword, bound))
        return found

    def lengths(self, schema: Mapping[str, Any]) -> list[Check]:
        found: list[Check] = []
        for keyword, kind in (
            ("minLength", str),
            ("maxLength", str),
            ("minItems", list),
            ("maxItems", list),
        ):
            if keyword in schema:
                bound = schema[keyword]
                if type(bound) is not int:
                    raise _NotCompiled
                found.append(_length_check(kind, bound, low=keyword.startswith("min")))
        return found

    def object(self, schema: Mapping[str, Any]) -> Check:
        properties = schema.get("properties", {})
        required = schema.get("required", [])
        if not isinstance(properties, dict) or not isinstance(required, list):
            raise _NotCompiled
        fields = {name: self.node(sub) for name, sub in properties.items()}
        needed = tuple(required)
        extra = schema.get("additionalProperties", True)
        rest: Check | None = None if extra is False else self.node(extra)

        def check(value: Any, depth: int) -> bool:
            if type(value) is not dict:
                return True
            if depth >= MAX_DEPTH:
                return False
            for name in needed:
                if name not in value:
                    return False
            inner = depth + 1
            for key, item in value.items():
                field = fields.get(key)
                if field is not None:
                    if not field(item, inner):
                        return False
                elif rest is None or type(key) is not str or not rest(item, inner):
                    return False
            return True

        return check

    def combine(self, combinator: str, branches: Any) -> Check:
        if not isinstance(branches, list) or not branches:
            raise _NotCompiled
        checks = tuple(self.node(b) for b in branches)
        if combinator == "allOf":
            return lambda v, d: all(c(v, d) for c in checks)
        if combinator == "anyOf":
            return lambda v, d: any(c(v, d) for c in checks)
        return lambda v, d: sum(1 for c in checks if c(v, d)) == 1


def _type_check(tests: tuple[Callable[[Any], bool], ...]) -> Check:
    if len(tests) == 1:
        test = tests[0]
        return lambda value, depth: test(value)
    return lambda value, depth: any(t(value) for t in tests)


def _bound_check(keyword: str, bound: float) -> Check:
    if keyword == "minimum":
        return lambda v, d: not _is_number(v) or v >= bound
    if keyword == "maximum":
        return lambda v, d: not _is_number(v) or v <= bound
    if keyword == "exclusiveMinimum":
        return lambda v, d: not _is_number(v) or v > bound
    return lambda v, d: not _is_number(v) or v < bound


def _length_check(kind: type[Sized], bound: int, *, low: bool) -> Check:
    if low:
        return lambda v, d: not isinstance(v, kind) or len(v) >= bound
    return lambda v, d: not isinstance(v, kind) or len(v) <= bound


_SCALAR_TYPES: Final = frozenset({"string", "integer", "number", "boolean", "null"})


def _guard(*, covers_dict: bool, covers_list: bool) -> Check:
    """What the other checks of a node leave open: that the value is JSON at all."""

    def guard(value: Any, depth: int) -> bool:
        kind = type(value)
        if kind is dict:
            return covers_dict or safe(value, depth)
        if kind is list:
            return covers_list or safe(value, depth)
        return _scalar(value)

    return guard


def _all(checks: list[Check]) -> Check:
    if not checks:
        return safe
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:  # the common case (type and one more), without a generator
        first, second = checks
        return lambda v, d: first(v, d) and second(v, d)
    group = tuple(checks)
    return lambda v, d: all(c(v, d) for c in group)


def compile_check(schema: Any, draft: str, *, formats_asserted: bool) -> Check | None:
    """A compiled check of ``schema``, or ``None`` when it is left to the library.

    ``draft`` is ``"2020-12"`` or ``"7"``. A schema that asserts ``format`` is not
    compiled.
    """
    if formats_asserted:
        return None
    try:
        return _Compiler(schema, draft).node(schema)
    except (_NotCompiled, re.error, TypeError):
        return None
