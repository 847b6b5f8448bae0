"""``kafka_fetcher_sensor``: one run of ``channel_files`` per job message on amazoniax_fetcher.

The cursor holds the next offset per partition and advances only past handled messages.
Each run's ``run_key`` is its job_id, so a re-delivered message never starts a second run.
"""

import json

import dagster as dg

from amazoniax_dagster import tags
from amazoniax_dagster.jobs import channel_files_job
from amazoniax_dagster.partitions import CHANNELS, channels_partitions
from resources import FetcherDBResource, KafkaResource


def parse_cursor(cursor: str | None) -> dict[int, int]:
    return {int(p): int(o) for p, o in json.loads(cursor).items()} if cursor else {}


def format_cursor(offsets: dict[int, int]) -> str:
    return json.dumps({str(p): o for p, o in sorted(offsets.items())})


@dg.sensor(
    job=channel_files_job,
    minimum_interval_seconds=5,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Starts one channel_files run per job message on the amazoniax_fetcher topic.",
)
def kafka_fetcher_sensor(
    context: dg.SensorEvaluationContext, kafka: KafkaResource, fetcher_db: FetcherDBResource
) -> dg.SensorResult:
    from amazoniax_dagster.intake import take_in

    positions = parse_cursor(context.cursor)
    bus = kafka.get_bus()
    topics = kafka.topics()
    batch = bus.read(
        topics.fetcher,
        positions,
        max_records=kafka.max_messages_per_tick,
        max_seconds=kafka.max_seconds_per_tick,
    )
    if not batch.records:
        return dg.SensorResult(skip_reason=f"no new messages on {topics.fetcher}")

    intake = take_in(batch, db=fetcher_db.get_db(), bus=bus, topics=topics)
    if intake.error is not None and not intake.next_offsets:
        raise intake.error  # nothing handled: fail the tick visibly, retry next tick

    jobs = {job.job_id: job for job in intake.accepted}  # a batch may repeat a message
    already = _jobs_with_runs(context.instance, list(jobs))
    known_channels = set(context.instance.get_dynamic_partitions(CHANNELS))
    new_channels = sorted({j.channel_id for j in jobs.values()} - known_channels)
    run_requests = [
        dg.RunRequest(
            run_key=job.job_id,
            partition_key=job.channel_id,
            tags={
                tags.JOB_ID: job.job_id,
                tags.CHANNEL_ID: job.channel_id,
                tags.SOURCE_TYPE: str(job.source_type),
                tags.FLOW: str(job.flow),
            }
            | ({tags.SITE: intake.sites[job.job_id]} if job.job_id in intake.sites else {}),
        )
        for job in jobs.values()
        if job.job_id not in already
    ]
    if intake.error is not None:
        context.log.error(
            f"stopped early, will retry from the first unhandled message: {intake.error}"
        )
    context.log.info(
        f"{len(batch.records)} messages: {len(run_requests)} runs requested, "
        f"{len(jobs) - len(run_requests)} already running or done, "
        f"{intake.dead_lettered} dead-lettered"
    )
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=[channels_partitions.build_add_request(new_channels)]
        if new_channels
        else [],
        cursor=format_cursor(positions | intake.next_offsets),
    )


def _jobs_with_runs(instance: dg.DagsterInstance, job_ids: list[str]) -> set[str]:
    """job_ids that already have a run (a re-delivered message must not start another)."""
    if not job_ids:
        return set()
    records = instance.get_run_records(filters=dg.RunsFilter(tags={tags.JOB_ID: job_ids}))
    return {r.dagster_run.tags[tags.JOB_ID] for r in records}
