"""Pagination read from one captured page: a next link or URL the server gave, or a reply that
echoes its own position and size and says there is more."""

from __future__ import annotations

import re
from typing import Any

from fetcher_codegen.pagination.base import (
    CURSOR_KEYS,
    HAS_MORE,
    NEXT_URL_KEYS,
    OFFSET_NAMES,
    PAGE_NAMES,
    SIZE_NAMES,
    TOTAL,
    Page,
    Pagination,
    at_path,
    hint_fields,
    small_int,
)
from fetcher_codegen.pagination.links import link_next


def single_page(page: Page, stops: dict[str, Any]) -> tuple[Pagination | None, list[str]]:
    body = page.entry.tree
    link = link_next(page.entry)
    if link is not None:
        return Pagination({"type": "link_header"}, detail="Link header rel=next"), []
    for path, value in hint_fields(body, NEXT_URL_KEYS):
        if isinstance(value, str) and value:
            config = {"type": "next_url", "next_url_path": path}
            return Pagination(config, detail=f"next URL at {path} (one page seen)"), []
    echoed = _echoed_counter(page, stops)
    if echoed is not None:
        return echoed, []
    more = any(
        value not in (None, "", False, 0) for _, value in hint_fields(body, CURSOR_KEYS)
    ) or any(value is True for _, value in hint_fields(body, re.compile("|".join(HAS_MORE))))
    if more:
        return None, ["the first page says there is more, but no second page was captured"]
    return None, []


def _echoed_counter(page: Page, stops: dict[str, Any]) -> Pagination | None:
    """One page whose body names its own position and size (``{"offset": 0, "limit": 10,
    "total": 37}``, ``meta.skip``/``meta.take``, ``page``/``per_page``) and says there is more:
    the parameters are the echoed names, the page size the echoed one."""
    body = page.entry.tree
    count = page.records.count if page.records else 0
    if not count or not _says_more(body, stops, count):
        return None
    sizes = [
        (p, v)
        for p, v in hint_fields(body, SIZE_NAMES)
        if small_int(v) and v > 0 and p.rsplit(".", 1)[-1] not in TOTAL
    ]
    if not sizes:
        return None
    size_name, size = sizes[0][0].rsplit(".", 1)[-1], int(sizes[0][1])
    if count > size:
        return None
    for path, value in hint_fields(body, OFFSET_NAMES):
        if small_int(value) and int(value) == 0:
            name = path.rsplit(".", 1)[-1]
            config: dict[str, Any] = {
                "type": "offset", "param": name, "limit": size, "start": 0,
                "limit_param": size_name, **stops,
            }  # fmt: skip
            return Pagination(config, detail=f"offset {name} and size {size_name} in the reply")
    for path, value in hint_fields(body, PAGE_NAMES):
        if small_int(value) and int(value) in (0, 1):
            name = path.rsplit(".", 1)[-1]
            config = {
                "type": "page_number", "param": name, "start": int(value),
                "page_size": size, "page_size_param": size_name, **stops,
            }  # fmt: skip
            return Pagination(config, detail=f"page {name} and size {size_name} in the reply")
    return None


def _says_more(body: Any, stops: dict[str, Any], count: int) -> bool:
    """The first page's stop fields say a later page exists."""
    total = at_path(body, stops.get("total_path") or "")
    last = at_path(body, stops.get("total_pages_path") or "")
    more = at_path(body, stops.get("has_more_path") or "")
    return (small_int(total) and total > count) or (small_int(last) and last > 1) or more is True
