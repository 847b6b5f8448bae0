"""Small real web sites for the recipe engine tests: one Starlette app on 127.0.0.1.

Each route plays one kind of site (a bearer API with cursors, a login form with CSRF and a
session cookie, paginated lists, a feed, a flaky or broken endpoint). ``SiteState`` counts
the requests per path so tests can assert how often the engine asked.
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

BEARER_TOKEN = "tok-SECRET-bearer-7f3a9c"
API_KEY = "key-SECRET-apikey-51be20"
USERNAME = "alice"
PASSWORD = "pw-SECRET-login-99d1e8"
CLIENT_SECRET = "cs-SECRET-client-4410aa"
ITEMS = [{"id": n, "name": f"item {n}"} for n in range(1, 6)]


@dataclass
class SiteState:
    hits: Counter[str] = field(default_factory=Counter)
    queries: list[dict[str, str]] = field(default_factory=list)  # each request's query
    sessions: set[str] = field(default_factory=set)
    issued_tokens: list[str] = field(default_factory=list)
    csrf: str = field(default_factory=lambda: secrets.token_hex(8))

    def reset(self) -> None:
        self.hits.clear()
        self.queries.clear()
        self.sessions.clear()
        self.issued_tokens.clear()


async def form_of(request: Request) -> dict[str, str]:
    """A urlencoded form body (Starlette's own parser needs python-multipart)."""
    return dict(parse_qsl((await request.body()).decode()))


def make_app(state: SiteState) -> Starlette:
    def count(request: Request) -> None:
        state.hits[request.url.path] += 1
        state.queries.append(dict(request.query_params))

    async def bearer_items(request: Request) -> Response:
        count(request)
        if request.headers.get("authorization") != f"Bearer {BEARER_TOKEN}":
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        pages = {"": (ITEMS[0:2], "c2"), "c2": (ITEMS[2:4], "c3"), "c3": (ITEMS[4:], None)}
        records, following = pages[request.query_params.get("cursor", "")]
        return JSONResponse({"data": {"items": records}, "next": following})

    async def keyed(request: Request) -> Response:
        count(request)
        # "k": a parameter name that does not look secret, so only value redaction hides it.
        if request.query_params.get("k") != API_KEY:
            return JSONResponse({"error": "bad key"}, status_code=401)
        return JSONResponse({"items": ITEMS[:1]})

    def login_page(message: str = "") -> HTMLResponse:
        return HTMLResponse(
            f"""<html><body><p>{message}</p>
            <form method="post" action="/login">
              <input type="hidden" name="csrf_token" value="{state.csrf}">
              <input name="username"><input type="password" name="password">
              <input type="submit" value="Sign in">
            </form></body></html>"""
        )

    async def login(request: Request) -> Response:
        count(request)
        if request.method == "GET":
            return login_page()
        form = await form_of(request)
        ok = (
            form.get("csrf_token") == state.csrf
            and form.get("username") == USERNAME
            and form.get("password") == PASSWORD
        )
        if not ok:
            return login_page("Invalid credentials")
        session = secrets.token_hex(8)
        state.sessions.add(session)
        response = RedirectResponse("/reports", status_code=303)
        response.set_cookie("session", session, httponly=True)
        return response

    def logged_in(request: Request) -> bool:
        return request.cookies.get("session") in state.sessions

    async def reports(request: Request) -> Response:
        count(request)
        if not logged_in(request):
            return RedirectResponse("/login", status_code=302)
        return HTMLResponse(
            """<html><body><a href="/about">About</a>
            <a href="/files/2026-01.csv">January</a>
            <a href="files/2026-02.csv?download=1">February</a>
            <a href="/files/evil.csv">Odd name</a>
            <a href="/files/twin-a.csv">Twin A</a> <a href="/files/twin-b.csv">Twin B</a>
            <a href="mailto:someone@example.com">mail.csv</a>
            </body></html>"""
        )

    async def files(request: Request) -> Response:
        count(request)
        if not logged_in(request):
            return Response("login first", status_code=403)
        name = request.path_params["name"]
        dispositions = {
            "2026-01.csv": 'attachment; filename="report-2026-01.csv"',
            "evil.csv": 'attachment; filename="../../evil.csv"',
            "twin-a.csv": 'attachment; filename="twin.csv"',
            "twin-b.csv": 'attachment; filename="twin.csv"',
        }
        headers = {"content-disposition": dispositions[name]} if name in dispositions else {}
        return Response(f"id,name\n1,{name}\n", media_type="text/csv", headers=headers)

    async def pages(request: Request) -> Response:
        count(request)
        page = int(request.query_params.get("page", "1"))
        return JSONResponse({"items": ITEMS[(page - 1) * 2 : page * 2]})

    async def newest(request: Request) -> Response:
        count(request)
        page = int(request.query_params.get("page", "1"))
        return JSONResponse({"items": ITEMS[::-1][(page - 1) * 2 : page * 2]})

    async def offsets(request: Request) -> Response:
        count(request)
        offset = int(request.query_params["offset"])
        limit = int(request.query_params["limit"])
        return JSONResponse({"items": ITEMS[offset : offset + limit], "total": len(ITEMS)})

    async def linked(request: Request) -> Response:
        count(request)
        page = int(request.query_params.get("page", "1"))
        headers = {"link": f'</linked?page={page + 1}>; rel="next"'} if page < 3 else {}
        return JSONResponse({"items": ITEMS[(page - 1) * 2 : page * 2]}, headers=headers)

    async def next_url(request: Request) -> Response:
        count(request)
        page = int(request.query_params.get("page", "1"))
        following = f"/next-url?page={page + 1}" if page < 3 else None
        return JSONResponse({"results": ITEMS[(page - 1) * 2 : page * 2], "next": following})

    async def feed(request: Request) -> Response:
        count(request)
        return Response(RSS, media_type="application/rss+xml")

    async def paged_atom(request: Request) -> Response:
        count(request)
        page = int(request.query_params.get("page", "1"))
        entries = "".join(
            f"<entry><id>urn:e{n}</id><title>Entry {n}</title><updated>2026-01-{20 - n:02d}"
            f"T00:00:00Z</updated><link href='/news/{n}'/></entry>"
            for n in range((page - 1) * 2 + 1, page * 2 + 1)
        )
        following = f"<link rel='next' href='/paged.atom?page={page + 1}'/>" if page < 3 else ""
        body = (
            "<?xml version='1.0' encoding='utf-8'?><feed xmlns='http://www.w3.org/2005/Atom'>"
            f"<id>urn:paged</id><title>Paged</title><updated>2026-01-01T00:00:00Z</updated>"
            f"{following}{entries}</feed>"
        )
        return Response(body, media_type="application/atom+xml")

    async def enclosure(request: Request) -> Response:
        count(request)
        return Response(b"%PDF-1.4 fake", media_type="application/pdf")

    async def flaky(request: Request) -> Response:
        count(request)
        if state.hits[request.url.path] <= 2:
            return Response("busy", status_code=503, headers={"retry-after": "0"})
        return JSONResponse({"items": ITEMS})

    async def always_503(request: Request) -> Response:
        count(request)
        return Response("down", status_code=503, headers={"retry-after": "0"})

    async def slow_down(request: Request) -> Response:
        count(request)
        return Response("later", status_code=429, headers={"retry-after": "3600"})

    async def unauthorized(request: Request) -> Response:
        count(request)
        return JSONResponse({"error": "no"}, status_code=401)

    async def gone(request: Request) -> Response:
        count(request)
        return Response("not found", status_code=404)

    async def renamed(request: Request) -> Response:
        count(request)
        return JSONResponse({"results": ITEMS})

    async def to_metadata(request: Request) -> Response:
        count(request)
        return RedirectResponse("http://169.254.169.254/latest/meta-data/", status_code=302)

    async def stuck(request: Request) -> Response:
        count(request)
        # Always the same "next" cursor, but never the same body.
        return JSONResponse({"items": [state.hits[request.url.path]], "next": "same-cursor"})

    async def token(request: Request) -> Response:
        count(request)
        form = await form_of(request)
        if form.get("client_secret") != CLIENT_SECRET:
            return JSONResponse({"error": "invalid_client"}, status_code=400)
        issued = f"tok-SECRET-issued-{len(state.issued_tokens) + 1}-{secrets.token_hex(4)}"
        state.issued_tokens.append(issued)
        return JSONResponse({"access_token": issued, "token_type": "bearer"})

    async def token_api(request: Request) -> Response:
        count(request)
        # The first token has "expired" by the time it is used; later ones are fine.
        valid = state.issued_tokens[1:]
        if request.headers.get("authorization") not in {f"Bearer {t}" for t in valid}:
            return JSONResponse({"error": "expired"}, status_code=401)
        return JSONResponse({"items": ITEMS[:2]})

    async def graphql(request: Request) -> Response:
        count(request)
        body: dict[str, Any] = await request.json()
        after = body["variables"].get("after")
        start = 0 if after is None else int(after)
        nodes = ITEMS[start : start + 2]
        info = {"endCursor": str(start + 2), "hasNextPage": start + 2 < len(ITEMS)}
        return JSONResponse({"data": {"items": {"nodes": nodes, "pageInfo": info}}})

    async def by_date(request: Request) -> Response:
        count(request)
        q = request.query_params
        return JSONResponse({"items": [{"from": q.get("from"), "to": q.get("to")}]})

    async def big(request: Request) -> Response:
        count(request)
        return Response(b"x" * 5000, media_type="application/octet-stream")

    return Starlette(
        routes=[
            Route("/api/items", bearer_items),
            Route("/api/keyed", keyed),
            Route("/login", login, methods=["GET", "POST"]),
            Route("/reports", reports),
            Route("/files/{name}", files),
            Route("/pages", pages),
            Route("/newest", newest),
            Route("/offset", offsets),
            Route("/linked", linked),
            Route("/next-url", next_url),
            Route("/feed.xml", feed),
            Route("/paged.atom", paged_atom),
            Route("/media/{name}", enclosure),
            Route("/flaky", flaky),
            Route("/always-503", always_503),
            Route("/slow-down", slow_down),
            Route("/unauthorized", unauthorized),
            Route("/gone", gone),
            Route("/renamed", renamed),
            Route("/to-metadata", to_metadata),
            Route("/stuck", stuck),
            Route("/oauth/token", token, methods=["POST"]),
            Route("/api/secure", token_api),
            Route("/graphql", graphql, methods=["POST"]),
            Route("/api/by-date", by_date),
            Route("/big", big),
        ]
    )


RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>News</title><link>http://example.com/</link>
<item><guid>a-1</guid><title>First</title><link>/news/1</link>
  <pubDate>Mon, 09 Feb 2026 10:00:00 GMT</pubDate>
  <enclosure url="/media/first.pdf" type="application/pdf" length="13"/></item>
<item><guid>a-1</guid><title>First (again)</title><link>/news/1</link></item>
<item><title>Second</title><link>/news/2</link></item>
<item><title>Second, re-posted</title><link>/news/2</link></item>
<item><title>Third</title><pubDate>Tue, 10 Feb 2026 10:00:00 GMT</pubDate></item>
</channel></rss>"""


@contextmanager
def serve(app: Starlette) -> Iterator[str]:
    """Serve ``app`` in a thread on 127.0.0.1 and a free port; yields the origin."""
    # IPPROTO_TCP so asyncio sets TCP_NODELAY (else each response waits for a delayed ACK).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        app,
        loop="asyncio",
        http="h11",
        ws="none",
        lifespan="off",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the recipe test site did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(5)
        sock.close()
