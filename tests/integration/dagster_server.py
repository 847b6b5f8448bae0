"""The real Dagster processes for operations tests: a code server, ``dagster-webserver`` and
``dagster-daemon``, on 127.0.0.1 free ports, against a temporary DAGSTER_HOME whose instance
stores everything in a database of its own on the local stack's PostgreSQL.

The three are started as ``dagster dev`` would start them (one code server that both the
webserver and the daemon talk to, so the code location is loaded once and runs are launched
from it), but one by one, so that a test can prepare the instance through the webserver before
the daemon's first sensor tick (``prepare``): the ``kafka_fetcher_sensor`` would otherwise
start from the beginning of a topic the session's other tests have already written to.

Every process runs in a session of its own; ``stop`` ends each one's whole tree (the run
workers the code server spawned included), gently first, and it runs however the block ends.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import yaml

from amazoniax_dagster.devstack.local_stack import StackEndpoints
from amazoniax_dagster.devstack.ports import free_port
from amazoniax_dagster.devstack.session import PROJECT_ROOT, ensure_database

LOCATION = "amazoniax"
REPOSITORY = "__repository__"
#: the daemons the operations tests rely on; each must have sent a heartbeat before tests run
DAEMONS = ("SENSOR", "QUEUED_RUN_COORDINATOR", "MONITORING", "BACKFILL")


class DagsterServerError(RuntimeError):
    pass


@dataclass
class InstanceSettings:
    """What the test instance changes in the project's ``dagster.yaml``."""

    max_concurrent_runs: int = 5
    dequeue_interval_seconds: int = 1
    #: launch a dequeued batch in parallel: a launch waits for the run process to load the
    #: code (seconds on a busy machine), so one by one the queue never fills its slots
    dequeue_num_workers: int | None = 5
    monitoring_poll_interval_seconds: int = 2
    #: the instance-wide limit; a run's ``dagster/max_runtime`` tag overrides it
    max_runtime_seconds: int = 600
    start_timeout_seconds: int = 180


def instance_config(database_url: str, settings: InstanceSettings) -> dict[str, Any]:
    """The project's instance config (``dagster.yaml``) with the test's queue and monitoring."""
    config: dict[str, Any] = yaml.safe_load((PROJECT_ROOT / "dagster.yaml").read_text())
    config["storage"] = {"postgres": {"postgres_url": database_url}}
    coordinator = config.setdefault("run_coordinator", {}).setdefault("config", {})
    coordinator["max_concurrent_runs"] = settings.max_concurrent_runs
    coordinator["dequeue_interval_seconds"] = settings.dequeue_interval_seconds
    if settings.dequeue_num_workers:
        coordinator["dequeue_use_threads"] = True
        coordinator["dequeue_num_workers"] = settings.dequeue_num_workers
    monitoring = config.setdefault("run_monitoring", {})
    monitoring.update(
        enabled=True,
        poll_interval_seconds=settings.monitoring_poll_interval_seconds,
        max_runtime_seconds=settings.max_runtime_seconds,
        start_timeout_seconds=settings.start_timeout_seconds,
    )
    return config


# ------------------------------------------------------------------------------- processes

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """SIGKILL the child if pytest dies without running its cleanup."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            text = Path(f"/proc/{pid}/task/{task}/children").read_text()
        except OSError:
            continue
        found.extend(int(c) for c in text.split())
    return found


def descendants(pid: int) -> list[int]:
    """``pid``'s process tree below it, parents before children."""
    out: list[int] = []
    todo = [pid]
    while todo:
        for child in _children(todo.pop()):
            if child not in out:
                out.append(child)
                todo.append(child)
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


_ROUTINE = re.compile(r"Checking for new runs for sensor|Sensor \S+ skipped")


