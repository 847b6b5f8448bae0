"""The sandbox a Python fetcher runs in, and the supervisor that enforces it.

The *sandbox command* is ``python -m amazoniax_dagster.fetchers.sandbox [options] -- CMD...``.
That process (the supervisor, trusted code) starts ``CMD`` (the sandboxed child) with:

- a clean environment: ``PATH``, ``LANG``, ``HOME`` and ``TMPDIR`` (both the job's home
  folder) and the two Dagster Pipes bootstrap variables; nothing else is inherited;
- its own session (process group), ``cwd`` = the job's home folder, stdin from /dev/null,
  stdout and stderr appended to ``<job dir>/stdio.log`` (passed through instead when Pipes
  messages travel over stdio, as with ``PipesK8sClient``);
- rlimits: CPU time (SIGXCPU, then SIGKILL one second later), address space (allocations
  fail: ``MemoryError``), file size, open files, no core dumps;
- no capabilities (a root child could otherwise raise its own hard rlimits);
- Landlock: read-only everywhere but the hidden paths (secret mounts such as the service
  account token), writable only beneath the job folder (plus appending to the Pipes
  messages file and writing /dev/null); see :mod:`.landlock`. Landlock does not cover
  ``chmod``/``chown``/``utime``: a child can change metadata (not content) of files its uid
  owns elsewhere; production runs fetchers as their own uid in their own pod.

The supervisor itself enforces the wall-clock limit: when it passes, the child and every
descendant are killed (the supervisor is a child subreaper, so even processes that escaped
the process group with ``setsid`` stay its descendants). After the child ends, leftover
descendants are killed too, so nothing the fetcher started outlives the job.

It then writes the *outcome* (exit code or signal, which limit was hit, CPU time, peak
memory) as the last Pipes custom message and closes the Pipes session. The outcome carries
the nonce the parent handed over in ``AMAZONIAX_SANDBOX_NONCE``; the child never sees that
variable (and cannot read the supervisor's environment: Landlock forbids ptrace-like access),
so it cannot forge an outcome. The supervisor exits 0 whenever it reported an outcome, so a
Pipes client treats "the fetcher failed" as data, not as a crashed step.

Without a usable Landlock (ABI >= :data:`MIN_LANDLOCK_ABI`) the supervisor refuses to run the
child unless ``--allow-unconfined`` is given; the outcome says so.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import select
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amazoniax_dagster.fetchers import landlock
from amazoniax_dagster.fetchers.confinement import SandboxLimits, confine_current_process

OUTCOME_KIND = "amazoniax.sandbox_outcome"
NONCE_ENV = "AMAZONIAX_SANDBOX_NONCE"
STDIO_LOG = "stdio.log"
# ABI 3 adds TRUNCATE: below it a child could still truncate(2) files outside its folder.
MIN_LANDLOCK_ABI = 3
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
PIPES_ENV = ("DAGSTER_PIPES_CONTEXT", "DAGSTER_PIPES_MESSAGES")

_PR_SET_CHILD_SUBREAPER = 36


def confinement_refusal(abi: int, allow_unconfined: bool) -> str | None:
    """Why the sandbox must not start with this Landlock ABI, or None when it may."""
    if abi >= MIN_LANDLOCK_ABI or allow_unconfined:
        return None
    found = f"ABI {abi}" if abi else "not available (kernel without Landlock, or disabled)"
    return (
        f"refusing to run a Python fetcher unconfined: Linux Landlock is {found}, and the "
        f"sandbox needs ABI {MIN_LANDLOCK_ABI}+ (Linux 6.2+) to keep writes inside the job "
        "folder; run on such a kernel, or set allow_unconfined=True (development only)"
    )


def clean_env(inherited: Mapping[str, str], home: Path) -> dict[str, str]:
    """The child's whole environment: nothing of the parent's but PATH, LANG and Pipes."""
    env = {
        "PATH": inherited.get("PATH") or DEFAULT_PATH,
        "LANG": inherited.get("LANG") or "C.UTF-8",
        "HOME": str(home),
        "TMPDIR": str(home),
    }
    env.update({name: inherited[name] for name in PIPES_ENV if name in inherited})
    return env


def sandbox_command(
    child: Sequence[str],
    *,
    job_dir: Path,
    home: Path,
    limits: SandboxLimits,
    max_file_bytes: int,
) -> list[str]:
    """The supervisor's argv: run ``child`` confined to ``job_dir`` with ``limits``."""
    argv = [
        sys.executable,
        "-I",  # isolated: no PYTHON* variables, no user site, no cwd on sys.path
        "-B",
        "-m",
        "amazoniax_dagster.fetchers.sandbox",
        f"--job-dir={job_dir}",
        f"--home={home}",
        f"--cpu-seconds={limits.cpu_seconds}",
        f"--memory-bytes={limits.memory_bytes}",
        f"--wall-seconds={limits.wall_seconds}",
        f"--max-file-bytes={max_file_bytes}",
        f"--max-open-files={limits.max_open_files}",
        *(f"--hide={path}" for path in limits.hidden_paths),
    ]
    if limits.allow_unconfined:
        argv.append("--allow-unconfined")
    return [*argv, "--", *child]


