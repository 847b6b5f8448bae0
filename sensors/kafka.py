"""``kafka_fetcher_sensor``: one run per job message on amazoniax_fetcher.

A job runs as ``channel_files`` for its channel; a web/API job whose site needs a fetcher
first (a new site, or heal mode) runs as ``fetcher_code`` for its site, which generates,
validates and publishes the fetcher and then fetches the channel in the same run.
The cursor holds the next offset per partition and advances only past handled messages.
A job_id has one run; produced again after its runs failed, it starts a new attempt
(``run_key`` ``<job_id>:attempt-<n>``), while a job that is running or done is not run twice.
A tick that fails on a bug of ours counts against the oldest unhandled message; after
``failed_ticks_before_dead_letter`` such ticks that message is dead-lettered and intake goes on.
"""

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import dagster as dg

from amazoniax_dagster.core import run_tags
from amazoniax_dagster.sync.wording import count
from assets.asset_jobs import channel_files_job, fetcher_code_job
from assets.partitions import (
    CHANNELS,
    SITES,
    channels_partitions,
    sites_partitions,
)
from resources import FetcherDBResource, FetchSettings, KafkaResource
from sensors.dead_letters import dead_letters_observation, describe

if TYPE_CHECKING:
    from amazoniax_dagster.clients.kafka import Batch
    from amazoniax_dagster.core.messages import FetcherJob

_ENDED_BADLY = (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)


@dataclass(frozen=True)
class Cursor:
    """The sensor's cursor: the next offset per partition, failed ticks per "partition:offset",
    and how many messages it has dead-lettered (first in the JSON: the tick list shows it)."""

    offsets: dict[int, int] = field(default_factory=dict)
    failed_ticks: dict[str, int] = field(default_factory=dict)
    dead_letters: int = 0

    @classmethod
    def parse(cls, cursor: str | None) -> "Cursor":
        if not cursor:
            return cls()
        data = json.loads(cursor)
        if "offsets" not in data:  # the cursor before failed ticks were counted
            return cls({int(p): int(o) for p, o in data.items()})
        return cls(
            {int(p): int(o) for p, o in data["offsets"].items()},
            {str(k): int(v) for k, v in data.get("failed_ticks", {}).items()},
            int(data.get("dead_letters", 0)),
        )

    def format(self) -> str:
        return json.dumps(
            {
                "dead_letters": self.dead_letters,
                "offsets": {str(p): o for p, o in sorted(self.offsets.items())},
                "failed_ticks": dict(sorted(self.failed_ticks.items())),
            }
        )


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
    context: dg.SensorEvaluationContext,
    kafka: KafkaResource,
    fetcher_db: FetcherDBResource,
    fetch_settings: FetchSettings,
) -> dg.SensorResult:
    cursor = Cursor.parse(context.cursor)
    bus = kafka.get_bus()
    topics = kafka.topics()
    batch = bus.read(
        topics.fetcher,
        cursor.offsets,
        max_records=kafka.max_messages_per_tick,
        max_seconds=kafka.max_seconds_per_tick,
    )
    if not batch.records:
        return dg.SensorResult(skip_reason=f"no new messages on {topics.fetcher}")
    try:
        return _handle(context, batch, cursor, kafka, fetcher_db, fetch_settings)
    except Exception as exc:
        from amazoniax_dagster.core.errors import AmazoniaxError

        if isinstance(exc, AmazoniaxError):
            raise  # our infrastructure (DB, Kafka) failing: fail the tick, retry next tick
        return _after_a_bug(context, batch, cursor, exc, kafka, fetcher_db)


