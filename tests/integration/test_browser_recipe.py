"""Browser recipes against a real site in real Chromium.

The site (Starlette, served by uvicorn on 127.0.0.1) has a login form that sets a session
cookie, a list rendered by JavaScript from a JSON API with a "Next" button, an infinite-scroll
feed, a file download, and two traps: an image from the cloud metadata address and a link
that redirects to it. Chromium is started once for the module; each run gets a fresh context.
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from amazoniax_dagster.core.errors import ConfigError, SiteChangedError, UnsafeURLError
from amazoniax_dagster.core.messages import WebSourceConfig
from amazoniax_dagster.core.netpolicy import NetworkPolicy
from amazoniax_dagster.fetchers.base import FetchContext, FetchLimits
from amazoniax_dagster.fetchers.browser import launch_chromium, run_browser_recipe
from amazoniax_dagster.fetchers.browser_schema import load_browser_recipe
from tests.integration.recipe_sites import serve

pytestmark = pytest.mark.skipif(shutil.which("chromium") is None, reason="needs chromium")

USERNAME, PASSWORD = "alice", "pw-SECRET-browser-31c7"
SESSION = "session-7d1e"
LIST_IDS = [f"rec-{n:03d}" for n in range(1, 14)]  # 13 records, 5 per page: 3 pages
FEED_IDS = [f"scr-{n:03d}" for n in range(1, 33)]  # 32 entries, 10 per scroll: 4 loads
PAGE_SIZE, FEED_SIZE = 5, 10

LOGIN_FORM = """<!doctype html><title>login</title>
<form method="post" action="/login">{error}
  <input id="username" name="username"><input id="password" name="password" type="password">
  <button id="submit" type="submit">Sign in</button>
</form>"""

LIST_PAGE = """<!doctype html><title>list</title><a id="logout" href="/logout">logout</a>
<ul id="items"></ul><button id="next">Next</button>
<script>
let page = 1;
async function load() {
  const reply = await fetch('/api/items?page=' + page);
  const data = await reply.json();
  document.getElementById('items').innerHTML =
    data.items.map(id => '<li class="item">' + id + '</li>').join('');
  document.getElementById('next').disabled = !data.has_more;
}
document.getElementById('next').addEventListener('click', () => { page += 1; load(); });
load();
</script>"""

FEED_PAGE = """<!doctype html><title>feed</title>
<div id="feed"></div><div id="end">loading</div>
<script>
let offset = 0, busy = false, done = false;
async function more() {
  if (busy || done) return;
  busy = true;
  const reply = await fetch('/api/feed?offset=' + offset);
  const data = await reply.json();
  for (const id of data.entries) {
    const div = document.createElement('div');
    div.className = 'entry'; div.style.height = '150px'; div.textContent = id;
    document.getElementById('feed').appendChild(div);
  }
  offset += data.entries.length; done = data.entries.length === 0; busy = false;
}
window.addEventListener('scroll', () => {
  if (window.innerHeight + window.scrollY >= document.body.scrollHeight - 50) more();
});
more();
</script>"""


def make_site() -> Starlette:
    def logged_in(request: Request) -> bool:
        return request.cookies.get("session") == SESSION

    async def login_page(request: Request) -> Response:
        return HTMLResponse(LOGIN_FORM.format(error=""))

    async def login(request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if form.get("username") == USERNAME and form.get("password") == PASSWORD:
            response = RedirectResponse("/home", status_code=303)
            response.set_cookie("session", SESSION, httponly=True)
            return response
        return HTMLResponse(LOGIN_FORM.format(error='<p class="error">wrong password</p>'))

    def private(html: str) -> Any:
        async def handler(request: Request) -> Response:
            if not logged_in(request):
                return RedirectResponse("/login", status_code=303)
            return HTMLResponse(html)

        return handler

    async def items(request: Request) -> Response:
        if not logged_in(request):
            return JSONResponse({"error": "login"}, status_code=401)
        page = int(request.query_params.get("page", "1"))
        chunk = LIST_IDS[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
        return JSONResponse({"items": chunk, "has_more": page * PAGE_SIZE < len(LIST_IDS)})

    async def feed(request: Request) -> Response:
        offset = int(request.query_params.get("offset", "0"))
        return JSONResponse({"entries": FEED_IDS[offset : offset + FEED_SIZE]})

    async def report_csv(request: Request) -> Response:
        if not logged_in(request):
            return Response("login first", status_code=403)
        return Response(
            "id,value\n1,a\n",
            media_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="report-2025.csv"'},
        )

    async def to_metadata(request: Request) -> Response:
        return RedirectResponse("http://169.254.169.254/latest/meta-data/", status_code=302)

    home = '<a id="logout" href="/logout">logout</a><p id="welcome">hello</p>'
    files = '<a class="dl" href="/files/report">the report</a>'
    trap = '<p id="trap">x</p><img src="http://169.254.169.254/latest/meta-data/x.png">'
    return Starlette(
        routes=[
            Route("/login", login_page, methods=["GET"]),
            Route("/login", login, methods=["POST"]),
            Route("/home", private(home)),
            Route("/list", private(LIST_PAGE)),
            Route("/feed", private(FEED_PAGE)),
            Route("/files", private(files)),
            Route("/files/report", report_csv),
            Route("/api/items", items),
            Route("/api/feed", feed),
            Route("/trap", private(trap)),
            Route("/to-metadata", to_metadata),
        ]
    )


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    with serve(make_site()) as origin:
        yield origin


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = launch_chromium(playwright)
        yield launched
        launched.close()


LOOPBACK = NetworkPolicy(allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),))


def make_ctx(site: str, out: Path, password: str = PASSWORD) -> FetchContext:
    config = WebSourceConfig(
        url=f"{site}/home",
        login_credentials={"username": SecretStr(USERNAME), "password": SecretStr(password)},
    )
    return FetchContext(
        config=config, out_dir=out, policy=LOOPBACK, limits=FetchLimits(timeout_seconds=5)
    )


RECIPE = """
version: 1
kind: browser
name: demo-browser
login:
  url: /login
  username_selector: "#username"
  password_selector: "#password"
  submit_selector: "#submit"
  success: {selector: "#logout"}
