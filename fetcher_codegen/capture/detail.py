"""A list whose items link to detail pages: open a few items and fetch the data files they
link, so the capture (and the proof after it) sees list -> detail page -> file."""

from __future__ import annotations

import posixpath
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urljoin, urlsplit

from amazoniax_dagster.fetchers.recipe.selectors import scan_html
from fetcher_codegen.capture.browsing import Browsing
from fetcher_codegen.har import Entry
from fetcher_codegen.probes import data_link_score

MIN_ITEMS = 3  # links in a group before it counts as a list's items
ITEMS_OPENED = 3  # detail pages the capture opens

# Every <a href> with the signature of its place on the page (the tags and classes above it).
ITEM_LINKS_JS = """
() => Array.from(document.querySelectorAll("a[href]")).map((a) => {
  const sig = [];
  for (let el = a.parentElement; el && sig.length < 3 && el !== document.body;
       el = el.parentElement) sig.push(el.tagName + "." + (el.getAttribute("class") || ""));
  return {href: a.href, text: (a.innerText || "").trim().slice(0, 80), parent: sig.join("<")};
})
"""


def item_links(links: Sequence[Mapping[str, Any]], page_url: str) -> list[str]:
    """The largest group of same-site links in one place of the page that share a parent path
    (``/publications/<slug>``): a list's items, in page order; [] when no group of ≥ 3."""
    origin = urlsplit(page_url)[:2]
    here = page_url.split("#")[0]
    groups: dict[tuple[str, str, int], list[str]] = defaultdict(list)
    for link in links:
        href = str(link.get("href", "")).split("#")[0]
        parts = urlsplit(href)
        if parts.scheme not in ("http", "https") or parts[:2] != origin or href == here:
            continue
        if data_link_score(href, str(link.get("text", ""))) == 2:
            continue  # a file, not a page
        path = parts.path.rstrip("/")
        if parts.path == urlsplit(here).path or str(link.get("text", "")).isdigit():
            continue  # this page again with other parameters: its paging, not its items
        if not path or "/" not in path.lstrip("/") and not parts.query:
            continue  # top-level navigation (/about, /contact), not items
        key = (str(link.get("parent", "")), posixpath.dirname(path), path.count("/"))
        if href not in groups[key]:
            groups[key].append(href)
    best = max(groups.values(), key=len, default=[])
    return best if len(best) >= MIN_ITEMS else []


def file_links(html: str, base: str) -> list[str]:
    """Data-file links on a detail page, absolute, each once."""
    scan = scan_html(html)
    urls = (urljoin(base, href.strip()) for href in scan.links)
    return list(
        dict.fromkeys(
            url.split("#")[0]
            for url in urls
            if url.startswith(("http://", "https://")) and data_link_score(url, "") == 2
        )
    )


def linked_files(entries: Sequence[Entry]) -> set[str]:
    """Data-file URLs that the capture's HTML pages link (fetched, one is a file, not a call)."""
    pages = (e for e in entries if e.method == "GET" and e.format == "html" and e.status < 300)
    return {url for page in pages for url in file_links(page.text, page.url)}


class DetailExplorer(Browsing):
    def follow_detail_pages(self) -> int:
        """Open a few of the page's item links; fetch the data files they link. Files fetched."""
        from playwright.sync_api import Error as PlaywrightError

        try:
            items = item_links(self.page.evaluate(ITEM_LINKS_JS), self.page.url)
        except PlaywrightError:
            return 0
        opened, files = 0, []
        for href in items[:ITEMS_OPENED]:
            if self.time_left() <= 0:
                break
            seen = self.fetch(href)
            opened += 1
            if 200 <= seen.status < 300 and seen.text:
                files += [url for url in file_links(seen.text, seen.url) if url not in files]
        files = files[: self.limits.max_follow_links]
        for url in files:
            if self.time_left() <= 0:
                break
            self.fetch(url)
        if opened:
            self.step(
                "follow detail pages",
                f"opened {opened} of {len(items)} item links; fetched {len(files)} data files",
            )
        return len(files)


__all__ = ["ITEM_LINKS_JS", "DetailExplorer", "file_links", "item_links", "linked_files"]
