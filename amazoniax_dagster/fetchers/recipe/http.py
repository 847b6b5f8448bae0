"""The one HTTP client of the recipe engine: safe targets, polite pacing, bounded retries.

Every request of a run goes through :meth:`SafeClient.fetch`, which

- checks the URL with the network policy, and every redirect target *before* requesting it
  (redirects are followed here, at most :data:`MAX_REDIRECTS`, never by httpx);
- waits for the per-host rate limit (``limits``, moving window) and counts the request
  against ``FetchLimits.max_requests``;
- guards each host with a circuit breaker (``pybreaker``: open after 5 consecutive transient
  failures, half-open after 60 s);
- retries transient failures (``tenacity``: exponential backoff with jitter, Retry-After
  honoured) and streams the body to a file, capped at ``FetchLimits.max_file_bytes``.

Errors after retries: timeouts, connection errors, 429 and 5xx -> TransientError;
401/403 -> :class:`CredentialsRefusedError` (a ConfigError); 404/410 and other 4xx ->
:class:`UnexpectedStatusError` (a SiteChangedError). Messages and logs show redacted URLs.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import logging
import threading
import time
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import limits
import pybreaker
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from amazoniax_dagster.core.errors import (
    ConfigError,
    FetcherCodeError,
    SiteChangedError,
    TransientError,
)
from amazoniax_dagster.core.netpolicy import NetworkPolicy
from amazoniax_dagster.core.redaction import RedactingFilter, Redactor, redact_url
from amazoniax_dagster.core.retry import RetryPolicy
from amazoniax_dagster.fetchers.base import FetchLimits
from amazoniax_dagster.fetchers.recipe import xmltree

log = logging.getLogger(__name__)

MAX_REDIRECTS = 10
# A server asking for a longer pause gets it from the job's own retry, not from a sleeping run.
MAX_RETRY_WAIT_SECONDS = 120.0
USER_AGENT = "Mozilla/5.0 (compatible; amazoniax-fetcher/1)"
_CHUNK = 1024 * 1024


# The redactor of the fetch in progress, for httpx's own log lines (see _HttpxLogRedactor).
_ACTIVE_REDACTOR: ContextVar[Redactor | None] = ContextVar("recipe_redactor", default=None)


class CredentialsRefusedError(ConfigError):
    """The server answered 401 or 403: the channel's credentials are wrong or expired."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class UnexpectedStatusError(SiteChangedError):
    """A recipe endpoint answered 404/410 or another 4xx it did not answer before."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class CircuitOpenError(TransientError):
    """The host failed too often lately; it is not contacted until the breaker half-opens."""


@dataclass(frozen=True)
class PreparedRequest:
    """A request with every template rendered; ``url`` is absolute."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    form: Mapping[str, str] | None = None

    def with_params(self, **params: str) -> PreparedRequest:
        return replace(self, params={**self.params, **params})


@dataclass
class Page:
    """One response whose body is on disk at ``path``; ``shown_url`` is redacted."""

    url: str
    shown_url: str
    status: int
    headers: httpx.Headers
    path: Path
    size: int
    digest: str  # sha256 of the body
    records: list[Any] | None = None
    _content: bytes | None = field(default=None, repr=False)
    _json: tuple[Any] | None = field(default=None, repr=False)
    _tree: tuple[Any] | None = field(default=None, repr=False)

    @property
    def content_type(self) -> str:
        return str(self.headers.get("content-type", "")).partition(";")[0].strip().lower()

    def content(self) -> bytes:
        if self._content is None:
            self._content = self.path.read_bytes()
        return self._content

    def text(self) -> str:
        encoding = httpx.Response(self.status, headers=self.headers).charset_encoding
        try:
            return self.content().decode(encoding or "utf-8", errors="replace")
        except LookupError:  # an unknown charset name
            return self.content().decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON; SiteChangedError when it is not JSON (the recipe expects it)."""
        if self._json is None:
            try:
                self._json = (json.loads(self.content()),)
            except (ValueError, UnicodeDecodeError) as exc:
                raise SiteChangedError(
                    f"expected JSON from {self.shown_url} (HTTP {self.status}, "
                    f"{self.content_type or 'no content type'}), got something else"
                ) from exc
        return self._json[0]

    def is_xml(self) -> bool:
        return xmltree.looks_like_xml(self.content()[:64], self.content_type)

    def tree(self) -> Any:
        """The body as data for recipe paths: JSON, or an XML reply as the same dict/list
        shape (:mod:`.xmltree`); SiteChangedError when it is neither."""
        if not self.is_xml():
            return self.json()
        if self._tree is None:
            try:
                self._tree = (xmltree.parse(self.content()),)
            except xmltree.XmlTreeError as exc:
                raise SiteChangedError(
                    f"expected XML from {self.shown_url} (HTTP {self.status}, "
                    f"{self.content_type or 'no content type'}): {exc}"
                ) from exc
        return self._tree[0]

    @property
    def links(self) -> dict[str, str]:
        """``rel`` -> URL from the Link header and, in an XML reply, from its root's
        ``<link rel href>`` elements (the header wins); absolute, resolved against the page
        URL."""
        parsed = httpx.Response(self.status, headers=self.headers).links
        found = {rel: link["url"] for rel, link in parsed.items() if rel and "url" in link}
        if self.is_xml():
            try:
                body_links = xmltree.links(self.tree())
            except SiteChangedError:  # a reply that is not XML has no XML links
                body_links = {}
            found = {**body_links, **found}
        return {rel: str(httpx.URL(self.url).join(url)) for rel, url in found.items()}


class HostBreakers:
    """One circuit breaker per host; share an instance to share breaker state across runs."""

    def __init__(self, fail_max: int = 5, reset_timeout: float = 60.0) -> None:
        self._fail_max = fail_max
        self._reset_timeout = reset_timeout
        self._lock = threading.Lock()
        self._breakers: dict[str, pybreaker.CircuitBreaker] = {}

    def get(self, host: str) -> pybreaker.CircuitBreaker:
        with self._lock:
            if host not in self._breakers:
                self._breakers[host] = pybreaker.CircuitBreaker(
                    fail_max=self._fail_max,
                    reset_timeout=self._reset_timeout,
                    # Only transient failures say the host is unwell; a 404 says nothing.
                    exclude=[lambda exc: not isinstance(exc, TransientError)],
                    throw_new_error_on_trip=False,
                    name=host,
                )
            return self._breakers[host]


class _HttpxLogRedactor(logging.Filter):
    """httpx logs every request URL at INFO, httpcore headers at DEBUG: mask the run's
    secrets there as in our own lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        return RedactingFilter(_ACTIVE_REDACTOR.get() or Redactor()).filter(record)


