"""``jsonapi_links``: a JSON:API document paged by ``links.next`` (``page[number]``/``page[size]``).

Channel url: ``/api/articles``. 31 articles, 10 a page (four pages).

* v1: ``GET /api/articles?page[number]=N&page[size]=M`` (``application/vnd.api+json``) ->
  ``{"data": [{"type": "articles", "id": "…", "attributes": {...}}], "links": {"self", "first",
  "last", "next"?}, "meta": {"total": 31}}``; ``links.next`` is absent on the last page.
* v2: offset-style JSON:API pages (``page[offset]``/``page[limit]``) with ``links.next`` set to
  ``null`` on the last page; ``page[number]`` is ignored (the first page again).
* broken: ``{"data": [], "links": {"self": …}, "meta": {"total": 0}}``.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from amazoniax_dagster.devstack.demo_sites.base import (
    ADJECTIVES,
    NOUNS,
    PEOPLE,
    DemoSite,
    Record,
    SourceType,
    int_param,
)

MEDIA_TYPE = "application/vnd.api+json"


class JsonApiLinksSite(DemoSite):
    """JSON:API (data[].attributes) paged by links.next with page[number]&page[size]."""

    name: ClassVar[str] = "jsonapi_links"
    source_type: ClassVar[SourceType] = "api"
    base_count: ClassVar[int] = 31
    page_size: ClassVar[int] = 10

    def make_record(self, index: int) -> Record:
        rng = self.rng(index)
        return {
            "id": f"{880100 + index * 41}",
            "title": f"Why the {rng.choice(ADJECTIVES).lower()} {rng.choice(NOUNS).lower()} wins",
            "author": rng.choice(PEOPLE),
            "date": self.record_date(index).isoformat(),
        }

    def channel_config(self, origin: str) -> dict[str, Any]:
        return {"url": f"{origin}/api/articles", "channel_name": "Demo articles (JSON:API links)"}

    def routes(self) -> list[BaseRoute]:
        return [Route("/api/articles", self.articles)]

    async def articles(self, request: Request) -> Response:
        v2 = self.variant == "v2"
        params = request.query_params
        names = ("page[offset]", "page[limit]") if v2 else ("page[number]", "page[size]")
        try:
            size = int_param(params.get(names[1]), self.page_size, maximum=50)
            if v2:
                start = int_param(params.get(names[0]), 0, minimum=0)
            else:
                start = (int_param(params.get(names[0]), 1) - 1) * size
        except ValueError as exc:
            error = {"status": "400", "title": "Invalid page parameter", "detail": str(exc)}
            return JSONResponse({"errors": [error]}, 400, media_type=MEDIA_TYPE)
        records = self.ground_truth()
        base = str(request.url.replace(query=""))

        def link(first: int) -> str:
            if v2:
                query = {names[0]: first, names[1]: size}
            else:
                query = {names[0]: first // size + 1, names[1]: size}
            return f"{base}?{urlencode(query)}"

        last = max(0, (math.ceil(len(records) / size) - 1) * size)
        links: dict[str, Any] = {"self": str(request.url), "first": link(0), "last": link(last)}
        if start + size < len(records):
            links["next"] = link(start + size)
        elif v2:
            links["next"] = None
        data = [
            {
                "type": "articles",
                "id": r["id"],
                "attributes": {k: v for k, v in r.items() if k != "id"},
            }
            for r in records[start : start + size]
        ]
        body = {"data": data, "links": links, "meta": {"total": len(records)}}
        return JSONResponse(body, media_type=MEDIA_TYPE)


def _attributes(record: Record) -> dict[str, Any]:
    return {key: value for key, value in record.items() if key != "id"}
