"""``keyset_scroll``: an infinite-scroll list that asks for the rows after the last id seen.

Channel url: ``/``. A script loads ``/api/listings?after=<last id>&limit=10`` as the reader
scrolls (ids are increasing integers, not positions); 34 listings, so four batches.

* v1: ``GET /api/listings?limit=10[&after=ID]`` -> ``{"listings": [...]}``; the script stops at
  a batch shorter than the limit. ``after`` is an id, not an offset: ``after=10`` is the row
  after id 10, wherever it sits.
* v2: the parameter is renamed ``since_id`` and the rows move under ``{"results": [...],
  "has_more": bool}``; ``after`` is ignored (the first batch again).
* broken: ``{"listings": []}`` whatever is asked.
"""

from __future__ import annotations

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

SCRIPT = """
const list = document.getElementById("listings");
const sentinel = document.getElementById("more");
const PARAM = "%(param)s";
let last = null, finished = false, loading = false;
async function loadMore() {
  if (loading || finished) return;
  loading = true;
  const url = new URL("/api/listings", window.location.origin);
  url.searchParams.set("limit", "10");
  if (last !== null) url.searchParams.set(PARAM, String(last));
  const body = await (await fetch(url)).json();
  const rows = body.%(rows)s;
  for (const row of rows) {
    const li = document.createElement("li");
    li.dataset.id = row.id;
    li.textContent = row.title + " - " + row.city + " - " + row.date;
    list.appendChild(li);
    last = row.id;
  }
  finished = %(finished)s;
  loading = false;
  if (!finished && sentinel.getBoundingClientRect().top < window.innerHeight) loadMore();
}
new IntersectionObserver((e) => { if (e.some((x) => x.isIntersecting)) loadMore(); })
  .observe(sentinel);
"""


class KeysetScrollSite(DemoSite):
    """Infinite scroll by keyset: /api/listings?after=<last id>&limit=10 until a short batch."""

    name: ClassVar[str] = "keyset_scroll"
    source_type: ClassVar[SourceType] = "html"
    base_count: ClassVar[int] = 34
    batch: ClassVar[int] = 10

    def make_record(self, index: int) -> Record:
        rng = self.rng(index)
        return {
            "id": 1200 + index * 17 + rng.randint(0, 9),
            "title": f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} for sale",
            "city": rng.choice(CITIES),
            "date": self.record_date(index).isoformat(),
        }

    def channel_config(self, origin: str) -> dict[str, Any]:
        return {"url": f"{origin}/", "channel_name": "Demo classifieds (keyset scroll)"}

    def routes(self) -> list[BaseRoute]:
        return [Route("/", self.home), Route("/api/listings", self.listings)]

    async def home(self, request: Request) -> Response:
        v2 = self.variant == "v2"
        script = SCRIPT % {
            "param": "since_id" if v2 else "after",
            "rows": "results" if v2 else "listings",
            "finished": "!body.has_more" if v2 else "rows.length < 10",
        }
        body = (
            '<ul id="listings"></ul>\n<div id="more" style="min-height:40px">Loading…</div>\n'
            f"<script>{script}</script>"
        )
        return html_page("Classifieds", body, head="<style>li{min-height:120px}</style>\n")

    async def listings(self, request: Request) -> Response:
        v2 = self.variant == "v2"
        params = request.query_params
        try:
            limit = int_param(params.get("limit"), self.batch, maximum=50)
            after = int_param(params.get("since_id" if v2 else "after"), -1, minimum=0)
        except ValueError as exc:
            return json_error(400, f"invalid parameter: {exc}")
        rows = [r for r in self.ground_truth() if r["id"] > after]
        chunk = rows[:limit]
        if v2:
            return JSONResponse({"results": chunk, "has_more": len(rows) > limit})
        return JSONResponse({"listings": chunk})