start_url: /list
steps:
  - {type: expect, selector: "#items li"}
  - type: paginate
    strategy: {type: click_next, selector: "#next", content_selector: "#items"}
    steps:
      - {type: save_page, name: "list-${page}.html"}
  - {type: goto, url: /feed}
  - {type: wait_for, selector: ".entry"}
  - type: paginate
    strategy: {type: scroll, item_selector: ".entry", wait_seconds: 1}
  - {type: save_page, name: feed.html}
  - {type: goto, url: /files}
  - {type: download, selector: "a.dl"}
"""


def test_logs_in_pages_through_scrolls_and_downloads(
    site: str, browser: Any, tmp_path: Path
) -> None:
    started = time.monotonic()
    report = run_browser_recipe(
        load_browser_recipe(RECIPE), make_ctx(site, tmp_path), browser=browser
    )
    elapsed = time.monotonic() - started

    names = [f.relative_path for f in report.files]
    assert names == ["list-1.html", "list-2.html", "list-3.html", "feed.html", "report-2025.csv"]
    pages = [(tmp_path / f"list-{n}.html").read_text() for n in (1, 2, 3)]
    for number, html in enumerate(pages):
        shown = set(re.findall(r"rec-\d{3}", html))
        assert shown == set(LIST_IDS[number * PAGE_SIZE : (number + 1) * PAGE_SIZE])
    assert set(re.findall(r"rec-\d{3}", "".join(pages))) == set(LIST_IDS)
    assert set(re.findall(r"scr-\d{3}", (tmp_path / "feed.html").read_text())) == set(FEED_IDS)
    assert (tmp_path / "report-2025.csv").read_text() == "id,value\n1,a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)  # no spool left over
    assert report.requests > 10 and report.warnings == []
    assert PASSWORD not in repr(report)
    assert elapsed < 20


def test_a_missing_selector_is_a_site_change(site: str, browser: Any, tmp_path: Path) -> None:
    recipe = load_browser_recipe(
        RECIPE.replace(
            '{type: expect, selector: "#items li"}', '{type: expect, selector: "#orders"}'
        )
    )
    ctx = make_ctx(site, tmp_path)
    ctx = FetchContext(ctx.config, tmp_path, ctx.policy, limits=FetchLimits(timeout_seconds=1))

    with pytest.raises(SiteChangedError, match="'#orders' not found"):
        run_browser_recipe(recipe, ctx, browser=browser)
    assert list(tmp_path.iterdir()) == []


def test_a_refused_login_is_a_config_error(site: str, browser: Any, tmp_path: Path) -> None:
    ctx = make_ctx(site, tmp_path, password="wrong-password-0000")
    ctx = FetchContext(ctx.config, tmp_path, ctx.policy, limits=FetchLimits(timeout_seconds=1))

    with pytest.raises(ConfigError, match="login refused") as caught:
        run_browser_recipe(load_browser_recipe(RECIPE), ctx, browser=browser)
    assert "wrong-password-0000" not in str(caught.value)


TRAP = """
version: 1
kind: browser
name: trap
login:
  url: /login
  username_selector: "#username"
  password_selector: "#password"
  submit_selector: "#submit"
  success: {url_contains: /home}
