"""JSON from outside, read within limits: a size and a nesting depth checked before parsing.

Python's ``json`` parser recurses once per nesting level, so a message of ``[[[[...`` a few
hundred kilobytes deep raises ``RecursionError`` instead of a parse error. The depth is counted
first with one regex scan (strings and their escapes are skipped), and the size before that.
"""

from __future__ import annotations

import json
import re
from typing import Any

from amazoniax_dagster.core.errors import MessageError

DEFAULT_MAX_BYTES = 1024 * 1024
DEFAULT_MAX_DEPTH = 64

_STRUCTURE = re.compile(rb'["\\\[\]{}]')


def nesting_depth(raw: bytes) -> int:
    """The deepest nesting of arrays and objects in ``raw`` (not counting brackets in strings)."""
    depth = deepest = 0
    in_string = False
    skip_to = -1
    for match in _STRUCTURE.finditer(raw):
        at = match.start()
        if at < skip_to:
            continue
        char = raw[at]
        if in_string:
            if char == 0x5C:  # backslash: the next byte is escaped
                skip_to = at + 2
            elif char == 0x22:
                in_string = False
        elif char == 0x22:
            in_string = True
        elif char in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in b"]}":
            depth -= 1
    return deepest


def load_bounded_json(
    raw: bytes | str, *, max_bytes: int = DEFAULT_MAX_BYTES, max_depth: int = DEFAULT_MAX_DEPTH
) -> Any:
    """Parse ``raw`` as JSON, or raise :class:`MessageError` saying which limit or rule it broke."""
    data = raw.encode("utf-8", errors="surrogatepass") if isinstance(raw, str) else raw
    if len(data) > max_bytes:
        raise MessageError(f"message is {len(data):,} bytes; the limit is {max_bytes:,} bytes")
    depth = nesting_depth(data)
    if depth > max_depth:
        raise MessageError(f"message nests {depth} levels deep; the limit is {max_depth}")
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MessageError(f"message is not valid JSON: {exc}") from exc
    except (RecursionError, ValueError) as exc:  # limits above should make these unreachable
        raise MessageError(f"message is not valid JSON: {type(exc).__name__}") from exc
