"""FTP and explicit FTPS channels (``protocol: ftp | ftps``), with ftplib.

Connecting: the host is checked against the :class:`NetworkPolicy` first, and the connection
goes to one of exactly the addresses that were checked (no second DNS lookup that could answer
differently). Passive mode only; ftplib connects the data channel to the control connection's
peer, never to the address a PASV reply names. Every socket has ``timeout_seconds``. FTPS is
explicit (``AUTH TLS`` on port 21), data channels protected (``PROT P``) and resuming the
control channel's TLS session, which vsftpd and others require; the certificate is verified
against the system CAs, or only ``ca_cert_pem`` when given (self-signed servers).

Listing: MLSD where the server advertises MLST (exact size, UTC modification time and the
``unique`` fact that breaks symlink loops), else LIST parsed as unix ``ls -l`` lines, else NLST;
``SIZE``/``MDTM`` are asked per file only when the listing left them unknown, and only for
files the pattern selects. A LIST time has minute (or, for old files, day) precision in the
server's zone, which is unknown and read as UTC: consistent from run to run, which is what
skipping unchanged files needs, but a same-size rewrite within the minute of a fetch is
invisible to it; ``verify: always_hash`` downloads everything for such servers. Listings are
read as raw bytes and split on CRLF (on LF only when the server never sends CRLF), so a name
containing a newline stays one name and is refused, rather than becoming two.

Transfers: one per control connection, so the source keeps a pool of up to ``max_connections``
logged-in connections (16 when the channel does not say; fewer when the server refuses more,
see ``remote_tree``); each :meth:`FtpSource.open` borrows one for the transfer and gives it
back after the server's final reply. A connection whose transfer failed or was not read to
the end is closed, never reused. Error translation (house rule 3) is in
:func:`translate_ftp_error`; walking and pooling are shared with SFTP in ``remote_tree``.
"""

from __future__ import annotations

import errno
import ftplib
import logging
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO, cast

from amazoniax_dagster.core.errors import ConfigError, TransientError
from amazoniax_dagster.core.messages import FtpSourceConfig
from amazoniax_dagster.core.netpolicy import NetworkPolicy
from amazoniax_dagster.core.paths import FilePattern
from amazoniax_dagster.sources.base import RejectedFile, RemoteFile
from amazoniax_dagster.sources.ftp_protocol import (
    _reply_code,
    _scrub,
    ftp_errors,
    parse_features,
    parse_ftp_time,
    parse_list_line,
    parse_mlsd_line,
    parse_nlst_name,
    parse_size_reply,
    split_listing_lines,
    translate_ftp_error,
)
from amazoniax_dagster.sources.remote_tree import (
    ConnectionPool,
    DirEntry,
    Unlistable,
    WalkLimits,
    normalize_root,
    pool_size,
    walk,
)

log = logging.getLogger(__name__)

DEFAULT_PORT = 21
MAX_LISTING_BYTES = 256 * 1024 * 1024
_READ_ALL_CHUNK = 1024 * 1024
_NOT_IMPLEMENTED = {"500", "502", "504"}


# --- pure parsing -------------------------------------------------------------------------


# --- errors -------------------------------------------------------------------------------


# --- connections --------------------------------------------------------------------------


class _FtpTls(ftplib.FTP_TLS):
    """FTP_TLS whose data channels resume the control channel's TLS session.

    vsftpd (``require_ssl_reuse``, on by default), ProFTPD and FileZilla Server refuse data
    connections that do not, and the standard library does not do it.
    """

    _protect_data = False

    def prot_p(self) -> str:
        reply = super().prot_p()
        self._protect_data = True
        return reply

    def ntransfercmd(
        self, cmd: str, rest: int | str | None = None
    ) -> tuple[socket.socket, int | None]:
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._protect_data:
            session = self.sock.session if isinstance(self.sock, ssl.SSLSocket) else None
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=session)
        return conn, size


@dataclass
class _FtpConnection:
    ftp: ftplib.FTP
    features: frozenset[str]
    mlsd: bool


