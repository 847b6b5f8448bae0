"""Run a browser recipe (:mod:`.browser_schema`) in Chromium with Playwright's sync API.

One run = one fresh browser context (no cookies, cache or storage from another run), with:

- every request the pages make checked by ``context.route("**/*")`` against ``ctx.policy``:
  a refused URL is aborted and listed in the report's warnings; a refused main-frame
  navigation fails the run with :class:`UnsafeURLError`;
- all traffic sent through :class:`.browser_proxy.PolicyProxy`, which checks every
  connection again at the socket level: redirect hops (``page.route`` never sees them),
  WebSockets, downloads, and DNS answers that change between check and connect;
- ``ctx.limits.timeout_seconds`` as the default timeout of every action and navigation,
  ``max_requests`` for the requests of the run, ``max_pages`` for any pagination;
- files written below ``ctx.out_dir`` with safe, unique names (``recipe.files.OutputFolder``);
  links followed by a ``download`` step are fetched by the recipe engine's ``SafeClient``
  with the browser's cookies (policy per redirect, streamed, capped at ``max_file_bytes``).

How Playwright failures become product errors:

==============================================  ==========================================
waiting for a *selector* timed out (fill,        SiteChangedError naming the selector: the
click, expect, wait_for, login fields)           page answered, the element is not there
waiting for a *navigation or load state*        TransientError: the site is slow or away
timed out
``net::ERR_*`` (refused, reset, DNS, TLS)       TransientError
main navigation refused by the policy           UnsafeURLError
HTTP 401/403 / 404, 410 / 429, 5xx of a page    ConfigError / SiteChangedError / Transient
login submitted, form still shown               ConfigError (credentials refused)
any other Playwright error (detached element,   SiteChangedError
not visible, ...)
Chromium missing or not starting                InfrastructureError
==============================================  ==========================================

Playwright is imported inside the functions: importing this module stays cheap.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from pydantic import SecretStr

from amazoniax_dagster.core.errors import (
    AmazoniaxError,
    ConfigError,
    InfrastructureError,
    SiteChangedError,
    TransientError,
)
from amazoniax_dagster.core.redaction import Redactor, collect_secret_values, redact_url
from amazoniax_dagster.fetchers.base import FetchContext, FetchReport
from amazoniax_dagster.fetchers.browser_guard import PageGuardMixin
from amazoniax_dagster.fetchers.browser_proxy import PolicyProxy
from amazoniax_dagster.fetchers.browser_schema import (
    BROWSER_ROOTS,
    BrowserLogin,
    BrowserRecipe,
    ClickNextPagination,
    ClickStep,
    DownloadStep,
    ExpectStep,
    FillStep,
    GotoStep,
    PaginateStep,
    SavePageStep,
    ScrollPagination,
    WaitForStep,
)
from amazoniax_dagster.fetchers.chromium import CHROMIUM_ARGS, launch_chromium
from amazoniax_dagster.fetchers.recipe.templating import Scope, render

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

log = logging.getLogger(__name__)

_POLL_SECONDS = 0.1


def run_browser_recipe(
    recipe: BrowserRecipe, ctx: FetchContext, *, browser: Browser | None = None
) -> FetchReport:
    """Run ``recipe`` for ``ctx``'s channel; its files end up in ``ctx.out_dir``.

    ``browser`` lets a caller that runs many recipes share one Chromium; each run still gets
    a fresh context. Without it, Chromium is started and stopped for this run.
    """
    if browser is not None:
        return _BrowserRun(recipe, ctx).run(browser)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = launch_chromium(playwright)
        try:
            return _BrowserRun(recipe, ctx).run(launched)
        finally:
            launched.close()


def _config_secrets(ctx: FetchContext) -> dict[str, SecretStr]:
    """``secrets.<name>``: auth_keys first, then login_credentials (as the recipe engine)."""
    return {**(ctx.config.login_credentials or {}), **(ctx.config.auth_keys or {})}


class _BrowserRun(PageGuardMixin):
    """The state of one recipe run: page, scope, output, counters and policy findings."""

    def __init__(self, recipe: BrowserRecipe, ctx: FetchContext) -> None:
        from amazoniax_dagster.fetchers.recipe.files import OutputFolder

        self.recipe = recipe
        self.ctx = ctx
        self.timeout_ms = ctx.limits.timeout_seconds * 1000
        secrets = _config_secrets(ctx)
        self.scope = Scope(
            url=ctx.config.url,
            channel_name=ctx.config.channel_name,
            secrets=secrets,
            run_date=ctx.run_date,
            variables={"page": 1},
        )
        self.redact = Redactor(
            {s.get_secret_value() for s in secrets.values()}
            | collect_secret_values(ctx.config.model_dump(mode="json"))
        )
        self.output = OutputFolder(ctx.out_dir)
        self.report = FetchReport()
        self.requests = 0
        self.blocked_navigation: AmazoniaxError | None = None
        self.document_status: tuple[str, int] | None = None
        self._policy_cache: dict[str, AmazoniaxError | None] = {}
        self._warned: set[str] = set()
        self._proxy_seen = 0
        self._spooled = 0
        self.spool = ctx.out_dir
        self.proxy: PolicyProxy
        self.context: BrowserContext
        self.page: Page

    # --- the run ---------------------------------------------------------------------

    def run(self, browser: Browser) -> FetchReport:
        started = time.monotonic()
        # Bodies land in a spool inside out_dir first (same file system: a rename moves them).
        self.spool = Path(tempfile.mkdtemp(prefix=".browser-spool-", dir=self.ctx.out_dir))
        with (
            PolicyProxy(self.ctx.policy, timeout=self.ctx.limits.timeout_seconds) as proxy,
            _removed(self.spool),
        ):
            self.proxy = proxy
            try:
                self.context = browser.new_context(
                    # "<-loopback>": loopback goes through the proxy too (no implicit bypass)
                    proxy={"server": proxy.url, "bypass": "<-loopback>"},
                    accept_downloads=True,
                    service_workers="block",  # their requests would not be routed
                )
            except Exception as exc:  # playwright.Error, imported lazily
                raise InfrastructureError(f"cannot open a browser context: {exc}") from exc
            try:
                self.context.set_default_timeout(self.timeout_ms)
                self.context.set_default_navigation_timeout(self.timeout_ms)
                self.context.route("**/*", self._guard)
                self.page = self.context.new_page()
                self.page.on("response", self._on_response)
                if self.recipe.login is not None:
                    self.login(self.recipe.login)
                self.goto(self.recipe.start_url)
                self.run_steps(self.recipe.steps)
            finally:
                self.context.close()
        self._collect_proxy_findings()
        self.report.files = list(self.output.files)
        self.report.requests = self.requests
        self.report.metadata = {
            "browser": browser.version,
            "recipe": self.recipe.name,
            "blocked_requests": len(self._warned),
            "seconds": round(time.monotonic() - started, 2),
        }
        return self.report

    def run_steps(self, steps: list[Any]) -> None:
        for step in steps:
            _STEP_RUNNERS[type(step)](self, step)
            self._raise_if_blocked()

    # --- error translation -----------------------------------------------------------

    @contextmanager
    def _playwright(self, what: str, selector: str | None = None) -> Iterator[None]:
        """Translate Playwright's errors (rules in the module docstring)."""
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

        try:
            yield
        except PlaywrightTimeoutError as exc:
            self._raise_if_blocked()
            where = self._shown(self.page.url)
            if selector is not None:
                raise SiteChangedError(
                    f"{what}: selector {selector!r} not found on {where} in time"
                ) from exc
            raise TransientError(f"{what}: timed out on {where}") from exc
        except PlaywrightError as exc:
            self._raise_if_blocked()
            message = self.redact(exc.message.splitlines()[0] if exc.message else str(exc))
            if "net::ERR_" in message:
                raise TransientError(f"{what}: {message}") from exc
            raise SiteChangedError(f"{what}: {message}") from exc

    # --- steps -----------------------------------------------------------------------

    def _url(self, template: str) -> str:
        return urljoin(self.ctx.config.url, render(template, self.scope, BROWSER_ROOTS))

    def goto(self, template: str) -> None:
        url = self._url(template)
        self.ctx.policy.check_url(url)  # refuse before the browser is even asked
        self.document_status = None
        with self._playwright(f"opening {self._shown(url)}"):
            self.page.goto(url, wait_until="load")
        self._raise_if_blocked()
        self._check_document()
        self.report.pages += 1

    def login(self, login: BrowserLogin) -> None:
        self.goto(login.url)
        timeout = (login.timeout_seconds or self.ctx.limits.timeout_seconds) * 1000
        for selector, template in (
            (login.username_selector, login.username),
            (login.password_selector, login.password),
        ):
            with self._playwright("login", selector):
                value = render(template, self.scope, BROWSER_ROOTS)
                self.page.locator(selector).first.fill(value, timeout=timeout)
        self.document_status = None
        with self._playwright("login: submitting", login.submit_selector):
            self.page.locator(login.submit_selector).first.click(timeout=timeout)
        from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

        try:
            with self._playwright("login: waiting for success"):
                if login.success.selector is not None:
                    self.page.locator(login.success.selector).first.wait_for(
                        state="visible", timeout=timeout
                    )
                if login.success.url_contains is not None:
                    part = login.success.url_contains
                    self.page.wait_for_url(lambda url: part in url, timeout=timeout)
        except TransientError as exc:
            if not isinstance(exc.__cause__, PlaywrightTimeoutError):
                raise
            self._check_document()
            if self._visible(login.password_selector):
                raise ConfigError(
                    "login refused: the login form is still shown after submitting it "
                    "(check the channel's login_credentials)"
                ) from exc
            expected = login.success.selector or f"a URL containing {login.success.url_contains!r}"
            raise SiteChangedError(
                f"login: submitted, but {expected!r} did not appear (the site changed?)"
            ) from exc
        self._check_document()

    def _visible(self, selector: str) -> bool:
        try:
            return self.page.locator(selector).first.is_visible()
        except Exception:  # playwright.Error: a page in the middle of navigating
            return False

    def goto_step(self, step: GotoStep) -> None:
        self.goto(step.url)

    def fill_step(self, step: FillStep) -> None:
        with self._playwright("fill", step.selector):
            value = render(step.value, self.scope, BROWSER_ROOTS)
            self.page.locator(step.selector).first.fill(value)

    def click_step(self, step: ClickStep) -> None:
        self.document_status = None
        with self._playwright("click", step.selector):
            self.page.locator(step.selector).first.click()
        self._raise_if_blocked()
        self._check_document()

    def wait_for_step(self, step: WaitForStep) -> None:
        timeout = (step.timeout_seconds or self.ctx.limits.timeout_seconds) * 1000
        if step.selector is not None:
            with self._playwright("wait_for", step.selector):
                self.page.locator(step.selector).first.wait_for(state="visible", timeout=timeout)
        elif step.load_state is not None:
            with self._playwright(f"waiting for the {step.load_state} state"):
                self.page.wait_for_load_state(step.load_state, timeout=timeout)

    def expect_step(self, step: ExpectStep) -> None:
        timeout = (step.timeout_seconds or self.ctx.limits.timeout_seconds) * 1000
        with self._playwright("expect", step.selector):
            self.page.locator(step.selector).first.wait_for(state="attached", timeout=timeout)

    def save_page_step(self, step: SavePageStep) -> None:
        name = render(step.name, self.scope, BROWSER_ROOTS)
        with self._playwright("save_page"):
            html = self.page.content()
        spool = self._spool_path()
        spool.write_text(html, encoding="utf-8")
        self._add(name, spool, self.page.url)

    def _spool_path(self) -> Path:
        self._spooled += 1
        return self.spool / str(self._spooled)

    def _add(self, name: str, spool: Path, url: str) -> None:
        self.output.add(name, spool, source_url=self._shown(url))

    def download_step(self, step: DownloadStep) -> None:
        links = self.page.locator(step.selector)
        with self._playwright("download", step.selector):
            count = links.count()
        if count == 0:
            self.report.warnings.append(f"download: nothing matches {step.selector!r}")
            return
        if count > step.max_files:
            self.report.warnings.append(
                f"download: {count} elements match {step.selector!r}; only the first "
                f"{step.max_files} were downloaded (max_files)"
            )
        for index in range(min(count, step.max_files)):
            element = links.nth(index)
            with self._playwright("download", step.selector):
                href = element.get_attribute("href")
            if href and not href.startswith(("javascript:", "#")):
                self._download_link(urljoin(self.page.url, href))
            else:
                self._download_by_click(element, step.selector)

    def _download_link(self, url: str) -> None:
        from amazoniax_dagster.fetchers.recipe.files import server_file_name
        from amazoniax_dagster.fetchers.recipe.http import PreparedRequest, SafeClient

        with SafeClient(self.ctx.policy, self.ctx.limits, redactor=self.redact) as client:
            for cookie in self.context.cookies(url):
                client.cookies.set(
                    cookie["name"], cookie["value"], domain=cookie["domain"], path=cookie["path"]
                )
            spool = self._spool_path()
            try:
                fetched = client.fetch(PreparedRequest("GET", url), spool)
            finally:
                self.requests += client.requests
        name = server_file_name(fetched.headers, fetched.url) or "download"
        self._add(name, spool, fetched.url)

    def _download_by_click(self, element: Any, selector: str) -> None:
        with self._playwright("download (click)", selector):
            with self.page.expect_download() as info:
                element.click()
            download = info.value
            failure = download.failure()
            if failure is not None:
                raise TransientError(f"download from {self._shown(download.url)} failed: {failure}")
            spool = self._spool_path()
            download.save_as(spool)
        if spool.stat().st_size > self.ctx.limits.max_file_bytes:
            raise ConfigError(
                f"download from {self._shown(download.url)} is larger than "
                f"{self.ctx.limits.max_file_bytes} bytes (FetchLimits.max_file_bytes)"
            )
        name = server_file_name_of(download.suggested_filename) or "download"
        self._add(name, spool, download.url)

    def paginate_step(self, step: PaginateStep) -> None:
        outer = self.scope
        limit = min(step.max_iterations, self.ctx.limits.max_pages)
        try:
            for number in range(1, limit + 1):
                self.scope = outer.with_variables(page=number)
                self.run_steps(step.steps)
                if number > 1:
                    self.report.pages += 1
                if number == limit:
                    self.report.warnings.append(
                        f"paginate: stopped after {limit} pages (max_iterations / max_pages)"
                    )
                    return
                if not _ADVANCE[type(step.strategy)](self, step.strategy):
                    return
        finally:
            self.scope = outer

    def click_next(self, strategy: ClickNextPagination) -> bool:
        """Click "next"; False when it is gone, hidden or disabled, or nothing changed."""
        button = self.page.locator(strategy.selector).first
        with self._playwright("paginate: next"):
            if button.count() == 0 or not button.is_visible() or not button.is_enabled():
                return False
            if (button.get_attribute("aria-disabled") or "").lower() == "true":
                return False
        content = self.page.locator(strategy.content_selector).first
        with self._playwright("paginate: content", strategy.content_selector):
            before = content.inner_html()
        self.document_status = None
        with self._playwright("paginate: clicking next", strategy.selector):
            button.click()
        changed = self._poll(lambda: content.inner_html() != before, strategy.wait_seconds)
        self._raise_if_blocked()
        self._check_document()
        return changed

    def scroll(self, strategy: ScrollPagination) -> bool:
        """Scroll to the bottom; False when the page did not grow within ``wait_seconds``."""
        item_selector = strategy.item_selector

        def size() -> int:
            if item_selector is not None:
                return self.page.locator(item_selector).count()
            return int(self.page.evaluate("document.documentElement.scrollHeight"))

        with self._playwright("paginate: scroll"):
            before = size()
            self.page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
        grew = self._poll(lambda: size() > before, strategy.wait_seconds)
        self._raise_if_blocked()
        return grew

    def _poll(self, condition: Callable[[], bool], seconds: float) -> bool:
        """Check ``condition`` until it holds or ``seconds`` pass (events keep flowing)."""
        from playwright.sync_api import Error as PlaywrightError

        deadline = time.monotonic() + seconds
        while True:
            try:
                if condition():
                    return True
            except PlaywrightError:
                pass  # a navigation replaced the document: ask again
            if time.monotonic() >= deadline:
                return False
            self.page.wait_for_timeout(_POLL_SECONDS * 1000)

    # --- helpers ---------------------------------------------------------------------

    def _shown(self, url: str) -> str:
        return self.redact(redact_url(url))

    def _warn(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            self.report.warnings.append(message)
            log.warning("%s", message)


def server_file_name_of(suggested: str) -> str | None:
    """The browser's suggested name, reduced to one safe path segment."""
    name = suggested.replace("\\", "/").rpartition("/")[2].strip()
    name = "".join(ch for ch in name if ch.isprintable())
    return name if name not in ("", ".", "..") else None


@contextmanager
def _removed(path: Path) -> Iterator[None]:
    try:
        yield
    finally:
        shutil.rmtree(path, ignore_errors=True)


_STEP_RUNNERS: dict[type[Any], Callable[[_BrowserRun, Any], None]] = {
    GotoStep: _BrowserRun.goto_step,
    FillStep: _BrowserRun.fill_step,
    ClickStep: _BrowserRun.click_step,
    WaitForStep: _BrowserRun.wait_for_step,
    SavePageStep: _BrowserRun.save_page_step,
    DownloadStep: _BrowserRun.download_step,
    PaginateStep: _BrowserRun.paginate_step,
    ExpectStep: _BrowserRun.expect_step,
}
_ADVANCE: dict[type[Any], Callable[[_BrowserRun, Any], bool]] = {
    ClickNextPagination: _BrowserRun.click_next,
    ScrollPagination: _BrowserRun.scroll,
}

__all__ = ["CHROMIUM_ARGS", "launch_chromium", "run_browser_recipe"]
