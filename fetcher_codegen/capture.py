"""The deterministic explorer: open a channel's website in Chromium and record a HAR.

One capture, bounded by :class:`CaptureLimits` (pages, seconds, requests)::

    open the channel URL ──► log in (a password field and login_credentials)
        ──► API answered 401/403 and auth_keys exist: present them (token endpoint, key)
        ──► read the API documentation (api_documentation_path), when there is one
        ──► JSON page: follow its URLs when it is an index; ask for the next page
            HTML page: fetch feed and file links; click "next"/"more" until none; scroll
            until nothing grows; nothing found: follow links that look like data pages
        ──► every JSON kind seen once: ask for its next page (probes.next_page_probes)

Each step (a page-level action) leaves a screenshot and the DOM in ``work_dir/steps``. The HAR
(``work_dir/capture.har``, bodies embedded) holds what was typed and every token: it never
leaves the work dir; summaries and provenance are redacted.

Every request goes through a route handler that refuses what the NetworkPolicy refuses, and
every connection through the browser runtime's :class:`PolicyProxy` (redirect hops, which
routes never see, and DNS answers that change between check and connect). Refused requests
are warnings; a refused channel URL is an :class:`UnsafeURLError`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from amazoniax_dagster.core.errors import (
    AmazoniaxError,
    InfrastructureError,
    TransientError,
    UnsafeURLError,
)
from amazoniax_dagster.core.messages import WebSourceConfig
from amazoniax_dagster.core.netpolicy import NetworkPolicy
from amazoniax_dagster.core.redaction import Redactor, redact_url
from amazoniax_dagster.fetchers.browser import CHROMIUM_ARGS as BROWSER_CHROMIUM_ARGS
from amazoniax_dagster.fetchers.browser_proxy import PolicyProxy
from fetcher_codegen.capture_scripts import (
    DATA_LINKS_JS,
    FETCH_JS,
    FIND_NEXT_JS,
    SELECTOR_JS,
    next_selector,
)
from fetcher_codegen.har import Entry, body_format
from fetcher_codegen.probes import (
    auth_attempts,
    data_link_score,
    documented_params,
    json_links,
    next_page_probes,
)
from fetcher_codegen.records import Records, find_records, json_records

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, HttpCredentials, Page, Request, Response, Route

    from fetcher_codegen.agent import AgentDriver, AgentRun

log = logging.getLogger(__name__)

# One set of Chromium flags for browser recipes and captures: same proxy, same WebRTC guard.
CHROMIUM_ARGS = BROWSER_CHROMIUM_ARGS

HAR_NAME = "capture.har"
# The agent reaches Chromium over CDP on loopback; port 0: Chromium picks a free one and
# writes it to DevToolsActivePort in the profile dir.
AGENT_CDP_ARGS = ("--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1")
_EXPLORER_SHARE = 0.3  # of the capture's time, kept for the explorer after the agent
_MAX_BODY = 5 * 1024 * 1024  # bodies kept in memory for decisions during the capture
_USERNAME_KEYS = ("username", "user", "email", "login")
_PASSWORD_KEYS = ("password", "pass", "passwd")


@dataclass(frozen=True)
class CaptureLimits:
    """Bounds of one capture: whatever the site does, the explorer stops within them."""

    max_pages: int = 5  # "next" clicks, scrolls or probes per kind of pagination
    max_seconds: float = 90.0
    max_requests: int = 400  # requests the browser may send (routed ones)
    max_follow_links: int = 10  # feed, file and data-page links followed
    action_timeout_seconds: float = 10.0
    quiet_ms: int = 400  # network quiet this long = the page settled


@dataclass(frozen=True)
class CaptureStep:
    """One page-level action; ``url`` is redacted, paths are relative to the work dir."""

    index: int
    action: str
    url: str
    screenshot: str | None
    dom: str | None
    detail: str = ""
    selector: str | None = None  # what was clicked, for a browser recipe
    requests: int = 0  # requests seen so far

    def describe(self) -> dict[str, Any]:
        return {
            k: v
            for k, v in {
                "index": self.index,
                "action": self.action,
                "url": self.url,
                "detail": self.detail,
                "selector": self.selector,
                "screenshot": self.screenshot,
            }.items()
            if v not in (None, "")
        }


@dataclass
class Capture:
    har_path: Path
    work_dir: Path
    channel_url: str  # redacted
    started_at: datetime
    seconds: float
    steps: list[CaptureStep] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    login: dict[str, Any] | None = None  # how the login form was filled (selectors, no values)
    agent: dict[str, Any] | None = None  # what the browser-use agent did (AgentOutcome)

    @property
    def driver(self) -> str:
        """Who explored: "browser-use" when the agent drove, else "explorer"."""
        drove = self.agent is not None and self.agent.get("drove")
        return "browser-use" if drove else "explorer"

    @property
    def capture_date(self) -> date:
        return self.started_at.astimezone().date()

    @property
    def har_sha256(self) -> str:
        return hashlib.sha256(self.har_path.read_bytes()).hexdigest()

    def screenshots(self) -> list[Path]:
        return [self.work_dir / s.screenshot for s in self.steps if s.screenshot]

    def doms(self) -> list[Path]:
        return [self.work_dir / s.dom for s in self.steps if s.dom]


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        raise InfrastructureError(
            "Chromium is not installed (expected the Debian package 'chromium' on PATH)"
        )
    return path


def capture_site(
    config: WebSourceConfig,
    work_dir: Path,
    *,
    policy: NetworkPolicy,
    limits: CaptureLimits | None = None,
    agent: AgentDriver | None = None,
) -> Capture:
    """Explore the channel's website and return the capture (HAR, steps, screenshots).

    With ``agent``, a browser-use agent drives the exploration after the login (see
    :mod:`fetcher_codegen.agent`); the explorer's own steps finish it, or do all of it when
    the agent cannot."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    limits = limits or CaptureLimits()
    policy.check_url(config.url)
    work_dir.mkdir(parents=True, exist_ok=True)
    (work_dir / "steps").mkdir(exist_ok=True)
    har_path = work_dir / HAR_NAME
    secrets = _secret_values(config)
    redactor = Redactor(secrets)
    started, clock = datetime.now(UTC), time.monotonic()
    capture = Capture(har_path, work_dir, redact_url(config.url), started, 0.0)
    try:
        with sync_playwright() as playwright, ExitStack() as stack:
            proxy = stack.enter_context(PolicyProxy(policy, timeout=limits.action_timeout_seconds))
            options: dict[str, Any] = {
                # "<-loopback>": loopback goes through the proxy too (no implicit bypass)
                "proxy": {"server": proxy.url, "bypass": "<-loopback>"},
                "record_har_path": str(har_path),
                "record_har_content": "embed",
                "accept_downloads": False,
                "service_workers": "block",
                "viewport": {"width": 1280, "height": 900},
                "http_credentials": _http_credentials(config),
            }
            try:
                if agent is None:
                    browser = playwright.chromium.launch(
                        executable_path=chromium_path(), args=list(CHROMIUM_ARGS), headless=True
                    )
                    stack.callback(browser.close)
                    context = browser.new_context(**options)
                else:
                    # One persistent context: every tab the agent opens over CDP is in it,
                    # so the HAR, the route guard and the proxy see all of them.
                    context = playwright.chromium.launch_persistent_context(
                        str(work_dir / "profile"),
                        executable_path=chromium_path(),
                        args=[*CHROMIUM_ARGS, *AGENT_CDP_ARGS],
                        headless=True,
                        **options,
                    )
            except PlaywrightError as exc:
                raise InfrastructureError(f"cannot start Chromium: {exc.message}") from exc
            explorer = _Explorer(context, config, policy, limits, capture, redactor)
            try:
                explorer.run(agent)
            finally:
                context.close()  # writes the HAR
            for blocked in proxy.blocked:
                explorer.unsafe.append(blocked.target)
            explorer.report_unsafe()
    except PlaywrightError as exc:
        raise TransientError(
            f"the capture of {capture.channel_url} failed: {redactor(exc.message)}"
        ) from exc
    capture.seconds = round(time.monotonic() - clock, 2)
    return capture


