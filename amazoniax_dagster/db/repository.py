"""``FetcherDB``: every read and write of the fetcher DB goes through here.

Look-ups are batched per job (one query for a channel's whole history), never per file. The
statements are plain SQL on the tables of ``models`` (see ``pg`` for why not SQLAlchemy).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from amazoniax_dagster.core.errors import ConfigError, InfrastructureError
from amazoniax_dagster.core.sealing import SecretCipher
from amazoniax_dagster.db.fetchers import FetcherRegistryMixin
from amazoniax_dagster.db.pg import Database, Sql, json_param
from amazoniax_dagster.db.rows import (
    ChannelHistory,
    ChannelHost,
    ChannelSummary,
    DeadLetterRow,
    DeliveredFile,
    DeliveredOutput,
    JobFailure,
    JobRecord,
    RecentOutputs,
    RetryConfig,
    SourceIdentity,
    StoredChannel,
    _fetched_count,
)

# job_runs columns in JobRecord's order
_JOB_COLUMNS = (
    "job_id, channel_id, source_type, flow, status, message, metadata_json, s3_output_path, "
    "dagster_run_id, parsers_published, status_published, created_at, started_at, finished_at"
)


class FetcherDB(FetcherRegistryMixin):
    def __init__(self, url: str, cipher: SecretCipher, *, pool_size: int = 5) -> None:
        self.url = url  # holds the password: never log it
        self.database = Database(url, pool_size=pool_size)
        self._cipher = cipher

    def close(self) -> None:
        self.database.close()

    def migrate(self) -> None:
        # Alembic and SQLAlchemy only where migrations run, never in a job.
        from sqlalchemy.exc import SQLAlchemyError

        from amazoniax_dagster.db import migrate

        try:
            migrate.upgrade_database(self.url)
        except SQLAlchemyError as exc:
            raise InfrastructureError(
                f"could not migrate the fetcher DB: {_first_line(exc)}"
            ) from exc

    def ping(self) -> None:
        with self._transaction("reach the fetcher DB") as s:
            s.execute("SELECT 1")

    # -- channels -----------------------------------------------------------------------------

    def save_channel(self, channel_id: str, source_type: str, config: Mapping[str, Any]) -> None:
        with self._transaction("store the channel config") as s:
            s.execute(
                "INSERT INTO channels (channel_id, source_type, config_json) VALUES (%s, %s, %s)"
                " ON CONFLICT (channel_id) DO UPDATE SET source_type = EXCLUDED.source_type,"
                " config_json = EXCLUDED.config_json, updated_at = now()",
                (channel_id, source_type, json_param(self._cipher.seal(config))),
            )

    def get_channels(self, channel_ids: Iterable[str]) -> dict[str, StoredChannel]:
        """The stored channels among ``channel_ids`` (unsealed), in one query."""
        ids = sorted(set(channel_ids))
        if not ids:
            return {}
        with self._transaction("read channel configs") as s:
            rows = s.all(
                "SELECT channel_id, source_type, config_json FROM channels"
                " WHERE channel_id = ANY(%s)",
                (ids,),
            )
        return {c: StoredChannel(c, t, self._cipher.unseal(sealed)) for c, t, sealed in rows}

    def store_jobs(
        self, jobs: Sequence[tuple[str, str, str, str, Mapping[str, Any] | None]]
    ) -> None:
        """Store a batch of accepted jobs in one transaction: each job's config as its channel's
        latest (in order, so the last message for a channel wins) and the job as queued.
        Items are (job_id, channel_id, source_type, flow, config or None). Idempotent; a job
        that ended badly (failed, canceled, needing review) is queued again with the new
        message's type and config, for its next attempt."""
        latest: dict[str, tuple[str, Any]] = {}  # channel_id -> (source_type, sealed config)
        job_rows = []
        for job_id, channel_id, source_type, flow, config in jobs:
            sealed = json_param(self._cipher.seal(config)) if config is not None else None
            if sealed is not None:
                latest[channel_id] = (source_type, sealed)
            job_rows.append((job_id, channel_id, source_type, flow, sealed))
        with self._transaction("store the jobs") as s:
            if latest:
                # One statement whatever the batch size: one array per column, unnested.
                s.execute(
                    "INSERT INTO channels (channel_id, source_type, config_json)"
                    " SELECT * FROM unnest(%s::text[], %s::text[], %s::jsonb[])"
                    " ON CONFLICT (channel_id) DO UPDATE SET source_type = EXCLUDED.source_type,"
                    " config_json = EXCLUDED.config_json, updated_at = now()",
                    _columns([(c, t, sealed) for c, (t, sealed) in latest.items()], 3),
                )
            if job_rows:
                # One row per job_id (a batch may repeat a message): an upsert touches a row once.
                job_rows = list({row[0]: row for row in job_rows}.values())
                s.execute(
                    "INSERT INTO job_runs (job_id, channel_id, source_type, flow, config_json,"
                    " status, metadata_json, parsers_published, status_published)"
                    " SELECT *, 'queued', '{}'::jsonb, false, false"
                    " FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::jsonb[])"
                    " ON CONFLICT (job_id) DO UPDATE SET source_type = EXCLUDED.source_type,"
                    " flow = EXCLUDED.flow, config_json = EXCLUDED.config_json,"
                    " status = 'queued', message = NULL"
                    " WHERE job_runs.status IN ('failed', 'canceled', 'requires_human_review')",
                    _columns(job_rows, 5),
                )

    def get_channel(self, channel_id: str) -> StoredChannel:
        with self._transaction("read the channel config") as s:
            row = s.first(
                "SELECT source_type, config_json FROM channels WHERE channel_id = %s",
                (channel_id,),
            )
        if row is None:
            raise ConfigError(
                f"channel {channel_id!r} has no stored config: send a message with a config first"
            )
        return StoredChannel(channel_id, row[0], self._cipher.unseal(row[1]))

    def scheduled_channels(self) -> list[tuple[str, str, str]]:
        """(channel_id, source_type, schedule) of every channel whose config has a schedule."""
        with self._transaction("list scheduled channels") as s:
            rows = s.all(
                "SELECT channel_id, source_type, config_json ->> 'schedule' FROM channels"
                " WHERE config_json ->> 'schedule' IS NOT NULL ORDER BY channel_id"
            )
        return [(c, t, str(e)) for c, t, e in rows]

    def list_channel_ids(self) -> list[str]:
        with self._transaction("list channels") as s:
            return [c for (c,) in s.all("SELECT channel_id FROM channels ORDER BY channel_id")]

    # -- jobs ---------------------------------------------------------------------------------

    def queue_job(
        self,
        *,
        job_id: str,
        channel_id: str,
        source_type: str,
        flow: str,
        config: Mapping[str, Any] | None,
    ) -> bool:
        """Record a job as queued with its own config snapshot. False if the job was known."""
        sealed = json_param(self._cipher.seal(config)) if config is not None else None
        with self._transaction("queue the job") as s:
            inserted = s.first(
                "INSERT INTO job_runs (job_id, channel_id, source_type, flow, status, config_json,"
                " metadata_json, parsers_published, status_published)"
                " VALUES (%s, %s, %s, %s, 'queued', %s, '{}', false, false)"
                " ON CONFLICT (job_id) DO NOTHING RETURNING id",
                (job_id, channel_id, source_type, flow, sealed),
            )
        return inserted is not None

    def job_config(self, job_id: str) -> dict[str, Any] | None:
        """The config snapshot stored with the job (unsealed), if it has one."""
        with self._transaction("read the job config") as s:
            sealed = s.scalar("SELECT config_json FROM job_runs WHERE job_id = %s", (job_id,))
        return self._cipher.unseal(sealed) if sealed is not None else None

    def start_job(
        self, *, job_id: str, channel_id: str, source_type: str, flow: str, run_id: str | None
    ) -> None:
        with self._transaction("record the job start") as s:
            s.execute(
                "INSERT INTO job_runs (job_id, channel_id, source_type, flow, status,"
                " dagster_run_id, started_at, metadata_json, parsers_published, status_published)"
                " VALUES (%s, %s, %s, %s, 'running', %s, %s, '{}', false, false)"
                " ON CONFLICT (job_id) DO UPDATE SET status = 'running',"
                " dagster_run_id = EXCLUDED.dagster_run_id, started_at = EXCLUDED.started_at,"
                " message = NULL",
                (job_id, channel_id, source_type, flow, run_id, datetime.now(UTC)),
            )

    def finish_job(
        self,
        job_id: str,
        *,
        status: str,
        message: str,
        metadata: Mapping[str, Any] | None = None,
        s3_output_path: str | None = None,
    ) -> None:
        values: dict[str, Any] = {
            "status": status,
            "message": message,
            "finished_at": datetime.now(UTC),
        }
        if metadata is not None:
            values["metadata_json"] = json_param(dict(metadata))
        if s3_output_path is not None:
            values["s3_output_path"] = s3_output_path
        with self._transaction("record the job result") as s:
            _update_job(s, job_id, values)

    def mark_published(self, job_id: str, *, parsers: bool = False, status: bool = False) -> None:
        values = {}
        if parsers:
            values["parsers_published"] = True
        if status:
            values["status_published"] = True
        if not values:
            return
        with self._transaction("record the publication") as s:
            _update_job(s, job_id, values)

    def get_job(self, job_id: str) -> JobRecord | None:
        with self._transaction("read the job") as s:
            row = s.first(f"SELECT {_JOB_COLUMNS} FROM job_runs WHERE job_id = %s", (job_id,))
        if row is None:
            return None
        values = list(row)
        values[6] = dict(values[6] or {})  # metadata_json
        return JobRecord(*values)

    def recent_outcomes(self, channel_id: str, limit: int) -> list[tuple[str, str | None]]:
        """(status, error_class) of the channel's latest finished jobs, newest first."""
        with self._transaction("read the channel's recent outcomes") as s:
            rows = s.all(
                "SELECT status, metadata_json FROM job_runs"
                " WHERE channel_id = %s AND finished_at IS NOT NULL"
                " ORDER BY finished_at DESC, id DESC LIMIT %s",
                (channel_id, limit),
            )
        return [(status, (meta or {}).get("error_class")) for status, meta in rows]

    def heal_jobs_since_success(self, channel_id: str) -> int:
        """Heal-mode jobs of the channel since its last successful job: the heal attempts
        used on the current breakage (bounded by ``max_heal_retries``)."""
        with self._transaction("count the heal attempts") as s:
            count = s.scalar(
                "SELECT count(*) FROM job_runs"
                " WHERE channel_id = %(channel)s AND flow = 'heal' AND created_at > coalesce("
                "   (SELECT max(created_at) FROM job_runs"
                "    WHERE channel_id = %(channel)s AND status = 'success'),"
                "   '-infinity')",
                {"channel": channel_id},
            )
        return int(count or 0)

    def recent_outputs(
        self, channel_id: str, *, since: datetime, max_files: int = 5000
    ) -> RecentOutputs:
        """What the channel's successful jobs since ``since`` fetched: files per job (from
        each job's summary) and the files they delivered, newest first (validation input)."""
        with self._transaction("read the channel's recent outputs") as s:
            metadata = [
                meta or {}
                for (meta,) in s.all(
                    "SELECT metadata_json FROM job_runs"
                    " WHERE channel_id = %s AND status = 'success' AND created_at >= %s"
                    " ORDER BY created_at DESC",
                    (channel_id, since),
                )
            ]
            delivered = [
                DeliveredOutput(*row)
                for row in s.all(
                    "SELECT file_path, s3_key, file_size FROM file_metadata"
                    " WHERE channel_id = %s AND created_at >= %s AND NOT quarantined"
                    " ORDER BY id DESC LIMIT %s",
                    (channel_id, since, max_files),
                )
            ]
        return RecentOutputs(
            file_counts=[_fetched_count(meta) for meta in metadata],
            files=delivered,
            record_counts=[int(m["records"]) for m in metadata if m.get("records") is not None],
        )

    # -- read-only summaries (the command line) ------------------------------------------------

    def list_channels(self) -> list[ChannelSummary]:
        """Every stored channel, by id, without its config."""
        with self._transaction("list channels") as s:
            rows = s.all(
                "SELECT channel_id, source_type, created_at, updated_at FROM channels"
                " ORDER BY channel_id"
            )
        return [ChannelSummary(*row) for row in rows]

    def channel_source_types(self, channel_ids: Iterable[str]) -> dict[str, str]:
        """channel_id -> source_type for the given channels that are stored."""
        ids = sorted(set(channel_ids))
        if not ids:
            return {}
        with self._transaction("read channel source types") as s:
            rows = s.all(
                "SELECT channel_id, source_type FROM channels WHERE channel_id = ANY(%s)", (ids,)
            )
        return dict(rows)

    def channel_hosts(self) -> list[ChannelHost]:
        """The server address of every stored FTP/FTPS/SFTP channel (never its secrets)."""
        with self._transaction("list channel hosts") as s:
            rows = s.all(
                "SELECT channel_id, config_json FROM channels WHERE source_type = 'ftp'"
                " ORDER BY channel_id"
            )
        hosts = []
        for channel_id, config in rows:
            host = config.get("host") if isinstance(config, dict) else None
            if not isinstance(host, str) or not host:
                continue
            port = config.get("port")
            protocol = config.get("protocol") or "ftp"
            hosts.append(
                ChannelHost(
                    channel_id,
                    host,
                    int(port) if isinstance(port, int | str) and str(port).isdigit() else None,
                    str(protocol),
                )
            )
        return hosts

    def job_status_counts(self) -> dict[str, int]:
        """How many jobs are in each status (queued, running, success, failed, ...)."""
        with self._transaction("count jobs") as s:
            rows = s.all("SELECT status, count(*) FROM job_runs GROUP BY status")
        return {status: int(count) for status, count in rows}

    def job_statuses(self, job_ids: Iterable[str]) -> dict[str, str]:
        """job_id -> status for the given jobs that the fetcher knows."""
        ids = sorted(set(job_ids))
        if not ids:
            return {}
        with self._transaction("read job statuses") as s:
            rows = s.all("SELECT job_id, status FROM job_runs WHERE job_id = ANY(%s)", (ids,))
        return dict(rows)

    def recent_failures(self, limit: int = 10) -> list[JobFailure]:
        """The most recent jobs that did not succeed (failed, canceled, needing review)."""
        with self._transaction("read recent failures") as s:
            rows = s.all(
                "SELECT job_id, channel_id, status, message,"
                " coalesce(finished_at, started_at, created_at) AS at FROM job_runs"
                " WHERE status IN ('failed', 'canceled', 'requires_human_review')"
                " ORDER BY at DESC, id DESC LIMIT %s",
                (limit,),
            )
        return [JobFailure(*row) for row in rows]

    def record_dead_letter(
        self,
        *,
        job_id: str | None,
        channel_id: str | None,
        error_class: str,
        reason: str,
        topic: str,
        partition: int,
        offset: int,
    ) -> None:
        """Count a refused message (its reason already redacted)."""
        with self._transaction("record a dead letter") as s:
            s.execute(
                "INSERT INTO dead_letters (job_id, channel_id, error_class, reason, topic,"
                ' partition, "offset") VALUES (%s, %s, %s, %s, %s, %s, %s)',
                (
                    job_id,
                    channel_id,
                    error_class,
                    reason[:2000].replace("\x00", "\ufffd"),
                    topic,
                    partition,
                    offset,
                ),  # fmt: skip
            )

    def recent_dead_letters(self, limit: int = 10) -> tuple[int, list[DeadLetterRow]]:
        """How many messages were dead-lettered in all, and the latest ``limit`` of them."""
        with self._transaction("read dead letters") as s:
            total = int(s.scalar("SELECT count(*) FROM dead_letters") or 0)
            rows = s.all(
                "SELECT job_id, channel_id, error_class, reason, created_at FROM dead_letters"
                " ORDER BY created_at DESC, id DESC LIMIT %s",
                (limit,),
            )
        return total, [DeadLetterRow(*row) for row in rows]

    # -- files --------------------------------------------------------------------------------

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
                    (job_id, channel_id, *_columns(files, 7)),
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
                    (channel_id, job_id, *_columns(idents, 6)),
                )

    def job_files(self, job_id: str) -> list[DeliveredFile]:
        with self._transaction("read the job's files") as s:
            rows = s.all(
                "SELECT file_path, s3_key, content_hash, file_size, classification, validation,"
                " quarantined FROM file_metadata WHERE job_id = %s ORDER BY id",
                (job_id,),
            )
        return [DeliveredFile(*row) for row in rows]

    # -- settings -----------------------------------------------------------------------------

    def retry_config(self, channel_id: str | None = None) -> RetryConfig:
        """The channel's retry settings, or the defaults (3, 2, 30 s)."""
        scopes = ["default"] if channel_id is None else [channel_id, "default"]
        with self._transaction("read the retry settings") as s:
            rows = s.all(
                "SELECT scope, max_simple_retries, max_heal_retries, retry_delay_seconds"
                " FROM retry_settings WHERE scope = ANY(%s)",
                (scopes,),
            )
        by_scope = {scope: RetryConfig(*values) for scope, *values in rows}
        for scope in scopes:
            if scope in by_scope:
                return by_scope[scope]
        return RetryConfig()

    def set_retry_config(self, config: RetryConfig, *, scope: str = "default") -> None:
        with self._transaction("store the retry settings") as s:
            s.execute(
                "INSERT INTO retry_settings (scope, max_simple_retries, max_heal_retries,"
                " retry_delay_seconds) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (scope) DO UPDATE SET"
                " max_simple_retries = EXCLUDED.max_simple_retries,"
                " max_heal_retries = EXCLUDED.max_heal_retries,"
                " retry_delay_seconds = EXCLUDED.retry_delay_seconds, updated_at = now()",
                (
                    scope,
                    config.max_simple_retries,
                    config.max_heal_retries,
                    config.retry_delay_seconds,
                ),
            )

    # -- plumbing -----------------------------------------------------------------------------

    @contextmanager
    def _transaction(self, what: str) -> Iterator[Sql]:
        """One transaction on a pooled connection, committed when the block ends."""
        with self._translate(what), self.database.transaction() as sql:
            yield sql

    @contextmanager
    def _translate(self, what: str) -> Iterator[None]:
        try:
            yield
        except Exception as exc:
            import psycopg2

            if isinstance(exc, psycopg2.OperationalError):
                raise InfrastructureError(
                    f"could not {what}: the fetcher DB is unreachable ({_first_line(exc)})"
                ) from exc
            if isinstance(exc, psycopg2.Error):
                raise InfrastructureError(f"could not {what}: {_first_line(exc)}") from exc
            raise


def _update_job(s: Sql, job_id: str, values: Mapping[str, Any]) -> None:
    # The column names come from this module, never from input.
    sets = ", ".join(f"{column} = %s" for column in values)
    s.execute(f"UPDATE job_runs SET {sets} WHERE job_id = %s", (*values.values(), job_id))


def _columns(rows: Sequence[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Rows as one list per column (``unnest`` turns them back into rows)."""
    return [[row[i] for row in rows] for i in range(width)]


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__
