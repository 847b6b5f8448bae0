"""The one redaction helper: everything passes through here before it is logged or stored.

Two complementary ways to hide a secret:

* by *name*: a field, header or query parameter whose name looks secret (``password``,
  ``api_key``, ``Authorization``, ``X-Amz-Signature`` ...) has its value replaced by
  :data:`MASK` (:func:`redact_mapping`, :func:`redact_headers`, :func:`redact_url`);
* by *value*: a :class:`Redactor` knows the secret strings of a run (see
  :func:`collect_secret_values`) and masks them wherever they turn up in free text, e.g. an
  exception message. :class:`RedactingFilter` applies one to every log record.

HAR entries are mappings too: ``redact_mapping`` masks the ``value`` of ``{"name": ...,
"value": ...}`` pairs whose name is secret (HAR headers, query strings) and the ``cookies``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus, unquote_plus

MASK = "***"
MIN_SECRET_LENGTH = 4  # shorter values are not masked by value: they would mask everything

_SECRET_WORDS = (
    r"password|passwd|pwd|passphrase|secret|token|bearer|credential|authorization|cookie"
    r"|session(?:_?id)?|signature|sig|otp"
    r"|(?:api|access|private|secret|ssh|signing|encryption|master|client|account|auth"
    r"|license|subscription)_?key"
)
# ``password_file``, ``token_url``, ``session_timeout``, ``TokenError``: about a secret, not one.
_NOT_SECRET_SUFFIXES = (
    r"path|file|filename|dir|url|uri|name|type|env|prefix|pattern|timeout|ttl|error|exception"
)

SECRET_KEY_PATTERN: re.Pattern[str] = re.compile(
    rf"^(?!.*_(?:{_NOT_SECRET_SUFFIXES})$)(?:.*_)?(?:{_SECRET_WORDS})s?(?:_.*)?$"
)
"""Matches secret field names once normalised to snake case (see :func:`is_secret_key`)."""

SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "x-auth-token"}
)
# Names too vague for a config field that are secrets as a URL parameter or HAR pair.
_SECRET_PARAMS = frozenset({"key", "auth", "code_verifier"})

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SEPARATORS = re.compile(r"[^a-z0-9]+")
# Lookbehinds keep these linear on long runs of letters (a start inside a word fails at once).
_URL = re.compile(r"""(?<![a-zA-Z0-9+.-])[a-zA-Z][a-zA-Z0-9+.-]{0,31}://[^\s<>"'`]+""")
# "Bearer <token>" anywhere; a token has a digit, capital or +/= after its first character,
# which keeps "basic authentication failed" readable.
_AUTH_SCHEME_VALUE = re.compile(
    r"\b(?i:(basic|bearer))([ \t]+)(?=.[\w.~+/=-]*[0-9A-Z+/=])[\w.~+/=-]{8,}"
)
_ASSIGNMENT = re.compile(
    r"""(?<![\w.-])(?P<key>[\w.-]{1,64})(?P<sep>['"]?[ \t]*[:=][ \t]*)"""
    r"""(?:(?P<quote>['"])(?P<quoted>.*?)(?:(?P=quote)|\Z)"""
    r"""|(?P<scheme>(?:basic|bearer|token|digest)[ \t]+)?(?P<bare>[^\s&#'",;)}\]]+))""",
    re.IGNORECASE,
)


def is_secret_key(name: str) -> bool:
    """True when a field, header or parameter called ``name`` holds a secret.

    ``apiKey``, ``X-Api-Key`` and ``API_KEY`` are all normalised to ``api_key`` first.
    """
    normalized = _SEPARATORS.sub("_", _CAMEL_BOUNDARY.sub("_", name).lower()).strip("_")
    return SECRET_KEY_PATTERN.match(normalized) is not None


