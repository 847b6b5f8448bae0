"""A lean HTTP/1.1 client for the S3 data path: keep-alive connections, one request at a time.

Why: an S3 -> S3 copy makes two requests per file. Through urllib3 and ``http.client`` each one
cost ~0.6 ms of CPU on the benchmark machine (header validation in three layers, and replies
parsed by the ``email`` package); written and read here, ~0.15 ms. On two cores shared with
the S3 server that CPU is taken from the server, so it was most of the gap to rclone on
initial copies (``bench/README.md``, sixth pass).

What it does: HTTP/1.1 over TCP or verified TLS; bodies framed by Content-Length, chunked, or
the connection's end; keep-alive with at most ``maxsize`` connections per pool (callers wait
for a free one, as urllib3's ``block=True`` does). An idle connection the server has closed is
noticed before reuse, and a request whose reused connection turns out to be closed before any
reply byte arrives is sent once more on a new one (S3 requests are idempotent).

What it leaves out: proxies (``S3Http`` goes through urllib3 when the environment names one),
redirects, retries of anything else, compression, ``Expect: 100-continue``.
"""

from __future__ import annotations

import io
import select
import socket
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    import ssl  # imported by whoever builds the context: 5 ms a plain-HTTP job need not spend

_MAX_LINE = 65536  # as http.client: a longer status or header line is refused
_MAX_HEADERS = 100
_JOIN_LIMIT = 64 * 1024  # smaller bodies go out with the head in one send


class ProtocolError(ConnectionError):
    """The server's reply is not the HTTP/1.1 this client expects (or it ended too soon)."""


class TLSError(ConnectionError):
    """The TLS handshake failed: most often a certificate that does not verify."""


class _StaleConnection(ConnectionError):
    """A reused keep-alive connection was closed by the server before it replied."""


class Headers(dict[str, str]):
    """Reply headers by lower-case name; a repeated header's values are joined with ", "."""

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return super().get(name.lower(), default)

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and super().__contains__(name.lower())


class _Connection:
    __slots__ = ("sock", "reader")

    def __init__(self, sock: socket.socket) -> None:
        self.sock: socket.socket = sock
        self.reader = cast(io.BufferedReader, sock.makefile("rb", buffering=256 * 1024))

    def is_dropped(self) -> bool:
        """An idle connection with something to read has been closed (or sent garbage)."""
        try:
            if hasattr(select, "poll"):  # no fd limit, unlike select()
                poller = select.poll()
                poller.register(self.sock, select.POLLIN)
                return bool(poller.poll(0))
            return bool(select.select([self.sock], [], [], 0)[0])
        except (OSError, ValueError):
            return True

    def close(self) -> None:
        for closing in (self.reader, self.sock):
            try:
                closing.close()
            except OSError:
                pass


