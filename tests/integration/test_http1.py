"""The lean HTTP/1.1 client against scripted servers on 127.0.0.1: keep-alive, connections the
server closed, every body framing, bad replies, the pool's bound, and the proxy fallback."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from amazoniax_dagster.clients import http1
from amazoniax_dagster.clients.s3http import S3Http
from amazoniax_dagster.core.errors import TransientError

pytestmark = pytest.mark.integration

Script = Callable[["Peer"], None]


class Peer:
    """One accepted connection, as the script for it sees it."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader = sock.makefile("rb")

    def request(self) -> tuple[str, dict[str, str], bytes]:
        """The next request line, headers and body; ("", {}, b"") if the client hung up."""
        line = self.reader.readline().decode()
        if not line:
            return "", {}, b""
        headers: dict[str, str] = {}
        while (text := self.reader.readline().decode()) not in ("\r\n", ""):
            name, _, value = text.partition(":")
            headers[name.strip().lower()] = value.strip()
        body = self.reader.read(int(headers.get("content-length", "0")))
        return line.strip(), headers, body

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)


class ScriptedServer:
    """Runs ``scripts[i]`` on the i-th connection it accepts; counts connections at once."""

    def __init__(self, scripts: list[Script]) -> None:
        self.scripts = scripts
        self.accepted = 0
        self.open_now = 0
        self.most_open = 0
        self.requests: list[str] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                script = self.scripts[min(self.accepted, len(self.scripts) - 1)]
                self.accepted += 1
                self.open_now += 1
                self.most_open = max(self.most_open, self.open_now)
            threading.Thread(target=self._run, args=(script, sock), daemon=True).start()

    def _run(self, script: Script, sock: socket.socket) -> None:
        try:
            script(Peer(sock))
        except OSError:
            pass
        finally:
            with self._lock:
                self.open_now -= 1
            sock.close()

    def close(self) -> None:
        self._listener.close()


@pytest.fixture()
def serve() -> Iterator[Callable[..., tuple[ScriptedServer, http1.ConnectionPool]]]:
    made: list[tuple[ScriptedServer, http1.ConnectionPool]] = []

    def start(*scripts: Script, maxsize: int = 4, read_timeout: float = 5.0) -> Any:
        server = ScriptedServer(list(scripts))
        pool = http1.ConnectionPool(
            "127.0.0.1", server.port, maxsize=maxsize, connect_timeout=2, read_timeout=read_timeout
        )
        made.append((server, pool))
        return server, pool

    yield start
    for server, pool in made:
        pool.close()
        server.close()


def ok(body: bytes = b"", *extra: str) -> bytes:
    head = "".join(f"{h}\r\n" for h in extra)
    return f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n{head}\r\n".encode() + body


def keep_answering(peer: Peer) -> None:
    """Answers every request with its own path, on one kept-alive connection."""
    while (line := peer.request()[0]) != "":
        peer.send(ok(line.split()[1].encode()))


def get(pool: http1.ConnectionPool, path: str, method: str = "GET") -> tuple[int, bytes]:
    response = pool.request(method, path, {"host": "x"})
    data = response.read()
    response.release_conn()
    return response.status, data


def test_requests_share_one_kept_alive_connection(serve: Any) -> None:
    server, pool = serve(keep_answering)
    assert [get(pool, f"/{i}") for i in range(5)] == [(200, f"/{i}".encode()) for i in range(5)]
    assert server.accepted == 1


def test_an_idle_connection_the_server_closed_is_not_reused(serve: Any) -> None:
    def once(peer: Peer) -> None:
        peer.request()
        peer.send(ok(b"first"))  # then the server hangs up on the idle connection

    server, pool = serve(once, keep_answering)
    assert get(pool, "/a") == (200, b"first")
    time.sleep(0.2)
    assert get(pool, "/b") == (200, b"/b")
    assert server.accepted == 2