def _cdp_url(profile_dir: Path) -> str:
    """The CDP endpoint of the persistent context's Chromium (its first line is the port)."""
    found = profile_dir / "DevToolsActivePort"
    for _ in range(100):
        if found.exists() and found.read_text().strip():
            return f"http://127.0.0.1:{found.read_text().split()[0]}"
        time.sleep(0.05)
    raise InfrastructureError("Chromium did not open its DevTools port for the agent")


def _secret_values(config: WebSourceConfig) -> list[str]:
    found = {**(config.login_credentials or {}), **(config.auth_keys or {})}
    return [value.get_secret_value() for value in found.values() if value.get_secret_value()]


def _credential(config: WebSourceConfig, keys: tuple[str, ...]) -> str | None:
    creds = config.login_credentials or {}
    return next((creds[k].get_secret_value() for k in keys if k in creds), None)


def _http_credentials(config: WebSourceConfig) -> HttpCredentials | None:
    user, password = _credential(config, _USERNAME_KEYS), _credential(config, _PASSWORD_KEYS)
    if user is None or password is None:
        return None
    parts = urlsplit(config.url)
    origin = f"{parts.scheme}://{parts.netloc}"
    # Sent only after a 401 Basic challenge from the channel's own origin.
    return {"username": user, "password": password, "origin": origin}