def _handle(
    context: dg.SensorEvaluationContext,
    batch: "Batch",
    cursor: Cursor,
    kafka: KafkaResource,
    fetcher_db: FetcherDBResource,
    fetch_settings: FetchSettings,
) -> dg.SensorResult:
    from amazoniax_dagster.jobs.intake import take_in

    bus = kafka.get_bus()
    intake = take_in(
        batch,
        db=fetcher_db.get_db(),
        bus=bus,
        topics=kafka.topics(),
        policy=fetch_settings.network_policy(),
        limits=kafka.intake_limits(),
    )
    if intake.error is not None and not intake.next_offsets:
        raise intake.error  # nothing handled: fail the tick visibly, retry next tick

    jobs = {job.job_id: job for job in intake.accepted}  # a batch may repeat a message
    attempts = _next_attempts(context.instance, list(jobs))
    known_channels = set(context.instance.get_dynamic_partitions(CHANNELS))
    new_channels = sorted({j.channel_id for j in jobs.values()} - known_channels)
    run_requests = [
        _run_request(
            job,
            intake.sites.get(job.job_id),
            generate=job.job_id in intake.generate,
            attempt=attempts[job.job_id],
        )
        for job in jobs.values()
        if attempts[job.job_id] is not None
    ]
    new_sites = sorted(
        {intake.sites[j] for j in intake.generate if j in intake.sites}
        - set(context.instance.get_dynamic_partitions(SITES))
    )
    if intake.error is not None:
        context.log.error(
            f"stopped early, will retry from the first unhandled message: {intake.error}"
        )
    letters = intake.dead_letters
    dead_letters = cursor.dead_letters + len(letters)
    if run_requests or letters:
        log = context.log.warning if letters else context.log.info
        log(
            f"{count(len(batch.records), 'message')}: {count(len(run_requests), 'run')} "
            f"requested, {len(jobs) - len(run_requests)} already running or done, "
            f"{len(letters)} dead-lettered" + (f"; latest: {letters[-1].reason}" if letters else "")
        )
    partition_requests = []
    if new_channels:
        partition_requests.append(channels_partitions.build_add_request(new_channels))
    if new_sites:
        partition_requests.append(sites_partitions.build_add_request(new_sites))
    skipped = f"{count(len(batch.records), 'message')}, no run to start: " + (
        describe(letters) if letters else "every job is already running or done"
    )
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=partition_requests,
        cursor=Cursor(cursor.offsets | intake.next_offsets, {}, dead_letters).format(),
        skip_reason=None if run_requests else skipped,
        asset_events=[
            dead_letters_observation(letters, total=dead_letters, topic=kafka.topics().dead_letter)
        ]
        if letters
        else [],
    )


def _after_a_bug(
    context: dg.SensorEvaluationContext,
    batch: "Batch",
    cursor: Cursor,
    exc: Exception,
    kafka: KafkaResource,
    fetcher_db: FetcherDBResource,
) -> dg.SensorResult:
    """Count the failed tick against the oldest unhandled message; past the limit, dead-letter
    it and move on, so that a message that trips a bug of ours cannot block the topic."""
    from amazoniax_dagster.core.errors import IntakeBugError
    from amazoniax_dagster.jobs.intake import dead_letter

    head = batch.records[0]
    where = f"{head.partition}:{head.offset}"
    failed = cursor.failed_ticks.get(where, 0) + 1
    context.log.exception(f"the sensor failed on the message at {where} ({count(failed, 'time')})")
    if failed < kafka.failed_ticks_before_dead_letter:
        return dg.SensorResult(
            skip_reason=f"failed on the message at {where} ({count(failed, 'time')}): "
            f"{type(exc).__name__}",
            cursor=Cursor(cursor.offsets, {where: failed}, cursor.dead_letters).format(),
        )
    reason = f"the sensor failed on this message {count(failed, 'time')}: {type(exc).__name__}"
    topics = kafka.topics()
    letter = dead_letter(
        head, IntakeBugError(reason), bus=kafka.get_bus(), topics=topics, db=fetcher_db.get_db()
    )
    total = cursor.dead_letters + 1
    return dg.SensorResult(
        skip_reason=f"dead-lettered the message at {where}: {reason}",
        cursor=Cursor(cursor.offsets | {head.partition: head.offset + 1}, {}, total).format(),
        asset_events=[dead_letters_observation([letter], total=total, topic=topics.dead_letter)],
    )


def _run_request(
    job: "FetcherJob", site: str | None, *, generate: bool, attempt: int | None
) -> dg.RunRequest:
    tags = {
        run_tags.JOB_ID: job.job_id,
        run_tags.CHANNEL_ID: job.channel_id,
        run_tags.SOURCE_TYPE: str(job.source_type),
        run_tags.FLOW: str(job.flow),
    } | ({run_tags.SITE: site} if site else {})
    run_key = job.job_id
    if attempt and attempt > 1:
        tags[run_tags.ATTEMPT] = str(attempt)
        run_key = f"{job.job_id}:attempt-{attempt}"
    if generate and site:
        return dg.RunRequest(
            run_key=run_key, job_name=fetcher_code_job.name, partition_key=site, tags=tags
        )
    return dg.RunRequest(
        run_key=run_key,
        job_name=channel_files_job.name,
        partition_key=job.channel_id,
        tags=tags,
    )


def _next_attempts(instance: dg.DagsterInstance, job_ids: list[str]) -> dict[str, Any]:
    """job_id -> the attempt a new run would be (1 for a new job), or None when the job has a
    run that is queued, running or succeeded (a re-delivered message must not start another)."""
    if not job_ids:
        return {}
    records = instance.get_run_records(filters=dg.RunsFilter(tags={run_tags.JOB_ID: job_ids}))
    runs: dict[str, list[dg.DagsterRun]] = {}
    for record in records:
        runs.setdefault(record.dagster_run.tags[run_tags.JOB_ID], []).append(record.dagster_run)
    attempts: dict[str, Any] = {}
    for job_id in job_ids:
        earlier = runs.get(job_id, [])
        if any(run.status not in _ENDED_BADLY for run in earlier):
            attempts[job_id] = None
        else:
            attempts[job_id] = len(earlier) + 1
    return attempts