def test_a_request_the_server_drops_on_a_reused_connection_is_sent_again(serve: Any) -> None:
    def drops_the_second(peer: Peer) -> None:
        peer.request()
        peer.send(ok(b"first"))
        peer.request()  # read, and closed without a reply: a keep-alive timeout racing us

    server, pool = serve(drops_the_second, keep_answering)
    assert get(pool, "/a") == (200, b"first")
    assert get(pool, "/b") == (200, b"/b")
    assert server.accepted == 2


def test_a_new_connection_closed_without_a_reply_is_an_error(serve: Any) -> None:
    def hangs_up(peer: Peer) -> None:
        peer.request()

    _, pool = serve(hangs_up)
    with pytest.raises(http1.ProtocolError, match="without replying"):
        pool.request("GET", "/", {"host": "x"})


def test_a_chunked_body_is_read_whole_or_in_pieces(serve: Any) -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;name=value\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n"
    )

    def twice(peer: Peer) -> None:
        for _ in range(2):
            peer.request()
            peer.send(chunked)
        keep_answering(peer)

    server, pool = serve(twice)
    assert get(pool, "/") == (200, b"hello, world")
    response = pool.request("GET", "/", {"host": "x"})
    pieces = []
    while piece := response.read(3):
        pieces.append(piece)
    response.release_conn()
    assert pieces == [b"hel", b"lo,", b" wo", b"rld"]
    assert get(pool, "/after") == (200, b"/after")  # the connection was left clean
    assert server.accepted == 1


def test_a_body_that_ends_with_the_connection_is_read_to_its_end(serve: Any) -> None:
    def no_length(peer: Peer) -> None:
        peer.request()
        peer.send(b"HTTP/1.1 200 OK\r\n\r\nall of it")
        peer.sock.shutdown(socket.SHUT_WR)

    server, pool = serve(no_length, keep_answering)
    assert get(pool, "/") == (200, b"all of it")
    assert get(pool, "/next") == (200, b"/next")
    assert server.accepted == 2  # that connection could not be reused


def test_connection_close_and_http_1_0_are_not_reused(serve: Any) -> None:
    def close_header(peer: Peer) -> None:
        peer.request()
        peer.send(ok(b"bye", "Connection: close"))

    def http10(peer: Peer) -> None:
        peer.request()
        peer.send(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")

    server, pool = serve(close_header, http10, keep_answering)
    assert get(pool, "/") == (200, b"bye")
    assert get(pool, "/") == (200, b"ok")
    assert get(pool, "/last") == (200, b"/last")
    assert server.accepted == 3


def test_interim_replies_and_head_bodies_are_framed_right(serve: Any) -> None:
    def script(peer: Peer) -> None:
        peer.request()
        peer.send(b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b"after continue"))
        peer.request()
        peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")  # HEAD: no body follows
        keep_answering(peer)

    server, pool = serve(script)
    assert get(pool, "/") == (200, b"after continue")
    assert get(pool, "/", method="HEAD") == (200, b"")
    assert get(pool, "/again") == (200, b"/again")
    assert server.accepted == 1


def test_repeated_headers_are_joined_and_names_are_case_blind(serve: Any) -> None:
    def script(peer: Peer) -> None:
        peer.request()
        peer.send(ok(b"", "X-Many: a", "x-many: b", 'ETag: "e"', "X-Folded: one", "  two"))

    _, pool = serve(script)
    response = pool.request("GET", "/", {"host": "x"})
    assert response.headers.get("x-many") == "a, b"
    assert response.headers["ETAG"] == '"e"' and "Etag" in response.headers
    assert response.headers.get("X-Folded") == "one two"
    response.release_conn()


@pytest.mark.parametrize(
    "reply, message",
    [
        (b"SPDY/3 200 OK\r\n\r\n", "HTTP/1.x status"),
        (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "malformed"),
        (b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 101 + b"\r\n", "more than 100 headers"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n", "not a number"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n", "inside the reply's headers"),
    ],
)
def test_a_reply_that_is_not_http_is_a_protocol_error(
    serve: Any, reply: bytes, message: str
) -> None:
    def script(peer: Peer) -> None:
        peer.request()
        peer.send(reply)

    _, pool = serve(script)
    with pytest.raises(http1.ProtocolError, match=message):
        pool.request("GET", "/", {"host": "x"})


