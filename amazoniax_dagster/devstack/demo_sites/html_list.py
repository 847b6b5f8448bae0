"""``html_list``: a server-rendered product catalogue with "Next" links.

Channel url: ``/catalog``. 45 products, 10 a page (5 pages); a page number past the end is 404.

* v1: ``/catalog?page=N``; records in ``<ul class="items"><li class="item"
  data-id="SKU-…">`` with ``<span class="name">``, ``<span class="price">$…</span>``,
  ``<time datetime>``; pager ``<a rel="next" href="/catalog?page=N+1">Next</a>``.
* v2: a redesign: ``<div class="product-grid"><article class="product-card"
  data-product-id="SKU-…">`` with ``h2.product-card__title``, ``p.product-card__price``
  ("€…"); the page parameter is ``?p=N``; the next link is ``<a class="pagination__next"
  aria-label="Next page" href="/catalog?p=N+1">Next ›</a>`` (no ``rel``). ``?page=`` is
  ignored (page 1 again).
* broken: ``/catalog`` answers 200 with "No products found." and no items or pager.
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
from amazoniax_dagster.devstack.demo_sites.markup import escape, html_page, long_date, money


class HtmlListSite(DemoSite):
    """Server-rendered HTML list (li.item[data-id], name, price) paged by rel=next links."""

    name: ClassVar[str] = "html_list"
    source_type: ClassVar[SourceType] = "html"
    base_count: ClassVar[int] = 45
    page_size: ClassVar[int] = 10

    def make_record(self, index: int) -> Record:
        rng = self.rng(index)
        return {
            "id": f"SKU-{40017 + index * 13}",
            "name": f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}",
            "price": round(rng.uniform(5, 350), 2),
            "date": self.record_date(index).isoformat(),
        }

    def channel_config(self, origin: str) -> dict[str, Any]:
        return {"url": f"{origin}/catalog", "channel_name": "Demo product catalogue (HTML)"}

    def routes(self) -> list[BaseRoute]:
        return [Route("/", self.home), Route("/catalog", self.catalog)]

    async def home(self, request: Request) -> Response:
        return html_page("Demo Store", '<p><a href="/catalog">Browse the catalogue</a></p>')

    async def catalog(self, request: Request) -> Response:
        if self.variant == "broken":
            return html_page("Catalogue", '<p class="empty">No products found.</p>')
        param = "p" if self.variant == "v2" else "page"
        records = self.records()
        pages = max(1, math.ceil(len(records) / self.page_size))
        try:
            page = int_param(request.query_params.get(param), 1)
        except ValueError:
            page = 0
        if not 1 <= page <= pages:
            return PlainTextResponse("Page not found", status_code=404)
        chunk = records[(page - 1) * self.page_size : page * self.page_size]
        if self.variant == "v2":
            body = _v2_markup(chunk, page, pages)
        else:
            body = _v1_markup(chunk, page, pages)
        return html_page("Catalogue", body)


def _v1_markup(chunk: list[Record], page: int, pages: int) -> str:
    items = "\n".join(
        f'<li class="item" data-id="{escape(r["id"])}"><span class="name">'
        f'{escape(r["name"])}</span> <span class="price">{money(r["price"])}</span> '
        f'<time datetime="{r["date"]}">{long_date(r["date"])}</time></li>'
        for r in chunk
    )
    pager = []
    if page > 1:
        pager.append(f'<a rel="prev" href="/catalog?page={page - 1}">Previous</a>')
    pager.append(f'<span class="current">Page {page} of {pages}</span>')
    if page < pages:
        pager.append(f'<a rel="next" href="/catalog?page={page + 1}">Next</a>')
    return f'<ul class="items">\n{items}\n</ul>\n<nav class="pager">{" ".join(pager)}</nav>'


def _v2_markup(chunk: list[Record], page: int, pages: int) -> str:
    cards = "\n".join(
        f'<article class="product-card" data-product-id="{escape(r["id"])}">'
        f'<h2 class="product-card__title">{escape(r["name"])}</h2>'
        f'<p class="product-card__price">{money(r["price"], "€")}</p>'
        f'<p class="product-card__meta">Added {long_date(r["date"])}</p></article>'
        for r in chunk
    )
    pager = []
    if page > 1:
        pager.append(
            f'<a class="pagination__prev" aria-label="Previous page" href="/catalog?p={page - 1}">'
            "‹ Prev</a>"
        )
    if page < pages:
        pager.append(
            f'<a class="pagination__next" aria-label="Next page" href="/catalog?p={page + 1}">'
            "Next ›</a>"
        )
    return (
        f'<div class="product-grid">\n{cards}\n</div>\n'
        f'<nav class="pagination">{" ".join(pager)}</nav>'
    )
