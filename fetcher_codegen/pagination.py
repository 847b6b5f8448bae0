"""Infer how a request kind pages through its records, from two or more of its requests.

Evidence, strongest first (each needs every transition between consecutive pages to agree):

* **next URL** — request *i* is a URL the response to request *i-1* gave: at a JSON path
  (``next_url``) or in a ``Link: <...>; rel="next"`` header (``link_header``);
* **cursor** — a parameter of request *i* whose value occurs in response *i-1* (a JSON path or
  a header) and is not a small number (``cursor``);
* **GraphQL relay** — a JSON request with ``query`` and ``variables`` whose response holds a
  ``pageInfo``-like object (``endCursor`` and ``hasNextPage``): the ``graphql`` paginator, from
  the response alone (one page is enough), the cursor variable named by the query;
* **keyset** — a parameter of request *i* equal to a field of the *last record* of response
  *i-1* (``after=<last id>``, numbers too): a ``cursor`` read at ``<records>[-1].<field>``;
* **counter** — an integer parameter growing by 1 (``page_number``) or by a constant step,
  the page size (``offset``); a parameter missing from the first request is its start value.

Requests that brought back the records of an earlier one (a probe the site ignored) or failed
are left out first. Stop rules come from the first page's body: ``total_pages``, ``total`` /
``count`` and ``has_more``-like fields, when present. With a single page, only a next URL or
Link header the server gave counts; other hints become a warning.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

from fetcher_codegen.har import Entry
from fetcher_codegen.provenance import Slot, distinctive, find_json_path, request_slots
from fetcher_codegen.records import Records, json_path

_PAGE_NAMES = re.compile(r"^(p|pg|page|pagenumber|page_number|pageno|page_no|pagenum)$", re.I)
_OFFSET_NAMES = re.compile(r"^(offset|start|skip|from|first|startindex|start_index)$", re.I)
_SIZE_NAMES = re.compile(
    r"^(limit|per_page|perpage|page_size|pagesize|size|count|rows|max|max_results|take|"
    r"num|results_per_page|items_per_page)$",
    re.I,
)
_TOTAL_PAGES = (
    "total_pages",
    "totalPages",
    "pages",
    "page_count",
    "pageCount",
    "last_page",
    "num_pages",
)
_TOTAL = (
    "total",
    "count",
    "total_count",
    "totalCount",
    "total_results",
    "totalResults",
    "totalItems",
)
_HAS_MORE = ("has_more", "hasMore", "has_next", "hasNext", "hasNextPage", "more", "has_next_page")
_NEXT_URL_KEYS = re.compile(
    r"^(next|next_url|nextUrl|next_page_url|nextPageUrl|next_link|nextLink|next_href)$"
)
_CURSOR_KEYS = re.compile(
    r"^(next_cursor|nextCursor|cursor|next_token|nextToken|endCursor|end_cursor|after|"
    r"continuation|continuation_token|next_page_token|nextPageToken|scroll_id)$"
)
MAX_INFO_DEPTH = 6
_NESTS = ("meta", "pagination", "paging", "page_info", "pageInfo", "links", "_links", "info")


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


def infer(pages: Sequence[Page]) -> tuple[Pagination | None, list[str]]:
    """The pagination of one request kind and warnings about what could not be inferred."""
    pages = distinct_pages(pages)
    if not pages:
        return None, []
    first = pages[0].records.count if pages[0].records else 0
    stops = stop_rules(pages[0].entry, first_count=first, pages_seen=len(pages))
    relay = _graphql(pages)
    if relay is not None:
        return relay, []
    if len(pages) == 1:
        return _single_page(pages[0], stops)
    entries = [page.entry for page in pages]
    slots = request_slots(entries)
    for finder in (_next_url, _link_header, _keyset, _cursor, _counter):
        found = finder(pages, slots)
        if found is not None:
            config = {**found.config, **{k: v for k, v in stops.items() if k not in found.config}}
            return Pagination(config, found.slots, found.templates, found.detail), []
    varying = [str(slot) for slot in slots if not slot.constant]
    if varying:
        return None, [f"pages differ in {', '.join(varying)}, but no pagination rule explains it"]
    return None, []


_END_CURSOR = ("endCursor", "end_cursor")
_HAS_NEXT = ("hasNextPage", "has_next_page")
_GRAPHQL_VARIABLE = re.compile(r"\$(after|cursor|endCursor|end_cursor|next|token)\s*:\s*String")


def _page_info(data: Any, parts: tuple[str | int, ...] = ()) -> tuple[str, str] | None:
    """JSON paths of ``endCursor`` and ``hasNextPage`` in the first object holding both."""
    if len(parts) > MAX_INFO_DEPTH or not isinstance(data, dict):
        return None
    end = next((k for k in _END_CURSOR if k in data), None)
    more = next((k for k in _HAS_NEXT if k in data), None)
    if end is not None and more is not None:
        return json_path((*parts, end)), json_path((*parts, more))
    for key, value in data.items():
        found = _page_info(value, (*parts, str(key)))
        if found is not None:
            return found
    return None


def _graphql(pages: Sequence[Page]) -> Pagination | None:
    first = pages[0].entry
    body = first.json_body
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        return None
    found = _page_info(first.json)
    if found is None:
        return None
    end_path, has_next_path = found
    variable = _cursor_variable(pages, body["query"])
    config = {
        "type": "graphql",
        "end_cursor_path": end_path,
        "has_next_path": has_next_path,
        "cursor_variable": variable,
    }
    return Pagination(config, detail=f"GraphQL pageInfo at {end_path}, variable ${variable}")


def _cursor_variable(pages: Sequence[Page], query: str) -> str:
    """The variable a later page sent the previous endCursor in, else the query's own."""
    for previous, page in zip(pages, pages[1:], strict=False):
        found = _page_info(previous.entry.json)
        variables = (page.entry.json_body or {}).get("variables")
        if found is None or not isinstance(variables, dict):
            continue
        cursor = _at_path(previous.entry.json, found[0])
        for name, value in variables.items():
            if cursor is not None and value == cursor:
                return str(name)
    declared = _GRAPHQL_VARIABLE.search(query)
    return declared.group(1) if declared else "after"


