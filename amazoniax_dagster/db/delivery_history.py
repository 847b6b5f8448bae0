"""The fetcher DB's delivery history: which files each job delivered and which source
identities it saw; mixed into ``FetcherDB``. Look-ups are one query per table per job."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from amazoniax_dagster.db.pg import unnest_columns
from amazoniax_dagster.db.rows import ChannelHistory, DeliveredFile, SourceIdentity

if TYPE_CHECKING:
    from amazoniax_dagster.db.pg import Sql


class DeliveryHistoryMixin:
    """File history; ``FetcherDB`` provides the transaction."""

    if TYPE_CHECKING:

        def _transaction(self, what: str) -> AbstractContextManager[Sql]: ...

    def load_history(self, channel_id: str, *, exclude_job_id: str | None = None) -> ChannelHistory:
        """The channel's delivery history in two queries. ``exclude_job_id`` leaves out a job's
        own records, so that re-running a job classifies its files exactly as the first try."""
        history = ChannelHistory()
        # A job id is never NULL, so "<> NULL" would leave out every row: spell it out.
        other_jobs = "AND job_id <> %s" if exclude_job_id is not None else ""
        params = (channel_id, exclude_job_id) if exclude_job_id is not None else (channel_id,)
        with self._transaction("read the channel history") as s:
            files = s.all(
                "SELECT file_path, content_hash FROM file_metadata"
                f" WHERE channel_id = %s {other_jobs} ORDER BY id",
                params,
            )
            idents = s.all(
                "SELECT source_key, file_path, size, etag, mtime, content_hash FROM source_files"
                f" WHERE channel_id = %s {other_jobs}",
                params,
            )
        for path, digest in files:
            history.latest_hash_by_path[path] = digest  # ordered by id: last one wins
            history.delivered_hashes.add(digest)
        for row in idents:
            history.identities[row[0]] = SourceIdentity(*row)
        return history

    def record_files(
        self,
        *,
        job_id: str,
        channel_id: str,
        delivered: Iterable[DeliveredFile],
        identities: Iterable[SourceIdentity],
    ) -> None:
        """Store a job's delivered files and the listing identities it saw, in one transaction.
        Idempotent: re-recording the same job changes nothing.

        One statement per table whatever the count (one array per column, unnested by the
        server): a row-by-row ``executemany`` took 2-4 s for 10,000 files."""
        files = [
            (
                f.file_path,
                f.s3_key,
                f.content_hash,
                f.file_size,
                f.classification,
                f.validation,
                f.quarantined,
            )
            for f in delivered
        ]
        # One row per source key: ON CONFLICT DO UPDATE may not touch a row twice in one
        # statement (a listing has each key once; the last one wins, as before).
        idents = [
            (i.source_key, i.file_path, i.size, i.etag, i.mtime, i.content_hash)
            for i in {i.source_key: i for i in identities}.values()
        ]
        with self._transaction("record the job's files") as s:
            if files:
                s.execute(
                    "INSERT INTO file_metadata (job_id, channel_id, file_path, s3_key,"
                    " content_hash, file_size, classification, validation, quarantined)"
                    " SELECT %s, %s, * FROM unnest(%s::text[], %s::text[], %s::text[],"
                    " %s::bigint[], %s::text[], %s::text[], %s::boolean[])"
                    " ON CONFLICT (job_id, file_path) DO NOTHING",
                    (job_id, channel_id, *unnest_columns(files, 7)),
                )
            if idents:
                s.execute(
                    "INSERT INTO source_files (channel_id, job_id, source_key, file_path, size,"
                    " etag, mtime, content_hash)"
                    " SELECT %s, %s, * FROM unnest(%s::text[], %s::text[], %s::bigint[],"
                    " %s::text[], %s::timestamptz[], %s::text[])"
                    " ON CONFLICT (channel_id, source_key) DO UPDATE SET"
                    " file_path = EXCLUDED.file_path, size = EXCLUDED.size,"
                    " etag = EXCLUDED.etag, mtime = EXCLUDED.mtime,"
                    " content_hash = EXCLUDED.content_hash, job_id = EXCLUDED.job_id,"
                    " updated_at = now()",
                    (channel_id, job_id, *unnest_columns(idents, 6)),
                )

    def job_files(self, job_id: str) -> list[DeliveredFile]:
        with self._transaction("read the job's files") as s:
            rows = s.all(
                "SELECT file_path, s3_key, content_hash, file_size, classification, validation,"
                " quarantined FROM file_metadata WHERE job_id = %s ORDER BY id",
                (job_id,),
            )
        return [DeliveredFile(*row) for row in rows]
