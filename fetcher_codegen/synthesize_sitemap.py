"""Sitemap recipes: records one page each, on pages the site lists in its sitemaps.

When two or more pages the captured sitemaps list (one folder) share one layout with different
values (a record each, or more), and the sitemaps list more records so than any single page
shows, the recipe reads the sitemaps as the capture did (from robots.txt when it named them,
else the first sitemap read) and downloads every listed page of that folder: an ``http`` step
with a ``sitemap`` save.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

from amazoniax_dagster.fetchers.recipe.sitemaps import Sitemap, read_sitemap
from fetcher_codegen.capture.sitemap import page_folder
from fetcher_codegen.har import Entry, path_template
from fetcher_codegen.records import Records, find_records, parse_html
from fetcher_codegen.synthesize_base import Synthesis, _Builder, recipe_name, url_template

LAYOUT_SHARE = 0.8  # of a page's elements that every page of the template has


def sitemaps_in(entries: list[Entry]) -> list[tuple[Entry, Sitemap]]:
    """The robots.txt and sitemap documents of a capture, in capture order."""
    found = []
    for entry in entries:
        if entry.method != "GET" or not 200 <= entry.status < 300 or entry.format == "json":
            continue
        sitemap = read_sitemap(entry.text.encode(), entry.url)
        if sitemap.kind != "none":
            found.append((entry, sitemap))
    return found


def page_pattern(folder: str) -> str:
    """Page URLs directly in ``folder`` (``/stations/`` -> ``/stations/[^/?#]+/?$``)."""
    return re.escape(folder) + r"[^/?#]+/?$"


class SitemapBuilder(_Builder):
    def build(self) -> Synthesis | None:
        docs = sitemaps_in(self.analysis.entries)
        listed = list(dict.fromkeys(page for _, sitemap in docs for page in sitemap.pages))
        fetched = [
            e
            for e in self.analysis.entries
            if e.method == "GET" and 200 <= e.status < 300 and e.format == "html"
            and e.url in set(listed)
        ]  # fmt: skip
        folders = Counter(page_folder(e.url) for e in fetched).most_common(1)
        if not folders or folders[0][1] < 2:
            return None
        folder = folders[0][0]
        pages = [e for e in fetched if page_folder(e.url) == folder]
        records = page_records([e.text for e in pages])
        if records is None:
            return None
        pattern = page_pattern(folder)
        in_folder = [p for p in listed if re.search(pattern, urlsplit(p).path)]
        per_page = sum(max(_count(e), 1) for e in pages) / len(pages)
        urls = {e.url for e in pages}
        elsewhere = [
            g.record_count
            for g in self.analysis.html_data
            if not {e.url for e in g.entries} <= urls
        ]
        if len(in_folder) * per_page <= max(elsewhere, default=0):
            return None
        robots = next((entry for entry, sitemap in docs if sitemap.kind == "robots"), None)
        start = robots or docs[0][0]
        recipe: dict[str, Any] = {
            "version": 1,
            "kind": "http",
            "name": recipe_name(self.config, "pages"),
            "description": "generated from a browser capture, without an LLM",
            "steps": [
                {
                    "name": "sitemaps",
                    "request": {"url": url_template(start.url, self.config)},
                    "save": [{"type": "sitemap", "pattern": pattern}],
                }
            ],
        }
        how = "robots.txt Sitemap lines" if robots is not None else "the sitemap"
        request = {
            "kind": f"GET {path_template(urlsplit(pages[0].url).path)}",
            "format": "html",
            "requests": len(pages),
            "records": round(per_page * len(pages)),
            "listed": len(in_folder),
            "pagination": f"pages {pattern} listed in {how}",
            "values": [{"slot": "url", "kind": "extract", "detail": f"listed in {how}"}],
        }
        return Synthesis("http", recipe, [request], self.warnings, [records])


def page_records(pages: list[str]) -> Records | None:
    """Pages of one template, (nearly) the same elements with different values: one record
    each (the values that differ between pages); None when the pages do not look alike."""
    shapes = [parse_html(text).values() for text in pages]
    keys = [set(shape) for shape in shapes]
    common = set.intersection(*keys)
    if not common or any(len(common) < LAYOUT_SHARE * len(k) for k in keys):
        return None
    differing = sorted(k for k in common if len({shape[k] for shape in shapes}) > 1)
    if not differing:
        return None
    items = tuple({k: shape[k] for k in differing} for shape in shapes)
    return Records("html", "page", items)


def _count(entry: Entry) -> int:
    found = find_records(entry)
    return found.count if found is not None else 0


__all__ = ["SitemapBuilder", "page_pattern", "sitemaps_in"]
