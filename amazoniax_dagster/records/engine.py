"""Load a job folder's records into ``unified_items``, one transaction per file.

A file's records and its ``record_files`` row commit together, so a run that stops (killed,
crashed) loses at most the file it was loading, and the next run starts from the first file
not yet listed. Upserts make that re-read harmless: nothing is ever loaded twice.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from amazoniax_dagster.db.pg import Database
from amazoniax_dagster.records.load import Counts, items_of, upsert
from amazoniax_dagster.records.mapping import RecordMapping
from amazoniax_dagster.records.readers import NotRecords, UnreadableFile, read_records

log = logging.getLogger(__name__)

Status = Literal["success", "partial_success"]


class Closeable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


class Folder(Protocol):
    """Where a job's files are: the output bucket, or anything listing and opening keys."""

    def list_keys(self, prefix: str) -> list[str]: ...

    def open(self, key: str) -> Closeable: ...


@dataclass
class LoadResult:
    counts: Counts = field(default_factory=Counts)
    files: int = 0
    resumed: int = 0  # files an earlier run of the job had loaded already
    other: int = 0  # files of no records format
    unreadable: list[str] = field(default_factory=list)

    @property
    def status(self) -> Status:
        return "partial_success" if self.counts.failed or self.unreadable else "success"


class _Hashing:
    def __init__(self, stream: Closeable) -> None:
        self._stream = stream
        self.sha256 = hashlib.sha256()

    def read(self, size: int = -1, /) -> bytes:
        data = self._stream.read(size)
        self.sha256.update(data)
        return data


RECORD_FILE = """
INSERT INTO record_files (channel_id, file_key, content_hash, job_id, extracted, inserted,
    updated, failed)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (channel_id, file_key) DO NOTHING
"""


PENDING = """
SELECT f.job_id, f.s3_key FROM file_metadata f
WHERE f.channel_id = %s AND NOT f.quarantined AND NOT EXISTS (
    SELECT 1 FROM record_files r WHERE r.channel_id = f.channel_id AND r.file_key = f.s3_key)
ORDER BY f.id
"""


def pending_files(db: Database, channel_id: str) -> list[tuple[str, str]]:
    """(job_id, key) of the channel's delivered files whose records are not loaded yet."""
    with db.transaction() as sql:
        return [(job, key) for job, key in sql.all(PENDING, (channel_id,))]


def load_folder(
    db: Database,
    folder: Folder,
    prefix: str,
    *,
    channel_id: str,
    job_id: str,
    source_type: str,
    mapping: RecordMapping,
    on_file: Callable[[str, Counts], None] | None = None,
) -> LoadResult:
    """Load every file under ``prefix`` (one job's folder) not loaded yet."""
    keys = sorted(k for k in folder.list_keys(prefix) if not k.endswith("/"))
    with db.transaction() as sql:
        done = {
            key
            for (key,) in sql.all(
                "SELECT file_key FROM record_files WHERE channel_id = %s AND file_key = ANY(%s)",
                (channel_id, keys),
            )
        }
    result = LoadResult(resumed=len(done))
    todo = [(job_id, key) for key in keys if key not in done]
    return load_files(
        db,
        folder,
        todo,
        channel_id=channel_id,
        source_type=source_type,
        mapping=mapping,
        on_file=on_file,
        result=result,
    )


def load_files(
    db: Database,
    folder: Folder,
    files: list[tuple[str, str]],
    *,
    channel_id: str,
    source_type: str,
    mapping: RecordMapping,
    on_file: Callable[[str, Counts], None] | None = None,
    result: LoadResult | None = None,
) -> LoadResult:
    """Load the records of ``files`` ((job_id, key) pairs), one transaction per file."""
    result = result or LoadResult()
    for job_id, key in files:
        counts = Counts()
        records_file = True
        stream = folder.open(key)
        try:
            with db.transaction() as sql:
                hashing = _Hashing(stream)
                try:
                    reads = read_records(key, hashing)
                    items = items_of(reads, mapping, counts)
                    upsert(
                        sql.cursor,
                        items,
                        source_type=source_type,
                        source_name=channel_id,
                        job_id=job_id,
                        file_key=key,
                        counts=counts,
                    )
                except NotRecords:
                    records_file = False  # listed as done, with no records: not read again
                except UnreadableFile as exc:
                    log.warning("records: %s", exc)
                    result.unreadable.append(str(exc)[:500])
                    continue
                sql.execute(
                    RECORD_FILE,
                    (
                        channel_id,
                        key,
                        hashing.sha256.hexdigest(),
                        job_id,
                        counts.extracted,
                        counts.inserted,
                        counts.updated,
                        counts.failed,
                    ),
                )
        finally:
            stream.close()
        for error in counts.errors:
            log.warning("records: %s: %s", key, error)
        result.files += records_file
        result.other += not records_file
        result.counts.add(counts)
        if on_file is not None:
            on_file(key, counts)
    return result
