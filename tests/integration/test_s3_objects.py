"""Customer GETs through obstore: which keys it sends exactly (compared, request by request,
with the reader's), exact bytes from SeaweedFS, its errors, and who chooses it."""

from __future__ import annotations

import ssl
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pytest

from amazoniax_dagster.clients.s3_objects import ObstoreObjects, obstore_safe
from amazoniax_dagster.clients.s3_reader import ReaderSettings, S3Reader
from amazoniax_dagster.core.errors import ConfigError, TransientError
from amazoniax_dagster.core.messages import S3SourceConfig
from amazoniax_dagster.core.netpolicy import NetworkPolicy
from amazoniax_dagster.devstack.local_stack import StackEndpoints
from amazoniax_dagster.sources.base import RemoteFile
from amazoniax_dagster.sources.s3 import S3Source
from tests.integration.ftp_servers import make_tls

pytestmark = pytest.mark.integration

# Keys obstore must send exactly as the reader does (and SeaweedFS must store exactly).
SAFE = [
    "plain.csv",
    "with space/and+plus.csv",
    "per%cent%20and%2F.txt",
    "deep/er/~tilde/x~y.bin",
    "unicode/éß中.json",
    "reserved/a&b<c>'d\"=e?f#g;h:i@j$k,l!m(n)o*p[q]r{s}t|u^v`w.txt",
    "dots/.hidden/..x/a..b/.../end.",
]
# Keys obstore refuses or rewrites: the predicate keeps them on the reader.
MANGLED = ["a//b", "trail/", "/lead", "a/./b", "a/../b", "tab\there", "bell\x07", "del\x7f"]


def settings(endpoint_url: str, **kwargs: Any) -> ReaderSettings:
    return ReaderSettings(
        endpoint_url=endpoint_url,
        access_key_id=kwargs.pop("access_key_id", "k"),
        secret_access_key=kwargs.pop("secret_access_key", "s"),
        region=None,
        **kwargs,
    )


class Recorder:
    """A server that lists ``listing`` for any bucket and answers every GET of an object
    with its path; it keeps each request's path and headers."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.listing: list[str] = []
        self.release = threading.Event()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                recorder.requests.append(
                    (self.path, {k.lower(): v for k, v in self.headers.items()})
                )
                local = "/" + self.path.split("/", 3)[3] if "://" in self.path else self.path
                path, _, query = local.partition("?")
                status, body = recorder.reply(path, query)
                self.send_response(status)
                if status == 503:
                    self.send_header("Retry-After", "7")
                cut = path.endswith(("/cut", "/cut-big"))  # promises more than it sends
                size = (2 << 20 if path.endswith("big") else 100) if cut else len(body)
                self.send_header("Content-Length", str(size))
                self.end_headers()
                self.wfile.write(body)
                self.close_connection = cut

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def reply(self, path: str, query: str) -> tuple[int, bytes]:
        if query:
            prefix = unquote(query.split("prefix=", 1)[1].split("&", 1)[0])
            keys = "".join(
                f"<Contents><Key>{quote(k)}</Key><Size>{len(k)}</Size></Contents>"
                for k in self.listing
                if k.startswith(prefix)
            )
            return 200, f"<ListBucketResult>{keys}</ListBucketResult>".encode()
        if path.endswith("/silent"):
            self.release.wait(10)  # until the test is over
            return 200, b"late"
        if path.endswith("/throttled"):
            return 503, b"<Error><Code>SlowDown</Code><Message>Slow</Message></Error>"
        if path.endswith("/denied"):
            return 403, b"<Error><Code>AccessDenied</Code><Message>Denied</Message></Error>"
        if path.endswith("/gateway"):
            return 502, b"<html>bad gateway</html>"
        key = unquote(path.split("/", 2)[2])
        return 200, key.encode()

    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def recorder() -> Iterator[Recorder]:
    server = Recorder()
    yield server
    server.close()


def test_obstore_requests_exactly_the_readers_path_for_every_safe_key(
    recorder: Recorder,
) -> None:
    reader = S3Reader(settings(recorder.url))
    objects = ObstoreObjects("b", settings(recorder.url))
    for key in SAFE:
        assert obstore_safe(key)
        recorder.requests.clear()
        assert reader.get_object("b", key, what="get").read() == key.encode()
        assert objects.get_object(key, what="get").read() == key.encode()
        first, second = recorder.paths()
        assert first == second, key
    for key in MANGLED:
        assert not obstore_safe(key)
        recorder.requests.clear()
        assert reader.get_object("b", key, what="get").read() == key.encode()
        try:
            objects.get_object(key, what="get")
        except ValueError:
            continue  # refused before sending
        first, second = recorder.paths()
        assert first != second, key  # sent, but not as the key says
    reader.close()


def test_safe_keys_come_back_byte_for_byte_from_seaweedfs(
    stack: StackEndpoints, output_client: Any
) -> None:
    bucket, prefix = stack.output_bucket, f"objects-{uuid.uuid4().hex[:8]}/"
    big = bytes(range(256)) * 6144  # 1.5 MiB: streamed, not fetched whole
    bodies = {prefix + key: f"body of {key}".encode() for key in SAFE} | {prefix + "big": big}
    for key, body in bodies.items():
        output_client.put_object(Bucket=bucket, Key=key, Body=body)
    own = settings(
        stack.s3_endpoint_url,
        access_key_id=stack.s3_access_key_id,
        secret_access_key=stack.s3_secret_access_key,
    )
    objects = ObstoreObjects(bucket, own)
    for key, body in bodies.items():
        assert objects.get_object(key, what="get").read() == body, key
    stream = objects.get_object(prefix + "big", what="get")
    parts = []
    while part := stream.read(64 * 1024):
        assert len(part) == min(64 * 1024, len(big) - 64 * 1024 * len(parts))
        parts.append(part)
    assert len(parts) == 24 and b"".join(parts) == big

    with pytest.raises(TransientError, match="NoSuchKey"):  # listed, then gone
        objects.get_object(prefix + "gone", what="get")
    missing = ObstoreObjects(f"missing-{uuid.uuid4().hex[:8]}", own)
    with pytest.raises(ConfigError, match="NoSuchBucket"):
        missing.get_object("k", what="get")
    wrong = ObstoreObjects(
        bucket, settings(stack.s3_endpoint_url, access_key_id=stack.s3_access_key_id)
    )
    with pytest.raises(ConfigError, match="SignatureDoesNotMatch|AccessDenied"):
        wrong.get_object(prefix + "big", what="get")
    output_client.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": key} for key in bodies]}
    )


def test_error_replies_are_sent_once_and_read_as_the_reader_reads_them(
    recorder: Recorder,
) -> None:
    objects = ObstoreObjects("b", settings(recorder.url))
    recorder.requests.clear()
    with pytest.raises(TransientError, match="SlowDown"):
        objects.get_object("throttled", what="get")
    assert recorder.paths() == ["/b/throttled"]  # the job's RetryPolicy retries, not obstore
    with pytest.raises(ConfigError, match="access denied"):
        objects.get_object("denied", what="get")
    with pytest.raises(TransientError, match="502"):
        objects.get_object("gateway", what="get")
    for key in ("cut", "cut-big"):  # fetched whole, and streamed
        with pytest.raises(TransientError, match=f"get {key}"):
            objects.get_object(key, what=f"get {key}").read()
    nobody = ObstoreObjects("b", settings("http://127.0.0.1:9"))  # nothing listens there
    with pytest.raises(TransientError, match="cannot get"):
        nobody.get_object("k", what="get")
    impatient = ObstoreObjects("b", settings(recorder.url, timeout_seconds=0.5))
    with pytest.raises(TransientError, match="timed out"):
        impatient.get_object("silent", what="get")


def test_https_is_verified(tmp_path: Path) -> None:
    """Against obstore's trusted roots: a certificate from an unknown CA is refused."""
    tls = make_tls(tmp_path)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls.server_pem)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        objects = ObstoreObjects("b", settings(f"https://127.0.0.1:{server.server_address[1]}"))
        with pytest.raises(ConfigError, match="SSL validation failed"):
            objects.get_object("k", what="get")
    finally:
        server.shutdown()
        server.server_close()