@dataclass(frozen=True)
class Outcome:
    """How the sandboxed child ended, as the supervisor saw it."""

    confinement: str  # "landlock-abi-7" | "unconfined"
    refused: str | None = None
    setup_error: str | None = None
    returncode: int | None = None
    signal: str | None = None
    limit: str | None = None  # "wall_clock" | "cpu_time" | "interrupted"
    cpu_seconds: float = 0.0
    max_rss_bytes: int = 0
    wall_seconds: float = 0.0

    def payload(self, nonce: str) -> dict[str, Any]:
        return {"kind": OUTCOME_KIND, "nonce": nonce, **self.__dict__}


class _Interrupted(Exception):
    """SIGINT or SIGTERM reached the supervisor (e.g. the Dagster run was cancelled)."""


def supervise(
    child: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    stdio_log: Path | None,
    wall_seconds: float,
    cpu_seconds: int,
    preexec: Callable[[], None],
    confinement: str,
) -> Outcome:
    """Run ``child`` to its end or to the wall-clock limit; kill whatever it leaves behind."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    start = time.monotonic()
    log_fd = (
        os.open(stdio_log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        if stdio_log is not None
        else None
    )
    try:
        import subprocess

        try:
            process = subprocess.Popen(
                list(child),
                env=dict(env),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log_fd,
                stderr=log_fd,
                start_new_session=True,
                preexec_fn=preexec,  # the supervisor is single-threaded: safe here
            )
        except (OSError, subprocess.SubprocessError) as exc:
            detail = (_tail(stdio_log) if stdio_log else "") or str(exc)  # preexec writes there
            return Outcome(confinement, setup_error=f"cannot start the sandboxed child: {detail}")
    finally:
        if log_fd is not None:
            os.close(log_fd)
    limit = None
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, _raise_interrupted)
    try:
        try:
            if not _wait_for_exit(process.pid, start + wall_seconds):
                limit = "wall_clock"
        except _Interrupted:
            limit = "interrupted"
        if limit is not None:
            _kill_group(process.pid)
        # Reap the child itself first (its status and resource usage), then whatever it
        # left behind: orphans are re-parented to us, the subreaper.
        _, status, usage = os.wait4(process.pid, 0)
        _kill_descendants()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    cpu = usage.ru_utime + usage.ru_stime
    returncode = os.waitstatus_to_exitcode(status)
    signame = signal.Signals(-returncode).name if returncode < 0 else None
    if limit is None and (signame == "SIGXCPU" or (signame == "SIGKILL" and cpu >= cpu_seconds)):
        limit = "cpu_time"
    return Outcome(
        confinement,
        returncode=returncode if returncode >= 0 else None,
        signal=signame,
        limit=limit,
        cpu_seconds=round(cpu, 3),
        max_rss_bytes=usage.ru_maxrss * 1024,
        wall_seconds=round(time.monotonic() - start, 3),
    )


def _tail(path: Path, limit: int = 2000) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(max(0, path.stat().st_size - limit))
            return handle.read().decode(errors="replace").strip()
    except OSError:
        return ""


def _raise_interrupted(signum: int, frame: object) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):  # one interruption is enough to clean up
        signal.signal(sig, signal.SIG_IGN)
    raise _Interrupted(signal.Signals(signum).name)


def _wait_for_exit(pid: int, deadline: float) -> bool:
    """Wait (without reaping) until ``pid`` exits; False when ``deadline`` passed first."""
    pidfd = os.pidfd_open(pid)
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if poller.poll(min(remaining, 3600.0) * 1000):
                return True
    finally:
        os.close(pidfd)


def _kill_group(pid: int) -> None:
    """SIGKILL the child and its process group (the session it leads)."""
    for kill in (os.killpg, os.kill):
        try:
            kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _kill_descendants() -> None:
    """SIGKILL every remaining descendant until none is left (it may fork meanwhile)."""
    import psutil

    me = psutil.Process()
    for _ in range(100):
        alive = [p for p in me.children(recursive=True) if _alive(p)]
        if not alive:
            break
        for proc in alive:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(alive, timeout=1)
    _reap_all()


def _alive(proc: Any) -> bool:
    import psutil

    try:
        return bool(proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def _reap_all() -> None:
    """Collect exited descendants re-parented to us (we are their subreaper)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


