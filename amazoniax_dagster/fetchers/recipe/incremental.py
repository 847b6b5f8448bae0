"""Incremental loading (dlt's ``incremental``): ask only for records after the last job's.

A recipe step (or a feed) names the record field that grows, ``cursor_path``: a timestamp or
an id. The job starts from the channel's checkpoint (the greatest value its last *successful*
job saw) or, for the first job, from ``initial_value``; it sends that value in
``start_param`` (and as ``${incremental.start_value}``), keeps the greatest value it sees, and
the job stores it only when it succeeds::

    checkpoint ──► start_value ──► ?since=start_value ──► records ──► last_value ──► checkpoint
    (or initial_value)                                                   (on success only)

Values are kept as the records carry them (the API gets its own format back) and compared as
timestamps (ISO 8601, RFC 2822, epoch seconds) or ids (numbers, else text). A ``page``
cursor needs no record field: for an append-only list paged by number or offset, the
checkpoint is the last page that had records, and the next job's paging starts there.
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from typing import Any, Literal

from pydantic import Field, model_validator

from amazoniax_dagster.core.checkpoints import Checkpoint, CursorType
from amazoniax_dagster.core.errors import ConfigError, SiteChangedError
from amazoniax_dagster.fetchers.recipe import jsonpath
from amazoniax_dagster.fetchers.recipe.fields import JsonPath, Model, Template

_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")
# Epoch values above this are milliseconds (2286-11-20 in seconds).
_MILLIS_FROM = 10**10


class Incremental(Model):
    """Only records after the checkpoint: ``{cursor_path: updated_at, start_param: since}``."""

    cursor_path: JsonPath | None = Field(
        default=None, description="the growing field of each record (feeds: updated)"
    )
    cursor_type: CursorType = Field(
        default="timestamp", description="timestamps, ids, or the page (number or offset)"
    )
    start_param: str | None = Field(
        default=None, description="query parameter that carries the start value"
    )
    initial_value: Template | None = Field(
        default=None, description="start of the first job, e.g. ${window.start}; none: all"
    )
    row_order: Literal["asc", "desc"] | None = Field(
        default=None, description="desc: stop paging at the first record not after the start"
    )

    @model_validator(mode="after")
    def _cursor_source(self) -> Incremental:
        if self.cursor_type == "page":
            if self.cursor_path or self.start_param or self.row_order:
                raise ValueError(
                    "a page cursor is the paginator's position: no cursor_path, start_param "
                    "or row_order"
                )
        elif self.cursor_path is None:
            raise ValueError(f"a {self.cursor_type} cursor needs cursor_path")
        return self


def timestamp(value: Any) -> datetime:
    """``value`` as an aware datetime; ValueError when it is not a timestamp."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{value!r} is not a timestamp")
    text = str(value).strip()
    if _NUMBER.fullmatch(text):
        seconds = float(text)
        return datetime.fromtimestamp(seconds / 1000 if seconds > _MILLIS_FROM else seconds, UTC)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            raise ValueError(f"{text!r} is not a timestamp") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def identifier(value: Any) -> tuple[int, Any]:
    """``value`` as a sortable id: numbers by value, before any text."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{value!r} is not an id")
    text = str(value).strip()
    return (0, float(text)) if _NUMBER.fullmatch(text) else (1, text)


def position(value: Any) -> int:
    """A page number or offset."""
    if isinstance(value, bool) or not str(value).strip().isdigit():
        raise ValueError(f"{value!r} is not a page number or offset")
    return int(str(value).strip())


SORT_KEYS: dict[str, Callable[[Any], Any]] = {
    "timestamp": timestamp,
    "id": identifier,
    "page": position,
}


def as_text(value: Any) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)


class Cursor:
    """One run's cursor: where it starts, and the greatest value seen so far."""

    def __init__(self, spec: Incremental, stored: Checkpoint | None, initial: str | None) -> None:
        self.spec = spec
        self._key = SORT_KEYS[spec.cursor_type]
        usable = stored is not None and stored.cursor_type == spec.cursor_type
        # A checkpoint of another cursor type (the recipe changed) is not comparable: restart.
        self.start_value: str | None = stored.value if stored and usable else initial or None
        self.from_checkpoint = usable
        self.ignored_checkpoint = stored is not None and not usable
        self.last_value = self.start_value
        self.seen = 0
        self.newer = 0
        self._start = self._start_key()
        self._last = self._start

    def params(self) -> dict[str, str]:
        """The start parameter for a request (none for the first job without initial_value)."""
        if self.spec.start_param is None or self.start_value is None:
            return {}
        return {self.spec.start_param: self.start_value}

    @property
    def by_page(self) -> bool:
        return self.spec.cursor_type == "page"

    def value_of(self, record: Any, where: str) -> Any:
        path = self.spec.cursor_path or ""
        found = jsonpath.find(record, path) if isinstance(record, dict) else None
        if found is None or found is jsonpath.MISSING:
            raise SiteChangedError(
                f"{where}: a record has no cursor value at {self.spec.cursor_path!r} "
                "(incremental.cursor_path)"
            )
        return found

    def observe(self, values: Iterable[Any], where: str) -> bool:
        """Take in one page's cursor values; False when one is not after the start value."""
        all_newer = True
        for value in values:
            key = self._sort_key(value, where)
            self.seen += 1
            if self._start is not None and key <= self._start:
                all_newer = False
                continue
            self.newer += 1
            if self._last is None or key > self._last:
                self._last, self.last_value = key, as_text(value)
        return all_newer

    def is_newer(self, value: Any, where: str) -> bool:
        return self._start is None or self._sort_key(value, where) > self._start

    def checkpoint(self) -> Checkpoint | None:
        if self.last_value is None:
            return None
        return Checkpoint(self.spec.cursor_type, self.last_value)

    def metadata(self) -> dict[str, Any]:
        """What the job shows about its cursor (no secrets: values come from records)."""
        return {
            "cursor_path": self.spec.cursor_path,
            "start_value": self.start_value,
            "last_value": self.last_value,
            "from_checkpoint": self.from_checkpoint,
            "records_after_start": self.newer,
        }

    def _start_key(self) -> Any:
        if self.start_value is None:
            return None
        try:
            return self._key(self.start_value)
        except ValueError as exc:
            raise ConfigError(
                f"incremental: the start value is not a {self.spec.cursor_type}: {exc}"
            ) from None

    def _sort_key(self, value: Any, where: str) -> Any:
        try:
            return self._key(value)
        except ValueError as exc:
            raise SiteChangedError(
                f"{where}: cursor value at {self.spec.cursor_path!r} is not a "
                f"{self.spec.cursor_type}: {exc}"
            ) from None


__all__ = [
    "SORT_KEYS",
    "Cursor",
    "Incremental",
    "as_text",
    "identifier",
    "position",
    "timestamp",
]
