"""Real FTP, FTPS and SFTP servers for the FTP/SFTP source tests, each on 127.0.0.1.

- :class:`FtpServer` runs pyftpdlib (optionally FTPS with a certificate from :func:`make_tls`,
  optionally without MLSD/MLST so the client has to parse LIST) in a background thread with
  its own IO loop, and counts login attempts through the handler's hooks;
- :class:`SftpServer` runs asyncssh's server with an SFTP subsystem chrooted to a folder,
  password and public-key auth, and counts password attempts;
- both can cut the first download of one file after some bytes (``drop_file``), as a
  server whose network fails mid-transfer would;
- :func:`build_tree` writes the files, hostile names and symlinks the tests list.

Every server is a context manager: the port is free when it starts, the thread is joined
when it stops.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import os
import socket
import struct
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import asyncssh
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import DTPHandler, FTPHandler, TLS_DTPHandler, TLS_FTPHandler
from pyftpdlib.log import logger as ftpd_logger

from amazoniax_dagster.devstack.ftp import LocalFtpServer

HOST = "127.0.0.1"
USER = "alice"
PASSWORD = "s3cret-Pa55word"
DROP_AFTER = 64 * 1024  # bytes of the first attempt at ``drop_file`` before the cut


# --- a tree of files ----------------------------------------------------------------------


@dataclass(frozen=True)
class Tree:
    """What :func:`build_tree` wrote: the server root, the listed folder and file contents."""

    server_root: Path
    data: Path
    files: dict[str, bytes]  # relative to ``data``: the regular files a full listing finds


def build_tree(base: Path, *, escape_link: bool = True, non_utf8: bool = False) -> Tree:
    """``srv/data`` with nested folders, a big file, hostile names and symlinks.

    Symlinks: ``loop -> .`` (a loop), ``link.csv -> a.csv`` (a file), ``outside`` to a folder
    outside the server root and, with ``escape_link``, ``escape -> ../private`` (inside the
    server root but outside the listed folder). ``non_utf8`` adds ``weird/`` holding a name
    that is not UTF-8 (pyftpdlib would show it mangled, so only the SFTP tests ask for it).
    """
    server_root = base / "srv"
    data = server_root / "data"
    files = {
        "a.csv": b"id,name\n1,alpha\n",
        "b.txt": b"plain text\n",
        "sub/c.csv": b"id\n3\n",
        "sub/deeper/d.csv": b"id\n4\n",
        "big.bin": os.urandom(300 * 1024),
    }
    for rel, content in files.items():
        path = data / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    (data / "bad\\name.csv").write_bytes(b"backslash\n")
    (data / "new\nline.csv").write_bytes(b"newline\n")
    (data / "loop").symlink_to(".")
    (data / "link.csv").symlink_to("a.csv")
    outside = base / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_bytes(b"not yours\n")
    (data / "outside").symlink_to(outside)
    if escape_link:
        private = server_root / "private"
        private.mkdir()
        (private / "secret.csv").write_bytes(b"not in remote_path\n")
        (data / "escape").symlink_to("../private")
    if non_utf8:
        (data / "weird").mkdir()
        (data / "weird" / os.fsdecode(b"bad\xff.csv")).write_bytes(b"latin-1 name\n")
    return Tree(server_root, data, files)


# --- TLS ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TlsFiles:
    ca_pem: str  # what a client trusts (the config's ca_cert_pem)
    server_pem: Path  # certificate chain and private key, for the server


def make_tls(directory: Path) -> TlsFiles:
    """A throwaway CA and a server certificate for 127.0.0.1 / localhost signed by it."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "amazoniax test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    server_pem = directory / "server.pem"
    server_pem.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + ca.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return TlsFiles(ca.public_bytes(serialization.Encoding.PEM).decode(), server_pem)


# --- FTP / FTPS ---------------------------------------------------------------------------


