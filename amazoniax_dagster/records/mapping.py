"""Map a record to the unified schema, by the channel's ``records`` mapping or by detection.

A mapping names a path for each field (``"id"``, ``"meta.id"``, ``"links.0.href"``). A field
with no path, or whose path a record lacks (a folder mixes formats), is detected from the usual
key names; a record with no identifier gets a stable hash of its content as ``external_id``, so
reading it again finds the same row.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, NamedTuple

import orjson

from amazoniax_dagster.core.records_config import RecordMapping as RecordMapping

FIELDS = ("external_id", "title", "content", "url", "published_at")
# Key names tried, in order, for a field the mapping leaves out (compared case-insensitively,
# with "_" and "-" ignored).
DETECT: dict[str, tuple[str, ...]] = {
    "external_id": ("id", "guid", "uuid", "externalid", "identifier", "key", "slug"),
    "title": ("title", "name", "headline", "subject"),
    "content": ("content", "summary", "description", "body", "text", "abstract"),
    "url": ("url", "link", "href", "permalink", "uri"),
    "published_at": (
        "publishedat",
        "published",
        "pubdate",
        "date",
        "datetime",
        "createdat",
        "created",
        "updatedat",
        "updated",
        "timestamp",
        "time",
    ),
}
MAX_TEXT = 1_000_000
_NUMBER = re.compile(r"-?\d+(\.\d+)?")
# A record shape (its keys in order) -> where each field is detected; shapes kept per mapper.
MAX_SHAPES = 1024


class RecordError(ValueError):
    """The record cannot be mapped (a mapped field missing, a date that is no date)."""


class Item(NamedTuple):
    """A record in the unified schema, with the hash of everything that would be stored."""

    external_id: str
    title: str | None
    content: str | None
    url: str | None
    published_at: datetime | None
    raw: dict[str, Any]
    content_hash: str
    body: bytes  # ``raw`` as canonical JSON: what ``content_hash`` hashes and what is stored


def canonical(record: Any) -> str:
    return json.dumps(
        record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )


def canonical_bytes(record: Any) -> bytes:
    """``record`` as compact JSON with sorted keys, UTF-8 (what ``canonical`` gives, encoded)."""
    try:
        return orjson.dumps(record, default=str, option=orjson.OPT_SORT_KEYS)
    except (orjson.JSONEncodeError, TypeError):  # integers beyond 64 bits and the like
        return canonical(record).encode()


def lookup(record: Any, path: str) -> Any:
    """The value at a dotted ``path`` (list items by index), or None when any step is missing."""
    return _at(record, _steps(path))


Steps = tuple[tuple[str, int | None], ...]


def _steps(path: str | None) -> Steps:
    """A dotted path's steps: each a key, and the list index it also stands for."""
    if not path:
        return ()
    return tuple((s, int(s) if s.lstrip("-").isdigit() else None) for s in path.split("."))


def _at(record: Any, steps: Steps) -> Any:
    value = record
    for key, index in steps:
        if isinstance(value, dict):
            value = value.get(key)
        elif isinstance(value, list) and index is not None:
            value = value[index] if -len(value) <= index < len(value) else None
        else:
            return None
        if value is None:
            return None
    return value


@functools.lru_cache(maxsize=4096)
def _norm(key: str) -> str:
    return re.sub(r"[_\-\s]", "", key).lower()


def detect(record: dict[str, Any], field: str) -> Any:
    return _detected(record, _shape(tuple(record))[field])


# Where a field is looked for in a record of some shape: (key, loose) pairs in order; a loose
# key (any "...id" key, for external_id) counts only when it holds a non-empty string or int.
Shape = dict[str, tuple[tuple[str, bool], ...]]


@functools.lru_cache(maxsize=MAX_SHAPES)
def _shape(keys: tuple[str, ...]) -> Shape:
    norms = {_norm(k): k for k in keys}
    shape: Shape = {}
    for field, names in DETECT.items():
        found = [(norms[name], False) for name in names if name in norms]
        if field == "external_id":
            found += [(key, True) for norm, key in norms.items() if norm.endswith("id")]
        shape[field] = tuple(found)
    return shape


def _detected(record: dict[str, Any], where: tuple[tuple[str, bool], ...]) -> Any:
    for key, loose in where:
        value = record[key]
        if loose:
            if isinstance(value, str | int) and value != "":
                return value
        elif value not in (None, "", [], {}):
            return value
    return None