def redact_mapping(data: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``data`` with every secret-named field's whole value masked.

    URLs among the remaining strings go through :func:`redact_url`.
    """
    return {str(key): value for key, value in _redact(data).items()}


def collect_secret_values(data: Mapping[str, Any]) -> set[str]:
    """Every string under a secret-named field (and every URL password) in ``data``."""
    found: set[str] = set()
    _collect(data, False, found)
    return {value for value in found if len(value) >= MIN_SECRET_LENGTH}


def redact_url(url: str) -> str:
    """``url`` with its userinfo password and secret-named query/fragment parameters masked.

    Works on the raw text (nothing is re-encoded) and never raises; a user name is kept.
    """
    return _redact_url(url, set())


def redact_text(text: str) -> str:
    """``text`` with values assigned to secret names masked (``password=x``, ``"token": "x"``,
    ``Bearer x``) and URL credentials masked: for text that may not parse (a refused message)."""
    return _URL.sub(lambda m: redact_url(m.group()), _redact_text(text))


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``headers`` with credentials masked and URLs (``Location``...) redacted."""
    return {
        name: MASK if _is_secret_name(name) else redact_url(value)
        for name, value in headers.items()
    }


class Redactor:
    """Masks known secret values, then secret-looking URLs and assignments, in free text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self.add(*secrets)

    def add(self, *secrets: str) -> None:
        """Remember more secret values (with their URL-encoded forms); short ones are ignored."""
        for secret in secrets:
            if len(secret) >= MIN_SECRET_LENGTH:
                self._secrets.update({secret, quote(secret, safe=""), quote_plus(secret)})
        if self._secrets:
            ordered = sorted(self._secrets, key=len, reverse=True)  # longest first
            self._pattern = re.compile("|".join(map(re.escape, ordered)))

    def __call__(self, text: str) -> str:
        if self._pattern is not None:
            text = self._pattern.sub(MASK, text)
        # URLs are redacted as a whole; the name-based rules only see the text between them.
        pieces = _URL.split(text)
        urls = [redact_url(match.group()) for match in _URL.finditer(text)]
        pieces = [_redact_text(piece) for piece in pieces]
        return "".join(p for pair in zip(pieces, [*urls, ""], strict=True) for p in pair)


class RedactingFilter(logging.Filter):
    """Rewrites each record's message, traceback and stack through a :class:`Redactor`.

    The message is formatted first, so secrets passed as ``%``-arguments are caught, and
    ``record.args`` is cleared. The traceback is formatted into ``record.exc_text`` and
    ``record.exc_info`` is dropped, so no formatter can render the raw exception again.
    Attach it to handlers: a logger's filters do not see records from its child loggers.
    """

    def __init__(self, redactor: Redactor | None = None, name: str = "") -> None:
        super().__init__(name)
        self.redactor = redactor if redactor is not None else Redactor()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            try:
                message = record.getMessage()
            except Exception:  # bad %-arguments: keep everything, redacted, for the reader
                message = f"{record.msg} (unformattable log arguments: {record.args!r})"
            record.msg, record.args = self.redactor(message), None
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
            if record.exc_text:
                record.exc_text = self.redactor(record.exc_text)
            if record.stack_info:
                record.stack_info = self.redactor(record.stack_info)
        except Exception:  # never let logging fail; never let an unredacted message through
            record.msg, record.args = "<log message withheld: redaction failed>", None
            record.exc_info = record.exc_text = record.stack_info = None
        return True


def _is_secret_name(name: str) -> bool:
    """A header, URL parameter or HAR ``name`` whose value is a secret."""
    lowered = unquote_plus(name).lower()
    return lowered in SECRET_HEADERS or lowered in _SECRET_PARAMS or is_secret_key(lowered)


def _redact_url(url: str, found: set[str]) -> str:
    """:func:`redact_url`, adding each masked value to ``found``."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    else:
        scheme += sep
        authority_end = min((i for i in map(rest.find, "/?#") if i >= 0), default=len(rest))
        authority, rest = rest[:authority_end], rest[authority_end:]
        userinfo, at, host = authority.rpartition("@")
        user, colon, password = userinfo.partition(":")
        if colon:
            found.add(unquote_plus(password))
        scheme += f"{user}{colon}{MASK}{at}{host}" if colon else authority
    path, hash_, fragment = rest.partition("#")
    path, question, query = path.partition("?")
    query, fragment = _redact_params(query, found), _redact_params(fragment, found)
    return f"{scheme}{path}{question}{query}{hash_}{fragment}"


def _redact_params(query: str, found: set[str]) -> str:
    if "=" not in query:
        return query
    params = []
    for name, eq, value in (param.partition("=") for param in query.split("&")):
        if eq and _is_secret_name(name):
            found.add(unquote_plus(value))
            value = MASK
        params.append(f"{name}{eq}{value}")
    return "&".join(params)


def _redact_text(text: str) -> str:
    """Mask values assigned to secret names (``password=x``, ``'token': 'x'``, headers)."""
    text = _AUTH_SCHEME_VALUE.sub(rf"\1\2{MASK}", text)
    return _ASSIGNMENT.sub(_mask_assignment, text)


def _mask_assignment(match: re.Match[str]) -> str:
    if not is_secret_key(match["key"]):
        # "error: token=abc": the value of a harmless key may hold an assignment itself.
        head = len(match["key"]) + len(match["sep"])
        return match.group()[:head] + _ASSIGNMENT.sub(_mask_assignment, match.group()[head:])
    if match["quote"]:
        value = f"{match['quote']}{MASK}{match['quote']}"
    else:
        value = f"{match['scheme'] or ''}{MASK}"
    return f"{match['key']}{match['sep']}{value}"


def _is_name_value_pair(data: Mapping[Any, Any]) -> bool:
    """A HAR-style ``{"name": ..., "value": ...}`` entry (header, query parameter, cookie)."""
    return isinstance(data.get("name"), str) and "value" in data


def _redact(data: Any) -> Any:
    if isinstance(data, Mapping):
        secret_pair = _is_name_value_pair(data) and _is_secret_name(data["name"])
        return {
            key: MASK
            if is_secret_key(str(key)) or (secret_pair and key == "value")
            else _redact(value)
            for key, value in data.items()
        }
    if isinstance(data, list | tuple):
        return [_redact(item) for item in data]
    if isinstance(data, str) and "://" in data:
        return redact_url(data)
    return data


def _collect(data: Any, secret: bool, found: set[str]) -> None:
    if isinstance(data, Mapping):
        secret_pair = _is_name_value_pair(data) and _is_secret_name(data["name"])
        for key, value in data.items():
            in_secret = secret or is_secret_key(str(key)) or (secret_pair and key == "value")
            _collect(value, in_secret, found)
    elif isinstance(data, list | tuple):
        for item in data:
            _collect(item, secret, found)
    elif isinstance(data, str):
        if secret:
            found.add(data)
        elif "://" in data:
            _redact_url(data, found)


__all__ = [
    "MASK",
    "MIN_SECRET_LENGTH",
    "SECRET_HEADERS",
    "SECRET_KEY_PATTERN",
    "RedactingFilter",
    "Redactor",
    "collect_secret_values",
    "is_secret_key",
    "redact_headers",
    "redact_mapping",
    "redact_text",
    "redact_url",
]
