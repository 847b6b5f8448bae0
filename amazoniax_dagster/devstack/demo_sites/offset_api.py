"""``offset_api``: a JSON API paged by ``?offset=&limit=`` that reports the total.

Channel url: ``/api/v1/products`` (the first page, as a user copies it from the docs).
37 products, ``limit`` 1..50 (default 10), so the default first page shows 10 of 37.

* v1: ``GET /api/v1/products?offset=N&limit=M`` -> ``{"total": 37, "offset": N, "limit": M,
  "products": [...]}``; an offset past the end is an empty list; bad parameters -> 400.
* v2: the API moves to ``/api/v2/products?skip=N&take=M`` -> ``{"data": [...],
  "meta": {"total": 37, "skip": N, "take": M}}``; ``/api/v1/products`` -> 410 Gone naming v2
  (the channel url still works as an entry point: its body names the new endpoint).
* broken: ``/api/v1/products`` answers ``{"total": 0, "products": []}``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from amazoniax_dagster.devstack.demo_sites.base import (
    ADJECTIVES,
    NOUNS,
    DemoSite,
    Record,
    SourceType,
    int_param,
    json_error,
)


class OffsetApiSite(DemoSite):
    """JSON API paged by ?offset=&limit= with a total (products, total, offset, limit)."""

    name: ClassVar[str] = "offset_api"
    source_type: ClassVar[SourceType] = "api"
    base_count: ClassVar[int] = 37
    limit_default: ClassVar[int] = 10

    def make_record(self, index: int) -> Record:
        rng = self.rng(index)
        return {
            "id": f"PRD-{81003 + index * 7}",
            "title": f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}",
            "price": round(rng.uniform(3, 250), 2),
            "stock": rng.randint(0, 90),
            "date": self.record_date(index).isoformat(),
        }

    def channel_config(self, origin: str) -> dict[str, Any]:
        return {"url": f"{origin}/api/v1/products", "channel_name": "Demo products (offset API)"}

    def routes(self) -> list[BaseRoute]:
        return [Route("/api/{version:str}/products", self.products)]

    async def products(self, request: Request) -> Response:
        version = request.path_params["version"]
        v2 = self.variant == "v2"
        if version == "v1" and v2:
            return json_error(410, "API v1 is gone; use /api/v2/products?skip=&take=")
        if version not in ("v1", "v2") or (version == "v2" and not v2):
            return json_error(404, "Not Found")
        names = ("skip", "take") if v2 else ("offset", "limit")
        try:
            offset = int_param(request.query_params.get(names[0]), 0, minimum=0)
            limit = int_param(request.query_params.get(names[1]), self.limit_default, maximum=50)
        except ValueError as exc:
            return json_error(400, f"invalid query parameter: {exc}")
        records = self.ground_truth()
        chunk = records[offset : offset + limit]
        if v2:
            meta = {"total": len(records), "skip": offset, "take": limit}
            return JSONResponse({"data": chunk, "meta": meta})
        return JSONResponse(
            {"total": len(records), "offset": offset, "limit": limit, "products": chunk}
        )
