"""The explorer's base: the network bookkeeping (policy route, responses seen), steps with
screenshots, and requests sent from inside the page."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from amazoniax_dagster.core.errors import AmazoniaxError, TransientError, UnsafeURLError
from amazoniax_dagster.core.messages import WebSourceConfig
from amazoniax_dagster.core.netpolicy import NetworkPolicy
from amazoniax_dagster.core.redaction import Redactor, redact_url
from fetcher_codegen.capture.model import Capture, CaptureLimits, CaptureStep, Seen
from fetcher_codegen.capture_scripts import FETCH_JS

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page, Request, Response, Route

_MAX_BODY = 5 * 1024 * 1024  # bodies kept in memory for decisions during the capture


class Browsing:
    def __init__(
        self,
        context: BrowserContext,
        config: WebSourceConfig,
        policy: NetworkPolicy,
        limits: CaptureLimits,
        capture: Capture,
        redactor: Redactor,
    ) -> None:
        self.context = context
        self.config = config
        self.policy = policy
        self.limits = limits
        self.capture = capture
        self.redact = redactor
        self.deadline = time.monotonic() + limits.max_seconds
        self.seen: list[Seen] = []
        self.inflight = 0
        self.requests = 0
        self.routed = 0
        self.unsafe: list[str] = []
        self.api_headers: dict[str, str] = {}
        self.documented: Any = None
        self.doc_url: str | None = None
        self.authorized: Seen | None = None
        self.probed: set[str] = set()
        self._host_ok: dict[tuple[str, str], bool] = {}
        context.set_default_timeout(limits.action_timeout_seconds * 1000)
        context.route("**/*", self._route)
        context.on("request", self._on_request)
        context.on("requestfinished", self._on_done)
        context.on("requestfailed", self._on_done)
        context.on("response", self._on_response)
        self.page: Page = context.pages[0] if context.pages else context.new_page()

    # -- network bookkeeping ------------------------------------------------------------------

    def _allowed(self, url: str) -> bool:
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        if key not in self._host_ok:
            try:
                self.policy.check_url(url)
                self._host_ok[key] = True
            except AmazoniaxError:
                self._host_ok[key] = False
        return self._host_ok[key]

    def _route(self, route: Route) -> None:
        url = route.request.url
        if self.routed >= self.limits.max_requests:
            route.abort("blockedbyclient")
            return
        if not self._allowed(url):
            self.unsafe.append(redact_url(url))
            route.abort("blockedbyclient")
            return
        self.routed += 1
        route.continue_()

    def _on_request(self, request: Request) -> None:
        self.inflight += 1
        self.requests += 1

    def _on_done(self, request: Request) -> None:
        self.inflight = max(0, self.inflight - 1)

    def _on_response(self, response: Response) -> None:
        from playwright.sync_api import Error as PlaywrightError

        request = response.request
        headers = response.headers
        content_type = headers.get("content-type", "")
        text = None
        if not 300 <= response.status < 400 and request.resource_type not in (
            "image", "font", "stylesheet", "script", "media",
        ):  # fmt: skip
            try:
                body = response.body()
                if len(body) <= _MAX_BODY:
                    text = body.decode("utf-8", errors="replace")
            except PlaywrightError:
                text = None
        try:
            request_headers = request.all_headers()
        except PlaywrightError:
            request_headers = dict(request.headers)
        try:
            sent = request.post_data
        except (PlaywrightError, UnicodeDecodeError):
            sent = None
        self.seen.append(
            Seen(
                request.method,
                response.url,
                response.status,
                content_type,
                text,
                request_headers,
                request.resource_type,
                {k.lower(): v for k, v in headers.items()},
                sent,
            )  # fmt: skip
        )

    def report_unsafe(self) -> None:
        if self.unsafe:
            shown = ", ".join(sorted(set(self.unsafe))[:5])
            self.warn(f"requests the network policy refused (not captured): {shown}")

    def time_left(self) -> float:
        return self.deadline - time.monotonic()

    def settle(self, max_ms: int | None = None) -> None:
        """Wait until no request has been in flight for ``quiet_ms`` (bounded)."""
        budget = max_ms if max_ms is not None else int(self.limits.action_timeout_seconds * 1000)
        end = time.monotonic() + min(budget / 1000, max(self.time_left(), 0))
        quiet_since = time.monotonic()
        while time.monotonic() < end:
            self.page.wait_for_timeout(50)
            if self.inflight:
                quiet_since = time.monotonic()
            elif (time.monotonic() - quiet_since) * 1000 >= self.limits.quiet_ms:
                return

    # -- steps --------------------------------------------------------------------------------

    def step(
        self,
        action: str,
        detail: str = "",
        selector: str | None = None,
        *,
        screenshot: bytes | None = None,
    ) -> None:
        """Record a step: a screenshot (taken now unless given: an agent's step brings what
        its model saw), the DOM and the URL of the current page."""
        from playwright.sync_api import Error as PlaywrightError

        index = len(self.capture.steps)
        stem = f"steps/{index:02d}-{action.replace(' ', '-')}"
        shot: str | None = f"{stem}.png"
        dom: str | None = f"{stem}.html"
        try:
            if screenshot is not None:
                (self.capture.work_dir / f"{stem}.png").write_bytes(screenshot)
            else:
                self.page.screenshot(path=str(self.capture.work_dir / f"{stem}.png"), timeout=5000)
        except PlaywrightError:
            shot = None
        try:
            (self.capture.work_dir / f"{stem}.html").write_text(self.page.content(), "utf-8")
        except PlaywrightError:
            dom = None
        self.capture.steps.append(
            CaptureStep(
                index,
                action,
                redact_url(self.page.url),
                shot,
                dom,
                self.redact(detail),
                selector,
                self.requests,
            )  # fmt: skip
        )

    def warn(self, message: str) -> None:
        self.capture.warnings.append(self.redact(message))

    def fetch(
        self,
        url: str,
        *,
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
        form: Mapping[str, str] | None = None,
        json_body: Any = None,
    ) -> Seen:
        """A request from inside the page (it lands in the HAR, with cookies and body); a
        ``json_body`` is sent as ``application/json``."""
        from playwright.sync_api import Error as PlaywrightError

        sent = {k.lower(): v for k, v in (headers or {}).items()}
        try:
            result = self.page.evaluate(
                FETCH_JS,
                {
                    "url": url,
                    "method": method,
                    "headers": sent,
                    "form": dict(form) if form else None,
                    "json": json_body,
                },  # fmt: skip
            )
        except PlaywrightError:
            result = {}
        return Seen(
            method,
            str(result.get("url") or url),
            int(result.get("status") or 0),
            str(result.get("type") or ""),
            result.get("text"),
            sent,
            "fetch",
            request_body=None if json_body is None else json.dumps(json_body),
        )

    def open(self) -> Seen | None:
        from playwright.sync_api import Error as PlaywrightError

        try:
            self.page.goto(self.config.url, wait_until="load")
        except PlaywrightError as exc:
            if "ERR_BLOCKED" in exc.message or "ERR_TUNNEL" in exc.message:
                raise UnsafeURLError(
                    f"the network policy refuses {self.capture.channel_url} or its redirects"
                ) from exc
            raise TransientError(
                f"cannot open {self.capture.channel_url}: {self.redact(exc.message)}"
            ) from exc
        self.settle()
        self.step("open")
        return self._document()

    def _document(self) -> Seen | None:
        """The latest response that is the page's main document (its response handler may
        still be reading the body: wait for it a little)."""
        current = self.page.url
        for _ in range(20):
            for seen in reversed(self.seen):
                if seen.url == current and seen.resource_type == "document":
                    return seen
            self.page.wait_for_timeout(50)
        return None