def _text(value: Any) -> str | None:
    if type(value) is str:
        return value[:MAX_TEXT] if value else None
    if value is None:
        return None
    if isinstance(value, dict):  # feedparser's {"value": ..., "type": ...} and similar
        value = value.get("value", value.get("href", canonical(value)))
    if isinstance(value, list):
        value = _text(value[0]) if value else None
    text = value if isinstance(value, str) else None if value is None else str(value)
    return text[:MAX_TEXT] if text else None


def parse_time(value: Any) -> datetime | None:
    """A timestamp from ISO 8601, RFC 2822 (feeds, mail) or epoch seconds/milliseconds."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise RecordError(f"not a date: {value!r}")
    if isinstance(value, int | float):
        seconds = value / 1000 if abs(value) > 1e11 else value
        return datetime.fromtimestamp(seconds, UTC)
    text = str(value).strip()
    if text[4:5] == "-":  # an ISO 8601 date first, as most feeds and APIs write them
        try:
            parsed = datetime.fromisoformat(text)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        except ValueError:
            pass
    if _NUMBER.fullmatch(text):
        return parse_time(float(text))
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            raise RecordError(f"not a date: {text[:80]!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _published(value: Any) -> datetime | None:
    return parse_time(value if isinstance(value, int | float) else _text(value))


# One field's value from a record: by the mapping's path, else detected.
Getter = Callable[[dict[str, Any]], Any]


class Mapper:
    """Maps records by one ``mapping``: paths split once, and per record shape (its keys in
    order) one getter per field, so a file of one shape pays the lookup work once."""

    def __init__(self, mapping: RecordMapping) -> None:
        self.required = frozenset(mapping.required)
        self.paths = tuple(
            (field, getattr(mapping, field), _steps(getattr(mapping, field))) for field in FIELDS
        )
        self._plans: dict[tuple[str, ...], tuple[Getter, ...]] = {}

    def item(self, record: dict[str, Any]) -> Item:
        """``record`` in the unified schema, or a ``RecordError`` saying what is wrong with it."""
        keys = tuple(record)
        plan = self._plans.get(keys) or self._plan(keys)
        ident, title, content, url, published = [get(record) for get in plan]
        if self.required:
            self._check(ident, title, content, url, published)
        body = canonical_bytes(record)
        digest = hashlib.sha256(body).hexdigest()
        external = _text(ident) or f"sha256:{digest}"
        return Item(
            external[:2000],
            _text(title),
            _text(content),
            _text(url),
            _published(published),
            record,
            digest,
            body,
        )

    def _check(self, *values: Any) -> None:
        for (field, path, _), value in zip(self.paths, values, strict=True):
            if (value is None or value == "") and field in self.required:
                raise RecordError(f"{field} is missing (path {path or 'detected'})")

    def _plan(self, keys: tuple[str, ...]) -> tuple[Getter, ...]:
        shape = _shape(keys)
        plan = tuple(_getter(steps, shape[field]) for field, _, steps in self.paths)
        if len(self._plans) >= MAX_SHAPES:
            self._plans.clear()
        self._plans[keys] = plan
        return plan


def _getter(steps: Steps, where: tuple[tuple[str, bool], ...]) -> Getter:
    """The getter of one field: the mapped path's value unless empty, else the detected one."""
    if steps:

        def mapped(record: dict[str, Any]) -> Any:
            value = _at(record, steps)
            return _detected(record, where) if value is None or value == "" else value

        return mapped
    if not where:
        return _nothing
    if len(where) == 1 and not where[0][1]:
        key = where[0][0]  # the usual case: one key of the usual names

        def single(record: dict[str, Any]) -> Any:
            value = record[key]
            return None if value is None or value == "" or value == [] or value == {} else value

        return single
    return functools.partial(_detected, where=where)


def _nothing(record: dict[str, Any]) -> None:
    return None


def to_item(record: dict[str, Any], mapping: RecordMapping) -> Item:
    """``record`` in the unified schema, or a ``RecordError`` saying what is wrong with it."""
    return _mapper(mapping).item(record)


@functools.lru_cache(maxsize=64)
def _mapper(mapping: RecordMapping) -> Mapper:
    return Mapper(mapping)