@dataclass
class _Seen:
    """A response seen during the capture (body kept when small and textual)."""

    method: str
    url: str
    status: int
    content_type: str
    text: str | None
    request_headers: dict[str, str]
    resource_type: str

    def entry(self) -> Entry:
        body = (self.text or "").encode("utf-8")
        return Entry(0, self.method, self.url, self.status, mime=self.content_type, body=body)

    def records(self) -> Records | None:
        return find_records(self.entry()) if self.text else None

    def json(self) -> Any:
        if self.text is None or body_format(self.text.encode(), self.content_type) != "json":
            return None
        try:
            return json.loads(self.text)
        except ValueError:
            return None


class _Explorer:
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
        self.seen: list[_Seen] = []
        self.inflight = 0
        self.requests = 0
        self.routed = 0
        self.unsafe: list[str] = []
        self.api_headers: dict[str, str] = {}
        self.documented: Any = None
        self.doc_url: str | None = None
        self.authorized: _Seen | None = None
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
        self.seen.append(
            _Seen(
                request.method,
                response.url,
                response.status,
                content_type,
                text,
                request_headers,
                request.resource_type,
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
    ) -> _Seen:
        """A request from inside the page (it lands in the HAR, with cookies and body)."""
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
                },  # fmt: skip
            )
        except PlaywrightError:
            result = {}
        return _Seen(
            method,
            str(result.get("url") or url),
            int(result.get("status") or 0),
            str(result.get("type") or ""),
            result.get("text"),
            sent,
            "fetch",
        )

    # -- the exploration ----------------------------------------------------------------------

    def run(self, agent: AgentDriver | None = None) -> None:
        main = self.open()
        if main is None:
            return
        self.login()
        self.authorize_api()
        self.read_documentation()
        if agent is not None and self.drive_with(agent):
            self.after_agent()
        else:
            current = self._document()
            if current is not None and current.json() is not None:
                self.explore_json(current)
            else:
                self.explore_html()
        self.complete_pagination()

    def drive_with(self, agent: AgentDriver) -> bool:
        """Let the browser-use agent explore; True when it drove (took steps, its model
        answered). Playwright's events are pumped here while the agent acts."""
        from fetcher_codegen.agent import agent_task

        config = self.config
        sensitive = {
            name: value.get_secret_value()
            for name, value in (config.login_credentials or {}).items()
            if value.get_secret_value()
        }
        run = agent.start(
            cdp_url=_cdp_url(self.capture.work_dir / "profile"),
            task=agent_task(
                self.page.url,
                config.channel_name or "fetch the data files of this website",
                config.navigation_details,
                list(sensitive),
            ),
            allowed_domains=[urlsplit(config.url).netloc.split("@")[-1].split(":")[0]],
            sensitive_data=sensitive,
            work_dir=self.capture.work_dir / "agent",
        )
        reserve = self.limits.max_seconds * _EXPLORER_SHARE
        while run.is_alive():
            if self.time_left() <= reserve:
                run.stop("time: the capture's time for the agent ran out")
                if self.time_left() <= reserve / 2:
                    break
            self.page.wait_for_timeout(100)  # pumps routes and responses
            self._agent_steps(run)
        outcome = run.join(timeout=5)
        self._agent_steps(run)
        self.capture.agent = outcome.describe()
        self._follow_agent()  # the explorer carries on where the agent left off
        if not outcome.drove:
            self.warn(
                f"the browser-use agent did not drive the capture ({outcome.stopped}): "
                "the explorer did"
            )
        return outcome.drove

    def _agent_steps(self, run: AgentRun) -> None:
        """Record the steps the agent reported, on the page it acts in (its latest tab)."""
        while not run.steps.empty():
            step = run.steps.get()
            self._follow_agent()
            self.step(step.action, step.detail, step.selector, screenshot=step.screenshot)

    def _follow_agent(self) -> None:
        pages = [page for page in self.context.pages if not page.is_closed()]
        if pages:
            self.page = pages[-1]

    def after_agent(self) -> None:
        """The explorer finishes what the agent started: files behind links are fetched,
        and when the agent saw no data at all, the explorer explores on its own."""
        current = self._document()
        if current is not None and current.json() is not None:
            self.explore_json(current)
            return
        self.follow_data_links()
        if not self.data_seen():
            self.step("agent found no data", "the explorer takes over")
            self.explore_html()

    def open(self) -> _Seen | None:
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

    def _document(self) -> _Seen | None:
        """The latest response that is the page's main document (its response handler may
        still be reading the body: wait for it a little)."""
        current = self.page.url
        for _ in range(20):
            for seen in reversed(self.seen):
                if seen.url == current and seen.resource_type == "document":
                    return seen
            self.page.wait_for_timeout(50)
        return None

    def login(self) -> None:
        user, password = (
            _credential(self.config, _USERNAME_KEYS),
            _credential(self.config, _PASSWORD_KEYS),
        )
        field = self.page.locator("input[type=password]:visible").first
        if password is None or field.count() == 0:
            return
        form = field.locator("xpath=ancestor::form[1]")
        scope = form if form.count() else self.page.locator("body")
        user_box = scope.locator(
            "input[type=email]:visible, input[autocomplete=username]:visible, "
            "input[name*=user i]:visible, input[name*=email i]:visible, "
            "input[name*=login i]:visible, input[type=text]:visible, input:not([type]):visible"
        ).first
        selectors: dict[str, str | None] = {"password_selector": field.evaluate(SELECTOR_JS)}
        if user is not None and user_box.count():
            selectors["username_selector"] = user_box.evaluate(SELECTOR_JS)
            user_box.fill(user)
        field.fill(password)
        submit = scope.locator(
            "button[type=submit]:visible, input[type=submit]:visible, button:not([type]):visible"
        ).first
        before = self.page.url
        if submit.count():
            found = submit.evaluate(SELECTOR_JS)
            selectors["submit_selector"] = (
                found
                if found not in ("button", "input")
                else ("button[type=submit], input[type=submit]")
            )
            submit.click()
        else:
            field.press("Enter")
        self.page.wait_for_load_state("load")
        self.settle()
        still = self.page.locator("input[type=password]:visible").count() > 0
        if still:
            self.warn("the login form is still shown after submitting the credentials")
        self.capture.login = {
            "url": redact_url(before),
            "after": urlsplit(self.page.url).path,
            "refused": still,
            **selectors,
        }
        self.step("login", "filled the login form and submitted it")
        target = self.config.url.split("#")[0]
        if (
            not still
            and self.page.url.split("#")[0] != target
            and urlsplit(before).path != urlsplit(target).path
        ):
            self.page.goto(self.config.url, wait_until="load")
            self.settle()
            self.step("open", "the channel URL again, after logging in")

    def authorize_api(self) -> None:
        main = self._document()
        keys = {k: v.get_secret_value() for k, v in (self.config.auth_keys or {}).items()}
        if main is None or main.status not in (401, 403) or not keys:
            return
        for attempt in auth_attempts(keys):
            headers = dict(attempt.headers or {})
            if attempt.token_request is not None:
                fields = dict(attempt.token_request)
                token_url = fields.pop("url")
                if not self._allowed(token_url):
                    continue
                reply = self.fetch(token_url, method="POST", form=fields,
                                   headers={"Accept": "application/json"})  # fmt: skip
                token = _token_in(reply.text)
                if token is None:
                    continue
                self.redact.add(token)
                headers = {"Authorization": f"Bearer {token}"}
            url = self.config.url
            if attempt.params:
                from fetcher_codegen.probes import with_params

                url = with_params(url, **attempt.params)
            headers.setdefault("Accept", "application/json")
            reply = self.fetch(url, headers=headers)
            if 200 <= reply.status < 300:
                self.api_headers = {k.lower(): v for k, v in headers.items()}
                self.authorized = reply
                self.step("authorize", f"the API accepted {attempt.why}")
                return
        self.warn("the API refused every way of presenting the channel's auth_keys")

    def read_documentation(self) -> None:
        doc_path = self.config.api_documentation_path
        if not doc_path:
            return
        url = (
            doc_path
            if "://" in doc_path
            else self.config.url.rstrip("/") + "/" + doc_path.lstrip("/")
        )
        if "://" not in doc_path and doc_path.startswith("/"):
            parts = urlsplit(self.config.url)
            url = f"{parts.scheme}://{parts.netloc}{doc_path}"
        if not self._allowed(url):
            return
        self.doc_url = url
        reply = self.fetch(url, headers={"accept": "application/json", **self.api_headers})
        self.documented = reply.json()

    def explore_json(self, start: _Seen) -> None:
        body = start.json()
        if json_records(body) is not None or not isinstance(body, dict):
            self.probe_chain(start)
            return
        if start.status in (401, 403):
            if self.authorized is not None:
                self.explore_json(self.authorized)
            return
        followed = 0
        for probe in json_links(body, start.url, self.limits.max_follow_links):
            if self.time_left() <= 0 or followed >= self.limits.max_follow_links:
                break
            followed += 1
            reply = self.fetch(
                probe.url, headers={"accept": "application/json", **self.api_headers}
            )
            if json_records(reply.json()) is not None:
                self.probe_chain(reply)
        if followed:
            self.step("follow links", f"followed {followed} URLs of the JSON index")

    def probe_chain(self, start: _Seen) -> None:
        """Ask for the pages after ``start`` until a probe brings nothing new."""
        path = urlsplit(start.url).path
        if path in self.probed:
            return
        self.probed.add(path)
        documented = documented_params(self.documented, path)
        headers = {
            k.lower(): v
            for k, v in start.request_headers.items()
            if k.lower() in ("authorization", "accept") or k.lower().startswith("x-")
        }
        headers.update(self.api_headers)
        current, pages = start, 1
        while pages < self.limits.max_pages and self.time_left() > 0:
            body = current.json()
            records = json_records(body)
            if records is None or not records.count:
                return
            accepted = None
            probes = next_page_probes(
                current.url, body, records.count, documented, records.items[-1]
            )
            for probe in probes[:6]:
                reply = self.fetch(probe.url, headers=headers)
                if not 200 <= reply.status < 300:
                    continue
                found = json_records(reply.json())
                if found and found.count and found.items[0] != records.items[0]:
                    accepted = reply
                    break
            if accepted is None:
                return
            current, pages = accepted, pages + 1
        if pages > 1:
            self.step("probe pages", f"{pages} pages of {path}")

    def explore_html(self) -> None:
        self.follow_data_links()
        self.click_next()
        self.scroll()
        if not self.data_seen():
            self.follow_hub_links()

    def follow_data_links(self) -> int:
        from playwright.sync_api import Error as PlaywrightError

        try:
            links = self.page.evaluate(DATA_LINKS_JS)
        except PlaywrightError:
            return 0
        wanted = []
        for link in links:
            href = str(link.get("href", ""))
            if not href.startswith(("http://", "https://")):
                continue
            if (
                link.get("feed")
                or link.get("download")
                or data_link_score(href, str(link.get("text", ""))) == 2
            ):
                wanted.append(href.split("#")[0])
        wanted = list(dict.fromkeys(wanted))[: self.limits.max_follow_links]
        for href in wanted:
            if self.time_left() <= 0:
                break
            self.fetch(href)
        if wanted:
            self.step("follow links", f"fetched {len(wanted)} feed/file links")
        return len(wanted)

    def click_next(self) -> None:
        from playwright.sync_api import Error as PlaywrightError

        visited = {self.page.url}
        for _ in range(self.limits.max_pages):
            if self.time_left() <= 0:
                return
            try:
                found = self.page.evaluate(FIND_NEXT_JS)
            except PlaywrightError:
                return
            if not found:
                return
            before_requests, before_url = self.requests, self.page.url
            before_size = len(self.page.content())
            try:
                self.page.locator("[data-amazoniax-next]").first.click()
                self.page.wait_for_load_state("load")
            except PlaywrightError as exc:
                self.warn(f"clicking {found.get('text')!r} failed: {exc.message}")
                return
            self.settle()
            changed = (
                self.requests > before_requests
                or self.page.url != before_url
                or len(self.page.content()) != before_size
            )
            if not changed or (self.page.url != before_url and self.page.url in visited):
                return
            visited.add(self.page.url)
            self.step("click next", f"clicked {found.get('text')!r} ({found.get('how')})",
                      next_selector(found))  # fmt: skip

    def scroll(self) -> None:
        from playwright.sync_api import Error as PlaywrightError

        height_js = "document.documentElement.scrollHeight"
        for _ in range(self.limits.max_pages):
            if self.time_left() <= 0:
                return
            try:
                before_height = int(self.page.evaluate(height_js))
                before_requests = self.requests
                self.page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
                self.page.mouse.wheel(0, 400)
                self.settle()
                grew = int(self.page.evaluate(height_js)) > before_height
            except PlaywrightError:
                return
            if not grew and self.requests == before_requests:
                return
            self.step("scroll", "scrolled to the bottom; the page grew")

    def data_seen(self) -> bool:
        for seen in self.seen:
            if not 200 <= seen.status < 300 or seen.text is None:
                continue
            records = seen.records()
            if records is not None and records.count and records.format != "html":
                return True
        try:
            found = find_records(Entry(0, "GET", self.page.url, 200, mime="text/html",
                                       body=self.page.content().encode()))  # fmt: skip
        except Exception:  # noqa: BLE001 - a page that cannot be parsed holds no records
            return False
        return found is not None and found.count > 0

    def follow_hub_links(self) -> None:
        from playwright.sync_api import Error as PlaywrightError

        try:
            links = self.page.evaluate(DATA_LINKS_JS)
        except PlaywrightError:
            return
        origin = urlsplit(self.page.url)[:2]
        hubs = [
            str(link["href"]).split("#")[0]
            for link in links
            if str(link.get("href", "")).startswith("http")
            and urlsplit(str(link["href"]))[:2] == origin
            and data_link_score(str(link["href"]), str(link.get("text", ""))) == 1
        ]
        for href in list(dict.fromkeys(hubs))[:2]:
            if self.time_left() <= 0 or href == self.page.url.split("#")[0]:
                continue
            try:
                self.page.goto(href, wait_until="load")
            except PlaywrightError:
                continue
            self.settle()
            self.step("follow link", "a link that looks like a data page")
            self.follow_data_links()
            self.click_next()
            self.scroll()
            if self.data_seen():
                return

    def complete_pagination(self) -> None:
        """Probe the next page of every JSON kind with records seen on one page only."""
        by_path: dict[str, list[_Seen]] = {}
        for seen in list(self.seen):
            if seen.url == self.doc_url:
                continue
            if seen.method == "GET" and 200 <= seen.status < 300 and seen.json() is not None:
                by_path.setdefault(urlsplit(seen.url).path, []).append(seen)
        for group in by_path.values():
            if self.time_left() <= 0:
                return
            firsts = set()
            for seen in group:
                records = json_records(seen.json())
                firsts.add(json.dumps(records.items[0] if records and records.count else None))
            if len(firsts) == 1 and json_records(group[0].json()) is not None:
                self.probe_chain(group[0])


def _token_in(text: str | None) -> str | None:
    try:
        body = json.loads(text or "null")
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    for key in ("access_token", "token", "id_token", "accessToken"):
        if isinstance(body.get(key), str) and body[key]:
            return str(body[key])
    return None


__all__ = [
    "CHROMIUM_ARGS",
    "HAR_NAME",
    "Capture",
    "CaptureLimits",
    "CaptureStep",
    "capture_site",
    "chromium_path",
    "next_selector",
]