@dataclass
class Counts:
    """What a server saw, for assertions (updated from the server thread)."""

    logins: list[str] = field(default_factory=list)  # "ok:<user>" / "failed:<user>"
    downloads: Counter[str] = field(default_factory=Counter)  # file name -> attempts
    reads: Counter[str] = field(default_factory=Counter)  # SFTP: file name -> read requests
    commands: list[str] = field(default_factory=list)  # FTP: "MLSD /data/sub", ...
    lock: threading.Lock = field(default_factory=threading.Lock)

    def failed_logins(self) -> int:
        with self.lock:
            return sum(1 for entry in self.logins if entry.startswith("failed:"))


class FtpServer(LocalFtpServer):
    """pyftpdlib on 127.0.0.1:<free port> in a thread; ``tls`` makes it explicit FTPS."""

    def __init__(
        self,
        root: Path,
        *,
        tls: TlsFiles | None = None,
        mlsd: bool = True,
        drop_file: str | None = None,
        drop_mode: str = "426",
    ) -> None:
        self.counts = Counts()
        authorizer = DummyAuthorizer()
        authorizer.add_user(USER, PASSWORD, homedir=str(root), perm="elr")
        handler = _ftp_handler(self.counts, tls=tls, mlsd=mlsd)
        handler.authorizer = authorizer
        handler.dtp_handler = _dropping_dtp(
            TLS_DTPHandler if tls else DTPHandler, self.counts, drop_file, drop_mode
        )
        super().__init__(handler)


def _ftp_handler(counts: Counts, *, tls: TlsFiles | None, mlsd: bool) -> type[FTPHandler]:
    """A fresh handler class per server (pyftpdlib configures through class attributes)."""
    base: type[FTPHandler] = TLS_FTPHandler if tls else FTPHandler
    attrs: dict[str, Any] = {
        "auth_failed_timeout": 0.01,  # pyftpdlib waits 3 s before a 530 by default
        "banner": "amazoniax test server",
        "use_sendfile": False,  # the dropping data handler works on send()
    }
    if tls:
        attrs["certfile"] = str(tls.server_pem)
        attrs["ssl_context"] = None
    if not mlsd:
        attrs["proto_cmds"] = {
            cmd: spec for cmd, spec in base.proto_cmds.items() if cmd not in ("MLSD", "MLST")
        }

    def handle_auth_success(self: FTPHandler, home: str, password: str, msg: str) -> None:
        with counts.lock:
            counts.logins.append(f"ok:{self.username}")
        base.handle_auth_success(self, home, password, msg)

    def handle_auth_failed(self: FTPHandler, msg: str, password: str) -> None:
        # Counted here, before the 530 goes out (on_login_failed runs after it: a race).
        with counts.lock:
            counts.logins.append(f"failed:{self.username}")
        base.handle_auth_failed(self, msg, password)

    def process_command(self: FTPHandler, cmd: str, *args: Any, **kwargs: Any) -> None:
        with counts.lock:
            counts.commands.append(f"{cmd} {args[0] if args else ''}".strip())
        base.process_command(self, cmd, *args, **kwargs)

    attrs["process_command"] = process_command
    attrs["handle_auth_success"] = handle_auth_success
    attrs["handle_auth_failed"] = handle_auth_failed
    return type("TestFtpHandler", (base,), attrs)


def _dropping_dtp(
    base: type[DTPHandler], counts: Counts, drop_file: str | None, mode: str
) -> type[DTPHandler]:
    """A data handler that cuts the first download of ``drop_file`` after ``DROP_AFTER`` bytes.

    ``mode`` "426": close the data connection early and answer 426 (a server-side abort);
    "vanish": reset the data connection and close the control connection without a word.
    """

    def send(self: DTPHandler, data: bytes) -> int:
        name = os.path.basename(getattr(self.file_obj, "name", "") or "")
        if drop_file and name == drop_file and self.tot_bytes_sent >= DROP_AFTER:
            with counts.lock:
                first = counts.downloads[name] == 1
            if first:
                if mode == "426":  # the data connection ends early, cleanly; the reply says why
                    self._resp = ("426 Connection closed; transfer aborted.", ftpd_logger.info)
                    self.close()
                else:  # reset the data connection, drop the control connection silently
                    self.socket.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                    self._resp = ()
                    cmd_channel = self.cmd_channel
                    self.close()
                    cmd_channel.close()
                return 0
        sent: int = base.send(self, data)
        return sent

    def push_with_producer(self: DTPHandler, producer: Any) -> None:
        name = os.path.basename(getattr(self.file_obj, "name", "") or "")
        if name:
            with counts.lock:
                counts.downloads[name] += 1
        base.push_with_producer(self, producer)

    return type(
        "TestDtpHandler",
        (base,),
        {"send": send, "push_with_producer": push_with_producer},
    )