def _at_path(data: Any, path: str) -> Any:
    if not path:
        return None
    for part in path.split("."):
        data = data.get(part) if isinstance(data, dict) else None
    return data


def _echoed_counter(page: Page, stops: dict[str, Any]) -> Pagination | None:
    """One page whose body names its own position and size (``{"offset": 0, "limit": 10,
    "total": 37}``, ``meta.skip``/``meta.take``, ``page``/``per_page``) and says there is more:
    the parameters are the echoed names, the page size the echoed one."""
    body = page.entry.json
    count = page.records.count if page.records else 0
    if not count or not _says_more(body, stops, count):
        return None
    sizes = [
        (p, v)
        for p, v in _hint_fields(body, _SIZE_NAMES)
        if _small_int(v) and v > 0 and p.rsplit(".", 1)[-1] not in _TOTAL
    ]
    if not sizes:
        return None
    size_name, size = sizes[0][0].rsplit(".", 1)[-1], int(sizes[0][1])
    if count > size:
        return None
    for path, value in _hint_fields(body, _OFFSET_NAMES):
        if _small_int(value) and int(value) == 0:
            name = path.rsplit(".", 1)[-1]
            config: dict[str, Any] = {
                "type": "offset", "param": name, "limit": size, "start": 0,
                "limit_param": size_name, **stops,
            }  # fmt: skip
            return Pagination(config, detail=f"offset {name} and size {size_name} in the reply")
    for path, value in _hint_fields(body, _PAGE_NAMES):
        if _small_int(value) and int(value) in (0, 1):
            name = path.rsplit(".", 1)[-1]
            config = {
                "type": "page_number", "param": name, "start": int(value),
                "page_size": size, "page_size_param": size_name, **stops,
            }  # fmt: skip
            return Pagination(config, detail=f"page {name} and size {size_name} in the reply")
    return None


def _says_more(body: Any, stops: dict[str, Any], count: int) -> bool:
    """The first page's stop fields say a later page exists."""
    total = _at_path(body, stops.get("total_path") or "")
    last = _at_path(body, stops.get("total_pages_path") or "")
    more = _at_path(body, stops.get("has_more_path") or "")
    return (_small_int(total) and total > count) or (_small_int(last) and last > 1) or more is True


def _small_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 100_000


def _keyset(pages: Sequence[Page], slots: Sequence[Slot]) -> Pagination | None:
    """A parameter carrying a field of the previous page's last record (``after=<last id>``)."""
    records = [page.records for page in pages]
    if any(r is None or not r.count for r in records[:-1]) or pages[0].entry.json is None:
        return None
    for slot in slots:
        counter_like = _PAGE_NAMES.match(slot.name) or _OFFSET_NAMES.match(slot.name)
        if slot.constant or slot.place not in ("query", "json", "form") or counter_like:
            continue
        fields: set[str] | None = None
        for i in range(1, len(pages)):
            before = records[i - 1]
            assert before is not None
            last = before.items[-1]
            matching = {k for k, v in last.items() if v == slot.values[i] and v not in ("", None)}
            fields = matching if fields is None else fields & matching
            if not fields:
                break
        if not fields:
            continue
        first_records = records[0]
        assert first_records is not None
        name = sorted(fields, key=lambda k: (not re.search(r"id$", k, re.I), k))[0]
        base = "" if first_records.path == "$" else first_records.path
        key = json_path(tuple(name.split(".")))
        config: dict[str, Any] = {
            "type": "cursor",
            "cursor_path": f"{base}[-1]{key if key.startswith('[') else '.' + key}",
            "param": slot.name if slot.place == "query" else None,
        }
        templates: dict[tuple[str, str], str] = {}
        if slot.place != "query":
            templates[(slot.place, slot.name)] = "${cursor}"
        detail = f"keyset: {slot} is the last record's {name}"
        return Pagination(config, frozenset({(slot.place, slot.name)}), templates, detail)
    return None


