"""Every boto or urllib3 error that reaches us is translated into the product's error tree."""

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
    ResponseStreamingError,
)
from urllib3.exceptions import ConnectTimeoutError as URLLib3ConnectTimeout
from urllib3.exceptions import NewConnectionError, ProtocolError, ProxyError, SSLError
from urllib3.exceptions import ReadTimeoutError as URLLib3ReadTimeout

from amazoniax_dagster.clients import s3
from amazoniax_dagster.clients.s3 import translate_error
from amazoniax_dagster.clients.s3_reader import _network_error
from amazoniax_dagster.core.errors import ConfigError, TransientError


def client_error(code: str, status: int, headers: dict[str, str] | None = None) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": "m"},
            "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": headers or {}},
        },
        "GetObject",
    )


@pytest.mark.parametrize(
    ("exc", "expected", "text"),
    [
        (client_error("SignatureDoesNotMatch", 403), ConfigError, "secret access key is wrong"),
        (client_error("InvalidAccessKeyId", 403), ConfigError, "access key is not known"),
        (client_error("AccessDenied", 403), ConfigError, "access denied"),
        (client_error("NoSuchBucket", 404), ConfigError, "bucket does not exist"),
        (client_error("SlowDown", 503), TransientError, "SlowDown"),
        (client_error("InternalError", 500), TransientError, "InternalError"),
        (client_error("Whatever", 502), TransientError, "Whatever"),
        (client_error("TooManyRequests", 429), TransientError, "TooManyRequests"),
        (client_error("NoSuchKey", 404), TransientError, "NoSuchKey"),
        (client_error("InvalidArgument", 400), ConfigError, "InvalidArgument"),
        (
            EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
            TransientError,
            "EndpointConnectionError",
        ),
        (
            ConnectTimeoutError(endpoint_url="http://127.0.0.1:1"),
            TransientError,
            "ConnectTimeoutError",
        ),
        (ReadTimeoutError(endpoint_url="http://127.0.0.1:1"), TransientError, "ReadTimeoutError"),
        (ResponseStreamingError(error="reset"), TransientError, "ResponseStreamingError"),
        (NoCredentialsError(), ConfigError, "no credentials"),
        (ConnectionResetError("reset"), TransientError, "ConnectionResetError"),
    ],
)
def test_boto_errors_are_translated(exc: Exception, expected: type, text: str) -> None:
    err = translate_error(exc, "download s3://b/k")
    assert type(err) is expected
    assert text in str(err)
    assert "download s3://b/k" in str(err)


def test_retry_after_is_kept() -> None:
    err = translate_error(client_error("SlowDown", 503, {"retry-after": "7"}), "x")
    assert isinstance(err, TransientError) and err.retry_after == 7.0


def test_a_foreign_error_is_not_silently_translated() -> None:
    with pytest.raises(TypeError):
        translate_error(ValueError("nope"), "x")


@pytest.mark.parametrize("code", sorted(s3.CONFIG_CODES))
def test_each_configuration_code_is_a_config_error(code: str) -> None:
    err = translate_error(client_error(code, 403 if code != "NoSuchBucket" else 404), "list")
    assert type(err) is ConfigError
    assert s3.CONFIG_CODES[code] in str(err)


@pytest.mark.parametrize("code", sorted(c for c in s3.TRANSIENT_CODES if not c.isdigit()))
def test_each_transient_code_is_transient_whatever_its_status(code: str) -> None:
    # some of these arrive with a 4xx status (NoSuchKey 404, RequestTimeout 400): the code decides
    err = translate_error(client_error(code, 400), "get")
    assert type(err) is TransientError
    assert code in str(err)


PROXY = "http://user:pa55word@proxy.example:3128"


@pytest.mark.parametrize(
    ("exc", "expected", "text"),
    [
        (SSLError("certificate verify failed"), ConfigError, "SSL validation failed"),
        (
            ProxyError(f"Unable to connect to proxy {PROXY}", OSError("refused")),
            ConfigError,
            "proxy",
        ),
        (NewConnectionError(None, "refused"), TransientError, "NewConnectionError"),
        (URLLib3ConnectTimeout("slow"), TransientError, "ConnectTimeoutError"),
        (URLLib3ReadTimeout(None, "/b/k", "read timed out"), TransientError, "ReadTimeoutError"),
        (ProtocolError("Connection aborted."), TransientError, "ProtocolError"),
        (ConnectionResetError("reset"), TransientError, "ConnectionResetError"),
    ],
)
def test_the_readers_network_errors_are_translated(
    exc: Exception, expected: type, text: str
) -> None:
    err = _network_error(exc, "download s3://b/k")
    assert type(err) is expected
    assert text in str(err) and "download s3://b/k" in str(err)
    assert "pa55word" not in str(err)  # a proxy's credentials stay out of the message
