"""Generation on site shapes no demo site has: every record fetched, with the proof passed.

Each site is a few lines of the standard library's HTTP server, written for this test only (the
rules were fixed on other shapes: a separate holdout of five sites). Covered: a page number the
body names under ``pagination``, ``hasMore`` with keyset paging by the last id, a filter form
that shows results only once submitted, and a blog whose first page is ``/`` while the next
ones are ``/page/N``; a key presented in the scheme only the 401's challenge names; a retired
URL whose 410 names its successor, records that are bare id strings, an "Earlier entries »"
link, and a "Next page" ``<span>`` a script makes clickable; a search API paged by ``page`` in
a POSTed JSON body and a GraphQL query paged by ``offset``/``limit`` variables, of which the
page's script asks only the first page; an XML register paged by ``start`` with
``<totalResults>``, and an XML list linked by ``<link rel="next">``.
"""

from __future__ import annotations

import ipaddress
import json
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from amazoniax_dagster.core.messages import WebSourceConfig
from amazoniax_dagster.core.netpolicy import NetworkPolicy
from amazoniax_dagster.fetchers.base import FetchContext, FetchLimits
from fetcher_codegen.deterministic import generate_deterministic
from fetcher_codegen.prove import run

pytestmark = pytest.mark.integration

LOOPBACK = NetworkPolicy(allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),))
Reply = tuple[int, str, bytes]
Site = Callable[..., Reply]


def _json(body: Any, status: int = 200) -> Reply:
    return status, "application/json", json.dumps(body).encode()


KEY = "unseen-key-42"
SHIPMENTS = [{"id": f"SH{i}", "weight": i} for i in range(1, 12)]


def shipments(path: str, query: dict[str, str], headers: Mapping[str, str]) -> Reply:
    """A key in ``Authorization: Key <key>``, a scheme only the 401's challenge names."""
    if path != "/carrier/shipments":
        return _json({"error": "not found"}, 404)
    if headers.get("Authorization") != f"Key {KEY}":
        return 401, "application/json", b'{"error": "unauthorized"}'
    return _json({"shipments": SHIPMENTS})


def _html(body: str, status: int = 200) -> Reply:
    page = f"<!doctype html><html><head><title>t</title></head><body>{body}</body></html>"
    return status, "text/html; charset=utf-8", page.encode()


TICKETS = [{"id": f"TK-{i}", "subject": f"Ticket {i}", "state": "open"} for i in range(1, 24)]


def tickets(path: str, query: dict[str, str]) -> Reply:
    """``{"tickets": [...], "pagination": {"next_page": n | null}}``, 8 a page."""
    if path != "/helpdesk/tickets":
        return _json({"error": "not found"}, 404)
    page = int(query.get("page", "1"))
    chunk = TICKETS[(page - 1) * 8 : page * 8]
    more = page * 8 < len(TICKETS)
    return _json({"tickets": chunk, "pagination": {"next_page": page + 1 if more else None}})


EVENTS = [{"uuid": f"ev-{i:02d}", "kind": "login", "at": f"2026-01-{i:02d}"} for i in range(1, 30)]


def events(path: str, query: dict[str, str]) -> Reply:
    """``{"events": [...], "hasMore": bool}``, next page by ``since_id=<last uuid>``."""
    if path != "/audit/events":
        return _json({"error": "not found"}, 404)
    start = 0
    if "since_id" in query:
        start = [e["uuid"] for e in EVENTS].index(query["since_id"]) + 1
    chunk = EVENTS[start : start + 7]
    return _json({"events": chunk, "hasMore": start + 7 < len(EVENTS)})


STORES = [{"id": f"store-{i}", "city": f"City {i}"} for i in range(1, 17)]


def stores(path: str, query: dict[str, str]) -> Reply:
    """A store finder: a filter form; the list appears only after "Find"."""
    if path != "/stores":
        return _html("<p>nothing here</p>", 404)
    form = (
        '<form action="/stores"><input name="near" placeholder="City or postcode">'
        '<label><input type="checkbox" name="open_now"> open now</label>'
        '<input type="submit" value="Find"></form>'
    )
    if "near" not in query:
        return _html(f"<h1>Find a store</h1>{form}")
    items = "".join(
        f'<li class="store" data-id="{s["id"]}"><b>{s["city"]}</b> <i>open 9-5</i></li>'
        for s in STORES
    )
    return _html(f'<h1>Find a store</h1>{form}<ul class="results">{items}</ul>')


