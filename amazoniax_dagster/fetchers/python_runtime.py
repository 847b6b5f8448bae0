"""Run a Python fetcher (``fetcher.py`` with ``fetch(config, out_dir, run_date)``) sandboxed.

The orchestrating side. Per run it makes a fresh job folder::

    <job dir>/            the only writable place of the sandboxed child (Landlock)
        input.json        config + secrets (0600); the child reads and deletes it first thing
        home/             cwd, HOME and TMPDIR of the child
        out/              the fetcher's out_dir
        stdio.log         the child's stdout and stderr

builds the sandbox command (:func:`.sandbox.sandbox_command` around :mod:`.pipes_entry`) and
hands it to a :class:`Launcher`, which runs it as a Dagster Pipes process and returns the
custom messages. Two launchers exist:

- :class:`SubprocessLauncher` (default, no Dagster needed): plays the orchestrator's part of
  the Pipes protocol itself, with the *public* ``dagster_pipes`` pieces: the context goes in a
  temp file and the child's ``PipesDefaultContextLoader`` reads it; the child's
  ``PipesDefaultMessageWriter`` appends JSON lines to a temp file that is read after the
  process ends. (``dagster.open_pipes_session`` needs a run's context, so it is no option
  outside a run.)
- ``resources.python_fetchers.DagsterPipesLauncher``: the same command through
  ``dagster.PipesSubprocessClient`` inside a run (logs go to the run's event log).

After the sandbox ends, every process it started is gone (the supervisor sees to it), so the
output folder is stable: each regular file is checked with ``paths.safe_relative_path`` and
moved to ``ctx.out_dir``; symbolic links and special files are left behind with a warning,
so a fetcher cannot smuggle a link to a file outside its folder. How the child ended becomes
a :class:`FetcherCodeError` (its exception, or which limit killed it) or, when the sandbox
itself could not work, an :class:`InfrastructureError`.
"""

from __future__ import annotations

import json
import logging
import os
import secrets as token_source
import shutil
import stat
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pydantic import SecretStr

from amazoniax_dagster.core.errors import FetcherCodeError, InfrastructureError
from amazoniax_dagster.core.paths import UnsafePathError, safe_relative_path
from amazoniax_dagster.core.redaction import Redactor, collect_secret_values, redact_mapping
from amazoniax_dagster.fetchers.base import FetchContext, FetchedFile, FetchReport
from amazoniax_dagster.fetchers.pipes_entry import ERROR_KIND, RESULT_KIND
from amazoniax_dagster.fetchers.sandbox import (
    NONCE_ENV,
    OUTCOME_KIND,
    STDIO_LOG,
    SandboxLimits,
    sandbox_command,
)

log = logging.getLogger(__name__)

CHILD_COMMAND = (sys.executable, "-I", "-B", "-m", "amazoniax_dagster.fetchers.pipes_entry")
MAX_MESSAGES_BYTES = 16 * 1024**2  # what the plain launcher reads of the child's messages
MAX_METADATA_BYTES = 64 * 1024  # the fetcher's own metadata, as JSON
SUPERVISOR_GRACE_SECONDS = 60.0  # beyond the wall clock before the supervisor itself is killed


@dataclass(frozen=True)
class SandboxCommand:
    """One sandbox run, ready for a launcher. ``env`` holds the nonce: never log it."""

    argv: tuple[str, ...]
    env: Mapping[str, str]
    cwd: Path
    extras: Mapping[str, Any]  # Pipes extras for the child; no secrets
    timeout_seconds: float  # the launcher kills the supervisor itself after this
    redact: Callable[[str], str] = field(default=str, repr=False)


class Launcher(Protocol):
    """Runs a sandbox command as a Dagster Pipes process."""

    def launch(self, command: SandboxCommand) -> list[Any]:
        """Run it to the end; return the custom message payloads, in the order sent."""
        ...


