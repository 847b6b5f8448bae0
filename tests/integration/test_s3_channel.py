"""An S3 channel end to end on the real stack: Kafka message → sensor → run → S3, DB, Kafka."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from amazoniax_dagster.clients import s3 as s3util
from amazoniax_dagster.clients.kafka import KafkaBus, Topics
from amazoniax_dagster.core import run_tags
from amazoniax_dagster.core.errors import TransientError
from amazoniax_dagster.db import FetcherDB, RetryConfig
from amazoniax_dagster.devstack.local_stack import LocalStack, StackEndpoints
from sensors.dead_letters import DEAD_LETTERS
from sensors.kafka import Cursor
from tests.integration.faults import FaultPlan, flaky_proxy
from tests.integration.harness import (
    Harness,
    channel_files_job_def,
    end_offsets,
    job_id_of,
    read_json,
    s3_get_count,
)

pytestmark = pytest.mark.integration

TOPICS = Topics()


@dataclass
class ChannelBuckets:
    """The customer's side of S3: buckets made by the admin, files written with the
    customer's own credentials (the ones channel messages carry)."""

    admin: Any
    client: Any

    def new(self, files: dict[str, bytes]) -> str:
        bucket = f"src-{uuid.uuid4().hex[:12]}"
        self.admin.create_bucket(Bucket=bucket)
        for key, body in files.items():
            self.client.put_object(Bucket=bucket, Key=key, Body=body)
        return bucket

    def put_object(self, **kwargs: Any) -> None:
        self.client.put_object(**kwargs)


@pytest.fixture()
def channel_client(stack: StackEndpoints, output_client: Any) -> ChannelBuckets:
    return ChannelBuckets(
        admin=output_client,
        client=s3util.make_client(
            endpoint_url=stack.s3_endpoint_url,
            access_key_id=stack.channel_s3_access_key_id,
            secret_access_key=stack.channel_s3_secret_access_key,
            region=stack.s3_region,
        ),
    )


def s3_message(
    stack: StackEndpoints, *, job_id: str, channel_id: str, bucket: str, **config: Any
) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "channel_id": channel_id,
        "source_type": "s3",
        "is_new": False,
        "heal_mode": False,
        "config": {
            "bucket": bucket,
            "remote_path": "/exports/",
            "file_pattern": "**/*.csv",
            "endpoint_url": stack.s3_endpoint_url,
            "region": stack.s3_region,
            "access_key": stack.channel_s3_access_key_id,
            "secret_access_key": stack.channel_s3_secret_access_key,
        }
        | config,
    }


def objects_under(client: Any, bucket: str, prefix: str) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            body = client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            found[obj["Key"][len(prefix) :]] = body
    return found


FILES = {
    "exports/a.csv": b"id,v\n1,a\n",
    "exports/b.csv": b"id,v\n2,b\n",
    "exports/2026/c.csv": b"id,v\n3,c\n",
    "exports/notes.txt": b"not a csv\n",
}


def run_one(harness: Harness, message: dict[str, Any]) -> dg.DagsterRun:
    harness.produce(message, key=message["channel_id"])
    result = harness.tick()
    assert len(result.run_requests or []) == 1
    (run,) = harness.run_all(result)
    return run


