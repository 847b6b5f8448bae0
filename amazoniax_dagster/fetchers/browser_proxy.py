"""A local HTTP proxy that connects the browser only where the network policy allows.

``page.route`` sees each request a page makes, but not the hops of a redirect, and a check of
a host name before the browser resolves it again leaves room for DNS rebinding. So every
browser context of a recipe run sends its traffic through this proxy (bound to 127.0.0.1,
one per run): it resolves and checks each target with :meth:`NetworkPolicy.check_host` and
connects to exactly the addresses it checked. Each redirect hop, WebSocket and download is a
connection of its own, so each is checked.

- ``CONNECT host:port`` (HTTPS, WSS) is answered 200 and tunnelled byte for byte;
- an absolute-form request (``GET http://host/path HTTP/1.1``) is forwarded once, in origin
  form, with ``Connection: close`` both ways (so one connection carries one request and the
  browser never reuses it for another host).

A refused target gets ``403`` (HTTP) or a refused tunnel, and is recorded in :attr:`blocked`.
"""

from __future__ import annotations

import selectors
import socket
import socketserver
import threading
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from amazoniax_dagster.core.errors import AmazoniaxError
from amazoniax_dagster.core.netpolicy import NetworkPolicy
from amazoniax_dagster.core.redaction import redact_url

_MAX_HEAD = 64 * 1024
_HOP_HEADERS = {b"connection", b"proxy-connection", b"keep-alive", b"proxy-authorization"}
_CLOSE = b"Connection: close\r\nProxy-Connection: close\r\n"


@dataclass(frozen=True)
class Blocked:
    """A connection the policy refused: the (redacted) target and why."""

    target: str
    host: str
    port: int
    reason: str


class PolicyProxy:
    """Use as a context manager; :attr:`url` is the proxy to give the browser."""

    def __init__(self, policy: NetworkPolicy, *, timeout: float = 30.0) -> None:
        self.policy = policy
        self.timeout = timeout
        self.blocked: list[Blocked] = []
        self.connections = 0
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "the proxy is not running"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> PolicyProxy:
        self._server = _Server(("127.0.0.1", 0), _Handler, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="amazoniax-browser-proxy", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def check(self, host: str, port: int, shown: str) -> list[str] | None:
        """The addresses to connect to, or None (recorded as blocked) when refused."""
        with self._lock:
            self.connections += 1
        try:
            return self.policy.check_host(host, port)
        except AmazoniaxError as exc:
            with self._lock:
                self.blocked.append(Blocked(shown, host.lower(), port, str(exc)))
            return None


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: Callable[..., socketserver.BaseRequestHandler],
        proxy: PolicyProxy,
    ) -> None:
        self.proxy = proxy
        super().__init__(address, handler)


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        client: socket.socket = self.request
        proxy = self.server.proxy
        client.settimeout(proxy.timeout)
        try:
            head, rest = _read_head(client)
            line, _, headers = head.partition(b"\r\n")
            method, target, version = line.decode("latin-1").split(" ", 2)
        except (OSError, ValueError):
            return
        if method == "CONNECT":
            self._tunnel(client, proxy, target)
        else:
            self._forward(client, proxy, method, target, version, headers, rest)

    def _tunnel(self, client: socket.socket, proxy: PolicyProxy, target: str) -> None:
        host, _, port_text = target.rpartition(":")
        host = host.strip("[]")
        if not port_text.isdigit():
            _reply(client, b"400 Bad Request")
            return
        port = int(port_text)
        addresses = proxy.check(host, port, f"{host}:{port}")
        if addresses is None:
            _reply(client, b"403 Forbidden")
            return
        upstream = _connect(addresses, port, proxy.timeout)
        if upstream is None:
            _reply(client, b"502 Bad Gateway")
            return
        with upstream:
            client.sendall(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            _pipe(client, upstream, proxy.timeout, rewrite_head=False)

    def _forward(
        self,
        client: socket.socket,
        proxy: PolicyProxy,
        method: str,
        target: str,
        version: str,
        headers: bytes,
        rest: bytes,
    ) -> None:
        parts = urlsplit(target)
        if parts.scheme != "http" or not parts.hostname:
            _reply(client, b"400 Bad Request")
            return
        port = parts.port or 80
        addresses = proxy.check(parts.hostname, port, redact_url(target))
        if addresses is None:
            _reply(client, b"403 Forbidden")
            return
        upstream = _connect(addresses, port, proxy.timeout)
        if upstream is None:
            _reply(client, b"502 Bad Gateway")
            return
        path = parts.path or "/"
        if parts.query:
            path += f"?{parts.query}"
        head = f"{method} {path} {version}\r\n".encode("latin-1")
        head += _without_hop_headers(headers) + _CLOSE + b"\r\n"
        with upstream:
            upstream.sendall(head + rest)
            _pipe(client, upstream, proxy.timeout, rewrite_head=True)


def _read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    """The request or response head (without the blank line) and the bytes after it."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(8192)
        if not chunk or len(data) > _MAX_HEAD:
            raise ValueError("no complete head")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def _without_hop_headers(headers: bytes) -> bytes:
    kept = [
        line + b"\r\n"
        for line in headers.split(b"\r\n")
        if line and line.split(b":", 1)[0].strip().lower() not in _HOP_HEADERS
    ]
    return b"".join(kept)


def _connect(addresses: list[str], port: int, timeout: float) -> socket.socket | None:
    for address in addresses:
        try:
            return socket.create_connection((address, port), timeout=timeout)
        except OSError:
            continue
    return None


def _reply(client: socket.socket, status: bytes) -> None:
    body = b"refused by the amazoniax network policy\n" if status.startswith(b"403") else b""
    try:
        client.sendall(
            b"HTTP/1.1 "
            + status
            + b"\r\nContent-Type: text/plain\r\n"
            + _CLOSE
            + b"Content-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
    except OSError:
        pass


def _pipe(
    client: socket.socket, upstream: socket.socket, timeout: float, *, rewrite_head: bool
) -> None:
    """Relay both ways until the upstream is done (or both sides are, for a tunnel)."""
    pending_head = b"" if rewrite_head else None
    open_sides = {client, upstream}
    with selectors.DefaultSelector() as selector:
        for sock in open_sides:
            selector.register(sock, selectors.EVENT_READ)
        while open_sides:
            events = selector.select(timeout)
            if not events:
                return  # idle for too long
            for key, _ in events:
                source: socket.socket = key.fileobj  # type: ignore[assignment]
                sink = upstream if source is client else client
                try:
                    data = source.recv(65536)
                except OSError:
                    return
                if not data:
                    if source is upstream:
                        if pending_head:
                            client.sendall(pending_head)
                        return
                    selector.unregister(source)
                    open_sides.discard(source)
                    _shutdown_write(sink)
                    continue
                if source is upstream and pending_head is not None:
                    pending_head += data
                    if b"\r\n\r\n" not in pending_head and len(pending_head) < _MAX_HEAD:
                        continue
                    head, _, body = pending_head.partition(b"\r\n\r\n")
                    line, _, headers = head.partition(b"\r\n")
                    data = line + b"\r\n" + _without_hop_headers(headers) + _CLOSE + b"\r\n" + body
                    pending_head = None
                try:
                    sink.sendall(data)
                except OSError:
                    return


def _shutdown_write(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass


__all__ = ["Blocked", "PolicyProxy"]
