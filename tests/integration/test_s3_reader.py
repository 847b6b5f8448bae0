"""The customer-bucket reader (botocore): real round trips on SeaweedFS for the awkward keys,
and a canned server for the replies SeaweedFS never sends (throttling, garbage, cut bodies)."""

from __future__ import annotations

import ssl
import threading
import uuid
from base64 import b64encode
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from amazoniax_dagster.clients.s3_reader import ReaderSettings, S3Reader
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
    "ctl/tab\there.csv",
    "ctl/bell\x07.csv",
    "ctl/new\nline.csv",
]


def reader_for(endpoint_url: str, **kwargs: Any) -> S3Reader:
    return S3Reader(
        ReaderSettings(
            endpoint_url=endpoint_url,
            access_key_id=kwargs.pop("access_key_id", "k"),
            secret_access_key=kwargs.pop("secret_access_key", "s"),
            region=None,
            **kwargs,
        )
    )


@pytest.fixture()
def reader(stack: StackEndpoints) -> Iterator[S3Reader]:
    client = reader_for(
        stack.s3_endpoint_url,
        access_key_id=stack.s3_access_key_id,
        secret_access_key=stack.s3_secret_access_key,
    )
    yield client
    client.close()


def test_awkward_keys_are_listed_and_fetched_byte_for_byte(
    reader: S3Reader, output_client: Any, stack: StackEndpoints
) -> None:
    bucket, prefix = stack.output_bucket, f"reader-{uuid.uuid4().hex[:8]}/"
    for i, key in enumerate(KEYS):
        output_client.put_object(Bucket=bucket, Key=prefix + key, Body=f"body {i}".encode())
    listed = {o.key: o.size for o in reader.list_objects(bucket, prefix, what="list")}
    assert listed == {prefix + key: len(f"body {i}") for i, key in enumerate(KEYS)}
    for i, key in enumerate(KEYS):
        stream = reader.get_object(bucket, prefix + key, what="get")
        assert stream.read() == f"body {i}".encode()
    top = [o.key for o in reader.list_objects(bucket, prefix, delimiter="/", what="top")]
    assert top == [prefix + "plain.csv"]  # folders are not descended with a delimiter
    for key in KEYS:  # one by one: a batch delete's XML cannot carry control characters
        output_client.delete_object(Bucket=bucket, Key=prefix + key)


def test_a_large_object_streams_in_parts(
    reader: S3Reader, output_client: Any, stack: StackEndpoints
) -> None:
    key = f"reader-{uuid.uuid4().hex[:8]}/big.bin"
    body = bytes(range(256)) * 4096  # 1 MiB
    output_client.put_object(Bucket=stack.output_bucket, Key=key, Body=body)
    stream = reader.get_object(stack.output_bucket, key, what="get")
    parts = []
    while part := stream.read(64 * 1024):
        assert len(part) <= 64 * 1024
        parts.append(part)
    stream.close()
    assert len(parts) >= 16 and b"".join(parts) == body
    output_client.delete_object(Bucket=stack.output_bucket, Key=key)


def test_listing_follows_continuation_tokens(
    reader: S3Reader, output_client: Any, stack: StackEndpoints
) -> None:
    bucket, prefix = stack.output_bucket, f"pages-{uuid.uuid4().hex[:8]}/"
    keys = [f"{prefix}{i:04d}" for i in range(1005)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: output_client.put_object(Bucket=bucket, Key=k, Body=b"x"), keys))
    assert [o.key for o in reader.list_objects(bucket, prefix, what="list")] == keys
    for i in range(0, len(keys), 1000):
        objects = [{"Key": k} for k in keys[i : i + 1000]]
        output_client.delete_objects(Bucket=bucket, Delete={"Objects": objects})


def test_a_missing_bucket_is_a_config_error(reader: S3Reader) -> None:
    with pytest.raises(ConfigError, match="NoSuchBucket"):
        list(reader.list_objects(f"missing-{uuid.uuid4().hex[:8]}", "", what="list"))


def test_wrong_keys_are_a_config_error(stack: StackEndpoints) -> None:
    wrong = reader_for(stack.s3_endpoint_url, access_key_id=stack.s3_access_key_id)
    try:
        with pytest.raises(ConfigError, match="SignatureDoesNotMatch|AccessDenied"):
            list(wrong.list_objects(stack.output_bucket, "", what="list"))
    finally:
        wrong.close()