def test_s3_channel_end_to_end(
    harness: Harness,
    stack: StackEndpoints,
    local_stack: LocalStack,
    fetcher_db: FetcherDB,
    channel_client: ChannelBuckets,
    output_client: Any,
    bus: KafkaBus,
) -> None:
    bucket = channel_client.new(FILES)
    channel = f"ch-{uuid.uuid4().hex[:8]}"
    parsers_from = end_offsets(bus, TOPICS.parsers)
    status_from = end_offsets(bus, TOPICS.status)

    # 1. First fetch: three CSVs are new and uploaded under the job's folder.
    job1 = f"job-{uuid.uuid4().hex[:8]}"
    harness.produce(s3_message(stack, job_id=job1, channel_id=channel, bucket=bucket), key=channel)
    result = harness.tick()
    (request,) = result.run_requests or []
    assert request.run_key == job1
    assert request.partition_key == channel
    assert request.tags == {
        run_tags.JOB_ID: job1,
        run_tags.CHANNEL_ID: channel,
        run_tags.SOURCE_TYPE: "s3",
        run_tags.FLOW: "existing",
    }
    assert harness.instance.has_dynamic_partition("channels", channel)
    (run1,) = harness.run_all(result)
    assert run1.status is dg.DagsterRunStatus.SUCCESS

    folder = f"raw/{channel}/{job1}/"
    assert objects_under(output_client, stack.output_bucket, folder) == {
        "a.csv": FILES["exports/a.csv"],
        "b.csv": FILES["exports/b.csv"],
        "2026/c.csv": FILES["exports/2026/c.csv"],
    }
    record = fetcher_db.get_job(job1)
    assert record is not None and record.status == "success"
    assert record.metadata["new"] == 3 and record.metadata["duplicate"] == 0
    delivered = {f.file_path: f for f in fetcher_db.job_files(job1)}
    assert set(delivered) == {"a.csv", "b.csv", "2026/c.csv"}
    assert {f.classification for f in delivered.values()} == {"new"}
    assert delivered["a.csv"].file_size == len(FILES["exports/a.csv"])
    assert delivered["a.csv"].s3_key == f"{folder}a.csv"

    job_log = (
        output_client.get_object(Bucket=stack.output_bucket, Key=f"raw/{channel}/_logs/{job1}.log")[
            "Body"
        ]
        .read()
        .decode()
    )
    assert f"job {job1}: s3 channel {channel}" in job_log
    lines = job_log.strip().splitlines()
    assert lines and all(f"job={job1} channel={channel} " in line for line in lines)
    uploaded_to = f"s3://{stack.output_bucket}/raw/{channel}/{job1}/"
    assert f"job {job1}: 3 files uploaded to {uploaded_to}; 3 files listed: 3 new" in job_log

    parsers = [
        m for m in read_json(bus, TOPICS.parsers, parsers_from) if m["channel_id"] == channel
    ]
    assert len(parsers) == 1
    assert parsers[0]["job_id"] == job1
    assert parsers[0]["file_count"] == 3
    assert parsers[0]["s3_output_path"] == f"s3://{stack.output_bucket}/{folder}"
    statuses = {m["job_id"]: m for m in read_json(bus, TOPICS.status, status_from)}
    assert statuses[job1]["status"] == "success"
    assert statuses[job1]["metadata"]["files_processed"] == 3
    assert statuses[job1]["metadata"]["execution_time_seconds"] >= 0

    # 2. Nothing changed: nothing downloaded, nothing uploaded, no parsers message.
    gets_before = s3_get_count(local_stack.s3_metrics_url, bucket)
    job2 = f"job-{uuid.uuid4().hex[:8]}"
    run2 = run_one(harness, s3_message(stack, job_id=job2, channel_id=channel, bucket=bucket))
    assert run2.status is dg.DagsterRunStatus.SUCCESS
    assert s3_get_count(local_stack.s3_metrics_url, bucket) == gets_before
    assert objects_under(output_client, stack.output_bucket, f"raw/{channel}/{job2}/") == {}
    record2 = fetcher_db.get_job(job2)
    assert record2 is not None and record2.metadata["unchanged"] == 3
    statuses = {m["job_id"]: m for m in read_json(bus, TOPICS.status, status_from)}
    assert statuses[job2]["status"] == "success"
    assert statuses[job2]["metadata"]["files_processed"] == 0

    # 3. One file changed: only it is downloaded and uploaded, as "updated".
    channel_client.put_object(Bucket=bucket, Key="exports/b.csv", Body=b"id,v\n2,B!\n")
    job3 = f"job-{uuid.uuid4().hex[:8]}"
    run3 = run_one(harness, s3_message(stack, job_id=job3, channel_id=channel, bucket=bucket))
    assert run3.status is dg.DagsterRunStatus.SUCCESS
    assert s3_get_count(local_stack.s3_metrics_url, bucket) == gets_before + 1
    assert objects_under(output_client, stack.output_bucket, f"raw/{channel}/{job3}/") == {
        "b.csv": b"id,v\n2,B!\n"
    }
    assert [(f.file_path, f.classification) for f in fetcher_db.job_files(job3)] == [
        ("b.csv", "updated")
    ]
    parsers = [
        m for m in read_json(bus, TOPICS.parsers, parsers_from) if m["channel_id"] == channel
    ]
    assert [(m["job_id"], m["file_count"]) for m in parsers] == [(job1, 3), (job3, 1)]

    # 4. Launched from the UI: the stored config, a generated job_id, the same messages.
    channel_client.put_object(Bucket=bucket, Key="exports/d.csv", Body=b"id,v\n4,d\n")
    ui_run = harness.launch_ui_run(channel)
    harness.report(ui_run)
    assert ui_run.status is dg.DagsterRunStatus.SUCCESS
    ui_job = job_id_of(ui_run)
    assert ui_job == f"ui-{ui_run.run_id}"
    assert [f.file_path for f in fetcher_db.job_files(ui_job)] == ["d.csv"]
    statuses = {m["job_id"]: m for m in read_json(bus, TOPICS.status, status_from)}
    assert statuses[ui_job]["status"] == "success"


