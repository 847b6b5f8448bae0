"""Load items into ``unified_items``: batched upserts that rewrite a row only when it changed."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from amazoniax_dagster.db.pg import json_param
from amazoniax_dagster.records.mapping import Item, RecordError, RecordMapping, to_item
from amazoniax_dagster.records.readers import Read

if TYPE_CHECKING:
    from psycopg2.extensions import cursor

BATCH = 500

COLUMNS = (
    "source_type, source_name, external_id, title, content, url, published_at, raw, "
    "content_hash, job_id, file_key"
)
# A batch is COPYed into a session-local staging table, then merged in one statement.
STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS records_stage ON COMMIT DELETE ROWS"
    f" AS SELECT {COLUMNS} FROM unified_items WITH NO DATA"
)
MERGE = f"""
INSERT INTO unified_items AS u ({COLUMNS})
SELECT {COLUMNS} FROM records_stage
ON CONFLICT (source_type, source_name, external_id) DO UPDATE SET
    title = EXCLUDED.title, content = EXCLUDED.content, url = EXCLUDED.url,
    published_at = EXCLUDED.published_at, raw = EXCLUDED.raw,
    content_hash = EXCLUDED.content_hash, job_id = EXCLUDED.job_id,
    file_key = EXCLUDED.file_key, updated_at = now()
WHERE u.content_hash IS DISTINCT FROM EXCLUDED.content_hash
RETURNING (xmax = 0)
"""
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _cell(value: object) -> str:
    if value is None:
        return "\\N"
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return text.replace("\x00", "").translate(_ESCAPES)


@dataclass
class Counts:
    """What loading a file (or a run) did; ``errors`` keeps the first few failures."""

    extracted: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, other: Counts) -> None:
        self.extracted += other.extracted
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.failed += other.failed
        self.errors.extend(other.errors[: max(0, 20 - len(self.errors))])

    @property
    def loaded(self) -> int:
        return self.inserted + self.updated + self.unchanged


def items_of(reads: Iterable[Read], mapping: RecordMapping, counts: Counts) -> Iterator[Item]:
    """The items of ``reads``; malformed or unmappable records are counted in ``counts``."""
    for read in reads:
        counts.extracted += 1
        if read.record is None:
            _fail(counts, f"record {read.position}: {read.error}")
            continue
        try:
            yield to_item(read.record, mapping)
        except RecordError as exc:
            _fail(counts, f"record {read.position}: {exc}")


def _fail(counts: Counts, error: str) -> None:
    counts.failed += 1
    if len(counts.errors) < 20:
        counts.errors.append(error)


def upsert(
    cur: cursor,
    items: Iterable[Item],
    *,
    source_type: str,
    source_name: str,
    job_id: str,
    file_key: str,
    counts: Counts,
    batch: int = BATCH,
) -> None:
    """Upsert ``items`` in batches of ``batch``; adds inserted/updated/unchanged to ``counts``.

    Within a batch the last item of an ``external_id`` wins (PostgreSQL refuses to update one
    row twice in a statement)."""
    pending: dict[str, Item] = {}
    for item in items:
        if item.external_id in pending:
            counts.unchanged += 1  # superseded by a later record of the same id in the file
        pending[item.external_id] = item
        if len(pending) >= batch:
            _flush(cur, pending, source_type, source_name, job_id, file_key, counts)
            pending = {}
    if pending:
        _flush(cur, pending, source_type, source_name, job_id, file_key, counts)


def _flush(
    cur: cursor,
    pending: dict[str, Item],
    source_type: str,
    source_name: str,
    job_id: str,
    file_key: str,
    counts: Counts,
) -> None:
    fixed = "\t".join(map(_cell, (source_type, source_name)))
    tail = "\t".join(map(_cell, (job_id, file_key)))
    lines = [
        "\t".join(
            (
                fixed,
                *map(_cell, (i.external_id, i.title, i.content, i.url, i.published_at)),
                _cell(json_param(i.raw)),
                i.content_hash,
                tail,
            )
        )
        for i in pending.values()
    ]
    cur.execute(STAGE)
    cur.execute("TRUNCATE records_stage")
    cur.copy_expert(
        f"COPY records_stage ({COLUMNS}) FROM STDIN", io.StringIO("\n".join(lines) + "\n")
    )
    cur.execute(MERGE)
    result = cur.fetchall()
    inserted = sum(1 for (fresh,) in result if fresh)
    counts.inserted += inserted
    counts.updated += len(result) - inserted
    counts.unchanged += len(lines) - len(result)