NOTES = [{"id": f"N{i:03d}", "title": f"Release note {i}"} for i in range(1, 20)]


def notes(path: str, query: dict[str, str]) -> Reply:
    """A blog: page 1 at ``/``, then ``/page/2``, ... with an "Older posts →" link."""
    match = re.fullmatch(r"/page/(\d+)", path)
    page = 1 if path == "/" else int(match.group(1)) if match else 0
    chunk = NOTES[(page - 1) * 6 : page * 6] if page else []
    if not chunk:
        return _html("<h1>Not found</h1>", 404)
    posts = "".join(
        f'<div class="note"><h3>{n["title"]}</h3><small data-note-id="{n["id"]}">#</small></div>'
        for n in chunk
    )
    older = f'<a href="/page/{page + 1}">Older posts →</a>' if page * 6 < len(NOTES) else ""
    return _html(f'<section class="notes">{posts}</section><footer>{older}</footer>')


PARTS = [{"id": f"P-{i}", "name": f"Part {i}"} for i in range(1, 21)]


def parts(path: str, query: dict[str, str]) -> Reply:
    """``/inventory/v1/parts`` is retired (410, the reply names ``/inventory/v3/parts``), which
    echoes ``page``/``per_page`` and a ``total``."""
    if path == "/inventory/v1/parts":
        return _json({"error": "retired; use /inventory/v3/parts?page=&per_page= instead"}, 410)
    if path != "/inventory/v3/parts":
        return _json({"error": "not found"}, 404)
    page, size = int(query.get("page") or 1), int(query.get("per_page") or 6)
    chunk = PARTS[(page - 1) * size : page * size]
    return _json({"parts": chunk, "page": page, "per_page": size, "total": len(PARTS)})


CODES = [f"ZX-{n}" for n in range(100, 3000, 137)]


def codes(path: str, query: dict[str, str]) -> Reply:
    """``{"codes": ["ZX-100", ...], "next": "/codes?page=2" | null}``: records are bare ids."""
    if path != "/codes":
        return _json({"error": "not found"}, 404)
    page = int(query.get("page") or 1)
    more = page * 8 < len(CODES)
    body = {"codes": CODES[(page - 1) * 8 : page * 8], "next": f"/codes?page={page + 1}"}
    return _json(body if more else {**body, "next": None})


ENTRIES = [{"id": f"E{i:02d}", "title": f"Log entry {i}"} for i in range(1, 17)]


def journal(path: str, query: dict[str, str]) -> Reply:
    """A journal, 5 entries a page, paged by an "Earlier entries »" link."""
    if path != "/journal":
        return _html("<p>nothing here</p>", 404)
    page = int(query.get("p") or 1)
    chunk = ENTRIES[(page - 1) * 5 : page * 5]
    items = "".join(
        f'<article class="entry" data-entry-id="{e["id"]}"><h3>{e["title"]}</h3></article>'
        for e in chunk
    )
    earlier = f'<a href="/journal?p={page + 1}">Earlier entries »</a>'
    return _html(f"<main>{items}</main><nav>{earlier if page * 5 < len(ENTRIES) else ''}</nav>")


POSTS = [{"id": f"B{i:02d}", "title": f"Board post {i}"} for i in range(1, 14)]
_GO = "<script>document.querySelectorAll('[data-url]').forEach((e) => e.addEventListener("
_GO += "'click', () => { location.href = e.dataset.url; }));</script>"


def board(path: str, query: dict[str, str]) -> Reply:
    """A board, 4 posts a page; "Next page" is a ``<span data-url>`` a script makes a link."""
    if path != "/board":
        return _html("<p>nothing here</p>", 404)
    page = int(query.get("page") or 1)
    items = "".join(
        f'<li class="post" data-post-id="{p["id"]}">{p["title"]}</li>'
        for p in POSTS[(page - 1) * 4 : page * 4]
    )
    more = f'<span class="go" data-url="/board?page={page + 1}">Next page</span>'
    return _html(f"<ul>{items}</ul>{more if page * 4 < len(POSTS) else ''}{_GO}")


