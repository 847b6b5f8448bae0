"""What every pagination rule shares: the result, a page, the names of paging fields, and the
stop rules a first page supports."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fetcher_codegen.har import Entry
from fetcher_codegen.records import Records, json_path

PAGE_NAMES = re.compile(r"^(p|pg|page|pagenumber|page_number|pageno|page_no|pagenum)$", re.I)
OFFSET_NAMES = re.compile(r"^(offset|start|skip|from|first|startindex|start_index)$", re.I)
SIZE_NAMES = re.compile(
    r"^(limit|per_page|perpage|page_size|pagesize|size|count|rows|max|max_results|take|"
    r"num|results_per_page|items_per_page)$",
    re.I,
)
TOTAL_PAGES = (
    "total_pages",
    "totalPages",
    "pages",
    "page_count",
    "pageCount",
    "last_page",
    "lastPage",
    "num_pages",
)
TOTAL = (
    "total",
    "count",
    "total_count",
    "totalCount",
    "total_results",
    "totalResults",
    "totalItems",
)
HAS_MORE = (
    "has_more", "hasMore", "has_next", "hasNext", "hasNextPage", "more", "has_next_page",
    "IsTruncated", "isTruncated", "is_truncated",
)  # fmt: skip
NEXT_URL_KEYS = re.compile(
    r"^(next|next_url|nextUrl|next_page_url|nextPageUrl|next_link|nextLink|next_href)$"
)
CURSOR_KEYS = re.compile(
    r"^(next_?cursor|cursor|next_?token|end_?cursor|after|continuation(_?token)?|"
    r"next_?continuation_?token|next_?page_?token|scroll_?id|next_?marker)$",
    re.IGNORECASE,
)
MAX_INFO_DEPTH = 6
_NESTED_LIST = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+")  # data.members.items
NESTS = ("meta", "pagination", "paging", "page_info", "pageInfo", "links", "_links", "info")


@dataclass(frozen=True)
class Pagination:
    """A ``paginate`` mapping for the recipe and the slots it takes over."""

    config: dict[str, Any]
    slots: frozenset[tuple[str, str]] = frozenset()
    templates: Mapping[tuple[str, str], str] = field(default_factory=dict)  # (place, name)
    detail: str = ""


@dataclass(frozen=True)
class Page:
    entry: Entry
    records: Records | None


def distinct_pages(pages: Sequence[Page]) -> list[Page]:
    """Successful pages, without those that repeat an earlier page's records."""
    seen: set[tuple[tuple[tuple[str, str], ...], ...]] = set()
    kept = []
    for page in pages:
        if not 200 <= page.entry.status < 300:
            continue
        items = page.records.items if page.records else ()
        key = tuple(tuple(sorted(item.items())) for item in items)
        if items and key in seen:
            continue
        seen.add(key)
        kept.append(page)
    return kept


def hint_fields(body: Any, names: re.Pattern[str]) -> list[tuple[str, Any]]:
    """Top-level fields, and fields one level down in meta/paging-like objects, named so; a
    body that is one object under one name (an XML root, a JSON envelope) is read inside it."""
    where, body = unwrap(body)
    if not isinstance(body, dict):
        return []
    found = [(json_path((*where, k)), v) for k, v in body.items() if names.fullmatch(k)]
    for nest in NESTS:
        inner = body.get(nest)
        if isinstance(inner, dict):
            found += [
                (json_path((*where, nest, k)), v) for k, v in inner.items() if names.fullmatch(k)
            ]
    return found


def unwrap(body: Any) -> tuple[tuple[str, ...], Any]:
    """``{"response": {...}}`` -> (("response",), {...}): the object inside single-name
    wrappers (an XML document's root element, a JSON envelope), with the names on the way."""
    where: tuple[str, ...] = ()
    while isinstance(body, dict) and len(body) == 1:
        name, inner = next(iter(body.items()))
        if not isinstance(inner, dict):
            break
        where, body = (*where, str(name)), inner
    return where, body


def stop_rules(
    entry: Entry, *, first_count: int = 0, pages_seen: int = 1, records_path: str | None = None
) -> dict[str, Any]:
    """``total_pages_path``, ``total_path`` and ``has_more_path`` the first page supports: at
    the top of the body (and in its meta/paging objects), else beside a nested records list
    (``data.members.totalCount`` next to ``data.members.items``).

    A field that contradicts the capture is not a stop rule: a "total" no bigger than the
    first page while more pages were seen counts that page only, and so on.
    """
    body = entry.tree
    rules: dict[str, Any] = {}
    places: list[tuple[str, Any]] = [("", body)]
    if records_path and _NESTED_LIST.fullmatch(records_path):
        parent = records_path.rsplit(".", 1)[0]
        places.append((parent + ".", at_path(body, parent)))

    more = pages_seen > 1

    def agrees(key: str, value: Any) -> bool:
        if key == "has_more_path":
            return isinstance(value, bool) and (value or not more)
        if not isinstance(value, int) or isinstance(value, bool):
            return False
        least = 1 if key == "total_pages_path" else first_count
        return value > least or not more

    for key, names in (
        ("total_pages_path", TOTAL_PAGES),
        ("total_path", TOTAL),
        ("has_more_path", HAS_MORE),
    ):
        pattern = re.compile("|".join(re.escape(n) for n in names))
        found = ((p + path, v) for p, obj in places for path, v in hint_fields(obj, pattern))
        for path, value in found:
            if agrees(key, value):
                rules[key] = path
                break
    return rules


def at_path(data: Any, path: str) -> Any:
    if not path:
        return None
    for part in path.split("."):
        data = data.get(part) if isinstance(data, dict) else None
    return data


def small_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 100_000