def _single_page(page: Page, stops: dict[str, Any]) -> tuple[Pagination | None, list[str]]:
    body = page.entry.json
    link = _link_next(page.entry)
    if link is not None:
        return Pagination({"type": "link_header"}, detail="Link header rel=next"), []
    for path, value in _hint_fields(body, _NEXT_URL_KEYS):
        if isinstance(value, str) and value:
            config = {"type": "next_url", "next_url_path": path}
            return Pagination(config, detail=f"next URL at {path} (one page seen)"), []
    echoed = _echoed_counter(page, stops)
    if echoed is not None:
        return echoed, []
    more = any(
        value not in (None, "", False, 0) for _, value in _hint_fields(body, _CURSOR_KEYS)
    ) or any(value is True for _, value in _hint_fields(body, re.compile("|".join(_HAS_MORE))))
    if more:
        return None, ["the first page says there is more, but no second page was captured"]
    return None, []


def _next_url(pages: Sequence[Page], slots: Sequence[Slot]) -> Pagination | None:
    paths = set()
    for previous, current in zip(pages, pages[1:], strict=False):
        body = previous.entry.json
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


def _link_next(entry: Entry) -> str | None:
    header = entry.response_header("link") or ""
    for part in header.split(","):
        match = re.search(r"<([^>]*)>.*rel=\"?([^\";]*)", part)
        if match and "next" in match.group(2).split():
            return urljoin(entry.url, str(match.group(1)))
    return None


def _link_header(pages: Sequence[Page], slots: Sequence[Slot]) -> Pagination | None:
    for previous, current in zip(pages, pages[1:], strict=False):
        if _link_next(previous.entry) != current.entry.url:
            return None
    taken = frozenset((s.place, s.name) for s in slots if s.place in ("query", "path"))
    return Pagination({"type": "link_header"}, taken, detail="Link header rel=next")


def _cursor(pages: Sequence[Page], slots: Sequence[Slot]) -> Pagination | None:
    for slot in slots:
        if slot.constant or slot.place not in ("query", "json", "form"):
            continue
        sources: set[tuple[str, str]] = set()
        for i in range(1, len(pages)):
            value = slot.values[i]
            if value is None or not distinctive(value) or value.isdigit():
                sources = set()
                break
            previous = pages[i - 1].entry
            header = next(
                (n for n, v in previous.response_headers if v == value and n.lower() != "link"),
                None,
            )
            path = find_json_path(previous.json, value) if previous.json is not None else None
            if path is not None:
                sources.add(("path", path))
            elif header is not None:
                sources.add(("header", header))
            else:
                sources = set()
                break
        if len(sources) != 1 or slot.values[0] is not None and slot.values[0] == slot.values[1]:
            continue
        where, name = sources.pop()
        config: dict[str, Any] = {"type": "cursor"}
        config["cursor_path" if where == "path" else "cursor_header"] = name
        config["param"] = slot.name if slot.place == "query" else None
        templates: dict[tuple[str, str], str] = {}
        if slot.place != "query":
            templates[(slot.place, slot.name)] = "${cursor}"
        return Pagination(
            config, frozenset({(slot.place, slot.name)}), templates, f"cursor from {name}"
        )
    return None


def _ints(values: Sequence[str | None]) -> list[int | None] | None:
    out: list[int | None] = []
    for value in values:
        if value is None:
            out.append(None)
        elif re.fullmatch(r"-?\d{1,9}", value):
            out.append(int(value))
        else:
            return None
    return out