class Response:
    """A reply whose status and headers have arrived; the body is read with :meth:`read`.

    Call :meth:`release_conn` when done: a fully read body hands the connection back for the
    next request, anything else closes it. :meth:`close` always closes it.
    """

    def __init__(
        self,
        pool: ConnectionPool,
        conn: _Connection,
        status: int,
        reason: str,
        headers: Headers,
        *,
        length: int | None,
        chunked: bool,
        will_close: bool,
    ) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self._pool: ConnectionPool | None = pool
        self._conn: _Connection | None = conn
        self._left = length  # bytes of the body (or of the current chunk) still to come
        self._chunked = chunked
        self._will_close = will_close
        self._done = length == 0 and not chunked

    def read(self, amt: int | None = None) -> bytes:
        """Up to ``amt`` bytes of the body (all of it when ``None``); ``b""`` at its end."""
        if self._done or self._conn is None:
            return b""
        if amt is not None and amt < 0:
            amt = None
        if self._chunked:
            return self._read_chunked(amt)
        reader = self._conn.reader
        if self._left is None:  # the body ends with the connection
            data = reader.read() if amt is None else reader.read(amt)
            if not data or amt is None:
                self._done = True
            return data
        want = self._left if amt is None else min(amt, self._left)
        data = reader.read(want)
        if len(data) < want:
            self.close()
            raise ProtocolError(f"the connection closed {self._left - len(data)} bytes early")
        self._left -= len(data)
        self._done = self._left == 0
        return data

    def _read_chunked(self, amt: int | None) -> bytes:
        assert self._conn is not None
        reader = self._conn.reader
        pieces: list[bytes] = []
        wanted = amt
        while wanted is None or wanted > 0:
            if not self._left:
                size = self._chunk_size()
                if size == 0:
                    self._skip_trailers()
                    self._done = True
                    break
                self._left = size
            take = self._left if wanted is None else min(wanted, self._left)
            data = reader.read(take)
            if len(data) < take:
                self.close()
                raise ProtocolError("the connection closed inside a chunk")
            pieces.append(data)
            self._left -= take
            if self._left == 0 and reader.read(2) != b"\r\n":
                self.close()
                raise ProtocolError("a chunk does not end with CRLF")
            if wanted is not None:
                wanted -= take
        return b"".join(pieces)

    def _chunk_size(self) -> int:
        line = self._line()
        try:
            return int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            self.close()
            raise ProtocolError(f"a chunk size is not hexadecimal: {line[:40]!r}") from None

    def _skip_trailers(self) -> None:
        for _ in range(_MAX_HEADERS + 1):
            if self._line() in (b"\r\n", b"\n"):
                return
        self.close()
        raise ProtocolError("too many trailer lines after a chunked body")

    def _line(self) -> bytes:
        assert self._conn is not None
        line = self._conn.reader.readline(_MAX_LINE + 1)
        if not line:
            self.close()
            raise ProtocolError("the connection closed inside a chunked body")
        if len(line) > _MAX_LINE:
            self.close()
            raise ProtocolError("a chunk line is too long")
        return line

    def release_conn(self) -> None:
        """Done with this reply: the connection is reused if the body was read to its end."""
        self._give_back(reuse=self._done and not self._will_close)

    def close(self) -> None:
        """Stop here: the connection may still carry unread bytes, so it is closed."""
        self._give_back(reuse=False)

    def _give_back(self, *, reuse: bool) -> None:
        pool, conn = self._pool, self._conn
        if pool is None or conn is None:
            return  # given back already
        self._pool = self._conn = None
        pool._put_back(conn, reuse=reuse)


