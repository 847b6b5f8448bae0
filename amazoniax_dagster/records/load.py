"""Load items into ``unified_items``: batched upserts that rewrite a row only when it changed."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from amazoniax_dagster.records.mapping import Item, Mapper, RecordError, RecordMapping
from amazoniax_dagster.records.readers import Read

if TYPE_CHECKING:
    from psycopg2.extensions import cursor

# A batch is at most this many rows or bytes of COPY text; two batches are held at a time.
BATCH = 20_000
BATCH_BYTES = 16 << 20

COLUMNS = (
    "source_type, source_name, external_id, title, content, url, published_at, raw, "
    "content_hash, job_id, file_key"
)
# One loader per channel at a time: a batch's new rows are found, then COPYed straight in.
LOCK = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))"
# Whether the channel has any row yet: a first load COPYs its batches straight in.
ANY_ROW = """
SELECT EXISTS (SELECT 1 FROM unified_items WHERE source_type = %s AND source_name = %s)
"""
# One probe of the unique index per key (LIMIT keeps the planner from scanning the channel).
EXISTING = """
SELECT k.external_id, u.content_hash FROM unnest(%s::text[]) AS k(external_id)
CROSS JOIN LATERAL (
    SELECT content_hash FROM unified_items
    WHERE source_type = %s AND source_name = %s AND external_id = k.external_id LIMIT 1
) AS u
"""
# Changed rows are COPYed into a session-local staging table, then updated in one statement.
STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS records_stage ON COMMIT DELETE ROWS"
    f" AS SELECT {COLUMNS} FROM unified_items WITH NO DATA"
)
UPDATE = """
UPDATE unified_items AS u SET
    title = s.title, content = s.content, url = s.url, published_at = s.published_at,
    raw = s.raw, content_hash = s.content_hash, job_id = s.job_id, file_key = s.file_key,
    updated_at = now()
FROM records_stage AS s
WHERE (u.source_type, u.source_name, u.external_id) = (s.source_type, s.source_name, s.external_id)
    AND u.content_hash IS DISTINCT FROM s.content_hash
"""
_NULL = "\\N"
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _cell(value: object) -> str:
    if value is None:
        return _NULL
    return _text_cell(value.isoformat() if hasattr(value, "isoformat") else str(value))


def _text_cell(text: str | None) -> str:
    if text is None:
        return _NULL
    if "\\" not in text and text.isprintable():  # no tab, newline, CR or NUL: as it is
        return text
    return text.replace("\x00", "").translate(_ESCAPES)


def _row(fixed: str, item: Item, tail: str) -> str:
    """``item`` as a line of COPY text, newline included; its JSON body has no raw tab or
    newline to escape."""
    external_id, title, content, url, published = item[:5]
    published_cell = _NULL if published is None else published.isoformat()
    body = item.body.decode().replace("\\", "\\\\")
    texts = f"{external_id}{title or ''}{content or ''}{url or ''}"
    if "\\" not in texts and texts.isprintable():  # no text to escape: the usual case
        return (
            f"{fixed}\t{external_id}\t{_NULL if title is None else title}"
            f"\t{_NULL if content is None else content}\t{_NULL if url is None else url}"
            f"\t{published_cell}\t{body}\t{item.content_hash}\t{tail}\n"
        )
    cells = map(_text_cell, (external_id, title, content, url))
    return "\t".join((fixed, *cells, published_cell, body, item.content_hash, tail)) + "\n"


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

    Within a batch the last item of an ``external_id`` wins. Each batch looks up the rows it
    already has: new rows are COPYed into ``unified_items``, changed ones updated, unchanged
    ones left alone. While the channel shows no stored rows (its first load, or the previous
    batch found none of its ids) a batch is COPYed straight in, with no lookup; should one of
    its ids be stored after all, the unique key refuses the COPY, it is undone to its
    savepoint and the batch takes the lookup path. A batch is sent by a second thread while the
    next is mapped, so the database and the mapping work at once. Loads of one channel wait for
    each other (a transaction lock), so no other load can insert a row between the lookup and
    the COPY."""
    fixed = "\t".join(map(_cell, (source_type, source_name)))
    tail = "\t".join(map(_cell, (job_id, file_key)))
    cur.execute(LOCK, (f"unified_items/{source_type}/{source_name}",))
    cur.execute(ANY_ROW, (source_type, source_name))
    (stored,) = cur.fetchone() or (True,)
    sent = _Sender(cur, source_type, source_name, fresh=not stored)
    with ThreadPoolExecutor(1, thread_name_prefix="records-upsert") as sender:
        sending: Future[tuple[int, int, int]] | None = None
        pending: dict[str, tuple[str, str]] = {}
        size = 0
        for item in items:
            key = item.external_id.replace("\x00", "")  # as stored: COPY text has no NUL
            if key in pending:
                counts.unchanged += 1  # superseded by a later record of the same id in the file
            row = _row(fixed, item, tail)
            pending[key] = (row, item.content_hash)
            size += len(row)
            if len(pending) >= batch or size >= BATCH_BYTES:
                _add(counts, sending)
                sending = sender.submit(sent.flush, pending)
                pending, size = {}, 0
        _add(counts, sending)
        if pending:
            _add(counts, sender.submit(sent.flush, pending))


def _add(counts: Counts, sending: Future[tuple[int, int, int]] | None) -> None:
    if sending is None:
        return
    inserted, updated, unchanged = sending.result()
    counts.inserted += inserted
    counts.updated += updated
    counts.unchanged += unchanged


@dataclass
class _Sender:
    cur: cursor
    source_type: str
    source_name: str
    fresh: bool = False  # no stored row expected: try the batch straight in
    staged: bool = False

    def flush(self, pending: dict[str, tuple[str, str]]) -> tuple[int, int, int]:
        """Write one batch (external_id -> (COPY row, hash)): (inserted, updated, unchanged)."""
        if self.fresh and self._copy_new(pending):
            return len(pending), 0, 0
        self.cur.execute(EXISTING, (list(pending), self.source_type, self.source_name))
        stored = dict(self.cur.fetchall())
        self.fresh = not stored
        new = [row for key, (row, _) in pending.items() if key not in stored]
        changed = [
            row for key, (row, digest) in pending.items() if stored.get(key, digest) != digest
        ]
        if new:
            self._copy("unified_items", new)
        updated = 0
        if changed:
            if not self.staged:
                self.cur.execute(STAGE)
                self.staged = True
            self.cur.execute("TRUNCATE records_stage")
            self._copy("records_stage", changed)
            self.cur.execute(UPDATE)
            updated = self.cur.rowcount
        return len(new), updated, len(pending) - len(new) - updated

    def _copy_new(self, pending: dict[str, tuple[str, str]]) -> bool:
        """COPY the batch as all new; False (and nothing written) when one of its ids is stored."""
        from psycopg2.errors import UniqueViolation

        self.cur.execute("SAVEPOINT records_batch")
        try:
            self._copy("unified_items", [row for row, _ in pending.values()])
        except UniqueViolation:
            self.cur.execute("ROLLBACK TO SAVEPOINT records_batch")
            self.fresh = False
            return False
        self.cur.execute("RELEASE SAVEPOINT records_batch")
        return True

    def _copy(self, table: str, rows: list[str]) -> None:
        data = "".join(rows).encode()
        # One read of the whole batch: each read takes the GIL back from the mapping thread.
        self.cur.copy_expert(f"COPY {table} ({COLUMNS}) FROM STDIN", io.BytesIO(data), len(data))