def test_a_message_without_config_may_follow_its_channels_first_message_in_one_batch(
    harness: Harness, stack: StackEndpoints, channel_client: ChannelBuckets
) -> None:
    bucket = channel_client.new({"exports/x.csv": b"x\n"})
    channel = f"fresh-{uuid.uuid4().hex[:6]}"
    first = s3_message(
        stack, job_id=f"job-{uuid.uuid4().hex[:8]}", channel_id=channel, bucket=bucket
    )
    second = {k: v for k, v in first.items() if k != "config"} | {
        "job_id": f"job-{uuid.uuid4().hex[:8]}"
    }
    harness.produce(first)
    harness.produce(second)  # no config: the channel's, stored by the message before it
    result = harness.tick()
    assert [r.run_key for r in result.run_requests or []] == [first["job_id"], second["job_id"]]


@pytest.mark.parametrize(
    "hostile",
    # SeaweedFS itself refuses backslashes and folds "a//b" to "a/b" when storing keys; the
    # unit tests cover those names.
    ["exports/new\nline.csv", "exports/bell\x07.csv"],
)
def test_hostile_object_names_are_refused_and_the_job_goes_on(
    hostile: str,
    harness: Harness,
    stack: StackEndpoints,
    fetcher_db: FetcherDB,
    channel_client: ChannelBuckets,
    output_client: Any,
) -> None:
    bucket = channel_client.new({"exports/fine.csv": b"ok\n", hostile: b"evil\n"})
    channel = f"hostile-{uuid.uuid4().hex[:6]}"
    job_id = f"job-{uuid.uuid4().hex[:8]}"
    run = run_one(harness, s3_message(stack, job_id=job_id, channel_id=channel, bucket=bucket))
    assert run.status is dg.DagsterRunStatus.SUCCESS
    written = objects_under(output_client, stack.output_bucket, f"raw/{channel}/")
    assert set(written) == {f"{job_id}/fine.csv", f"_logs/{job_id}.log"}
    record = fetcher_db.get_job(job_id)
    assert record is not None and record.metadata["rejected"] == 1


def test_a_redelivered_message_starts_one_run(
    harness: Harness, stack: StackEndpoints, channel_client: ChannelBuckets
) -> None:
    bucket = channel_client.new({"exports/x.csv": b"x\n"})
    message = s3_message(
        stack, job_id=f"job-{uuid.uuid4().hex[:8]}", channel_id="redeliver", bucket=bucket
    )
    harness.produce(message)
    harness.produce(message)  # the same message twice in one batch
    result = harness.tick()
    assert [r.run_key for r in result.run_requests or []] == [message["job_id"]]
    harness.run_all(result)
    harness.produce(message)  # and once more after its run
    assert harness.tick().run_requests == []


