"""The deterministic explorer: open a channel's website in Chromium and record a HAR.

One capture, bounded by :class:`CaptureLimits` (pages, seconds, requests)::

    open the channel URL ──► log in (a password field and login_credentials)
        ──► API answered 401/403 and auth_keys exist: present them (token endpoint, key)
        ──► read the API documentation (api_documentation_path), when there is one
        ──► JSON page: follow its URLs when it is an index; ask for the next page
            HTML page: fetch feed and file links; click "next"/"more" until none; scroll
            until nothing grows; nothing found: follow links that look like data pages;
            read the sitemaps (robots.txt, /sitemap.xml, index files) and a few listed pages
        ──► every JSON kind seen once: ask for its next page (probes.next_page_probes for a
            GET, probes_body.next_body_probes for a POST that sent JSON, e.g. GraphQL)

Each step (a page-level action) leaves a screenshot and the DOM in ``work_dir/steps``. The HAR
(``work_dir/capture.har``, bodies embedded) holds what was typed and every token: it never
leaves the work dir; summaries and provenance are redacted.

Every request goes through a route handler that refuses what the NetworkPolicy refuses, and
every connection through the browser runtime's :class:`PolicyProxy` (redirect hops, which
routes never see, and DNS answers that change between check and connect). Refused requests
are warnings; a refused channel URL is an :class:`UnsafeURLError`."""

from __future__ import annotations

from fetcher_codegen.capture.model import Capture, CaptureLimits, CaptureStep
from fetcher_codegen.capture.site import CHROMIUM_ARGS, HAR_NAME, capture_site, chromium_path
from fetcher_codegen.capture_scripts import next_selector

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
