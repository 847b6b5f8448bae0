"""FTP and SFTP channels end to end: Kafka message → sensor → run → S3, with file checks."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from amazoniax_dagster.clients.kafka import KafkaBus, Topics
from amazoniax_dagster.db import FetcherDB
from amazoniax_dagster.devstack.local_stack import StackEndpoints
from tests.integration.ftp_servers import PASSWORD, USER, FtpServer, SftpServer
from tests.integration.harness import Harness, end_offsets, read_json

pytestmark = pytest.mark.integration

TOPICS = Topics()


def write(root: Path, files: dict[str, bytes]) -> None:
    for name, body in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)


def touch_later(path: Path, body: bytes) -> None:
    """Rewrite a file with a clearly later mtime (listings have one-second resolution)."""
    path.write_bytes(body)
    later = time.time() + 5
    os.utime(path, (later, later))


def ftp_message(*, job_id: str, channel_id: str, port: int, **config: Any) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "channel_id": channel_id,
        "source_type": "ftp",
        "is_new": False,
        "config": {
            "host": "127.0.0.1",
            "port": port,
            "username": USER,
            "password": PASSWORD,
            "remote_path": "/data",
            "file_pattern": "**/*",
        }
        | config,
    }


def objects_under(client: Any, bucket: str, prefix: str) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            found[obj["Key"][len(prefix) :]] = client.get_object(Bucket=bucket, Key=obj["Key"])[
                "Body"
            ].read()
    return found


def check_evaluations(instance: dg.DagsterInstance, run_id: str) -> dict[str, Any]:
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ).records
    evaluations = {}
    for record in records:
        event = record.event_log_entry.dagster_event
        assert event is not None
        evaluation = event.event_specific_data
        evaluations[evaluation.check_name] = evaluation  # type: ignore[union-attr]
    return evaluations


def run_one(harness: Harness, message: dict[str, Any]) -> dg.DagsterRun:
    harness.produce(message, key=message["channel_id"])
    (request,) = harness.tick().run_requests or []
    # FTP servers cap connections per user: the run queue limits runs per host.
    assert request.tags["amazoniax/site"] == "ftp:127.0.0.1"
    (run,) = [harness.launch(request)]
    harness.report(run)
    return run


@pytest.fixture()
def ftp_root(tmp_path: Path) -> Path:
    root = tmp_path / "ftp-root"
    (root / "data").mkdir(parents=True)
    return root


@pytest.fixture()
def ftp_server(ftp_root: Path) -> Iterator[FtpServer]:
    with FtpServer(ftp_root) as server:
        yield server


def test_ftp_channel_end_to_end(
    harness: Harness,
    stack: StackEndpoints,
    fetcher_db: FetcherDB,
    ftp_root: Path,
    ftp_server: FtpServer,
    output_client: Any,
    bus: KafkaBus,
) -> None:
    write(
        ftp_root / "data",
        {
            "a.csv": b"id,v\n1,a\n",
            "nested/b.json": b'{"b": 1}',
            "nested/deeper/c.xml": b"<c>1</c>",
        },
    )
    channel = f"ftp-{uuid.uuid4().hex[:6]}"
    status_from = end_offsets(bus, TOPICS.status)

    # First fetch: a recursive pattern reaches the nested folders.
    job1 = f"job-{uuid.uuid4().hex[:8]}"
    run1 = run_one(harness, ftp_message(job_id=job1, channel_id=channel, port=ftp_server.port))
    assert run1.status is dg.DagsterRunStatus.SUCCESS
    assert objects_under(output_client, stack.output_bucket, f"raw/{channel}/{job1}/") == {
        "a.csv": b"id,v\n1,a\n",
        "nested/b.json": b'{"b": 1}',
        "nested/deeper/c.xml": b"<c>1</c>",
    }
    assert sum(ftp_server.counts.downloads.values()) == 3
    checks = check_evaluations(harness.instance, run1.run_id)
    assert checks["files_well_formed"].passed
    assert checks["not_empty_where_history_has_data"].passed

    # Unchanged: size and mtime from the listing are enough, nothing is downloaded.
    job2 = f"job-{uuid.uuid4().hex[:8]}"
    run2 = run_one(harness, ftp_message(job_id=job2, channel_id=channel, port=ftp_server.port))
    assert run2.status is dg.DagsterRunStatus.SUCCESS
    assert sum(ftp_server.counts.downloads.values()) == 3
    record2 = fetcher_db.get_job(job2)
    assert record2 is not None and record2.metadata["unchanged"] == 3

    # One file changed: only it is downloaded, and it is "updated".
    touch_later(ftp_root / "data" / "nested" / "b.json", b'{"b": 2}')
    job3 = f"job-{uuid.uuid4().hex[:8]}"
    run3 = run_one(harness, ftp_message(job_id=job3, channel_id=channel, port=ftp_server.port))
    assert run3.status is dg.DagsterRunStatus.SUCCESS
    assert sum(ftp_server.counts.downloads.values()) == 4
    assert [(f.file_path, f.classification) for f in fetcher_db.job_files(job3)] == [
        ("nested/b.json", "updated")
    ]

    # A top-level pattern does not descend.
    job4 = f"job-{uuid.uuid4().hex[:8]}"
    run4 = run_one(
        harness,
        ftp_message(
            job_id=job4, channel_id=f"{channel}-top", port=ftp_server.port, file_pattern="*.csv"
        ),
    )
    assert run4.status is dg.DagsterRunStatus.SUCCESS
    assert [f.file_path for f in fetcher_db.job_files(job4)] == ["a.csv"]

    statuses = {m["job_id"]: m for m in read_json(bus, TOPICS.status, status_from)}
    assert [statuses[j]["metadata"]["files_processed"] for j in (job1, job2, job3, job4)] == [
        3,
        0,
        1,
        1,
    ]


def test_a_wrong_ftp_password_fails_once_and_clearly(
    harness: Harness,
    stack: StackEndpoints,
    ftp_root: Path,
    ftp_server: FtpServer,
    output_client: Any,
    bus: KafkaBus,
) -> None:
    write(ftp_root / "data", {"a.csv": b"x\n"})
    status_from = end_offsets(bus, TOPICS.status)
    job_id = f"job-{uuid.uuid4().hex[:8]}"
    wrong = f"wrong-{uuid.uuid4().hex}"
    run = run_one(
        harness,
        ftp_message(job_id=job_id, channel_id="ftp-badpw", port=ftp_server.port, password=wrong),
    )
    assert run.status is dg.DagsterRunStatus.FAILURE
    assert ftp_server.counts.failed_logins() == 1  # a config error is not retried
    (status,) = [s for s in read_json(bus, TOPICS.status, status_from) if s["job_id"] == job_id]
    assert status["status"] == "failed"
    assert status["metadata"]["error_class"] == "config"
    assert USER in status["message"] and wrong not in status["message"]
    log = output_client.get_object(
        Bucket=stack.output_bucket, Key=f"raw/ftp-badpw/_logs/{job_id}.log"
    )["Body"].read()
    assert wrong.encode() not in log and PASSWORD.encode() not in log


def test_a_connection_cut_mid_file_is_retried_and_never_uploads_a_partial_file(
    harness: Harness, stack: StackEndpoints, ftp_root: Path, output_client: Any
) -> None:
    big = os.urandom(512 * 1024)
    write(ftp_root / "data", {"big.bin": big})
    with FtpServer(ftp_root, drop_file="big.bin") as server:
        job_id = f"job-{uuid.uuid4().hex[:8]}"
        run = run_one(harness, ftp_message(job_id=job_id, channel_id="ftp-cut", port=server.port))
        assert server.counts.downloads["big.bin"] == 2  # cut once, then read whole
    assert run.status is dg.DagsterRunStatus.SUCCESS
    assert objects_under(output_client, stack.output_bucket, f"raw/ftp-cut/{job_id}/") == {
        "big.bin": big
    }


BROKEN = {
    "good.json": b'{"ok": true}',
    "broken.json": b'{"a": 1,\n "b": }',
    "ragged.csv": b"id,v\n1,a\n2,b,c\n",
    "latin1.csv": b"id,name\n1,caf\xe9\n",
    "bad.xml": b"<a>\n  <b>text</c>\n</a>",
}
INVALID = {"broken.json", "ragged.csv", "latin1.csv", "bad.xml"}


@pytest.mark.parametrize("policy", ["flag", "quarantine"])
def test_invalid_files_fail_the_check_and_follow_the_channel_policy(
    policy: str,
    harness: Harness,
    stack: StackEndpoints,
    ftp_root: Path,
    ftp_server: FtpServer,
    output_client: Any,
    bus: KafkaBus,
) -> None:
    write(ftp_root / "data", BROKEN)
    channel = f"ftp-checks-{policy}-{uuid.uuid4().hex[:4]}"
    parsers_from = end_offsets(bus, TOPICS.parsers)
    status_from = end_offsets(bus, TOPICS.status)
    job_id = f"job-{uuid.uuid4().hex[:8]}"
    run = run_one(
        harness,
        ftp_message(job_id=job_id, channel_id=channel, port=ftp_server.port, invalid_files=policy),
    )
    assert run.status is dg.DagsterRunStatus.SUCCESS

    check = check_evaluations(harness.instance, run.run_id)["files_well_formed"]
    assert not check.passed
    # Per channel: the result is the channel's partition's, and names the channel.
    assert check.partition == channel
    assert check.metadata["channel"].value == channel
    assert (check.description or "").startswith(
        f"{channel}: 4 of {check.metadata['checked'].value} checked files invalid; "
    )
    assert channel in check.metadata["failing_channels"].value.split(", ")
    assert check.metadata["invalid"].value == 4
    rows = {r.data["file"]: r.data for r in check.metadata["files"].value.records}
    assert {f for f, row in rows.items() if row["verdict"] == "invalid"} == INVALID
    assert "line 2" in rows["broken.json"]["reason"]
    assert "row 3 has 3 columns" in rows["ragged.csv"]["reason"]
    assert "not UTF-8" in rows["latin1.csv"]["reason"]
    assert "mismatched tag" in rows["bad.xml"]["reason"]
    assert rows["good.json"]["verdict"] == "valid"

    folder = objects_under(output_client, stack.output_bucket, f"raw/{channel}/{job_id}/")
    quarantine = objects_under(
        output_client, stack.output_bucket, f"raw/{channel}/_quarantine/{job_id}/"
    )
    parsers = [m for m in read_json(bus, TOPICS.parsers, parsers_from) if m["job_id"] == job_id]
    (status,) = [s for s in read_json(bus, TOPICS.status, status_from) if s["job_id"] == job_id]
    assert status["metadata"]["invalid"] == 4
    if policy == "flag":
        assert set(folder) == set(BROKEN) and quarantine == {}
        assert parsers[0]["file_count"] == 5
        assert status["message"].startswith("5 files uploaded to s3://")
        assert status["message"].endswith(
            "; 5 files listed: 5 new; 4 invalid files uploaded and flagged"
        )
    else:
        assert set(folder) == {"good.json"} and set(quarantine) == INVALID
        assert parsers[0]["file_count"] == 1
        assert status["message"].startswith("1 file uploaded to s3://")
        assert status["message"].endswith("; 5 files listed: 5 new; 4 invalid files quarantined")


def test_sftp_channel_end_to_end(
    harness: Harness,
    stack: StackEndpoints,
    fetcher_db: FetcherDB,
    tmp_path: Path,
    output_client: Any,
) -> None:
    root = tmp_path / "sftp-root"
    write(root / "data", {"a.csv": b"id\n1\n", "sub/b.json": b"[1, 2]"})
    with SftpServer(root) as server:
        job_id = f"job-{uuid.uuid4().hex[:8]}"
        message = ftp_message(
            job_id=job_id,
            channel_id="sftp-ch",
            port=server.port,
            protocol="sftp",
            host_key=server.host_key_line,
        )
        run = run_one(harness, message)
    assert run.status is dg.DagsterRunStatus.SUCCESS
    assert objects_under(output_client, stack.output_bucket, f"raw/sftp-ch/{job_id}/") == {
        "a.csv": b"id\n1\n",
        "sub/b.json": b"[1, 2]",
    }
    assert {f.validation for f in fetcher_db.job_files(job_id)} == {"valid"}
