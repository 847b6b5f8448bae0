"""The completeness proof: a capture that saw one page of three is not enough to publish.

The site (tests/integration/recipe_sites.py) pages its items three ways: a ``next`` URL in the
body, a ``Link: rel=next`` header and a paged Atom feed. The capture here holds the first page
only, as an explorer that never clicked "next" would record it.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import httpx
import pytest
import yaml

from amazoniax_dagster.core.messages import WebSourceConfig
from amazoniax_dagster.core.netpolicy import NetworkPolicy
from fetcher_codegen.har import entries_from_har
from fetcher_codegen.pagination import Page, infer
from fetcher_codegen.prove import expected_values, prove
from fetcher_codegen.records import find_records
from tests.integration.recipe_sites import ITEMS, SiteState, make_app, serve

LOOPBACK = NetworkPolicy(allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),))


@pytest.fixture(scope="module")
def origin() -> Iterator[str]:
    with serve(make_app(SiteState())) as url:
        yield url


def first_page(origin: str, path: str) -> Page:
    """The one page a capture saw, recorded from the live site as a HAR entry."""
    reply = httpx.get(origin + path)
    har = {
        "log": {
            "entries": [
                {
                    "startedDateTime": "2026-02-10T10:00:00.000Z",
                    "_resourceType": "fetch",
                    "request": {"method": "GET", "url": origin + path, "headers": []},
                    "response": {
                        "status": reply.status_code,
                        "headers": [{"name": k, "value": v} for k, v in reply.headers.items()],
                        "content": {"mimeType": "application/json", "text": reply.text},
                    },
                }
            ]
        }
    }
    entry = entries_from_har(har)[0]
    return Page(entry, find_records(entry))


def recipe(path: str, records: str, paginate: dict[str, object] | None) -> str:
    step: dict[str, object] = {
        "name": "items",
        "request": {"url": path},
        "records": records,
        "save": [{"type": "body", "name": "items_${page}.${ext}"}],
    }
    if paginate:
        step["paginate"] = paginate
    doc = {"version": 1, "kind": "http", "name": "t", "rate_limit": "1000/second"}
    return yaml.safe_dump({**doc, "steps": [step]})


@pytest.mark.parametrize(("path", "records"), [("/next-url", "results"), ("/linked", "items")])
def test_one_page_of_three_captured_the_fetcher_fetches_all_three_or_is_refused(
    origin: str, path: str, records: str
) -> None:
    page = first_page(origin, path)
    assert page.records is not None and page.records.count == 2
    expected = expected_values([page.records])
    config = WebSourceConfig(url=f"{origin}/")
    run_date = date(2026, 2, 10)

    stops_at_one = prove(
        recipe(path, records, None), config, expected, policy=LOOPBACK, run_date=run_date
    )
    assert stops_at_one.ok is False
    assert stops_at_one.missing_count == 0  # it reproduces the capture, yet is incomplete
    assert stops_at_one.unfollowed and "next" in stops_at_one.unfollowed[0]
    assert stops_at_one.describe()["complete"] is False

    pagination, _ = infer([page])
    assert pagination is not None
    follows = recipe(path, records, pagination.config)
    proved = prove(follows, config, expected, policy=LOOPBACK, run_date=run_date, out_dir=None)
    assert proved.ok, proved.describe()
    assert proved.describe()["complete"] is True
    assert len(proved.files) == 3


def test_every_item_of_the_three_pages_is_fetched(origin: str, tmp_path: Path) -> None:
    page = first_page(origin, "/next-url")
    pagination, _ = infer([page])
    assert pagination is not None
    text = recipe("/next-url", "results", pagination.config)
    proved = prove(
        text,
        WebSourceConfig(url=f"{origin}/"),
        [],
        policy=LOOPBACK,
        run_date=date(2026, 2, 10),
        out_dir=tmp_path,
    )
    fetched = [
        item
        for name in sorted(proved.files)
        for item in json.loads((tmp_path / name).read_text())["results"]
    ]
    assert fetched == ITEMS