def test_bad_messages_are_dead_lettered_and_the_sensor_goes_on(
    harness: Harness,
    stack: StackEndpoints,
    fetcher_db: FetcherDB,
    channel_client: ChannelBuckets,
    output_client: Any,
    bus: KafkaBus,
) -> None:
    bucket = channel_client.new({"exports/x.csv": b"x\n"})
    dlq_from = end_offsets(bus, TOPICS.dead_letter)
    status_from = end_offsets(bus, TOPICS.status)
    wrong = f"wrong-secret-{uuid.uuid4().hex}"
    bad_secret_job = f"job-{uuid.uuid4().hex[:8]}"
    good_job = f"job-{uuid.uuid4().hex[:8]}"
    unknown_job = f"job-{uuid.uuid4().hex[:8]}"

    harness.produce(b'{"job_id": "broken", "channel_id": ')  # malformed JSON
    harness.produce(
        {"job_id": unknown_job, "channel_id": "c1", "source_type": "gopher", "config": {}}
    )
    harness.produce(
        s3_message(stack, job_id=bad_secret_job, channel_id="bad-secret", bucket=bucket,
                   secret_access_key=wrong)
    )  # fmt: skip
    harness.produce(s3_message(stack, job_id=good_job, channel_id="good", bucket=bucket))
    dead_before = Cursor.parse(harness.cursor).dead_letters
    result = harness.tick()
    assert sorted(r.run_key or "" for r in result.run_requests or []) == sorted(
        [bad_secret_job, good_job]
    )
    # The tick shows what it refused, though it started runs: an observation of the
    # dead-letter asset, and the running count in its cursor.
    (observation,) = result.asset_events or []
    assert isinstance(observation, dg.AssetObservation)
    assert observation.asset_key == DEAD_LETTERS
    assert observation.metadata["dead_lettered"].value == 2
    table = observation.metadata["dead_letters"].value
    assert [row.data["job_id"] for row in table.records] == ["?", unknown_job]
    assert observation.description and observation.description.startswith(
        "2 messages dead-lettered; latest: "
    )
    assert Cursor.parse(result.cursor).dead_letters == dead_before + 2

    letters = read_json(bus, TOPICS.dead_letter, dlq_from)
    assert len(letters) == 2
    assert "not valid JSON" in letters[0]["reason"]
    assert letters[0]["original"] == '{"job_id": "broken", "channel_id": '
    assert letters[1]["job_id"] == unknown_job and "source_type" in letters[1]["reason"]
    assert {m["error_class"] for m in letters} == {"invalid_message"}

    runs = {job_id_of(r): r for r in harness.run_all(result)}
    assert runs[good_job].status is dg.DagsterRunStatus.SUCCESS
    assert runs[bad_secret_job].status is dg.DagsterRunStatus.FAILURE

    statuses = read_json(bus, TOPICS.status, status_from)
    refused = [s for s in statuses if s["message"].startswith("message refused")]
    assert len(refused) == 2 and {s["status"] for s in refused} == {"failed"}
    by_job = {s["job_id"]: s for s in statuses}
    assert by_job[good_job]["status"] == "success"
    failed = by_job[bad_secret_job]
    assert failed["status"] == "failed"
    assert "secret access key is wrong" in failed["message"]
    assert failed["metadata"]["error_class"] == "config"
    record = fetcher_db.get_job(bad_secret_job)
    assert record is not None and record.status == "failed"
    failed_log = (
        output_client.get_object(
            Bucket=stack.output_bucket, Key=f"raw/bad-secret/_logs/{bad_secret_job}.log"
        )["Body"]
        .read()
        .decode()
    )
    assert "secret access key is wrong" in failed_log
    assert wrong not in failed_log
    assert fetcher_db.job_files(bad_secret_job) == []
    # A config error fails at once: one attempt, no retry storm.
    assert "retrying" not in _event_log_text(harness.instance, runs[bad_secret_job].run_id)


def test_a_crashed_run_still_reports_failed(
    harness: Harness, stack: StackEndpoints, fetcher_db: FetcherDB, bus: KafkaBus
) -> None:
    """A run whose process died (run monitoring then marks it failed) gets a failed status."""
    job_id = f"job-{uuid.uuid4().hex[:8]}"
    fetcher_db.save_channel("crashy", "s3", {"bucket": "nowhere"})
    fetcher_db.start_job(
        job_id=job_id, channel_id="crashy", source_type="s3", flow="existing", run_id=None
    )
    status_from = end_offsets(bus, TOPICS.status)
    run = harness.instance.create_run_for_job(
        job_def=channel_files_job_def(),
        tags={
            run_tags.JOB_ID: job_id,
            run_tags.CHANNEL_ID: "crashy",
            "dagster/partition": "crashy",
        },
    )
    harness.instance.report_run_failed(run, message="run worker process exited unexpectedly")
    run = harness.instance.get_run_by_id(run.run_id)
    assert run is not None and run.status is dg.DagsterRunStatus.FAILURE
    harness.report(run)

    (status,) = [s for s in read_json(bus, TOPICS.status, status_from) if s["job_id"] == job_id]
    assert status["status"] == "failed"
    assert "exited unexpectedly" in status["message"]
    assert status["metadata"]["error_class"] == "crashed"
    record = fetcher_db.get_job(job_id)
    assert record is not None and record.status == "failed"


