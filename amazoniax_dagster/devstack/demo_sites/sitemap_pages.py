"""``sitemap_pages``: one HTML page per record, listed only in the site's XML sitemaps.

Channel url: ``/``: a home page that links three "featured" stations, no list. ``/robots.txt``
names ``Sitemap: /sitemap.xml``, a sitemap index of two child sitemaps with 12 station pages
each (24 stations). Each station page holds one record in ``<article class="station"
data-id="ST-…">``.

* v1: ``/sitemap.xml`` -> ``/sitemaps/stations-1.xml``, ``/sitemaps/stations-2.xml`` -> pages
  ``/stations/<id>``.
* v2: robots.txt names ``/sitemap_index.xml`` (``/sitemap.xml`` is 404), the pages move to
  ``/s/<id>`` and the record sits in ``<section class="station-detail" data-station-id>``.
* broken: the sitemaps list no pages and the station pages are 404.
"""

from __future__ import annotations

from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from amazoniax_dagster.devstack.demo_sites.base import CITIES, DemoSite, Record, SourceType
from amazoniax_dagster.devstack.demo_sites.markup import escape, html_page

SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
PER_SITEMAP = 12


class SitemapPagesSite(DemoSite):
    """One HTML page per record, found only through robots.txt -> sitemap index -> sitemaps."""

    name: ClassVar[str] = "sitemap_pages"
    source_type: ClassVar[SourceType] = "html"
    base_count: ClassVar[int] = 24

    def make_record(self, index: int) -> Record:
        rng = self.rng(index)
        return {
            "id": f"ST-{rng.choice(CITIES)[:2].upper()}{3300 + index * 29}",
            "city": rng.choice(CITIES),
            "capacity": rng.randint(8, 60),
            "date": self.record_date(index).isoformat(),
        }

    def channel_config(self, origin: str) -> dict[str, Any]:
        return {"url": f"{origin}/", "channel_name": "Demo bike stations (sitemap pages)"}

    @property
    def index_path(self) -> str:
        return "/sitemap_index.xml" if self.variant == "v2" else "/sitemap.xml"

    def page_path(self, record_id: str) -> str:
        return f"/s/{record_id}" if self.variant == "v2" else f"/stations/{record_id}"

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/", self.home),
            Route("/robots.txt", self.robots),
            Route("/sitemap.xml", self.sitemap_index),
            Route("/sitemap_index.xml", self.sitemap_index),
            Route("/sitemaps/stations-{part:int}.xml", self.sitemap),
            Route("/stations/{id:str}", self.station),
            Route("/s/{id:str}", self.station),
        ]

    def _parts(self) -> list[list[Record]]:
        records = self.ground_truth()
        return [records[i : i + PER_SITEMAP] for i in range(0, len(records), PER_SITEMAP)] or [[]]

    async def home(self, request: Request) -> Response:
        featured = "".join(
            f'<li><a href="{self.page_path(r["id"])}">{escape(r["city"])}</a></li>'
            for r in self.ground_truth()[-3:]
        )
        return html_page("Bike stations", f"<p>Featured stations:</p><ul>{featured}</ul>")

    async def robots(self, request: Request) -> Response:
        base = str(request.base_url).rstrip("/")
        return PlainTextResponse(f"User-agent: *\nAllow: /\nSitemap: {base}{self.index_path}\n")

    async def sitemap_index(self, request: Request) -> Response:
        if request.url.path != self.index_path:
            return PlainTextResponse("Not Found", status_code=404)
        base = str(request.base_url).rstrip("/")
        entries = "".join(
            f"<sitemap><loc>{base}/sitemaps/stations-{n}.xml</loc></sitemap>\n"
            for n in range(1, len(self._parts()) + 1)
        )
        return _xml(f'<sitemapindex xmlns="{SITEMAP_NS}">\n{entries}</sitemapindex>')

    async def sitemap(self, request: Request) -> Response:
        parts = self._parts()
        part = request.path_params["part"]
        if not 1 <= part <= len(parts):
            return PlainTextResponse("Not Found", status_code=404)
        base = str(request.base_url).rstrip("/")
        urls = "".join(
            f"<url><loc>{base}{self.page_path(r['id'])}</loc><lastmod>{r['date']}</lastmod></url>\n"
            for r in parts[part - 1]
        )
        return _xml(f'<urlset xmlns="{SITEMAP_NS}">\n{urls}</urlset>')

    async def station(self, request: Request) -> Response:
        found = {r["id"]: r for r in self.ground_truth()}.get(request.path_params["id"])
        if found is None or request.url.path != self.page_path(found["id"]):
            return PlainTextResponse("Not Found", status_code=404)
        details = (
            f"<h2>{escape(found['city'])}</h2><p>Docks: {found['capacity']}</p>"
            f'<p>Opened <time datetime="{found["date"]}">{found["date"]}</time></p>'
        )
        if self.variant == "v2":
            body = f'<section class="station-detail" data-station-id="{found["id"]}">{details}'
            body += "</section>"
        else:
            body = f'<article class="station" data-id="{found["id"]}">{details}</article>'
        return html_page(f"Station {found['id']}", body)


def _xml(body: str) -> Response:
    text = f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'
    return Response(text, media_type="application/xml")
