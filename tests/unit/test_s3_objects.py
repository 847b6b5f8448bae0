"""Which customer keys go through obstore, and how its errors read in the error tree."""

import pytest

from amazoniax_dagster.clients.object_store import customer_store, error_from_reply, translated
from amazoniax_dagster.clients.s3_objects import obstore_safe, obstore_usable
from amazoniax_dagster.core.errors import ConfigError, TransientError


@pytest.mark.parametrize(
    "key",
    [
        "plain.csv",
        "deep/er/x.bin",
        "with space/and+plus.csv",
        "per%cent%20.txt",
        "~tilde/x~y",
        "unicode/éß中.json",
        "reserved/a&b<c>'d\"=e?f#g.txt",
        "dots/.hidden/..x/a..b/.../c.",
        "back\\slash",
    ],
)
def test_keys_obstore_sends_byte_for_byte(key: str) -> None:
    assert obstore_safe(key)


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/leading",
        "trailing/",
        "a//b",
        "a/./b",
        "a/../b",
        "./a",
        "a/..",
        "tab\there",
        "new\nline",
        "nul\x00",
        "del\x7f",
        "c1\x85next",
        "surrogate\udcff",
    ],
)
def test_keys_obstore_would_refuse_or_rewrite(key: str) -> None:
    assert not obstore_safe(key)


@pytest.mark.parametrize("name", ["HTTP_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"])
def test_a_proxy_keeps_every_get_on_the_reader(name: str) -> None:
    assert obstore_usable("http://s3.internal:9000", {"NO_PROXY": "x", "AWS_REGION": "eu-1"})
    for endpoint in (None, "http://s3.internal:9000", "https://s3.internal"):
        assert not obstore_usable(endpoint, {name: "http://proxy.internal:3128"})
        assert obstore_usable(endpoint, {name: ""})  # set but empty: no proxy


def test_a_ca_bundle_keeps_https_gets_on_the_reader() -> None:
    bundle = {"AWS_CA_BUNDLE": "/etc/private-ca.pem"}
    assert not obstore_usable(None, bundle)  # AWS: https
    assert not obstore_usable("HTTPS://s3.internal", bundle)
    assert obstore_usable("http://s3.internal:9000", bundle)  # no TLS: nothing to verify
    assert obstore_usable(None, {})


OBSTORE_ERROR = (
    "Generic S3 error: Error performing GET http://h/b/k in 1ms - Server returned non-2xx "
    "status code: {status}: {body}\n\nDebug source:\nGeneric {{ ... }}"
)


@pytest.mark.parametrize(
    ("status", "body", "expected", "text"),
    [
        ("503 Service Unavailable", "<Error><Code>SlowDown</Code></Error>", TransientError,
         "SlowDown"),
        ("403 Forbidden", "<Error><Code>AccessDenied</Code></Error>", ConfigError,
         "access denied"),
        ("404 Not Found", '<?xml version="1.0"?>\n<Error><Code>NoSuchKey</Code></Error>',
         TransientError, "NoSuchKey"),
        ("404 Not Found", "<Error><Code>NoSuchBucket</Code></Error>", ConfigError,
         "bucket does not exist"),
        ("400 Bad Request", "<Error><Code>InvalidArgument</Code><Message>m</Message></Error>",
         ConfigError, "InvalidArgument: m"),
        ("502 Bad Gateway", "<html>bad gateway</html>", TransientError, "502"),
        ("500 Internal Server Error", "", TransientError, "500"),
    ],
)  # fmt: skip
def test_error_replies_read_as_the_reader_reads_them(
    status: str, body: str, expected: type, text: str
) -> None:
    err = error_from_reply(OBSTORE_ERROR.format(status=status, body=body), "download s3://b/k")
    assert type(err) is expected
    assert text in str(err) and "download s3://b/k" in str(err)


@pytest.mark.parametrize(
    ("status", "body", "expected", "text"),
    [
        ("403 Forbidden", "<Error><Code>AccessDenied</Code></Error>", ConfigError,
         "access denied"),
        ("403 Forbidden", "<Error><Code>SignatureDoesNotMatch</Code></Error>", ConfigError,
         "SignatureDoesNotMatch"),
        ("404 Not Found", "<Error><Code>NoSuchBucket</Code></Error>", ConfigError,
         "bucket does not exist"),
        ("503 Service Unavailable", "<Error><Code>SlowDown</Code></Error>", TransientError,
         "SlowDown"),
    ],
)  # fmt: skip
def test_the_output_buckets_generic_errors_are_read_by_their_reply(
    status: str, body: str, expected: type, text: str
) -> None:
    """obstore reports a listing's refusal as a generic error, not PermissionDenied."""
    from obstore.exceptions import GenericError

    reply = OBSTORE_ERROR.format(status=status, body=body).replace("GET", "list request: GET")
    with pytest.raises(expected, match=text) as caught:
        with translated("list s3://out/raw/"):
            raise GenericError(reply)
    assert "cannot list s3://out/raw/" in str(caught.value)


NO_REPLY = "Generic S3 error: Error performing GET http://h/b/k in 1ms - HTTP error: {}"


def test_no_reply_is_transient_and_a_bad_certificate_is_the_configurations() -> None:
    refused = error_from_reply(NO_REPLY.format("error sending request\n\nDebug source: ..."), "get")
    assert type(refused) is TransientError and "error sending request" in str(refused)
    assert "http://h" not in str(refused)
    timeout = error_from_reply(
        NO_REPLY.format("error sending request\n HttpError { kind: Timeout }"), "get"
    )
    assert type(timeout) is TransientError and "timed out" in str(timeout)
    tls = error_from_reply(
        NO_REPLY.format("sending\n invalid peer certificate: UnknownIssuer"), "get"
    )
    assert type(tls) is ConfigError and "SSL" in str(tls)


@pytest.mark.parametrize(
    ("bucket", "endpoint_url", "endpoint", "virtual"),
    [
        ("my-bucket", None, "https://my-bucket.s3.eu-west-1.amazonaws.com", "true"),
        ("My.Bucket", None, "https://s3.eu-west-1.amazonaws.com", "false"),  # not a host label
        ("my-bucket", "http://s3.internal:9000/", "http://s3.internal:9000", "false"),
    ],
)
def test_the_customer_store_is_addressed_as_the_reader_addresses_it(
    bucket: str, endpoint_url: str | None, endpoint: str, virtual: str
) -> None:
    store = customer_store(
        bucket,
        endpoint_url=endpoint_url,
        access_key_id=None,
        secret_access_key=None,
        region="eu-west-1",
        max_connections=4,
        timeout_seconds=5,
    )
    assert store.config["endpoint"] == endpoint
    assert store.config["virtual_hosted_style_request"] == virtual
    assert store.config["skip_signature"] == "true"  # no keys: unsigned, never the chain's
    assert store.client_options["allow_http"] == str(endpoint.startswith("http:")).lower()
    assert store.client_options["read_timeout"] == "5s"
    assert store.retry_config is not None and store.retry_config["max_retries"] == 0
