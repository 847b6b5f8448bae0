"""Pages reachable only through a sitemap: the explorer reads it and the recipe follows it.

A different shape from the ``sitemap_pages`` demo site (robots.txt -> sitemap index -> two
sitemaps): no robots.txt, one gzipped-free ``/sitemap.xml`` urlset that also lists pages that
are not records (home, about), product pages one record each in ``/catalog/item/``, and a home
page that links two of them.
"""

from __future__ import annotations

import ipaddress
import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from amazoniax_dagster.core.messages import WebSourceConfig
from amazoniax_dagster.core.netpolicy import NetworkPolicy
from amazoniax_dagster.fetchers.base import FetchContext
from fetcher_codegen.deterministic import generate_deterministic
from fetcher_codegen.prove import run
from tests.integration.recipe_sites import serve

pytestmark = [
    pytest.mark.skipif(shutil.which("chromium") is None, reason="needs chromium"),
    pytest.mark.timeout(120),
]
LOOPBACK = NetworkPolicy(allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),))
PRODUCTS = {f"sku-{n:03d}": (f"Lamp model {n}", 10 + 3 * n) for n in range(1, 10)}


def _page(title: str, body: str) -> HTMLResponse:
    nav = '<nav><a href="/">Home</a> <a href="/about">About</a></nav>'
    return HTMLResponse(f"<html><head><title>{title}</title></head><body>{nav}{body}</body></html>")


def make_app() -> Starlette:
    async def home(request: Request) -> Response:
        links = "".join(f'<p><a href="/catalog/item/{sku}">New!</a></p>' for sku in PRODUCTS)
        return _page("Lamps", f"<h1>Lamps</h1>{links[: 2 * len(links) // len(PRODUCTS)]}")

    async def about(request: Request) -> Response:
        return _page("About", "<h1>About us</h1><p>We sell lamps.</p>")

    async def sitemap(request: Request) -> Response:
        base = str(request.base_url).rstrip("/")
        paths = ["/", "/about", *(f"/catalog/item/{sku}" for sku in PRODUCTS)]
        urls = "".join(f"<url><loc>{base}{p}</loc></url>" for p in paths)
        xml = f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>'
        return Response(xml, media_type="text/xml")

    async def item(request: Request) -> Response:
        sku = request.path_params["sku"]
        if sku not in PRODUCTS:
            return PlainTextResponse("Not Found", status_code=404)
        name, price = PRODUCTS[sku]
        body = f'<div class="product"><h2>{name}</h2><span class="sku">{sku}</span>'
        return _page(name, f"{body}<span class='price'>{price} EUR</span></div>")

    return Starlette(
        routes=[
            Route("/", home),
            Route("/about", about),
            Route("/sitemap.xml", sitemap),
            Route("/catalog/item/{sku}", item),
        ]
    )


@pytest.fixture(scope="module")
def origin() -> Iterator[str]:
    with serve(make_app()) as url:
        yield url


def test_pages_listed_only_in_a_sitemap_are_all_fetched(origin: str, tmp_path: Path) -> None:
    config = WebSourceConfig(url=f"{origin}/", channel_name="Lamps (sitemap)")
    candidate = generate_deterministic(config, tmp_path / "work", policy=LOOPBACK)

    assert candidate.kind == "http"
    assert candidate.proof.ok, candidate.proof.describe()
    step = yaml.safe_load(candidate.recipe_text)["steps"][0]
    assert step["request"]["url"] == "/sitemap.xml"  # no robots.txt: the sitemap itself
    (save,) = step["save"]
    assert save["type"] == "sitemap"

    out = tmp_path / "out"
    out.mkdir()
    report = run(candidate.recipe_text, FetchContext(config, out, LOOPBACK, date.today()))
    names = sorted(f.relative_path for f in report.files)
    assert names == sorted(f"{sku}.html" for sku in PRODUCTS)  # not the home or about page
    text = "\n".join((out / name).read_text() for name in names)
    assert [sku for sku in PRODUCTS if sku not in text] == []
