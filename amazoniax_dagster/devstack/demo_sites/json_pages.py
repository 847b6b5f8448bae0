"""``json_pages``: a JSON product API with page-number pagination.

Channel url: the API root ``/api/`` (a JSON index naming the items endpoint, as GitHub's API
root does), with ``api_documentation_path`` = ``/openapi.json``; ``/`` is a small HTML page that
links both and loads nothing.

* v1: ``GET /api/v1/items?page=N&per_page=20[&from=YYYY-MM-DD][&to=YYYY-MM-DD]`` ->
  ``{"items": [...], "page": N, "total_pages": K}`` (53 records; a page past the end is an
  empty ``items``; ``per_page`` 1..100; bad parameters -> 400).
* v2: the same under ``/api/v2/items``; ``/api/v1/items`` -> 404 ``{"detail": "API v1 has
  been retired..."}``; ``/api/`` and ``/openapi.json`` name the v2 endpoint.
* broken: ``/api/v1/items`` answers 200 with ``items: []`` and ``total_pages: 0``.
"""

from __future__ import annotations

import math
from datetime import date
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
from amazoniax_dagster.devstack.demo_sites.markup import html_page

CATEGORIES = ("home", "kitchen", "office", "outdoor", "travel")


class JsonPagesSite(DemoSite):
    """JSON API with page-number pagination (?page=&per_page= -> items, page, total_pages)."""

    name: ClassVar[str] = "json_pages"
    source_type: ClassVar[SourceType] = "api"
    base_count: ClassVar[int] = 53
    per_page_default: ClassVar[int] = 20

    def make_record(self, index: int) -> Record:
        rng = self.rng(index)
        return {
            "id": 731001 + index * 3,
            "name": f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}",
            "category": rng.choice(CATEGORIES),
            "price": round(rng.uniform(4, 480), 2),
            "currency": "EUR",
            "in_stock": rng.random() > 0.2,
            "date": self.record_date(index).isoformat(),
        }

    def channel_config(self, origin: str) -> dict[str, Any]:
        return {
            "url": f"{origin}/api/",
            "channel_name": "Demo product API (page numbers)",
            "api_documentation_path": f"{origin}/openapi.json",
        }

    @property
    def api_version(self) -> str:
        return "v2" if self.variant == "v2" else "v1"

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/", self.home),
            Route("/api", self.index),
            Route("/api/", self.index),
            Route("/api/{version:str}/items", self.items),
            Route("/openapi.json", self.openapi),
        ]

    async def home(self, request: Request) -> Response:
        endpoint = f"/api/{self.api_version}/items"
        body = (
            "<p>Our product catalogue as JSON.</p>\n<ul>\n"
            f'<li><a href="/api/">API index</a></li>\n'
            f'<li><a href="{endpoint}?page=1&amp;per_page={self.per_page_default}">Items</a></li>\n'
            '<li><a href="/openapi.json">OpenAPI description</a></li>\n</ul>'
        )
        return html_page("Demo product API", body)

    async def index(self, request: Request) -> Response:
        base = str(request.base_url).rstrip("/")
        return JSONResponse(
            {
                "version": self.api_version,
                "items_url": f"{base}/api/{self.api_version}/items",
                "documentation_url": f"{base}/openapi.json",
            }
        )

    async def items(self, request: Request) -> Response:
        version = request.path_params["version"]
        if version not in ("v1", "v2"):
            return json_error(404, "Not Found")
        if version != self.api_version:
            if version == "v1":
                return json_error(404, "API v1 has been retired; see /api/ for the current one")
            return json_error(404, "Not Found")
        params = request.query_params
        try:
            page = int_param(params.get("page"), 1)
            per_page = int_param(params.get("per_page"), self.per_page_default, maximum=100)
            start = date.fromisoformat(params["from"]) if params.get("from") else None
            end = date.fromisoformat(params["to"]) if params.get("to") else None
        except ValueError as exc:
            return json_error(400, f"invalid query parameter: {exc}")
        if self.variant == "broken":
            return JSONResponse({"items": [], "page": page, "total_pages": 0})
        selected = [
            r
            for r in self.records()
            if (start is None or r["date"] >= start.isoformat())
            and (end is None or r["date"] <= end.isoformat())
        ]
        total_pages = math.ceil(len(selected) / per_page)
        chunk = selected[(page - 1) * per_page : page * per_page]
        return JSONResponse({"items": chunk, "page": page, "total_pages": total_pages})

    async def openapi(self, request: Request) -> Response:
        item_schema = {
            "type": "object",
            "properties": {
                "id": {"type": "integer"},
                "name": {"type": "string"},
                "category": {"type": "string"},
                "price": {"type": "number"},
                "currency": {"type": "string"},
                "in_stock": {"type": "boolean"},
                "date": {"type": "string", "format": "date"},
            },
        }
        parameters = [
            {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}},
            {
                "name": "per_page",
                "in": "query",
                "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
            },
            {"name": "from", "in": "query", "schema": {"type": "string", "format": "date"}},
            {"name": "to", "in": "query", "schema": {"type": "string", "format": "date"}},
        ]
        document = {
            "openapi": "3.0.3",
            "info": {"title": "Demo product API", "version": self.api_version},
            "servers": [{"url": str(request.base_url).rstrip("/")}],
            "paths": {
                f"/api/{self.api_version}/items": {
                    "get": {
                        "summary": "List items, one page at a time",
                        "parameters": parameters,
                        "responses": {
                            "200": {
                                "description": "One page of items",
                                "content": {
                                    "application/json": {
                                        "schema": {
                                            "type": "object",
                                            "properties": {
                                                "items": {"type": "array", "items": item_schema},
                                                "page": {"type": "integer"},
                                                "total_pages": {"type": "integer"},
                                            },
                                        }
                                    }
                                },
                            }
                        },
                    }
                }
            },
        }
        return JSONResponse(document)
