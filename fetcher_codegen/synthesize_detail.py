"""List -> detail page -> data file: files the capture fetched from a list's detail pages
become one ``links`` save with ``follow`` on the list page's step (the engine opens every item
the list selects, not only the few the capture opened)."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

from amazoniax_dagster.fetchers.recipe.selectors import scan_html
from fetcher_codegen.analysis import Analysis, DataGroup
from fetcher_codegen.capture.detail import MIN_ITEMS, file_links
from fetcher_codegen.har import Entry, resource_name
from fetcher_codegen.pagination import Page, Pagination, infer
from fetcher_codegen.probes import DATA_EXTENSIONS


class _StepBuilder(Protocol):
    """What of the http recipe builder a follow save needs."""

    analysis: Analysis
    requests: list[dict[str, Any]]
    detail_pages: set[str]

    def _dependency(self, index: int, depth: int) -> dict[str, Any]: ...

    def _unique_name(self, base: str) -> str: ...

    def _add(self, step: dict[str, Any], index: int) -> None: ...

    def _request(
        self, entries: Sequence[Entry], pagination: Pagination | None, *, depth: int
    ) -> tuple[dict[str, Any], dict[str, Any]]: ...

    def data_provenance(self, data: DataGroup, pagination: Pagination | None) -> dict[str, Any]: ...


def _page_links(entry: Entry) -> set[str]:
    urls = (urljoin(entry.url, href.strip()) for href in scan_html(entry.text).links)
    return {url.split("#")[0] for url in urls}


def _html_pages(entries: Sequence[Entry], before: int) -> list[Entry]:
    return [
        e
        for e in entries[:before]
        if e.method == "GET" and 200 <= e.status < 300 and e.format == "html"
    ]


def detail_plan(entries: Sequence[Entry], files: Sequence[Entry]) -> tuple[Entry, set[str]] | None:
    """The list page and its item links (≥ 3 under the parent path of the detail pages that
    link ``files``); None when the files are not reached that way."""
    details: dict[str, Entry] = {}
    for file in files:
        url = file.url.split("#")[0]
        pages = reversed(_html_pages(entries, file.index))
        page = next((p for p in pages if url in file_links(p.text, p.url)), None)
        if page is None:
            return None
        details[page.url.split("#")[0]] = page
    parents = {_parent(url) for url in details}
    if len(parents) != 1:
        return None
    parent = parents.pop()
    first = min(page.index for page in details.values())
    for candidate in reversed(_html_pages(entries, first)):
        links = _page_links(candidate)
        items = {url for url in links if _parent(url) == parent and urlsplit(url).path != parent}
        if set(details) <= items and len(items) >= MIN_ITEMS and candidate.url not in items:
            return candidate, items
    return None


def _parent(url: str) -> str:
    return posixpath.dirname(urlsplit(url).path.rstrip("/"))


def _list_step(builder: _StepBuilder, listing: Entry) -> dict[str, Any]:
    """The list page's step, with the paging the capture saw when it paged the list by a
    parameter of the same path (``?page=2``)."""
    same = [
        Page(e, None)
        for e in _html_pages(builder.analysis.entries, len(builder.analysis.entries))
        if e.index >= listing.index and e.path == listing.path
    ]
    pagination = infer(same)[0] if len({p.entry.url for p in same}) > 1 else None
    if pagination is None:
        return builder._dependency(listing.index, 0)
    request, _ = builder._request([p.entry for p in same], pagination, depth=0)
    name = builder._unique_name(f"{resource_name(listing.path, 'page')}_page")
    step = {"name": name, "request": request, "paginate": pagination.config}
    builder._add(step, listing.index)
    return step


def item_selector(details: set[str]) -> dict[str, Any] | None:
    """``html_links`` for the list's items: hrefs under the detail pages' common parent path."""
    parents = {_parent(url) for url in details}
    if len(parents) != 1:
        return None
    parent = parents.pop().rstrip("/") + "/"
    return {"type": "html_links", "pattern": re.escape(parent) + r"[^/?#]+/?(\?|#|$)"}


def file_selector(details: Sequence[Entry]) -> dict[str, Any]:
    """``html_links`` for every data-file kind the detail pages link (optional per page)."""
    kinds = {
        ext.lstrip(".")
        for page in details
        for url in file_links(page.text, page.url)
        for ext in DATA_EXTENSIONS
        if urlsplit(url).path.lower().endswith(ext)
    }
    pattern = r"\.(" + "|".join(re.escape(k) for k in sorted(kinds)) + r")(\?|#|$)"
    return {"type": "html_links", "pattern": pattern, "required": False}


def follow_details(builder: _StepBuilder, data: DataGroup) -> bool:
    """A ``links`` save with ``follow`` on the list page's step when ``data``'s files came from
    a list's detail pages; True when they did (a second kind of file there is covered too)."""
    entries = builder.analysis.entries
    files = [e for e in data.entries if 200 <= e.status < 300]
    if not files or (found := detail_plan(entries, files)) is None:
        return False
    listing, items = found
    if items <= builder.detail_pages:
        return True  # the same detail pages' save already takes every file kind they link
    select = item_selector(items)
    if select is None:
        return False
    pages = [e for e in entries if e.url.split("#")[0] in items]
    step = _list_step(builder, listing)
    if "paginate" in step:
        select["required"] = False  # the page after the last one lists no items: paging stops
    save = {"type": "links", "select": select, "follow": {"select": file_selector(pages)}}
    step.setdefault("save", []).append(save)
    builder.detail_pages |= items
    detail = f"files linked from the detail pages that {listing.method} {listing.path} lists"
    builder.requests.append(
        {
            **builder.data_provenance(data, None),
            "values": [{"slot": "url", "kind": "extract", "detail": detail}],
        }
    )
    return True


__all__ = ["detail_plan", "file_selector", "follow_details", "item_selector"]
