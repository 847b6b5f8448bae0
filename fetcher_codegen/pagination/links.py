"""Next links between pages: a URL in the previous reply (``next_url``) or its
``Link: <...>; rel="next"`` header or, in an XML reply, its root's ``<link rel="next">``
element (``link_header``)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urljoin

from amazoniax_dagster.fetchers.recipe import xmltree
from fetcher_codegen.har import Entry
from fetcher_codegen.pagination.base import Page, Pagination
from fetcher_codegen.provenance import Slot
from fetcher_codegen.records import json_path


def next_url(pages: Sequence[Page], slots: Sequence[Slot]) -> Pagination | None:
    paths = set()
    for previous, current in zip(pages, pages[1:], strict=False):
        body = previous.entry.tree
        if body is None:
            return None
        path = _url_path(body, current.entry.url, previous.entry.url)
        if path is None:
            return None
        paths.add(path)
    if len(paths) != 1:
        return None
    path = paths.pop()
    taken = frozenset((s.place, s.name) for s in slots if s.place in ("query", "path"))
    return Pagination(
        {"type": "next_url", "next_url_path": path}, taken, detail=f"next URL at {path}"
    )


def _url_path(data: Any, url: str, base: str) -> str | None:
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), data)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, dict):
            stack.extend(((*where, str(k)), v) for k, v in item.items())
        elif isinstance(item, str) and item and urljoin(base, item) == url:
            return json_path(where)
    return None


def link_next(entry: Entry) -> str | None:
    header = entry.response_header("link") or ""
    for part in header.split(","):
        match = re.search(r"<([^>]*)>.*rel=\"?([^\";]*)", part)
        if match and "next" in match.group(2).split():
            return urljoin(entry.url, str(match.group(1)))
    body_next = (
        xmltree.links(entry.tree).get("next") if entry.format in ("xml", "rss", "atom") else None
    )
    return urljoin(entry.url, body_next) if body_next else None


def link_header(pages: Sequence[Page], slots: Sequence[Slot]) -> Pagination | None:
    for previous, current in zip(pages, pages[1:], strict=False):
        if link_next(previous.entry) != current.entry.url:
            return None
    taken = frozenset((s.place, s.name) for s in slots if s.place in ("query", "path"))
    return Pagination({"type": "link_header"}, taken, detail="Link header rel=next")
