"""Starting Chromium for browser fetchers and captures: the Debian package's binary, with the
flags that keep its own traffic (updates, calls home, WebRTC) out of a run."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

from amazoniax_dagster.core.errors import InfrastructureError

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Playwright

CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # WebRTC could reach addresses over UDP, around the proxy.
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
    # Chromium's own calls home (autofill, hints, safe browsing pings) are no page traffic.
    # Since Chromium 150 a context also asks www.google.com for AI-mode eligibility
    # (/async/folae: AimEnabled) and preconnects to the search engine (PreconnectToSearch);
    # through the policy proxy they showed up as blocked requests of every run.
    "--disable-features=AutofillServerCommunication,OptimizationHints,MediaRouter,Translate,"
    "NetworkTimeServiceQuerying,AimEnabled,PreconnectToSearch",
    "--disable-client-side-phishing-detection",
    "--disable-domain-reliability",
    "--no-pings",
)


def launch_chromium(playwright: Playwright) -> Browser:
    """The Debian package's Chromium (``playwright install`` is not used)."""
    from playwright.sync_api import Error as PlaywrightError

    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        raise InfrastructureError(
            "Chromium not found on PATH: install the Debian package 'chromium'"
        )
    try:
        return playwright.chromium.launch(executable_path=path, args=list(CHROMIUM_ARGS))
    except PlaywrightError as exc:
        raise InfrastructureError(f"cannot start Chromium ({path}): {exc.message}") from exc
