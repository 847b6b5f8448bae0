"""Every S3 error reply and urllib3 error that reaches us is translated into the error tree."""

import pytest
from urllib3.exceptions import ConnectTimeoutError as URLLib3ConnectTimeout
from urllib3.exceptions import NewConnectionError, ProtocolError, ProxyError, SSLError
from urllib3.exceptions import ReadTimeoutError as URLLib3ReadTimeout

from amazoniax_dagster.clients import s3
from amazoniax_dagster.clients.s3 import error_for_code
from amazoniax_dagster.clients.s3_reader import _network_error
from amazoniax_dagster.core.errors import ConfigError, TransientError


@pytest.mark.parametrize(
    ("code", "status", "expected", "text"),
    [
        ("SignatureDoesNotMatch", 403, ConfigError, "secret access key is wrong"),
        ("InvalidAccessKeyId", 403, ConfigError, "access key is not known"),
        ("AccessDenied", 403, ConfigError, "access denied"),
        ("NoSuchBucket", 404, ConfigError, "bucket does not exist"),
        ("SlowDown", 503, TransientError, "SlowDown"),
        ("InternalError", 500, TransientError, "InternalError"),
        ("Whatever", 502, TransientError, "Whatever"),
        ("TooManyRequests", 429, TransientError, "TooManyRequests"),
        ("NoSuchKey", 404, TransientError, "NoSuchKey"),
        ("InvalidArgument", 400, ConfigError, "InvalidArgument"),
        ("", 502, TransientError, "502"),
    ],
)
def test_s3_error_replies_are_translated(code: str, status: int, expected: type, text: str) -> None:
    err = error_for_code(code, status, "download s3://b/k", message="m")
    assert type(err) is expected
    assert text in str(err)
    assert "download s3://b/k" in str(err)


def test_retry_after_is_kept() -> None:
    err = error_for_code("SlowDown", 503, "x", retry_after=7.0)
    assert isinstance(err, TransientError) and err.retry_after == 7.0


@pytest.mark.parametrize("code", sorted(s3.CONFIG_CODES))
def test_each_configuration_code_is_a_config_error(code: str) -> None:
    err = error_for_code(code, 403 if code != "NoSuchBucket" else 404, "list")
    assert type(err) is ConfigError
    assert s3.CONFIG_CODES[code] in str(err)


@pytest.mark.parametrize("code", sorted(c for c in s3.TRANSIENT_CODES if not c.isdigit()))
def test_each_transient_code_is_transient_whatever_its_status(code: str) -> None:
    # some of these arrive with a 4xx status (NoSuchKey 404, RequestTimeout 400): the code decides
    err = error_for_code(code, 400, "get")
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