class _PipesOut:
    """The supervisor's end of the Pipes message channel (same params as the child's)."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        from dagster_pipes import DAGSTER_PIPES_MESSAGES_ENV_VAR, decode_param

        raw = environ.get(DAGSTER_PIPES_MESSAGES_ENV_VAR)
        if not raw:
            raise SystemExit(
                f"sandbox: {DAGSTER_PIPES_MESSAGES_ENV_VAR} is not set: start the sandbox "
                "through a Dagster Pipes client"
            )
        self.params: dict[str, Any] = decode_param(raw)

    @property
    def messages_file(self) -> Path | None:
        from dagster_pipes import PipesDefaultMessageWriter

        path = self.params.get(PipesDefaultMessageWriter.FILE_PATH_KEY)
        return Path(path) if isinstance(path, str) else None

    def close_with(self, payload: dict[str, Any]) -> None:
        """Send the outcome, then close the session on the child's behalf."""
        from dagster_pipes import PIPES_PROTOCOL_VERSION, PipesDefaultMessageWriter

        with PipesDefaultMessageWriter().open(self.params) as channel:
            for method, params in (
                ("report_custom_message", {"payload": payload}),
                ("closed", {}),
            ):
                # The field name is dagster_pipes.PIPES_PROTOCOL_VERSION_FIELD.
                channel.write_message(
                    {
                        "__dagster_pipes_version": PIPES_PROTOCOL_VERSION,
                        "method": method,
                        "params": params,
                    }
                )


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="amazoniax_dagster.fetchers.sandbox")
    parser.add_argument("--job-dir", type=Path, required=True)
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--cpu-seconds", type=int, required=True)
    parser.add_argument("--memory-bytes", type=int, required=True)
    parser.add_argument("--wall-seconds", type=float, required=True)
    parser.add_argument("--max-file-bytes", type=int, required=True)
    parser.add_argument("--max-open-files", type=int, default=256)
    parser.add_argument("--hide", type=Path, action="append", default=[])
    parser.add_argument("--allow-unconfined", action="store_true")
    parser.add_argument("child", nargs="+")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    nonce = os.environ.pop(NONCE_ENV, "")
    pipes = _PipesOut(os.environ)
    limits = SandboxLimits(
        cpu_seconds=args.cpu_seconds,
        memory_bytes=args.memory_bytes,
        wall_seconds=args.wall_seconds,
        max_open_files=args.max_open_files,
        hidden_paths=tuple(str(path) for path in args.hide),
        allow_unconfined=args.allow_unconfined,
    )
    abi = landlock.abi_version()
    refusal = confinement_refusal(abi, limits.allow_unconfined)
    use_landlock = abi >= MIN_LANDLOCK_ABI
    confinement = f"landlock-abi-{abi}" if use_landlock else "unconfined"
    if refusal is not None:
        pipes.close_with(Outcome(confinement, refused=refusal).payload(nonce))
        return 0
    job_dir, home = args.job_dir.resolve(), args.home.resolve()
    writable_files = [Path(os.devnull)]
    if pipes.messages_file is not None:
        writable_files.append(pipes.messages_file)
    readable = landlock.readable_except(args.hide) if use_landlock else []

    def preexec() -> None:
        try:
            confine_current_process(
                limits=limits,
                max_file_bytes=args.max_file_bytes,
                writable_dirs=[job_dir],
                writable_files=writable_files,
                readable=readable,
                use_landlock=use_landlock,
            )
        except BaseException as exc:  # subprocess only says "Exception occurred in preexec_fn"
            os.write(2, f"sandbox setup failed: {type(exc).__name__}: {exc}\n".encode())
            raise

    outcome = supervise(
        args.child,
        env=clean_env(os.environ, home),
        cwd=home,
        # Pipes over stdio (e.g. PipesK8sClient reads pod logs): the child's output must
        # reach our own; otherwise it goes to a file the parent reads after the run.
        stdio_log=None if pipes.messages_file is None else job_dir / STDIO_LOG,
        wall_seconds=limits.wall_seconds,
        cpu_seconds=limits.cpu_seconds,
        preexec=preexec,
        confinement=confinement,
    )
    pipes.close_with(outcome.payload(nonce))
    return 130 if outcome.limit == "interrupted" else 0


__all__ = [
    "MIN_LANDLOCK_ABI",
    "NONCE_ENV",
    "OUTCOME_KIND",
    "STDIO_LOG",
    "Outcome",
    "SandboxLimits",
    "clean_env",
    "confine_current_process",
    "confinement_refusal",
    "sandbox_command",
    "supervise",
]

if __name__ == "__main__":
    sys.exit(main())
