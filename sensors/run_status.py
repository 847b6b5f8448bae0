"""Run status sensors: every channel run that ends publishes one ``amazoniax_status`` message,
whether it succeeded, failed, crashed or was canceled.

They watch every job of the code location, not only ``channel_files_job``: runs launched or
backfilled from an asset page run as Dagster's own asset job. Only runs that materialize
``channel_files`` are reported.
"""

import dagster as dg

from amazoniax_dagster.core import run_tags
from assets.asset_jobs import channel_files_job
from resources import FetcherDBResource, KafkaResource, OutputBucketResource

CHANNEL_FILES = dg.AssetKey("channel_files")


def is_channel_run(run: dg.DagsterRun) -> bool:
    """A run of the channel_files asset, however it was launched: by the sensors (tagged), as
    channel_files_job from the Jobs page, or as Dagster's asset job from an asset page."""
    return (
        run_tags.CHANNEL_ID in run.tags
        or run.job_name == channel_files_job.name
        or CHANNEL_FILES in (run.asset_selection or set())
    )


def _report(
    context: dg.RunStatusSensorContext,
    outcome: str,
    run_message: str,
    fetcher_db: FetcherDBResource,
    kafka: KafkaResource,
    output_bucket: OutputBucketResource,
) -> None:
    from amazoniax_dagster.jobs.status_message import build_status, publish_status

    run = context.dagster_run
    if not is_channel_run(run):
        return
    channel_id = run.tags.get(run_tags.CHANNEL_ID) or run.tags.get("dagster/partition")
    if channel_id is None:
        context.log.warning(f"run {run.run_id} has no channel; no status published")
        return
    stats = context.instance.get_run_stats(run.run_id)
    seconds = stats.end_time - stats.start_time if stats.start_time and stats.end_time else None
    db = fetcher_db.get_db()
    job_id = run_tags.job_id_for_run(run.tags, run.run_id)
    if outcome in ("failure", "canceled"):
        from amazoniax_dagster.jobs.cleanup import remove_unrecorded_uploads

        # A killed run's uploads that no record lists go now, before anyone reads the folder.
        remove_unrecorded_uploads(output_bucket.get_bucket(), db, channel_id, job_id)
    if outcome == "failure":
        from amazoniax_dagster.jobs.heal import after_failure

        # A site that changed gets a heal request (or a person) before its status goes out.
        after_failure(db, kafka.get_bus(), kafka.topics(), job_id)
    status = build_status(
        db,
        job_id=job_id,
        channel_id=channel_id,
        outcome=outcome,  # type: ignore[arg-type]
        run_message=run_message,
        run_seconds=seconds,
    )
    publish_status(status, db=db, bus=kafka.get_bus(), topics=kafka.topics())


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=5,
    description="Publishes a success status for every channel run that succeeded.",
)
def status_on_success(
    context: dg.RunStatusSensorContext,
    fetcher_db: FetcherDBResource,
    kafka: KafkaResource,
    output_bucket: OutputBucketResource,
) -> None:
    _report(context, "success", "", fetcher_db, kafka, output_bucket)


@dg.run_failure_sensor(
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=5,
    description="Publishes a failed status for every channel run that failed or crashed.",
)
def status_on_failure(
    context: dg.RunFailureSensorContext,
    fetcher_db: FetcherDBResource,
    kafka: KafkaResource,
    output_bucket: OutputBucketResource,
) -> None:
    message = context.failure_event.message or ""
    _report(context, "failure", message, fetcher_db, kafka, output_bucket)


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.CANCELED,
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=5,
    description="Publishes a failed status for every channel run that was canceled.",
)
def status_on_cancel(
    context: dg.RunStatusSensorContext,
    fetcher_db: FetcherDBResource,
    kafka: KafkaResource,
    output_bucket: OutputBucketResource,
) -> None:
    _report(context, "canceled", "", fetcher_db, kafka, output_bucket)
