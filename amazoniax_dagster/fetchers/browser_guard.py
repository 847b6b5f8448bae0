"""The network side of a browser fetcher run: every request checked against the channel's
network policy (``context.route``), refusals found by the policy proxy, and the HTTP status of
each main-frame document mapped as the recipe engine maps it. Mixed into the run
(:mod:`.browser`), which owns the page, the proxy and the counters."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from amazoniax_dagster.core.errors import (
    AmazoniaxError,
    ConfigError,
    SiteChangedError,
    TransientError,
    UnsafeURLError,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page, Route

    from amazoniax_dagster.core.redaction import Redactor
    from amazoniax_dagster.fetchers.base import FetchContext
    from amazoniax_dagster.fetchers.browser_proxy import PolicyProxy

log = logging.getLogger("amazoniax_dagster.fetchers.browser")


class PageGuardMixin:
    """Request checks and document status for one run; the run provides the state below."""

    if TYPE_CHECKING:
        ctx: FetchContext
        page: Page
        proxy: PolicyProxy
        redact: Redactor
        requests: int
        blocked_navigation: AmazoniaxError | None
        document_status: tuple[str, int] | None
        _policy_cache: dict[str, AmazoniaxError | None]
        _proxy_seen: int

        def _warn(self, message: str) -> None: ...
        def _shown(self, url: str) -> str: ...

    def _guard(self, route: Route) -> None:
        """Let a request through only when the policy allows its URL."""
        request = route.request
        url = request.url
        try:
            if not url.startswith(("http://", "https://")):
                route.continue_()
                return
            self.requests += 1
            refusal = self._policy_refusal(url)
            if refusal is None and self.requests > self.ctx.limits.max_requests:
                refusal = TransientError(
                    f"more than {self.ctx.limits.max_requests} requests (FetchLimits.max_requests)"
                )
            if refusal is None:
                route.continue_()
                return
            self._warn(f"blocked {self._shown(url)}: {self.redact(str(refusal))}")
            if request.is_navigation_request() and request.frame == self.page.main_frame:
                self.blocked_navigation = refusal
            route.abort("blockedbyclient")
        except Exception as exc:  # never let a handler die with the request hanging
            log.debug("route handler for %s failed: %s", self._shown(url), exc)

    def _policy_refusal(self, url: str) -> AmazoniaxError | None:
        parts = urlsplit(url)
        key = f"{parts.scheme}://{parts.netloc}"
        if key not in self._policy_cache:
            try:
                self.ctx.policy.check_url(url)
                self._policy_cache[key] = None
            except AmazoniaxError as exc:
                self._policy_cache[key] = exc
        return self._policy_cache[key]

    def _on_response(self, response: Any) -> None:
        try:
            request = response.request
            if request.is_navigation_request() and response.frame == self.page.main_frame:
                self.document_status = (response.url, response.status)
        except Exception as exc:
            log.debug("response handler failed: %s", exc)

    def _collect_proxy_findings(self) -> list[Any]:
        new = self.proxy.blocked[self._proxy_seen :]
        self._proxy_seen += len(new)
        for blocked in new:
            self._warn(f"blocked {blocked.target}: {self.redact(blocked.reason)}")
        return new

    def _raise_if_blocked(self) -> None:
        """A refused main-frame navigation (by the route or by the proxy) ends the run."""
        refusal, self.blocked_navigation = self.blocked_navigation, None
        if refusal is not None:
            raise refusal
        current = urlsplit(self.page.url)
        for blocked in self._collect_proxy_findings():
            if (current.hostname or "").lower() == blocked.host and (
                current.port or (443 if current.scheme == "https" else 80)
            ) == blocked.port:
                raise UnsafeURLError(self.redact(blocked.reason))

    def _check_document(self) -> None:
        """The HTTP status of the last main-frame document, as the recipe engine maps it."""
        if self.document_status is None:
            return
        url, status = self.document_status
        self.document_status = None
        shown = self._shown(url)
        if status in (401, 403):
            raise ConfigError(f"credentials were refused: HTTP {status} for {shown}")
        if status in (404, 410):
            raise SiteChangedError(f"page gone: HTTP {status} for {shown}")
        if status == 429 or status >= 500:
            raise TransientError(f"HTTP {status} for {shown}")
        if status >= 400:
            raise SiteChangedError(f"unexpected HTTP {status} for {shown}")