# --- SFTP ---------------------------------------------------------------------------------


class SftpServer:
    """asyncssh on 127.0.0.1:<free port> in a thread, SFTP only, chrooted to ``root``."""

    def __init__(
        self,
        root: Path,
        *,
        client_public_key: str | None = None,
        drop_file: str | None = None,
        max_read: int | None = None,
    ) -> None:
        self.root = root
        self.counts = Counts()
        self.max_read = max_read  # answer each read with at most this many bytes
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.host_key_line = self.host_key.export_public_key().decode().strip()
        self.client_key = (
            asyncssh.import_public_key(client_public_key) if client_public_key else None
        )
        self.drop_file = drop_file
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="sftp", daemon=True)
        self._acceptor: asyncssh.SSHAcceptor | None = None
        self.connections: set[asyncssh.SSHServerConnection] = set()

    def __enter__(self) -> SftpServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    async def _start(self) -> None:
        owner = self
        self._acceptor = await asyncssh.listen(
            HOST,
            0,
            server_host_keys=[self.host_key],
            server_factory=lambda: _SshServer(owner),
            sftp_factory=lambda chan: _ChrootSftp(chan, owner),
            allow_scp=False,
            login_timeout=10,
        )
        self.port = self._acceptor.get_port()

    async def _stop(self) -> None:
        if self._acceptor is not None:
            self._acceptor.close()
            await self._acceptor.wait_closed()
        for conn in list(self.connections):
            conn.close()
            await conn.wait_closed()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


class _SshServer(asyncssh.SSHServer):
    def __init__(self, owner: SftpServer) -> None:
        self._owner = owner
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._owner.connections.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._owner.connections.discard(self._conn)

    def begin_auth(self, username: str) -> bool:
        return True  # every user must authenticate

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        ok = username == USER and password == PASSWORD
        with self._owner.counts.lock:
            self._owner.counts.logins.append(f"{'ok' if ok else 'failed'}:{username}")
        return ok

    def public_key_auth_supported(self) -> bool:
        return self._owner.client_key is not None

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        expected = self._owner.client_key
        return username == USER and expected is not None and key.public_data == expected.public_data


class _ChrootSftp(asyncssh.SFTPServer):
    """The SFTP subsystem rooted in the server folder; counts reads, can answer them short
    (``max_read``) and can cut one download once."""

    def __init__(self, chan: asyncssh.SSHServerChannel, owner: SftpServer) -> None:
        super().__init__(chan, chroot=os.fsencode(owner.root))
        self._owner = owner

    def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> object:
        name = os.fsdecode(os.path.basename(path))
        with self._owner.counts.lock:
            self._owner.counts.downloads[name] += 1
        return super().open(path, pflags, attrs)

    def read(self, file_obj: object, offset: int, size: int) -> bytes:
        name = os.path.basename(getattr(file_obj, "name", ""))
        if isinstance(name, bytes):
            name = os.fsdecode(name)
        with self._owner.counts.lock:
            self._owner.counts.reads[name] += 1
        if self._owner.max_read is not None:
            size = min(size, self._owner.max_read)
        if name == self._owner.drop_file and offset >= DROP_AFTER:
            with self._owner.counts.lock:
                first = self._owner.counts.downloads[name] == 1
            if first:
                self.connection.abort()
                return b""
        data: bytes = super().read(file_obj, offset, size)  # type: ignore[assignment]
        return data
