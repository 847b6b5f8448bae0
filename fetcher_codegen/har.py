"""Read a HAR (as Playwright records it), drop what carries no data, group the rest by kind.

A HAR holds everything the browser did, secrets included (typed passwords, tokens, session
cookies): it stays in the capture's work dir. What leaves it (summaries, provenance) goes
through :mod:`amazoniax_dagster.core.redaction` first (:func:`summarize_har` does).

Terms used across ``fetcher_codegen``:

* an :class:`Entry` is one request with its response, its body decoded;
* its *format* is what the body is (``json``, ``csv``, ``rss``, ``atom``, ``xml``, ``html``,
  ``text``, ``binary``, ``empty``), judged by the body first and the declared type second;
* :func:`noise_reason` says why an entry cannot be a data source (static asset, tracker,
  preflight, redirect, error, empty body) or None;
* a *kind* of request is its method + origin + path template (digits and ids normalised,
  :func:`path_template`); :func:`group_by_kind` returns one :class:`Group` per kind.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from amazoniax_dagster.core.errors import FetcherCodeError
from amazoniax_dagster.fetchers.recipe import xmltree

Format = Literal["json", "csv", "rss", "atom", "xml", "html", "text", "binary", "empty"]

STATIC_RESOURCE_TYPES = frozenset(
    {"image", "font", "stylesheet", "script", "media", "manifest", "ping", "texttrack"}
)
STATIC_EXTENSIONS = frozenset(
    {
        ".js", ".mjs", ".cjs", ".css", ".map", ".png", ".jpg", ".jpeg", ".gif", ".svg",
        ".ico", ".webp", ".avif", ".bmp", ".woff", ".woff2", ".ttf", ".otf", ".eot",
        ".mp3", ".mp4", ".webm", ".ogg", ".wav", ".wasm",
    }
)  # fmt: skip
STATIC_MIME_PREFIXES = (
    "image/", "font/", "audio/", "video/", "text/css", "text/javascript",
    "application/javascript", "application/x-javascript", "application/ecmascript",
    "application/wasm", "application/font", "application/x-font", "application/manifest",
)  # fmt: skip
# Analytics, tag managers, ad and error-reporting hosts (matched as the host or a parent).
TRACKER_DOMAINS = frozenset(
    {
        "google-analytics.com", "googletagmanager.com", "googlesyndication.com",
        "doubleclick.net", "googleadservices.com", "adservice.google.com", "facebook.net",
        "connect.facebook.net", "segment.io", "segment.com", "mixpanel.com", "hotjar.com",
        "hotjar.io", "sentry.io", "nr-data.net", "newrelic.com", "clarity.ms",
        "amplitude.com", "plausible.io", "matomo.cloud", "stats.wp.com",
        "scorecardresearch.com", "quantserve.com", "bat.bing.com", "fullstory.com",
        "heap.io", "heapanalytics.com", "intercom.io", "optimizely.com", "cloudflareinsights.com",
        "datadoghq.com", "browser-intake-datadoghq.com", "snowplowanalytics.com", "crazyegg.com",
        "mouseflow.com", "yandex.ru", "mc.yandex.ru", "tiktok.com", "analytics.tiktok.com",
        "linkedin.com", "px.ads.linkedin.com", "twitter.com", "ads-twitter.com", "pinterest.com",
    }
)  # fmt: skip
_TRACKER_PATHS = re.compile(r"/(collect|g/collect|analytics|beacon|pixel|tr|track|log|rum)/?$")
_DIGITS = re.compile(r"\d+")
_ID_SEGMENT = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"  # uuid
    r"|[0-9a-f]{16,}"  # hex digests, object ids
    r"|(?=[A-Za-z0-9_-]*\d)[A-Za-z0-9_-]{24,}",  # long tokens with a digit
    re.IGNORECASE,
)
_VERSION_SEGMENT = re.compile(r"v\d+(\.\d+)?", re.IGNORECASE)
_FILENAME = re.compile(r"""filename\*?\s*=\s*(?:UTF-8'[^']*')?["']?([^"';]+)""", re.IGNORECASE)


@dataclass(frozen=True)
class Entry:
    """One request and its response, as recorded; ``index`` is its position in the HAR."""

    index: int
    method: str
    url: str
    status: int
    request_headers: tuple[tuple[str, str], ...] = ()
    post_mime: str = ""
    post_text: str | None = None
    response_headers: tuple[tuple[str, str], ...] = ()
    mime: str = ""
    body: bytes = b""
    resource_type: str = ""
    started: str = ""

    # -- request ------------------------------------------------------------------------------

    def header(self, name: str) -> str | None:
        return _first(self.request_headers, name)

    @cached_property
    def query(self) -> tuple[tuple[str, str], ...]:
        return tuple(parse_qsl(urlsplit(self.url).query, keep_blank_values=True))

    @cached_property
    def cookies(self) -> dict[str, str]:
        jar: dict[str, str] = {}
        for name, value in self.request_headers:
            if name.lower() == "cookie":
                for pair in value.split(";"):
                    key, eq, val = pair.strip().partition("=")
                    if eq:
                        jar[key] = val
        return jar

    @cached_property
    def form(self) -> dict[str, str] | None:
        """A url-encoded request body as fields, else None."""
        if self.post_text is None or "x-www-form-urlencoded" not in self.post_mime.lower():
            return None
        return dict(parse_qsl(self.post_text, keep_blank_values=True))

    @cached_property
    def json_body(self) -> Any:
        """A JSON request body, else None."""
        if self.post_text is None or "json" not in self.post_mime.lower():
            return None
        try:
            return json.loads(self.post_text)
        except ValueError:
            return None

    # -- response -----------------------------------------------------------------------------

    def response_header(self, name: str) -> str | None:
        return _first(self.response_headers, name)

    @cached_property
    def set_cookies(self) -> dict[str, str]:
        """Cookies this response sets (Playwright may join several headers with newlines)."""
        jar: dict[str, str] = {}
        for name, value in self.response_headers:
            if name.lower() != "set-cookie":
                continue
            for line in value.split("\n"):
                key, eq, rest = line.strip().partition("=")
                if eq and key:
                    jar[key] = rest.split(";", 1)[0]
        return jar

    @cached_property
    def text(self) -> str:
        return self.body.decode(_charset(self.mime) or "utf-8", errors="replace")

    @cached_property
    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        if self.format != "json":
            return None
        return json.loads(self.text)

    @cached_property
    def tree(self) -> Any:
        """The body as data: JSON, or XML as the JSON-shaped tree recipe paths read
        (:mod:`amazoniax_dagster.fetchers.recipe.xmltree`); None for other bodies."""
        if self.format in ("xml", "rss", "atom"):
            try:
                return xmltree.parse(self.body)
            except xmltree.XmlTreeError:
                return None
        return self.json

    @cached_property
    def filename(self) -> str | None:
        """The server's file name (Content-Disposition), when it sends one."""
        disposition = self.response_header("content-disposition") or ""
        match = _FILENAME.search(disposition)
        return unquote(match.group(1)).strip() if match else None

    @property
    def is_download(self) -> bool:
        disposition = (self.response_header("content-disposition") or "").lower()
        return disposition.startswith("attachment") or self.filename is not None

    @cached_property
    def format(self) -> Format:
        return body_format(self.body, self.mime, self.filename or urlsplit(self.url).path)

    @property
    def path(self) -> str:
        return urlsplit(self.url).path or "/"

    @property
    def origin(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"

    @property
    def url_without_query(self) -> str:
        return self.url.split("#", 1)[0].split("?", 1)[0]


def _first(headers: Sequence[tuple[str, str]], name: str) -> str | None:
    lowered = name.lower()
    return next((value for key, value in headers if key.lower() == lowered), None)


def _charset(mime: str) -> str | None:
    match = re.search(r"charset=([\w.-]+)", mime, re.IGNORECASE)
    if match is None:
        return None
    try:
        "".encode(match.group(1))
    except LookupError:
        return None
    return match.group(1)


def body_format(body: bytes, mime: str, name: str = "") -> Format:
    """What a body is, judged by its first bytes, then by its declared type and name."""
    head = body[:2048].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    lowered_mime = mime.lower()
    lowered_name = name.lower()
    if not head:
        return "empty"
    if b"\x00" in body[:1024]:
        return "binary"
    if head[:1] in (b"{", b"[") and ("json" in lowered_mime or _parses_as_json(body)):
        return "json"
    if head.startswith((b"<!doctype html", b"<html")) or (
        "html" in lowered_mime and not head.startswith(b"<?xml")
    ):
        return "html"
    if head.startswith(b"<"):
        if b"<rss" in head or "rss" in lowered_mime:
            return "rss"
        if re.search(rb"<feed[\s>]", head) and b"atom" in head or "atom" in lowered_mime:
            return "atom"
        return "xml"
    if "csv" in lowered_mime or lowered_name.endswith((".csv", ".tsv")):
        return "csv"
    if "json" in lowered_mime and _parses_as_json(body):
        return "json"
    try:
        body[:4096].decode("utf-8")
    except UnicodeDecodeError:
        return "binary"
    return "text"


def _parses_as_json(body: bytes) -> bool:
    try:
        json.loads(body)
    except ValueError:
        return False
    return True


# --- loading ---------------------------------------------------------------------------------


def load_har(path: Path) -> list[Entry]:
    """Every entry of the HAR file at ``path``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FetcherCodeError(f"cannot read the capture {path.name}: {exc}") from exc
    return entries_from_har(data)


def entries_from_har(data: Mapping[str, Any]) -> list[Entry]:
    """Entries of a HAR document (a dict), in the order they were recorded."""
    raw = data.get("log", {}).get("entries", [])
    return [_entry(index, item) for index, item in enumerate(raw) if isinstance(item, dict)]


def _entry(index: int, item: Mapping[str, Any]) -> Entry:
    request = item.get("request", {})
    response = item.get("response", {})
    content = response.get("content", {}) or {}
    post = request.get("postData") or {}
    return Entry(
        index=index,
        method=str(request.get("method", "GET")).upper(),
        url=str(request.get("url", "")),
        status=int(response.get("status") or 0),
        request_headers=_pairs(request.get("headers")),
        post_mime=str(post.get("mimeType", "")),
        post_text=post.get("text") if isinstance(post.get("text"), str) else None,
        response_headers=_pairs(response.get("headers")),
        mime=str(
            content.get("mimeType") or _first(_pairs(response.get("headers")), "content-type") or ""
        ),
        body=_content_bytes(content),
        resource_type=str(item.get("_resourceType", "")),
        started=str(item.get("startedDateTime", "")),
    )


def _pairs(items: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(items, list):
        return ()
    return tuple(
        (str(h.get("name", "")), str(h.get("value", ""))) for h in items if isinstance(h, dict)
    )


def _content_bytes(content: Mapping[str, Any]) -> bytes:
    text = content.get("text")
    if not isinstance(text, str):
        return b""
    if content.get("encoding") == "base64":
        try:
            return base64.b64decode(text)
        except (binascii.Error, ValueError):
            return b""
    return text.encode("utf-8")


# --- noise -----------------------------------------------------------------------------------


def noise_reason(entry: Entry) -> str | None:
    """Why ``entry`` cannot be a data source, or None when it may be one."""
    parts = urlsplit(entry.url)
    host = (parts.hostname or "").lower()
    extension = Path(parts.path).suffix.lower()
    mime = entry.mime.lower()
    if parts.scheme not in ("http", "https"):
        return "not http"
    if entry.method == "OPTIONS":
        return "preflight"
    if is_tracker(host) or _TRACKER_PATHS.search(parts.path):
        return "analytics/tracker"
    if parts.path.rstrip("/").endswith("favicon.ico"):
        return "favicon"
    if entry.resource_type in STATIC_RESOURCE_TYPES:
        return f"static asset ({entry.resource_type})"
    if extension in STATIC_EXTENSIONS or mime.startswith(STATIC_MIME_PREFIXES):
        return "static asset"
    if 300 <= entry.status < 400:
        return "redirect"
    if entry.status == 0:
        return "failed (no response)"
    if entry.status >= 400:
        return f"error status {entry.status}"
    if entry.format == "empty":
        return "empty body"
    return None


def is_tracker(host: str) -> bool:
    labels = host.split(".")
    return any(".".join(labels[i:]) in TRACKER_DOMAINS for i in range(len(labels) - 1))


# --- kinds -----------------------------------------------------------------------------------


def path_template(path: str) -> str:
    """``/api/orders/123/items`` -> ``/api/orders/{n}/items``; ids and digit runs normalised.

    Version segments (``v1``) are kept: ``/api/v1/x`` and ``/api/v2/x`` are different kinds.
    """
    segments = []
    for segment in path.split("/"):
        if _VERSION_SEGMENT.fullmatch(segment):
            segments.append(segment)
        elif _ID_SEGMENT.fullmatch(segment):
            segments.append("{id}")
        else:
            segments.append(_DIGITS.sub("{n}", segment))
    return "/".join(segments) or "/"


@dataclass(frozen=True)
class Kind:
    method: str
    origin: str
    template: str

    def __str__(self) -> str:
        return f"{self.method} {self.origin}{self.template}"


def kind_of(entry: Entry) -> Kind:
    return Kind(entry.method, entry.origin, path_template(entry.path))


@dataclass
class Group:
    """Requests of one kind, in the order they were made."""

    kind: Kind
    entries: list[Entry] = field(default_factory=list)

    @property
    def first(self) -> Entry:
        return self.entries[0]


def group_by_kind(entries: Iterable[Entry]) -> list[Group]:
    """One group per kind, groups in the order of their first request."""
    groups: dict[Kind, Group] = {}
    for entry in entries:
        key = kind_of(entry)
        groups.setdefault(key, Group(key)).entries.append(entry)
    return list(groups.values())


def resource_name(path: str, default: str = "data") -> str:
    """A stable name for what a path serves: its last segment that is not a version, id,
    number or extension-only (``/api/v2/items`` -> ``items``, ``/feed.xml`` -> ``feed``)."""
    for segment in reversed([s for s in path.split("/") if s]):
        stem = Path(segment).stem if "." in segment else segment
        if _VERSION_SEGMENT.fullmatch(stem) or _ID_SEGMENT.fullmatch(stem) or stem.isdigit():
            continue
        cleaned = re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_-")
        if cleaned and cleaned[0].isalpha() and cleaned.lower() not in {"api", "rest"}:
            return cleaned[:48]
    return default


__all__ = [
    "Entry",
    "Format",
    "Group",
    "Kind",
    "body_format",
    "entries_from_har",
    "group_by_kind",
    "is_tracker",
    "kind_of",
    "load_har",
    "noise_reason",
    "path_template",
    "resource_name",
]
