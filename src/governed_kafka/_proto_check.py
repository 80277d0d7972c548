"""Protobuf values given as dicts, checked against a message descriptor with field paths.

:func:`compile_message` turns a message descriptor into one closure that answers
*fits* for a dict value (its nested messages, lists and maps included) quickly;
:func:`message_problem` is the slow walk that says where and why a value does not fit,
and its answer is the one reported. The compiled check only ever refuses what the walk
refuses, or more: a stricter check costs time, never a wrong verdict.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Final

__all__ = ["MAX_DEPTH", "Problem", "compile_message", "message_problem", "shown_value"]

#: Deepest nesting of messages, lists and maps a dict value may have.
MAX_DEPTH: Final = 64

_INT_RANGES: Final = {
    "int32": (-(2**31), 2**31 - 1),
    "sint32": (-(2**31), 2**31 - 1),
    "sfixed32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "fixed32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "sint64": (-(2**63), 2**63 - 1),
    "sfixed64": (-(2**63), 2**63 - 1),
    "uint64": (0, 2**64 - 1),
    "fixed64": (0, 2**64 - 1),
}

#: Largest finite float32; a larger finite value would be written as infinity.
_FLOAT32_MAX: Final = 3.4028234663852886e38


_TYPE_NAMES: dict[int, str] = {}


def _type_name(field: Any) -> str:
    if not _TYPE_NAMES:
        from google.protobuf.descriptor import FieldDescriptor

        _TYPE_NAMES.update(
            {
                getattr(FieldDescriptor, name): name.removeprefix("TYPE_").lower()
                for name in dir(FieldDescriptor)
                if name.startswith("TYPE_")
            }
        )
    return _TYPE_NAMES[field.type]


def shown_value(value: object) -> str:
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"{type(value).__name__} {shown}"


def _at(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


Problem = tuple[str, str]


def _scalar_problem(  # noqa: PLR0911, PLR0912 - one branch per kind
    field: Any, value: Any
) -> str | None:
    kind = _type_name(field)
    if kind in _INT_RANGES:
        if type(value) is not int:
            return f"expected {kind}, got {shown_value(value)}"
        low, high = _INT_RANGES[kind]
        if not low <= value <= high:
            return f"{value} is out of range for {kind}"
        return None
    if kind in ("float", "double"):
        if type(value) is float:
            if kind == "float" and math.isfinite(value) and abs(value) > _FLOAT32_MAX:
                return (
                    f"{value!r} is out of range for float (largest finite: 3.4028235e+38; it "
                    "would be written as infinity)"
                )
            return None
        if type(value) is int:
            limit = _FLOAT32_MAX if kind == "float" else 1.7976931348623157e308
            return None if abs(value) <= limit else f"{value} is out of range for {kind}"
        return f"expected {kind}, got {shown_value(value)}"
    if kind == "bool":
        return None if type(value) is bool else f"expected bool, got {shown_value(value)}"
    if kind == "string":
        if type(value) is not str:
            return f"expected string, got {shown_value(value)}"
        try:
            value.encode()
        except UnicodeEncodeError:
            return "a str that cannot be UTF-8 (it holds a lone surrogate)"
        return None
    if kind == "bytes":
        if type(value) not in (bytes, bytearray):
            return f"expected bytes, got {shown_value(value)}"
        return None
    if kind == "enum":
        enum = field.enum_type
        if type(value) is str:
            if value in enum.values_by_name:
                return None
            symbols = ", ".join(enum.values_by_name)
            return f"{value!r} is not a value of enum {enum.full_name} ({symbols})"
        if type(value) is int:
            if value in enum.values_by_number:
                return None
            return f"{value} is not a number of enum {enum.full_name}"
        return f"expected a name or number of enum {enum.full_name}, got {shown_value(value)}"
    return f"fields of type {kind} are not supported"  # pragma: no cover - groups


def message_problem(  # noqa: PLR0911 - one branch per field shape
    descriptor: Any, value: Any, path: str, depth: int
) -> Problem | None:
    if isinstance(value, _message_type()):
        if value.DESCRIPTOR.full_name != descriptor.full_name:
            return (
                path,
                f"expected message {descriptor.full_name}, got {value.DESCRIPTOR.full_name}",
            )
        return None
    if type(value) is not dict:
        return path, f"expected message {descriptor.full_name} (a dict), got {shown_value(value)}"
    if depth >= MAX_DEPTH:
        return path, f"nested more than {MAX_DEPTH} messages, lists and maps deep"
    fields = descriptor.fields_by_name
    oneofs: dict[str, str] = {}
    for name, item in value.items():
        field = fields.get(name) if type(name) is str else None
        if field is None:
            return (
                _at(path, str(name)),
                f"unknown field {name!r}: message {descriptor.full_name} has no such field",
            )
        if item is None:
            continue
        where = _at(path, name)
        group = field.containing_oneof
        if group is not None:
            if group.name in oneofs:
                return where, (
                    f"fields {oneofs[group.name]!r} and {name!r} are both set, and they are "
                    f"one oneof ({group.name}): set one"
                )
            oneofs[group.name] = name
        problem = _field_problem(field, item, where, depth)
        if problem is not None:
            return problem
    for field in descriptor.fields:
        if _is_required(field) and value.get(field.name) is None:
            return _at(path, field.name), "required field is missing"
    return None


def _is_required(field: Any) -> bool:
    required = getattr(field, "is_required", None)
    if required is not None:
        return bool(required)
    return bool(field.label == field.LABEL_REQUIRED)  # pragma: no cover - protobuf < 7


def _is_repeated(field: Any) -> bool:
    repeated = getattr(field, "is_repeated", None)
    if repeated is not None:
        return bool(repeated)
    return bool(field.label == field.LABEL_REPEATED)  # pragma: no cover - protobuf < 7


def _field_problem(  # noqa: PLR0911 - one return per field shape
    field: Any, value: Any, path: str, depth: int
) -> Problem | None:
    message = field.message_type
    if message is not None and message.GetOptions().map_entry:
        if type(value) is not dict:
            return path, f"expected a map (a dict), got {shown_value(value)}"
        key_field, value_field = message.fields_by_name["key"], message.fields_by_name["value"]
        for map_key, item in value.items():
            key_problem = _scalar_problem(key_field, map_key)
            if key_problem is not None:
                return f"{path}[{map_key!r}]", f"map key: {key_problem}"
            found = _single_problem(value_field, item, f"{path}[{map_key!r}]", depth + 1)
            if found is not None:
                return found
        return None
    if _is_repeated(field):
        if type(value) not in (list, tuple):
            return path, f"expected a list (repeated {_type_name(field)}), got {shown_value(value)}"
        if depth >= MAX_DEPTH:
            return path, f"nested more than {MAX_DEPTH} messages, lists and maps deep"
        for index, item in enumerate(value):
            found = _single_problem(field, item, f"{path}[{index}]", depth + 1)
            if found is not None:
                return found
        return None
    return _single_problem(field, value, path, depth)


def _single_problem(field: Any, value: Any, path: str, depth: int) -> Problem | None:
    if value is None:
        return path, "None is not a value here (leave the field out to leave it unset)"
    if field.message_type is not None:
        if field.message_type.full_name == "google.protobuf.Timestamp":
            import datetime

            if isinstance(value, datetime.datetime):
                return None
        return message_problem(field.message_type, value, path, depth + 1)
    problem = _scalar_problem(field, value)
    return None if problem is None else (path, problem)


_MESSAGE: list[type] = []


def _message_type() -> Any:
    if not _MESSAGE:
        from google.protobuf.message import Message

        _MESSAGE.append(Message)
    return _MESSAGE[0]


# --------------------------------------------------------------------------- compiled checks

#: ``check(value, depth) -> bool``: whether a dict value fits, answered without a path.
_Check = Callable[[Any, int], bool]


def compile_message(descriptor: Any, cache: dict[str, _Check]) -> _Check:
    """A fast check of dict values of ``descriptor``; a refusal is explained by
    :func:`message_problem`, whose verdicts it only ever makes stricter."""
    name = descriptor.full_name
    if name in cache:
        return cache[name]

    def forward(value: Any, depth: int) -> bool:  # a recursive message: resolved late
        return cache[name](value, depth)

    cache[name] = forward
    fields = {f.name: _compile_field(f, cache) for f in descriptor.fields}
    oneofs = {f.name: f.containing_oneof.name for f in descriptor.fields if f.containing_oneof}
    required = tuple(f.name for f in descriptor.fields if _is_required(f))
    message_type = _message_type()

    def check(value: Any, depth: int) -> bool:
        if type(value) is not dict:
            return isinstance(value, message_type) and value.DESCRIPTOR.full_name == name
        if depth >= MAX_DEPTH:
            return False
        inner = depth + 1
        for key, item in value.items():
            field = fields.get(key)
            if field is None:
                return False
            if item is not None and not field(item, inner):
                return False
        if oneofs:
            groups = [oneofs[k] for k, v in value.items() if v is not None and k in oneofs]
            if len(groups) != len(set(groups)):
                return False
        return all(value.get(r) is not None for r in required)

    cache[name] = check
    return check


def _compile_field(field: Any, cache: dict[str, _Check]) -> _Check:
    message = field.message_type
    if message is not None and message.GetOptions().map_entry:
        key = _compile_single(message.fields_by_name["key"], cache)
        item = _compile_single(message.fields_by_name["value"], cache)
        return lambda v, d: (
            type(v) is dict
            and d < MAX_DEPTH
            and all(key(k, d) and item(x, d) for k, x in v.items())
        )
    single = _compile_single(field, cache)
    if _is_repeated(field):
        return lambda v, d: (
            type(v) in (list, tuple) and d < MAX_DEPTH and all(single(x, d + 1) for x in v)
        )
    return single


def _compile_single(field: Any, cache: dict[str, _Check]) -> _Check:  # noqa: PLR0911
    if field.message_type is not None:
        check = compile_message(field.message_type, cache)
        if field.message_type.full_name == "google.protobuf.Timestamp":
            import datetime

            return lambda v, d: isinstance(v, datetime.datetime) or check(v, d)
        return check
    kind = _type_name(field)
    if kind in _INT_RANGES:
        low, high = _INT_RANGES[kind]
        return lambda v, d: type(v) is int and low <= v <= high
    if kind == "float":
        return lambda v, d: (
            (type(v) is float and not (abs(v) > _FLOAT32_MAX and math.isfinite(v)))
            or (type(v) is int and abs(v) <= _FLOAT32_MAX)
        )
    if kind == "double":
        return lambda v, d: type(v) is float or (type(v) is int and abs(v) < 2**1023)
    if kind == "bool":
        return lambda v, d: type(v) is bool
    if kind == "string":
        return lambda v, d: type(v) is str
    if kind == "bytes":
        return lambda v, d: type(v) in (bytes, bytearray)
    if kind == "enum":
        names = frozenset(field.enum_type.values_by_name)
        numbers = frozenset(field.enum_type.values_by_number)
        return lambda v, d: (type(v) is str and v in names) or (type(v) is int and v in numbers)
    return lambda v, d: False