def _redact_httpx_logs() -> None:
    # Logger filters do not apply to child loggers: name each logger that logs requests.
    for name in ("httpx", "httpcore.connection", "httpcore.http11", "httpcore.http2"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _HttpxLogRedactor) for f in logger.filters):
            logger.addFilter(_HttpxLogRedactor())


class SafeClient:
    """An ``httpx.Client`` wrapped in the policy, pacing, breaker and retry rules above."""

    def __init__(
        self,
        policy: NetworkPolicy,
        fetch_limits: FetchLimits,
        *,
        rate_limit: str = "10/second",
        max_retries: int = 3,
        retry_delay_seconds: float = 30.0,
        breakers: HostBreakers | None = None,
        redactor: Redactor | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.policy = policy
        self.limits = fetch_limits
        self.redactor = redactor or Redactor()
        self.requests = 0
        self._rate = limits.parse(rate_limit)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._breakers = breakers or HostBreakers()
        self._retry = RetryPolicy(
            retries=max_retries,
            delay_seconds=retry_delay_seconds,
            max_delay_seconds=MAX_RETRY_WAIT_SECONDS,
        )
        _redact_httpx_logs()
        self._client = httpx.Client(
            headers={"User-Agent": USER_AGENT, **(headers or {})},
            timeout=fetch_limits.timeout_seconds,
            follow_redirects=False,
            trust_env=False,  # no proxy variables, no ~/.netrc credentials
        )

    @property
    def cookies(self) -> httpx.Cookies:
        return self._client.cookies

    def shown(self, url: str) -> str:
        """``url`` as it may appear in logs and messages."""
        return self.redactor(redact_url(url))

    def fetch(self, request: PreparedRequest, dest: Path) -> Page:
        """Send ``request`` (following redirects) and stream the final body to ``dest``."""
        what = f"{request.method} {self.shown(request.url)}"

        def log_retry(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.warning("%s failed (attempt %d): %s; retrying", what, state.attempt_number, exc)

        retrying = Retrying(
            stop=stop_after_attempt(self._retry.retries + 1),
            wait=self._retry.wait_seconds,
            retry=retry_if_exception(_worth_retrying),
            before_sleep=log_retry,
            reraise=True,
        )
        active = _ACTIVE_REDACTOR.set(self.redactor)
        try:
            return retrying(self._attempt, request, dest)
        finally:
            _ACTIVE_REDACTOR.reset(active)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> SafeClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _attempt(self, request: PreparedRequest, dest: Path) -> Page:
        outgoing = self._build(request)
        self.policy.check_url(str(outgoing.url))
        for _ in range(MAX_REDIRECTS + 1):
            response = self._send(outgoing)
            if not response.has_redirect_location or response.next_request is None:
                return self._save(response, dest)
            response.close()
            target = response.next_request
            location = response.headers["location"]
            self.policy.check_redirect(str(outgoing.url), location)
            if str(target.url) != urljoin(str(outgoing.url), location):
                self.policy.check_url(str(target.url))  # what httpx will really request
            log.info(
                "%s redirects to %s", self.shown(str(outgoing.url)), self.shown(str(target.url))
            )
            outgoing = target
        raise SiteChangedError(
            f"more than {MAX_REDIRECTS} redirects from {self.shown(request.url)}"
        )

    def _build(self, request: PreparedRequest) -> httpx.Request:
        try:
            return self._client.build_request(
                request.method,
                request.url,
                headers=dict(request.headers),
                params=dict(request.params) or None,
                json=request.json,
                data=dict(request.form) if request.form is not None else None,
            )
        except httpx.InvalidURL as exc:
            raise ConfigError(f"invalid URL {self.shown(request.url)}: {exc}") from exc

    def _send(self, request: httpx.Request) -> httpx.Response:
        host = request.url.netloc.decode("ascii", "replace").lower()
        self._throttle(host)
        self.requests += 1
        if self.requests > self.limits.max_requests:
            raise FetcherCodeError(
                f"the recipe needs more than {self.limits.max_requests} requests "
                "(FetchLimits.max_requests); stopping"
            )
        try:
            return self._breakers.get(host).call(self._send_once, request)
        except pybreaker.CircuitBreakerError as exc:
            raise CircuitOpenError(
                f"circuit open for host {host}: it failed repeatedly, not contacting it for now"
            ) from exc

    def _send_once(self, request: httpx.Request) -> httpx.Response:
        what = f"{request.method} {self.shown(str(request.url))}"
        try:
            response = self._client.send(request, stream=True)
        except httpx.TimeoutException as exc:
            raise TransientError(
                f"{what} timed out after {self.limits.timeout_seconds:g} s"
            ) from exc
        except httpx.TransportError as exc:
            raise TransientError(
                f"{what} failed: {self.redactor(str(exc)) or type(exc).__name__}"
            ) from exc
        log.info("%s -> HTTP %d", what, response.status_code)
        if response.status_code == 429 or response.status_code >= 500:
            response.close()
            raise TransientError(
                f"HTTP {response.status_code} for {what}",
                retry_after=retry_after_seconds(response.headers.get("retry-after")),
            )
        return response

    def _save(self, response: httpx.Response, dest: Path) -> Page:
        url = str(response.url)
        what = f"{response.request.method} {self.shown(url)}"
        try:
            _raise_for_status(response.status_code, what)
            size, digest = self._stream(response, dest, what)
        finally:
            response.close()
        return Page(
            url, self.shown(url), response.status_code, response.headers, dest, size, digest
        )

    def _stream(self, response: httpx.Response, dest: Path, what: str) -> tuple[int, str]:
        cap = self.limits.max_file_bytes
        too_big = ConfigError(f"{what} is larger than {cap} bytes (FetchLimits.max_file_bytes)")
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise too_big
        digest, size = hashlib.sha256(), 0
        try:
            with dest.open("wb") as out:
                for chunk in response.iter_bytes(_CHUNK):
                    size += len(chunk)
                    if size > cap:
                        raise too_big
                    digest.update(chunk)
                    out.write(chunk)
        except httpx.TimeoutException as exc:
            raise TransientError(f"{what}: reading the body timed out") from exc
        except httpx.TransportError as exc:
            raise TransientError(f"{what}: the connection broke while reading") from exc
        except httpx.DecodingError as exc:
            raise SiteChangedError(f"{what}: the body cannot be decoded ({exc})") from exc
        return size, digest.hexdigest()

    def _throttle(self, host: str) -> None:
        """Wait until the host's moving window has room for one more request."""
        while not self._limiter.hit(self._rate, host):
            reset = self._limiter.get_window_stats(self._rate, host).reset_time
            time.sleep(min(max(reset - time.time(), 0.005), 1.0))


def _raise_for_status(status: int, what: str) -> None:
    if 200 <= status < 300:
        return
    if status in (401, 403):
        raise CredentialsRefusedError(
            f"credentials were refused: HTTP {status} for {what}", status=status
        )
    if status in (404, 410):
        raise UnexpectedStatusError(f"endpoint gone: HTTP {status} for {what}", status=status)
    raise UnexpectedStatusError(f"unexpected HTTP {status} for {what}", status=status)


def _worth_retrying(exc: BaseException) -> bool:
    if not isinstance(exc, TransientError) or isinstance(exc, CircuitOpenError):
        return False
    return exc.retry_after is None or exc.retry_after <= MAX_RETRY_WAIT_SECONDS


def retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After header (seconds or an HTTP date) in seconds from now, if it parses."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def host_of(url: str) -> str:
    """The ``host[:port]`` a URL names, lower-cased ("" when it has none)."""
    return urlsplit(url).netloc.rpartition("@")[2].lower()


__all__ = [
    "MAX_REDIRECTS",
    "CircuitOpenError",
    "CredentialsRefusedError",
    "HostBreakers",
    "Page",
    "PreparedRequest",
    "SafeClient",
    "UnexpectedStatusError",
    "retry_after_seconds",
]