TOOLS = [{"sku": f"TL-{i:03d}", "name": f"Tool {i}"} for i in range(1, 21)]
_RENDER = (
    "<ul id='out'></ul><script>fetch(%r, {method: 'POST', headers: {'Content-Type': "
    "'application/json'}, body: JSON.stringify(%s)}).then((r) => r.json()).then((d) => {"
    "for (const x of %s) { const li = document.createElement('li'); li.textContent = x.%s;"
    " document.getElementById('out').appendChild(li); } });</script>"
)


def _strict_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def tool_search(path: str, query: dict[str, str], body: Any) -> Reply:
    """A catalogue page whose script POSTs ``{"filter": {...}, "page": 1, "size": 8}`` to a
    search API (``{"results": [...], "total": 20}``); no next control: only page 1 is seen."""
    if path == "/catalog" and body is None:
        sent = '{filter: {category: "tools", inStock: true}, page: 1, size: 8}'
        return _html("<h1>Tools</h1>" + _RENDER % ("/api/search", sent, "d.results", "name"))
    if path != "/api/search" or not isinstance(body, dict):
        return _json({"error": "POST a JSON search to /api/search"}, 404)
    page, size = _strict_int(body.get("page")), _strict_int(body.get("size"))
    if page is None or size is None or body.get("filter", {}).get("category") != "tools":
        return _json({"error": "page and size must be numbers, filter.category is required"}, 400)
    return _json({"results": TOOLS[(page - 1) * size : page * size], "total": len(TOOLS)})


MEMBERS = [{"handle": f"@member{i}", "joined": f"2025-{i % 12 + 1:02d}-01"} for i in range(27)]
MEMBERS_QUERY = (
    "query Members($offset: Int!, $limit: Int!) "
    "{ members(offset: $offset, limit: $limit) { totalCount items { handle joined } } }"
)


def member_directory(path: str, query: dict[str, str], body: Any) -> Reply:
    """A directory page whose script asks a GraphQL endpoint for members by ``offset`` and
    ``limit`` variables (not a relay cursor), 10 a page; only the first page is shown."""
    if path == "/directory" and body is None:
        sent = json.dumps({"query": MEMBERS_QUERY, "variables": {"offset": 0, "limit": 10}})
        items = "d.data.members.items"
        return _html("<h1>Members</h1>" + _RENDER % ("/graphql", sent, items, "handle"))
    if path != "/graphql" or not isinstance(body, dict) or "members" not in body.get("query", ""):
        return _json({"errors": [{"message": "unknown query"}]}, 400)
    variables = body.get("variables") or {}
    offset, limit = _strict_int(variables.get("offset")), _strict_int(variables.get("limit"))
    if offset is None or limit is None:
        return _json({"errors": [{"message": "$offset and $limit must be Int"}]}, 400)
    chunk = MEMBERS[offset : offset + limit]
    return _json({"data": {"members": {"totalCount": len(MEMBERS), "items": chunk}}})


BODY_SITES = (tool_search, member_directory)

PERMITS = [{"ref": f"PR-{i:04d}", "holder": f"Holder {i}"} for i in range(1, 24)]


def permits(path: str, query: dict[str, str]) -> Reply:
    """An XML register, 10 permits a page by ``start``, with ``<totalResults>`` and an echoed
    ``<start>`` (no next token, no link): only the first page is what the URL shows."""
    if path != "/register/permits.xml":
        return 404, "application/xml", b"<error>not found</error>"
    start = int(query.get("start") or 0)
    rows = "".join(
        f'<permit status="active"><ref>{p["ref"]}</ref><holder>{p["holder"]}</holder></permit>'
        for p in PERMITS[start : start + 10]
    )
    head = f"<totalResults>{len(PERMITS)}</totalResults><start>{start}</start>"
    body = f'<?xml version="1.0" encoding="UTF-8"?><register>{head}{rows}</register>'
    return 200, "application/xml", body.encode()


STATIONS = [{"station": f"ST{i:03d}", "river": f"River {i % 4}"} for i in range(1, 18)]


def stations(path: str, query: dict[str, str]) -> Reply:
    """Gauging stations, 6 a page, linked ``<link rel="next">`` at the root beside ``self`` and
    ``prev`` (each station has its own ``<link rel="self">``); opaque page keys."""
    if path != "/hydrology/stations":
        return 404, "application/xml", b"<error>not found</error>"
    keys = [f"k{n * 7919:x}" for n in range(3)]
    page = keys.index(query["page"]) if query.get("page") in keys else 0
    links = [("self", page)] + [("prev", page - 1)] * (page > 0) + [("next", page + 1)] * (page < 2)
    head = "".join(
        f'<link rel="{rel}" href="/hydrology/stations?page={keys[n]}"/>' for rel, n in links
    )
    rows = "".join(
        f"<item><station>{s['station']}</station><river>{s['river']}</river>"
        f'<link rel="self" href="/hydrology/stations/{s["station"]}"/></item>'
        for s in STATIONS[page * 6 : page * 6 + 6]
    )
    return 200, "application/xml", f"<stations>{head}<items>{rows}</items></stations>".encode()


