"""Running the local stack and Dagster for amazoniax dev and amazoniax stack up: start, wait for
a signal, stop."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from amazoniax_dagster.devstack.local_stack import StackEndpoints


PROJECT_ROOT = Path(__file__).resolve().parents[2]


DEFAULT_WORKDIR = PROJECT_ROOT / ".amazoniax"


@contextmanager
def running_stack(workdir: Path) -> Iterator[StackEndpoints]:
    """Start the stack with a migrated fetcher DB; stop it however the block ends."""
    from amazoniax_dagster.db import migrate
    from amazoniax_dagster.devstack.local_stack import LocalStack  # boto3, psycopg, kafka: 0.3 s

    # The broker keeps topics in memory only, so the stack is ephemeral as a whole: kept
    # Postgres data (Dagster's sensor cursor, the channel history) would not match a new,
    # empty Kafka.
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    local = LocalStack(workdir)
    # SIGTERM should unwind like Ctrl-C so that the stack is stopped, not orphaned.
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        endpoints = local.start()
        migrate.upgrade_database(endpoints.database_url)
        local.write_env_file(workdir / "stack.env")
        yield endpoints
    finally:
        local.stop()


def ensure_database(database_url: str, name: str) -> str:
    """Create database ``name`` on the same server if missing; return a psycopg2 URL for it
    (dagster-postgres needs psycopg2, not SQLAlchemy 2.1's default psycopg 3)."""
    from sqlalchemy.engine import make_url

    from amazoniax_dagster.devstack.postgres import run_admin

    url = make_url(database_url)
    admin = url.set(drivername="postgresql", database="postgres").render_as_string(False)
    if not run_admin(admin, "SELECT 1 FROM pg_database WHERE datname = %s", (name,)):
        run_admin(admin, f'CREATE DATABASE "{name}"')
    return url.set(drivername="postgresql+psycopg2", database=name).render_as_string(False)


def prepare_dagster_home(home: Path) -> Path:
    shutil.rmtree(home, ignore_errors=True)  # its storage lived in the ephemeral stack
    home.mkdir(parents=True)
    shutil.copyfile(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    return home


#: a second stop request within this many seconds of the first is the same Ctrl-C, forwarded
SAME_INTERRUPT_S = 0.5


def _wait_for_signal(
    proc: subprocess.Popen[bytes] | None = None, hurry: threading.Event | None = None
) -> None:
    """Return on Ctrl-C or SIGTERM (or when ``proc`` exits). From then on both only set ``hurry``.

    The stop that follows is ordered (the runs in flight, ``dagster dev``, then the stack) and
    bounded. An interrupt must not cut it short and stop the stack under a Dagster still
    shutting down, and one always comes: ``uv run`` forwards the Ctrl-C that the terminal
    already sent to us. So the handlers only set flags, and they stay in place; a second
    Ctrl-C of the person (later than ``SAME_INTERRUPT_S``) sets ``hurry``: the stop no longer
    waits for runs or for processes to exit on their own.
    """
    stop = threading.Event()
    first: list[float] = []

    def request_stop(signum: int, frame: object) -> None:
        now = time.monotonic()
        if not first:
            first.append(now)
            stop.set()
        elif hurry is not None and not hurry.is_set() and now - first[0] > SAME_INTERRUPT_S:
            hurry.set()
            click.echo("stopping at once ...")

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    while not stop.wait(0.5):
        if proc is not None and proc.poll() is not None:
            click.echo(f"dagster dev exited with {proc.returncode}")
            first.append(time.monotonic())  # later requests hurry the stop
            return
    click.echo("stopping ...")


def _stop_process_group(
    proc: subprocess.Popen[bytes],
    *,
    grace: float = 30.0,
    leftovers: float = 10.0,
    hurry: threading.Event | None = None,
) -> None:
    """Stop ``proc`` (``dagster dev``, leader of its own process group) and every process of its
    group, and return only when none is left: the stack they use is stopped next.

    A child of ``dagster dev`` can outlive it: a code server restarted during a shutdown lived
    on until its 45 s heartbeat timeout, logging failed connections to the stopped PostgreSQL.
    So each process of the group, including one that appears during the shutdown, gets one
    SIGTERM, and what is left after ``leftovers`` seconds, or as soon as ``hurry`` is set, is
    killed.
    """
    hurry = hurry or threading.Event()
    signalled: set[int] = set()
    if proc.poll() is None:
        signalled = {proc.pid, *_group_members(proc.pid)}  # what the group's SIGTERM reaches
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + grace
        while proc.poll() is None and time.monotonic() < deadline and not hurry.wait(0.1):
            pass
    deadline = time.monotonic() + leftovers
    while members := _group_members(proc.pid):
        late = time.monotonic() > deadline or hurry.is_set()
        for pid in members:
            if late or pid not in signalled:
                signalled.add(pid)
                try:
                    os.kill(pid, signal.SIGKILL if late else signal.SIGTERM)
                except ProcessLookupError:
                    pass
        if late:
            break
        time.sleep(0.2)
    proc.wait()


def _daemon_pids(pgid: int) -> list[int]:
    """The ``dagster-daemon`` processes of process group ``pgid``."""
    import psutil

    found = []
    for pid in _group_members(pgid):
        try:
            cmdline = psutil.Process(pid).cmdline()
        except psutil.Error:
            continue
        if "dagster._daemon" in cmdline or any(a.endswith("dagster-daemon") for a in cmdline):
            found.append(pid)
    return found


def _kill(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _group_members(pgid: int) -> list[int]:
    """The processes of process group ``pgid`` that are still running (zombies left out)."""
    import psutil

    members = []
    for process in psutil.process_iter(["status"]):
        try:
            if os.getpgid(process.pid) == pgid and process.info["status"] != psutil.STATUS_ZOMBIE:
                members.append(process.pid)
        except (ProcessLookupError, PermissionError):  # gone since the listing
            continue
    return members


def _alive(pid: int) -> bool:
    """Running and not a zombie (an exited child its parent has not reaped yet)."""
    import psutil

    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _mask(key: str, value: str) -> str:
    return "***" if "SECRET" in key else value