class SubprocessLauncher:
    """A plain subprocess, with the orchestrator's side of Pipes done through temp files."""

    def launch(self, command: SandboxCommand) -> list[Any]:
        from dagster_pipes import (
            DAGSTER_PIPES_CONTEXT_ENV_VAR,
            DAGSTER_PIPES_MESSAGES_ENV_VAR,
            PipesContextData,
            PipesDefaultContextLoader,
            PipesDefaultMessageWriter,
            encode_param,
        )

        with tempfile.TemporaryDirectory(prefix="amazoniax-pipes-") as tmp:
            context_file, messages_file = Path(tmp, "context.json"), Path(tmp, "messages.jsonl")
            context: PipesContextData = {
                "asset_keys": None,
                "code_version_by_asset_key": None,
                "provenance_by_asset_key": None,
                "partition_key": None,
                "partition_key_range": None,
                "partition_time_window": None,
                "run_id": f"amazoniax-{uuid.uuid4().hex}",
                "job_name": None,
                "retry_number": 0,
                "extras": dict(command.extras),
            }
            context_file.write_text(json.dumps(context))
            messages_file.touch()
            env = {
                **os.environ,
                **command.env,
                DAGSTER_PIPES_CONTEXT_ENV_VAR: encode_param(
                    {PipesDefaultContextLoader.FILE_PATH_KEY: str(context_file)}
                ),
                DAGSTER_PIPES_MESSAGES_ENV_VAR: encode_param(
                    {PipesDefaultMessageWriter.FILE_PATH_KEY: str(messages_file)}
                ),
            }
            try:
                completed = subprocess.run(
                    command.argv,
                    env=env,
                    cwd=command.cwd,
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    timeout=command.timeout_seconds,
                    check=False,
                )
            except subprocess.TimeoutExpired as exc:
                raise InfrastructureError(
                    f"the sandbox supervisor did not end within {command.timeout_seconds:g} s "
                    "and was killed"
                ) from exc
            except OSError as exc:
                raise InfrastructureError(f"cannot start the sandbox supervisor: {exc}") from exc
            if completed.returncode != 0:
                detail = command.redact(completed.stderr.decode(errors="replace")[-2000:].strip())
                raise InfrastructureError(
                    f"the sandbox supervisor exited with code {completed.returncode}: {detail}"
                )
            return _read_messages(messages_file, command.redact)


def _read_messages(path: Path, redact: Callable[[str], str]) -> list[Any]:
    """Custom payloads from a Pipes messages file; logs are re-logged here, masked."""
    payloads: list[Any] = []
    with path.open("rb") as handle:
        data = handle.read(MAX_MESSAGES_BYTES + 1)
    if len(data) > MAX_MESSAGES_BYTES:
        log.warning("python fetcher: only the first %d bytes of its messages were read", len(data))
    for line in data.splitlines():
        try:
            message = json.loads(line)
            method, params = message["method"], message.get("params") or {}
        except (ValueError, TypeError, KeyError):
            log.warning("python fetcher: ignored a malformed Pipes message")
            continue
        if method == "log":
            level = logging.getLevelName(str(params.get("level", "INFO")).upper())
            level = level if isinstance(level, int) else logging.INFO
            log.log(level, "python fetcher: %s", redact(str(params.get("message", ""))))
        elif method == "report_custom_message":
            payloads.append(params.get("payload"))
    return payloads


