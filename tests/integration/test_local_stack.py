"""The local stack starts real services on loopback, prepares them and leaves nothing behind."""

from __future__ import annotations

import json
import selectors
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import psutil
import pytest
import sqlalchemy as sa
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError
from cryptography.fernet import Fernet

from amazoniax_dagster.clients.kafka import KafkaBus
from amazoniax_dagster.core.errors import TransientError
from amazoniax_dagster.devstack.kafka import DEFAULT_TOPICS
from amazoniax_dagster.devstack.local_stack import LocalStack, StackEndpoints
from amazoniax_dagster.devstack.processes import LocalStackError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

pytestmark = pytest.mark.integration

# ports weed, tansu and postgres take when a flag is missing
FIXED_DEFAULT_PORTS = {5432, 6060, 7333, 8181, 8333, 8888, 9092, 9101, 9333, 9340, 23646}


def _s3(stack: StackEndpoints, secret: str | None = None) -> S3Client:
    return boto3.client(
        "s3",
        endpoint_url=stack.s3_endpoint_url,
        aws_access_key_id=stack.s3_access_key_id,
        aws_secret_access_key=secret or stack.s3_secret_access_key,
        region_name=stack.s3_region,
        config=BotoConfig(retries={"max_attempts": 1}),
    )


def _stack_processes(local_stack: LocalStack) -> list[psutil.Process]:
    found: list[psutil.Process] = []
    for pid in local_stack.pids().values():
        root = psutil.Process(pid)
        found += [root, *root.children(recursive=True)]
    return found


def test_kafka_topics_exist_and_a_message_round_trips(stack: StackEndpoints) -> None:
    bus = KafkaBus(stack.kafka_bootstrap, client_id="tests")
    try:
        assert set(DEFAULT_TOPICS) <= bus.topic_names()
        since = bus.read("amazoniax_status", {}, max_records=100_000).next_offsets
        payload = uuid.uuid4().bytes
        bus.publish("amazoniax_status", payload, key=b"k")
        batch = bus.read("amazoniax_status", since)
    finally:
        bus.close()
    assert [r.value for r in batch.records] == [payload]


def test_s3_round_trip_and_a_wrong_secret_is_refused(stack: StackEndpoints) -> None:
    client = _s3(stack)
    client.head_bucket(Bucket=stack.output_bucket)
    client.put_object(Bucket=stack.output_bucket, Key="probe/a.txt", Body=b"hello")
    body = client.get_object(Bucket=stack.output_bucket, Key="probe/a.txt")["Body"].read()
    assert body == b"hello"

    intruder = _s3(stack, secret="not-the-secret")
    with pytest.raises(ClientError) as refused:
        intruder.get_object(Bucket=stack.output_bucket, Key="probe/a.txt")
    assert refused.value.response["Error"]["Code"] == "SignatureDoesNotMatch"


