"""``channel_files``: one materialization of a channel partition is one fetcher job.

Runs started by the Kafka sensor carry the job in their tags; runs launched or backfilled from
the UI get a job_id made from the run id and use the channel's stored config.
"""

from typing import Any

import dagster as dg

from amazoniax_dagster.shell import tags
from amazoniax_dagster.shell.partitions import channels_partitions
from assets.checks import CHECK_SPECS, check_results
from assets.job_services import job_services
from resources import (
    FetcherDBResource,
    FetcherRepoResource,
    FetchSettings,
    KafkaResource,
    OutputBucketResource,
    PythonFetchersResource,
)


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
        job_id=tags.job_id_for_run(context.run.tags, context.run.run_id),
        channel_id=context.partition_key,
        flow=Flow(context.run.tags.get(tags.FLOW, Flow.EXISTING)),
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
    log_link: dict[str, Any] = (
        {"job_log": dg.MetadataValue.path(outcome.log_uri)} if outcome.log_uri else {}
    )
    if outcome.result is None:
        # A fresh exception with a redacted text: nothing secret is chained into the event log.
        raise dg.Failure(
            description=outcome.error_text,
            metadata={"error_class": outcome.error_class or "internal", "job_id": request.job_id}
            | log_link,
            allow_retries=False,
        )

    summary = outcome.result.summary()
    return dg.MaterializeResult(
        check_results=check_results(outcome.result, policy=outcome.result.invalid_files_policy),
        metadata={
            "job_id": request.job_id,
            "s3_output_path": dg.MetadataValue.path(outcome.result.output_uri)
            if outcome.result.uploaded
            else "(nothing uploaded)",
            "new_files": summary["new"],
            "updated_files": summary["updated"],
            "duplicate_files": summary["duplicate"] + summary["unchanged"],
            "skipped_without_download": summary["unchanged"],
            "rejected_names": summary["rejected"],
            "invalid_files": summary["invalid"],
            "quarantined_files": summary["quarantined"],
            "files_uploaded": summary["files_uploaded"],
            "bytes_uploaded": summary["bytes_uploaded"],
            "bytes_downloaded": summary["bytes_downloaded"],
            "duration_seconds": summary["duration_seconds"],
            "retries": summary["retries"],
        }
        | log_link,
    )