def _close_connection(conn: _FtpConnection) -> None:
    """Close without QUIT: a connection is discarded after a failure, when a silent server
    would keep a QUIT waiting for the whole timeout; servers take an abrupt close in stride."""
    conn.ftp.close()


def _still_connected(conn: _FtpConnection) -> bool:
    try:
        conn.ftp.voidcmd("NOOP")
    except ftp_errors():
        return False
    return True


def _ssl_context(config: FtpSourceConfig, where: str) -> ssl.SSLContext:
    """Verify against system CAs, or only ``ca_cert_pem``; unverified only when asked."""
    if not config.tls_verify:
        log.warning("TLS certificate verification is OFF for %s (tls_verify: false)", where)
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif config.ca_cert_pem:
        try:
            context = ssl.create_default_context(cadata=config.ca_cert_pem)
        except (ssl.SSLError, ValueError) as exc:
            raise ConfigError(f"ca_cert_pem for {where} is not a PEM certificate: {exc}") from exc
    else:
        context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


# --- the source ---------------------------------------------------------------------------


class FtpSource:
    """An FTP or FTPS folder as a :class:`~amazoniax_dagster.sources.base.Source`."""

    def __init__(
        self,
        config: FtpSourceConfig,
        *,
        policy: NetworkPolicy,
        max_connections: int | None = None,
        limits: WalkLimits | None = None,
    ) -> None:
        if config.protocol not in ("ftp", "ftps"):
            raise ConfigError(f"FtpSource serves ftp and ftps, not {config.protocol!r}")
        self.host = config.host.strip()
        self.port = config.port or DEFAULT_PORT
        self.username = config.username
        self.root = normalize_root(config.remote_path)
        self.pattern = FilePattern.parse(config.file_pattern)
        self.location = _location(config.protocol, self.host, self.port, self.root)
        self._password = config.password.get_secret_value() if config.password else ""
        self._timeout = config.timeout_seconds
        self._tls = _ssl_context(config, self.location) if config.protocol == "ftps" else None
        self._policy = policy
        self._addresses: list[str] | None = None
        self._limits = limits or WalkLimits()
        self._pool: ConnectionPool[_FtpConnection] = ConnectionPool(
            self._connect,
            close=_close_connection,
            healthy=_still_connected,
            size=pool_size(config, max_connections),
        )

    def list_files(self) -> Iterator[RemoteFile | RejectedFile]:
        """Walk ``remote_path`` on one pooled connection, held until the iteration ends."""
        what = f"list {self.location}"
        with self._pool.borrow() as lease:
            try:
                tree = _FtpTree(lease.conn)
                root_identity = tree.check_root(self.root)
                yield from walk(
                    tree, self.root, self.pattern, limits=self._limits, root_identity=root_identity
                )
            except ftp_errors() as exc:
                raise translate_ftp_error(exc, what) from exc

    @contextmanager
    def open(self, remote: RemoteFile) -> Iterator[BinaryIO]:
        what = f"download {remote.key!r} from {self.location}"
        with self._pool.borrow() as lease:
            try:
                data = lease.conn.ftp.transfercmd(f"RETR {remote.key}")
            except ftplib.error_perm as exc:
                # Listed a moment ago, gone or unreadable now: a re-run relists (as S3 NoSuchKey).
                raise TransientError(f"cannot {what}: server said {exc}") from exc
            except ftp_errors() as exc:
                raise translate_ftp_error(exc, what) from exc
            stream = _RetrStream(data, lease.conn.ftp, what)
            try:
                yield cast(BinaryIO, stream)
            finally:
                if not stream.finish():
                    lease.broken = True

    def close(self) -> None:
        self._pool.close()

    # --- connecting

    def _connect(self) -> _FtpConnection:
        what = f"connect to {self.location}"
        ftp: ftplib.FTP = (
            _FtpTls(context=self._tls, timeout=self._timeout)
            if self._tls is not None
            else ftplib.FTP(timeout=self._timeout)
        )
        try:
            self._open_control(ftp)
            self._login(ftp)
            if isinstance(ftp, _FtpTls):
                ftp.prot_p()
            ftp.voidcmd("TYPE I")
            features = _features(ftp)
        except BaseException as exc:
            ftp.close()
            if isinstance(exc, ftp_errors()):
                raise translate_ftp_error(exc, what, secret=self._password) from exc
            raise
        return _FtpConnection(ftp, features, mlsd="MLST" in features)

    def _open_control(self, ftp: ftplib.FTP) -> None:
        """Connect to the first checked address that answers; upgrade to TLS for FTPS."""
        last: OSError | None = None
        for address in self._checked_addresses():
            try:
                ftp.connect(address, self.port, timeout=self._timeout)
                break
            except OSError as exc:
                last = exc
        else:
            raise last or OSError(errno.EHOSTUNREACH, "no address to connect to")
        if isinstance(ftp, _FtpTls):
            ftp.host = self.host  # verify the certificate for the name, not the address
            try:
                ftp.auth()
            except ftplib.error_perm as exc:
                raise ConfigError(
                    f"{self.location} refused AUTH TLS ({exc}); it may not offer explicit FTPS"
                ) from exc

    def _checked_addresses(self) -> list[str]:
        if self._addresses is None:
            self._addresses = self._policy.check_host(self.host, self.port)
        return self._addresses

    def _login(self, ftp: ftplib.FTP) -> None:
        try:
            ftp.login(self.username, self._password)
        except ftplib.error_perm as exc:
            raise ConfigError(
                f"FTP login to {self.host}:{self.port} as {self.username!r} was refused: "
                f"{_scrub(str(exc), self._password)}"
            ) from exc


