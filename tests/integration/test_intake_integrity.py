"""Intake and job integrity on the real stack: hostile messages, bugs of our own, mixed source
types for one channel, and a run killed mid-upload."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from amazoniax_dagster.clients.kafka import KafkaBus, Topics
from amazoniax_dagster.core import run_tags
from amazoniax_dagster.db import FetcherDB
from amazoniax_dagster.devstack.local_stack import StackEndpoints
from tests.integration.faults import FaultPlan, flaky_proxy
from tests.integration.ftp_servers import PASSWORD, USER, FtpServer
from tests.integration.harness import Harness, end_offsets, job_id_of, read_json
from tests.integration.test_s3_channel import ChannelBuckets, channel_client, objects_under

pytestmark = pytest.mark.integration

TOPICS = Topics()
__all__ = ["channel_client"]  # a fixture, used by name


def s3_config(stack: StackEndpoints, bucket: str, **over: Any) -> dict[str, Any]:
    return {
        "bucket": bucket,
        "remote_path": "/exports/",
        "endpoint_url": stack.s3_endpoint_url,
        "region": stack.s3_region,
        "access_key": stack.channel_s3_access_key_id,
        "secret_access_key": stack.channel_s3_secret_access_key,
    } | over


def job(job_id: str, channel_id: str, source_type: str, config: Any = ..., **extra: Any) -> bytes:
    message: dict[str, Any] = {
        "job_id": job_id,
        "channel_id": channel_id,
        "source_type": source_type,
    }
    if config is not ...:
        message["config"] = config
    return json.dumps(message | extra).encode()


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def J() -> str:  # noqa: N802 - short, for the corpus table
    return new_id("j")


def test_a_hostile_corpus_is_dead_lettered_and_the_valid_messages_behind_it_run(
    harness: Harness,
    stack: StackEndpoints,
    fetcher_db: FetcherDB,
    channel_client: ChannelBuckets,
    bus: KafkaBus,
) -> None:
    bucket = channel_client.new({"exports/a.csv": b"id\n1\n"})
    secret = f"hostile-secret-{uuid.uuid4().hex}"
    s3 = s3_config(stack, bucket)
    web = {"url": "https://example.com/", "login_credentials": {"password": secret}}
    nested = {"a": json.loads("[" * 200 + "]" * 200)}
    ftp_up = {"host": "h", "password": secret, "remote_path": "../../"}
    meta_api = {"url": "http://metadata.google.internal/x", "auth_keys": {"token": secret}}
    dates = {"navigation_details": {"date_range": "whenever"}}
    broken = b'{"job_id": "x", "password": "' + secret.encode() + b'"'
    # (case, message, what the dead letter's reason says)
    corpus: list[tuple[str, bytes, str]] = [
        ("malformed JSON", broken, "not valid JSON"),
        ("deeply nested array", b"[" * 100_000 + b"]" * 100_000, "levels deep"),
        ("deep nesting in a config", job("j-deep", "c-deep", "s3", s3 | nested), "levels deep"),
        ("over the size limit", job("j-big", "c", "s3", s3 | {"pad": "x" * 300_000}), "the limit"),
        ("not UTF-8", b'{"job_id": "caf\xe9", "channel_id": "c"}', "not valid JSON"),
        ("empty", b"", "not valid JSON"),
        ("null", b"null", "must be a JSON object"),
        ("an array of jobs", b"[" + job("j-arr", "c", "s3", s3) + b"]", "must be a JSON object"),
        ("no job_id", json.dumps({"channel_id": "c", "source_type": "s3"}).encode(), "job_id"),
        ("job_id a list", job("x", "c", "s3", s3).replace(b'"x"', b'["x"]', 1), "job_id"),
        ("job_id climbs", job("../../etc/passwd", "c", "s3", s3), "job_id"),
        ("channel_id a path", job(new_id("j"), "a/b", "s3", s3), "channel_id"),
        ("channel_id dot-dot", job(new_id("j"), "..", "s3", s3), "channel_id"),
        ("channel_id control", job(new_id("j"), "c\u0000x", "s3", s3), "channel_id"),
        ("channel_id too long", job(new_id("j"), "c" * 500, "s3", s3), "channel_id"),
        ("unknown source_type", job(J(), "c", "gopher", {}), "source_type"),
        ("is_new not a bool", job(J(), "c", "s3", s3, is_new="perhaps"), "is_new"),
        ("config a string", job(J(), "c", "s3", "bucket=x"), "config"),
        ("s3 without bucket", job(J(), "c", "s3", {"secret_access_key": secret}), "bucket"),
        (
            "pattern climbs",
            job(J(), "c", "s3", s3 | {"file_pattern": "../../*"}),
            "file_pattern climbs out",
        ),
        (
            "s3 path climbs",
            job(J(), "c", "s3", s3 | {"remote_path": "../../"}),
            "remote_path climbs out",
        ),
        ("ftp path climbs", job(J(), "c", "ftp", ftp_up), "remote_path climbs out"),
        (
            "file:// URL",
            job(J(), "c", "html", web | {"url": "file:///etc/passwd"}),
            "url must be an http",
        ),
        (
            "gopher:// URL",
            job(J(), "c", "api", {"url": "gopher://127.0.0.1:70/x"}),
            "url must be an http",
        ),
        (
            "metadata address",
            job(J(), "c", "html", web | {"url": "http://169.254.169.254/latest/meta-data/"}),
            "metadata",
        ),
        ("metadata host name", job(J(), "c", "api", meta_api), "metadata"),
        (
            "private endpoint",
            job(J(), "c", "s3", s3 | {"endpoint_url": "http://10.0.0.5:9000"}),
            "private",
        ),
        ("unreadable date_range", job(J(), "c", "html", web | dates), "accepted forms"),
        (
            "no config, unknown channel",
            job(new_id("j"), new_id("never-seen"), "s3"),
            "has no stored config",
        ),
    ]
    good = new_id("good")
    unicode_job, unicode_channel = new_id("uni"), f"chañnel-ü-{uuid.uuid4().hex[:4]}"
    extra_job = new_id("extra")
    harness.max_message_bytes = 256 * 1024  # the broker's own limit is near 1 MB
    dlq_from = end_offsets(bus, TOPICS.dead_letter)
    for _, message, _ in corpus:
        harness.produce(message)
    harness.produce(job(good, new_id("good"), "s3", s3))
    harness.produce(job(good, new_id("good"), "s3", s3))  # a duplicate: one run
    harness.produce(job(unicode_job, unicode_channel, "s3", s3))
    harness.produce(job(extra_job, new_id("extra"), "s3", s3 | {"colour": "blue"}, priority=1))

    result = harness.tick()

    letters = read_json(bus, TOPICS.dead_letter, dlq_from)
    outcomes = [
        (case, letter["reason"]) for (case, _, _), letter in zip(corpus, letters, strict=False)
    ]
    assert len(letters) == len(corpus), outcomes
    for (case, _, expected), letter in zip(corpus, letters, strict=True):
        assert expected in letter["reason"], (case, letter["reason"])
        assert letter["original"] or case == "empty"
    assert secret not in json.dumps(letters)  # dead letters carry no secret, in any field
    assert sorted(r.run_key or "" for r in result.run_requests or []) == sorted(
        [good, unicode_job, extra_job]
    )
    runs = harness.run_all(result)
    assert {job_id_of(r): r.status for r in runs} == {
        good: dg.DagsterRunStatus.SUCCESS,
        unicode_job: dg.DagsterRunStatus.SUCCESS,
        extra_job: dg.DagsterRunStatus.SUCCESS,
    }
    record = fetcher_db.get_job(unicode_job)
    assert record is not None and record.channel_id == unicode_channel
    total, recent = fetcher_db.recent_dead_letters(len(corpus))
    assert total >= len(corpus) and secret not in json.dumps([d.reason for d in recent])


def test_the_sensor_survives_a_message_that_raises_inside_its_own_code(
    harness: Harness,
    stack: StackEndpoints,
    channel_client: ChannelBuckets,
    bus: KafkaBus,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from amazoniax_dagster.jobs import intake

    bucket = channel_client.new({"exports/a.csv": b"id\n1\n"})
    poison_channel, poison, good = new_id("poison"), new_id("poison"), new_id("good")
    real_site_of = intake.site_of

    def site_of(source_type: Any, config: Any) -> Any:
        if config.get("bucket") == bucket and config.get("remote_path") == "/poison/":
            raise RuntimeError("a bug of ours")
        return real_site_of(source_type, config)

    monkeypatch.setattr(intake, "site_of", site_of)
    dlq_from = end_offsets(bus, TOPICS.dead_letter)
    harness.produce(
        job(poison, poison_channel, "s3", s3_config(stack, bucket, remote_path="/poison/"))
    )
    harness.produce(job(good, new_id("good"), "s3", s3_config(stack, bucket)))

    result = harness.tick()

    (letter,) = read_json(bus, TOPICS.dead_letter, dlq_from)
    assert letter["job_id"] == poison and letter["error_class"] == "internal"
    assert [r.run_key for r in result.run_requests or []] == [good]


def test_a_tick_that_keeps_failing_on_one_message_dead_letters_it_and_goes_on(
    harness: Harness,
    stack: StackEndpoints,
    channel_client: ChannelBuckets,
    bus: KafkaBus,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sensors.kafka as sensor_module

    bucket = channel_client.new({"exports/a.csv": b"id\n1\n"})
    poison, good = new_id("poison"), new_id("good")
    real = sensor_module._next_attempts

    def next_attempts(instance: dg.DagsterInstance, job_ids: list[str]) -> dict[str, Any]:
        if poison in job_ids:
            raise RuntimeError("a bug of ours past intake")
        return real(instance, job_ids)

    monkeypatch.setattr(sensor_module, "_next_attempts", next_attempts)
    dlq_from = end_offsets(bus, TOPICS.dead_letter)
    harness.produce(job(poison, new_id("c"), "s3", s3_config(stack, bucket)))
    harness.produce(job(good, new_id("c"), "s3", s3_config(stack, bucket)))

    skipped = [harness.tick() for _ in range(3)]  # failed_ticks_before_dead_letter = 3
    assert all(not r.run_requests for r in skipped)
    last = skipped[-1].skip_reason
    assert last is not None and "dead-lettered" in (last.skip_message or "")
    (letter,) = read_json(bus, TOPICS.dead_letter, dlq_from)
    assert letter["job_id"] == poison and "3 times" in letter["reason"]
    # Only the tick that dead-lettered records it on the dead-letter asset.
    assert [len(r.asset_events or []) for r in skipped] == [0, 0, 1]
    (observation,) = skipped[-1].asset_events or []
    assert isinstance(observation, dg.AssetObservation)
    (row,) = observation.metadata["dead_letters"].value.records  # type: ignore[attr-defined]
    assert row.data["job_id"] == poison and row.data["error_class"] == "internal"
    assert [r.run_key for r in harness.tick().run_requests or []] == [good]


@pytest.fixture()
def ftp_server(tmp_path: Path) -> Iterator[FtpServer]:
    root = tmp_path / "ftp-root"
    (root / "data").mkdir(parents=True)
    (root / "data" / "b.csv").write_bytes(b"id\n2\n")
    with FtpServer(root) as server:
        yield server


def test_jobs_of_one_channel_with_different_source_types_each_run_as_their_own(
    harness: Harness,
    stack: StackEndpoints,
    channel_client: ChannelBuckets,
    output_client: Any,
    ftp_server: FtpServer,
    bus: KafkaBus,
) -> None:
    bucket = channel_client.new({"exports/a.csv": b"id\n1\n"})
    channel = new_id("mixed")
    s3_job, ftp_job, typeless = new_id("s3"), new_id("ftp"), new_id("typeless")
    ftp = {"host": "127.0.0.1", "port": ftp_server.port, "username": USER,
           "password": PASSWORD, "remote_path": "/data"}  # fmt: skip
    dlq_from = end_offsets(bus, TOPICS.dead_letter)
    harness.produce(job(s3_job, channel, "s3", s3_config(stack, bucket)))
    harness.produce(job(ftp_job, channel, "ftp", ftp))
    harness.produce(job(typeless, channel, "s3"))  # no config: the channel is ftp by now

    runs = {job_id_of(r): r for r in harness.run_all(harness.tick())}

    assert {j: r.status for j, r in runs.items()} == {
        s3_job: dg.DagsterRunStatus.SUCCESS,
        ftp_job: dg.DagsterRunStatus.SUCCESS,
    }
    output = stack.output_bucket
    assert objects_under(output_client, output, f"raw/{channel}/{s3_job}/") == {"a.csv": b"id\n1\n"}
    assert objects_under(output_client, output, f"raw/{channel}/{ftp_job}/") == {
        "b.csv": b"id\n2\n"
    }
    (letter,) = read_json(bus, TOPICS.dead_letter, dlq_from)
    assert letter["job_id"] == typeless and "is ftp" in letter["reason"]


def test_a_run_killed_mid_upload_leaves_nothing_and_its_job_id_runs_again(
    harness: Harness,
    stack: StackEndpoints,
    fetcher_db: FetcherDB,
    channel_client: ChannelBuckets,
    output_client: Any,
    bus: KafkaBus,
) -> None:
    files = {f"exports/fast-{i}.csv": f"id\n{i}\n".encode() for i in range(6)}
    files |= {f"exports/slow-{i}.csv": f"id\n{i}\n".encode() for i in range(3)}
    bucket = channel_client.new(files)
    channel, job_id = new_id("killed"), new_id("job")
    folder = f"raw/{channel}/{job_id}/"
    status_from = end_offsets(bus, TOPICS.status)
    parsers_from = end_offsets(bus, TOPICS.parsers)
    plan = FaultPlan(
        matches=lambda method, path: method == "GET" and "/exports/slow-" in path,
        failures=1_000,
        delay_seconds=120,  # held until the run is killed
    )
    with flaky_proxy(stack.s3_endpoint_url, plan) as proxy:
        message = job(job_id, channel, "s3", s3_config(stack, bucket, endpoint_url=proxy))
        harness.produce(message)
        (request,) = harness.tick().run_requests or []
        worker = harness.start(request)
        deadline = time.monotonic() + 120
        while len(objects_under(output_client, stack.output_bucket, folder)) < 6:
            assert worker.is_alive() and time.monotonic() < deadline, "the run never uploaded"
            time.sleep(0.2)
        assert worker.pid is not None
        os.kill(worker.pid, signal.SIGKILL)
        worker.join(timeout=30)
        assert worker.exitcode == -signal.SIGKILL

        (run,) = harness.instance.get_runs(filters=dg.RunsFilter(tags={run_tags.JOB_ID: job_id}))
        # What run monitoring does when a run worker is gone.
        harness.instance.report_run_failed(run, message="the run worker exited unexpectedly")
        failed = harness.instance.get_run_by_id(run.run_id)
        assert failed is not None and failed.status is dg.DagsterRunStatus.FAILURE
        harness.report(failed)

        assert objects_under(output_client, stack.output_bucket, folder) == {}
        statuses = [s for s in read_json(bus, TOPICS.status, status_from) if s["job_id"] == job_id]
        assert [s["status"] for s in statuses] == ["failed"]
        record = fetcher_db.get_job(job_id)
        assert record is not None and record.status == "failed"

        plan.failures = plan.failed  # the source answers at once again
        harness.produce(message)  # the same job_id, produced again
        (again,) = harness.tick().run_requests or []
        assert again.tags[run_tags.ATTEMPT] == "2" and again.run_key == f"{job_id}:attempt-2"
        rerun = harness.launch(again)
        harness.report(rerun)
    assert rerun.status is dg.DagsterRunStatus.SUCCESS
    assert objects_under(output_client, stack.output_bucket, folder) == {
        key.removeprefix("exports/"): body for key, body in files.items()
    }
    announced = [m for m in read_json(bus, TOPICS.parsers, parsers_from) if m["job_id"] == job_id]
    assert len(announced) == 1 and announced[0]["file_count"] == len(files)
    harness.produce(message)  # a job that succeeded stays done
    assert harness.tick().run_requests == []
