"""``stored_channels_sensor``: every stored channel is a partition of ``channel_files`` (so the
UI can launch and backfill it), and channels with a ``schedule`` run on their cadence."""

from datetime import UTC, datetime, timedelta

import dagster as dg

from amazoniax_dagster.core import run_tags
from assets.asset_jobs import channel_files_job
from assets.partitions import CHANNELS, channels_partitions
from resources import FetcherDBResource

INTERVAL_SECONDS = 60


@dg.sensor(
    job=channel_files_job,
    minimum_interval_seconds=INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Adds every stored channel as a channel_files partition, and starts one run per "
        "scheduled channel whose cron schedule (UTC) ticked since the last evaluation."
    ),
)
def stored_channels_sensor(
    context: dg.SensorEvaluationContext, fetcher_db: FetcherDBResource
) -> dg.SensorResult:
    from amazoniax_dagster.core.cadence import ScheduledChannel, due_jobs

    now = datetime.now(UTC)
    # First evaluation: look back one interval only; missed ticks are not replayed.
    since = (
        datetime.fromisoformat(context.cursor)
        if context.cursor
        else now - timedelta(seconds=INTERVAL_SECONDS)
    )
    db = fetcher_db.get_db()
    known = set(context.instance.get_dynamic_partitions(CHANNELS))
    missing = sorted(set(db.list_channel_ids()) - known)
    scheduled = [ScheduledChannel(*row) for row in db.scheduled_channels()]
    run_requests = [
        dg.RunRequest(
            run_key=job.job_id,
            partition_key=job.channel_id,
            tags={
                run_tags.JOB_ID: job.job_id,
                run_tags.CHANNEL_ID: job.channel_id,
                run_tags.SOURCE_TYPE: job.source_type,
                run_tags.FLOW: "existing",
            },
        )
        for job in due_jobs(scheduled, since=since, until=now)
    ]
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=[channels_partitions.build_add_request(missing)]
        if missing
        else [],
        cursor=now.isoformat(),
    )
