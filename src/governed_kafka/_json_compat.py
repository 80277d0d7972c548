"""Whether a JSON Schema accepts every value another one accepted: the offline subset.

:func:`problems` walks two schemas side by side (properties, array items and local
``$ref`` targets) and reports the changes that make values valid under the writer's
schema invalid under the reader's:

- a type narrowed (``number`` to ``integer``, ``["string", "null"]`` to ``string``);
- a property made required that the writer did not require;
- an object closed (``additionalProperties: false``) to a property the writer allowed,
  whether declared there or left open;
- an ``enum`` narrowed, or added where there was none;
- a bound tightened: ``minimum``, ``maximum``, ``exclusiveMinimum``,
  ``exclusiveMaximum``, ``minLength``, ``maxLength``, ``minItems``, ``maxItems``.

What it does not follow (``anyOf``/``oneOf``/``allOf``, ``patternProperties``,
``pattern``, ``if``/``then``, references into other files ...) only a registry checks.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

__all__ = ["problems"]

_ALL_TYPES: Final = frozenset({"string", "integer", "number", "boolean", "null", "object", "array"})

#: Lower bounds that may only go down, upper bounds that may only go up.
_LOWER: Final = ("minimum", "exclusiveMinimum", "minLength", "minItems")
_UPPER: Final = ("maximum", "exclusiveMaximum", "maxLength", "maxItems")

#: How far a walk follows ``$ref`` chains and nesting.
_MAX_STEPS: Final = 64


def _resolve(root: Any, node: Any) -> Any:
    """``node`` with a local ``$ref`` followed (to a bounded depth)."""
    for _ in range(_MAX_STEPS):
        if not isinstance(node, dict) or not isinstance(node.get("$ref"), str):
            return node
        pointer = node["$ref"]
        if not pointer.startswith("#"):
            return node
        target: Any = root
        for raw in pointer[1:].split("/")[1:]:
            step = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(target, dict) and step in target:
                target = target[step]
            else:
                return node
        node = target
    return node


def _types(node: Any) -> frozenset[str]:
    if node is True or not isinstance(node, dict) or "type" not in node:
        return _ALL_TYPES
    kinds = node["type"]
    names = {kinds} if isinstance(kinds, str) else set(kinds)
    if "number" in names:
        names.add("integer")
    return frozenset(names)


def _at(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def problems(reader: Any, writer: Any) -> list[tuple[str, str]]:
    """``(field path, what changed)`` for each change found; empty when none is."""
    return list(_walk((reader, writer), reader, writer, "", 0))


def _walk(  # noqa: PLR0912 - one branch per rule
    roots: tuple[Any, Any], reader: Any, writer: Any, path: str, depth: int
) -> Iterator[tuple[str, str]]:
    if depth > _MAX_STEPS:
        return
    reader = _resolve(roots[0], reader)
    writer = _resolve(roots[1], writer)
    if reader is True or writer is False:
        return
    if reader is False:
        yield path, "the reader's schema accepts nothing here (false)"
        return
    if not isinstance(reader, dict) or not isinstance(writer, dict):
        return
    lost = _types(writer) - _types(reader)
    if lost:
        yield (
            path,
            (
                f"type narrowed: {', '.join(sorted(lost))} no longer allowed "
                f"(was {', '.join(sorted(_types(writer)))})"
            ),
        )
    if "enum" in reader:
        before = writer.get("enum")
        if before is None:
            yield path, "an enum was added where any value was allowed"
        elif isinstance(before, list) and isinstance(reader["enum"], list):
            gone = [v for v in before if v not in reader["enum"]]
            if gone:
                yield path, f"enum narrowed: {len(gone)} value(s) no longer allowed"
    for keyword in (*_LOWER, *_UPPER):
        new, old = reader.get(keyword), writer.get(keyword)
        if not isinstance(new, (int, float)) or isinstance(new, bool):
            continue
        if old is None:
            yield path, f"{keyword} {new} was added"
        elif isinstance(old, (int, float)) and (
            (keyword in _LOWER and new > old) or (keyword in _UPPER and new < old)
        ):
            yield path, f"{keyword} tightened from {old} to {new}"
    yield from _objects(roots, reader, writer, path, depth)
    if isinstance(reader.get("items"), (dict, bool)) and "items" in writer:
        yield from _walk(roots, reader["items"], writer["items"], f"{path}[]", depth + 1)


def _objects(
    roots: tuple[Any, Any], reader: dict[str, Any], writer: dict[str, Any], path: str, depth: int
) -> Iterator[tuple[str, str]]:
    new_props = reader.get("properties", {})
    old_props = writer.get("properties", {})
    if not isinstance(new_props, dict) or not isinstance(old_props, dict):
        return
    required_before = set(writer.get("required", []) or [])
    for name in reader.get("required", []) or []:
        if name not in required_before:
            yield _at(path, str(name)), f"property {name!r} is now required"
    closed = reader.get("additionalProperties") is False
    if closed:
        for name in old_props:
            if name not in new_props:
                yield (
                    _at(path, str(name)),
                    (
                        f"property {name!r} was removed from an object closed by "
                        "additionalProperties: false"
                    ),
                )
        if writer.get("additionalProperties", True) is not False:
            yield (
                path,
                "the object was closed (additionalProperties: false) where others were allowed",
            )
    for name, sub in new_props.items():
        if name in old_props:
            yield from _walk(roots, sub, old_props[name], _at(path, str(name)), depth + 1)
