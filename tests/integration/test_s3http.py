"""The plain-HTTP S3 client: real round trips on SeaweedFS for the awkward keys, and a canned
server for the replies SeaweedFS never sends (errors inside a 200, throttling, garbage)."""

from __future__ import annotations

import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from amazoniax_dagster.clients.s3http import S3Http
from amazoniax_dagster.core.errors import ConfigError, TransientError
from amazoniax_dagster.devstack.local_stack import StackEndpoints
from tests.integration.ftp_servers import TlsFiles, make_tls

pytestmark = pytest.mark.integration

KEYS = [
    "plain.csv",
    "with space/and+plus.csv",
    "unicode/éß中.json",
    "reserved/a&b<c>'d\"=e?f#g%h.txt",
    "deep/er/~tilde/x.bin",
]


@pytest.fixture()
def client(stack: StackEndpoints) -> Iterator[S3Http]:
    http = S3Http(
        endpoint_url=stack.s3_endpoint_url,
        access_key_id=stack.s3_access_key_id,
        secret_access_key=stack.s3_secret_access_key,
        region=stack.s3_region,
    )
    yield http
    http.close()


def test_awkward_keys_round_trip_through_put_list_get_and_delete(
    client: S3Http, stack: StackEndpoints
) -> None:
    bucket, prefix = stack.output_bucket, f"s3http-{uuid.uuid4().hex[:8]}/"
    for i, key in enumerate(KEYS):
        client.put_object(bucket, prefix + key, f"body {i}".encode(), what="put")
    listed = {o.key: o.size for o in client.list_objects(bucket, prefix, what="list")}
    assert listed == {prefix + key: len(f"body {i}") for i, key in enumerate(KEYS)}
    for i, key in enumerate(KEYS):
        stream = client.get_object(bucket, prefix + key, what="get")
        assert stream.read() == f"body {i}".encode()
    part = client.get_object(bucket, prefix + KEYS[0], byte_range=(2, 3), what="range")
    assert part.read() == b"dy"
    top = [o.key for o in client.list_objects(bucket, prefix, delimiter="/", what="top")]
    assert top == [prefix + "plain.csv"]  # folders are not descended with a delimiter
    client.delete_objects(bucket, [prefix + key for key in KEYS], what="delete")
    assert list(client.list_objects(bucket, prefix, what="list")) == []


def test_listing_follows_continuation_tokens(client: S3Http, stack: StackEndpoints) -> None:
    bucket, prefix = stack.output_bucket, f"pages-{uuid.uuid4().hex[:8]}/"
    keys = [f"{prefix}{i:04d}" for i in range(1005)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: client.put_object(bucket, k, b"x", what="put"), keys))
    assert [o.key for o in client.list_objects(bucket, prefix, what="list")] == keys
    client.delete_objects(bucket, keys, what="delete")


# --- replies SeaweedFS does not send ------------------------------------------------------

ERROR_IN_200 = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b"<Error><Code>InternalError</Code><Message>We encountered an internal error.</Message>"
    b"</Error>"
)
SLOW_DOWN = b"<Error><Code>SlowDown</Code><Message>Reduce your request rate.</Message></Error>"
DENIED = b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
BOMB = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
    b"<ListBucketResult><Name>&lol2;</Name></ListBucketResult>"
)


def page(keys: list[str], token: str | None) -> bytes:
    """A ListObjectsV2 page; ``token`` as it appears in the XML (escaped)."""
    contents = "".join(f"<Contents><Key>{k}</Key><Size>1</Size></Contents>" for k in keys)
    more = f"<IsTruncated>true</IsTruncated><NextContinuationToken>{token}</NextContinuationToken>"
    tail = more if token else "<IsTruncated>false</IsTruncated>"
    return f"<ListBucketResult>{contents}{tail}</ListBucketResult>".encode()


LIST = "?encoding-type=url&list-type=2&prefix="
AFTER = "?continuation-token={}&encoding-type=url&list-type=2&prefix="
ROUTES: dict[tuple[str, str], tuple[int, dict[str, str], bytes]] = {
    ("POST", "/b/complete?uploadId=u"): (200, {}, ERROR_IN_200),
    ("GET", "/b/throttled"): (503, {"Retry-After": "7"}, SLOW_DOWN),
    ("GET", "/b/denied"): (403, {}, DENIED),
    ("GET", "/b/gateway"): (502, {"Content-Type": "text/html"}, b"<html>bad gateway</html>"),
    ("GET", "/b/short"): (200, {"Content-Length": "100"}, b"only ten b"),
    ("GET", "/b?encoding-type=url&list-type=2&prefix="): (200, {}, BOMB),
    # the same bomb in UTF-16, where no "<!" byte pair shows the DOCTYPE
    ("GET", "/wide" + LIST): (200, {}, BOMB.decode().encode("utf-16")),
    # a comment: read by defusedxml, not the fast parser, and still a listing
    ("GET", "/noted" + LIST): (200, {}, b"<!-- hi -->" + page(["a &amp; b"], None)),
    # three pages; the second page's token has an XML escape in it
    ("GET", "/pages" + LIST): (200, {}, page(["a", "b"], "t1")),
    ("GET", "/pages" + AFTER.format("t1")): (200, {}, page(["c", "d"], "t&amp;2")),
    ("GET", "/pages" + AFTER.format("t%262")): (200, {}, page(["e"], None)),
    # a server that hands out the same token again
    ("GET", "/loop" + LIST): (200, {}, page(["a"], "t1")),
    ("GET", "/loop" + AFTER.format("t1")): (200, {}, page(["b"], "t1")),
}
REQUESTED: list[str] = []  # paths the canned server was asked for, in order


