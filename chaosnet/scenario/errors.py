"""What a pydantic validation error means in a scenario file, said in the file's own terms.

pydantic reports a location in the *model* (with union tags such as
``latency`` in ``toxics.0.latency.jitter``) and a message in its own words.
This module walks the model's annotations along that location to find the
path in the *data* (tags dropped) and the model that rejected a key, so an
unknown key gets a "did you mean", and rewrites each message plainly.
"""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, Discriminator, Tag
from pydantic_core import ErrorDetails

from chaosnet.scenario.positions import DataPath, Positions, Problem
from chaosnet.scenario.toxics import NAME_PATTERN

_UNIONS = (Union, types.UnionType)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or ``""`` when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def dotted(path: Sequence[Hashable]) -> str:
    """``('proxies', 'main', 'toxics', 0)`` → ``proxies.main.toxics[0]``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


@dataclass(frozen=True)
class _Located:
    path: DataPath  # in the data, union tags dropped
    model: type[BaseModel] | None  # the model holding the last path segment


def _unwrap(annotation: Any) -> tuple[Any, list[Any]]:
    """Strip ``Annotated`` (collecting its metadata) and ``X | None``."""
    metadata: list[Any] = []
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation, *extra = get_args(annotation)
            metadata.extend(extra)
        elif origin in _UNIONS:
            members = [a for a in get_args(annotation) if a is not type(None)]
            if len(members) != 1:
                return annotation, metadata
            annotation = members[0]
        else:
            return annotation, metadata


def _tagged_member(union: Any, metadata: list[Any], tag: Hashable) -> Any | None:
    """The member of a discriminated union that ``tag`` selects, or None if not tagged."""
    field_key = next(
        (
            getattr(m, "discriminator", None)
            for m in metadata
            if isinstance(getattr(m, "discriminator", None), str)
        ),
        None,
    )
    tagged = field_key is not None or any(isinstance(m, Discriminator) for m in metadata)
    if not tagged:
        return None
    for member in get_args(union):
        inner, inner_meta = _unwrap(member)
        if any(isinstance(m, Tag) and m.tag == tag for m in inner_meta):
            return inner
        if field_key and isinstance(inner, type) and issubclass(inner, BaseModel):
            field = inner.model_fields.get(field_key)
            if field is not None and tag in get_args(field.annotation):
                return inner
    return Any


def locate(root: type[BaseModel], loc: Sequence[Hashable]) -> _Located:
    """Map a pydantic error location to the data path and the model of its last key."""
    annotation: Any = root
    path: list[Hashable] = []
    model: type[BaseModel] | None = None
    for segment in loc:
        annotation, metadata = _unwrap(annotation)
        if get_origin(annotation) in _UNIONS:
            member = _tagged_member(annotation, metadata, segment)
            annotation = member  # a tag or a branch label, not a key of the data
            continue
        path.append(segment)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
            field = annotation.model_fields.get(str(segment))
            annotation = None if field is None else Annotated[(field.annotation, field)]
        elif get_origin(annotation) is list:
            model, annotation = None, get_args(annotation)[0]
        elif get_origin(annotation) is dict:
            model, annotation = None, get_args(annotation)[1]
        else:
            model, annotation = None, None
    return _Located(tuple(path), model)


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_EXPECTED = {
    "int_type": "an integer",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "string_type": "a string",
    "bool_type": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "literal_error": "",
}
_BOUNDS = {
    "greater_than_equal": (">=", "ge"),
    "greater_than": (">", "gt"),
    "less_than_equal": ("<=", "le"),
    "less_than": ("<", "lt"),
}


def _literal_choices(error: ErrorDetails) -> list[str]:
    expected = str((error.get("ctx") or {}).get("expected", ""))
    return re.findall(r"'([^']*)'", expected) or re.findall(r"\b(\d+)\b", expected)


def _message(error: ErrorDetails, located: _Located) -> str:
    kind, value = error["type"], error.get("input")
    ctx = error.get("ctx") or {}
    if kind == "extra_forbidden":
        key = str(located.path[-1])
        allowed = [] if located.model is None else _keys(located.model)
        hint = did_you_mean(key, allowed)
        if not hint and allowed:
            hint = f" (expected one of: {', '.join(allowed)})"
        return f"unknown key {key!r}{hint}"
    if kind == "missing":
        return f"missing required key {str(located.path[-1])!r}"
    if kind == "literal_error":
        choices = _literal_choices(error)
        hint = did_you_mean(str(value), choices) if isinstance(value, str) else ""
        return f"must be {ctx.get('expected')}, got {_show(value)}{hint}"
    if kind == "union_tag_invalid":
        tag, tags = str(ctx.get("tag")), re.findall(r"'([^']*)'", str(ctx.get("expected_tags")))
        return f"unknown toxic type {tag!r}{did_you_mean(tag, tags)}"
    if kind == "union_tag_not_found":
        return "a toxic needs a type"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {_show(value)}"
    if kind in _BOUNDS:
        symbol, key = _BOUNDS[kind]
        return f"must be {symbol} {ctx.get(key)}, got {_show(value)}"
    if kind == "string_pattern_mismatch" and ctx.get("pattern") == NAME_PATTERN:
        return (
            f"{_show(value)} is not a valid name: use letters, digits, '_', '.' and '-', "
            "starting with a letter or '_'"
        )
    if kind == "too_short":
        return "must not be empty"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def _keys(model: type[BaseModel]) -> list[str]:
    return list(model.model_fields)


def _position_path(error: ErrorDetails, located: _Located, data: Any) -> tuple[DataPath, bool]:
    """Where to point: the key for unknown keys, the parent for missing ones."""
    kind = error["type"]
    if kind == "extra_forbidden":
        return located.path, True
    if kind == "missing":
        return located.path[:-1], False
    if kind == "union_tag_invalid" and _has_key(data, located.path, "type"):
        return (*located.path, "type"), False
    return located.path, False


def _has_key(data: Any, path: DataPath, key: str) -> bool:
    for part in path:
        in_dict = isinstance(data, dict) and part in data
        in_list = isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)
        if not (in_dict or in_list):
            return False
        data = data[part]
    return isinstance(data, dict) and key in data


def translate(
    root: type[BaseModel], errors: Sequence[ErrorDetails], data: Any, positions: Positions
) -> list[Problem]:
    """One problem per bad value: union branches that each failed are merged into one."""
    located = [(error, locate(root, error["loc"])) for error in errors]
    suggested = _suggested_fields(located)
    merged: dict[tuple[DataPath, bool], list[str]] = {}
    for error, where in located:
        if error["type"] == "missing" and where.path in suggested:
            continue  # "unknown key 'latncy' (did you mean 'latency'?)" says it already
        message = _message(error, where)
        key = _position_path(error, where, data)
        if message not in merged.setdefault(key, []):
            merged[key].append(message)
    problems = []
    for (path, at_key), messages in merged.items():
        shown = path if not at_key else path[:-1]
        prefix = f"{dotted(shown)}: " if shown else ""
        problems.append(positions.problem(path, prefix + "; or ".join(messages), key=at_key))
    return problems


def _suggested_fields(located: list[tuple[ErrorDetails, _Located]]) -> set[DataPath]:
    """Paths of missing fields that an unknown key's "did you mean" already points to."""
    suggested = set()
    for error, where in located:
        if error["type"] == "extra_forbidden" and where.model is not None:
            close = difflib.get_close_matches(
                str(where.path[-1]), _keys(where.model), n=1, cutoff=0.6
            )
            if close:
                suggested.add((*where.path[:-1], close[0]))
    return suggested