class ConnectionPool:
    """Keep-alive connections to one ``host:port``, at most ``maxsize`` at a time.

    ``ssl_context`` makes them TLS, verified for ``host``. Thread-safe: each request takes a
    connection of its own until its reply is released or closed.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        maxsize: int,
        connect_timeout: float,
        read_timeout: float,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._ssl = ssl_context
        self._slots = threading.BoundedSemaphore(maxsize)
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    def request(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str],
        body: bytes | bytearray | memoryview | None = None,
    ) -> Response:
        """Send one request and read the reply's status and headers.

        ``headers`` must name the Host; Content-Length is added here. Network failures raise
        ``OSError`` (timeouts included), a reply that is not HTTP/1.x :class:`ProtocolError`,
        a failed TLS handshake :class:`TLSError`.
        """
        head = self._head(method, target, headers, body)
        self._slots.acquire()
        try:
            conn = self._idle_connection()
            if conn is not None:
                try:
                    return self._exchange(conn, method, head, body, reused=True)
                except _StaleConnection:
                    pass  # the server closed it while it was idle: once more, on a new one
            return self._exchange(self._connect(), method, head, body, reused=False)
        except BaseException:
            self._slots.release()
            raise

    def close(self) -> None:
        """Close the idle connections; those in use close when their replies are released."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    # --- internals

    @staticmethod
    def _head(
        method: str,
        target: str,
        headers: Mapping[str, str],
        body: bytes | bytearray | memoryview | None,
    ) -> bytes:
        lines = [f"{method} {target} HTTP/1.1\r\n"]
        for name, value in headers.items():
            if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
                raise ValueError(f"header {name!r} contains a line break")
            lines.append(f"{name}: {value}\r\n")
        if body is not None or method in ("PUT", "POST"):
            lines.append(f"content-length: {len(body) if body is not None else 0}\r\n")
        lines.append("\r\n")
        # Latin-1, as http.client: S3 header values are ASCII, metadata is encoded by callers.
        return "".join(lines).encode("latin-1")

    def _idle_connection(self) -> _Connection | None:
        while True:
            with self._lock:
                if not self._idle:
                    return None
                conn = self._idle.pop()  # the most recent: least likely to have timed out
            if not conn.is_dropped():
                return conn
            conn.close()

    def _connect(self) -> _Connection:
        sock = socket.create_connection((self.host, self.port), timeout=self._connect_timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._ssl is not None:
                import ssl

                try:
                    sock = self._ssl.wrap_socket(sock, server_hostname=self.host)
                except ssl.SSLError as exc:
                    raise TLSError(f"TLS with {self.host}:{self.port} failed: {exc}") from exc
            sock.settimeout(self._read_timeout)
        except BaseException:
            sock.close()
            raise
        return _Connection(sock)

    def _exchange(
        self,
        conn: _Connection,
        method: str,
        head: bytes,
        body: bytes | bytearray | memoryview | None,
        *,
        reused: bool,
    ) -> Response:
        try:
            if body is not None and len(body) <= _JOIN_LIMIT:
                conn.sock.sendall(head + bytes(body))
            else:
                conn.sock.sendall(head)
                if body is not None:
                    conn.sock.sendall(body)
            line = conn.reader.readline(_MAX_LINE + 1)
            if not line:
                if reused:
                    raise _StaleConnection()
                raise ProtocolError("the server closed the connection without replying")
            version, status, reason = _status_line(line)
            while 100 <= status < 200 and status != 101:  # interim replies: skip them
                _read_headers(conn.reader)
                version, status, reason = _status_line(conn.reader.readline(_MAX_LINE + 1))
            headers = _read_headers(conn.reader)
        except (BrokenPipeError, ConnectionResetError) as exc:
            conn.close()
            if reused:
                raise _StaleConnection() from exc
            raise
        except BaseException:
            conn.close()
            raise
        will_close = _will_close(version, headers)
        chunked = False
        length: int | None = None
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            length = 0
        elif "chunked" in (headers.get("transfer-encoding") or "").lower():
            chunked = True
        elif (value := headers.get("content-length")) is not None:
            if not value.strip().isdigit():
                conn.close()
                raise ProtocolError(f"the reply's Content-Length is not a number: {value!r}")
            length = int(value)
        else:
            will_close = True  # the body ends with the connection
        return Response(
            self,
            conn,
            status,
            reason,
            headers,
            length=length,
            chunked=chunked,
            will_close=will_close,
        )

    def _put_back(self, conn: _Connection, *, reuse: bool) -> None:
        try:
            if reuse:
                with self._lock:
                    if not self._closed:
                        self._idle.append(conn)
                        return
            conn.close()
        finally:
            self._slots.release()


def _status_line(line: bytes) -> tuple[str, int, str]:
    if len(line) > _MAX_LINE:
        raise ProtocolError("the reply's status line is too long")
    parts = line.decode("latin-1").rstrip("\r\n").split(None, 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise ProtocolError(f"the reply does not start with an HTTP/1.x status: {line[:60]!r}")
    return parts[0], int(parts[1]), parts[2] if len(parts) > 2 else ""


def _read_headers(reader: io.BufferedReader) -> Headers:
    headers = Headers()
    last = ""
    for _ in range(_MAX_HEADERS + 1):
        line = reader.readline(_MAX_LINE + 1)
        if len(line) > _MAX_LINE:
            raise ProtocolError("a reply header line is too long")
        if line in (b"\r\n", b"\n"):
            return headers
        if not line:
            raise ProtocolError("the connection closed inside the reply's headers")
        text = line.decode("latin-1").rstrip("\r\n")
        if text[:1] in (" ", "\t") and last:  # an obsolete folded continuation
            headers[last] = f"{dict.__getitem__(headers, last)} {text.strip()}"
            continue
        name, sep, value = text.partition(":")
        if not sep or not name or name != name.strip():
            raise ProtocolError(f"a reply header line is malformed: {line[:60]!r}")
        last = name.lower()
        value = value.strip()
        previous = dict.get(headers, last)
        dict.__setitem__(headers, last, value if previous is None else f"{previous}, {value}")
    raise ProtocolError(f"the reply has more than {_MAX_HEADERS} headers")


def _will_close(version: str, headers: Headers) -> bool:
    tokens = {t.strip().lower() for t in (headers.get("connection") or "").split(",")}
    if "close" in tokens:
        return True
    return version == "HTTP/1.0" and "keep-alive" not in tokens


__all__ = ["ConnectionPool", "Headers", "ProtocolError", "Response", "TLSError"]