def run_python_fetcher(
    code_path: Path,
    ctx: FetchContext,
    limits: SandboxLimits,
    launcher: Launcher | None = None,
) -> FetchReport:
    """Run ``code_path``'s ``fetch`` in the sandbox; its files end up in ``ctx.out_dir``.

    Raises FetcherCodeError when the fetcher raised, wrote nothing valid or was killed by a
    limit, and InfrastructureError when the sandbox could not run it (no Landlock and
    ``allow_unconfined`` unset, supervisor failure).
    """
    code_path = code_path.resolve()
    name = f"{code_path.parent.name}/{code_path.name}"
    if not code_path.is_file():
        raise FetcherCodeError(f"python fetcher {name}: {code_path} is not a file")
    config = _revealed(ctx.config.model_dump())
    secret_values = collect_secret_values(config) | _secret_str_values(ctx.config.model_dump())
    redact = Redactor(secret_values)
    job_dir = Path(tempfile.mkdtemp(prefix="amazoniax-pyfetch-"))
    try:
        home, out = job_dir / "home", job_dir / "out"
        home.mkdir()
        out.mkdir()
        input_file = job_dir / "input.json"
        _write_private(
            input_file,
            {
                "config": config,
                "run_date": ctx.run_date.isoformat(),
                "out_dir": str(out),
                "secrets": sorted(secret_values),
            },
        )
        nonce = token_source.token_hex(16)
        command = SandboxCommand(
            argv=tuple(
                sandbox_command(
                    CHILD_COMMAND,
                    job_dir=job_dir,
                    home=home,
                    limits=limits,
                    max_file_bytes=ctx.limits.max_file_bytes,
                )
            ),
            env={NONCE_ENV: nonce},
            cwd=home,
            extras={"code_path": str(code_path), "input_file": str(input_file)},
            timeout_seconds=limits.wall_seconds + SUPERVISOR_GRACE_SECONDS,
            redact=redact,
        )
        payloads = (launcher or SubprocessLauncher()).launch(command)
        outcome = _outcome(payloads, nonce)
        result = _last(payloads, RESULT_KIND)
        _raise_for_failure(
            name, outcome, result, _last(payloads, ERROR_KIND), limits, job_dir, redact
        )
        assert result is not None  # _raise_for_failure refuses a run without a result
        report = FetchReport()
        _collect_files(out, ctx.out_dir, report, redact)
        report.metadata = _metadata(result.get("metadata"), outcome, report, redact)
        log.info(
            "python fetcher %s: %d file(s), %.1f s CPU, %s",
            name,
            len(report.files),
            outcome.get("cpu_seconds", 0.0),
            outcome.get("confinement"),
        )
        return report
    finally:
        _remove_tree(job_dir)


def _revealed(value: Any) -> Any:
    """``model_dump()`` output with every SecretStr replaced by its value (for the child)."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, Mapping):
        return {str(k): _revealed(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_revealed(v) for v in value]
    return value


def _secret_str_values(value: Any) -> set[str]:
    """Every SecretStr value, whatever its field is called (``auth_keys: {"x": ...}``)."""
    if isinstance(value, SecretStr):
        return {value.get_secret_value()}
    if isinstance(value, Mapping):
        return set().union(*(_secret_str_values(v) for v in value.values()))
    if isinstance(value, list | tuple):
        return set().union(*(_secret_str_values(v) for v in value))
    return set()


def _write_private(path: Path, data: Mapping[str, Any]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, default=str)


def _last(payloads: list[Any], kind: str) -> dict[str, Any] | None:
    found = [p for p in payloads if isinstance(p, dict) and p.get("kind") == kind]
    return found[-1] if found else None


def _outcome(payloads: list[Any], nonce: str) -> dict[str, Any]:
    """The supervisor's outcome: the last message, carrying our nonce (the child can't)."""
    last = payloads[-1] if payloads else None
    if not (isinstance(last, dict) and last.get("kind") == OUTCOME_KIND):
        raise InfrastructureError(
            "the sandbox supervisor ended without reporting how the python fetcher ended"
        )
    if not token_source.compare_digest(str(last.get("nonce", "")), nonce):
        raise InfrastructureError("the sandbox outcome is not the supervisor's (wrong nonce)")
    return last


def _raise_for_failure(
    name: str,
    outcome: dict[str, Any],
    result: dict[str, Any] | None,
    error: dict[str, Any] | None,
    limits: SandboxLimits,
    job_dir: Path,
    redact: Callable[[str], str],
) -> None:
    """Turn every way the run can fail into one error of the product's tree."""
    if outcome.get("refused"):
        raise InfrastructureError(str(outcome["refused"]))
    if outcome.get("setup_error"):
        raise InfrastructureError(f"python fetcher {name}: {redact(str(outcome['setup_error']))}")
    limit, signame = outcome.get("limit"), outcome.get("signal")
    if limit == "interrupted":
        raise InfrastructureError(f"python fetcher {name} was stopped: the run was interrupted")
    if limit == "wall_clock":
        raise FetcherCodeError(
            f"python fetcher {name} was killed: it ran longer than its wall-clock limit of "
            f"{limits.wall_seconds:g} s"
        )
    if limit == "cpu_time":
        raise FetcherCodeError(
            f"python fetcher {name} was killed: it used its CPU time limit of "
            f"{limits.cpu_seconds} s"
        )
    if error is not None:
        log.warning("python fetcher %s failed:\n%s", name, redact(str(error.get("traceback", ""))))
        kind, message = str(error.get("type")), redact(str(error.get("message", "")))
        if kind == "MemoryError":
            raise FetcherCodeError(
                f"python fetcher {name} ran out of memory: its memory limit of "
                f"{limits.memory_bytes // 1024**2} MiB (address space) was reached (MemoryError)"
            )
        hint = ""
        if kind == "PermissionError" or (kind == "OSError" and "File too large" in message):
            hint = (
                " (the sandbox lets a fetcher write only below its out_dir and home folder, "
                "each file up to max_file_bytes, and touch no other process)"
            )
        where = "while loading" if error.get("phase") == "load" else "raised"
        raise FetcherCodeError(f"python fetcher {name} {where} {kind}: {message}{hint}")
    output = redact(_tail(job_dir / STDIO_LOG))
    if signame is not None:
        why = " (the memory limit or the system's OOM killer)" if signame == "SIGKILL" else ""
        raise FetcherCodeError(f"python fetcher {name} was killed by {signame}{why}: {output}")
    if outcome.get("returncode") != 0:
        raise FetcherCodeError(
            f"python fetcher {name} exited with code {outcome.get('returncode')}: {output}"
        )
    if result is None:
        raise FetcherCodeError(f"python fetcher {name} ended without reporting a result")


