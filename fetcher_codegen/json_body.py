"""Fields of a JSON request body, addressed by path: read for provenance and probes, written
when a recipe's body is built (pure logic).

A body's fields are its scalars (and nulls) at the top and in objects up to two levels down:
``{"page": 1}``, ``{"paging": {"offset": 0}}`` and GraphQL ``{"variables": {"after": null}}``
all name their paging field. Lists are values, not containers.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any

BodyPath = tuple[str, ...]
MAX_PATH = 3  # variables.paging.offset


def body_fields(body: Any) -> Iterator[tuple[BodyPath, Any]]:
    """(path, value) of every scalar or null field of a JSON object body, outer ones first."""
    if not isinstance(body, dict):
        return
    nested: list[tuple[BodyPath, dict[str, Any]]] = []
    for key, value in body.items():
        if isinstance(value, dict):
            nested.append(((str(key),), value))
        elif not isinstance(value, list):
            yield (str(key),), value
    while nested:
        where, inner = nested.pop(0)
        for key, value in inner.items():
            path = (*where, str(key))
            if isinstance(value, dict) and len(path) < MAX_PATH:
                nested.append((path, value))
            elif not isinstance(value, dict | list) and len(path) <= MAX_PATH:
                yield path, value


def dotted(path: BodyPath) -> str:
    return ".".join(path)


def at(body: Any, path: BodyPath) -> Any:
    for part in path:
        body = body.get(part) if isinstance(body, dict) else None
    return body


def with_fields(body: Mapping[str, Any], changes: Mapping[BodyPath, Any]) -> dict[str, Any]:
    """A copy of ``body`` with each path set (objects on the way created); ``None`` values
    are written as JSON null."""
    out = copy.deepcopy(dict(body))
    for path, value in changes.items():
        target = out
        for part in path[:-1]:
            inner = target.get(part)
            if not isinstance(inner, dict):
                inner = target[part] = {}
            target = inner
        target[path[-1]] = value
    return out


def text_of(value: Any) -> str:
    """A field's value as provenance compares it (null is empty, booleans as JSON writes them)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def recipe_body(first: Mapping[str, Any], values: Mapping[str, str | None]) -> dict[str, Any]:
    """The recipe's JSON body: the first request's body with each field (by dotted name) set to
    its template; a field whose template is its own text keeps its JSON type (``20`` stays a
    number, ``null`` stays null), a field with no template is left out."""
    changes: dict[BodyPath, Any] = {}
    dropped: list[BodyPath] = []
    for name, template in values.items():
        path = (name,) if name in first else tuple(name.split("."))
        original = at(first, path)
        if template is None:
            dropped.append(path)
        elif not isinstance(original, str) and template == text_of(original):
            changes[path] = original
        else:
            changes[path] = template
    body = with_fields(first, changes)
    for path in dropped:
        parent = at(body, path[:-1]) if len(path) > 1 else body
        if isinstance(parent, dict):
            parent.pop(path[-1], None)
    return body


__all__ = ["BodyPath", "at", "body_fields", "dotted", "recipe_body", "text_of", "with_fields"]
