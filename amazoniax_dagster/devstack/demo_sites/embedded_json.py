"""``embedded_json``: a page that ships its first results as JSON in a script tag and loads
the rest from a data endpoint.

Channel url: ``/jobs``. 33 job offers, 10 a page. The page embeds the first page as
``<script type="application/json" id="initial-state">{"jobs": [...], "next": "/api/jobs?page=2"}
</script>`` and a "More offers" button whose script follows ``next`` until it is null.

* v1: ``GET /api/jobs?page=N`` -> ``{"jobs": [...], "next": "/api/jobs?page=N+1" | null}``.
* v2: a Next.js-style page: ``<script id="__NEXT_DATA__" type="application/json">`` with
  ``{"props": {"pageProps": {"offers": [...], "cursor": "…"}}}`` and the endpoint
  ``/_next/data/jobs.json?cursor=…`` -> ``{"pageProps": {"offers": [...], "cursor": … | null}}``;
  ``/api/jobs`` is 404.
* broken: the embedded state is ``{"jobs": [], "next": null}``.
"""

from __future__ import annotations

import json
import math
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from amazoniax_dagster.devstack.demo_sites.base import (
    ADJECTIVES,
    CITIES,
    DemoSite,
    Record,
    SourceType,
    decode_cursor,
    encode_cursor,
    int_param,
    json_error,
)
from amazoniax_dagster.devstack.demo_sites.markup import html_page

ROLES = ("Engineer", "Designer", "Analyst", "Nurse", "Chef", "Electrician", "Teacher")
SCRIPT = """
const list = document.getElementById("jobs");
const more = document.getElementById("more");
let state = JSON.parse(document.getElementById(%(element)s).textContent)%(path)s;
function render(rows) {
  for (const job of rows) {
    const li = document.createElement("li");
    li.dataset.id = job.id;
    li.textContent = job.title + " - " + job.city + " - " + job.date;
    list.appendChild(li);
  }
  more.hidden = !state.%(next)s;
}
more.addEventListener("click", async () => {
  state = (await (await fetch(%(url)s)).json())%(page_path)s;
  render(state.%(rows)s);
});
render(state.%(rows)s);
"""


def _json_for_script(value: Any) -> str:
    """JSON safe inside a <script> element (no closing tags)."""
    return json.dumps(value).replace("</", "<\\/")


class EmbeddedJsonSite(DemoSite):
    """JSON in <script type="application/json"> plus /api/jobs?page=N behind "More offers"."""

    name: ClassVar[str] = "embedded_json"
    source_type: ClassVar[SourceType] = "html"
    base_count: ClassVar[int] = 33
    page_size: ClassVar[int] = 10

    def make_record(self, index: int) -> Record:
        rng = self.rng(index)
        return {
            "id": f"job-{rng.getrandbits(28):07x}",
            "title": f"{rng.choice(ADJECTIVES)} {rng.choice(ROLES)}",
            "city": rng.choice(CITIES),
            "date": self.record_date(index).isoformat(),
        }

    def newest_first(self) -> list[Record]:
        return list(reversed(self.ground_truth()))

    def channel_config(self, origin: str) -> dict[str, Any]:
        return {"url": f"{origin}/jobs", "channel_name": "Demo job board (embedded JSON)"}

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/jobs", self.home),
            Route("/api/jobs", self.api_jobs),
            Route("/_next/data/jobs.json", self.next_data),
        ]

    def _v1_page(self, page: int) -> dict[str, Any]:
        jobs = self.newest_first()
        pages = math.ceil(len(jobs) / self.page_size)
        chunk = jobs[(page - 1) * self.page_size : page * self.page_size]
        return {"jobs": chunk, "next": f"/api/jobs?page={page + 1}" if page < pages else None}

    def _v2_page(self, start: int) -> dict[str, Any]:
        jobs = self.newest_first()
        end = start + self.page_size
        cursor = encode_cursor("jobs", end) if end < len(jobs) else None
        return {"offers": jobs[start:end], "cursor": cursor}

    async def home(self, request: Request) -> Response:
        if self.variant == "v2":
            state: dict[str, Any] = {"props": {"pageProps": self._v2_page(0)}}
            element, script = (
                "__NEXT_DATA__",
                SCRIPT
                % {
                    "element": '"__NEXT_DATA__"',
                    "path": ".props.pageProps",
                    "next": "cursor",
                    "url": '"/_next/data/jobs.json?cursor=" + state.cursor',
                    "page_path": ".pageProps",
                    "rows": "offers",
                },
            )
        else:
            state = self._v1_page(1)
            element, script = (
                "initial-state",
                SCRIPT
                % {
                    "element": '"initial-state"',
                    "path": "",
                    "next": "next",
                    "url": "state.next",
                    "page_path": "",
                    "rows": "jobs",
                },
            )
        body = (
            f'<script type="application/json" id="{element}">{_json_for_script(state)}</script>\n'
            '<ul id="jobs"></ul>\n<button id="more" hidden>More offers</button>\n'
            f"<script>{script}</script>"
        )
        return html_page("Jobs", body)

    async def api_jobs(self, request: Request) -> Response:
        if self.variant == "v2":
            return json_error(404, "Not Found")
        try:
            page = int_param(request.query_params.get("page"), 1)
        except ValueError as exc:
            return json_error(400, f"invalid page: {exc}")
        return JSONResponse(self._v1_page(page))

    async def next_data(self, request: Request) -> Response:
        if self.variant != "v2":
            return json_error(404, "Not Found")
        cursor = request.query_params.get("cursor")
        start = decode_cursor("jobs", cursor) if cursor else 0
        if start is None:
            return json_error(400, "invalid cursor")
        return JSONResponse({"pageProps": self._v2_page(start)})
