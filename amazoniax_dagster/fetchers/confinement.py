"""What confines a sandboxed fetcher process: its limits (:class:`SandboxLimits`) and
:func:`confine_current_process`, which the supervisor runs in the child after fork (rlimits,
Landlock, no capabilities). The supervisor is :mod:`amazoniax_dagster.fetchers.sandbox`."""

from __future__ import annotations

import ctypes
import os
import resource
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from amazoniax_dagster.fetchers import landlock

_PR_SET_PDEATHSIG = 1
_PR_CAPBSET_DROP = 24
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


@dataclass(frozen=True)
class SandboxLimits:
    """What one Python fetcher run may use. CPU and memory limits are per process."""

    cpu_seconds: int = 120
    memory_bytes: int = 1024**3  # address space (RLIMIT_AS), not resident memory
    wall_seconds: float = 600.0  # the whole run, every process together
    max_open_files: int = 256
    # Trees the child may not even read (Kubernetes/Docker secret mounts: the service
    # account token of a run pod). Everything else is readable.
    hidden_paths: tuple[str, ...] = ("/run/secrets", "/var/run/secrets")
    # Run without Landlock when the kernel lacks it. Only for development machines: the
    # child could then write anywhere the user can.
    allow_unconfined: bool = False

    def __post_init__(self) -> None:
        if self.cpu_seconds < 1 or self.memory_bytes < 32 * 1024**2 or self.wall_seconds <= 0:
            raise ValueError(
                "sandbox limits too small: cpu_seconds >= 1, memory_bytes >= 32 MiB and "
                f"wall_seconds > 0 are required (got {self.cpu_seconds}, {self.memory_bytes}, "
                f"{self.wall_seconds})"
            )


def confine_current_process(
    *,
    limits: SandboxLimits,
    max_file_bytes: int,
    writable_dirs: Sequence[Path],
    writable_files: Sequence[Path],
    readable: Sequence[Path],
    use_landlock: bool,
) -> None:
    """Apply every limit to the calling process; meant for ``preexec_fn`` (after fork).

    Order matters: rlimits and Landlock first, capabilities last (lowering rlimits needs
    none, and Landlock needs no-new-privs, which it sets itself).
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # the supervisor died: die too
    _set_limit(resource.RLIMIT_CPU, limits.cpu_seconds, limits.cpu_seconds + 1)
    _set_limit(resource.RLIMIT_AS, limits.memory_bytes, limits.memory_bytes)
    _set_limit(resource.RLIMIT_FSIZE, max_file_bytes, max_file_bytes)
    _set_limit(resource.RLIMIT_NOFILE, limits.max_open_files, limits.max_open_files)
    _set_limit(resource.RLIMIT_CORE, 0, 0)
    if use_landlock:
        landlock.restrict_self(
            writable_dirs=writable_dirs, writable_files=writable_files, readable=readable
        )
    _drop_capabilities(libc)


def _set_limit(which: int, soft: int, hard: int) -> None:
    _, current_hard = resource.getrlimit(which)
    if current_hard != resource.RLIM_INFINITY:
        soft, hard = min(soft, current_hard), min(hard, current_hard)
    resource.setrlimit(which, (soft, hard))


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def _drop_capabilities(libc: ctypes.CDLL) -> None:
    """Empty the bounding, ambient, effective, permitted and inheritable sets.

    With an empty bounding set even a uid-0 child gains no capability at exec. Dropping the
    bounding set needs CAP_SETPCAP; without it (not root) there is nothing to drop anyway.
    """
    last_cap = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    for cap in range(last_cap + 1):
        libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0)  # EPERM without CAP_SETPCAP: fine
    libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = _CapHeader(version=_LINUX_CAPABILITY_VERSION_3, pid=0)
    data = (_CapData * 2)()  # all zero
    if libc.capset(ctypes.byref(header), data) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"capset: {os.strerror(code)}")
