"""The operator commands on the real local stack: submit, channels import, doctor, status.

``doctor`` and ``status`` see every channel and job of the database they are pointed at, so
they run on a database of their own on the session's PostgreSQL (other tests' FTP channels
point at servers that are gone by now). The stopped-service case starts its own S3 server:
the shared session stack is never stopped.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy.engine import make_url

from amazoniax_dagster.cli import main as cli
from amazoniax_dagster.clients.kafka import KafkaBus, Topics
from amazoniax_dagster.core.messages import JobStatus, StatusMessage, StatusMetadata
from amazoniax_dagster.core.sealing import SecretCipher
from amazoniax_dagster.db import FetcherDB
from amazoniax_dagster.devstack.local_stack import LocalStack, StackEndpoints
from amazoniax_dagster.devstack.postgres import run_admin
from tests.integration.harness import end_offsets, read_json

pytestmark = pytest.mark.integration

TOPICS = Topics()
SECRET = "cli-it-S3CRET-9f8e7d"
UNSET = {
    "AMAZONIAX_BEDROCK_ENDPOINT_URL": None,
    "AMAZONIAX_BEDROCK_MODEL_ID": None,
    "AMAZONIAX_FETCHERS_REMOTE_URL": None,
}


def invoke(args: list[str], env: dict[str, str]) -> Result:
    return CliRunner().invoke(cli.main, args, env={**env, **UNSET}, catch_exceptions=False)


def s3_job(job_id: str, channel: str = "cli-chan") -> dict[str, Any]:
    return {
        "job_id": job_id,
        "channel_id": channel,
        "source_type": "s3",
        "config": {"bucket": "cli-source", "secret_access_key": SECRET, "access_key": "AKX"},
    }


@pytest.fixture(scope="module")
def own_db(stack: StackEndpoints) -> Iterator[FetcherDB]:
    """A migrated fetcher DB of this module's own on the session's PostgreSQL."""
    name = f"cli_{uuid.uuid4().hex[:8]}"
    url = make_url(stack.database_url)
    admin = url.set(drivername="postgresql", database="postgres").render_as_string(False)
    run_admin(admin, f'CREATE DATABASE "{name}"')
    db = FetcherDB(url.set(database=name).render_as_string(False), SecretCipher(stack.secret_key))
    db.migrate()
    yield db
    db.close()
    run_admin(admin, f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture()
def own_env(stack: StackEndpoints, own_db: FetcherDB) -> dict[str, str]:
    return {**stack.env(), "AMAZONIAX_DATABASE_URL": own_db.url}


@pytest.fixture()
def bus(stack: StackEndpoints) -> Iterator[KafkaBus]:
    b = KafkaBus(stack.kafka_bootstrap, client_id="tests-cli")
    yield b
    b.close()


# --------------------------------------------------------------------------- submit


def test_submit_no_wait_puts_every_job_on_the_topic(
    tmp_path: Path, bus: KafkaBus, own_env: dict[str, str]
) -> None:
    run = uuid.uuid4().hex[:6]
    batch = tmp_path / "batch.json"
    batch.write_text(json.dumps([s3_job(f"cli-{run}-{i}") for i in range(3)]))
    since = end_offsets(bus, TOPICS.fetcher)

    result = invoke(["submit", str(batch), "--no-wait"], own_env)

    assert result.exit_code == 0, result.output
    messages = [
        m for m in read_json(bus, TOPICS.fetcher, since) if m["job_id"].startswith(f"cli-{run}")
    ]
    assert sorted(m["job_id"] for m in messages) == [f"cli-{run}-{i}" for i in range(3)]
    assert all(m["config"]["secret_access_key"] == SECRET for m in messages)  # the job's own
    assert SECRET not in result.output


def test_submit_an_invalid_entry_sends_nothing(
    tmp_path: Path, bus: KafkaBus, own_env: dict[str, str]
) -> None:
    run = uuid.uuid4().hex[:6]
    bad = s3_job(f"cli-{run}-2")
    bad["config"] = {"bucket": "x"}  # too short
    batch = tmp_path / "batch.json"
    batch.write_text(json.dumps({"jobs": [s3_job(f"cli-{run}-0"), s3_job(f"cli-{run}-1"), bad]}))
    since = end_offsets(bus, TOPICS.fetcher)

    result = invoke(["submit", str(batch)], own_env)

    assert result.exit_code == 2
    assert "job #3: invalid s3 config: bucket" in result.output  # the third job
    sent = [
        m for m in read_json(bus, TOPICS.fetcher, since) if m["job_id"].startswith(f"cli-{run}")
    ]
    assert sent == []


def test_submit_waits_for_statuses_and_keeps_max_workers_in_flight(
    tmp_path: Path, bus: KafkaBus, stack: StackEndpoints, own_env: dict[str, str]
) -> None:
    """A stand-in fetcher answers every job on amazoniax_status; the third job may only be
    sent after one of the first two got its status."""
    run = uuid.uuid4().hex[:6]
    job_ids = [f"cli-{run}-{i}" for i in range(3)]
    batch = tmp_path / "batch.json"
    batch.write_text(json.dumps([s3_job(j) for j in job_ids]))
    start = end_offsets(bus, TOPICS.fetcher)
    stop = threading.Event()
    answered: list[tuple[str, int]] = []  # (job_id, how many were unanswered when it came)

    def stand_in_fetcher() -> None:
        worker = KafkaBus(stack.kafka_bootstrap, client_id="tests-cli-fetcher")
        positions = dict(start)
        try:
            while not stop.is_set():
                got = worker.read(TOPICS.fetcher, positions, max_seconds=1, idle_ms=100)
                positions.update(got.next_offsets)
                mine = [json.loads(r.value) for r in got.records if r.value]
                mine = [m for m in mine if m["job_id"] in job_ids]
                for m in mine:
                    answered.append((m["job_id"], len(mine)))
                    status = JobStatus.FAILED if m["job_id"] == job_ids[1] else JobStatus.SUCCESS
                    worker.publish(
                        TOPICS.status,
                        StatusMessage(
                            job_id=m["job_id"],
                            channel_id=m["channel_id"],
                            status=status,
                            message=f"finished; token={SECRET}",
                            metadata=StatusMetadata(files_processed=4, execution_time_seconds=2.5),
                        ).to_bytes(),
                    )
        finally:
            worker.close()

    thread = threading.Thread(target=stand_in_fetcher, daemon=True)
    thread.start()
    try:
        result = invoke(["submit", str(batch), "--max-workers", "2", "--timeout", "60"], own_env)
    finally:
        stop.set()
        thread.join(10)

    assert result.exit_code == 1, result.output  # job 1 failed
    assert sorted(j for j, _ in answered) == job_ids
    assert all(batch_size <= 2 for _, batch_size in answered)
    rows = {
        line.split("│")[1].strip(): line for line in result.output.splitlines() if "│ cli-" in line
    }
    assert set(rows) == set(job_ids)
    assert "failed" in rows[job_ids[1]] and "success" in rows[job_ids[0]]
    assert "4" in rows[job_ids[0]] and "2.5" in rows[job_ids[0]]
    assert SECRET not in result.output


# --------------------------------------------------------------------------- channels


def test_channels_import_stores_sealed_configs(
    tmp_path: Path, own_db: FetcherDB, own_env: dict[str, str]
) -> None:
    registry = tmp_path / "registry.yaml"
    registry.write_text(
        "channels:\n"
        "  reg-s3:\n"
        "    source_type: s3\n"
        f"    config: {{bucket: reg-bucket, access_key: AKX, secret_access_key: {SECRET}}}\n"
        "  reg-ftp:\n"
        "    source_type: ftp\n"
        f"    config: {{host: 127.0.0.1, port: 1, username: u, password: {SECRET}}}\n"
    )
    first = invoke(["channels", "import", str(registry)], own_env)
    assert first.exit_code == 0, first.output
    assert "created 2, updated 0" in first.output
    again = invoke(["channels", "import", str(registry)], own_env)
    assert "created 0, updated 2" in again.output

    with own_db.database.transaction() as sql:
        stored = [
            raw
            for (raw,) in sql.all(
                "SELECT config_json::text FROM channels WHERE channel_id LIKE 'reg-%'"
            )
        ]
    assert len(stored) == 2 and all(SECRET not in row for row in stored)
    assert all("$sealed" in row for row in stored)
    assert own_db.get_channel("reg-s3").config["secret_access_key"] == SECRET

    listed = invoke(["channels", "list", "--json"], own_env)
    rows = {r["channel_id"]: r["source_type"] for r in json.loads(listed.output)}
    assert rows["reg-s3"] == "s3" and rows["reg-ftp"] == "ftp"
    assert SECRET not in listed.output

    with own_db.database.transaction() as sql:  # doctor below should not see a dead FTP server
        sql.execute("DELETE FROM channels WHERE channel_id LIKE 'reg-%'")


# --------------------------------------------------------------------------- doctor


@pytest.fixture()
def ftp_listener() -> Iterator[int]:
    """A TCP port that accepts connections (doctor only connects, it never logs in)."""
    server = socket.create_server(("127.0.0.1", 0))
    yield server.getsockname()[1]
    server.close()


def test_doctor_passes_against_the_stack(
    own_db: FetcherDB, own_env: dict[str, str], ftp_listener: int
) -> None:
    own_db.save_channel(
        "doc-ftp", "ftp", {"host": "127.0.0.1", "port": ftp_listener, "password": SECRET}
    )
    try:
        result = invoke(["doctor"], own_env)
        as_json = invoke(["doctor", "--json"], own_env)
    finally:
        with own_db.database.transaction() as sql:
            sql.execute("DELETE FROM channels WHERE channel_id = 'doc-ftp'")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    for component in ("kafka", "s3 output bucket", "fetcher db", f"ftp 127.0.0.1:{ftp_listener}"):
        assert any(line.startswith(f"✓ {component}") for line in lines), result.output
    assert any(line.startswith("- bedrock") and "not configured" in line for line in lines)
    assert SECRET not in result.output
    data = json.loads(as_json.output)
    assert data["ok"] is True
    assert {c["component"]: c["status"] for c in data["checks"]}["kafka"] == "ok"


def test_doctor_names_a_stopped_service_quickly(
    tmp_path: Path, stack: StackEndpoints, own_env: dict[str, str]
) -> None:
    with LocalStack(tmp_path / "own-s3", services=["s3"], handle_sigterm=False) as own:
        env = {
            **own_env,
            "AMAZONIAX_S3_ENDPOINT_URL": own.endpoints.s3_endpoint_url,
            "AMAZONIAX_S3_ACCESS_KEY_ID": own.endpoints.s3_access_key_id,
            "AMAZONIAX_S3_SECRET_ACCESS_KEY": own.endpoints.s3_secret_access_key,
        }
        assert invoke(["doctor"], env).exit_code == 0
        own.stop_service("s3")
        began = time.monotonic()
        result = invoke(["doctor"], env)
        took = time.monotonic() - began
    assert took < 15
    assert result.exit_code == 1
    failed = [line for line in result.output.splitlines() if line.startswith("✗")]
    assert len(failed) == 1 and "s3 output bucket" in failed[0], result.output
    assert "cannot reach" in failed[0]
    assert any(line.startswith("✓ kafka") for line in result.output.splitlines())


# --------------------------------------------------------------------------- status


def test_status_json_counts_match_the_job_rows(own_db: FetcherDB, own_env: dict[str, str]) -> None:
    run = uuid.uuid4().hex[:6]
    before = json.loads(invoke(["status", "--json"], own_env).output)["counts"]

    def job(n: int, status: str | None) -> str:
        job_id = f"st-{run}-{n}"
        own_db.queue_job(job_id=job_id, channel_id="st-chan", source_type="s3", flow="existing",
                         config={"bucket": "b", "password": SECRET})  # fmt: skip
        if status is not None:
            own_db.start_job(job_id=job_id, channel_id="st-chan", source_type="s3",
                             flow="existing", run_id=None)  # fmt: skip
        if status not in (None, "running"):
            own_db.finish_job(job_id, status=status, message=f"{status} #{n}")
        return job_id

    plan = [None, None, "running", "success", "success", "success", "failed",
            "requires_human_review"]  # fmt: skip
    ids = [job(n, status) for n, status in enumerate(plan)]

    result = invoke(["status", "--json"], own_env)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    added = {k: data["counts"].get(k, 0) - before.get(k, 0) for k in data["counts"]}
    assert added == {
        "queued": 2,
        "running": 1,
        "success": 3,
        "failed": 1,
        "requires_human_review": 1,
    }
    assert data["queue_size"] == data["counts"]["queued"]
    recent = [f["job_id"] for f in data["recent_failures"]]
    assert recent[:2] == [ids[7], ids[6]]  # newest first
    assert data["recent_failures"][0]["message"] == "requires_human_review #7"
    assert SECRET not in result.output

    table = invoke(["status"], own_env)
    assert table.exit_code == 0 and ids[6] in table.output
