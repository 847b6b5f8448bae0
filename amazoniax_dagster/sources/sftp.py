"""SFTP channels (``protocol: sftp``), with paramiko (imported lazily: the code location
stays light).

Host keys, like OpenSSH's ``StrictHostKeyChecking yes``: with ``host_key_policy: verify`` (the
default) the server must present one of the keys in ``host_key``: OpenSSH public key lines
(``ssh-ed25519 AAAA...``; known_hosts lines work too, their host names are ignored because
the config belongs to one host) or ``SHA256:...`` fingerprints, one per line. Without a
``host_key`` the first connection fails with a ``ConfigError`` that shows the key the server
presented, so that a person can check it out of band and paste it in: a job has nowhere to
remember a key, so "trust on first use" would in practice mean "trust every time".
``host_key_policy: accept_any`` skips the check (and logs the fingerprint); it exists for
tests and throwaway servers, not for production. Credentials are sent only after the host
key passed.

Authentication: exactly one attempt per job and host. ``private_key`` (OpenSSH or PEM text,
optionally ``private_key_passphrase``) when given, else ``password``; a server that accepts
the key only as a first step gets the password next. No SSH agent and no ``~/.ssh`` keys are
ever tried. A refused login is a ``ConfigError`` naming host and user, and later borrowers get
the same error without a new attempt (see ``remote_tree``).

Parallel downloads use up to ``max_connections`` SFTP sessions (16 when the channel does not
say), one per download, because an ``SFTPClient`` must not be shared between threads. They
are spread over SSH connections (paramiko ``Transport``) of at most
:data:`SESSIONS_PER_CONNECTION` sessions each: one transport thread decrypts and dispatches
every packet of its connection, so sessions are spread over a few connections.
Connections are opened one at a time, only after the first
one logged in, so a wrong password is still tried once; a server that refuses a further
connection or session leaves the job with the ones it has (see ``remote_tree``). A session
that failed is closed; a connection that died is replaced on demand.

Reads are pipelined by :mod:`amazoniax_dagster.sources.sftp_stream`.

Listing streams ``listdir_iter`` (lstat semantics: symlinks are visible as such). Files keep
``st_size``/``st_mtime``; a symlink is resolved with ``stat`` and listed when it points to a
file, never followed when it points to a directory (see ``remote_tree`` for why, and for the
depth and size bounds). paramiko decodes names strictly as UTF-8: a directory holding a name
that is not UTF-8 cannot be listed at all, so it is reported as refused.
"""

from __future__ import annotations

import logging
import socket
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, BinaryIO, cast

from amazoniax_dagster.core.errors import ConfigError, TransientError
from amazoniax_dagster.core.messages import FtpSourceConfig
from amazoniax_dagster.core.netpolicy import NetworkPolicy
from amazoniax_dagster.core.paths import FilePattern
from amazoniax_dagster.sources.base import RejectedFile, RemoteFile
from amazoniax_dagster.sources.remote_tree import (
    ConnectionPool,
    DirEntry,
    EntryKind,
    Unlistable,
    WalkLimits,
    normalize_root,
    pool_size,
    walk,
)
from amazoniax_dagster.sources.sftp_keys import (
    HostKeys,
    load_private_key,
    sftp_errors,
    translate_sftp_error,
)
from amazoniax_dagster.sources.sftp_stream import REPLY_LIMIT, SftpStream

if TYPE_CHECKING:
    from paramiko import PKey, SFTPAttributes, SFTPClient, SFTPFile, Transport

log = logging.getLogger(__name__)

DEFAULT_PORT = 22
SESSIONS_PER_CONNECTION = 4
# A 32 KiB read reply is 32 KiB plus its header: with the SSH default maximum packet of
# 32 KiB every such reply took two packets (each decrypted, MAC-checked and dispatched in
# Python). The server sends at most what we allow, so allowing more is safe; packets big
# enough for a whole reply were slower (docs/performance.md). The window holds every reply
# in flight.
SESSION_MAX_PACKET = 64 * 1024
SESSION_WINDOW = 4 * 1024 * 1024


# --- the source ---------------------------------------------------------------------------


