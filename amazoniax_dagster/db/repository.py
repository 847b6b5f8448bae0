"""``FetcherDB``: every read and write of the fetcher DB goes through here.

Look-ups are batched per job (one query for a channel's whole history), never per file. The
statements are plain SQL on the tables of ``models`` (see ``pg`` for why not SQLAlchemy).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from amazoniax_dagster.core.checkpoints import Checkpoint
from amazoniax_dagster.core.errors import ConfigError, InfrastructureError
from amazoniax_dagster.core.sealing import SecretCipher
from amazoniax_dagster.db.checkpoints import CheckpointsMixin, store_for_job
from amazoniax_dagster.db.delivery_history import DeliveryHistoryMixin
from amazoniax_dagster.db.fetcher_versions import FetcherRegistryMixin
from amazoniax_dagster.db.operator_views import OperatorViewsMixin
from amazoniax_dagster.db.pg import Database, Sql, json_param, unnest_columns
from amazoniax_dagster.db.rows import (
    DeliveredOutput,
    JobRecord,
    RecentOutputs,
    RetryConfig,
    StoredChannel,
    _fetched_count,
)

# job_runs columns in JobRecord's order
_JOB_COLUMNS = (
    "job_id, channel_id, source_type, flow, status, message, metadata_json, s3_output_path, "
    "dagster_run_id, parsers_published, status_published, created_at, started_at, finished_at"
)


class FetcherDB(FetcherRegistryMixin, DeliveryHistoryMixin, OperatorViewsMixin, CheckpointsMixin):
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
                    unnest_columns([(c, t, sealed) for c, (t, sealed) in latest.items()], 3),
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
                    unnest_columns(job_rows, 5),
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
        checkpoint: Checkpoint | None = None,
    ) -> None:
        """Record how the job ended; ``checkpoint`` (of a succeeded job) is stored for its
        channel in the same transaction."""
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
            if checkpoint is not None:
                store_for_job(s, job_id, checkpoint)

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


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__
