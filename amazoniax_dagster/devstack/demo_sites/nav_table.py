"""``nav_table``: a two-column HTML table paged by page-number links in a ``<nav>``.

Channel url: ``/codes``. 28 tariff codes (code, description), 10 a page: three pages linked
as ``<nav class="pagination"><a href="/codes?page=2">2</a>…</nav>`` (no "next" link, no
classes on the cells). A page past the end is 404.

* v1: ``<table><tr><th>Code</th><th>Description</th></tr><tr><td>TC-…</td><td>…</td></tr>``.
* v2: a definition list ``<dl class="codes"><dt>TC-…</dt><dd>…</dd></dl>`` and the pages move
  to ``/codes/page/N``; ``?page=`` is ignored (page 1 again).
* broken: "No codes published." and no table or nav.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from amazoniax_dagster.devstack.demo_sites.base import (
    ADJECTIVES,
    NOUNS,
    DemoSite,
    Record,
    SourceType,
    int_param,
)
from amazoniax_dagster.devstack.demo_sites.markup import escape, html_page


class NavTableSite(DemoSite):
    """Two-column HTML table (code, description) paged by numbered links in a <nav>."""

    name: ClassVar[str] = "nav_table"
    source_type: ClassVar[SourceType] = "html"
    base_count: ClassVar[int] = 28
    page_size: ClassVar[int] = 10

    def make_record(self, index: int) -> Record:
        rng = self.rng(index)
        return {
            "id": f"TC-{6100 + index * 23}",
            "description": f"{rng.choice(NOUNS)}s, {rng.choice(ADJECTIVES).lower()} finish",
            "date": self.record_date(index).isoformat(),
        }

    def channel_config(self, origin: str) -> dict[str, Any]:
        return {"url": f"{origin}/codes", "channel_name": "Demo tariff codes (two-column table)"}

    def routes(self) -> list[BaseRoute]:
        return [Route("/codes", self.codes), Route("/codes/page/{page:int}", self.codes)]

    async def codes(self, request: Request) -> Response:
        if self.variant == "broken":
            return html_page("Tariff codes", "<p>No codes published.</p>")
        v2 = self.variant == "v2"
        if "page" in request.path_params:
            if not v2:
                return PlainTextResponse("Page not found", status_code=404)
            page = int(request.path_params["page"])
        else:
            try:
                page = 1 if v2 else int_param(request.query_params.get("page"), 1)
            except ValueError:
                page = 0
        records = self.records()
        pages = max(1, math.ceil(len(records) / self.page_size))
        if not 1 <= page <= pages:
            return PlainTextResponse("Page not found", status_code=404)
        chunk = records[(page - 1) * self.page_size : page * self.page_size]
        links = " ".join(
            f'<span aria-current="page">{n}</span>'
            if n == page
            else f'<a href="{f"/codes/page/{n}" if v2 else f"/codes?page={n}"}">{n}</a>'
            for n in range(1, pages + 1)
        )
        if v2:
            rows = "".join(
                f"<dt>{escape(r['id'])}</dt><dd>{escape(r['description'])}</dd>\n" for r in chunk
            )
            data = f'<dl class="codes">\n{rows}</dl>'
        else:
            rows = "".join(
                f"<tr><td>{escape(r['id'])}</td><td>{escape(r['description'])}</td></tr>\n"
                for r in chunk
            )
            data = f"<table>\n<tr><th>Code</th><th>Description</th></tr>\n{rows}</table>"
        return html_page("Tariff codes", f'{data}\n<nav class="pagination">{links}</nav>')