class SftpSource:
    """An SFTP folder as a :class:`~amazoniax_dagster.sources.base.Source`."""

    def __init__(
        self,
        config: FtpSourceConfig,
        *,
        policy: NetworkPolicy,
        max_connections: int | None = None,
        limits: WalkLimits | None = None,
    ) -> None:
        if config.protocol != "sftp":
            raise ConfigError(f"SftpSource serves sftp, not {config.protocol!r}")
        self.host = config.host.strip()
        self.port = config.port or DEFAULT_PORT
        self.username = config.username
        self.root = normalize_root(config.remote_path)
        self.pattern = FilePattern.parse(config.file_pattern)
        shown_host = f"[{self.host}]" if ":" in self.host else self.host
        path = self.root if self.root.startswith("/") else f"/~/{self.root}".removesuffix("/.")
        self.location = f"sftp://{shown_host}:{self.port}{path}"
        self._password = config.password.get_secret_value() if config.password else None
        self._pkey = (
            load_private_key(
                config.private_key.get_secret_value(),
                config.private_key_passphrase.get_secret_value()
                if config.private_key_passphrase
                else None,
            )
            if config.private_key
            else None
        )
        self._host_keys = HostKeys.parse(config.host_key)
        self._accept_any_host_key = config.host_key_policy == "accept_any"
        self._timeout = config.timeout_seconds
        self._policy = policy
        self._limits = limits or WalkLimits()
        self._connections: list[_Connection] = []
        self._transport_lock = threading.Lock()
        self.reply_limit = REPLY_LIMIT  # lowered to what the server answers (see REPLY_LIMIT)
        self._pool: ConnectionPool[_Session] = ConnectionPool(
            self._session,
            close=self._close_session,
            healthy=_session_alive,
            size=pool_size(config, max_connections),
            idle_check_seconds=0.0,  # the check is local (no round trip): always make it
        )

    def list_files(self) -> Iterator[RemoteFile | RejectedFile]:
        """Walk ``remote_path`` on one pooled session, held until the iteration ends."""
        what = f"list {self.location}"
        with self._pool.borrow() as lease:
            try:
                tree = _SftpTree(lease.conn.client)
                tree.check_root(self.root)
                yield from walk(tree, self.root, self.pattern, limits=self._limits)
            except sftp_errors() as exc:
                raise translate_sftp_error(exc, what) from exc

    @contextmanager
    def open(self, remote: RemoteFile) -> Iterator[BinaryIO]:
        what = f"download {remote.key!r} from {self.location}"
        with self._pool.borrow() as lease:
            try:
                handle = lease.conn.client.open(remote.key, "rb")
            except (FileNotFoundError, PermissionError) as exc:
                # Listed a moment ago, gone or unreadable now: a re-run relists (as S3 NoSuchKey).
                raise TransientError(f"cannot {what}: {exc}") from exc
            except sftp_errors() as exc:
                raise translate_sftp_error(exc, what) from exc
            try:
                stream = SftpStream(lease.conn.client, handle, remote.size, what, limits=self)
                yield cast(BinaryIO, stream)
                if stream.in_flight:  # stopped early: replies may still be on their way
                    lease.broken = True
            finally:
                _close_quietly(handle)

    def close(self) -> None:
        self._pool.close()
        with self._transport_lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            connection.transport.close()

    # --- connecting

    def _session(self) -> _Session:
        """A new SFTP session on the least busy SSH connection, or on a new one."""
        import paramiko

        what = f"connect to {self.location}"
        try:
            connection = self._connection_with_room()
        except sftp_errors() as exc:
            raise translate_sftp_error(exc, what) from exc
        try:
            client = paramiko.SFTPClient.from_transport(
                connection.transport,
                window_size=SESSION_WINDOW,
                max_packet_size=SESSION_MAX_PACKET,
            )
            if client is None:
                raise TransientError(f"cannot {what}: the server refused an SFTP session")
            channel = client.get_channel()
            if channel is not None:
                channel.settimeout(self._timeout)
            return _Session(client, connection)
        except BaseException as exc:
            with self._transport_lock:
                connection.sessions -= 1
            if isinstance(exc, sftp_errors()):
                raise translate_sftp_error(exc, what) from exc
            raise

    def _connection_with_room(self) -> _Connection:
        """Reserve a session slot: on a live connection with room, else on a new connection
        (opened under the lock: one login at a time)."""
        with self._transport_lock:
            live = []
            for connection in self._connections:
                if connection.transport.is_active():
                    live.append(connection)
                else:
                    connection.transport.close()
            self._connections = live
            roomy = [c for c in live if c.sessions < SESSIONS_PER_CONNECTION]
            if roomy:
                connection = min(roomy, key=lambda c: c.sessions)
            else:
                connection = _Connection(self._open_transport())
                self._connections.append(connection)
            connection.sessions += 1
            return connection

    def _close_session(self, session: _Session) -> None:
        with self._transport_lock:
            session.connection.sessions -= 1
        session.client.close()

    def _open_transport(self) -> Transport:
        import paramiko

        sock = self._connect_socket()
        transport = paramiko.Transport(sock)
        try:
            transport.banner_timeout = self._timeout
            transport.handshake_timeout = self._timeout
            transport.auth_timeout = self._timeout
            preferred = [
                alg
                for alg in self._host_keys.algorithms()
                if alg in transport.get_security_options().key_types
            ]
            if preferred:
                transport.get_security_options().key_types = preferred
            transport.start_client(timeout=self._timeout)
            self._check_host_key(transport.get_remote_server_key())
            self._authenticate(transport)
        except BaseException:
            transport.close()
            raise
        return transport

    def _connect_socket(self) -> socket.socket:
        last: OSError | None = None
        for address in self._policy.check_host(self.host, self.port):
            try:
                return socket.create_connection((address, self.port), timeout=self._timeout)
            except OSError as exc:
                last = exc
        raise last or OSError("no address to connect to")

    def _check_host_key(self, key: PKey) -> None:
        presented = f"{key.get_name()} {key.fingerprint}"
        if self._accept_any_host_key:
            log.warning(
                "not checking the SSH host key of %s:%s (host_key_policy: accept_any); it is %s",
                self.host,
                self.port,
                presented,
            )
            return
        if not self._host_keys:
            raise ConfigError(
                f"no host_key is configured for {self.host}:{self.port}; the server presented "
                f"{presented} ({key.get_name()} {key.get_base64()}). Check it out of band and "
                "set host_key to it, or set host_key_policy to accept_any (not for production)"
            )
        if not self._host_keys.accepts(key.get_name(), key.asbytes(), key.fingerprint):
            raise ConfigError(
                f"the SSH host key of {self.host}:{self.port} does not match host_key: the "
                f"server presented {presented}"
            )

    def _authenticate(self, transport: Transport) -> None:
        """One attempt: the key if configured, else the password (never agent or files)."""
        import paramiko

        method = "key" if self._pkey is not None else "password" if self._password else "none"
        try:
            if self._pkey is not None:
                remaining = transport.auth_publickey(self.username, self._pkey)
                if remaining and self._password is not None:
                    method = "key, then password"
                    remaining = transport.auth_password(self.username, self._password)
            elif self._password is not None:
                remaining = transport.auth_password(self.username, self._password)
            else:
                remaining = transport.auth_none(self.username)
        except paramiko.AuthenticationException as exc:
            raise ConfigError(
                f"SFTP login to {self.host}:{self.port} as {self.username!r} was refused "
                f"({method} authentication: {type(exc).__name__})"
            ) from exc
        if remaining or not transport.is_authenticated():
            raise ConfigError(
                f"SFTP login to {self.host}:{self.port} as {self.username!r} needs more "
                f"authentication steps than the config provides ({', '.join(remaining)})"
            )


