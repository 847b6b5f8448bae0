"""Propose ``incremental`` for a data step whose captured request asks for changes after a
moment (``?updated_since=``, ``?modified_after=``, ``?since=``) and whose records carry a
timestamp that grows (``updated_at``, ``modifiedAt``, ...): later jobs then ask only for what
changed after the channel's checkpoint instead of the captured moment."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from amazoniax_dagster.fetchers.recipe.incremental import timestamp
from amazoniax_dagster.fetchers.recipe.templating import expressions

SINCE_PARAM = re.compile(
    r"since|(updated|modified|changed|last_?modified)[_-]?(since|after|from|gte?)"
    r"|(changed|modified|updated)?_?since|(since|after)_?(updated|modified)",
    re.IGNORECASE,
)
CURSOR_FIELDS = (
    "updated_at", "updatedAt", "modified_at", "modifiedAt", "last_modified", "lastModified",
    "changed_at", "changedAt", "updated", "modified",
)  # fmt: skip
# An initial value is rendered before any request: only these template names may be in it.
_STATIC_ROOTS = frozenset({"config", "secrets", "window", "run_date"})


def propose(
    query: Mapping[str, str], records: Sequence[Mapping[str, Any]]
) -> dict[str, str] | None:
    """The ``incremental`` spec for a step, or None when the capture shows no such cursor."""
    # A value from a paginator or an extract moves each page: that is paging, not a start.
    param = next((n for n in query if SINCE_PARAM.fullmatch(n) and _static(query[n])), None)
    fields = (f for f in CURSOR_FIELDS if records and all(_is_time(r.get(f)) for r in records))
    field = next(fields, None)
    if param is None or field is None:
        return None
    # The first job asks from where the capture asked (a date of the window, or that moment).
    return {"cursor_path": field, "start_param": param, "initial_value": query[param]}


def _static(value: str) -> bool:
    """A template of the run's own values, or a literal moment (what the engine can send)."""
    roots = {expr.root for expr in expressions(value)}
    return roots <= _STATIC_ROOTS if roots else _is_time(value)


def _is_time(value: Any) -> bool:
    if not isinstance(value, str) or not value.strip():
        return False
    try:
        timestamp(value)
    except ValueError:
        return False
    return not value.strip().isdigit() or len(value.strip()) >= 10  # not a small number


__all__ = ["CURSOR_FIELDS", "SINCE_PARAM", "propose"]
