"""Holdout sites for ``bench.holdout``: shapes written after the generator's rules, outside the
demo catalogue, to see how it does on sites it was not built against.

Each site is a method of one standard-library HTTP handler (no Starlette, no demo-site code);
``SITES`` names its channel path, its ground truth, the key that identifies a record in the
fetched files and any channel config (credentials) a customer would send.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

ITEMS = [{"id": f"it-{i:03d}", "name": f"Widget {i}", "price": i * 1.5} for i in range(1, 35)]
POSTS = [
    {"id": f"P-{i:03d}", "title": f"Post number {i}", "slug": f"post-{i}"} for i in range(1, 29)
]
ORDERS = [{"id": f"ord{i:04d}", "customer": f"C{i % 7}", "total": i * 3} for i in range(1, 42)]
REPORTS = [
    {"id": f"R{i:02d}", "region": ["north", "south"][i % 2], "title": f"Report {i}"}
    for i in range(1, 21)
]
CHARGES = [{"id": f"ch_{i:05d}", "object": "charge", "amount": i * 100} for i in range(1, 38)]
PRODUCTS = [{"id": f"SKU{i:04d}", "name": f"Shoe {i}"} for i in range(1, 19)]
JOBS = [{"id": f"job-{i}", "title": f"Engineer {i}", "city": "Berlin"} for i in range(1, 23)]
DOCS = [{"id": f"doc{i}", "title": f"Annual report {2000 + i}"} for i in range(1, 9)]
ACCOUNTS = [{"id": f"acc-{i}", "name": f"Account {i}"} for i in range(1, 13)]
INVOICES = [{"id": f"INV-{i:04d}", "amount": i * 10} for i in range(1, 15)]
VEHICLES = [{"id": f"VIN{i:05d}", "make": "Ford"} for i in range(1, 48)]
TRADES = [{"id": f"T-{i:04d}", "side": ["buy", "sell"][i % 2], "qty": i} for i in range(1, 31)]
BOOKS = [{"id": f"978-{i:07d}", "title": f"Volume {i}"} for i in range(1, 35)]
KEY = "k3y-holdout-123"
USER, PASSWORD = "ana@example.test", "pw-123"
HTML = "text/html; charset=utf-8"


@dataclass(frozen=True)
class HoldoutSite:
    path: str
    truth: list[dict[str, Any]]
    id_key: str = "id"
    config: dict[str, Any] = field(default_factory=dict)
    what: str = ""


SITES: dict[str, HoldoutSite] = {
    "next_page_api": HoldoutSite("/api/items", ITEMS, what='{"results", "next_page": n}'),
    "wp_blog": HoldoutSite("/", POSTS, what='page 1 at /, then /page/N/ with "Next »"'),
    "meta_pages_api": HoldoutSite("/v2/orders", ORDERS, what="data.items, meta.pagination"),
    "search_form": HoldoutSite("/reports", REPORTS, what="results only after a GET form"),
    "stripe_list": HoldoutSite("/v1/charges", CHARGES, what="has_more + starting_after"),
    "spa_state": HoldoutSite("/shop", PRODUCTS, what="window.__INITIAL_STATE__ = {...}"),
    "post_more": HoldoutSite("/jobs", JOBS, what='"Load more" POSTing {"page": n}'),
    "detail_pages": HoldoutSite("/publications", DOCS, what="list -> detail page -> CSV"),
    "token_scheme": HoldoutSite(
        "/api/accounts/",
        ACCOUNTS,
        config={"auth_keys": {"api_key": KEY}},
        what="Authorization: Token (WWW-Authenticate)",
    ),  # fmt: skip
    "custom_header": HoldoutSite(
        "/v3/accounts",
        ACCOUNTS,
        config={"auth_keys": {"api_key": KEY}},
        what="a header named in the 401 message",
    ),  # fmt: skip
    "rails_login": HoldoutSite(
        "/dashboard/invoices",
        INVOICES,
        config={"login_credentials": {"username": USER, "password": PASSWORD}},
        what="login form user[email] + authenticity_token",
    ),  # fmt: skip
    "offset_total": HoldoutSite("/fleet/vehicles", VEHICLES, what="offset/limit, total only"),
    "xml_token": HoldoutSite("/svc/vehicles.xml", VEHICLES, what="XML paged by nextPageToken"),
    "post_cursor": HoldoutSite(
        "/trades", TRADES, what='POSTed {"cursor": null}, meta.nextCursor, page 1 shown'
    ),
    "graphql_page_default": HoldoutSite(
        "/books", BOOKS, what="GraphQL $page: Int = 1 (no variables sent), pageInfo.lastPage"
    ),
}


def page(body: str) -> bytes:
    return (
        f"<!doctype html><html><head><title>Site</title></head><body>{body}</body></html>".encode()
    )


class Handler(BaseHTTPRequestHandler):
    site = ""
    sessions: set[str] = set()

    def log_message(self, *args: Any) -> None:
        pass

    def send(
        self, body: bytes, ctype: str, status: int = 200, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def send_json(
        self, data: Any, status: int = 200, headers: dict[str, str] | None = None
    ) -> None:
        self.send(json.dumps(data).encode(), "application/json", status, headers)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        getattr(self, "site_" + self.site)(parts.path, query)

    def do_POST(self) -> None:
        size = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(size)
        path = urlsplit(self.path).path
        if self.site == "post_more" and path == "/api/jobs/search":
            number = int(json.loads(raw or b"{}").get("page", 1))
            chunk = JOBS[(number - 1) * 5 : number * 5]
            return self.send_json({"jobs": chunk, "more": number * 5 < len(JOBS)})
        if self.site in ("post_cursor", "graphql_page_default"):
            try:
                sent = json.loads(raw)
            except ValueError:
                return self.send_json({"error": "send JSON"}, 415)
            return getattr(self, f"api_{self.site}")(path, sent)
        if self.site == "rails_login" and path == "/users/sign_in":
            form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
            if (form.get("user[email]"), form.get("user[password]")) != (USER, PASSWORD) or (
                form.get("authenticity_token") != self.cookies().get("csrf")
            ):
                return self.send(page("<p>Invalid Email or password.</p>"), HTML, 422)
            session = secrets.token_hex(8)
            self.sessions.add(session)
            cookie = f"session={session}; Path=/; HttpOnly"
            return self.send(
                b"", HTML, 302, {"Location": "/dashboard/invoices", "Set-Cookie": cookie}
            )
        self.send_json({}, 404)

    def cookies(self) -> dict[str, str]:
        pairs = (p.strip().split("=", 1) for p in self.headers.get("Cookie", "").split(";"))
        return {pair[0]: pair[1] for pair in pairs if len(pair) == 2}

    def site_next_page_api(self, path: str, q: dict[str, str]) -> None:
        if path != "/api/items":
            return self.send_json({}, 404)
        n = int(q.get("page", "1"))
        nxt = n + 1 if n * 10 < len(ITEMS) else None
        self.send_json({"results": ITEMS[(n - 1) * 10 : n * 10], "next_page": nxt})

    def site_wp_blog(self, path: str, q: dict[str, str]) -> None:
        tail = path.rstrip("/").split("/")[-1]
        n = 1 if path == "/" else int(tail) if path.startswith("/page/") and tail.isdigit() else 0
        chunk = POSTS[(n - 1) * 10 : n * 10] if n else []
        if not chunk:
            return self.send(page("<h1>Not found</h1>"), HTML, 404)
        posts = "".join(
            f'<article class="post"><h2 class="entry-title"><a href="/{p["slug"]}/">{p["title"]}'
            f'</a></h2><p class="ref">Ref <span class="ref-id">{p["id"]}</span></p></article>'
            for p in chunk
        )
        nav = f'<a class="prev page-numbers" href="/page/{n - 1}/">« Previous</a> ' if n > 1 else ""
        if n * 10 < len(POSTS):
            nav += f'<a class="next page-numbers" href="/page/{n + 1}/">Next »</a>'
        self.send(page(f'<main>{posts}</main><nav class="pagination">{nav}</nav>'), HTML)

    def site_meta_pages_api(self, path: str, q: dict[str, str]) -> None:
        if path != "/v2/orders":
            return self.send_json({"error": "not found"}, 404)
        n, size = int(q.get("page", "1")), int(q.get("size", "15"))
        meta = {"page": n, "per_page": size, "total_pages": -(-len(ORDERS) // size)}
        items = ORDERS[(n - 1) * size : n * size]
        self.send_json({"data": {"items": items}, "meta": {"pagination": meta}})

    def site_search_form(self, path: str, q: dict[str, str]) -> None:
        if path != "/reports":
            return self.send(page("nf"), HTML, 404)
        form = (
            '<form action="/reports" method="get"><select name="region">'
            '<option value="all">All regions</option><option value="north">North</option>'
            '</select><input type="hidden" name="submitted" value="1">'
            '<button type="submit">Search</button></form>'
        )
        if "submitted" not in q:
            return self.send(page(f"<h1>Reports</h1>{form}<p>Choose a region.</p>"), HTML)
        rows = "".join(
            f"<tr><td>{r['id']}</td><td>{r['title']}</td><td>{r['region']}</td></tr>"
            for r in REPORTS
            if q.get("region", "all") in ("all", r["region"])
        )
        self.send(page(f"<h1>Reports</h1>{form}<table><tbody>{rows}</tbody></table>"), HTML)

    def site_stripe_list(self, path: str, q: dict[str, str]) -> None:
        if path != "/v1/charges":
            return self.send_json({"error": {"message": "not found"}}, 404)
        limit, start = int(q.get("limit", "10")), 0
        if "starting_after" in q:
            start = [c["id"] for c in CHARGES].index(q["starting_after"]) + 1
        chunk = CHARGES[start : start + limit]
        more = start + limit < len(CHARGES)
        self.send_json({"object": "list", "data": chunk, "has_more": more})

    def site_spa_state(self, path: str, q: dict[str, str]) -> None:
        if path != "/shop":
            return self.send(page("nf"), HTML, 404)
        state = json.dumps({"catalog": {"products": PRODUCTS, "total": len(PRODUCTS)}})
        script = (
            'const s = window.__INITIAL_STATE__; document.getElementById("app").innerHTML = '
            's.catalog.products.slice(0, 6).map(p => `<div class="p">${p.name}</div>`).join("");'
        )
        body = f'<div id="app"></div><script>window.__INITIAL_STATE__ = {state};</script>'
        self.send(page(f"{body}<script>{script}</script>"), HTML)

    def site_post_more(self, path: str, q: dict[str, str]) -> None:
        if path != "/jobs":
            return self.send_json({}, 404)
        script = (
            "let page = 0; async function more() { page += 1;"
            ' const r = await fetch("/api/jobs/search", {method: "POST",'
            ' headers: {"Content-Type": "application/json"},'
            ' body: JSON.stringify({page: page, query: ""})}); const d = await r.json();'
            ' for (const j of d.jobs) { const el = document.createElement("div");'
            ' el.className = "job"; el.dataset.id = j.id; el.textContent = j.title;'
            ' document.getElementById("list").appendChild(el); }'
            ' if (!d.more) document.getElementById("more").remove(); }'
            ' document.getElementById("more").onclick = more; more();'
        )
        body = '<div id="list"></div><button id="more">Load more jobs</button>'
        self.send(page(f"{body}<script>{script}</script>"), HTML)

    def site_detail_pages(self, path: str, q: dict[str, str]) -> None:
        if path == "/publications":
            links = "".join(
                f'<li><a href="/publications/{d["id"]}">{d["title"]}</a></li>' for d in DOCS
            )
            return self.send(page(f"<h1>Publications</h1><ul>{links}</ul>"), HTML)
        for d in DOCS:
            if path == f"/publications/{d['id']}":
                link = f'<a href="/files/{d["id"]}.csv">Data</a>'
                return self.send(page(f"<h1>{d['title']}</h1><p>Summary.</p>{link}"), HTML)
            if path == f"/files/{d['id']}.csv":
                return self.send(f"id,value\n{d['id']},1\n".encode(), "text/csv")
        self.send(page("nf"), HTML, 404)

    def accounts(self, authorized: bool, challenge: dict[str, Any]) -> None:
        if authorized:
            return self.send_json({"count": len(ACCOUNTS), "results": ACCOUNTS})
        detail = {"detail": "Authentication credentials were not provided."}
        self.send_json(challenge.get("body", detail), 401, challenge.get("headers"))

    def site_token_scheme(self, path: str, q: dict[str, str]) -> None:
        if path != "/api/accounts/":
            return self.send_json({}, 404)
        authorized = self.headers.get("Authorization") == f"Token {KEY}"
        self.accounts(authorized, {"headers": {"WWW-Authenticate": 'Token realm="api"'}})

    def site_custom_header(self, path: str, q: dict[str, str]) -> None:
        if path != "/v3/accounts":
            return self.send_json({}, 404)
        authorized = self.headers.get("X-Api-Token") == KEY
        self.accounts(authorized, {"body": {"error": "missing or invalid X-Api-Token header"}})

    def site_rails_login(self, path: str, q: dict[str, str]) -> None:
        if path == "/users/sign_in":
            token = "csrf-" + secrets.token_hex(4)
            form = (
                '<form action="/users/sign_in" method="post" class="new_user">'
                f'<input type="hidden" name="authenticity_token" value="{token}">'
                '<label for="user_email">Email</label>'
                '<input type="email" name="user[email]" id="user_email">'
                '<label for="user_password">Password</label>'
                '<input type="password" name="user[password]" id="user_password">'
                '<input type="submit" name="commit" value="Log in"></form>'
            )
            cookie = {"Set-Cookie": f"csrf={token}; Path=/"}
            return self.send(page(f"<h1>Log in</h1>{form}"), HTML, 200, cookie)
        if path == "/dashboard/invoices":
            if self.cookies().get("session") not in self.sessions:
                return self.send(b"", HTML, 302, {"Location": "/users/sign_in"})
            rows = "".join(f"<tr><td>{i['id']}</td><td>{i['amount']}</td></tr>" for i in INVOICES)
            table = f"<table class='invoices'><tr><th>No</th><th>Amount</th></tr>{rows}</table>"
            return self.send(page(table), HTML)
        self.send(page("nf"), HTML, 404)

    def site_offset_total(self, path: str, q: dict[str, str]) -> None:
        if path != "/fleet/vehicles":
            return self.send_json({}, 404)
        offset, limit = int(q.get("offset", "0")), int(q.get("limit", "20"))
        self.send_json({"items": VEHICLES[offset : offset + limit], "total": len(VEHICLES)})

    def site_xml_token(self, path: str, q: dict[str, str]) -> None:
        if path != "/svc/vehicles.xml":
            return self.send(b"<error/>", "application/xml", 404)
        start = int(q.get("pageToken", "0") or 0)
        items = "".join(
            f"<vehicle><id>{v['id']}</id><make>{v['make']}</make></vehicle>"
            for v in VEHICLES[start : start + 15]
        )
        more = start + 15 < len(VEHICLES)
        token = f"<nextPageToken>{start + 15}</nextPageToken>" if more else ""
        body = f'<?xml version="1.0"?><response><vehicles>{items}</vehicles>{token}</response>'
        self.send(body.encode(), "application/xml")

    def site_post_cursor(self, path: str, q: dict[str, str]) -> None:
        if path != "/trades":
            return self.send_json({}, 404)
        script = (
            'fetch("/api/trades/query", {method: "POST", headers: {"Content-Type":'
            ' "application/json"}, body: JSON.stringify({where: {desk: "rates"}, cursor: null,'
            " limit: 12})}).then((r) => r.json()).then((d) => { for (const t of d.data) {"
            ' const row = document.createElement("tr"); row.textContent = t.id + " " + t.side;'
            ' document.getElementById("rows").appendChild(row); } });'
        )
        self.send(page(f'<h1>Trades</h1><table id="rows"></table><script>{script}</script>'), HTML)

    def api_post_cursor(self, path: str, sent: Any) -> None:
        """Opaque cursors; a cursor that is not one this API gave is refused."""
        if path != "/api/trades/query" or not isinstance(sent, dict):
            return self.send_json({"error": "not found"}, 404)
        cursor, limit = sent.get("cursor"), sent.get("limit")
        start = 0 if cursor is None else _decoded(cursor)
        if start is None or not isinstance(limit, int) or sent.get("where") != {"desk": "rates"}:
            return self.send_json({"error": "bad cursor, limit or filter"}, 400)
        end = start + limit
        following = _encoded(end) if end < len(TRADES) else None
        self.send_json({"data": TRADES[start:end], "meta": {"nextCursor": following}})

    def site_graphql_page_default(self, path: str, q: dict[str, str]) -> None:
        if path != "/books":
            return self.send_json({}, 404)
        query = (
            "query Books($page: Int = 1, $perPage: Int = 10) { books(page: $page, perPage:"
            " $perPage) { nodes { id title } pageInfo { currentPage lastPage } } }"
        )
        script = (
            'fetch("/graphql", {method: "POST", headers: {"Content-Type": "application/json"},'
            f" body: JSON.stringify({{query: {json.dumps(query)}, variables: {{}}}})}})"
            ".then((r) => r.json()).then((d) => { for (const b of d.data.books.nodes) {"
            ' const li = document.createElement("li"); li.textContent = b.title;'
            ' document.getElementById("books").appendChild(li); } });'
        )
        self.send(page(f'<h1>Books</h1><ul id="books"></ul><script>{script}</script>'), HTML)

    def api_graphql_page_default(self, path: str, sent: Any) -> None:
        """Variables default to the query's (page 1, 10 a page); pages beyond the last are empty."""
        if path != "/graphql" or not isinstance(sent, dict) or "books" not in sent.get("query", ""):
            return self.send_json({"errors": [{"message": "unknown query"}]}, 400)
        variables = sent.get("variables") or {}
        number, size = variables.get("page", 1), variables.get("perPage", 10)
        if not isinstance(number, int) or not isinstance(size, int):
            return self.send_json({"errors": [{"message": "$page and $perPage are Int"}]}, 400)
        nodes = BOOKS[(number - 1) * size : number * size]
        info = {"currentPage": number, "lastPage": -(-len(BOOKS) // size)}
        self.send_json({"data": {"books": {"nodes": nodes, "pageInfo": info}}})


def _encoded(offset: int) -> str:
    return base64.urlsafe_b64encode(f"trade:{offset}".encode()).decode()


def _decoded(cursor: Any) -> int | None:
    try:
        kind, _, offset = base64.urlsafe_b64decode(str(cursor)).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return int(offset) if kind == "trade" and offset.isdigit() else None


def serve(name: str) -> tuple[ThreadingHTTPServer, str]:
    """Serve holdout site ``name`` on 127.0.0.1 (a free port) in a thread."""
    handler = type(f"Handler_{name}", (Handler,), {"site": name, "sessions": set()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"
