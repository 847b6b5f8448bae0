"""``channel_files``: one materialization of a channel partition is one fetcher job.

Runs started by the Kafka sensor carry the job in their tags; runs launched or backfilled from
the UI get a job_id made from the run id and use the channel's stored config.
"""

import traceback

import dagster as dg

from amazoniax_dagster import tags
from amazoniax_dagster.partitions import channels_partitions
from resources import FetcherDBResource, FetchSettings, KafkaResource, OutputBucketResource


@dg.asset(
    partitions_def=channels_partitions,
    kinds={"s3", "python"},
    group_name="fetching",
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
) -> dg.MaterializeResult:
    from amazoniax_dagster.channel_job import (
        JobRequest,
        JobServices,
        job_record,
        resolve_job,
        run_job,
    )
    from amazoniax_dagster.errors import AmazoniaxError
    from amazoniax_dagster.logs import forwarded_logs, redacted_log_records
    from amazoniax_dagster.messages import Flow
    from amazoniax_dagster.redaction import Redactor

    run_tags = context.run.tags
    request = JobRequest(
        job_id=tags.job_id_for_run(run_tags, context.run_id),
        channel_id=context.partition_key,
        flow=Flow(run_tags.get(tags.FLOW, Flow.EXISTING)),
        run_id=context.run_id,
    )
    db = fetcher_db.get_db()
    services = JobServices(
        db=db,
        output=output_bucket.get_bucket(max_connections=fetch_settings.max_workers * 2),
        bus=kafka.get_bus(),
        topics=kafka.topics(),
        policy=fetch_settings.network_policy(),
        max_workers=fetch_settings.max_workers,
    )
    context.log.info(f"job {request.job_id}: channel {request.channel_id}, flow {request.flow}")
    redactor = Redactor()
    failure: dg.Failure | None = None
    with redacted_log_records(redactor), forwarded_logs(context.log.log):
        try:
            job = resolve_job(request, db)
            redactor.add(*job.secrets())
            with job_record(job, db):
                result = run_job(job, services)
        except AmazoniaxError as exc:
            failure = dg.Failure(
                description=redactor(f"{exc.error_class} error: {exc}"),
                metadata={"error_class": exc.error_class, "job_id": request.job_id},
                allow_retries=False,
            )
        except Exception as exc:
            # Unexpected: keep the traceback for people, but only in redacted form.
            context.log.error(redactor(traceback.format_exc()))
            failure = dg.Failure(
                description=redactor(f"unexpected error: {type(exc).__name__}: {exc}"),
                metadata={"error_class": "internal", "job_id": request.job_id},
            )
    if failure is not None:
        # Raised outside the except block so the original exception (which may quote a
        # secret) is not chained into Dagster's event log.
        raise failure

    summary = result.summary()
    return dg.MaterializeResult(
        metadata={
            "job_id": request.job_id,
            "s3_output_path": dg.MetadataValue.path(result.output_uri)
            if result.uploaded
            else "(nothing uploaded)",
            "new_files": summary["new"],
            "updated_files": summary["updated"],
            "duplicate_files": summary["duplicate"] + summary["unchanged"],
            "skipped_without_download": summary["unchanged"],
            "rejected_names": summary["rejected"],
            "files_uploaded": summary["files_uploaded"],
            "bytes_uploaded": summary["bytes_uploaded"],
            "bytes_downloaded": summary["bytes_downloaded"],
            "duration_seconds": summary["duration_seconds"],
        }
    )
