"""A file job: list a source; hash, classify, validate and upload what is new; record; announce."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from amazoniax_dagster.core.checkpoints import Checkpoint
from amazoniax_dagster.core.messages import (
    FileChecks,
    FtpSourceConfig,
    ParsersMessage,
    S3SourceConfig,
)
from amazoniax_dagster.core.netpolicy import NetworkPolicy
from amazoniax_dagster.core.retry import RetryPolicy
from amazoniax_dagster.jobs.services import JobRequest, JobServices
from amazoniax_dagster.sources.base import Source
from amazoniax_dagster.sync.engine import SyncEngine, SyncResult, Validator
from amazoniax_dagster.sync.wording import job_message

log = logging.getLogger(__name__)


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
    from amazoniax_dagster.sync.validation import validate_file
    from amazoniax_dagster.sync.validation.rules import DEFAULT_ALLOWED_EXTENSIONS, ValidationRules

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
    checkpoint: Checkpoint | None = None,
) -> SyncResult:
    """Hash, classify, validate and upload what ``source`` lists, then record and announce;
    ``checkpoint`` is stored with the job's success."""
    db = services.db
    # The history (one query) loads while the source is listed.
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
    finish(request, result, services, policy, checkpoint)
    return result


def finish(
    request: JobRequest,
    result: SyncResult,
    services: JobServices,
    policy: RetryPolicy,
    checkpoint: Checkpoint | None = None,
) -> None:
    """Record the files, announce the job folder when it has files, and mark the job done
    (storing the channel's new ``checkpoint`` in the same transaction)."""
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
    text = job_message(summary, result.output_uri)
    db.finish_job(
        request.job_id,
        status="success",
        message=text,
        metadata=summary | result.extra | {"files_processed": uploaded},
        s3_output_path=result.output_uri if uploaded else None,
        checkpoint=checkpoint,
    )
    log.info("job %s: %s", request.job_id, text)
