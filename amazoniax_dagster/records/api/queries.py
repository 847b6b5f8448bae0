"""The read API's SQL: items by keyset pagination, per-channel stats, metric counts."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from amazoniax_dagster.db.pg import Database

MAX_LIMIT = 1000


class BadCursor(ValueError):
    pass


@dataclass(frozen=True)
class ItemFilter:
    channel: str | None = None
    source_type: str | None = None
    q: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"id": last_id}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        last = value["id"]
    except (ValueError, KeyError, TypeError):
        raise BadCursor("the cursor is not one this API returned") from None
    if not isinstance(last, int):
        raise BadCursor("the cursor is not one this API returned")
    return last


COLUMNS = (
    "id, source_type, source_name, external_id, title, content, url, published_at, "
    "job_id, file_key, created_at, updated_at"
)


def items(
    db: Database, where: ItemFilter, *, limit: int, after: int | None
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of items in id order, and the cursor of the next page (None at the end)."""
    clauses, params = ["TRUE"], []  # type: tuple[list[str], list[Any]]
    if where.channel:
        clauses.append("source_name = %s")
        params.append(where.channel)
    if where.source_type:
        clauses.append("source_type = %s")
        params.append(where.source_type)
    if where.q:
        clauses.append("(title ILIKE %s OR content ILIKE %s)")
        pattern = "%" + where.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        params += [pattern, pattern]
    if where.since:
        clauses.append("published_at >= %s")
        params.append(where.since)
    if where.until:
        clauses.append("published_at < %s")
        params.append(where.until)
    if after is not None:
        clauses.append("id > %s")
        params.append(after)
    query = (
        f"SELECT {COLUMNS} FROM unified_items WHERE {' AND '.join(clauses)} ORDER BY id LIMIT %s"
    )
    with db.transaction() as sql:
        rows = sql.all(query, [*params, limit + 1])
    names = [c.strip() for c in COLUMNS.split(",")]
    page = [dict(zip(names, row, strict=True)) for row in rows[:limit]]
    more = len(rows) > limit
    return page, encode_cursor(page[-1]["id"]) if more and page else None


STATS = """
WITH j AS (
    SELECT channel_id, count(*) AS jobs,
        max(finished_at) FILTER (WHERE status = 'success') AS last_success,
        max(finished_at) FILTER (WHERE status = 'failed') AS last_failure
    FROM job_runs GROUP BY channel_id),
f AS (SELECT channel_id, count(*) AS files FROM file_metadata GROUP BY channel_id),
r AS (
    SELECT channel_id, sum(extracted) AS extracted, sum(extracted - failed) AS loaded,
        sum(failed) AS failed
    FROM record_files GROUP BY channel_id),
i AS (SELECT source_name AS channel_id, count(*) AS items FROM unified_items
      GROUP BY source_name)
SELECT c.channel_id, coalesce(j.jobs, 0), coalesce(f.files, 0), coalesce(r.extracted, 0),
    coalesce(r.loaded, 0), coalesce(r.failed, 0), coalesce(i.items, 0), j.last_success,
    j.last_failure
FROM (SELECT channel_id FROM j UNION SELECT channel_id FROM f UNION SELECT channel_id FROM i) c
LEFT JOIN j USING (channel_id) LEFT JOIN f USING (channel_id) LEFT JOIN r USING (channel_id)
LEFT JOIN i USING (channel_id)
WHERE %(channel)s::text IS NULL OR c.channel_id = %(channel)s
ORDER BY c.channel_id
"""
STAT_NAMES = (
    "channel",
    "jobs",
    "files",
    "records_extracted",
    "records_loaded",
    "records_failed",
    "items",
    "last_success",
    "last_failure",
)


def stats(db: Database, channel: str | None) -> list[dict[str, Any]]:
    with db.transaction() as sql:
        rows = sql.all(STATS, {"channel": channel})
    return [dict(zip(STAT_NAMES, row, strict=True)) for row in rows]


def metric_counts(db: Database) -> dict[str, Any]:
    with db.transaction() as sql:
        jobs = dict(sql.all("SELECT status, count(*) FROM job_runs GROUP BY status"))
        loaded = sql.scalar("SELECT coalesce(sum(extracted - failed), 0) FROM record_files")
        failed = sql.scalar("SELECT coalesce(sum(failed), 0) FROM record_files")
        items_count = sql.scalar("SELECT count(*) FROM unified_items")
        dead = sql.scalar("SELECT count(*) FROM dead_letters")
    return {
        "jobs": jobs,
        "records_loaded": int(loaded),
        "records_failed": int(failed),
        "items": int(items_count),
        "dead_letters": int(dead),
        "queue_depth": int(jobs.get("queued", 0)),
    }
