"""A changes API for incremental tests: ``GET /api/changes?updated_since=&page=`` answers the
records updated strictly after ``updated_since`` (ISO 8601), oldest first, 10 a page, with
``has_more``. Record ``i`` was updated ``i`` hours after a fixed start, so records added with
``advance()`` are always the newest; the request log shows what each job asked for."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from amazoniax_dagster.devstack.demo_sites.base import (
    NOUNS,
    DemoSite,
    Record,
    SourceType,
    int_param,
    json_error,
)

PAGE_SIZE = 10


class ChangesSite(DemoSite):
    """JSON changes API filtered by ?updated_since= (ISO 8601), paged by ?page= with has_more."""

    name: ClassVar[str] = "changes_api"
    source_type: ClassVar[SourceType] = "api"
    base_count: ClassVar[int] = 30

    def updated_at(self, index: int) -> datetime:
        start = datetime.combine(self.anchor, time(), UTC) - timedelta(days=30)
        return start + timedelta(hours=index)

    def make_record(self, index: int) -> Record:
        return {
            "id": f"CHG-{5000 + index}",
            "title": f"{self.rng(index).choice(NOUNS)} changed",
            "updated_at": self.updated_at(index).isoformat().replace("+00:00", "Z"),
        }

    def channel_config(self, origin: str) -> dict[str, Any]:
        return {"url": f"{origin}/api/changes", "channel_name": "Demo changes (since API)"}

    def routes(self) -> list[BaseRoute]:
        return [Route("/api/changes", self.changes)]

    async def changes(self, request: Request) -> Response:
        params = request.query_params
        try:
            page = int_param(params.get("page"), 1)
            since = (
                datetime.fromisoformat(params["updated_since"])
                if "updated_since" in params
                else None
            )
        except ValueError as exc:
            return json_error(400, f"invalid query parameter: {exc}")
        records = [
            r
            for r in self.ground_truth()
            if since is None or datetime.fromisoformat(r["updated_at"]) > since
        ]
        chunk = records[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
        return JSONResponse(
            {"items": chunk, "page": page, "has_more": page * PAGE_SIZE < len(records)}
        )
