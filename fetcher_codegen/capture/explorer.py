"""The deterministic explorer: log in, then explore the API or the HTML pages (or let the
browser-use agent drive and finish after it), then complete every pagination seen once."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from amazoniax_dagster.core.errors import InfrastructureError
from amazoniax_dagster.core.redaction import redact_url
from fetcher_codegen.capture.api import ApiExplorer
from fetcher_codegen.capture.credentials import PASSWORD_KEYS, USERNAME_KEYS, credential
from fetcher_codegen.capture.html import HtmlExplorer
from fetcher_codegen.capture.sitemap import SitemapExplorer
from fetcher_codegen.capture_scripts import SELECTOR_JS

if TYPE_CHECKING:
    from fetcher_codegen.agent import AgentDriver, AgentRun

_EXPLORER_SHARE = 0.3  # of the capture's time, kept for the explorer after the agent


class Explorer(ApiExplorer, HtmlExplorer, SitemapExplorer):
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
            if current is not None and current.api_body() is not None:
                self.explore_api(current)
            else:
                self.explore_html()
                self.read_sitemaps()
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
            cdp_url=cdp_url(self.capture.work_dir / "profile"),
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
        if current is not None and current.api_body() is not None:
            self.explore_api(current)
            return
        self.follow_data_links()
        if not self.data_seen():
            self.step("agent found no data", "the explorer takes over")
            self.explore_html()
        self.read_sitemaps()

    def login(self) -> None:
        user, password = (
            credential(self.config, USERNAME_KEYS),
            credential(self.config, PASSWORD_KEYS),
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


def cdp_url(profile_dir: Path) -> str:
    """The CDP endpoint of the persistent context's Chromium (its first line is the port)."""
    found = profile_dir / "DevToolsActivePort"
    for _ in range(100):
        if found.exists() and found.read_text().strip():
            return f"http://127.0.0.1:{found.read_text().split()[0]}"
        time.sleep(0.05)
    raise InfrastructureError("Chromium did not open its DevTools port for the agent")