@dataclass
class _Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 40) -> str:
        """The log's last lines, without the daemon's routine sensor chatter."""
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no log)"
        kept = [line for line in text.splitlines() if not _ROUTINE.search(line)]
        return "\n".join(kept[-lines:])

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the process and everything it started; SIGKILL what is left after
        ``timeout``. Only these pids are signalled (collected before the first signal, so
        that children re-parented to init are not lost)."""
        pids = [self.popen.pid, *descendants(self.popen.pid)]
        if self.popen.poll() is None:
            _signal(self.popen.pid, signal.SIGTERM)
        for pid in pids[1:]:
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.popen.poll()
            if not any(_alive(p) for p in pids):
                break
            time.sleep(0.1)
        for pid in pids:
            if _alive(pid):
                _signal(pid, signal.SIGKILL)
        try:
            self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def _wait_port(port: int, proc: _Proc, deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise DagsterServerError(
                f"{proc.name} exited with {proc.popen.returncode}:\n{proc.tail()}"
            )
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise DagsterServerError(f"{proc.name} did not listen on {port} in time:\n{proc.tail()}")


# ---------------------------------------------------------------------------------- server


@dataclass
class DagsterServer:
    """The running processes, the instance they share, and ways to talk to them."""

    home: Path
    url: str
    env: dict[str, str]
    database_url: str
    procs: list[_Proc] = field(default_factory=list)
    _instance: dg.DagsterInstance | None = None

    @property
    def instance(self) -> dg.DagsterInstance:
        """The same instance, opened in the test process (run storage, partitions)."""
        if self._instance is None:
            self._instance = dg.DagsterInstance.from_config(str(self.home))
        return self._instance

    def graphql(self, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        body = json.dumps({"query": query, "variables": dict(variables or {})}).encode()
        request = urllib.request.Request(
            f"{self.url}/graphql", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            payload: dict[str, Any] = json.loads(response.read())
        if payload.get("errors"):
            raise DagsterServerError(f"GraphQL errors: {payload['errors']}")
        data: dict[str, Any] = payload["data"]
        return data

    def set_sensor_cursor(self, sensor_name: str, cursor: str) -> None:
        data = self.graphql(
            """
            mutation($selector: SensorSelector!, $cursor: String) {
              setSensorCursor(sensorSelector: $selector, cursor: $cursor) {
                __typename
                ... on Sensor {
                  sensorState { typeSpecificData { ... on SensorData { lastCursor } } }
                }
                ... on PythonError { message }
                ... on SensorNotFoundError { message }
              }
            }
            """,
            {
                "selector": {
                    "repositoryLocationName": LOCATION,
                    "repositoryName": REPOSITORY,
                    "sensorName": sensor_name,
                },
                "cursor": cursor,
            },
        )
        result = data["setSensorCursor"]
        if result["__typename"] != "Sensor":
            raise DagsterServerError(f"setSensorCursor({sensor_name}): {result}")

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} ({p.log})\n{p.tail()}" for p in self.procs)

    def check_alive(self) -> None:
        for proc in self.procs:
            if proc.popen.poll() is not None:
                raise DagsterServerError(
                    f"{proc.name} exited with {proc.popen.returncode}:\n{proc.tail()}"
                )

    def stop(self) -> None:
        if self._instance is not None:
            self._instance.dispose()
            self._instance = None
        # The daemon first (it launches runs), the code server last (it owns the run workers).
        for proc in reversed(self.procs):
            proc.stop()
        self.procs.clear()

    # -- waiting -----------------------------------------------------------------------------

    def wait_location_loaded(self, deadline: float) -> None:
        last: Any = None
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                data = self.graphql(
                    """{ workspaceOrError { __typename ... on Workspace { locationEntries {
                         name loadStatus locationOrLoadError { __typename
                         ... on PythonError { message } } } } } }"""
                )
                entries = data["workspaceOrError"].get("locationEntries", [])
                last = entries
                for entry in entries:
                    loaded = entry["locationOrLoadError"] or {}
                    if (
                        entry["name"] == LOCATION
                        and loaded.get("__typename") == "RepositoryLocation"
                    ):
                        return
                    if loaded.get("__typename") == "PythonError":
                        raise DagsterServerError(f"code location failed to load: {loaded}")
            except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
                last = exc
            time.sleep(0.3)
        raise DagsterServerError(f"code location not loaded in time ({last}):\n{self.logs()}")

    def wait_daemons(self, deadline: float, daemons: tuple[str, ...] = DAEMONS) -> None:
        missing: set[str] = set(daemons)
        while time.monotonic() < deadline:
            self.check_alive()
            beats = self.instance.get_daemon_heartbeats()
            missing = set(daemons) - set(beats)
            if not missing:
                return
            time.sleep(0.3)
        raise DagsterServerError(f"daemons without a heartbeat: {sorted(missing)}:\n{self.logs()}")


def _start(name: str, command: list[str], *, env: Mapping[str, str], logdir: Path) -> _Proc:
    log = logdir / f"{name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(
            command,
            env=dict(env),
            cwd=PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - no threads touch the env here
        )
    return _Proc(name, popen, log)


def _bin(name: str) -> str:
    path = Path(sys.executable).parent / name
    if not path.exists():
        raise DagsterServerError(f"{name} is not installed next to {sys.executable}")
    return str(path)


@contextmanager
def dagster_server(
    stack: StackEndpoints,
    workdir: Path,
    *,
    settings: InstanceSettings | None = None,
    prepare: Callable[[DagsterServer], None] | None = None,
    startup_timeout: float = 120.0,
) -> Iterator[DagsterServer]:
    """Start a code server, the webserver and (after ``prepare``) the daemon; stop them all
    however the block ends."""
    settings = settings or InstanceSettings()
    home = workdir / "dagster_home"
    logdir = workdir / "logs"
    home.mkdir(parents=True)
    logdir.mkdir(parents=True)
    database_url = ensure_database(stack.database_url, f"dagster_ops_{uuid.uuid4().hex[:10]}")
    (home / "dagster.yaml").write_text(yaml.safe_dump(instance_config(database_url, settings)))

    grpc_port, web_port = free_port(), free_port()
    workspace = workdir / "workspace.yaml"
    workspace.write_text(
        yaml.safe_dump(
            {
                "load_from": [
                    {
                        "grpc_server": {
                            "host": "127.0.0.1",
                            "port": grpc_port,
                            "location_name": LOCATION,
                        }
                    }
                ]
            }
        )
    )
    env = {
        **os.environ,
        **stack.env(),
        "DAGSTER_HOME": str(home),
        "PYTHONUNBUFFERED": "1",
    }
    for key in [k for k in env if k.startswith("PYTEST_")]:
        del env[key]

    server = DagsterServer(
        home=home, url=f"http://127.0.0.1:{web_port}", env=env, database_url=database_url
    )
    deadline = time.monotonic() + startup_timeout
    try:
        code = _start(
            "code-server",
            [
                _bin("dagster"), "api", "grpc",
                "--host", "127.0.0.1", "--port", str(grpc_port),
                "--module-name", "amazoniax_dagster.definitions",
                "--location-name", LOCATION,
            ],
            env=env,
            logdir=logdir,
        )  # fmt: skip
        server.procs.append(code)
        _wait_port(grpc_port, code, deadline)
        web = _start(
            "webserver",
            [
                _bin("dagster-webserver"),
                "-h", "127.0.0.1", "-p", str(web_port),
                "-w", str(workspace),
            ],
            env=env,
            logdir=logdir,
        )  # fmt: skip
        server.procs.append(web)
        _wait_port(web_port, web, deadline)
        server.wait_location_loaded(deadline)
        if prepare is not None:
            prepare(server)
        daemon = _start(
            "daemon", [_bin("dagster-daemon"), "run", "-w", str(workspace)], env=env, logdir=logdir
        )
        server.procs.append(daemon)
        server.wait_daemons(deadline)
        yield server
    finally:
        server.stop()