def _features(ftp: ftplib.FTP) -> frozenset[str]:
    """FEAT, and what it makes possible: UTF-8 names, MLSD with the ``unique`` fact."""
    try:
        features = parse_features(ftp.sendcmd("FEAT"))
    except ftplib.error_perm:
        return frozenset()
    for command in (
        "OPTS UTF8 ON" if "UTF8" in features else "",
        "OPTS MLST type;size;modify;unique;" if "MLST" in features else "",
    ):
        if command:
            try:
                ftp.sendcmd(command)
            except ftplib.error_perm as exc:
                log.debug("%s refused: %s", command, exc)
    return features


def _location(scheme: str, host: str, port: int, root: str) -> str:
    shown_host = f"[{host}]" if ":" in host else host
    path = root if root.startswith("/") else ("/~" if root == "." else f"/~/{root}")
    return f"{scheme}://{shown_host}:{port}{path}"


# --- listing ------------------------------------------------------------------------------


class _FtpTree:
    """Directory listings and per-file look-ups over one control connection."""

    def __init__(self, conn: _FtpConnection) -> None:
        self._conn = conn
        self._ftp = conn.ftp

    def check_root(self, root: str) -> str | None:
        """Fail clearly when ``root`` is not a directory; its MLST ``unique`` fact, if any."""
        home = None if root.startswith("/") else self._ftp.pwd()
        try:
            self._ftp.cwd(root)
        except ftplib.error_perm as exc:
            raise ConfigError(
                f"remote_path {root!r} is not a directory on the server: {exc}"
            ) from exc
        if home is not None:
            self._ftp.cwd(home)
        if "MLST" not in self._conn.features:
            return None
        try:
            reply = self._ftp.sendcmd(f"MLST {root}")
        except ftplib.error_perm:
            return None
        fact_lines = [line[1:] for line in reply.splitlines() if line.startswith(" ")]
        entry = parse_mlsd_line(fact_lines[0]) if fact_lines else None
        return entry.identity if entry else None

    def list_dir(self, path: str) -> list[DirEntry]:
        if self._conn.mlsd:
            try:
                return [e for e in map(parse_mlsd_line, self._lines(f"MLSD {path}")) if e]
            except ftplib.error_perm as exc:
                if _reply_code(exc) not in _NOT_IMPLEMENTED:
                    raise Unlistable(str(exc)) from exc
                log.info("the server refuses MLSD (%s); using LIST", exc)
                self._conn.mlsd = False
        try:
            lines = self._lines(f"LIST {path}")
            entries = [e for e in map(parse_list_line, lines) if e]
            if entries or all(line.lower().startswith("total ") for line in lines):
                return entries
            log.info("LIST of %r is not in unix format; using NLST, SIZE and MDTM", path)
            return [
                DirEntry(parse_nlst_name(line, path), "unknown")
                for line in self._lines(f"NLST {path}")
            ]
        except ftplib.error_perm as exc:
            raise Unlistable(str(exc)) from exc

    def resolve(self, path: str, entry: DirEntry) -> DirEntry | None:
        """SIZE tells a file (213) from a directory or a broken link (550); MDTM the time."""
        size = entry.size if entry.kind == "file" else None
        if size is None:
            try:
                size = parse_size_reply(self._ftp.sendcmd(f"SIZE {path}"))
            except ftplib.error_perm as exc:
                if entry.kind == "link":
                    return None  # a link to a directory (never followed) or a broken link
                if entry.kind == "unknown" and _reply_code(exc) not in _NOT_IMPLEMENTED:
                    return DirEntry(entry.name, "dir")
        mtime = entry.mtime if entry.kind == "file" else None
        if mtime is None:
            try:
                mtime = parse_ftp_time(self._ftp.sendcmd(f"MDTM {path}")[4:])
            except ftplib.error_perm:
                mtime = None
        return DirEntry(entry.name, "file", size=size, mtime=mtime)

    def _lines(self, command: str) -> list[str]:
        """A listing command's data, whole (bounded), split into lines."""
        conn = self._ftp.transfercmd(command)
        try:
            data = _read_all(conn, MAX_LISTING_BYTES, command)
        finally:
            _close_data(conn)
        self._ftp.voidresp()
        return [line.decode("utf-8", "surrogateescape") for line in split_listing_lines(data)]


