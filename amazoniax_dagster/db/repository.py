"""``FetcherDB``: every read and write of the fetcher DB goes through here.

Look-ups are batched per job (one query for a channel's whole history), never per file.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    URL,
    Connection,
    Engine,
    Table,
    bindparam,
    cast,
    create_engine,
    func,
    make_url,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, Insert, insert
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from amazoniax_dagster.db.fetchers import FetcherRegistryMixin
from amazoniax_dagster.db.models import (
    channels,
    file_metadata,
    job_runs,
    retry_settings,
    source_files,
)
from amazoniax_dagster.errors import ConfigError, InfrastructureError
from amazoniax_dagster.sealing import SecretCipher


@dataclass(frozen=True)
class StoredChannel:
    channel_id: str
    source_type: str
    config: dict[str, Any]  # unsealed: holds secrets, never log it


@dataclass(frozen=True)
class JobRecord:
    job_id: str
    channel_id: str
    source_type: str
    flow: str
    status: str
    message: str | None
    metadata: dict[str, Any]
    s3_output_path: str | None
    dagster_run_id: str | None
    parsers_published: bool
    status_published: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True)
class SourceIdentity:
    """How a remote file looked in its listing when it was last fetched."""

    source_key: str
    file_path: str
    size: int | None
    etag: str | None
    mtime: datetime | None
    content_hash: str


@dataclass(frozen=True)
class DeliveredFile:
    file_path: str
    s3_key: str
    content_hash: str
    file_size: int
    classification: str  # "new" | "updated"
    validation: str | None = None  # "valid" | "invalid" | "skipped"; None when not checked
    quarantined: bool = False


@dataclass
class ChannelHistory:
    """What a channel has delivered before: enough to classify a file without more queries."""

    latest_hash_by_path: dict[str, str] = field(default_factory=dict)
    delivered_hashes: set[str] = field(default_factory=set)
    identities: dict[str, SourceIdentity] = field(default_factory=dict)


@dataclass(frozen=True)
class DeliveredOutput:
    file_path: str
    s3_key: str
    size: int


@dataclass(frozen=True)
class RecentOutputs:
    file_counts: list[int]  # files each successful job fetched, newest first
    files: list[DeliveredOutput]  # files delivered (new or updated), newest first
    record_counts: list[int] = field(default_factory=list)  # records seen, where known


def _fetched_count(metadata: Mapping[str, Any]) -> int:
    return sum(int(metadata.get(k, 0) or 0) for k in ("new", "updated", "duplicate", "unchanged"))


@dataclass(frozen=True)
class ChannelSummary:
    """A stored channel without its config (safe to show)."""

    channel_id: str
    source_type: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ChannelHost:
    """Where a file channel's server is (FTP/FTPS/SFTP): no credentials, only the address."""

    channel_id: str
    host: str
    port: int | None
    protocol: str


@dataclass(frozen=True)
class JobFailure:
    job_id: str
    channel_id: str
    status: str
    message: str | None
    at: datetime


@dataclass(frozen=True)
class RetryConfig:
    max_simple_retries: int = 3
    max_heal_retries: int = 2
    retry_delay_seconds: float = 30.0


def engine_url(url: str) -> URL:
    """``url`` with psycopg2 as the driver when it names none (``postgresql://``).

    A Dagster run worker has already loaded psycopg2 for Dagster's own Postgres storage; psycopg
    3, SQLAlchemy 2.1's default, would cost every job another ~0.2 s of imports. A driver named
    in the URL is kept.
    """
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        return parsed.set(drivername="postgresql+psycopg2")
    return parsed


