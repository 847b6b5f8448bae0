"""Which requests of a capture carry the data (docs/codegen.md §2).

:func:`analyze` drops the noise (:func:`fetcher_codegen.har.noise_reason`), groups the rest by
kind and keeps the groups whose bodies hold records (:mod:`fetcher_codegen.records`):

* JSON, CSV, XML and RSS/Atom bodies with records, and file downloads, are data (a download:
  an attachment, or a document the browser opened whose name ends in a data-file extension:
  csv, tsv, json, jsonl, xml, xlsx, zip, pdf, ...);
* API documentation (the channel's ``api_documentation_path``, OpenAPI/Swagger documents),
  token replies, login pages, robots.txt and sitemaps are not;
* HTML documents count only when nothing else carries records: their records are in the
  markup (repeated blocks), and the data is then read from the rendered pages.

Each group is scored by its records and by *DOM evidence*: the share of its record values that
appear in the pages the browser rendered (a value on screen that first arrived in a response
points at that response as the data source).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from amazoniax_dagster.core.messages import WebSourceConfig
from amazoniax_dagster.fetchers.recipe.sitemaps import read_sitemap
from fetcher_codegen.capture.detail import linked_files
from fetcher_codegen.har import Entry, Format, Group, group_by_kind, noise_reason
from fetcher_codegen.pagination import Page
from fetcher_codegen.probes import DATA_EXTENSIONS
from fetcher_codegen.records import Records, find_records, html_texts

MAX_EVIDENCE_VALUES = 200
SHOWN = 0.5  # share of a response's record values on screen that marks it as the data


@dataclass
class DataGroup:
    """A kind of request whose responses carry records."""

    group: Group
    pages: list[Page]
    format: Format
    downloads: bool
    dom_evidence: float = 0.0

    @property
    def records(self) -> list[Records]:
        return [page.records for page in self.pages if page.records is not None]

    @property
    def record_count(self) -> int:
        return sum(r.count for r in self.records)

    @property
    def records_path(self) -> str | None:
        paths = Counter(r.path for r in self.records if r.count)
        return paths.most_common(1)[0][0] if paths else None

    @property
    def entries(self) -> list[Entry]:
        return [page.entry for page in self.pages]


@dataclass
class Analysis:
    entries: list[Entry]
    data: list[DataGroup] = field(default_factory=list)
    html_data: list[DataGroup] = field(default_factory=list)  # only used without other data
    noise: Counter[str] = field(default_factory=Counter)
    dom_texts: set[str] = field(default_factory=set)

    @property
    def has_http_data(self) -> bool:
        return bool(self.data)


def analyze(
    entries: Sequence[Entry], config: WebSourceConfig, doms: Iterable[Path] = ()
) -> Analysis:
    analysis = Analysis(list(entries))
    analysis.dom_texts = _dom_texts(doms)
    kept = []
    linked = linked_files(entries)
    for entry in entries:
        reason = noise_reason(entry) or _not_data(entry, config)
        if reason:
            analysis.noise[reason] += 1
        else:
            kept.append(entry)
    for group in group_by_kind(kept):
        pages = [Page(entry, find_records(entry)) for entry in group.entries]
        formats = Counter(entry.format for entry in group.entries)
        fmt = formats.most_common(1)[0][0]
        downloads = any(_is_file(e) or e.url in linked for e in group.entries) or fmt == "csv"
        if not any(page.records and page.records.count for page in pages) and not downloads:
            analysis.noise["no records"] += len(group.entries)
            continue
        data = DataGroup(group, pages, fmt, downloads)
        data.dom_evidence = _evidence(data, analysis.dom_texts)
        (analysis.html_data if fmt == "html" else analysis.data).append(data)
    analysis.html_data.sort(key=lambda d: (-d.record_count, d.group.first.index))
    _drop_unshown(analysis)
    return analysis


def _drop_unshown(analysis: Analysis) -> None:
    """When some JSON responses are clearly what the page shows, JSON responses the page shows
    nothing of (configuration, menus, tracking lists) are not the data."""
    if not any(d.dom_evidence >= SHOWN for d in analysis.data):
        return
    for data in list(analysis.data):
        if data.format == "json" and data.dom_evidence == 0 and not data.downloads:
            analysis.data.remove(data)
            analysis.noise["records not shown on the page"] += len(data.pages)


def _is_file(entry: Entry) -> bool:
    """A download (attachment), or a data file the browser was sent to (not a script's call)."""
    if entry.is_download:
        return True
    opened = entry.resource_type not in ("fetch", "xhr")
    return opened and entry.path.lower().endswith(DATA_EXTENSIONS) and 200 <= entry.status < 300


def _not_data(entry: Entry, config: WebSourceConfig) -> str | None:
    if config.api_documentation_path and _same_url(
        entry.url, urljoin(config.url, config.api_documentation_path)
    ):
        return "API documentation"
    body = entry.json
    if isinstance(body, dict) and ("openapi" in body or "swagger" in body):
        return "API documentation"
    if entry.format == "html" and 'type="password"' in entry.text.replace("'", '"'):
        return "login page"
    if entry.format != "json" and read_sitemap(entry.text.encode(), entry.url).kind != "none":
        return "sitemap"
    return None


def _same_url(a: str, b: str) -> bool:
    left, right = urlsplit(a), urlsplit(b)
    return (left.netloc, left.path.rstrip("/")) == (right.netloc, right.path.rstrip("/"))


def _dom_texts(doms: Iterable[Path]) -> set[str]:
    texts: set[str] = set()
    for path in doms:
        try:
            texts |= html_texts(path.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            continue
    return texts


def _evidence(data: DataGroup, dom_texts: set[str]) -> float:
    """Share of the group's record values (3+ characters) shown in a rendered page."""
    values = [
        value
        for records in data.records
        for record in records.items
        for value in record.values()
        if len(value) >= 3
    ][:MAX_EVIDENCE_VALUES]
    if not values or not dom_texts:
        return 0.0
    blob = "\n".join(dom_texts)
    return round(sum(1 for v in values if v in dom_texts or v in blob) / len(values), 3)


__all__ = ["Analysis", "DataGroup", "analyze"]
