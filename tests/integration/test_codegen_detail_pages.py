"""Generation on a list whose items link detail pages that hold the data files: a paged
catalogue of products, each product page linking a PDF datasheet (relative href) and a JSON
spec (another path). Another shape than the holdout's one-page publications -> CSV."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest

from amazoniax_dagster.core.messages import WebSourceConfig
from amazoniax_dagster.core.netpolicy import NetworkPolicy
from amazoniax_dagster.fetchers.base import FetchContext, FetchLimits
from fetcher_codegen.deterministic import generate_deterministic
from fetcher_codegen.prove import run
from tests.integration.test_codegen_unseen_patterns import Reply, _html, _json, serve

pytestmark = pytest.mark.integration

LOOPBACK = NetworkPolicy(allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),))
PRODUCTS = [f"drill-{n}" for n in ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf")]
PER_PAGE = 3


def catalogue(path: str, query: dict[str, str]) -> Reply:
    """``/catalogue?page=N``, three product cards a page and "Next »" while more follow."""
    if path == "/catalogue":
        page = int(query.get("page", "1"))
        chunk = PRODUCTS[(page - 1) * PER_PAGE : page * PER_PAGE]
        cards = "".join(
            f'<div class="card"><h2>{slug.title()}</h2>'
            f'<a class="more" href="/catalogue/products/{slug}/">Details</a></div>'
            for slug in chunk
        )
        more = page * PER_PAGE < len(PRODUCTS)
        pager = f'<a rel="next" href="/catalogue?page={page + 1}">Next »</a>' if more else ""
        nav = '<nav><a href="/">Home</a><a href="/about">About</a></nav>'
        return _html(f"{nav}<h1>Products</h1><section class='grid'>{cards}</section>{pager}")
    for slug in PRODUCTS:
        if path == f"/catalogue/products/{slug}/":
            spec = f"/api/specs/{slug}.json"
            links = f'<a href="datasheet.pdf">Datasheet</a> <a href="{spec}">Spec</a>'
            return _html(f"<h1>{slug}</h1><p>A drill.</p>{links}<a href='/catalogue'>Back</a>")
        if path == f"/catalogue/products/{slug}/datasheet.pdf":
            return 200, "application/pdf", b"%PDF-1.4\n% " + slug.encode() + b"\n%%EOF\n"
        if path == f"/api/specs/{slug}.json":
            return _json({"sku": slug, "watts": 700})
    return _html("not found", 404)


def test_every_detail_pages_files_are_fetched(tmp_path: Path) -> None:
    with serve(catalogue) as origin:
        config = WebSourceConfig.model_validate(
            {"url": origin + "/catalogue", "channel_name": "product datasheets"}
        )
        candidate = generate_deterministic(config, tmp_path / "capture", policy=LOOPBACK)
        assert candidate.proof.ok, candidate.proof
        out = tmp_path / "out"
        out.mkdir()
        ctx = FetchContext(config, out, LOOPBACK, limits=FetchLimits(max_pages=50))
        report = run(candidate.recipe_text, ctx)
    specs = {json.loads(p.read_text())["sku"] for p in out.rglob("*.json")}
    sheets = {p.read_bytes().split(b"\n")[1][2:].decode() for p in out.rglob("*.pdf")}
    assert specs == set(PRODUCTS), candidate.recipe_text
    assert sheets == set(PRODUCTS), candidate.recipe_text
    assert len(report.files) == 2 * len(PRODUCTS)