class FetcherDB(FetcherRegistryMixin):
    def __init__(self, url: str, cipher: SecretCipher, *, pool_size: int = 5) -> None:
        self.engine: Engine = create_engine(
            engine_url(url), pool_pre_ping=True, pool_size=pool_size, max_overflow=pool_size
        )
        self._cipher = cipher

    def close(self) -> None:
        self.engine.dispose()

    def migrate(self) -> None:
        # Alembic (~60 ms of imports) only where migrations run, never in a job process.
        from amazoniax_dagster.db import migrate

        with self._translate("migrate the fetcher DB"):
            migrate.upgrade(self.engine)

    def ping(self) -> None:
        with self._transaction("reach the fetcher DB") as s:
            s.execute(select(1))

    # -- channels -----------------------------------------------------------------------------

    def save_channel(self, channel_id: str, source_type: str, config: Mapping[str, Any]) -> None:
        sealed = self._cipher.seal(config)
        stmt = insert(channels).values(
            channel_id=channel_id, source_type=source_type, config_json=sealed
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[channels.c.channel_id],
            set_={"source_type": source_type, "config_json": sealed, "updated_at": func.now()},
        )
        with self._transaction("store the channel config") as s:
            s.execute(stmt)

    def get_channels(self, channel_ids: Iterable[str]) -> dict[str, StoredChannel]:
        """The stored channels among ``channel_ids`` (unsealed), in one query."""
        ids = sorted(set(channel_ids))
        if not ids:
            return {}
        with self._transaction("read channel configs") as s:
            rows = s.execute(select(channels).where(channels.c.channel_id.in_(ids))).all()
        return {
            r.channel_id: StoredChannel(
                r.channel_id, r.source_type, self._cipher.unseal(r.config_json)
            )
            for r in rows
        }

    def store_jobs(
        self, jobs: Sequence[tuple[str, str, str, str, Mapping[str, Any] | None]]
    ) -> None:
        """Store a batch of accepted jobs in one transaction: each job's config as its channel's
        latest (in order, so the last message for a channel wins) and the job as queued.
        Items are (job_id, channel_id, source_type, flow, config or None). Idempotent."""
        channel_rows: dict[str, dict[str, Any]] = {}
        job_rows = []
        for job_id, channel_id, source_type, flow, config in jobs:
            sealed = self._cipher.seal(config) if config is not None else None
            if sealed is not None:
                channel_rows[channel_id] = {
                    "channel_id": channel_id,
                    "source_type": source_type,
                    "config_json": sealed,
                }
            job_rows.append(
                {
                    "job_id": job_id,
                    "channel_id": channel_id,
                    "source_type": source_type,
                    "flow": flow,
                    "status": "queued",
                    "config_json": sealed,
                    "metadata_json": {},
                }
            )
        with self._transaction("store the jobs") as s:
            for chunk in _chunks(list(channel_rows.values()), 1000):
                stmt = insert(channels).values(chunk)
                s.execute(
                    stmt.on_conflict_do_update(
                        index_elements=[channels.c.channel_id],
                        set_={
                            "source_type": stmt.excluded.source_type,
                            "config_json": stmt.excluded.config_json,
                            "updated_at": func.now(),
                        },
                    )
                )
            for chunk in _chunks(job_rows, 1000):
                s.execute(
                    insert(job_runs)
                    .values(chunk)
                    .on_conflict_do_nothing(index_elements=[job_runs.c.job_id])
                )

    def get_channel(self, channel_id: str) -> StoredChannel:
        with self._transaction("read the channel config") as s:
            row = s.execute(select(channels).where(channels.c.channel_id == channel_id)).first()
        if row is None:
            raise ConfigError(
                f"channel {channel_id!r} has no stored config: send a message with a config first"
            )
        return StoredChannel(row.channel_id, row.source_type, self._cipher.unseal(row.config_json))

    def scheduled_channels(self) -> list[tuple[str, str, str]]:
        """(channel_id, source_type, schedule) of every channel whose config has a schedule."""
        schedule = channels.c.config_json["schedule"].astext
        query = (
            select(channels.c.channel_id, channels.c.source_type, schedule)
            .where(schedule.is_not(None))
            .order_by(channels.c.channel_id)
        )
        with self._transaction("list scheduled channels") as s:
            return [(c, t, str(e)) for c, t, e in s.execute(query)]

    def list_channel_ids(self) -> list[str]:
        with self._transaction("list channels") as s:
            return list(s.scalars(select(channels.c.channel_id).order_by(channels.c.channel_id)))

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
        stmt = (
            insert(job_runs)
            .values(
                job_id=job_id,
                channel_id=channel_id,
                source_type=source_type,
                flow=flow,
                status="queued",
                config_json=self._cipher.seal(config) if config is not None else None,
                metadata_json={},
            )
            .on_conflict_do_nothing(index_elements=[job_runs.c.job_id])
            .returning(job_runs.c.id)
        )
        with self._transaction("queue the job") as s:
            return s.execute(stmt).scalar() is not None

    def job_config(self, job_id: str) -> dict[str, Any] | None:
        """The config snapshot stored with the job (unsealed), if it has one."""
        with self._transaction("read the job config") as s:
            sealed = s.scalar(select(job_runs.c.config_json).where(job_runs.c.job_id == job_id))
        return self._cipher.unseal(sealed) if sealed is not None else None

    def start_job(
        self, *, job_id: str, channel_id: str, source_type: str, flow: str, run_id: str | None
    ) -> None:
        now = datetime.now(UTC)
        stmt = insert(job_runs).values(
            job_id=job_id,
            channel_id=channel_id,
            source_type=source_type,
            flow=flow,
            status="running",
            dagster_run_id=run_id,
            started_at=now,
            metadata_json={},
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[job_runs.c.job_id],
            set_={
                "status": "running",
                "dagster_run_id": run_id,
                "started_at": now,
                "message": None,
            },
        )
        with self._transaction("record the job start") as s:
            s.execute(stmt)

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
            values["metadata_json"] = dict(metadata)
        if s3_output_path is not None:
            values["s3_output_path"] = s3_output_path
        with self._transaction("record the job result") as s:
            s.execute(update(job_runs).where(job_runs.c.job_id == job_id).values(**values))

    def mark_published(self, job_id: str, *, parsers: bool = False, status: bool = False) -> None:
        values = {}
        if parsers:
            values["parsers_published"] = True
        if status:
            values["status_published"] = True
        with self._transaction("record the publication") as s:
            s.execute(update(job_runs).where(job_runs.c.job_id == job_id).values(**values))

    def get_job(self, job_id: str) -> JobRecord | None:
        with self._transaction("read the job") as s:
            row = s.execute(select(job_runs).where(job_runs.c.job_id == job_id)).first()
        if row is None:
            return None
        return JobRecord(
            job_id=row.job_id,
            channel_id=row.channel_id,
            source_type=row.source_type,
            flow=row.flow,
            status=row.status,
            message=row.message,
            metadata=dict(row.metadata_json or {}),
            s3_output_path=row.s3_output_path,
            dagster_run_id=row.dagster_run_id,
            parsers_published=row.parsers_published,
            status_published=row.status_published,
            created_at=row.created_at,
            started_at=row.started_at,
            finished_at=row.finished_at,
        )

    def recent_outcomes(self, channel_id: str, limit: int) -> list[tuple[str, str | None]]:
        """(status, error_class) of the channel's latest finished jobs, newest first."""
        stmt = (
            select(job_runs.c.status, job_runs.c.metadata_json)
            .where(job_runs.c.channel_id == channel_id, job_runs.c.finished_at.is_not(None))
            .order_by(job_runs.c.finished_at.desc(), job_runs.c.id.desc())
            .limit(limit)
        )
        with self._transaction("read the channel's recent outcomes") as s:
            return [(status, (meta or {}).get("error_class")) for status, meta in s.execute(stmt)]

    def heal_jobs_since_success(self, channel_id: str) -> int:
        """Heal-mode jobs of the channel since its last successful job: the heal attempts
        used on the current breakage (bounded by ``max_heal_retries``)."""
        last_success = (
            select(func.max(job_runs.c.created_at))
            .where(job_runs.c.channel_id == channel_id, job_runs.c.status == "success")
            .scalar_subquery()
        )
        stmt = select(func.count()).where(
            job_runs.c.channel_id == channel_id,
            job_runs.c.flow == "heal",
            or_(last_success.is_(None), job_runs.c.created_at > last_success),
        )
        with self._transaction("count the heal attempts") as s:
            return int(s.scalar(stmt) or 0)

    def recent_outputs(
        self, channel_id: str, *, since: datetime, max_files: int = 5000
    ) -> RecentOutputs:
        """What the channel's successful jobs since ``since`` fetched: files per job (from
        each job's summary) and the files they delivered, newest first (validation input)."""
        jobs = (
            select(job_runs.c.job_id, job_runs.c.metadata_json)
            .where(
                job_runs.c.channel_id == channel_id,
                job_runs.c.status == "success",
                job_runs.c.created_at >= since,
            )
            .order_by(job_runs.c.created_at.desc())
        )
        files = (
            select(file_metadata.c.file_path, file_metadata.c.s3_key, file_metadata.c.file_size)
            .where(file_metadata.c.channel_id == channel_id, file_metadata.c.created_at >= since)
            .where(file_metadata.c.quarantined.is_(False))
            .order_by(file_metadata.c.id.desc())
            .limit(max_files)
        )
        with self._transaction("read the channel's recent outputs") as s:
            metadata = [meta or {} for _, meta in s.execute(jobs)]
            delivered = [DeliveredOutput(*row) for row in s.execute(files)]
        return RecentOutputs(
            file_counts=[_fetched_count(meta) for meta in metadata],
            files=delivered,
            record_counts=[int(m["records"]) for m in metadata if m.get("records") is not None],
        )

    # -- read-only summaries (the command line) ------------------------------------------------

    def list_channels(self) -> list[ChannelSummary]:
        """Every stored channel, by id, without its config."""
        stmt = select(
            channels.c.channel_id,
            channels.c.source_type,
            channels.c.created_at,
            channels.c.updated_at,
        ).order_by(channels.c.channel_id)
        with self._transaction("list channels") as s:
            return [ChannelSummary(*row) for row in s.execute(stmt)]

    def channel_source_types(self, channel_ids: Iterable[str]) -> dict[str, str]:
        """channel_id -> source_type for the given channels that are stored."""
        ids = list(set(channel_ids))
        if not ids:
            return {}
        stmt = select(channels.c.channel_id, channels.c.source_type).where(
            channels.c.channel_id.in_(ids)
        )
        with self._transaction("read channel source types") as s:
            return {channel_id: source_type for channel_id, source_type in s.execute(stmt)}

    def channel_hosts(self) -> list[ChannelHost]:
        """The server address of every stored FTP/FTPS/SFTP channel (never its secrets)."""
        stmt = (
            select(channels.c.channel_id, channels.c.config_json)
            .where(channels.c.source_type == "ftp")
            .order_by(channels.c.channel_id)
        )
        hosts = []
        with self._transaction("list channel hosts") as s:
            for channel_id, config in s.execute(stmt):
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
        stmt = select(job_runs.c.status, func.count()).group_by(job_runs.c.status)
        with self._transaction("count jobs") as s:
            return {status: int(count) for status, count in s.execute(stmt)}

    def job_statuses(self, job_ids: Iterable[str]) -> dict[str, str]:
        """job_id -> status for the given jobs that the fetcher knows."""
        ids = list(set(job_ids))
        if not ids:
            return {}
        stmt = select(job_runs.c.job_id, job_runs.c.status).where(job_runs.c.job_id.in_(ids))
        with self._transaction("read job statuses") as s:
            return {job_id: status for job_id, status in s.execute(stmt)}

    def recent_failures(self, limit: int = 10) -> list[JobFailure]:
        """The most recent jobs that did not succeed (failed, canceled, needing review)."""
        at = func.coalesce(job_runs.c.finished_at, job_runs.c.started_at, job_runs.c.created_at)
        stmt = (
            select(
                job_runs.c.job_id, job_runs.c.channel_id, job_runs.c.status, job_runs.c.message, at
            )
            .where(job_runs.c.status.in_(["failed", "canceled", "requires_human_review"]))
            .order_by(at.desc(), job_runs.c.id.desc())
            .limit(limit)
        )
        with self._transaction("read recent failures") as s:
            return [JobFailure(*row) for row in s.execute(stmt)]

    # -- files --------------------------------------------------------------------------------

    def load_history(self, channel_id: str, *, exclude_job_id: str | None = None) -> ChannelHistory:
        """The channel's delivery history in two queries. ``exclude_job_id`` leaves out a job's
        own records, so that re-running a job classifies its files exactly as the first try."""
        history = ChannelHistory()
        files = (
            select(file_metadata.c.file_path, file_metadata.c.content_hash)
            .where(file_metadata.c.channel_id == channel_id)
            .order_by(file_metadata.c.id)
        )
        idents = select(source_files).where(source_files.c.channel_id == channel_id)
        if exclude_job_id is not None:
            files = files.where(file_metadata.c.job_id != exclude_job_id)
            idents = idents.where(source_files.c.job_id != exclude_job_id)
        with self._transaction("read the channel history") as s:
            for path, digest in s.execute(files):
                history.latest_hash_by_path[path] = digest  # ordered by id: last one wins
                history.delivered_hashes.add(digest)
            for row in s.execute(idents):
                history.identities[row.source_key] = SourceIdentity(
                    row.source_key, row.file_path, row.size, row.etag, row.mtime, row.content_hash
                )
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
        Idempotent: re-recording the same job changes nothing."""
        files = list(delivered)
        # One row per source key: ON CONFLICT DO UPDATE may not touch a row twice in one
        # statement (a listing has each key once; the last one wins, as before).
        idents = list({i.source_key: i for i in identities}.values())
        with self._transaction("record the job's files") as s:
            if files:
                stmt = _insert_rows(file_metadata, files, job_id=job_id, channel_id=channel_id)
                s.execute(stmt.on_conflict_do_nothing(index_elements=["job_id", "file_path"]))
            if idents:
                stmt = _insert_rows(source_files, idents, job_id=job_id, channel_id=channel_id)
                updated = [f.name for f in fields(SourceIdentity) if f.name != "source_key"]
                s.execute(
                    stmt.on_conflict_do_update(
                        index_elements=["channel_id", "source_key"],
                        set_={c: stmt.excluded[c] for c in [*updated, "job_id"]}
                        | {"updated_at": func.now()},
                    )
                )

    def job_files(self, job_id: str) -> list[DeliveredFile]:
        with self._transaction("read the job's files") as s:
            rows = s.execute(
                select(file_metadata)
                .where(file_metadata.c.job_id == job_id)
                .order_by(file_metadata.c.id)
            )
            return [
                DeliveredFile(
                    r.file_path,
                    r.s3_key,
                    r.content_hash,
                    r.file_size,
                    r.classification,
                    r.validation,
                    r.quarantined,
                )
                for r in rows
            ]

    # -- settings -----------------------------------------------------------------------------

    def retry_config(self, channel_id: str | None = None) -> RetryConfig:
        """The channel's retry settings, or the defaults (seed 000: 3, 2, 30 s)."""
        scopes = ["default"] if channel_id is None else [channel_id, "default"]
        with self._transaction("read the retry settings") as s:
            rows = {
                r.scope: r
                for r in s.execute(select(retry_settings).where(retry_settings.c.scope.in_(scopes)))
            }
        for scope in scopes:
            row = rows.get(scope)
            if row is not None:
                return RetryConfig(
                    row.max_simple_retries, row.max_heal_retries, row.retry_delay_seconds
                )
        return RetryConfig()

    def set_retry_config(self, config: RetryConfig, *, scope: str = "default") -> None:
        values = {
            "max_simple_retries": config.max_simple_retries,
            "max_heal_retries": config.max_heal_retries,
            "retry_delay_seconds": config.retry_delay_seconds,
        }
        stmt = insert(retry_settings).values(scope=scope, **values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["scope"], set_=values | {"updated_at": func.now()}
        )
        with self._transaction("store the retry settings") as s:
            s.execute(stmt)

    # -- plumbing -----------------------------------------------------------------------------

    @contextmanager
    def _transaction(self, what: str) -> Iterator[Connection]:
        """One transaction on a pooled connection, committed when the block ends."""
        with self._translate(what), self.engine.begin() as connection:
            yield connection

    @contextmanager
    def _translate(self, what: str) -> Iterator[None]:
        try:
            yield
        except OperationalError as exc:
            raise InfrastructureError(
                f"could not {what}: the fetcher DB is unreachable ({_first_line(exc)})"
            ) from exc
        except SQLAlchemyError as exc:
            raise InfrastructureError(f"could not {what}: {_first_line(exc)}") from exc


def _insert_rows(table: Table, items: Sequence[Any], **same: str) -> Insert:
    """``INSERT`` of many dataclass rows (fields named as ``table``'s columns) as one statement:
    one array per column, unnested by the server; ``same`` holds the values every row shares.

    One round trip for a job's 10,000 files. ``executemany`` of an ``INSERT ... ON CONFLICT``
    goes row by row (SQLAlchemy does not batch it into a VALUES list): 2-4 s for 10,000 rows.
    """
    names = [f.name for f in fields(items[0])]
    arrays = []
    for name in names:
        array = ARRAY(table.c[name].type)
        values = [getattr(item, name) for item in items]
        arrays.append(cast(bindparam(f"{name}_values", values, type_=array), array))
    rows = func.unnest(*arrays).table_valued(*names).render_derived()
    shared = [bindparam(k, v, type_=table.c[k].type).label(k) for k, v in same.items()]
    return insert(table).from_select([*same, *names], select(*shared, *rows.c))


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def _chunks(rows: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for i in range(0, len(rows), size):
        yield rows[i : i + size]
