"""``kafka_fetcher_sensor``: one run per job message on amazoniax_fetcher.

A job runs as ``channel_files`` for its channel; a web/API job whose site needs a fetcher
first (a new site, or heal mode) runs as ``fetcher_code`` for its site, which generates,
validates and publishes the fetcher and then fetches the channel in the same run.
The cursor holds the next offset per partition and advances only past handled messages.
Each run's ``run_key`` is its job_id, so a re-delivered message never starts a second run.
"""

import json
from typing import TYPE_CHECKING

import dagster as dg

from amazoniax_dagster.shell import tags
from amazoniax_dagster.shell.dagster_jobs import channel_files_job, fetcher_code_job
from amazoniax_dagster.shell.partitions import (
    CHANNELS,
    SITES,
    channels_partitions,
    sites_partitions,
)
from resources import FetcherDBResource, KafkaResource

if TYPE_CHECKING:
    from amazoniax_dagster.core.messages import FetcherJob


def parse_cursor(cursor: str | None) -> dict[int, int]:
    return {int(p): int(o) for p, o in json.loads(cursor).items()} if cursor else {}


def format_cursor(offsets: dict[int, int]) -> str:
    return json.dumps({str(p): o for p, o in sorted(offsets.items())})


@dg.sensor(
    jobs=[channel_files_job, fetcher_code_job],
    minimum_interval_seconds=5,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Starts one run per job message on the amazoniax_fetcher topic: channel_files, or "
        "fetcher_code first when the job's site needs a fetcher generated or healed."
    ),
)
def kafka_fetcher_sensor(
    context: dg.SensorEvaluationContext, kafka: KafkaResource, fetcher_db: FetcherDBResource
) -> dg.SensorResult:
    from amazoniax_dagster.jobs.intake import take_in

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
        _run_request(job, intake.sites.get(job.job_id), generate=job.job_id in intake.generate)
        for job in jobs.values()
        if job.job_id not in already
    ]
    new_sites = sorted(
        {intake.sites[j] for j in intake.generate if j in intake.sites}
        - set(context.instance.get_dynamic_partitions(SITES))
    )
    if intake.error is not None:
        context.log.error(
            f"stopped early, will retry from the first unhandled message: {intake.error}"
        )
    context.log.info(
        f"{len(batch.records)} messages: {len(run_requests)} runs requested, "
        f"{len(jobs) - len(run_requests)} already running or done, "
        f"{intake.dead_lettered} dead-lettered"
    )
    partition_requests = []
    if new_channels:
        partition_requests.append(channels_partitions.build_add_request(new_channels))
    if new_sites:
        partition_requests.append(sites_partitions.build_add_request(new_sites))
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=partition_requests,
        cursor=format_cursor(positions | intake.next_offsets),
    )


def _run_request(job: "FetcherJob", site: str | None, *, generate: bool) -> dg.RunRequest:
    run_tags = {
        tags.JOB_ID: job.job_id,
        tags.CHANNEL_ID: job.channel_id,
        tags.SOURCE_TYPE: str(job.source_type),
        tags.FLOW: str(job.flow),
    } | ({tags.SITE: site} if site else {})
    if generate and site:
        return dg.RunRequest(
            run_key=job.job_id, job_name=fetcher_code_job.name, partition_key=site, tags=run_tags
        )
    return dg.RunRequest(
        run_key=job.job_id,
        job_name=channel_files_job.name,
        partition_key=job.channel_id,
        tags=run_tags,
    )


def _jobs_with_runs(instance: dg.DagsterInstance, job_ids: list[str]) -> set[str]:
    """job_ids that already have a run (a re-delivered message must not start another)."""
    if not job_ids:
        return set()
    records = instance.get_run_records(filters=dg.RunsFilter(tags={tags.JOB_ID: job_ids}))
    return {r.dagster_run.tags[tags.JOB_ID] for r in records}
