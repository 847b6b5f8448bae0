"""``navigation_details.date_range`` as customers write it, read into one canonical form.

Canonical (what the recipe engine reads): ``{"last_days": N}`` or
``{"from": "YYYY-MM-DD", "to": "YYYY-MM-DD"}`` (``to`` optional). Accepted spellings:
``7``, ``"7"``, ``"7d"``, ``"7 days"``, ``"7_days"``, ``"last 7 days"``, ``"last_7_days"``,
``"P7D"``, ``"1w"``/``"2 weeks"``, ``"today"``, ``"yesterday"``, ``{"last_days": 7}``,
``{"days": 7}``, ``{"from": ..., "to": ...}`` (also ``start``/``end``), and
``"YYYY-MM-DD..YYYY-MM-DD"`` or ``"YYYY-MM-DD/YYYY-MM-DD"``.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

ACCEPTED = (
    '{"last_days": 7}, {"from": "2026-01-01", "to": "2026-01-31"}, 7, "7d", "7 days", '
    '"last 7 days", "7_days", "P7D", "2 weeks", "today", "yesterday", '
    '"2026-01-01..2026-01-31"'
)
MAX_DAYS = 3660

_RELATIVE = re.compile(
    r"^(?:last|past|previous)?[\s_-]*(\d{1,4})[\s_-]*"
    r"(d|day|days|w|wk|week|weeks)?$"
)
_ISO_DURATION = re.compile(r"^p(\d{1,4})([dw])$")
_SPAN = re.compile(r"^(\d{4}-\d{2}-\d{2})\s*(?:\.\.|/|\s+to\s+)\s*(\d{4}-\d{2}-\d{2})?$")


class DateRangeError(ValueError):
    """A ``date_range`` that cannot be read; the message lists the accepted forms."""


def normalize_date_range(value: Any) -> dict[str, Any]:
    """The canonical form of ``value``, or :class:`DateRangeError`."""
    if isinstance(value, bool):
        raise _unreadable(value)
    if isinstance(value, int):
        return {"last_days": _days(value, value)}
    if isinstance(value, str):
        return _from_text(value)
    if isinstance(value, dict):
        return _from_mapping(value)
    raise _unreadable(value)


def _from_text(text: str) -> dict[str, Any]:
    lowered = text.strip().lower()
    if lowered == "today":
        return {"last_days": 0}
    if lowered == "yesterday":
        return {"last_days": 1}
    for pattern in (_RELATIVE, _ISO_DURATION):
        match = pattern.match(lowered)
        if match:
            count, unit = int(match[1]), match[2] or "d"
            return {"last_days": _days(count * (7 if unit.startswith("w") else 1), text)}
    span = _SPAN.match(lowered)
    if span:
        return _span(span[1], span[2], text)
    raise _unreadable(text)


def _from_mapping(value: dict[str, Any]) -> dict[str, Any]:
    days = value.get("last_days", value.get("days"))
    start = value.get("from", value.get("start"))
    end = value.get("to", value.get("end"))
    known = {"last_days", "days", "from", "start", "to", "end"}
    if set(value) - known or (days is None) == (start is None) or (days is not None and end):
        raise _unreadable(value)
    if days is not None:
        if isinstance(days, bool) or not isinstance(days, int | str):
            raise _unreadable(value)
        try:
            return {"last_days": _days(int(days), value)}
        except ValueError:
            raise _unreadable(value) from None
    if not isinstance(start, str) or not (end is None or isinstance(end, str)):
        raise _unreadable(value)
    return _span(start, end, value)


def _span(start: str, end: str | None, shown: Any) -> dict[str, Any]:
    try:
        first = date.fromisoformat(start.strip())
        last = date.fromisoformat(end.strip()) if end else None
    except ValueError:
        raise _unreadable(shown) from None
    if last is not None and last < first:
        raise DateRangeError(f"date_range {shown!r}: 'to' ({last}) is before 'from' ({first})")
    return {"from": first.isoformat()} | ({"to": last.isoformat()} if last else {})


def _days(count: int, shown: Any) -> int:
    if not 0 <= count <= MAX_DAYS:
        raise DateRangeError(f"date_range {shown!r}: days must be between 0 and {MAX_DAYS}")
    return count


def _unreadable(value: Any) -> DateRangeError:
    shown = repr(value)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    return DateRangeError(f"date_range {shown} is not a date range; accepted forms: {ACCEPTED}")
