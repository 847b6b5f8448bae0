"""The redaction helper: by name (fields, headers, URL parameters) and by value (free text)."""

from __future__ import annotations

import copy
import io
import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from amazoniax_dagster.core.errors import ConfigError
from amazoniax_dagster.core.redaction import (
    MASK,
    RedactingFilter,
    Redactor,
    collect_secret_values,
    is_secret_key,
    redact_headers,
    redact_mapping,
    redact_url,
)

SECRET_NAMES = [
    "password", "PASSWORD", "db_password", "passwd", "pwd", "passphrase", "passwords",
    "secret", "client_secret", "secret_access_key", "aws_secret_access_key", "SecretAccessKey",
    "access_key", "access_key_id", "AWS_ACCESS_KEY_ID", "token", "bearer_token", "refresh_token",
    "sessionToken", "x-amz-security-token", "api_key", "apiKey", "APIKey", "apikey", "X-Api-Key",
    "auth_keys", "private_key", "ssh_key", "credentials", "login_credentials", "credential",
    "Authorization", "Proxy-Authorization", "cookie", "Set-Cookie", "cookies", "session",
    "session_id", "X-Amz-Signature", "X-Amz-Credential", "sig", "Ocp-Apim-Subscription-Key",
]  # fmt: skip

NOT_SECRET_NAMES = [
    "file_pattern", "remote_path", "key_prefix", "tokenizer_path", "tokenizer", "username",
    "user", "host", "bucket", "url", "key", "public_key", "author", "keyword", "passport",
    "token_url", "token_type", "password_file", "secret_name", "private_key_path",
    "session_timeout", "TokenError", "X-Amz-Date", "X-Amz-SignedHeaders", "Key-Pair-Id",
    "secretary", "signed", "type", "",
]  # fmt: skip


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_secret_names(name: str) -> None:
    assert is_secret_key(name) is True


@pytest.mark.parametrize("name", NOT_SECRET_NAMES)
def test_names_that_are_not_secrets(name: str) -> None:
    assert is_secret_key(name) is False


CONFIG: dict[str, Any] = {
    "type": "s3",
    "bucket": "channel-in",
    "key_prefix": "incoming/",
    "file_pattern": "*.csv",
    "remote_path": "/data/out",
    "retries": 3,
    "credentials": {"access_key_id": "AKIAEXAMPLE", "secret_access_key": "wJalrXUtnFEMI"},
    "auth": {"type": "bearer", "token": "tok-123456", "token_url": "https://id.example/token"},
    "endpoints": [
        {
            "url": "https://bob:pw-98765@api.example/v1?api_key=k-abcdef&page=2",
            "headers": {"X-Api-Key": "k-ghijkl", "Accept": "application/json"},
        },
        {"url": "https://api.example/v2", "headers": {}},
    ],
    "login_credentials": ["alice", "pw-alice-1"],
    "steps": [("fetch", {"password": "pw-step"}), None],
}

REDACTED_CONFIG: dict[str, Any] = {
    "type": "s3",
    "bucket": "channel-in",
    "key_prefix": "incoming/",
    "file_pattern": "*.csv",
    "remote_path": "/data/out",
    "retries": 3,
    "credentials": MASK,
    "auth": {"type": "bearer", "token": MASK, "token_url": "https://id.example/token"},
    "endpoints": [
        {
            "url": "https://bob:***@api.example/v1?api_key=***&page=2",
            "headers": {"X-Api-Key": MASK, "Accept": "application/json"},
        },
        {"url": "https://api.example/v2", "headers": {}},
    ],
    "login_credentials": MASK,
    "steps": [["fetch", {"password": MASK}], None],
}


def test_redact_mapping_masks_whole_secret_subtrees_and_leaves_the_input_alone() -> None:
    original = copy.deepcopy(CONFIG)
    assert redact_mapping(CONFIG) == REDACTED_CONFIG
    assert CONFIG == original


HAR_ENTRY: dict[str, Any] = {
    "startedDateTime": "2024-01-01T00:00:00Z",
    "request": {
        "method": "GET",
        "url": "https://api.example/v1/files?token=t0ken-1&x=1",
        "headers": [
            {"name": "Authorization", "value": "Bearer abc.def.ghi"},
            {"name": "Accept", "value": "*/*"},
            {"name": "Referer", "value": "https://portal.example/?session_id=s-1234"},
        ],
        "queryString": [{"name": "token", "value": "t0ken-1"}, {"name": "x", "value": "1"}],
        "cookies": [{"name": "sid", "value": "cookie-1"}],
    },
    "response": {
        "status": 302,
        "headers": [
            {"name": "Set-Cookie", "value": "sid=cookie-2; HttpOnly"},
            {"name": "Location", "value": "https://cdn.example/f.csv?X-Amz-Signature=beef&a=b"},
        ],
    },
}