@contextmanager
def serve(site: Site) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
            if site is shipments:
                self._reply(*site(parts.path, query, self.headers))
            elif site in BODY_SITES:
                self._reply(*site(parts.path, query, None))
            else:
                self._reply(*site(parts.path, query))

        def do_POST(self) -> None:
            parts = urlsplit(self.path)
            sent = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body: Any = None
            if "json" in (self.headers.get("Content-Type") or ""):
                try:
                    body = json.loads(sent)
                except ValueError:
                    body = None
            if site not in BODY_SITES or body is None:
                self._reply(*_json({"error": "send JSON"}, 415))
            else:
                self._reply(*site(parts.path, {}, body))

        def _reply(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            if status == 401:
                self.send_header("WWW-Authenticate", 'Key realm="carrier"')
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def fetched_ids(out: Path, key: str) -> set[str]:
    """Values of ``key`` in every JSON file (elements named so in XML files), or of
    ``data-…id`` attributes in HTML files."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                if k == key and isinstance(v, str):
                    found.add(v)
                walk(v)
        elif isinstance(value, list):
            if key == "[]":  # records that are bare strings
                found.update(v for v in value if isinstance(v, str))
            for v in value:
                walk(v)

    for file in out.rglob("*"):
        if file.suffix == ".json":
            walk(json.loads(file.read_text()))
        elif file.suffix == ".xml":
            found |= set(re.findall(rf"<{key}>([^<]+)</{key}>", file.read_text()))
        elif file.suffix == ".html":
            found |= set(re.findall(r'data-[\w-]*id="([^"]+)"', file.read_text()))
    return found


@pytest.mark.parametrize(
    ("site", "path", "truth", "key"),
    [
        (tickets, "/helpdesk/tickets", TICKETS, "id"),
        (events, "/audit/events", EVENTS, "uuid"),
        (stores, "/stores", STORES, "id"),
        (notes, "/", NOTES, "id"),
        (shipments, "/carrier/shipments", SHIPMENTS, "id"),
        (parts, "/inventory/v1/parts", PARTS, "id"),
        (codes, "/codes", [{"[]": c} for c in CODES], "[]"),
        (journal, "/journal", ENTRIES, "id"),
        (board, "/board", POSTS, "id"),
        (tool_search, "/catalog", TOOLS, "sku"),
        (member_directory, "/directory", MEMBERS, "handle"),
        (permits, "/register/permits.xml", PERMITS, "ref"),
        (stations, "/hydrology/stations", STATIONS, "station"),
    ],
    ids=[
        "next-page-number",
        "has-more-keyset",
        "filter-form",
        "blog-first-page-at-root",
        "auth-scheme-from-the-challenge",
        "retired-url-names-its-successor",
        "bare-id-strings",
        "earlier-entries-link",
        "script-made-next-control",
        "post-search-paged-in-the-body",
        "graphql-offset-variables",
        "xml-offset-with-total-results",
        "xml-link-rel-next",
    ],
)
def test_every_record_of_a_new_shape_is_fetched(
    tmp_path: Path, site: Site, path: str, truth: list[dict[str, str]], key: str
) -> None:
    with serve(site) as origin:
        keys = {"auth_keys": {"carrier_key": KEY}} if site is shipments else {}
        config = WebSourceConfig.model_validate(
            {"url": origin + path, "channel_name": f"unseen {site.__name__}", **keys}
        )
        candidate = generate_deterministic(config, tmp_path / "capture", policy=LOOPBACK)
        assert candidate.proof.ok, candidate.proof
        out = tmp_path / "out"
        out.mkdir()
        ctx = FetchContext(config, out, LOOPBACK, limits=FetchLimits(max_pages=50))
        run(candidate.recipe_text, ctx)
    assert fetched_ids(out, key) == {record[key] for record in truth}, candidate.recipe_text
