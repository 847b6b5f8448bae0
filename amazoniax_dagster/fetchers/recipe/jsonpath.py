"""A small JSON path syntax for recipes, parsed once and walked without eval.

``data.items[0].id``, ``$.data.items``, ``items[*].url`` (every element), ``items[-1]``,
``["key.with.dots"]``. ``$`` or an empty path is the document itself.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Final


class _Wildcard:
    def __repr__(self) -> str:
        return "[*]"


WILDCARD: Final = _Wildcard()
PathPart = str | int | _Wildcard

_TOKEN = re.compile(
    r"""\.?(?P<name>[A-Za-z_][\w-]*)"""  # .name (the dot is optional at the start)
    r"""|\[(?P<index>-?\d+)\]"""  # [0], [-1]
    r"""|\[(?P<star>\*)\]"""  # [*]
    r"""|\[(?P<quote>["'])(?P<key>.*?)(?P=quote)\]"""  # ["any key"]
)


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Final = _Missing()


@lru_cache(maxsize=512)
def parse_path(text: str) -> tuple[PathPart, ...]:
    """The parts of ``text``; ValueError (saying where) when it is not a path."""
    rest = text.strip()
    rest = rest[1:] if rest.startswith("$") else rest
    parts: list[PathPart] = []
    position = 0
    while position < len(rest):
        match = _TOKEN.match(rest, position)
        dotless_name = match is not None and match["name"] and rest[position] != "."
        if match is None or (dotless_name and position > 0):
            raise ValueError(f"invalid JSON path at character {position + 1}")
        if match["name"] is not None:
            parts.append(match["name"])
        elif match["index"] is not None:
            parts.append(int(match["index"]))
        elif match["star"] is not None:
            parts.append(WILDCARD)
        else:
            parts.append(match["key"])
        position = match.end()
    return tuple(parts)


def find_all(data: Any, path: str) -> list[Any]:
    """Every value at ``path`` (several only through ``[*]``); empty when nothing is there."""
    values = [data]
    for part in parse_path(path):
        values = [found for value in values for found in _step(value, part)]
    return values


def find(data: Any, path: str) -> Any:
    """The first value at ``path``, or :data:`MISSING`."""
    values = find_all(data, path)
    return values[0] if values else MISSING


def _step(value: Any, part: PathPart) -> list[Any]:
    if isinstance(part, _Wildcard):
        if isinstance(value, list):
            return value
        return list(value.values()) if isinstance(value, dict) else []
    if isinstance(part, int):
        if isinstance(value, list) and -len(value) <= part < len(value):
            return [value[part]]
        return []
    if isinstance(value, dict) and part in value:
        return [value[part]]
    return []


__all__ = ["MISSING", "WILDCARD", "find", "find_all", "parse_path"]
