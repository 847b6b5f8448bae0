"""What the FTP and SFTP sources share: a bounded walk of a remote tree and a connection pool.

The walk turns directory listings into ``RemoteFile``/``RejectedFile`` the way the S3 source
does: names are checked with :func:`safe_relative_path` *before* the pattern, so a hostile
name is always reported and never downloaded. It can never hang or explode:

- directories are listed depth-first in name order; only when ``FilePattern.recursive``;
- a directory whose server-wide identity (FTP's MLSD ``unique`` fact) was already listed is
  skipped, which breaks symlink loops on servers that present links as plain directories;
- more than ``max_depth`` levels or ``max_entries`` names in total is a ``ConfigError`` (a
  loop the server hides, or a pattern far too broad for the tree);
- a symlink (when the listing shows one) is resolved by the protocol: a link to a file is
  listed under its own name, a link to a directory is never descended. Its target is either
  inside ``remote_path``, and then listed under its real path anyway, or outside, and then
  out of bounds; either way following it could only add duplicates or loops.

The pool exists because neither protocol can run two transfers on one channel: an FTP
control connection carries one data transfer at a time, and a paramiko ``SFTPClient`` must
not be used from two threads. It hands each borrower its own connection, never more than
``size`` at once; a connection that failed is closed, not returned; and once creating a
connection failed with a ``ConfigError`` (a refused login) every later borrow fails the same
way without contacting the server again, so parallel downloads cannot turn one wrong
password into a burst of login attempts (and a locked account). A server that refuses
connections beyond some number (per-user limits) shrinks the pool to what it accepted
instead of failing the job.
"""

from __future__ import annotations

import logging
import posixpath
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from itertools import islice
from typing import Generic, Literal, Protocol, TypeVar

from amazoniax_dagster.core.errors import AmazoniaxError, ConfigError, TransientError
from amazoniax_dagster.core.messages import FtpSourceConfig
from amazoniax_dagster.core.paths import FilePattern, UnsafePathError, safe_relative_path
from amazoniax_dagster.sources.base import RejectedFile, RemoteFile

log = logging.getLogger(__name__)

EntryKind = Literal["file", "dir", "link", "unknown", "other"]

MAX_DEPTH = 32
MAX_ENTRIES = 1_000_000


@dataclass(frozen=True)
class DirEntry:
    """One name in a directory listing, as far as the listing tells.

    ``kind`` is ``link`` for a symlink the listing shows as one, ``unknown`` when the
    listing gives names only (FTP NLST); both are resolved through the tree before use.
    ``identity`` is a server-wide id of a directory, when the server gives one.
    """

    name: str
    kind: EntryKind
    size: int | None = None
    mtime: datetime | None = None
    identity: str | None = None


class Unlistable(Exception):
    """The server refused to list a directory (missing, not a directory, no permission).

    ``reject`` asks the walk to report the directory as a ``RejectedFile`` (a name the
    client cannot handle) rather than only log it.
    """

    def __init__(self, reason: str, *, reject: bool = False) -> None:
        super().__init__(reason)
        self.reject = reject


class RemoteTree(Protocol):
    """The protocol-specific half of a walk."""

    def list_dir(self, path: str) -> Iterable[DirEntry]:
        """The entries of ``path``; raises :class:`Unlistable` when the server refuses.

        May be lazy: the walk stops reading past its entry bound (and then fails, so the
        connection is discarded with whatever the server still had to say).
        """
        ...

    def resolve(self, path: str, entry: DirEntry) -> DirEntry | None:
        """A ``file`` entry with size and mtime filled in, a ``dir`` entry, or None to skip.

        Called for links, for names of unknown kind and for files the listing gave no
        size or time for; only when the name can matter (the pattern or recursion needs it).
        """
        ...


@dataclass(frozen=True)
class WalkLimits:
    max_depth: int = MAX_DEPTH
    max_entries: int = MAX_ENTRIES


def join_remote(base: str, name: str) -> str:
    """``/data`` + ``a.csv`` -> ``/data/a.csv``; the login directory ``.`` adds nothing."""
    if base in ("", "."):
        return name
    return posixpath.join(base, name)


def normalize_root(remote_path: str | None) -> str:
    """``/data/`` -> ``/data``; empty -> ``.`` (the login directory); relative stays relative."""
    text = (remote_path or "").strip()
    if not text:
        return "."
    return posixpath.normpath(text) if text != "/" else "/"


def unsafe_reason(name: str, relative: str) -> str | None:
    """Why a listed name cannot become a file of the job, or None when it is fine."""
    if "/" in name:
        return "file name contains '/' (a listing entry must be a single name)"
    try:  # also refuses a name that is not valid UTF-8 (kept by surrogateescape)
        safe_relative_path(relative)
    except UnsafePathError as exc:
        return str(exc)
    return None