def test_postgres_answers_on_the_amazoniax_database(stack: StackEndpoints) -> None:
    engine = sa.create_engine(stack.database_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT current_database()")).scalar() == "amazoniax"
            assert conn.execute(sa.text("SELECT 40 + 2")).scalar() == 42
    finally:
        engine.dispose()


def test_endpoints_env_and_env_file(local_stack: LocalStack, tmp_path: Path) -> None:
    env = local_stack.endpoints.env()
    assert env["AMAZONIAX_ALLOWED_NETWORKS"] == "127.0.0.0/8"
    assert env["AMAZONIAX_OUTPUT_BUCKET"] == "amazoniax-output"
    assert env["AMAZONIAX_DATABASE_URL"].startswith("postgresql+psycopg2://postgres@127.0.0.1:")
    Fernet(env["AMAZONIAX_SECRET_KEY"].encode())  # a valid Fernet key
    # The fetchers' shared Git remote is a bare repository inside the stack's folder.
    remote = env["AMAZONIAX_FETCHERS_REMOTE_URL"]
    assert remote.startswith("file://") and (Path(remote[7:]) / "HEAD").is_file()
    assert Path(env["AMAZONIAX_FETCHERS_REPO_PATH"]).parent == Path(remote[7:]).parent
    assert len(env) == 11

    path = tmp_path / "stack.env"
    local_stack.write_env_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = dict(line.split("=", 1) for line in path.read_text().splitlines())
    assert lines == env


def test_every_listening_socket_is_on_loopback(local_stack: LocalStack) -> None:
    processes = _stack_processes(local_stack)
    pids = {process.pid for process in processes}
    bound = [
        conn
        for conn in psutil.net_connections(kind="inet")
        if conn.pid in pids
        and (conn.status == psutil.CONN_LISTEN or conn.type == socket.SOCK_DGRAM)
    ]
    owners = {conn.pid for conn in bound}
    assert set(local_stack.pids().values()) <= owners, "every service listens"
    assert all(conn.laddr.ip == "127.0.0.1" for conn in bound), bound
    assert not {conn.laddr.port for conn in bound} & FIXED_DEFAULT_PORTS


def test_a_failing_service_is_named_with_its_log(tmp_path: Path) -> None:
    data = tmp_path / "postgres" / "data"
    data.mkdir(parents=True)
    (data / "PG_VERSION").write_text("not a cluster\n")  # initdb is skipped, postgres fails
    stack = LocalStack(tmp_path, services=("postgres",))
    with pytest.raises(LocalStackError) as failed:
        stack.start()
    assert failed.value.service == "postgres"
    assert "postgres:" in str(failed.value) and "last lines of" in str(failed.value)
    assert stack.pids() == {}


def test_pause_resume_and_stop_one_service(tmp_path: Path) -> None:
    with LocalStack(tmp_path, services=("kafka",), topics=("t",)) as stack:
        bootstrap = stack.endpoints.kafka_bootstrap
        bus = KafkaBus(bootstrap, client_id="tests")
        bus.publish("t", b"before", timeout=5)
        stack.pause_kafka()
        with pytest.raises(TransientError, match="did not acknowledge"):
            bus.publish("t", b"during", timeout=1.5)
        stack.resume_kafka()
        bus.publish("t", b"after", timeout=15)
        bus.close()

        stack.stop_service("kafka")
        assert not stack.is_running("kafka")
        assert stack.endpoints.kafka_bootstrap == bootstrap
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", int(bootstrap.rsplit(":", 1)[1])), timeout=1)


STACK_SCRIPT = textwrap.dedent(
    """
    import json, signal, sys, time
    from pathlib import Path
    from amazoniax_dagster.devstack.local_stack import LocalStack

    # As `amazoniax stack up` does: SIGINT may arrive ignored from a backgrounded parent.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with LocalStack(Path(sys.argv[1])) as stack:
        print(json.dumps(stack.pids()), flush=True)
        while True:
            time.sleep(1)
    """
)


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise AssertionError(f"no output within {timeout} s")
    return proc.stdout.readline()


def _gone(process: psutil.Process) -> bool:
    try:
        return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.parametrize(
    "sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=lambda sig: sig.name
)
def test_a_signalled_stack_leaves_no_orphans(tmp_path: Path, sig: signal.Signals) -> None:
    log = (tmp_path / "runner.log").open("w")
    weed_sockets: list[Path] = []
    runner = subprocess.Popen(
        [sys.executable, "-c", STACK_SCRIPT, str(tmp_path / "stack")],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    try:
        line = _read_line(runner, timeout=30)
        pids: dict[str, int] = json.loads(line)
        assert set(pids) == {"kafka", "s3", "postgres"}
        services = [psutil.Process(pid) for pid in pids.values()]
        processes = [p for root in services for p in (root, *root.children(recursive=True))]
        assert len(processes) > 3  # postgres has its workers
        weed_sockets = [
            Path(conn.laddr)
            for conn in psutil.Process(pids["s3"]).net_connections(kind="unix")
            if conn.laddr.startswith("/tmp/seaweedfs-")
        ]

        runner.send_signal(sig)
        runner.wait(timeout=30)
        deadline = time.monotonic() + 10
        while not all(_gone(p) for p in processes) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [p for p in processes if not _gone(p)] == []
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
        log.close()
        for path in weed_sockets:  # a killed weed cannot remove its /tmp sockets itself
            path.unlink(missing_ok=True)
    if sig != signal.SIGKILL:  # stopped in order: postgres shut down cleanly
        pg_log = (tmp_path / "stack" / "logs" / "postgres.log").read_text()
        assert "received fast shutdown request" in pg_log