def _tail(path: Path, limit: int = 2000) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(max(0, path.stat().st_size - limit))
            text = handle.read().decode(errors="replace").strip()
    except OSError:
        return "(no output)"
    return text or "(no output)"


def _collect_files(src: Path, dest: Path, report: FetchReport, redact: Redactor) -> None:
    """Move every regular file with a safe name from ``src`` to ``dest``; warn about others."""
    for dirpath, dirnames, filenames in os.walk(src, followlinks=False):
        base = Path(dirpath)
        for name in sorted([*dirnames, *filenames]):
            path = base / name
            relative = path.relative_to(src).as_posix()
            mode = path.lstat().st_mode
            if stat.S_ISDIR(mode):
                continue
            shown = redact(repr(relative))
            if stat.S_ISLNK(mode):
                report.warnings.append(f"ignored {shown}: symbolic links are not collected")
                continue
            if not stat.S_ISREG(mode):
                report.warnings.append(f"ignored {shown}: not a regular file")
                continue
            try:
                relative.encode()
                safe_relative_path(relative)
            except (UnsafePathError, UnicodeEncodeError) as exc:
                report.warnings.append(f"ignored {shown}: {exc}")
                continue
            target = dest / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            size = path.stat().st_size
            shutil.move(path, target)
            report.files.append(FetchedFile(relative_path=relative, size=size))
    report.files.sort(key=lambda f: f.relative_path)


def _metadata(
    fetcher_metadata: Any, outcome: dict[str, Any], report: FetchReport, redact: Redactor
) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    if isinstance(fetcher_metadata, Mapping):
        masked = _masked(redact_mapping(fetcher_metadata), redact)
        if len(json.dumps(masked)) <= MAX_METADATA_BYTES:
            metadata.update(masked)
        else:
            report.warnings.append(
                f"the fetcher's metadata was dropped: larger than {MAX_METADATA_BYTES} bytes"
            )
    metadata["sandbox"] = {
        "confinement": outcome.get("confinement"),
        "cpu_seconds": outcome.get("cpu_seconds"),
        "max_rss_mb": round(int(outcome.get("max_rss_bytes") or 0) / 1024**2, 1),
        "wall_seconds": outcome.get("wall_seconds"),
    }
    return metadata


def _masked(value: Any, redact: Redactor) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _masked(v, redact) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v, redact) for v in value]
    if isinstance(value, str):
        return redact(value)
    return value


def _remove_tree(root: Path) -> None:
    """Delete the job folder, even where the fetcher took the permissions off its folders."""
    try:
        root.chmod(0o700)
        for dirpath, dirnames, _ in os.walk(root):
            for name in dirnames:
                path = Path(dirpath, name)
                if not path.is_symlink():
                    path.chmod(0o700)
    except OSError:
        pass
    shutil.rmtree(root, ignore_errors=True)
    if root.exists():
        log.warning("could not remove the python fetcher's job folder %s", root)


__all__ = [
    "Launcher",
    "SandboxCommand",
    "SandboxLimits",
    "SubprocessLauncher",
    "run_python_fetcher",
]
