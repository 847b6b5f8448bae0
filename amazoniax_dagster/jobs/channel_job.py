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
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amazoniax_dagster.clients.kafka import KafkaBus, Topics
from amazoniax_dagster.clients.output_bucket import OutputBucket
from amazoniax_dagster.core.errors import AmazoniaxError, ConfigError, MessageError
from amazoniax_dagster.core.logs import JobLog, forwarded_logs, redacted_log_records
from amazoniax_dagster.core.messages import (
    FileChecks,
    Flow,
    FtpSourceConfig,
    ParsersMessage,
    S3SourceConfig,
    SourceType,
    parse_source_config,
)
from amazoniax_dagster.core.netpolicy import NetworkPolicy
from amazoniax_dagster.core.redaction import Redactor, collect_secret_values
from amazoniax_dagster.core.retry import RetryPolicy
from amazoniax_dagster.db import FetcherDB
from amazoniax_dagster.fetchers.base import FetchLimits
from amazoniax_dagster.fetchers.routing import FetcherCatalog, FetcherGenerator
from amazoniax_dagster.sources.base import Source
from amazoniax_dagster.sync.engine import SyncEngine, SyncResult, Validator

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobRequest:
    job_id: str
    channel_id: str
    flow: Flow = Flow.EXISTING
    run_id: str | None = None


@dataclass
class JobServices:
    """What a job needs from the outside world; Dagster resources build this in a run."""

    db: FetcherDB
    output: OutputBucket
    bus: KafkaBus
    topics: Topics = field(default_factory=Topics)
    policy: NetworkPolicy = field(default_factory=NetworkPolicy)
    max_workers: int = 16
    spool_dir: Path | None = None
    # html/api channels: published fetchers (DB + Git), built on first use; and the
    # generator of new versions (None where generation is not available).
    fetcher_catalog: Callable[[], FetcherCatalog] | None = None
    generator: FetcherGenerator | None = None
    fetch_limits: FetchLimits = field(default_factory=FetchLimits)
    # Python fetchers: how they start (Dagster Pipes in a run) and their sandbox limits.
    python_launcher: Any = None
    python_limits: Any = None

    def catalog(self) -> FetcherCatalog:
        if self.fetcher_catalog is None:
            raise ConfigError("web/API channels need a fetcher repository, and none is set up")
        return self.fetcher_catalog()


@dataclass(frozen=True)
class ResolvedJob:
    request: JobRequest
    source_type: SourceType
    config: dict[str, Any]  # holds secrets: never log it

    def secrets(self) -> set[str]:
        return collect_secret_values(self.config)


def resolve_job(request: JobRequest, db: FetcherDB) -> ResolvedJob:
    """The job's own config snapshot (from its message), else the channel's stored config."""
    channel = db.get_channel(request.channel_id)
    config = db.job_config(request.job_id)
    return ResolvedJob(request, SourceType(channel.source_type), config or channel.config)


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
    pydantic models: 100k-400k objects) looking for cycles whose memory the OS reclaims anyway:
    0.1 s of a bare job process, 0.3-0.5 s of a Dagster step process. Freezing the heap in an
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


def open_source(
    config: S3SourceConfig | FtpSourceConfig, *, policy: NetworkPolicy, max_connections: int
) -> Source:
    """The file source a channel config describes (S3, FTP/FTPS or SFTP)."""
    if isinstance(config, S3SourceConfig):
        from amazoniax_dagster.sources.s3 import S3Source

        return S3Source(config, policy=policy, max_connections=max_connections)
    if config.protocol == "sftp":
        from amazoniax_dagster.sources.sftp import SftpSource

        return SftpSource(config, policy=policy, max_connections=max_connections)
    from amazoniax_dagster.sources.ftp import FtpSource

    return FtpSource(config, policy=policy, max_connections=max_connections)