# --- replies SeaweedFS does not send ------------------------------------------------------

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
    ("GET", "/b/throttled"): (503, {"Retry-After": "7"}, SLOW_DOWN),
    ("GET", "/b/denied"): (403, {}, DENIED),
    ("GET", "/b/gateway"): (502, {"Content-Type": "text/html"}, b"<html>bad gateway</html>"),
    ("GET", "/b/short"): (200, {"Content-Length": "100"}, b"only ten b"),
    ("GET", "/b/a//b/../c/"): (200, {}, b"exact"),
    ("GET", "/bomb" + LIST): (200, {}, BOMB),
    # the same bomb in UTF-16, where no "<!" byte pair shows the DOCTYPE
    ("GET", "/wide" + LIST): (200, {}, BOMB.decode().encode("utf-16")),
    # three pages; the second page's token has an XML escape in it, keys are URL-encoded
    ("GET", "/pages" + LIST): (200, {}, page(["a%2F%2Fb", "c%2F"], "t1")),
    ("GET", "/pages" + AFTER.format("t1")): (200, {}, page(["d%0A", "e+f"], "t&amp;2")),
    ("GET", "/pages" + AFTER.format("t%262")): (200, {}, page(["g%25"], None)),
    # a server that hands out the same token again
    ("GET", "/loop" + LIST): (200, {}, page(["a"], "t1")),
    ("GET", "/loop" + AFTER.format("t1")): (200, {}, page(["b"], "t1")),
}
REQUESTED: list[str] = []  # paths the canned server was asked for, in order
HEADERS: list[dict[str, str]] = []  # and their headers


def _route(path: str) -> str:
    """The path with its query parameters sorted (botocore's order is its own)."""
    base, _, query = path.partition("?")
    return f"{base}?{'&'.join(sorted(query.split('&')))}" if query else base


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
            path = _route(self.path)  # a forwarding proxy's request names the whole URL
            REQUESTED.append(path)
            HEADERS.append({k.lower(): v for k, v in self.headers.items()})
            local = "/" + path.split("/", 3)[3] if path.startswith("http://") else path
            status, headers, body = ROUTES.get((self.command, local), (404, {}, b""))
            self.send_response(status)
            headers = {"Content-Length": str(len(body))} | headers
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
            if headers["Content-Length"] != str(len(body)):
                self.close_connection = True

        do_GET = do_HEAD = _reply  # noqa: N815

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture()
def canned_reader(canned: str) -> Iterator[S3Reader]:
    client = reader_for(canned)
    yield client
    client.close()


def test_throttling_is_sent_once_and_keeps_the_servers_retry_after(
    canned_reader: S3Reader,
) -> None:
    REQUESTED.clear()
    with pytest.raises(TransientError, match="SlowDown") as caught:
        canned_reader.get_object("b", "throttled", what="get")
    assert caught.value.retry_after == 7.0
    assert REQUESTED == ["/b/throttled"]  # the job's RetryPolicy retries, not botocore


def test_access_denied_is_a_config_error(canned_reader: S3Reader) -> None:
    with pytest.raises(ConfigError, match="access denied"):
        canned_reader.get_object("b", "denied", what="get")


def test_a_gateway_page_instead_of_xml_is_transient(canned_reader: S3Reader) -> None:
    with pytest.raises(TransientError, match="502"):
        canned_reader.get_object("b", "gateway", what="get")


def test_a_body_cut_short_is_transient(canned_reader: S3Reader) -> None:
    stream = canned_reader.get_object("b", "short", what="get short")
    with pytest.raises(TransientError, match="get short"):
        while stream.read(1024):
            pass


def test_pages_are_followed_and_keys_unquoted_exactly(canned_reader: S3Reader) -> None:
    REQUESTED.clear()
    keys = [o.key for o in canned_reader.list_objects("pages", "", what="list")]
    assert keys == ["a//b", "c/", "d\n", "e f", "g%"]
    assert REQUESTED == [
        "/pages" + LIST,
        "/pages" + AFTER.format("t1"),
        "/pages" + AFTER.format("t%262"),
    ]


def test_a_key_is_sent_exactly_as_listed(canned_reader: S3Reader) -> None:
    REQUESTED.clear()
    assert canned_reader.get_object("b", "a//b/../c/", what="get").read() == b"exact"
    assert REQUESTED == ["/b/a//b/../c/"]  # no folding of "//" or "..", the trailing "/" kept


def test_xml_with_entities_is_refused_not_expanded(canned_reader: S3Reader) -> None:
    for bucket in ("bomb", "wide"):
        with pytest.raises(TransientError, match="not valid XML"):
            list(canned_reader.list_objects(bucket, "", what="list"))


