"""Whether two versions of a ``.proto`` file read each other's bytes: the offline subset.

:func:`problems` compares the messages two versions share (by full name) and reports
what breaks reading one's bytes with the other's, in either direction:

- a message removed;
- a field whose number now has another type (``int64`` to ``string``, a message to
  another message, a scalar to an enum ...);
- a field whose number changed (same name, another number);
- a field changed between singular and ``repeated`` (or a map), or made proto2
  ``required``;
- a removed field's number or name used again by a field of another type or
  number, when the new version does not mark it ``reserved`` (compared against every
  earlier version given, whatever the mode, since reused numbers corrupt old bytes).

What it does not follow (moving fields into or out of a ``oneof``, enum value changes,
options, packages renamed) only a registry checks.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

__all__ = ["problems", "reuse_problems"]


def _messages(file: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}

    def visit(descriptors: Any) -> None:
        for descriptor in descriptors:
            if descriptor.GetOptions().map_entry:
                continue  # a map field's entry type: the field's shape covers it
            found[descriptor.full_name] = descriptor
            visit(descriptor.nested_types)

    visit(file.message_types_by_name.values())
    return found


def _shape(field: Any) -> str:
    message = field.message_type
    if message is not None and message.GetOptions().map_entry:
        key, value = message.fields_by_name["key"], message.fields_by_name["value"]
        return f"map<{_kind(key)}, {_kind(value)}>"
    repeated = getattr(field, "is_repeated", None)
    if repeated is None:  # pragma: no cover - protobuf < 7
        repeated = field.label == field.LABEL_REPEATED
    return f"repeated {_kind(field)}" if repeated else _kind(field)


def _kind(field: Any) -> str:
    if field.message_type is not None:
        return str(field.message_type.full_name)
    if field.enum_type is not None:
        return f"enum {field.enum_type.full_name}"
    from google.protobuf.descriptor import FieldDescriptor

    names = {v: k for k, v in vars(FieldDescriptor).items() if k.startswith("TYPE_")}
    return str(names[field.type]).removeprefix("TYPE_").lower()


def _required(field: Any) -> bool:
    required = getattr(field, "is_required", None)
    if required is None:  # pragma: no cover - protobuf < 7
        return bool(field.label == field.LABEL_REQUIRED)
    return bool(required)


def problems(new: Any, old: Any) -> list[tuple[str, str]]:
    """``(field path, what changed)`` between file descriptors ``new`` and ``old``."""
    return list(_compare(_messages(new), _messages(old)))


def _compare(new: dict[str, Any], old: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for name, before in old.items():
        after = new.get(name)
        if after is None:
            yield name, f"message {name} is in one version only (it was removed)"
            continue
        for field in before.fields:
            path = f"{name}.{field.name}"
            twin = after.fields_by_number.get(field.number)
            if twin is not None:
                if _shape(twin) != _shape(field):
                    yield (
                        path,
                        (
                            f"field number {field.number} is {_shape(field)} in one version and "
                            f"{_shape(twin)} in the other"
                        ),
                    )
                if _required(twin) != _required(field):
                    yield (
                        path,
                        (
                            f"field number {field.number} is required in one version and not in "
                            "the other"
                        ),
                    )
                continue
            renamed = after.fields_by_name.get(field.name)
            if renamed is not None:
                yield (
                    path,
                    (
                        f"field {field.name!r} is number {field.number} in one version and "
                        f"{renamed.number} in the other"
                    ),
                )
            elif _required(field):
                yield path, f"required field {field.name!r} is in one version only"
        for field in after.fields:
            if _required(field) and field.number not in before.fields_by_number:
                yield (
                    f"{name}.{field.name}",
                    (f"required field {field.name!r} is in one version only"),
                )


def _reserved(descriptor: Any) -> tuple[set[int], set[str]]:
    from google.protobuf import descriptor_pb2

    proto = descriptor_pb2.DescriptorProto()
    descriptor.CopyToProto(proto)
    numbers = {
        n for r in proto.reserved_range for n in range(r.start, min(r.end, r.start + 10_000))
    }
    return numbers, set(proto.reserved_name)


def reuse_problems(new: Any, earlier: Sequence[Any]) -> list[tuple[str, str]]:
    """Numbers and names of fields removed in some earlier version that ``new`` uses
    again for another field, without ``reserved`` marking them."""
    found: list[tuple[str, str]] = []
    current = _messages(new)
    for old_file in earlier:
        for name, before in _messages(old_file).items():
            after = current.get(name)
            if after is None:
                continue
            numbers, names = _reserved(after)
            for field in before.fields:
                twin = after.fields_by_number.get(field.number)
                if (
                    twin is not None
                    and twin.name != field.name
                    and _shape(twin) != _shape(field)
                    and field.number not in numbers
                ):
                    found.append(
                        (
                            f"{name}.{twin.name}",
                            f"field number {field.number} was {field.name!r} "
                            f"({_shape(field)}) in an earlier version and is reused for "
                            f"{twin.name!r} ({_shape(twin)}); mark it reserved instead",
                        )
                    )
                other = after.fields_by_name.get(field.name)
                if other is not None and other.number != field.number and field.name not in names:
                    found.append(
                        (
                            f"{name}.{field.name}",
                            f"field name {field.name!r} was number {field.number} in an "
                            f"earlier version and is reused for number {other.number}",
                        )
                    )
    return list(dict.fromkeys(found))
