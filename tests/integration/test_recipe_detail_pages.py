"""The engine's ``links`` save with ``follow``: a list's detail pages opened, their files saved
once each, other hosts left alone, and the number of detail pages bounded by ``max_pages``."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from amazoniax_dagster.core.messages import WebSourceConfig
from amazoniax_dagster.core.netpolicy import NetworkPolicy
from amazoniax_dagster.fetchers.base import FetchContext, FetchLimits
from amazoniax_dagster.fetchers.recipe import load_recipe, run_recipe
from tests.integration.test_codegen_unseen_patterns import Reply, _html, serve

pytestmark = pytest.mark.integration

LOOPBACK = NetworkPolicy(allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),))
NOTICES = ["n1", "n2", "n3", "n4"]


def notices(path: str, query: dict[str, str]) -> Reply:
    """A list of notices; each links its own CSV and the shared terms PDF."""
    if path == "/notices":
        items = "".join(f'<li><a href="/notices/{n}">Notice {n}</a></li>' for n in NOTICES)
        away = '<li><a href="http://localhost:9/notices/elsewhere">Mirror</a></li>'
        return _html(f"<ul>{items}{away}</ul>")
    for n in NOTICES:
        if path == f"/notices/{n}":
            return _html(f'<a href="/data/{n}.csv">CSV</a> <a href="/data/terms.pdf">Terms</a>')
        if path == f"/data/{n}.csv":
            return 200, "text/csv", f"id\n{n}\n".encode()
    if path == "/data/terms.pdf":
        return 200, "application/pdf", b"%PDF-1.4 terms"
    return _html("not found", 404)


RECIPE = """
version: 1
kind: http
name: notices
rate_limit: 1000/second
steps:
  - name: notices
    request: {url: /notices}
    save:
      - type: links
        select: {type: html_links, pattern: '/notices/[^/]+$'}
        follow:
          select: {type: html_links, pattern: '\\.(csv|pdf)$'}
          save_page: true
"""


def fetch(tmp_path: Path, origin: str, max_pages: int) -> tuple[list[str], list[str]]:
    config = WebSourceConfig.model_validate({"url": origin + "/notices"})
    ctx = FetchContext(config, tmp_path, LOOPBACK, limits=FetchLimits(max_pages=max_pages))
    report = run_recipe(load_recipe(RECIPE), ctx)
    return sorted(f.relative_path for f in report.files), report.warnings


def test_every_detail_page_is_opened_and_each_file_saved_once(tmp_path: Path) -> None:
    with serve(notices) as origin:
        files, warnings = fetch(tmp_path, origin, max_pages=50)
    pages = [f"notices_detail_{n}.html" for n in range(1, 5)]
    assert files == sorted([*(f"{n}.csv" for n in NOTICES), "terms.pdf", *pages])
    assert warnings == []


def test_detail_pages_are_bounded_by_max_pages_with_a_warning(tmp_path: Path) -> None:
    with serve(notices) as origin:
        files, warnings = fetch(tmp_path, origin, max_pages=2)
    assert sorted(f for f in files if f.endswith(".csv")) == ["n1.csv", "n2.csv"]
    assert len(warnings) == 1 and "4 detail pages" in warnings[0], warnings
