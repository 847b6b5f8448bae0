"""Fault injection in front of a real server: an HTTP proxy on 127.0.0.1 that answers the first
N matching requests with an error, or holds them for a while before forwarding (a slow
source), and forwards everything else unchanged (the Host header included, so S3 signatures
stay valid)."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
)


@dataclass
class FaultPlan:
    """Fail requests for which ``matches(method, path)`` holds, ``failures`` times in all; with
    ``delay_seconds``, hold them that long and then forward them instead of failing them."""

    matches: Callable[[str, str], bool]
    failures: int
    delay_seconds: float = 0.0
    status: int = 503
    body: bytes = SLOW_DOWN
    seen: list[tuple[str, str]] = field(default_factory=list)
    failed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def should_fail(self, method: str, path: str) -> bool:
        with self.lock:
            self.seen.append((method, path))
            if self.failed < self.failures and self.matches(method, path):
                self.failed += 1
                return True
            return False


@contextmanager
def flaky_proxy(upstream_url: str, plan: FaultPlan) -> Iterator[str]:
    """Yield the proxy's URL; requests go to ``upstream_url`` unless the plan fails them."""
    upstream = urlsplit(upstream_url)
    closing = threading.Event()  # ends held requests when the proxy stops

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            return

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            hit = plan.should_fail(self.command, self.path)
            if hit and plan.delay_seconds:
                if closing.wait(plan.delay_seconds):
                    self.close_connection = True
                    return
            elif hit:
                self.send_response(plan.status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(plan.body)))
                self.end_headers()
                self.wfile.write(plan.body)
                return
            conn = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=30)
            try:
                headers = {k: v for k, v in self.headers.items()}
                conn.request(self.command, self.path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in ("transfer-encoding", "content-length", "connection"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
            finally:
                conn.close()

        do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle  # noqa: N815

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        closing.set()
        server.shutdown()
        server.server_close()