@pytest.fixture(scope="module")
def canned() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

        def _reply(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            REQUESTED.append(self.path)
            status, headers, body = ROUTES.get((self.command, self.path), (404, {}, b""))
            self.send_response(status)
            headers = {"Content-Length": str(len(body))} | headers
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
            if headers["Content-Length"] != str(len(body)):
                self.close_connection = True

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _reply  # noqa: N815

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture()
def canned_client(canned: str) -> Iterator[S3Http]:
    http = S3Http(endpoint_url=canned, access_key_id="k", secret_access_key="s", region=None)
    yield http
    http.close()


def test_an_error_inside_a_200_completion_is_an_error(canned_client: S3Http) -> None:
    with pytest.raises(TransientError, match="InternalError"):
        canned_client.complete_multipart_upload("b", "complete", "u", ['"e1"'], what="complete")


def test_throttling_keeps_the_servers_retry_after(canned_client: S3Http) -> None:
    with pytest.raises(TransientError, match="SlowDown") as caught:
        canned_client.get_object("b", "throttled", what="get")
    assert caught.value.retry_after == 7.0


def test_access_denied_is_a_config_error(canned_client: S3Http) -> None:
    with pytest.raises(ConfigError, match="access denied"):
        canned_client.get_object("b", "denied", what="get")


def test_a_gateway_page_instead_of_xml_is_transient(canned_client: S3Http) -> None:
    with pytest.raises(TransientError, match="502"):
        canned_client.get_object("b", "gateway", what="get")


def test_a_body_cut_short_is_transient(canned_client: S3Http) -> None:
    stream = canned_client.get_object("b", "short", what="get short")
    with pytest.raises(TransientError, match="get short"):
        while stream.read(1024):
            pass


def test_xml_with_entities_is_refused_not_expanded(canned_client: S3Http) -> None:
    for bucket in ("b", "wide"):
        with pytest.raises(TransientError, match="not valid XML"):
            list(canned_client.list_objects(bucket, "", what="list"))
    assert [o.key for o in canned_client.list_objects("noted", "", what="list")] == ["a & b"]


def test_the_next_page_is_asked_for_while_this_one_is_read(canned_client: S3Http) -> None:
    REQUESTED.clear()
    listing = canned_client.list_objects("pages", "", what="list")
    assert next(listing).key == "a"
    # The page after "t1" is on its way before the caller has read this page's second key.
    deadline = time.monotonic() + 5
    while "/pages" + AFTER.format("t1") not in REQUESTED and time.monotonic() < deadline:
        time.sleep(0.01)
    assert REQUESTED == ["/pages" + LIST, "/pages" + AFTER.format("t1")]
    # The escaped token is not guessed from the raw page: the parsed one asks for page three.
    assert [o.key for o in listing] == ["b", "c", "d", "e"]
    assert REQUESTED[2:] == ["/pages" + AFTER.format("t%262")]


def test_a_listing_left_early_stops_asking(canned_client: S3Http) -> None:
    REQUESTED.clear()
    listing = canned_client.list_objects("pages", "", what="list")
    assert next(listing).key == "a"
    listing.close()
    time.sleep(0.2)
    # Page two may have been asked for already; nothing after it is.
    assert REQUESTED[0] == "/pages" + LIST
    assert "/pages" + AFTER.format("t%262") not in REQUESTED


def test_a_repeated_continuation_token_is_an_error_not_a_loop(canned_client: S3Http) -> None:
    with pytest.raises(TransientError, match="repeats a continuation token"):
        list(canned_client.list_objects("loop", "", what="list"))


def test_an_endpoint_that_is_not_http_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="http"):
        S3Http(
            endpoint_url="ftp://example.com",
            access_key_id=None,
            secret_access_key=None,
            region=None,
        )


# --- TLS ----------------------------------------------------------------------------------


@pytest.fixture()
def tls_server(tmp_path: Path) -> Iterator[tuple[str, TlsFiles, list[dict[str, str]]]]:
    """An HTTPS server answering a part upload and a listing; records request headers."""
    tls = make_tls(tmp_path)
    seen: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

        def _reply(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            seen.append({k.lower(): v for k, v in self.headers.items()})
            body = b"<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>"
            self.send_response(200)
            self.send_header("ETag", '"part-etag"')
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_PUT = _reply  # noqa: N815

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls.server_pem)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}", tls, seen
    server.shutdown()
    server.server_close()


def test_https_is_verified_and_parts_go_unsigned(
    tls_server: tuple[str, TlsFiles, list[dict[str, str]]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, tls, seen = tls_server
    (tmp_path / "other").mkdir()
    other = make_tls(tmp_path / "other")  # a CA that did not sign the server's certificate
    (tmp_path / "other-ca.pem").write_text(other.ca_pem)
    monkeypatch.setenv("AWS_CA_BUNDLE", str(tmp_path / "other-ca.pem"))
    strange = S3Http(endpoint_url=url, access_key_id="k", secret_access_key="s", region=None)
    with pytest.raises(ConfigError, match="TLS"):
        list(strange.list_objects("b", "", what="list"))
    strange.close()

    (tmp_path / "ca.pem").write_text(tls.ca_pem)
    monkeypatch.setenv("AWS_CA_BUNDLE", str(tmp_path / "ca.pem"))
    client = S3Http(endpoint_url=url, access_key_id="k", secret_access_key="s", region=None)
    assert list(client.list_objects("b", "", what="list")) == []
    assert client.upload_part("b", "k", "u", 1, b"x" * 10, what="part") == '"part-etag"'
    client.close()
    assert seen[-1]["x-amz-content-sha256"] == "UNSIGNED-PAYLOAD"  # TLS guards the bytes
