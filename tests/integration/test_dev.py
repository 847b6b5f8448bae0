"""`amazoniax dev` stopped with Ctrl-C while runs are in flight: the runs are ended the Dagster
way (terminated, CANCELED) before their processes go, each shows one line and no stack trace,
and nothing that `dev` started is left running.

Two runs of `channel_files` are held in flight by a slow source: their S3 listing goes through
a proxy that holds every request for 25 s.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
import pytest

from amazoniax_dagster.cli.settings import read_env_file
from amazoniax_dagster.clients import s3 as s3util
from amazoniax_dagster.clients.kafka import KafkaBus, Topics
from amazoniax_dagster.core.errors import AmazoniaxError
from amazoniax_dagster.core.sealing import SecretCipher
from amazoniax_dagster.db import FetcherDB, RetryConfig
from amazoniax_dagster.devstack.ports import free_port
from amazoniax_dagster.devstack.session import PROJECT_ROOT
from tests.integration.faults import FaultPlan, flaky_proxy

pytestmark = pytest.mark.integration

RUNS = 2


def _wait_until(
    what: str, ready: Callable[[], bool], dev: subprocess.Popen[bytes], log: Path
) -> None:
    deadline = time.monotonic() + 120
    while not ready():
        assert dev.poll() is None, f"amazoniax dev exited:\n{log.read_text()}"
        assert time.monotonic() < deadline, f"no {what} within 120 s:\n{log.read_text()}"
        time.sleep(0.5)


def _ui_answers(port: int) -> bool:
    try:
        response = httpx.post(
            f"http://127.0.0.1:{port}/graphql", json={"query": "{ version }"}, timeout=5
        )
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def _send_jobs(env: dict[str, str], bucket: str, endpoint_url: str) -> list[str]:
    """A job message for each of ``RUNS`` new channels reading ``bucket`` at ``endpoint_url``;
    their job ids."""
    config = {
        "bucket": bucket,
        "remote_path": "/exports/",
        "file_pattern": "*.csv",
        "endpoint_url": endpoint_url,
        "region": env["AMAZONIAX_S3_REGION"],
        "access_key": env["AMAZONIAX_S3_ACCESS_KEY_ID"],
        "secret_access_key": env["AMAZONIAX_S3_SECRET_ACCESS_KEY"],
    }
    bus = KafkaBus(env["AMAZONIAX_KAFKA_BOOTSTRAP"], client_id="test-dev")
    job_ids = []
    try:
        for n in range(RUNS):
            channel = f"slow-{n}-{uuid.uuid4().hex[:6]}"
            message = {"job_id": f"job-{channel}", "channel_id": channel, "source_type": "s3"}
            message |= {"is_new": True, "heal_mode": False, "config": config}
            bus.publish(Topics().fetcher, json.dumps(message).encode(), key=channel.encode())
            job_ids.append(str(message["job_id"]))
    finally:
        bus.close()
    return job_ids


def _job_statuses(
    env: dict[str, str], job_ids: list[str], dev: subprocess.Popen[bytes]
) -> dict[str, str]:
    """The jobs' statuses in the fetcher DB (what `amazoniax status` reads), read until `dev`
    exits or the stack's PostgreSQL is gone: the last ones it had."""
    db = FetcherDB(env["AMAZONIAX_DATABASE_URL"], SecretCipher(env["AMAZONIAX_SECRET_KEY"]))
    db.set_retry_config(RetryConfig(max_simple_retries=0, retry_delay_seconds=0.05))
    seen: dict[str, str] = {}
    try:
        while True:
            try:
                records = [db.get_job(job_id) for job_id in job_ids]
            except AmazoniaxError:
                return seen  # the stack is stopping
            seen |= {r.job_id: r.status for r in records if r is not None}
            if dev.poll() is not None:
                return seen
            time.sleep(0.2)
    finally:
        db.close()


def _alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    alive = []
    for process in processes:
        try:
            if process.status() != psutil.STATUS_ZOMBIE:
                alive.append(process)
        except psutil.NoSuchProcess:
            continue
    return alive


def test_ctrl_c_cancels_the_runs_in_flight_quietly_and_leaves_no_process(tmp_path: Path) -> None:
    port, workdir, log = free_port(), tmp_path / "dev", tmp_path / "dev.log"
    with log.open("wb") as out:
        dev = subprocess.Popen(
            [sys.executable, "-m", "amazoniax_dagster.cli.main", "dev", "--no-demo"]
            + ["--port", str(port), "--workdir", str(workdir)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=PROJECT_ROOT,
            start_new_session=True,
        )
    started: list[psutil.Process] = []
    try:
        _wait_until("Dagster UI", lambda: _ui_answers(port), dev, log)
        env = read_env_file(workdir / "stack" / "stack.env")
        s3 = s3util.make_client(
            endpoint_url=env["AMAZONIAX_S3_ENDPOINT_URL"],
            access_key_id=env["AMAZONIAX_S3_ACCESS_KEY_ID"],
            secret_access_key=env["AMAZONIAX_S3_SECRET_ACCESS_KEY"],
            region=env["AMAZONIAX_S3_REGION"],
        )
        bucket = f"slow-{uuid.uuid4().hex[:8]}"
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="exports/a.csv", Body=b"id\n1\n")
        slow = FaultPlan(matches=lambda method, path: True, failures=10**6, delay_seconds=25)
        with flaky_proxy(env["AMAZONIAX_S3_ENDPOINT_URL"], slow) as slow_endpoint:
            job_ids = _send_jobs(env, bucket, slow_endpoint)

            def listing() -> bool:  # every run is inside its step, waiting on its source
                return sum("list-type=2" in path for _, path in list(slow.seen)) >= RUNS

            _wait_until("runs listing their source", listing, dev, log)
            started = psutil.Process(dev.pid).children(recursive=True)
            dev.send_signal(signal.SIGINT)
            final = _job_statuses(env, job_ids, dev)
            dev.wait(timeout=120)
    finally:
        if dev.poll() is None:  # the test failed before the stop: end everything dev started
            started = started or psutil.Process(dev.pid).children(recursive=True)
            dev.kill()
            dev.wait()
        for process in _alive(started):
            process.kill()

    output = log.read_text()
    assert dev.returncode == 0, output
    assert _alive(started) == [], output  # the stack, dagster dev, code server, run workers
    stopping = output[output.index("stopping ...") :]
    assert f"ended {RUNS} runs in flight: {RUNS} canceled\n" in stopping, stopping
    # Reported by the run status sensors before the stack went: no job left "running".
    assert final == dict.fromkeys(job_ids, "canceled"), (final, stopping)
    assert stopping.count(" - RUN_CANCELED - ") == RUNS, stopping  # one line per run
    assert "Traceback" not in output and "Stack Trace" not in output, stopping
    errors = [line for line in stopping.splitlines() if "ERROR" in line]
    assert all(" - RUN_CANCELED - " in line for line in errors), stopping  # none from Dagster
