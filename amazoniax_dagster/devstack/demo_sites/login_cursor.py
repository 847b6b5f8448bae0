"""``login_cursor``: a web app behind a login form whose dashboard loads orders by cursor.

Channel url: ``/dashboard`` with ``login_credentials`` (anonymous visits redirect to
``/login?next=/dashboard``; a wrong password re-shows the form with status 200, as many apps
do, so a failed login is only visible in the page and the missing cookie).

* v1: ``GET /api/orders[?after=<cursor>]`` (session cookie required, else 401) ->
  ``{"data": [...10 orders], "next_cursor": "<opaque base64>" | null}`` (47 records); the
  dashboard's script fetches it and a "Load more" button fetches the next cursor.
* v2: the parameter is renamed ``after`` -> ``cursor`` (the dashboard script too). ``after``
  is ignored, so an old client gets the first page again and again, with the same
  ``next_cursor`` (repeated data, never an end).
* broken: after login, ``/api/orders`` answers 500 forever; the dashboard shows an error.
"""

from __future__ import annotations

from datetime import date
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from amazoniax_dagster.devstack.demo_sites.base import (
    PEOPLE,
    DemoSite,
    Record,
    SourceType,
    decode_cursor,
    encode_cursor,
    int_param,
    json_error,
)
from amazoniax_dagster.devstack.demo_sites.login import FormLogin
from amazoniax_dagster.devstack.demo_sites.markup import html_page

USERNAME = "ops@demo-shop.test"
PASSWORD = "Tr0ub4dor-login-cursor"  # a demo value, public on purpose
STATUSES = ("paid", "shipped", "delivered", "refunded")

DASHBOARD_SCRIPT = """
const CURSOR_PARAM = "%(param)s";
const rows = document.getElementById("orders");
const more = document.getElementById("load-more");
const status = document.getElementById("status");
let nextCursor = null;
async function load(cursor) {
  const url = new URL("/api/orders", window.location.origin);
  if (cursor) url.searchParams.set(CURSOR_PARAM, cursor);
  status.textContent = "Loading…";
  const response = await fetch(url, {credentials: "same-origin",
                                     headers: {"Accept": "application/json"}});
  if (!response.ok) {
    status.textContent = "Could not load orders (HTTP " + response.status + ")";
    more.hidden = true;
    return;
  }
  const body = await response.json();
  for (const order of body.data) {
    const tr = document.createElement("tr");
    tr.dataset.id = order.id;
    for (const value of [order.id, order.date, order.customer, order.status,
                         order.amount.toFixed(2) + " " + order.currency]) {
      const td = document.createElement("td");
      td.textContent = value;
      tr.appendChild(td);
    }
    rows.appendChild(tr);
  }
  nextCursor = body.next_cursor;
  more.hidden = !nextCursor;
  status.textContent = rows.children.length + " orders shown";
}
more.addEventListener("click", () => load(nextCursor));
load(null);
"""


class LoginCursorSite(DemoSite):
    """Login form (CSRF + session cookie), then a JS dashboard over a cursor-paginated JSON API."""

    name: ClassVar[str] = "login_cursor"
    source_type: ClassVar[SourceType] = "html"
    base_count: ClassVar[int] = 47
    page_size: ClassVar[int] = 10

    def __init__(self, *, seed: int = 0, anchor: date | None = None) -> None:
        super().__init__(seed=seed, anchor=anchor)
        self.login = FormLogin(USERNAME, PASSWORD, home="/dashboard", failure_status=200)

    def reset(self) -> None:
        super().reset()
        self.login.reset()

    def make_record(self, index: int) -> Record:
        rng = self.rng(index)
        return {
            "id": f"ORD-{58231 + index * 13}",
            "customer": rng.choice(PEOPLE),
            "status": rng.choice(STATUSES),
            "amount": round(rng.uniform(9, 900), 2),
            "currency": "USD",
            "date": self.record_date(index).isoformat(),
        }

    def channel_config(self, origin: str) -> dict[str, Any]:
        return {
            "url": f"{origin}/dashboard",
            "channel_name": "Demo shop orders (login + cursor)",
            "login_credentials": {"username": USERNAME, "password": PASSWORD},
        }

    @property
    def cursor_param(self) -> str:
        return "cursor" if self.variant == "v2" else "after"

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/", self.root),
            Route("/login", self.login.endpoint, methods=["GET", "POST"]),
            Route("/logout", self.login.logout, methods=["GET", "POST"]),
            Route("/dashboard", self.dashboard),
            Route("/api/orders", self.orders),
        ]

    async def root(self, request: Request) -> Response:
        return RedirectResponse("/dashboard", status_code=302)

    async def dashboard(self, request: Request) -> Response:
        if not self.login.is_authenticated(request):
            return self.login.redirect_to_login(request)
        body = (
            '<p><a href="/logout">Sign out</a></p>\n<p id="status"></p>\n'
            '<table class="orders">\n<thead><tr><th>Order</th><th>Date</th><th>Customer</th>'
            "<th>Status</th><th>Amount</th></tr></thead>\n"
            '<tbody id="orders"></tbody>\n</table>\n'
            '<button id="load-more" type="button" hidden>Load more</button>\n'
            f"<script>{DASHBOARD_SCRIPT % {'param': self.cursor_param}}</script>"
        )
        return html_page("Orders", body)

    async def orders(self, request: Request) -> Response:
        if not self.login.is_authenticated(request):
            return JSONResponse({"error": "authentication required"}, status_code=401)
        if self.variant == "broken":
            return JSONResponse({"error": "internal server error"}, status_code=500)
        params = request.query_params
        try:
            limit = int_param(params.get("limit"), self.page_size, maximum=50)
        except ValueError as exc:
            return json_error(400, f"invalid limit: {exc}")
        start = 0
        cursor = params.get(self.cursor_param)
        if cursor:
            decoded = decode_cursor("orders", cursor)
            if decoded is None:
                return json_error(400, "invalid cursor")
            start = decoded
        records = self.records()
        end = start + limit
        next_cursor = encode_cursor("orders", end) if end < len(records) else None
        return JSONResponse({"data": records[start:end], "next_cursor": next_cursor})