def _counter(pages: Sequence[Page], slots: Sequence[Slot]) -> Pagination | None:
    counts = [page.records.count if page.records else 0 for page in pages]
    candidates = sorted(
        (s for s in slots if not s.constant and s.place in ("query", "json", "form", "path")),
        key=lambda s: not (_PAGE_NAMES.match(s.name) or _OFFSET_NAMES.match(s.name)),
    )
    for slot in candidates:
        numbers = _ints(slot.values)
        if numbers is None or any(n is None for n in numbers[1:]):
            continue
        kind = _counter_kind(slot.name, numbers, counts)
        if kind is None:
            continue
        step, first = kind
        size = _size_slot(slots, slot, counts)
        in_query = slot.place == "query"
        taken = {(slot.place, slot.name)}
        variable = "${page}" if step == 1 else "${offset}"
        templates: dict[tuple[str, str], str] = {}
        if not in_query:
            templates[(slot.place, slot.name)] = variable
        param = slot.name if in_query else None
        if step == 1:
            config: dict[str, Any] = {"type": "page_number", "param": param, "start": first}
            if size is not None:
                config.update(page_size=size[1], page_size_param=size[0].name)
                taken.add((size[0].place, size[0].name))
            detail = f"page number in {slot}"
        else:
            limit = size[1] if size is not None and size[1] >= step else step
            config = {"type": "offset", "param": param, "limit": limit, "start": first}
            config["limit_param"] = size[0].name if size is not None else None
            if size is not None:
                taken.add((size[0].place, size[0].name))
            detail = f"offset in {slot}, {limit} a page"
        return Pagination(config, frozenset(taken), templates, detail)
    return None


def _counter_kind(
    name: str, numbers: Sequence[int | None], counts: Sequence[int]
) -> tuple[int, int] | None:
    """(step, start) of a counter (step 1: a page number), or None when it is not one.

    An offset grows by a constant page size or by the records the previous page brought
    (``offset=40`` after 10 records, then ``offset=42`` after the last 2). A parameter missing
    from the first request starts at the page before the second (page) or at 0 (offset).
    """
    first = numbers[0]
    if first is None:
        second = numbers[1]
        assert second is not None
        page_like = _PAGE_NAMES.match(name) or (not _OFFSET_NAMES.match(name) and second == 2)
        first = max(second - 1, 0) if page_like else 0
    sequence = [first, *(n for n in numbers[1:] if n is not None)]
    diffs = [b - a for a, b in zip(sequence, sequence[1:], strict=False)]
    if not diffs or any(d < 1 for d in diffs):
        return None
    if all(d == 1 for d in diffs) and not _OFFSET_NAMES.match(name):
        return 1, first
    if len(set(diffs)) == 1 and diffs[0] > 1:
        return diffs[0], first
    if max(counts) > 1 and all(d == counts[i] for i, d in enumerate(diffs)):
        return max(counts), first
    return None


def _size_slot(
    slots: Sequence[Slot], counter: Slot, counts: Sequence[int]
) -> tuple[Slot, int] | None:
    """A parameter holding the page size: constant where present, named or valued like one."""
    for slot in slots:
        if slot is counter or slot.place != counter.place:
            continue
        present = set(slot.present)
        if len(present) != 1:
            continue
        value = present.pop()
        if not value.isdigit() or int(value) < 1:
            continue
        if _SIZE_NAMES.match(slot.name) or int(value) == max(counts, default=0):
            return slot, int(value)
    return None


def _hint_fields(body: Any, names: re.Pattern[str]) -> list[tuple[str, Any]]:
    """Top-level fields, and fields one level down in meta/paging-like objects, named so."""
    if not isinstance(body, dict):
        return []
    found = [(json_path((k,)), v) for k, v in body.items() if names.fullmatch(k)]
    for nest in _NESTS:
        inner = body.get(nest)
        if isinstance(inner, dict):
            found += [(json_path((nest, k)), v) for k, v in inner.items() if names.fullmatch(k)]
    return found


def stop_rules(entry: Entry, *, first_count: int = 0, pages_seen: int = 1) -> dict[str, Any]:
    """``total_pages_path``, ``total_path`` and ``has_more_path`` the first page supports.

    A field that contradicts the capture is not a stop rule: a "total" no bigger than the
    first page while more pages were seen counts that page only, and so on.
    """
    body = entry.json
    rules: dict[str, Any] = {}

    more = pages_seen > 1

    def agrees(key: str, value: Any) -> bool:
        if key == "has_more_path":
            return isinstance(value, bool) and (value or not more)
        if not isinstance(value, int) or isinstance(value, bool):
            return False
        least = 1 if key == "total_pages_path" else first_count
        return value > least or not more

    for key, names in (
        ("total_pages_path", _TOTAL_PAGES),
        ("total_path", _TOTAL),
        ("has_more_path", _HAS_MORE),
    ):
        pattern = re.compile("|".join(re.escape(n) for n in names))
        for path, value in _hint_fields(body, pattern):
            if agrees(key, value):
                rules[key] = path
                break
    return rules


__all__ = ["Page", "Pagination", "distinct_pages", "infer", "stop_rules"]