@pytest.mark.parametrize(
    "reply, message",
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "5 bytes early"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "not hexadecimal"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\nabc", "inside a chunk"),
    ],
)
def test_a_body_cut_short_or_garbled_is_a_protocol_error(
    serve: Any, reply: bytes, message: str
) -> None:
    def script(peer: Peer) -> None:
        peer.request()
        peer.send(reply)
        peer.sock.shutdown(socket.SHUT_WR)

    _, pool = serve(script)
    response = pool.request("GET", "/", {"host": "x"})
    with pytest.raises(http1.ProtocolError, match=message):
        response.read()


def test_no_more_than_maxsize_connections_are_open_at_once(serve: Any) -> None:
    def slow(peer: Peer) -> None:
        while (line := peer.request()[0]) != "":
            time.sleep(0.05)
            peer.send(ok(line.split()[1].encode()))

    server, pool = serve(slow, maxsize=2)
    with ThreadPoolExecutor(8) as workers:
        results = list(workers.map(lambda i: get(pool, f"/{i}"), range(24)))
    assert results == [(200, f"/{i}".encode()) for i in range(24)]
    assert server.most_open == 2


def test_a_reply_closed_early_frees_its_slot_and_its_connection(serve: Any) -> None:
    def script(peer: Peer) -> None:
        peer.request()
        peer.send(ok(b"x" * 100_000))
        keep_answering(peer)

    server, pool = serve(script, keep_answering, maxsize=1)
    response = pool.request("GET", "/big", {"host": "x"})
    assert response.read(10) == b"x" * 10
    response.close()  # unread bytes remain: that connection must not carry the next reply
    assert get(pool, "/next") == (200, b"/next")
    assert server.accepted == 2


def test_a_silent_server_times_out(serve: Any) -> None:
    def silent(peer: Peer) -> None:
        peer.request()
        time.sleep(2)

    _, pool = serve(silent, read_timeout=0.3)
    with pytest.raises(TimeoutError):
        pool.request("GET", "/", {"host": "x"})


def test_a_header_value_with_a_line_break_is_refused(serve: Any) -> None:
    _, pool = serve(keep_answering)
    with pytest.raises(ValueError, match="line break"):
        pool.request("GET", "/", {"host": "x", "x-amz-meta-a": "b\r\nX-Injected: 1"})


def test_s3http_translates_protocol_errors_to_transient(serve: Any) -> None:
    def garbage(peer: Peer) -> None:
        while peer.request()[0]:
            peer.send(b"garbage\r\n\r\n")

    server, _ = serve(garbage)
    client = S3Http(
        endpoint_url=f"http://127.0.0.1:{server.port}",
        access_key_id="k",
        secret_access_key="s",
        region=None,
    )
    with pytest.raises(TransientError, match="HTTP/1.x status"):
        client.get_object("b", "k", what="get")
    client.close()


def test_with_a_proxy_in_the_environment_requests_go_through_it(
    serve: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Proxies are left to urllib3: plain HTTP reaches the proxy in absolute form."""
    seen: list[tuple[str, dict[str, str]]] = []

    def proxy(peer: Peer) -> None:
        while True:
            line, headers, _ = peer.request()
            if not line:
                return
            seen.append((line, headers))
            peer.send(ok(b"from the proxy"))

    server, _ = serve(proxy)
    monkeypatch.setenv("HTTP_PROXY", f"http://user:p%40ss@127.0.0.1:{server.port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.setenv("http_proxy", f"http://user:p%40ss@127.0.0.1:{server.port}")
    client = S3Http(
        endpoint_url="http://s3.example.test:9000",
        access_key_id="k",
        secret_access_key="s",
        region=None,
    )
    assert client.get_object("b", "some key", what="get").read() == b"from the proxy"
    client.close()
    line, headers = seen[0]
    assert line == "GET http://s3.example.test:9000/b/some%20key HTTP/1.1"
    assert headers["proxy-authorization"] == "Basic dXNlcjpwQHNz"  # user:p@ss
    assert headers["host"] == "s3.example.test:9000"