def test_channel_keys_or_none_never_the_process_credentials(
    recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAPROCESSKEY000000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "process-secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "process-session-token")
    monkeypatch.setenv("AWS_REQUEST_PAYER", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")
    recorder.requests.clear()
    ObstoreObjects("b", settings(recorder.url)).get_object("x", what="get").read()
    anonymous = settings(recorder.url, access_key_id=None, secret_access_key=None)
    ObstoreObjects("b", anonymous).get_object("x", what="get").read()
    (_, signed), (_, unsigned) = recorder.requests
    assert signed["authorization"].startswith("AWS4-HMAC-SHA256 Credential=k/")
    assert not {"x-amz-security-token", "x-amz-request-payer"} & set(signed)
    assert not {"authorization", "x-amz-security-token", "x-amz-date"} & set(unsigned)


def test_the_source_sends_each_key_by_the_client_that_keeps_it_exact(
    recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # remote_path may hold an empty segment; the relative paths below it are checked safe
    recorder.listing = ["da//ta/a.csv", "data/b c.csv"]
    policy = NetworkPolicy.from_env("127.0.0.0/8")

    def fetch(remote_path: str) -> list[tuple[str, str]]:
        config = S3SourceConfig(bucket="bkt", remote_path=remote_path, endpoint_url=recorder.url)
        source = S3Source(config, policy=policy, max_connections=2)
        (listed,) = [f for f in source.list_files() if isinstance(f, RemoteFile)]
        recorder.requests.clear()
        with source.open(listed) as stream:
            assert stream.read() == listed.key.encode()
        source.close()
        return [(path, headers["user-agent"]) for path, headers in recorder.requests]

    [(path, agent)] = fetch("da//ta/")
    assert path == "/bkt/da//ta/a.csv" and "object_store" not in agent
    [(path, agent)] = fetch("data/")
    assert path == "/bkt/data/b%20c.csv" and agent.startswith("object_store/")

    # a proxy in the environment: obstore would apply it by other rules, so the reader serves
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("HTTP_PROXY", recorder.url)
    [(path, agent)] = fetch("data/")
    assert path == f"{recorder.url}/bkt/data/b%20c.csv" and "object_store" not in agent
