"""One channel job, start to end, without Dagster: resolve config → fetch → record → announce.

Order matters for crash safety: files are uploaded first, then recorded in one DB transaction,
then announced on ``amazoniax_parsers``. A job that dies anywhere can be re-run with the same
job_id: its own earlier records are left out of the history it compares against, so it
classifies and uploads the same files again (same keys, same bytes) and announces them once.
"""

from __future__ import annotations

import atexit
import functools
import gc
import logging
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

from amazoniax_dagster.core.errors import AmazoniaxError, ConfigError, MessageError
from amazoniax_dagster.core.logs import JobLog, forwarded_logs, redacted_log_records
from amazoniax_dagster.core.messages import (
    FtpSourceConfig,
    S3SourceConfig,
    SourceType,
    parse_source_config,
)
from amazoniax_dagster.core.redaction import Redactor, collect_secret_values
from amazoniax_dagster.db import FetcherDB
from amazoniax_dagster.jobs.cleanup import remove_unrecorded_uploads
from amazoniax_dagster.jobs.file_job import (
    sync_files,
)
from amazoniax_dagster.jobs.services import JobRequest, JobServices
from amazoniax_dagster.sync.engine import SyncResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResolvedJob:
    request: JobRequest
    source_type: SourceType
    config: dict[str, Any]  # holds secrets: never log it

    def secrets(self) -> set[str]:
        return collect_secret_values(self.config)


def resolve_job(request: JobRequest, db: FetcherDB) -> ResolvedJob:
    """The job as its own message said: its source type with its config snapshot. The
    channel's stored config (and type) is the fallback for a job whose message had none."""
    record = db.get_job(request.job_id)
    config = db.job_config(request.job_id)
    if record is not None and config is not None:
        return ResolvedJob(request, SourceType(record.source_type), config)
    channel = db.get_channel(request.channel_id)
    if record is not None and record.source_type != channel.source_type:
        raise ConfigError(
            f"job {request.job_id} is a {record.source_type} job without a config, but channel "
            f"{request.channel_id} is stored as {channel.source_type}: send the job with its config"
        )
    return ResolvedJob(request, SourceType(channel.source_type), channel.config)


@dataclass(frozen=True)
class JobOutcome:
    """How a job ended. ``error_text`` is redacted and safe to show anywhere."""

    request: JobRequest
    result: SyncResult | None
    error_class: str | None = None
    error_text: str | None = None
    log_uri: str | None = None

    @property
    def ok(self) -> bool:
        return self.result is not None


def execute(
    request: JobRequest,
    services: JobServices,
    *,
    emit: Callable[[int, str], None] | None = None,
) -> JobOutcome:
    """Run one job with its secrets redacted from every log line, its log kept and uploaded
    beside the job folder, and any failure captured (never raised) as a redacted outcome.
    ``emit`` receives the job's log lines too (a Dagster run's log)."""
    _skip_exit_collection()
    redactor = Redactor()
    job_log = JobLog(request.job_id, request.channel_id)
    result: SyncResult | None = None
    error_class: str | None = None
    error_text: str | None = None
    with (
        redacted_log_records(redactor),
        forwarded_logs(emit) if emit else nullcontext(),
        job_log.capturing(),
    ):
        try:
            job = resolve_job(request, services.db)
            redactor.add(*job.secrets())
            log.info(
                "job %s: %s channel %s, flow %s",
                request.job_id,
                job.source_type,
                request.channel_id,
                request.flow,
            )
            _sweep_earlier_attempt(request, services)
            with job_record(job, services.db):
                result = run_job(job, services)
        except AmazoniaxError as exc:
            error_class, error_text = exc.error_class, redactor(f"{exc.error_class} error: {exc}")
            log.error("job %s failed: %s", request.job_id, error_text)
        except Exception as exc:
            error_class = "internal"
            error_text = redactor(f"unexpected error: {type(exc).__name__}: {exc}")
            log.error("job %s failed: %s\n%s", request.job_id, error_text, traceback.format_exc())
    log_uri = _upload_job_log(request, job_log, services)
    job_log.close()
    return JobOutcome(request, result, error_class, error_text, log_uri)


@functools.cache
def _skip_exit_collection() -> None:
    """Let the process that ran a job exit without walking its heap for garbage cycles.

    At exit, Python's collector traverses every object still alive (Dagster, SQLAlchemy,
    pydantic models) looking for cycles whose memory the OS reclaims anyway. Freezing the heap in an
    exit hook skips that walk; collection while the process lives is unchanged. (Finalizers of
    objects that are garbage only in cycles at exit do not run; nothing of a job relies on them:
    its uploads, records and messages are complete when it returns, its source is closed, and
    its clients are closed by whoever built them before the process exits.)
    """
    atexit.register(gc.freeze)


def _upload_job_log(request: JobRequest, job_log: JobLog, services: JobServices) -> str | None:
    key = services.output.job_log_key(request.channel_id, request.job_id)
    try:
        services.output.put_bytes(key, job_log.getvalue())
    except AmazoniaxError as exc:  # the job's own outcome matters more than its log
        log.warning("could not upload the job log to %s: %s", key, exc)
        return None
    return f"s3://{services.output.bucket}/{key}"


def _sweep_earlier_attempt(request: JobRequest, services: JobServices) -> None:
    """A job that ran before and did not succeed may have left uploads of a killed run."""
    earlier = services.db.get_job(request.job_id)
    if earlier is not None and earlier.started_at is not None and earlier.status != "success":
        remove_unrecorded_uploads(services.output, services.db, request.channel_id, request.job_id)


@contextmanager
def job_record(job: ResolvedJob, db: FetcherDB) -> Iterator[None]:
    """Mark the job running; on an error record it failed (with its class) and re-raise."""
    req = job.request
    db.start_job(
        job_id=req.job_id,
        channel_id=req.channel_id,
        source_type=job.source_type,
        flow=req.flow,
        run_id=req.run_id,
    )
    try:
        yield
    except Exception as exc:
        error_class = exc.error_class if isinstance(exc, AmazoniaxError) else "internal"
        db.finish_job(
            req.job_id, status="failed", message=str(exc), metadata={"error_class": error_class}
        )
        raise


def run_job(job: ResolvedJob, services: JobServices) -> SyncResult:
    """Run a resolved job; the caller wraps it in ``job_record`` and handles logging."""
    try:
        config = parse_source_config(job.source_type, job.config)
    except MessageError as exc:
        raise ConfigError(str(exc)) from exc
    if isinstance(config, S3SourceConfig | FtpSourceConfig):
        return sync_files(job.request, config, services)
    from amazoniax_dagster.jobs.site_job import fetch_site

    return fetch_site(job.request, job.source_type, config, services)
