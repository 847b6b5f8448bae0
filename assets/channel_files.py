"""``channel_files``: one materialization of a channel partition is one fetcher job.

Runs started by the Kafka sensor carry the job in their tags; runs launched or backfilled from
the UI get a job_id made from the run id and use the channel's stored config.
"""

from typing import TYPE_CHECKING, Any

import dagster as dg

from amazoniax_dagster.core import run_tags
from assets.checks import CHECK_SPECS, check_results, failing_channels
from assets.failures import ExpectedFailure
from assets.job_services import job_services
from assets.partitions import channels_partitions
from resources import (
    FetcherDBResource,
    FetcherRepoResource,
    FetchSettings,
    KafkaResource,
    OutputBucketResource,
    PythonFetchersResource,
)

if TYPE_CHECKING:
    from amazoniax_dagster.jobs.channel_job import JobOutcome


@dg.asset(
    partitions_def=channels_partitions,
    kinds={"s3", "python"},
    group_name="fetching",
    check_specs=CHECK_SPECS,
    description=(
        "Files fetched for one channel: each run lists the source, skips what the channel "
        "already delivered, uploads new and updated files to one folder per job, and "
        "announces the folder on amazoniax_parsers."
    ),
)
def channel_files(
    context: dg.AssetExecutionContext,
    fetcher_db: FetcherDBResource,
    output_bucket: OutputBucketResource,
    kafka: KafkaResource,
    fetch_settings: FetchSettings,
    fetcher_repo: FetcherRepoResource,
    python_fetchers: PythonFetchersResource,
) -> dg.MaterializeResult:
    from amazoniax_dagster.core.messages import Flow
    from amazoniax_dagster.jobs.channel_job import execute
    from amazoniax_dagster.jobs.services import JobRequest

    request = JobRequest(
        job_id=run_tags.job_id_for_run(context.run.tags, context.run.run_id),
        channel_id=context.partition_key,
        flow=Flow(context.run.tags.get(run_tags.FLOW, Flow.EXISTING)),
        run_id=context.run.run_id,
    )
    services = job_services(
        context,
        fetcher_db=fetcher_db,
        output_bucket=output_bucket,
        kafka=kafka,
        fetch_settings=fetch_settings,
        fetcher_repo=fetcher_repo,
        python_fetchers=python_fetchers,
    )
    outcome = execute(request, services, emit=context.log.log)
    if outcome.result is None:
        raise job_failure(outcome)
    return dg.MaterializeResult(
        check_results=check_results(
            outcome.result,
            channel_id=request.channel_id,
            policy=outcome.result.invalid_files_policy,
            failing=failing_channels(context.instance),
        ),
        metadata=job_metadata(outcome),
    )


# An incremental channel's checkpoint: where the job started, where the next one starts.
CHECKPOINT_KEYS = ("checkpoint_started_after", "checkpoint")


def job_metadata(outcome: "JobOutcome") -> dict[str, Any]:
    """A ``channel_files`` materialization's metadata, the same whichever run did the job.

    File outcomes use one vocabulary everywhere: new, updated, duplicate, unchanged, rejected,
    invalid (and quarantined, the invalid files the policy kept out of the output).
    """
    assert outcome.result is not None
    summary = outcome.result.summary()
    metadata = {
        "job_id": outcome.request.job_id,
        "channel": outcome.request.channel_id,
        "s3_output_path": dg.MetadataValue.path(outcome.result.output_uri)
        if outcome.result.uploaded
        else "(nothing uploaded)",
        "new_files": summary["new"],
        "updated_files": summary["updated"],
        "duplicate_files": summary["duplicate"],
        "unchanged_files": summary["unchanged"],
        "rejected_files": summary["rejected"],
        "invalid_files": summary["invalid"],
        "quarantined_files": summary["quarantined"],
        "files_uploaded": summary["files_uploaded"],
        "bytes_uploaded": summary["bytes_uploaded"],
        "bytes_downloaded": summary["bytes_downloaded"],
        "duration_seconds": summary["duration_seconds"],
        "retries": summary["retries"],
    }
    extra = outcome.result.extra
    checkpoint = {key: extra[key] for key in CHECKPOINT_KEYS if key in extra}
    return metadata | checkpoint | _log_link(outcome)


def job_failure(outcome: "JobOutcome") -> dg.Failure:
    """The failure to raise at once for a failed job: its message and metadata; a fresh
    exception with a redacted text, so nothing secret is chained into the event log.

    Expected failures (config, site changed, validation, ...) are recorded without a stack
    trace; an unexpected one (``internal``) keeps it, and its job log has the original's.
    """
    metadata = {
        "error_class": outcome.error_class or "internal",
        "job_id": outcome.request.job_id,
        "channel": outcome.request.channel_id,
    } | _log_link(outcome)
    description = outcome.error_text or "the job failed"
    if outcome.error_class in (None, "internal"):
        return dg.Failure(description=description, metadata=metadata, allow_retries=False)
    return ExpectedFailure(description, metadata).without_stack()


def _log_link(outcome: "JobOutcome") -> dict[str, Any]:
    return {"job_log": dg.MetadataValue.path(outcome.log_uri)} if outcome.log_uri else {}