@dataclass
class _Walk:
    tree: RemoteTree
    root: str
    pattern: FilePattern
    limits: WalkLimits
    entries: int = 0

    def run(self, root_identity: str | None) -> Iterator[RemoteFile | RejectedFile]:
        visited: set[str] = {root_identity} if root_identity else set()
        stack: list[tuple[str, str, int]] = [(self.root, "", 0)]
        while stack:
            path, rel_dir, depth = stack.pop()
            listing = self._list(path, rel_dir)
            if isinstance(listing, RejectedFile):
                yield listing
                continue
            subdirs: list[tuple[str, str, int]] = []
            for entry in listing:
                if entry.name in (".", ".."):
                    continue
                key = join_remote(path, entry.name)
                rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
                outcome = self._entry(entry, key, rel)
                if isinstance(outcome, RemoteFile | RejectedFile):
                    yield outcome
                elif isinstance(outcome, DirEntry) and self._first_visit(outcome, key, visited):
                    self._check_depth(depth + 1, key)
                    subdirs.append((key, rel, depth + 1))
            stack.extend(reversed(subdirs))

    @staticmethod
    def _first_visit(entry: DirEntry, key: str, visited: set[str]) -> bool:
        """False for a directory already listed under another name (a link or a loop)."""
        if entry.identity is None:
            return True
        if entry.identity in visited:
            log.info("not listing %r again (a link or loop to a listed one)", key)
            return False
        visited.add(entry.identity)
        return True

    def _check_depth(self, depth: int, key: str) -> None:
        if depth > self.limits.max_depth:
            raise ConfigError(
                f"the tree below {self.root!r} is deeper than {self.limits.max_depth} levels "
                f"at {key!r} (a symlink loop the server does not show, or a file_pattern too "
                "broad for this tree)"
            )

    def _list(self, path: str, rel_dir: str) -> list[DirEntry] | RejectedFile:
        remaining = self.limits.max_entries - self.entries
        try:
            # islice: a server streaming an endless directory stops at the bound, not at OOM.
            listing = sorted(islice(self.tree.list_dir(path), remaining + 1), key=lambda e: e.name)
        except Unlistable as exc:
            if not rel_dir:
                raise ConfigError(f"cannot list remote_path {self.root!r}: {exc}") from exc
            if exc.reject:
                return RejectedFile(path, f"directory not listed: {exc}")
            log.warning("skipping directory %r: %s", path, exc)
            return []
        self.entries += len(listing)
        if self.entries > self.limits.max_entries:
            raise ConfigError(
                f"the tree below {self.root!r} has more than {self.limits.max_entries:,} "
                "entries; narrow remote_path or file_pattern"
            )
        return listing

    def _entry(
        self, entry: DirEntry, key: str, rel: str
    ) -> RemoteFile | RejectedFile | DirEntry | None:
        """What one listed name becomes: a file, a rejection, a directory to descend, nothing."""
        if not self._may_matter(entry, rel):
            return None
        reason = unsafe_reason(entry.name, rel)
        if reason is not None:
            return RejectedFile(key, reason)
        if entry.kind in ("file", "link") and not self.pattern.matches(rel):
            return None
        if entry.kind in ("link", "unknown") or (
            entry.kind == "file" and (entry.size is None or entry.mtime is None)
        ):
            resolved = self.tree.resolve(key, entry)
            if resolved is None:
                return None
            entry = replace(resolved, name=entry.name)
        if entry.kind == "dir":
            return entry if self.pattern.recursive else None
        if entry.kind == "file" and self.pattern.matches(rel):
            return RemoteFile(
                key=key, relative_path=rel, size=entry.size, etag=None, mtime=entry.mtime
            )
        return None

    def _may_matter(self, entry: DirEntry, rel: str) -> bool:
        """Whether a name is looked at at all; unsafe file names are reported whatever the
        pattern says (as the S3 source does), directories only when the walk would descend."""
        if entry.kind == "dir":
            return self.pattern.recursive
        if entry.kind == "unknown":
            return self.pattern.recursive or self.pattern.matches(rel)
        return entry.kind in ("file", "link")


def walk(
    tree: RemoteTree,
    root: str,
    pattern: FilePattern,
    *,
    limits: WalkLimits | None = None,
    root_identity: str | None = None,
) -> Iterator[RemoteFile | RejectedFile]:
    """Every file below ``root`` that ``pattern`` selects, and every name refused on the way."""
    return _Walk(tree, root, pattern, limits or WalkLimits()).run(root_identity)


def pool_size(config: FtpSourceConfig, limit: int | None) -> int:
    """How many connections a source may open: the channel's ``max_connections`` (16 unless
    the channel says otherwise), never more than ``limit`` (the job's)."""
    wanted = config.max_connections
    return max(1, min(wanted, limit or wanted))