def test_redact_mapping_handles_har_name_value_pairs() -> None:
    assert redact_mapping(HAR_ENTRY) == {
        "startedDateTime": "2024-01-01T00:00:00Z",
        "request": {
            "method": "GET",
            "url": "https://api.example/v1/files?token=***&x=1",
            "headers": [
                {"name": "Authorization", "value": MASK},
                {"name": "Accept", "value": "*/*"},
                {"name": "Referer", "value": "https://portal.example/?session_id=***"},
            ],
            "queryString": [{"name": "token", "value": MASK}, {"name": "x", "value": "1"}],
            "cookies": MASK,
        },
        "response": {
            "status": 302,
            "headers": [
                {"name": "Set-Cookie", "value": MASK},
                {"name": "Location", "value": "https://cdn.example/f.csv?X-Amz-Signature=***&a=b"},
            ],
        },
    }


def test_collect_secret_values_finds_every_string_under_secret_names_and_in_urls() -> None:
    assert collect_secret_values(CONFIG) == {
        "AKIAEXAMPLE",
        "wJalrXUtnFEMI",
        "tok-123456",
        "pw-98765",
        "k-abcdef",
        "k-ghijkl",
        "alice",
        "pw-alice-1",
        "pw-step",
    }
    assert collect_secret_values(HAR_ENTRY) == {
        "Bearer abc.def.ghi",
        "t0ken-1",
        "s-1234",
        "cookie-1",
        "sid=cookie-2; HttpOnly",
        "beef",
    }


def test_collect_secret_values_ignores_short_values() -> None:
    assert collect_secret_values({"password": "abc", "token": "", "api_key": "abcd"}) == {"abcd"}


URLS = [
    ("https://user:hunter2@example.com/path", "https://user:***@example.com/path"),
    ("ftp://user:p@ss@ftp.example:21/in/", "ftp://user:***@ftp.example:21/in/"),
    ("ftp://anonymous@ftp.example/pub", "ftp://anonymous@ftp.example/pub"),
    ("https://example.com/a?token=abc&page=2", "https://example.com/a?token=***&page=2"),
    ("https://example.com/?api_key=&q=x", "https://example.com/?api_key=***&q=x"),
    ("https://maps.example/api?key=AIza123&q=x", "https://maps.example/api?key=***&q=x"),
    (
        "https://example.com/?access_token=a&refresh_token=b&password=c&client_secret=d&n=1",
        "https://example.com/?access_token=***&refresh_token=***&password=***"
        "&client_secret=***&n=1",
    ),
    (
        "https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F"
        "2024&X-Amz-Date=20240101T000000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host"
        "&X-Amz-Security-Token=IQo&X-Amz-Signature=deadbeef",
        "https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=***"
        "&X-Amz-Date=20240101T000000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host"
        "&X-Amz-Security-Token=***&X-Amz-Signature=***",
    ),
    (
        "https://acct.blob.example/c/f?sv=2020-08-04&se=2024&sig=abc%3D",
        "https://acct.blob.example/c/f?sv=2020-08-04&se=2024&sig=***",
    ),
    (
        "https://cdn.example/f?Expires=1&Signature=abc&Key-Pair-Id=K2",
        "https://cdn.example/f?Expires=1&Signature=***&Key-Pair-Id=K2",
    ),
    ("https://example.com/cb#access_token=abc&state=x", "https://example.com/cb#access_token=***&state=x"),
    ("https://example.com/?tokenizer=bpe&key_prefix=a", "https://example.com/?tokenizer=bpe&key_prefix=a"),
    ("https://example.com/p?a=1#section", "https://example.com/p?a=1#section"),
    ("https://example.com/path", "https://example.com/path"),
    ("/relative?password=x&y=2", "/relative?password=***&y=2"),
    ("not a url", "not a url"),
    ("http://[::1/?token=x", "http://[::1/?token=***"),
]  # fmt: skip


@pytest.mark.parametrize(("url", "expected"), URLS)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_redact_headers() -> None:
    headers = {
        "Authorization": "Basic dXNlcjpwYXNz",
        "Proxy-Authorization": "Basic eA==",
        "Cookie": "sid=1",
        "Set-Cookie": "sid=2",
        "X-Api-Key": "k1",
        "x-auth-token": "t1",
        "X-Amz-Security-Token": "t2",
        "Accept": "text/html;q=0.9",
        "Location": "https://example.com/next?token=t3&page=3",
        "User-Agent": "amazoniax/0.1",
    }
    assert redact_headers(headers) == {
        "Authorization": MASK,
        "Proxy-Authorization": MASK,
        "Cookie": MASK,
        "Set-Cookie": MASK,
        "X-Api-Key": MASK,
        "x-auth-token": MASK,
        "X-Amz-Security-Token": MASK,
        "Accept": "text/html;q=0.9",
        "Location": "https://example.com/next?token=***&page=3",
        "User-Agent": "amazoniax/0.1",
    }