def test_secrets_from_messages_never_reach_dagster(
    harness: Harness, stack: StackEndpoints, fetcher_db: FetcherDB, channel_client: ChannelBuckets
) -> None:
    """Runs above used the channel's secret and a wrong one; search everything Dagster keeps."""
    bucket = channel_client.new({"exports/s.csv": b"s\n"})
    wrong = f"wrong-secret-{uuid.uuid4().hex}"
    for job_id, secret in (
        (f"job-{uuid.uuid4().hex[:8]}", None),
        (f"job-{uuid.uuid4().hex[:8]}", wrong),
    ):
        extra = {"secret_access_key": secret} if secret else {}
        run_one(
            harness,
            s3_message(stack, job_id=job_id, channel_id="secretive", bucket=bucket, **extra),
        )
    secrets = [stack.channel_s3_secret_access_key, stack.channel_s3_access_key_id, wrong]

    home = Path(harness.instance.root_directory)
    compute_logs = [
        p for p in home.rglob("*") if p.is_file() and p.suffix in (".out", ".err", ".complete")
    ]
    assert compute_logs, "expected captured compute logs to search"
    for path in (p for p in home.rglob("*") if p.is_file()):
        data = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in data, f"secret found in {path}"
    for record in harness.instance.get_run_records():
        run = record.dagster_run
        blob = json.dumps([run.tags, run.run_config], default=str)
        for secret in secrets:
            assert secret not in blob
    with fetcher_db.database.transaction() as sql:
        configs = sql.all("SELECT config_json FROM channels")
        configs += sql.all("SELECT config_json FROM job_runs")
    stored = json.dumps(configs)
    for secret in secrets:
        assert secret not in stored, "secrets must be sealed at rest"


def _object_gets(bucket: str) -> Callable[[str, str], bool]:
    return lambda method, path: method == "GET" and path.startswith(f"/{bucket}/exports/")


def _listings(bucket: str) -> Callable[[str, str], bool]:
    return lambda method, path: method == "GET" and path.startswith(f"/{bucket}?")


def test_a_503_storm_is_retried_and_then_succeeds(
    harness: Harness, stack: StackEndpoints, fetcher_db: FetcherDB, channel_client: ChannelBuckets
) -> None:
    bucket = channel_client.new({"exports/r1.csv": b"1\n", "exports/r2.csv": b"2\n"})
    plan = FaultPlan(matches=_object_gets(bucket), failures=2)
    with flaky_proxy(stack.s3_endpoint_url, plan) as proxy:
        job_id = f"job-{uuid.uuid4().hex[:8]}"
        run = run_one(
            harness,
            s3_message(stack, job_id=job_id, channel_id="storm", bucket=bucket, endpoint_url=proxy),
        )
    assert plan.failed == 2
    assert run.status is dg.DagsterRunStatus.SUCCESS
    assert sorted(f.file_path for f in fetcher_db.job_files(job_id)) == ["r1.csv", "r2.csv"]
    assert "retrying" in _event_log_text(harness.instance, run.run_id)
    record = fetcher_db.get_job(job_id)
    assert record is not None and record.metadata["retries"] == 2


def test_retries_stop_at_the_stored_limit_and_fail_as_transient(
    harness: Harness,
    stack: StackEndpoints,
    fetcher_db: FetcherDB,
    channel_client: ChannelBuckets,
    bus: KafkaBus,
) -> None:
    bucket = channel_client.new({"exports/r1.csv": b"1\n"})
    channel = f"down-{uuid.uuid4().hex[:6]}"
    fetcher_db.set_retry_config(
        RetryConfig(max_simple_retries=2, retry_delay_seconds=0.01), scope=channel
    )
    status_from = end_offsets(bus, TOPICS.status)
    plan = FaultPlan(matches=_listings(bucket), failures=1_000)
    with flaky_proxy(stack.s3_endpoint_url, plan) as proxy:
        job_id = f"job-{uuid.uuid4().hex[:8]}"
        run = run_one(
            harness,
            s3_message(stack, job_id=job_id, channel_id=channel, bucket=bucket, endpoint_url=proxy),
        )
    assert run.status is dg.DagsterRunStatus.FAILURE
    assert plan.failed == 3  # the first try and max_simple_retries=2 more, no more
    (status,) = [s for s in read_json(bus, TOPICS.status, status_from) if s["job_id"] == job_id]
    assert status["status"] == "failed"
    assert status["metadata"]["error_class"] == "transient"
    assert "SlowDown" in status["message"]


