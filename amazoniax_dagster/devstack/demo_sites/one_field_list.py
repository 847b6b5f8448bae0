"""``one_field_list``: a JSON API whose records have a single field, paged by Link headers.

Channel url: ``/api/report-ids``. 26 report ids, 10 a page, so three pages.

* v1: ``GET /api/report-ids?page=N`` -> ``[{"id": "RPT-…"}, ...]`` with a
  ``Link: <…?page=N+1>; rel="next"`` header until the last page (a page past the end is ``[]``).
* v2: ``GET /api/report-ids?page=N`` -> ``{"reports": ["RPT-…", ...], "next_page": N+1 | null}``
  (plain strings, no Link header).
* broken: ``[]`` and no Link header.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from amazoniax_dagster.devstack.demo_sites.base import (
    DemoSite,
    Record,
    SourceType,
    int_param,
    json_error,
)


class OneFieldListSite(DemoSite):
    """JSON list of one-field records ([{"id": ...}]) paged by Link rel="next" headers."""

    name: ClassVar[str] = "one_field_list"
    source_type: ClassVar[SourceType] = "api"
    base_count: ClassVar[int] = 26
    page_size: ClassVar[int] = 10

    def make_record(self, index: int) -> Record:
        # the date is the ground truth's own; the site serves only the id
        number = 20400 + index * 90 + self.rng(index).randint(0, 89)
        return {"id": f"RPT-{number:06d}", "date": self.record_date(index).isoformat()}

    def channel_config(self, origin: str) -> dict[str, Any]:
        return {"url": f"{origin}/api/report-ids", "channel_name": "Demo report ids (one field)"}

    def routes(self) -> list[BaseRoute]:
        return [Route("/api/report-ids", self.report_ids)]

    async def report_ids(self, request: Request) -> Response:
        try:
            page = int_param(request.query_params.get("page"), 1)
        except ValueError as exc:
            return json_error(400, f"invalid page: {exc}")
        records = self.ground_truth()
        pages = math.ceil(len(records) / self.page_size)
        chunk = [r["id"] for r in records[(page - 1) * self.page_size : page * self.page_size]]
        if self.variant == "v2":
            following = page + 1 if page < pages else None
            return JSONResponse({"reports": chunk, "next_page": following})
        headers = {}
        if page < pages:
            url = request.url.include_query_params(page=page + 1)
            headers["Link"] = f'<{url}>; rel="next"'
        return JSONResponse([{"id": i} for i in chunk], headers=headers)
