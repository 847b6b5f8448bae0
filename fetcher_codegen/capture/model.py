"""What a capture is made of: its limits, its steps, the capture itself, and a response seen
during it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from fetcher_codegen.har import Entry, body_format
from fetcher_codegen.records import Records, find_records


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


@dataclass
class Seen:
    """A response seen during the capture (body kept when small and textual)."""

    method: str
    url: str
    status: int
    content_type: str
    text: str | None
    request_headers: dict[str, str]
    resource_type: str
    response_headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    request_body: str | None = None

    def request_json(self) -> Any:
        """The JSON object or list the request sent, else None."""
        try:
            return json.loads(self.request_body) if self.request_body else None
        except ValueError:
            return None

    def entry(self) -> Entry:
        body = (self.text or "").encode("utf-8")
        return Entry(0, self.method, self.url, self.status, mime=self.content_type, body=body)

    def records(self) -> Records | None:
        return find_records(self.entry()) if self.text else None

    def api_body(self) -> Any:
        """The body of an API reply as data: JSON, or XML (not a feed) as the JSON-shaped tree
        recipe paths read; None for other bodies."""
        if self.text is None:
            return None
        entry = self.entry()
        if entry.format == "xml":
            tree = entry.tree  # a sitemap is read as one, not explored as an API
            return None if set(tree or ()) & {"urlset", "sitemapindex"} else tree
        return self.json()

    def api_records(self) -> Records | None:
        """The records of a JSON or XML reply; None for other bodies (an HTML error page)."""
        return self.records() if self.api_body() is not None else None

    def json(self) -> Any:
        if self.text is None or body_format(self.text.encode(), self.content_type) != "json":
            return None
        try:
            return json.loads(self.text)
        except ValueError:
            return None