def test_a_failed_job_leaves_nothing_behind_and_can_be_run_again(
    harness: Harness,
    stack: StackEndpoints,
    fetcher_db: FetcherDB,
    channel_client: ChannelBuckets,
    output_client: Any,
    bus: KafkaBus,
) -> None:
    files = {"exports/ok1.csv": b"1\n", "exports/ok2.csv": b"2\n", "exports/bad.csv": b"3\n"}
    bucket = channel_client.new(files)
    channel = f"rerun-{uuid.uuid4().hex[:6]}"
    fetcher_db.set_retry_config(RetryConfig(max_simple_retries=0), scope=channel)
    parsers_from = end_offsets(bus, TOPICS.parsers)
    plan = FaultPlan(
        matches=lambda method, path: method == "GET" and path == f"/{bucket}/exports/bad.csv",
        failures=1_000,
    )
    job_id = f"job-{uuid.uuid4().hex[:8]}"
    folder = f"raw/{channel}/{job_id}/"
    with flaky_proxy(stack.s3_endpoint_url, plan) as proxy:
        harness.produce(
            s3_message(stack, job_id=job_id, channel_id=channel, bucket=bucket, endpoint_url=proxy)
        )
        (request,) = harness.tick().run_requests or []
        failed = harness.launch(request)
        assert failed.status is dg.DagsterRunStatus.FAILURE
        # Nothing half-done: no objects, no delivered files, no remembered identities.
        assert objects_under(output_client, stack.output_bucket, folder) == {}
        assert fetcher_db.job_files(job_id) == []
        assert fetcher_db.load_history(channel).identities == {}

        plan.failures = plan.failed  # the source is healthy again
        again = harness.launch(request)  # the same job, as a re-execution would run it
        harness.report(again)
    assert again.status is dg.DagsterRunStatus.SUCCESS
    assert objects_under(output_client, stack.output_bucket, folder) == {
        "ok1.csv": b"1\n",
        "ok2.csv": b"2\n",
        "bad.csv": b"3\n",
    }
    assert {f.classification for f in fetcher_db.job_files(job_id)} == {"new"}
    parsers = [m for m in read_json(bus, TOPICS.parsers, parsers_from) if m["job_id"] == job_id]
    assert len(parsers) == 1 and parsers[0]["file_count"] == 3

    harness.launch(request)  # once more: same files, announced only once
    parsers = [m for m in read_json(bus, TOPICS.parsers, parsers_from) if m["job_id"] == job_id]
    assert len(parsers) == 1
    assert len(fetcher_db.job_files(job_id)) == 3


def test_each_tick_handles_a_bounded_number_of_messages(
    harness: Harness, stack: StackEndpoints, channel_client: ChannelBuckets
) -> None:
    bucket = channel_client.new({"exports/x.csv": b"x\n"})
    harness.max_messages_per_tick = 2
    jobs = [f"job-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    for job_id in jobs:
        harness.produce(s3_message(stack, job_id=job_id, channel_id="bounded", bucket=bucket))
    first, second = harness.tick(), harness.tick()
    assert [r.run_key for r in first.run_requests or []] == jobs[:2]
    assert [r.run_key for r in second.run_requests or []] == jobs[2:]


def test_a_broker_outage_fails_the_tick_and_loses_no_message(
    harness: Harness, stack: StackEndpoints, local_stack: LocalStack, channel_client: ChannelBuckets
) -> None:
    bucket = channel_client.new({"exports/x.csv": b"x\n"})
    job_id = f"job-{uuid.uuid4().hex[:8]}"
    harness.produce(s3_message(stack, job_id=job_id, channel_id="outage", bucket=bucket))
    cursor = harness.cursor
    local_stack.pause_kafka()
    try:
        with pytest.raises(TransientError):
            harness.tick()
        assert harness.cursor == cursor
    finally:
        local_stack.resume_kafka()
    assert [r.run_key for r in harness.tick().run_requests or []] == [job_id]


def _event_log_text(instance: dg.DagsterInstance, run_id: str) -> str:
    return "\n".join(
        (r.event_log_entry.user_message or "") for r in instance.get_records_for_run(run_id).records
    )
