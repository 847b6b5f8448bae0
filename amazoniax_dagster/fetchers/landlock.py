"""Linux Landlock through its three system calls, for confining a process's file writes.

Landlock (Linux 5.13+) lets an unprivileged process restrict *itself* and every process it
starts afterwards; nothing can lift the restriction again. The steps are always the same:

1. ``landlock_create_ruleset`` with the set of access rights the ruleset *handles*: every
   handled right is denied unless a rule grants it beneath some path;
2. ``landlock_add_rule`` once per path: "beneath this directory (or on this file) these
   handled rights are allowed";
3. ``prctl(PR_SET_NO_NEW_PRIVS)`` (required unless the caller has CAP_SYS_ADMIN), then
   ``landlock_restrict_self``.

A Landlocked process also cannot ptrace processes outside its domain, which includes reading
``/proc/<pid>/environ`` or ``/proc/<pid>/mem`` of its parent. ABI 6 adds *scopes*: no signals
to, and no abstract UNIX socket connections towards, processes outside the domain.

Rights appear per ABI version (``landlock_create_ruleset(NULL, 0, VERSION)`` answers it):
v1 the 13 basic file rights, v2 ``REFER`` (link/rename across folders), v3 ``TRUNCATE``,
v4 TCP bind/connect, v5 ``IOCTL_DEV``, v6 scopes. A ruleset must only name rights the running
kernel knows, so :func:`restrict_self` handles exactly those of :func:`abi_version`.

The syscall numbers 444-446 are the same on every architecture Linux added them to after the
syscall tables were unified (5.1); only alpha differs, which this project does not run on.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
from collections.abc import Sequence
from pathlib import Path

SYS_LANDLOCK_CREATE_RULESET = 444
SYS_LANDLOCK_ADD_RULE = 445
SYS_LANDLOCK_RESTRICT_SELF = 446
PR_SET_NO_NEW_PRIVS = 38

_CREATE_RULESET_VERSION = 1 << 0
_RULE_PATH_BENEATH = 1
_RULE_NET_PORT = 2

# File-system access rights (include/uapi/linux/landlock.h).
FS_EXECUTE = 1 << 0
FS_WRITE_FILE = 1 << 1
FS_READ_FILE = 1 << 2
FS_READ_DIR = 1 << 3
FS_REMOVE_DIR = 1 << 4
FS_REMOVE_FILE = 1 << 5
FS_MAKE_CHAR = 1 << 6
FS_MAKE_DIR = 1 << 7
FS_MAKE_REG = 1 << 8
FS_MAKE_SOCK = 1 << 9
FS_MAKE_FIFO = 1 << 10
FS_MAKE_BLOCK = 1 << 11
FS_MAKE_SYM = 1 << 12
FS_REFER = 1 << 13  # ABI 2
FS_TRUNCATE = 1 << 14  # ABI 3
FS_IOCTL_DEV = 1 << 15  # ABI 5
NET_BIND_TCP = 1 << 0  # ABI 4
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
SCOPE_SIGNAL = 1 << 1  # ABI 6

READ_RIGHTS = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR
# Rights that make sense on a regular file (the kernel refuses directory rights there).
_FILE_RIGHTS = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV


class LandlockError(OSError):
    """The kernel refused to set up the Landlock ruleset."""


class _RulesetAttr(ctypes.Structure):
    # struct landlock_ruleset_attr; the kernel accepts a larger struct if the extra is zero,
    # so the full v6 layout works on older kernels as long as unknown fields stay 0.
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1  # struct landlock_path_beneath_attr is __attribute__((packed))
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _syscall(number: int, *args: object) -> int:
    result = int(_libc.syscall(number, *args))
    if result < 0:
        code = ctypes.get_errno()
        raise LandlockError(code, os.strerror(code))
    return result


def abi_version() -> int:
    """The Landlock ABI the kernel offers, or 0 when Landlock is missing or disabled."""
    try:
        return _syscall(
            SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), _CREATE_RULESET_VERSION
        )
    except LandlockError as exc:
        if exc.errno in (errno.ENOSYS, errno.EOPNOTSUPP, errno.EPERM):
            return 0  # not built in, disabled at boot (lsm=), or blocked by seccomp
        raise


def handled_fs_rights(abi: int) -> int:
    """Every file-system right the given ABI knows (all of them are denied unless granted)."""
    rights = (FS_MAKE_SYM << 1) - 1  # v1: bits 0..12
    if abi >= 2:
        rights |= FS_REFER
    if abi >= 3:
        rights |= FS_TRUNCATE
    if abi >= 5:
        rights |= FS_IOCTL_DEV
    return rights


def restrict_self(
    *,
    writable_dirs: Sequence[Path],
    writable_files: Sequence[Path] = (),
    readable: Sequence[Path] = (Path("/"),),
) -> int:
    """Confine this process (and its future children) for good; return the ABI used.

    Everything beneath ``readable`` may be read and executed (see :func:`readable_except`);
    everything beneath ``writable_dirs`` may also be created, written, renamed and removed;
    each of ``writable_files`` may be written (appended to, not truncated). All other writes
    fail with EACCES. With ABI 4+ no TCP port may be bound (a fetcher connects, it never
    listens); with ABI 6+ no signal reaches, and no abstract UNIX socket connects to, a
    process outside.

    Call it in the process to confine (e.g. ``preexec_fn``); it does not return on partial
    success: any failure raises :class:`LandlockError` before ``restrict_self`` takes effect.
    """
    abi = abi_version()
    if abi < 1:
        raise LandlockError(errno.EOPNOTSUPP, "Landlock is not available in this kernel")
    handled = handled_fs_rights(abi)
    attr = _RulesetAttr(
        handled_access_fs=handled,
        handled_access_net=NET_BIND_TCP if abi >= 4 else 0,
        scoped=(SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL) if abi >= 6 else 0,
    )
    ruleset_fd = _syscall(
        SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)), 0
    )
    try:
        for path in readable:
            _add_path_rule(ruleset_fd, path, READ_RIGHTS & handled)
        for path in writable_dirs:
            _add_path_rule(ruleset_fd, path, handled)
        for path in writable_files:
            _add_path_rule(ruleset_fd, path, READ_RIGHTS | FS_WRITE_FILE)
        _libc.prctl.restype = ctypes.c_int
        if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            code = ctypes.get_errno()
            raise LandlockError(code, f"prctl(PR_SET_NO_NEW_PRIVS): {os.strerror(code)}")
        _syscall(SYS_LANDLOCK_RESTRICT_SELF, ruleset_fd, 0)
    finally:
        os.close(ruleset_fd)
    return abi


def readable_except(hidden: Sequence[Path], root: Path = Path("/")) -> list[Path]:
    """Paths that together cover everything below ``root`` except the ``hidden`` trees.

    Landlock only allows, it cannot deny part of an allowed tree; so to hide
    ``/run/secrets`` the rules name every sibling on the way down instead (``/bin``,
    ``/etc``, ..., ``/run/lock``, ...). Symbolic links that lead into a hidden tree are left
    out (``/var/run`` -> ``/run``): a rule on a link is a rule on its target.
    """
    targets = {path.resolve() for path in hidden if path.exists()}
    if not targets:
        return [root]
    readable: list[Path] = []

    def visit(directory: Path) -> None:
        for entry in sorted(directory.iterdir()):
            real = entry.resolve()
            if real in targets:
                continue
            if any(target.is_relative_to(real) for target in targets):
                if not entry.is_symlink() and entry.is_dir():
                    visit(entry)  # a hidden tree is below: allow its siblings one by one
                continue
            readable.append(entry)

    visit(root)
    return readable


def _add_path_rule(ruleset_fd: int, path: Path, rights: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return  # gone since it was listed (a /proc entry, a broken link): nothing to allow
    try:
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            rights &= _FILE_RIGHTS  # directory rights are refused on files
        rule = _PathBeneathAttr(allowed_access=rights, parent_fd=fd)
        try:
            _syscall(SYS_LANDLOCK_ADD_RULE, ruleset_fd, _RULE_PATH_BENEATH, ctypes.byref(rule), 0)
        except LandlockError as exc:
            raise LandlockError(exc.errno, f"landlock_add_rule({path}): {exc.strerror}") from exc
    finally:
        os.close(fd)


__all__ = [
    "LandlockError",
    "abi_version",
    "handled_fs_rights",
    "readable_except",
    "restrict_self",
]