start_url: /trap
steps:
  - {type: expect, selector: "#trap"}
  - {type: save_page, name: trap.html}
"""


def test_requests_to_refused_networks_are_blocked_and_reported(
    site: str, browser: Any, tmp_path: Path
) -> None:
    report = run_browser_recipe(
        load_browser_recipe(TRAP), make_ctx(site, tmp_path), browser=browser
    )

    assert [f.relative_path for f in report.files] == ["trap.html"]
    assert len(report.warnings) == 1
    assert "169.254.169.254" in report.warnings[0] and "metadata" in report.warnings[0]


def test_a_redirect_to_a_refused_network_fails_the_run(
    site: str, browser: Any, tmp_path: Path
) -> None:
    # The route sees only /to-metadata (allowed); the redirect hop is caught by the proxy.
    recipe = load_browser_recipe(TRAP.replace("start_url: /trap", "start_url: /to-metadata"))

    with pytest.raises(UnsafeURLError, match="metadata"):
        run_browser_recipe(recipe, make_ctx(site, tmp_path), browser=browser)


def test_a_start_url_on_a_refused_network_is_refused_before_loading(
    site: str, browser: Any, tmp_path: Path
) -> None:
    ctx = make_ctx(site, tmp_path)
    public_only = FetchContext(ctx.config, tmp_path)  # the default policy: no loopback

    with pytest.raises(UnsafeURLError, match="loopback"):
        run_browser_recipe(load_browser_recipe(TRAP), public_only, browser=browser)


# --------------------------------------------------------------------------- the policy proxy


def _through_tunnel(proxy_url: str, target: str, request: bytes) -> bytes:
    """CONNECT through the proxy, then speak ``request`` in the tunnel; all bytes back."""
    host, port = proxy_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        reply = sock.recv(4096)
        if not reply.startswith(b"HTTP/1.1 200"):
            return reply
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def test_the_proxy_tunnels_allowed_targets_and_refuses_others(site: str) -> None:
    from amazoniax_dagster.fetchers.browser_proxy import PolicyProxy

    target = site.removeprefix("http://")
    with PolicyProxy(LOOPBACK, timeout=5) as proxy:
        answer = _through_tunnel(
            proxy.url, target, b"GET /login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        refused = _through_tunnel(proxy.url, "169.254.169.254:443", b"")

    assert answer.startswith(b"HTTP/1.1 200") and b'id="username"' in answer
    assert refused.startswith(b"HTTP/1.1 403")
    assert [(b.host, b.port) for b in proxy.blocked] == [("169.254.169.254", 443)]
    assert "metadata" in proxy.blocked[0].reason


def test_the_proxy_forwards_plain_http_once_per_connection(site: str) -> None:
    import urllib.request

    from amazoniax_dagster.fetchers.browser_proxy import PolicyProxy

    with PolicyProxy(LOOPBACK, timeout=5) as proxy:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy.url}))
        with opener.open(f"{site}/login", timeout=5) as reply:
            body, headers = reply.read(), reply.headers
        with pytest.raises(urllib.error.HTTPError) as refused:
            opener.open("http://10.1.2.3/secret", timeout=5)

    assert b'id="username"' in body and headers["Connection"] == "close"
    assert refused.value.code == 403
    assert proxy.connections == 2 and [b.host for b in proxy.blocked] == ["10.1.2.3"]
