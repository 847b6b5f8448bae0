"""``js_xhr``: a JS-rendered search page that pages through a JSON API without navigating.

Channel url: ``/``. The page is an empty table plus an inline script that fetches the API and
renders the rows; "Next" and "Previous" buttons fetch other pages in place (XHR/fetch, the URL
of the page never changes). 38 listings, 10 a page (4 pages).

* v1: ``GET /api/search?page=N[&q=text]`` -> ``{"results": [...], "page": N, "total_pages": K,
  "total": M}`` (``q`` filters names, case-insensitively; a page past the end is empty).
* v2: the endpoint moved to ``/api/v2/search`` (same shape; the script follows);
  ``/api/search`` answers 404.
* broken: ``/api/search`` answers ``{"results": [], "page": N, "total_pages": 0, "total": 0}``
  and the page shows "No results".
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from amazoniax_dagster.devstack.demo_sites.base import (
    ADJECTIVES,
    CITIES,
    NOUNS,
    DemoSite,
    Record,
    SourceType,
    int_param,
    json_error,
)
from amazoniax_dagster.devstack.demo_sites.markup import html_page

SEARCH_SCRIPT = """
const API = "%(endpoint)s";
const rows = document.getElementById("rows");
const info = document.getElementById("info");
const next = document.getElementById("next");
const prev = document.getElementById("prev");
let page = 1;
async function show(n) {
  const url = new URL(API, window.location.origin);
  url.searchParams.set("page", String(n));
  const response = await fetch(url, {headers: {"Accept": "application/json"}});
  if (!response.ok) { info.textContent = "Search failed (HTTP " + response.status + ")"; return; }
  const body = await response.json();
  rows.replaceChildren();
  for (const item of body.results) {
    const tr = document.createElement("tr");
    tr.className = "result";
    tr.dataset.id = item.id;
    for (const value of [item.id, item.name, item.city, item.price.toFixed(2), item.date]) {
      const td = document.createElement("td");
      td.textContent = value;
      tr.appendChild(td);
    }
    rows.appendChild(tr);
  }
  page = body.page;
  info.textContent = body.results.length ? "Page " + body.page + " of " + body.total_pages
                                         : "No results";
  next.disabled = body.page >= body.total_pages;
  prev.disabled = body.page <= 1;
}
next.addEventListener("click", () => show(page + 1));
prev.addEventListener("click", () => show(page - 1));
show(1);
"""


class JsXhrSite(DemoSite):
    """JS page rendering /api/search?page=N results; a Next button fetches pages in place."""

    name: ClassVar[str] = "js_xhr"
    source_type: ClassVar[SourceType] = "html"
    base_count: ClassVar[int] = 38
    page_size: ClassVar[int] = 10

    def make_record(self, index: int) -> Record:
        rng = self.rng(index)
        return {
            "id": f"L-{7700 + index * 11:05d}",
            "name": f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}",
            "city": rng.choice(CITIES),
            "price": round(rng.uniform(20, 2000), 2),
            "date": self.record_date(index).isoformat(),
        }

    def channel_config(self, origin: str) -> dict[str, Any]:
        return {"url": f"{origin}/", "channel_name": "Demo listings search (JS)"}

    @property
    def endpoint(self) -> str:
        return "/api/v2/search" if self.variant == "v2" else "/api/search"

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/", self.home),
            Route("/api/search", self.search),
            Route("/api/v2/search", self.search),
        ]

    async def home(self, request: Request) -> Response:
        body = (
            '<p id="info">Loading…</p>\n<table class="results">\n<thead><tr><th>Ref</th>'
            "<th>Name</th><th>City</th><th>Price</th><th>Listed</th></tr></thead>\n"
            '<tbody id="rows"></tbody>\n</table>\n'
            '<button id="prev" type="button" disabled>Previous</button>\n'
            '<button id="next" type="button" disabled>Next</button>\n'
            f"<script>{SEARCH_SCRIPT % {'endpoint': self.endpoint}}</script>"
        )
        return html_page("Listings", body)

    async def search(self, request: Request) -> Response:
        if request.url.path != self.endpoint:
            return json_error(404, "Not Found")
        try:
            page = int_param(request.query_params.get("page"), 1)
        except ValueError as exc:
            return json_error(400, f"invalid page: {exc}")
        if self.variant == "broken":
            return JSONResponse({"results": [], "page": page, "total_pages": 0, "total": 0})
        query = request.query_params.get("q", "").strip().lower()
        matches = [r for r in self.records() if query in r["name"].lower()]
        total_pages = math.ceil(len(matches) / self.page_size)
        chunk = matches[(page - 1) * self.page_size : page * self.page_size]
        return JSONResponse(
            {"results": chunk, "page": page, "total_pages": total_pages, "total": len(matches)}
        )
