"""What every local service does: start its process, wait until it answers, stop it."""

from __future__ import annotations

import contextlib
import logging
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

from amazoniax_dagster.devstack.processes import (
    STOP_TIMEOUT_S,
    LocalStackError,
    _child_env,
    _die_with_parent,
    _exit_status,
    _ExitedDuringStart,
    _kill_group,
    _log_tail,
    _Spawner,
    _wait_exited,
    _wait_stopped,
)

logger = logging.getLogger(__name__)


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
