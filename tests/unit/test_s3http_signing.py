"""The hand-made SigV4 signer signs exactly as botocore does, and the part-size rule holds."""

from __future__ import annotations

import hashlib

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from amazoniax_dagster.clients.output_bucket import MAX_PARTS, MIN_PART_SIZE, part_size_for
from amazoniax_dagster.clients.s3http import EMPTY_SHA256, Signer, canonical_query

KEY_ID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
HOST = "127.0.0.1:8333"


def botocore_authorization(
    method: str, path: str, query: str, headers: dict[str, str], body: bytes
) -> tuple[str, str]:
    """(Authorization, X-Amz-Date) as botocore's S3 signer computes them over plain HTTP."""
    url = f"http://{HOST}{path}" + (f"?{query}" if query else "")
    request = AWSRequest(method=method, url=url, headers=dict(headers), data=body)
    S3SigV4Auth(Credentials(KEY_ID, SECRET), "s3", "eu-west-1").add_auth(request)
    return str(request.headers["Authorization"]), str(request.headers["X-Amz-Date"])


@pytest.mark.parametrize(
    ("method", "path", "params", "headers", "body"),
    [
        ("GET", "/bucket/exports/a.csv", {}, {}, b""),
        # a key with spaces, plus signs, unicode and reserved characters, encoded once
        ("GET", "/bucket/dir/a%20b%2Bc~d%25e%C3%A9%3D.csv", {}, {"range": "bytes=0-9"}, b""),
        (
            "PUT",
            "/bucket/raw/ch/job/f.bin",
            {},
            {"x-amz-meta-sha256": "ab" * 32, "content-type": "text/plain"},
            b"hello",
        ),
        ("POST", "/bucket/big.bin", {"uploads": ""}, {"x-amz-meta-sha256": "cd" * 32}, b""),
        ("PUT", "/bucket/big.bin", {"partNumber": "7", "uploadId": "a/b+c=="}, {}, b"x" * 100),
        (
            "GET",
            "/bucket",
            {
                "list-type": "2",
                "prefix": "exports/2026 q1/",
                "encoding-type": "url",
                "continuation-token": "1/ab+cd==",
                "delimiter": "/",
            },
            {},
            b"",
        ),
        ("POST", "/bucket", {"delete": ""}, {"content-md5": "1B2M2Y8AsgTpgAmY7PhCfg=="}, b"<x/>"),
    ],
)
def test_signature_matches_botocore(
    method: str, path: str, params: dict[str, str], headers: dict[str, str], body: bytes
) -> None:
    query = canonical_query(params)
    expected, amz_date = botocore_authorization(method, path, query, headers, body)
    payload = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
    signed = Signer(KEY_ID, SECRET, "eu-west-1").sign(
        method, HOST, path, query, headers, payload, amz_date=amz_date
    )
    assert signed["authorization"] == expected
    assert signed["x-amz-content-sha256"] == payload
    assert signed["host"] == HOST


def test_a_different_secret_gives_a_different_signature() -> None:
    args = ("GET", HOST, "/b/k", "", {}, EMPTY_SHA256)
    one = Signer(KEY_ID, SECRET, "us-east-1").sign(*args, amz_date="20260101T000000Z")
    two = Signer(KEY_ID, SECRET + "x", "us-east-1").sign(*args, amz_date="20260101T000000Z")
    assert one["authorization"] != two["authorization"]


def test_the_signer_never_shows_its_secret() -> None:
    signer = Signer(KEY_ID, SECRET, "us-east-1")
    assert SECRET not in repr(signer) and KEY_ID not in repr(signer)
    signed = signer.sign("GET", HOST, "/b/k", "", {}, EMPTY_SHA256, amz_date="20260101T000000Z")
    assert all(SECRET not in value for value in signed.values())


def test_canonical_query_sorts_and_encodes() -> None:
    query = canonical_query({"uploadId": "a/b+c", "partNumber": "2", "uploads": ""})
    assert query == "partNumber=2&uploadId=a%2Fb%2Bc&uploads="


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (None, 16 * 1024 * 1024),
        (0, 8 * 1024 * 1024),
        (2 * 1024**3, 8 * 1024 * 1024),
        (200 * 1024**3, 21 * 1024 * 1024),  # 10,000 parts of 8 MiB are not enough
    ],
)
def test_part_size_fits_s3_limits(size: int | None, expected: int) -> None:
    part = part_size_for(size)
    assert part == expected
    assert part >= MIN_PART_SIZE
    if size:
        assert -(-size // part) <= MAX_PARTS