C = TypeVar("C")


class Lease(Generic[C]):
    """A borrowed connection; set ``broken`` when it must not be reused (state unknown)."""

    def __init__(self, conn: C) -> None:
        self.conn = conn
        self.broken = False


class ConnectionPool(Generic[C]):
    """At most ``size`` connections, each used by one borrower at a time.

    Servers often allow fewer connections per user than a job would like (an FTP ``421 Too
    many connections``, ProFTPD's ``530`` for ``MaxClientsPerUser``, OpenSSH's
    ``MaxSessions``). When opening one more connection fails while others are open, the
    pool does not fail the borrower: it shrinks to the connections it has and the borrower
    waits for one of them. Only a failure with no connection open is raised (and a refused
    first login is remembered, see the module docstring).
    """

    def __init__(
        self,
        factory: Callable[[], C],
        *,
        close: Callable[[C], None],
        healthy: Callable[[C], bool],
        size: int,
        idle_check_seconds: float = 10.0,
    ) -> None:
        self._factory = factory
        self._close = close
        self._healthy = healthy
        self.size = max(1, size)
        self._cond = threading.Condition()
        self._borrowed = 0
        self._open = 0  # connections that exist: borrowed, idle or being opened
        self._idle: list[tuple[C, float]] = []
        self._idle_check = idle_check_seconds
        self._fatal: ConfigError | None = None
        self._closed = False

    @contextmanager
    def borrow(self) -> Iterator[Lease[C]]:
        """A connection for the ``with`` block; discarded if the block raises or marks it."""
        lease = Lease(self._take())
        try:
            yield lease
        except BaseException:
            self._return(lease.conn, reuse=False)
            raise
        self._return(lease.conn, reuse=not lease.broken)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._open -= len(idle)
            self._cond.notify_all()
        for conn, _ in idle:
            self._close_quietly(conn)

    def _take(self) -> C:
        """Wait for a free slot, then reuse an idle connection or open one in it."""
        while True:
            with self._cond:
                while self._borrowed >= self.size and not self._closed:
                    self._cond.wait()
                if self._closed:
                    raise RuntimeError("the source is closed")
                if self._fatal is not None:
                    raise ConfigError(str(self._fatal)) from self._fatal
                self._borrowed += 1
                conn, since = self._idle.pop() if self._idle else (None, 0.0)
                if conn is None:
                    self._open += 1
            if conn is not None:
                if time.monotonic() - since < self._idle_check or self._healthy(conn):
                    return conn
                self._close_quietly(conn)  # stale: a new one takes its place (and count)
            try:
                return self._factory()
            except BaseException as exc:
                if not self._shrink(exc):
                    raise

    def _shrink(self, exc: BaseException) -> bool:
        """After a failed open: True to wait for an open connection instead of failing."""
        with self._cond:
            self._open -= 1
            self._borrowed -= 1
            self._cond.notify()
            if self._open > 0 and isinstance(exc, AmazoniaxError):
                if self._open < self.size:
                    log.info(
                        "the server refused connection %d (%s); going on with %d",
                        self._open + 1,
                        exc,
                        self._open,
                    )
                    self.size = self._open
                return True
            if isinstance(exc, ConfigError):
                self._fatal = exc
            return False

    def _return(self, conn: C, *, reuse: bool) -> None:
        """Back to the idle list, or closed; the slot is free only after that."""
        if reuse:
            with self._cond:
                if not self._closed:
                    self._idle.append((conn, time.monotonic()))
                    self._borrowed -= 1
                    self._cond.notify()
                    return
        self._close_quietly(conn)
        with self._cond:
            self._open -= 1
            self._borrowed -= 1
            self._cond.notify()

    def _close_quietly(self, conn: C) -> None:
        try:
            self._close(conn)
        except Exception as exc:  # closing a broken connection may fail; it is gone anyway
            log.debug("closing a connection failed: %s", exc)


def network_error(exc: BaseException, what: str, detail: str) -> AmazoniaxError | None:
    """The error class of a socket-level failure, shared by the FTP and SFTP translators
    (``detail`` is the already scrubbed text); None when ``exc`` is not one."""
    if isinstance(exc, socket.gaierror):
        if exc.errno == socket.EAI_AGAIN:
            return TransientError(f"cannot {what}: cannot resolve the host right now ({detail})")
        return ConfigError(f"cannot {what}: the host does not resolve ({detail})")
    if isinstance(exc, TimeoutError):
        return TransientError(f"cannot {what}: timed out")
    if isinstance(exc, EOFError):
        return TransientError(f"cannot {what}: the server closed the connection")
    if isinstance(exc, OSError):
        return TransientError(f"cannot {what}: {type(exc).__name__}: {detail}")
    return None