TEXTS = [
    ("error: token=abcdefgh", "error: token=***"),  # an assignment inside a harmless one
    ("cannot connect: password=x1234 (refused)", "cannot connect: password=*** (refused)"),
    ("status: ok", "status: ok"),
    ("login with s3cr3t-value failed", "login with *** failed"),
    ("x s3cr3t-value-longer y", "x *** y"),  # longest first: no "***-longer"
    ("form p%40ss+w%2Frd and path p%40ss%20w%2Frd", "form *** and path ***"),
    ("GET https://u:pw@h.example/?token=t failed", "GET https://u:***@h.example/?token=*** failed"),
    ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "Authorization: Basic ***"),
    ("sent Bearer eyJhbGciOiJIUzI1NiJ9 to the api", "sent Bearer *** to the api"),
    ("basic authentication failed, bearer tokens", "basic authentication failed, bearer tokens"),
    ("{'user': 'bob', 'password': 'hunter2'}", "{'user': 'bob', 'password': '***'}"),
    ('{"api_key": "k-123", "page": 2}', '{"api_key": "***", "page": 2}'),
    ("password=hunter2 user=bob", "password=*** user=bob"),
    ("x-api-key: abc123 next", "x-api-key: *** next"),
    ("TokenError: invalid grant", "TokenError: invalid grant"),
    ("abc is too short to mask", "abc is too short to mask"),
    ("nothing secret here: 42 files", "nothing secret here: 42 files"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), TEXTS)
def test_redactor(text: str, expected: str) -> None:
    redactor = Redactor(["s3cr3t-value", "s3cr3t-value-longer", "p@ss w/rd", "abc"])
    assert redactor(text) == expected


def test_redactor_learns_secrets_later() -> None:
    redactor = Redactor()
    assert redactor("token was xyz-9876") == "token was xyz-9876"
    redactor.add("xyz-9876")
    assert redactor("token was xyz-9876") == "token was ***"


# -- logging ---------------------------------------------------------------------------------

SECRET = "s3cr3t-value"
Logged = tuple[logging.Logger, io.StringIO]


@pytest.fixture
def logged() -> Iterator[Logged]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(RedactingFilter(Redactor([SECRET])))
    logger = logging.getLogger("tests.unit.redaction")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(handler)
    try:
        yield logger, stream
    finally:
        logger.removeHandler(handler)


def test_log_filter_masks_secrets_in_the_message(logged: Logged) -> None:
    logger, stream = logged
    logger.info(f"plain {SECRET} message")
    logger.info("connecting with %s to %s:%d", SECRET, "ftp.example", 21)
    logger.info({"user": "bob", "password": "hunter2"})
    logger.warning("fetching %s", "https://bob:pw@files.example/a.csv?sig=abc&n=1")
    assert stream.getvalue() == (
        "INFO plain *** message\n"
        "INFO connecting with *** to ftp.example:21\n"
        "INFO {'user': 'bob', 'password': '***'}\n"
        "WARNING fetching https://bob:***@files.example/a.csv?sig=***&n=1\n"
    )


def test_log_filter_masks_secrets_in_tracebacks(logged: Logged) -> None:
    logger, stream = logged
    try:
        raise ConfigError(f"login refused for password {SECRET}")
    except ConfigError:
        logger.exception("fetch failed for channel %s", "chan-1")
    output = stream.getvalue()
    assert SECRET not in output
    assert output.startswith("ERROR fetch failed for channel chan-1\nTraceback (most recent call")
    assert 'raise ConfigError(f"login refused for password {SECRET}")' in output
    assert output.endswith(
        "amazoniax_dagster.core.errors.ConfigError: login refused for password ***\n"
    )


def test_log_filter_clears_args_and_exc_info() -> None:
    try:
        raise ValueError(f"bad {SECRET}")
    except ValueError:
        exc_info = sys.exc_info()
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "a %s b", (SECRET,), exc_info)
    assert RedactingFilter(Redactor([SECRET])).filter(record) is True
    assert (record.msg, record.args, record.exc_info) == ("a *** b", None, None)
    assert record.exc_text is not None
    assert record.exc_text.endswith("ValueError: bad ***")


def test_log_filter_never_raises(logged: Logged) -> None:
    logger, stream = logged
    logger.info("two %s %s but one", SECRET)  # bad arguments

    class Broken(Redactor):
        def __call__(self, text: str) -> str:
            raise RuntimeError("boom")

    record = logging.LogRecord("x", logging.INFO, __file__, 1, f"{SECRET}", None, None)
    assert RedactingFilter(Broken()).filter(record) is True
    assert stream.getvalue() == "INFO two %s %s but one (unformattable log arguments: ('***',))\n"
    assert record.getMessage() == "<log message withheld: redaction failed>"
