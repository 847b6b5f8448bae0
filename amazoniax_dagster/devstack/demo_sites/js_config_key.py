"""``js_config_key``: a JS app whose API key sits in a config object in the page and is sent
as a header on every data request.

Channel url: ``/``. The page sets ``window.CONFIG = {apiBase: "/api", apiKey: "…"}`` and a
script loads ``GET /api/vehicles?page=N`` with ``X-Api-Key: <apiKey>``. 27 vehicles, 10 a
page; the body carries ``page`` and ``pages``. The key is per deployment (seeded), never in the
channel config: a fetcher must read it from the page.

* v1: as above; a missing or wrong key -> 401 ``{"error": "invalid api key"}``.
* v2: the config object becomes ``window.__APP_STATE__ = {"api": {"base": "/api/v2",
  "token": "…"}}`` and the key is sent as ``Authorization: Api-Key <token>``; ``X-Api-Key`` is
  refused and ``/api/vehicles`` is 404.
* broken: ``{"vehicles": [], "page": 1, "pages": 0}``.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from amazoniax_dagster.devstack.demo_sites.base import (
    CITIES,
    DemoSite,
    Record,
    SourceType,
    int_param,
    json_error,
)
from amazoniax_dagster.devstack.demo_sites.markup import html_page

MAKES = ("Tern", "Volta", "Kiro", "Alder", "Brio", "Canto")
V1_SCRIPT = """
window.CONFIG = {apiBase: "/api", apiKey: %(key)s, pageSize: 10};
async function load(page) {
  const response = await fetch(window.CONFIG.apiBase + "/vehicles?page=" + page,
                               {headers: {"X-Api-Key": window.CONFIG.apiKey}});
  return response.json();
}
"""
V2_SCRIPT = """
window.__APP_STATE__ = %(state)s;
async function load(page) {
  const api = window.__APP_STATE__.api;
  const response = await fetch(api.base + "/vehicles?page=" + page,
                               {headers: {"Authorization": "Api-Key " + api.token}});
  return response.json();
}
"""
RENDER = """
(async () => {
  const list = document.getElementById("vehicles");
  let page = 1, pages = 1;
  do {
    const body = await load(page);
    pages = body.pages;
    for (const v of body.vehicles) {
      const li = document.createElement("li");
      li.dataset.id = v.id;
      li.textContent = v.make + " in " + v.depot + " since " + v.date;
      list.appendChild(li);
    }
    page += 1;
  } while (page <= pages);
})();
"""


class JsConfigKeySite(DemoSite):
    """JS app: API key in window.CONFIG sent as X-Api-Key to /api/vehicles?page=N."""

    name: ClassVar[str] = "js_config_key"
    source_type: ClassVar[SourceType] = "html"
    base_count: ClassVar[int] = 27
    page_size: ClassVar[int] = 10

    @property
    def api_key(self) -> str:
        return "pk_live_" + hashlib.sha256(f"{self.name}:{self.seed}".encode()).hexdigest()[:24]

    def make_record(self, index: int) -> Record:
        rng = self.rng(index)
        return {
            "id": f"VH-{rng.choice(MAKES)[:2].upper()}{4400 + index * 19}",
            "make": rng.choice(MAKES),
            "depot": rng.choice(CITIES),
            "mileage": rng.randint(100, 90000),
            "date": self.record_date(index).isoformat(),
        }

    def channel_config(self, origin: str) -> dict[str, Any]:
        return {"url": f"{origin}/", "channel_name": "Demo fleet (API key in the page)"}

    def routes(self) -> list[BaseRoute]:
        return [Route("/", self.home), Route("/api/{version:path}", self.vehicles)]

    async def home(self, request: Request) -> Response:
        if self.variant == "v2":
            state = {"api": {"base": "/api/v2", "token": self.api_key}}
            script = V2_SCRIPT % {"state": json.dumps(state)}
        else:
            script = V1_SCRIPT % {"key": json.dumps(self.api_key)}
        body = f'<ul id="vehicles"></ul>\n<script>{script}{RENDER}</script>'
        return html_page("Fleet", body)

    async def vehicles(self, request: Request) -> Response:
        v2 = self.variant == "v2"
        if request.path_params["version"] != ("v2/vehicles" if v2 else "vehicles"):
            return json_error(404, "Not Found")
        if v2:
            sent = request.headers.get("authorization", "").removeprefix("Api-Key ")
        else:
            sent = request.headers.get("x-api-key", "")
        if sent != self.api_key:
            return JSONResponse({"error": "invalid api key"}, status_code=401)
        try:
            page = int_param(request.query_params.get("page"), 1)
        except ValueError as exc:
            return json_error(400, f"invalid page: {exc}")
        records = self.ground_truth()
        pages = math.ceil(len(records) / self.page_size)
        chunk = records[(page - 1) * self.page_size : page * self.page_size]
        return JSONResponse({"vehicles": chunk, "page": page, "pages": pages})