def _read_all(conn: socket.socket, limit: int, command: str) -> bytes:
    parts: list[bytes] = []
    total = 0
    while chunk := conn.recv(_READ_ALL_CHUNK):
        total += len(chunk)
        if total > limit:
            raise ConfigError(f"the reply to {command!r} is larger than {limit:,} bytes")
        parts.append(chunk)
    return b"".join(parts)


def _close_data(conn: socket.socket) -> None:
    """Close a data connection; a TLS one says goodbye first, as ftplib does."""
    try:
        if isinstance(conn, ssl.SSLSocket):
            conn.unwrap()
    except (OSError, ValueError):
        pass
    finally:
        conn.close()


# --- downloading --------------------------------------------------------------------------


class _RetrStream:
    """The data connection of one RETR as a read-only stream with translated errors.

    At end of data it reads the server's final reply: ``226`` is success, anything else (a
    ``426`` for a transfer cut short, most often) raises. ``finish`` tells the pool whether
    the control connection is clean enough to reuse.
    """

    def __init__(self, conn: socket.socket, ftp: ftplib.FTP, what: str) -> None:
        self._conn = conn
        self._ftp = ftp
        self._what = what
        self._eof = False
        self._clean = False

    def read(self, size: int = -1) -> bytes:
        if self._eof or size == 0:
            return b""
        if size < 0:
            return b"".join(iter(lambda: self.read(_READ_ALL_CHUNK), b""))
        try:
            data = self._conn.recv(size)
        except ftp_errors() as exc:
            self._eof = True
            raise translate_ftp_error(exc, self._what) from exc
        if not data:
            self._complete()
        return data

    def _complete(self) -> None:
        self._eof = True
        _close_data(self._conn)
        try:
            self._ftp.voidresp()
        except ftplib.error_perm as exc:
            raise TransientError(f"cannot {self._what}: transfer failed: {exc}") from exc
        except ftp_errors() as exc:
            raise translate_ftp_error(exc, self._what) from exc
        self._clean = True

    def finish(self) -> bool:
        """Close the data connection; True when the transfer ended with the server's 226."""
        if not self._eof:
            self._eof = True
            _close_data(self._conn)
        return self._clean


__all__ = [
    "DEFAULT_PORT",
    "FtpSource",
]
