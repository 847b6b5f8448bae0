"""One capture of a channel's website: Chromium behind the policy proxy, the explorer in it, a
HAR out."""

from __future__ import annotations

import shutil
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amazoniax_dagster.core.errors import InfrastructureError, TransientError
from amazoniax_dagster.core.messages import WebSourceConfig
from amazoniax_dagster.core.netpolicy import NetworkPolicy
from amazoniax_dagster.core.redaction import Redactor, redact_url
from amazoniax_dagster.fetchers.browser import CHROMIUM_ARGS as BROWSER_CHROMIUM_ARGS
from amazoniax_dagster.fetchers.browser_proxy import PolicyProxy
from fetcher_codegen.capture.credentials import http_credentials, secret_values
from fetcher_codegen.capture.explorer import Explorer
from fetcher_codegen.capture.model import Capture, CaptureLimits

if TYPE_CHECKING:
    from fetcher_codegen.agent import AgentDriver

# One set of Chromium flags for browser recipes and captures: same proxy, same WebRTC guard.
CHROMIUM_ARGS = BROWSER_CHROMIUM_ARGS

HAR_NAME = "capture.har"
# The agent reaches Chromium over CDP on loopback; port 0: Chromium picks a free one and
# writes it to DevToolsActivePort in the profile dir.
AGENT_CDP_ARGS = ("--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1")


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
    secrets = secret_values(config)
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
                "http_credentials": http_credentials(config),
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
            explorer = Explorer(context, config, policy, limits, capture, redactor)
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