@dataclass(eq=False)
class _Connection:
    """One SSH connection and how many SFTP sessions it carries."""

    transport: Transport
    sessions: int = 0


@dataclass(eq=False)
class _Session:
    """A pooled SFTP session and the connection it lives on."""

    client: SFTPClient
    connection: _Connection


def _session_alive(session: _Session) -> bool:
    channel = session.client.get_channel()
    return channel is not None and not channel.closed and channel.get_transport().is_active()


def _close_quietly(handle: SFTPFile) -> None:
    try:
        handle.close()
    except Exception as exc:  # the session is discarded or reused; a failed close changes nothing
        log.debug("closing an SFTP file failed: %s", exc)


# --- listing ------------------------------------------------------------------------------


class _SftpTree:
    def __init__(self, client: SFTPClient) -> None:
        self._client = client

    def check_root(self, root: str) -> None:
        try:
            attrs = self._client.stat(root)
        except FileNotFoundError as exc:
            raise ConfigError(f"remote_path {root!r} does not exist on the server") from exc
        if attrs.st_mode is not None and not stat.S_ISDIR(attrs.st_mode):
            raise ConfigError(f"remote_path {root!r} is not a directory")

    def list_dir(self, path: str) -> Iterator[DirEntry]:
        """Streamed (``listdir_iter``), so the walk's entry bound holds inside one folder."""
        try:
            for attrs in self._client.listdir_iter(path):
                yield _entry(attrs)
        except (FileNotFoundError, PermissionError) as exc:
            raise Unlistable(exc.strerror or type(exc).__name__) from exc
        except UnicodeDecodeError as exc:
            raise Unlistable("it holds a name that is not valid UTF-8", reject=True) from exc

    def resolve(self, path: str, entry: DirEntry) -> DirEntry | None:
        """Follow a link (or an entry without a type) with ``stat``; a dangling one is skipped."""
        try:
            attrs = self._client.stat(path)
        except (FileNotFoundError, PermissionError):
            return None
        resolved = _entry(attrs, name=entry.name)
        if resolved.kind == "dir":
            return None if entry.kind == "link" else resolved
        return resolved if resolved.kind == "file" else None


def _entry(attrs: SFTPAttributes, *, name: str | None = None) -> DirEntry:
    mode = attrs.st_mode
    kind: EntryKind
    if mode is None:
        kind = "unknown"
    elif stat.S_ISREG(mode):
        kind = "file"
    elif stat.S_ISDIR(mode):
        kind = "dir"
    elif stat.S_ISLNK(mode):
        kind = "link"
    else:
        kind = "other"
    mtime = datetime.fromtimestamp(attrs.st_mtime, UTC) if attrs.st_mtime is not None else None
    return DirEntry(
        name=name if name is not None else attrs.filename,
        kind=kind,
        size=attrs.st_size if kind == "file" else None,
        mtime=mtime,
    )


__all__ = [
    "DEFAULT_PORT",
    "SftpSource",
]
