"""Generation on site shapes no demo site has: every record fetched, with the proof passed.

Each site is a few lines of the standard library's HTTP server, written for this test only (the
rules were fixed on other shapes: a separate holdout of five sites). Covered: a page number the
body names under ``pagination``, ``hasMore`` with keyset paging by the last id, a filter form
that shows results only once submitted, and a blog whose first page is ``/`` while the next
ones are ``/page/N``, and a key presented in the scheme only the 401's challenge names.
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


@contextmanager
def serve(site: Site) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
            if site is shipments:
                status, content_type, body = site(parts.path, query, self.headers)
            else:
                status, content_type, body = site(parts.path, query)
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
    """Values of ``key`` in every JSON file, or of ``data-…id`` attributes in HTML files."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                if k == key and isinstance(v, str):
                    found.add(v)
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    for file in out.rglob("*"):
        if file.suffix == ".json":
            walk(json.loads(file.read_text()))
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
    ],
    ids=[
        "next-page-number",
        "has-more-keyset",
        "filter-form",
        "blog-first-page-at-root",
        "auth-scheme-from-the-challenge",
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
