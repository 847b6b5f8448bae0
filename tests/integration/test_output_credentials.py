"""The output bucket on the AWS credential chain: keys from a container-credentials endpoint
(the EKS Pod Identity agent's API, served here on 127.0.0.1), nothing else."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from amazoniax_dagster.cli.doctor import CheckFailed, check_s3
from amazoniax_dagster.cli.settings import Settings
from amazoniax_dagster.clients.output_bucket import OutputBucket, OutputSettings
from amazoniax_dagster.core.errors import InfrastructureError
from amazoniax_dagster.devstack.local_stack import StackEndpoints

pytestmark = pytest.mark.integration

AUTH_TOKEN = "pod-identity-token"


class CredentialsEndpoint:
    """Answers like the EKS Pod Identity agent / ECS: JSON with temporary keys."""

    def __init__(self, access_key_id: str, secret_access_key: str) -> None:
        self.requests: list[str] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                return

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                endpoint.requests.append(self.headers.get("Authorization") or "")
                body = json.dumps(
                    {
                        "AccessKeyId": access_key_id,
                        "SecretAccessKey": secret_access_key,
                        # The agent's token is null here: SeaweedFS checks session tokens
                        # against its own STS, which did not issue this one.
                        "Token": None,
                        "Expiration": (datetime.now(UTC) + timedelta(hours=1)).strftime(
                            "%Y-%m-%dT%H:%M:%SZ"
                        ),
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/credentials"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def only_the_chain(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    token_file = tmp_path / "token"
    token_file.write_text(AUTH_TOKEN)
    monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", str(token_file))


@pytest.fixture()
def agent(stack: StackEndpoints) -> Iterator[CredentialsEndpoint]:
    endpoint = CredentialsEndpoint(stack.s3_access_key_id, stack.s3_secret_access_key)
    yield endpoint
    endpoint.close()


def test_the_output_bucket_uploads_with_credentials_from_the_container_endpoint(
    stack: StackEndpoints,
    only_the_chain: None,
    agent: CredentialsEndpoint,
    output_client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", agent.url)
    bucket = OutputBucket(
        OutputSettings(
            bucket=stack.output_bucket, endpoint_url=stack.s3_endpoint_url, region=stack.s3_region
        )
    )
    bucket.upload_bytes("raw/pod-identity/j1/a.csv", b"id\n1\n", sha256="0" * 64)
    assert agent.requests and set(agent.requests) == {AUTH_TOKEN}
    got = output_client.get_object(Bucket=stack.output_bucket, Key="raw/pod-identity/j1/a.csv")
    assert got["Body"].read() == b"id\n1\n"


def test_wrong_keys_from_the_endpoint_are_refused_by_the_server(
    stack: StackEndpoints, only_the_chain: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = CredentialsEndpoint(stack.s3_access_key_id, "not-the-secret")
    try:
        monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", wrong.url)
        bucket = OutputBucket(
            OutputSettings(
                bucket=stack.output_bucket,
                endpoint_url=stack.s3_endpoint_url,
                region=stack.s3_region,
            )
        )
        with pytest.raises(InfrastructureError, match="access denied"):
            bucket.upload_bytes("raw/pod-identity/j2/a.csv", b"x", sha256="0" * 64)
        assert wrong.requests
    finally:
        wrong.close()


def test_doctor_checks_the_bucket_with_the_credentials_the_uploads_use(
    stack: StackEndpoints,
    only_the_chain: None,
    agent: CredentialsEndpoint,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings(
        output_bucket=stack.output_bucket,
        s3_endpoint_url=stack.s3_endpoint_url,
        s3_region=stack.s3_region,
    )
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", agent.url)
    assert check_s3(settings, timeout=5) == (
        f"bucket {stack.output_bucket!r} at {stack.s3_endpoint_url}"
    )
    assert agent.requests and set(agent.requests) == {AUTH_TOKEN}
    wrong = CredentialsEndpoint(stack.s3_access_key_id, "not-the-secret")
    try:
        monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", wrong.url)
        with pytest.raises(CheckFailed, match="the secret access key is wrong") as failed:
            check_s3(settings, timeout=5)
        assert "not-the-secret" not in str(failed.value)
    finally:
        wrong.close()
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI")
    with pytest.raises(CheckFailed, match="no credentials for the output bucket"):
        check_s3(settings, timeout=5)


def test_stores_with_their_own_keys_never_send_the_process_credentials(
    stack: StackEndpoints, output_client: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    # SeaweedFS refuses a request that carries a session token it did not issue: had the
    # process's AWS_* variables been mixed into a store, its requests would fail here.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAPROCESSKEY000000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "process-secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "process-session-token")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")
    # a profile that does not exist, and a config file whose settings would break every request
    (tmp_path / "config").write_text(
        "[default]\nendpoint_url = http://127.0.0.1:9\ns3 =\n  addressing_style = virtual\n"
    )
    (tmp_path / "credentials").write_text(
        "[default]\naws_access_key_id = AKIAFILEKEY000000000\naws_secret_access_key = f\n"
        "aws_session_token = file-session-token\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    bucket = OutputBucket(
        OutputSettings(
            bucket=stack.output_bucket,
            endpoint_url=stack.s3_endpoint_url,
            access_key_id=stack.s3_access_key_id,
            secret_access_key=stack.s3_secret_access_key,
            region=stack.s3_region,
        )
    )
    bucket.upload_bytes("raw/own-keys/j1/a.csv", b"a\n", sha256="0" * 64)
    assert bucket.list_keys("raw/own-keys/j1/") == ["raw/own-keys/j1/a.csv"]

    from amazoniax_dagster.core.messages import S3SourceConfig
    from amazoniax_dagster.core.netpolicy import NetworkPolicy
    from amazoniax_dagster.sources.base import RemoteFile
    from amazoniax_dagster.sources.s3 import S3Source

    config = S3SourceConfig(
        bucket=stack.output_bucket,
        remote_path="raw/own-keys/",
        endpoint_url=stack.s3_endpoint_url,
        region=stack.s3_region,
        access_key=stack.s3_access_key_id,
        secret_access_key=stack.s3_secret_access_key,
    )
    policy = NetworkPolicy.from_env("127.0.0.0/8")
    for profile in ("default", "not-a-profile"):
        monkeypatch.setenv("AWS_PROFILE", profile)
        source = S3Source(config, policy=policy, max_connections=2)
        try:
            (listed,) = [f for f in source.list_files() if isinstance(f, RemoteFile)]
            with source.open(listed) as stream:
                assert stream.read() == b"a\n"
        finally:
            source.close()
        assert listed.relative_path == "j1/a.csv"