def test_without_keys_requests_go_unsigned(canned: str) -> None:
    anonymous = reader_for(canned, access_key_id=None, secret_access_key=None)
    HEADERS.clear()
    assert anonymous.get_object("b", "a//b/../c/", what="get").read() == b"exact"
    anonymous.close()
    signed = reader_for(canned)
    signed.get_object("b", "a//b/../c/", what="get").read()
    signed.close()
    assert "authorization" not in HEADERS[0]
    assert HEADERS[1]["authorization"].startswith("AWS4-HMAC-SHA256 Credential=k/")


def test_the_environments_proxy_carries_requests_with_its_credentials(
    canned: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    endpoint = "http://s3.customer.invalid:9000"  # resolvable only by way of the proxy
    monkeypatch.setenv("HTTP_PROXY", canned.replace("http://", "http://user:p%40ss@"))
    client = reader_for(endpoint)
    with pytest.raises(ConfigError, match="access denied"):
        client.get_object("b", "denied", what="get")
    client.close()
    assert REQUESTED[-1] == f"{endpoint}/b/denied"  # forwarded: the whole URL
    assert HEADERS[-1]["proxy-authorization"] == "Basic " + b64encode(b"user:p@ss").decode()

    monkeypatch.setenv("NO_PROXY", "customer.invalid")
    direct = reader_for(endpoint)
    before = len(REQUESTED)
    with pytest.raises(TransientError):
        direct.get_object("b", "denied", what="get")
    direct.close()
    assert len(REQUESTED) == before  # NO_PROXY: sent straight to the (unknown) host


def test_a_repeated_continuation_token_is_an_error_not_a_loop(canned_reader: S3Reader) -> None:
    with pytest.raises(TransientError, match="repeats a continuation token"):
        list(canned_reader.list_objects("loop", "", what="list"))


# --- TLS ----------------------------------------------------------------------------------


@pytest.fixture()
def tls_server(tmp_path: Path) -> Iterator[tuple[str, TlsFiles]]:
    """An HTTPS server answering every listing with an empty page."""
    tls = make_tls(tmp_path)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            body = b"<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls.server_pem)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}", tls
    server.shutdown()
    server.server_close()


def test_https_is_verified_against_the_ca_bundle(
    tls_server: tuple[str, TlsFiles], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, tls = tls_server
    (tmp_path / "other").mkdir()
    other = make_tls(tmp_path / "other")  # a CA that did not sign the server's certificate
    (tmp_path / "other-ca.pem").write_text(other.ca_pem)
    monkeypatch.setenv("AWS_CA_BUNDLE", str(tmp_path / "other-ca.pem"))
    strange = reader_for(url)
    with pytest.raises(ConfigError, match="SSL"):
        list(strange.list_objects("b", "", what="list"))
    strange.close()

    (tmp_path / "ca.pem").write_text(tls.ca_pem)
    monkeypatch.setenv("AWS_CA_BUNDLE", str(tmp_path / "ca.pem"))
    client = reader_for(url)
    assert list(client.list_objects("b", "", what="list")) == []
    client.close()


# --- timeouts and parallel requests -------------------------------------------------------


@pytest.fixture()
def gated() -> Iterator[tuple[str, threading.Barrier, threading.Event]]:
    """A server whose GETs answer only once four of them wait together (``/b/together``), or
    never (``/b/silent``: until the test ends)."""
    barrier, release = threading.Barrier(4, timeout=20), threading.Event()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if self.path == "/b/silent":
                release.wait()
                return
            try:
                barrier.wait()
                status, body = 200, b"together"
            except threading.BrokenBarrierError:
                status, body = 500, b""
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", barrier, release
    release.set()
    server.shutdown()
    server.server_close()


def test_one_reader_serves_the_engines_parallel_gets(
    gated: tuple[str, threading.Barrier, threading.Event],
) -> None:
    url, _, _ = gated
    client = reader_for(url, max_connections=4)
    with ThreadPoolExecutor(4) as pool:
        bodies = list(
            pool.map(lambda _: client.get_object("b", "together", what="g").read(), "abcd")
        )
    client.close()
    assert bodies == [b"together"] * 4  # four requests in flight at once on one reader


def test_a_silent_server_fails_after_the_configured_timeout(
    gated: tuple[str, threading.Barrier, threading.Event],
) -> None:
    url, _, _ = gated
    client = reader_for(url, timeout_seconds=0.5)
    with pytest.raises(TransientError, match="ReadTimeoutError"):
        client.get_object("b", "silent", what="get")
    client.close()