def validator_for(config: FileChecks) -> Validator:
    """The channel's format checks (a bad schema is a ConfigError before anything is fetched)."""
    from amazoniax_dagster.sync.validation import (
        DEFAULT_ALLOWED_EXTENSIONS,
        ValidationRules,
        validate_file,
    )

    allowed = config.allowed_extensions
    rules = ValidationRules(
        json_schema=config.json_schema,
        json_schemas_by_pattern=config.json_schemas,
        csv_require_utf8=config.csv_require_utf8,
        allowed_other_extensions=(
            DEFAULT_ALLOWED_EXTENSIONS if allowed is None else frozenset(allowed)
        ),
    )
    return lambda path, stream: validate_file(path, stream, rules)


def sync_files(
    request: JobRequest, config: S3SourceConfig | FtpSourceConfig, services: JobServices
) -> SyncResult:
    policy = retry_policy(request, services)
    source = policy.call(
        lambda: open_source(
            config, policy=services.policy, max_connections=services.max_workers * 2
        ),
        what="connect to the source",
    )
    try:
        return sync_source(
            request, source, services, policy, config, trust_listing=config.verify == "listing"
        )
    finally:
        source.close()


def retry_policy(request: JobRequest, services: JobServices) -> RetryPolicy:
    """The channel's simple retries (``max_simple_retries`` / ``retry_delay_seconds``)."""
    retry = services.db.retry_config(request.channel_id)
    return RetryPolicy(retries=retry.max_simple_retries, delay_seconds=retry.retry_delay_seconds)


def sync_source(
    request: JobRequest,
    source: Source,
    services: JobServices,
    policy: RetryPolicy,
    config: FileChecks,
    *,
    trust_listing: bool,
    extra: dict[str, Any] | None = None,
) -> SyncResult:
    """Hash, classify, validate and upload what ``source`` lists, then record and announce."""
    db = services.db
    # The history (one query, ~0.1 s at 10,000 files) loads while the source is listed.
    loading = ThreadPoolExecutor(1, thread_name_prefix="amazoniax-history")
    history = loading.submit(db.load_history, request.channel_id, exclude_job_id=request.job_id)
    loading.shutdown(wait=False)
    already_delivered = bool(db.job_files(request.job_id))
    engine = SyncEngine(
        source,
        services.output,
        retry=policy,
        max_workers=services.max_workers,
        trust_listing=trust_listing,
        spool_dir=services.spool_dir,
        discard_on_failure=not already_delivered,
        validate=validator_for(config),
        quarantine_invalid=config.invalid_files == "quarantine",
        on_first_upload=services.bus.warm_up,
    )
    result = engine.run(channel_id=request.channel_id, job_id=request.job_id, history=history)
    result.retries = policy.made.value
    result.extra = dict(extra or {})
    finish(request, result, services, policy)
    return result


def finish(
    request: JobRequest, result: SyncResult, services: JobServices, policy: RetryPolicy
) -> None:
    """Record the files, announce the job folder when it has files, and mark the job done."""
    db = services.db
    db.record_files(
        job_id=request.job_id,
        channel_id=request.channel_id,
        delivered=result.delivered(),
        identities=result.identities(),
    )
    summary = result.summary()
    uploaded = len(result.uploaded)
    record = db.get_job(request.job_id)
    # A re-run of a job whose folder was already announced does not announce it twice.
    if uploaded and not (record and record.parsers_published):
        message = ParsersMessage(
            job_id=request.job_id,
            channel_id=request.channel_id,
            s3_output_path=result.output_uri,
            file_count=uploaded,
        )
        policy.call(
            lambda: services.bus.publish(
                services.topics.parsers, message.to_bytes(), key=request.channel_id.encode()
            ),
            what="announce the job folder on the parsers topic",
        )
        db.mark_published(request.job_id, parsers=True)
    text = (
        f"{uploaded} new or updated files uploaded to {result.output_uri}"
        if uploaded
        else "no new or updated files"
    )
    if summary["invalid"]:
        what = "quarantined" if summary["quarantined"] else "uploaded and flagged"
        text += f"; {summary['invalid']} files failed validation ({what})"
    db.finish_job(
        request.job_id,
        status="success",
        message=text,
        metadata=summary | result.extra | {"files_processed": uploaded},
        s3_output_path=result.output_uri if uploaded else None,
    )
    log.info("%s (%s)", text, ", ".join(f"{k}={v}" for k, v in summary.items()))
