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
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

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


class RecordError(ValueError):
    """The record cannot be mapped (a mapped field missing, a date that is no date)."""


@dataclass(frozen=True)
class Item:
    """A record in the unified schema, with the hash of everything that would be stored."""

    external_id: str
    title: str | None
    content: str | None
    url: str | None
    published_at: datetime | None
    raw: dict[str, Any]
    content_hash: str


def canonical(record: Any) -> str:
    return json.dumps(
        record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )


def lookup(record: Any, path: str) -> Any:
    """The value at a dotted ``path`` (list items by index), or None when any step is missing."""
    value = record
    for step in path.split("."):
        if isinstance(value, dict):
            value = value.get(step)
        elif isinstance(value, list) and step.lstrip("-").isdigit():
            index = int(step)
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
    keys = {_norm(k): k for k in record}
    for name in DETECT[field]:
        if name in keys and record[keys[name]] not in (None, "", [], {}):
            return record[keys[name]]
    if field == "external_id":
        for norm, key in keys.items():
            if norm.endswith("id") and isinstance(record[key], str | int) and record[key] != "":
                return record[key]
    return None


def _text(value: Any) -> str | None:
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
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
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


def to_item(record: dict[str, Any], mapping: RecordMapping) -> Item:
    """``record`` in the unified schema, or a ``RecordError`` saying what is wrong with it."""
    values: dict[str, Any] = {}
    for field in FIELDS:
        path = getattr(mapping, field)
        value = lookup(record, path) if path else None
        if value in (None, ""):  # not mapped, or not in this file's records: detected
            value = detect(record, field)
        if value in (None, "") and field in mapping.required:
            raise RecordError(f"{field} is missing (path {path or 'detected'})")
        values[field] = value
    body = canonical(record)
    digest = hashlib.sha256(body.encode()).hexdigest()
    external = _text(values["external_id"]) or f"sha256:{digest}"
    return Item(
        external_id=external[:2000],
        title=_text(values["title"]),
        content=_text(values["content"]),
        url=_text(values["url"]),
        published_at=_published(values["published_at"]),
        raw=record,
        content_hash=digest,
    )
