"""Child processes of the local stack: started by one spawner thread, dying with Python, stopped
by process group."""

from __future__ import annotations

import contextlib
import ctypes
import os
import queue
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Collection
from concurrent.futures import Future
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"


START_TIMEOUT_S = 60.0


STOP_TIMEOUT_S = 15.0


LOG_TAIL_LINES = 30


_PR_SET_PDEATHSIG = 1


class LocalStackError(Exception):
    """A local service failed to start, answer or stop."""

    def __init__(self, message: str, service: str | None = None) -> None:
        super().__init__(message)
        self.service = service


class _ExitedDuringStart(LocalStackError):
    """The service process ended before it answered."""


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


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(text)


def _remove_socket(path: Path) -> None:
    with contextlib.suppress(OSError):
        if stat.S_ISSOCK(path.lstat().st_mode):
            path.unlink()


def _make_traversable(path: Path) -> None:
    """Let other users pass through every parent of ``path`` (search bit only)."""
    search = stat.S_IXGRP | stat.S_IXOTH
    for parent in path.resolve().parents:
        mode = parent.stat().st_mode
        if mode & search != search:
            parent.chmod(stat.S_IMODE(mode) | search)
