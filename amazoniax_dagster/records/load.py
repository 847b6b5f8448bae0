"""Load items into ``unified_items``: batched upserts that rewrite a row only when it changed."""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from amazoniax_dagster.records.mapping import Item, Mapper, RecordError, RecordMapping
from amazoniax_dagster.records.readers import Read

if TYPE_CHECKING:
    from psycopg2.extensions import cursor

BATCH = 5000

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
WITH merged AS (
    INSERT INTO unified_items AS u ({COLUMNS})
    SELECT {COLUMNS} FROM records_stage
    ON CONFLICT (source_type, source_name, external_id) DO UPDATE SET
        title = EXCLUDED.title, content = EXCLUDED.content, url = EXCLUDED.url,
        published_at = EXCLUDED.published_at, raw = EXCLUDED.raw,
        content_hash = EXCLUDED.content_hash, job_id = EXCLUDED.job_id,
        file_key = EXCLUDED.file_key, updated_at = now()
    WHERE u.content_hash IS DISTINCT FROM EXCLUDED.content_hash
    RETURNING (xmax = 0) AS fresh
)
SELECT count(*) FILTER (WHERE fresh), count(*) FROM merged
"""
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_SPECIAL = re.compile(r"[\\\t\n\r\x00]")


def _cell(value: object) -> str:
    if value is None:
        return "\\N"
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    if _SPECIAL.search(text) is None:
        return text
    return text.replace("\x00", "").translate(_ESCAPES)


def _row(fixed: str, item: Item, tail: str) -> str:
    """``item`` as a line of COPY text; its JSON body has no raw tab or newline to escape."""
    return "\t".join(
        (
            fixed,
            _cell(item.external_id),
            _cell(item.title),
            _cell(item.content),
            _cell(item.url),
            _cell(item.published_at),
            item.body.decode().replace("\\", "\\\\"),
            item.content_hash,
            tail,
        )
    )


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
    mapper = Mapper(mapping)
    for read in reads:
        counts.extracted += 1
        if read.record is None:
            _fail(counts, f"record {read.position}: {read.error}")
            continue
        try:
            yield mapper.item(read.record)
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
    row twice in a statement). A batch is sent by a second thread while the next is mapped, so
    the database and the mapping work at once; at most two batches are held."""
    fixed = "\t".join(map(_cell, (source_type, source_name)))
    tail = "\t".join(map(_cell, (job_id, file_key)))
    cur.execute(STAGE)
    with ThreadPoolExecutor(1, thread_name_prefix="records-upsert") as sender:
        sending: Future[tuple[int, int, int]] | None = None
        pending: dict[str, str] = {}
        for item in items:
            if item.external_id in pending:
                counts.unchanged += 1  # superseded by a later record of the same id in the file
            pending[item.external_id] = _row(fixed, item, tail)
            if len(pending) >= batch:
                _add(counts, sending)
                sending = sender.submit(_flush, cur, list(pending.values()))
                pending = {}
        _add(counts, sending)
        if pending:
            _add(counts, sender.submit(_flush, cur, list(pending.values())))


def _add(counts: Counts, sending: Future[tuple[int, int, int]] | None) -> None:
    if sending is None:
        return
    inserted, merged, sent = sending.result()
    counts.inserted += inserted
    counts.updated += merged - inserted
    counts.unchanged += sent - merged


def _flush(cur: cursor, rows: list[str]) -> tuple[int, int, int]:
    """COPY ``rows`` into the stage and merge them: (inserted, inserted + updated, sent)."""
    data = ("\n".join(rows) + "\n").encode()
    cur.execute("TRUNCATE records_stage")
    # One read of the whole batch: each read takes the GIL back from the mapping thread.
    cur.copy_expert(f"COPY records_stage ({COLUMNS}) FROM STDIN", io.BytesIO(data), len(data))
    cur.execute(MERGE)
    inserted, merged = cur.fetchone() or (0, 0)
    return inserted, merged, len(rows)
