"""The demo sites against real HTTP clients: every site serves its ground truth in v1, changes
as documented in v2 at the same address, serves no records when broken, fails on demand,
and starts and stops fast without leaving threads behind."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import Any

import feedparser
import httpx
import pytest
from defusedxml import ElementTree as SafeET

from amazoniax_dagster.devstack.demo_sites import (
    CATALOG,
    VARIANTS,
    DemoSite,
    RunningSite,
    serve,
    serve_all,
    start,
)
from amazoniax_dagster.devstack.demo_sites.token_api import TokenApiSite

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

ANCHOR = date(2026, 11, 20)
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="module")
def sites() -> Iterator[dict[str, RunningSite]]:
    with serve_all([spec.factory(anchor=ANCHOR) for spec in CATALOG.values()]) as running:
        yield running


@pytest.fixture(autouse=True)
def _fresh(request: pytest.FixtureRequest) -> None:
    if "sites" in request.fixturenames:
        for running in request.getfixturevalue("sites").values():
            running.site.reset()


def client(running: RunningSite) -> httpx.Client:
    return httpx.Client(base_url=running.origin, timeout=5.0)


def ids(records: list[dict[str, Any]]) -> list[str]:
    return [str(r["id"]) for r in records]


def log_in(
    http: httpx.Client, config: dict[str, Any], password: str | None = None
) -> httpx.Response:
    credentials = config["login_credentials"]
    form = http.get("/login")
    assert form.status_code == 200
    token = CSRF.search(form.text)
    assert token, "login form without a CSRF input"
    return http.post(
        "/login",
        data={
            "username": credentials["username"],
            "password": password if password is not None else credentials["password"],
            "csrf_token": token[1],
        },
    )


def bearer(http: httpx.Client, config: dict[str, Any]) -> dict[str, str]:
    keys = config["auth_keys"]
    response = http.post(
        keys["token_url"],
        data={
            "grant_type": "client_credentials",
            "client_id": keys["client_id"],
            "client_secret": keys["client_secret"],
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["expires_in"] == 3600
    return {"Authorization": f"Bearer {body['access_token']}"}


# -- one fetcher per site, written against the documented v1 layout -----------------------


def fetch_json_pages(running: RunningSite) -> list[dict[str, Any]]:
    with client(running) as http:
        items_url = http.get("/api/").json()["items_url"]
        out: list[dict[str, Any]] = []
        page = 1
        while True:
            body = http.get(items_url, params={"page": page, "per_page": 20}).raise_for_status()
            data = body.json()
            out += data["items"]
            if page >= data["total_pages"]:
                return out
            page += 1


def fetch_login_cursor(running: RunningSite) -> list[dict[str, Any]]:
    with client(running) as http:
        assert log_in(http, running.channel_config()).status_code == 303
        out: list[dict[str, Any]] = []
        params: dict[str, str] = {}
        for _ in range(100):
            body = http.get("/api/orders", params=params).raise_for_status().json()
            out += body["data"]
            if body["next_cursor"] is None:
                return out
            params = {"after": body["next_cursor"]}
        raise AssertionError("cursor pagination did not end")


def fetch_token_api(running: RunningSite) -> list[dict[str, Any]]:
    config = running.channel_config()
    with client(running) as http:
        headers = bearer(http, config)
        out: list[dict[str, Any]] = []
        while True:
            body = (
                http.get(config["url"], params={"offset": len(out), "limit": 25}, headers=headers)
                .raise_for_status()
                .json()
            )
            out += body["results"]
            if not body["results"] or len(out) >= body["count"]:
                return out


def fetch_csv_links(running: RunningSite) -> list[dict[str, Any]]:
    with client(running) as http:
        log_in(http, running.channel_config())
        page = http.get("/reports").raise_for_status().text
        links = re.findall(r'href="(/files/[^"]+\.csv)"', page)
        assert len(links) == 8
        out: list[dict[str, Any]] = []
        for link in links:
            response = http.get(link).raise_for_status()
            assert response.headers["content-type"].startswith("text/csv")
            name = link.rsplit("/", 1)[1]
            assert f'filename="{name}"' in response.headers["content-disposition"]
            reader = csv.DictReader(io.StringIO(response.text))
            assert reader.fieldnames == ["id", "date", "product", "quantity", "amount"]
            out += list(reader)
        return out


def fetch_rss_feed(running: RunningSite) -> list[dict[str, Any]]:
    with client(running) as http:
        home = http.get("/").raise_for_status().text
        link = re.search(
            r'<link rel="alternate" type="application/rss\+xml"[^>]*href="([^"]+)"', home
        )
        assert link
        feed = feedparser.parse(http.get(link[1]).raise_for_status().content)
        assert not feed.bozo, feed.get("bozo_exception")
        return [{"id": entry.id, "title": entry.title} for entry in feed.entries]


def fetch_html_list(running: RunningSite) -> list[dict[str, Any]]:
    with client(running) as http:
        path: str | None = "/catalog"
        out: list[dict[str, Any]] = []
        while path:
            page = http.get(path).raise_for_status().text
            out += [{"id": i} for i in re.findall(r'<li class="item" data-id="([^"]+)"', page)]
            following = re.search(r'<a rel="next" href="([^"]+)"', page)
            path = following[1] if following else None
        return out


def fetch_js_xhr(running: RunningSite) -> list[dict[str, Any]]:
    with client(running) as http:
        page = http.get("/").raise_for_status().text
        assert '"/api/search"' in page and "<script>" in page
        out: list[dict[str, Any]] = []
        number = 1
        while True:
            body = http.get("/api/search", params={"page": number}).raise_for_status().json()
            out += body["results"]
            if number >= body["total_pages"]:
                return out
            number += 1


def fetch_infinite_scroll(running: RunningSite) -> list[dict[str, Any]]:
    with client(running) as http:
        page = http.get("/").raise_for_status().text
        assert "IntersectionObserver" in page and "/api/feed" in page
        out: list[dict[str, Any]] = []
        for _ in range(100):
            body = http.get("/api/feed", params={"offset": len(out), "limit": 10})
            items = body.raise_for_status().json()["items"]
            if not items:
                return out
            out += items
        raise AssertionError("the feed did not end")


def fetch_offset_api(running: RunningSite) -> list[dict[str, Any]]:
    with client(running) as http:
        out: list[dict[str, Any]] = []
        while True:
            body = http.get("/api/v1/products", params={"offset": len(out), "limit": 10})
            data = body.raise_for_status().json()
            out += data["products"]
            if not data["products"] or len(out) >= data["total"]:
                return out


def fetch_atom_paged(running: RunningSite) -> list[dict[str, Any]]:
    with client(running) as http:
        home = http.get("/").raise_for_status().text
        link = re.search(r'type="application/atom\+xml"[^>]*href="([^"]+)"', home)
        assert link
        url: str | None = link[1]
        out: list[dict[str, Any]] = []
        while url:
            feed = feedparser.parse(http.get(url).raise_for_status().content)
            assert not feed.bozo, feed.get("bozo_exception")
            out += [{"id": entry.id, "title": entry.title} for entry in feed.entries]
            url = next((li.href for li in feed.feed.get("links", []) if li.rel == "next"), None)
        return out


def fetch_keyset_scroll(running: RunningSite) -> list[dict[str, Any]]:
    with client(running) as http:
        assert 'const PARAM = "after"' in http.get("/").raise_for_status().text
        out: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": 10}
        for _ in range(100):
            rows = http.get("/api/listings", params=params).raise_for_status().json()["listings"]
            out += rows
            if len(rows) < 10:
                return out
            params["after"] = rows[-1]["id"]
        raise AssertionError("the list did not end")


def fetch_one_field_list(running: RunningSite) -> list[dict[str, Any]]:
    with client(running) as http:
        out: list[dict[str, Any]] = []
        url: str | None = running.channel_config()["url"]
        while url:
            response = http.get(url).raise_for_status()
            assert all(set(row) == {"id"} for row in response.json())
            out += response.json()
            url = response.links.get("next", {}).get("url")
        return out


def nav_table_rows(page: str) -> list[dict[str, Any]]:
    cells = re.findall(r"<tr><td>([^<]+)</td><td>([^<]+)</td></tr>", page)
    return [{"id": code, "description": text} for code, text in cells]


def fetch_nav_table(running: RunningSite) -> list[dict[str, Any]]:
    with client(running) as http:
        first = http.get("/codes").raise_for_status().text
        out = nav_table_rows(first)
        for link in re.findall(r'<nav class="pagination">.*?</nav>', first)[:1]:
            for href in re.findall(r'href="([^"]+)"', link):
                out += nav_table_rows(http.get(href).raise_for_status().text)
        return out


def graphql_page(http: httpx.Client, after: str | None) -> dict[str, Any]:
    query = (
        "query Shipments($first: Int, $after: String) { shipments(first: $first, after: $after) "
        "{ edges { cursor node { id reference status destination date } } "
        "pageInfo { endCursor hasNextPage } } }"
    )
    body = {"query": query, "variables": {"first": 10, "after": after}}
    data: dict[str, Any] = http.post("/graphql", json=body).raise_for_status().json()
    return data


def fetch_graphql_relay(running: RunningSite) -> list[dict[str, Any]]:
    with client(running) as http:
        assert 'fetch("/graphql"' in http.get("/").raise_for_status().text
        out: list[dict[str, Any]] = []
        after: str | None = None
        for _ in range(100):
            connection = graphql_page(http, after)["data"]["shipments"]
            out += [edge["node"] for edge in connection["edges"]]
            if not connection["pageInfo"]["hasNextPage"]:
                return out
            after = connection["pageInfo"]["endCursor"]
        raise AssertionError("the connection did not end")


def table_rows(page: str) -> list[dict[str, Any]]:
    cells = re.findall(r"<tr><td>(INV-[^<]+)</td><td>([^<]+)</td>", page)
    return [{"id": invoice, "customer": customer} for invoice, customer in cells]


def fetch_login_table(running: RunningSite) -> list[dict[str, Any]]:
    with client(running) as http:
        assert log_in(http, running.channel_config()).status_code == 303
        path: str | None = "/members/invoices"
        out: list[dict[str, Any]] = []
        while path:
            page = http.get(path).raise_for_status().text
            out += table_rows(page)
            following = re.search(r'<a href="([^"]+)">Next »</a>', page)
            path = "/members/invoices" + following[1] if following else None
        return out


def fetch_js_config_key(running: RunningSite) -> list[dict[str, Any]]:
    with client(running) as http:
        key = re.search(r'window\.CONFIG = \{[^}]*apiKey: "([^"]+)"', http.get("/").text)
        assert key
        out: list[dict[str, Any]] = []
        page = 1
        while True:
            response = http.get(
                "/api/vehicles", params={"page": page}, headers={"X-Api-Key": key[1]}
            )
            body = response.raise_for_status().json()
            out += body["vehicles"]
            if page >= body["pages"]:
                return out
            page += 1


def fetch_date_window(running: RunningSite) -> list[dict[str, Any]]:
    days = running.channel_config()["navigation_details"]["date_range"]["last_days"]
    window = {
        "from": (running.site.anchor - timedelta(days=days)).isoformat(),
        "to": running.site.anchor.isoformat(),
    }
    with client(running) as http:
        assert "/api/events" in http.get("/").raise_for_status().text
        events: list[dict[str, Any]] = (
            http.get("/api/events", params=window).raise_for_status().json()["events"]
        )
        return events


def parse_export(name: str, content: bytes) -> list[dict[str, Any]]:
    kind = name.rsplit(".", 1)[1]
    if kind == "json":
        rows: list[dict[str, Any]] = json.loads(content)["measurements"]
        return rows
    if kind == "xml":
        root = SafeET.fromstring(content)
        return [{child.tag: child.text for child in node} for node in root]
    text = io.StringIO(content.decode())
    return list(csv.DictReader(text, delimiter="\t" if kind == "tsv" else ","))


def fetch_export_links(running: RunningSite) -> list[dict[str, Any]]:
    with client(running) as http:
        page = http.get("/exports").raise_for_status().text
        links = list(dict.fromkeys(re.findall(r'href="(/exports/files/[^"]+)"', page)))
        out: list[dict[str, Any]] = []
        for link in links:
            response = http.get(link).raise_for_status()
            name = link.rsplit("/", 1)[1]
            assert f'filename="{name}"' in response.headers["content-disposition"]
            if name.endswith(".pdf"):
                assert response.content.startswith(b"%PDF-")
                continue
            out += parse_export(name, response.content)
        return out


def fetch_embedded_json(running: RunningSite) -> list[dict[str, Any]]:
    with client(running) as http:
        page = http.get("/jobs").raise_for_status().text
        embedded = re.search(
            r'<script type="application/json" id="initial-state">(.*?)</script>', page
        )
        assert embedded and "More offers" in page
        state = json.loads(embedded[1])
        out: list[dict[str, Any]] = list(state["jobs"])
        while state["next"]:
            state = http.get(state["next"]).raise_for_status().json()
            out += state["jobs"]
        return out


def fetch_jsonapi_links(running: RunningSite) -> list[dict[str, Any]]:
    with client(running) as http:
        out: list[dict[str, Any]] = []
        url: str | None = running.channel_config()["url"]
        while url:
            response = http.get(url).raise_for_status()
            assert response.headers["content-type"].startswith("application/vnd.api+json")
            body = response.json()
            out += [{"id": item["id"], **item["attributes"]} for item in body["data"]]
            url = body["links"].get("next")
        return out


def fetch_load_more(running: RunningSite) -> list[dict[str, Any]]:
    with client(running) as http:
        page = http.get("/news").raise_for_status().text
        cookie = re.search(r'document\.cookie = "(\w+)=(\w+);', page)
        assert cookie
        http.cookies.set(cookie[1], cookie[2])
        out: list[dict[str, Any]] = []
        while True:
            out += [{"id": i} for i in re.findall(r'<article data-story-id="([^"]+)"', page)]
            following = re.search(r'<button class="load-more" data-next="([^"]+)"', page)
            if not following:
                return out
            page = http.get(following[1]).raise_for_status().text


def fetch_sitemap_pages(running: RunningSite) -> list[dict[str, Any]]:
    with client(running) as http:
        robots = http.get("/robots.txt").raise_for_status().text
        index = re.search(r"^Sitemap: (\S+)$", robots, re.MULTILINE)
        assert index
        locations = [index[1]]
        out: list[dict[str, Any]] = []
        while locations:
            location = locations.pop(0)
            response = http.get(location).raise_for_status()
            if location.endswith(".xml"):
                root = SafeET.fromstring(response.content)
                locations += [node.text or "" for node in root.iter() if node.tag.endswith("loc")]
                continue
            found = re.search(r'<article class="station" data-id="([^"]+)"', response.text)
            if found:
                out.append({"id": found[1]})
        return out


V1_FETCHERS: dict[str, Callable[[RunningSite], list[dict[str, Any]]]] = {
    "json_pages": fetch_json_pages,
    "login_cursor": fetch_login_cursor,
    "token_api": fetch_token_api,
    "csv_links": fetch_csv_links,
    "rss_feed": fetch_rss_feed,
    "html_list": fetch_html_list,
    "js_xhr": fetch_js_xhr,
    "infinite_scroll": fetch_infinite_scroll,
    "offset_api": fetch_offset_api,
    "atom_paged": fetch_atom_paged,
    "keyset_scroll": fetch_keyset_scroll,
    "one_field_list": fetch_one_field_list,
    "nav_table": fetch_nav_table,
    "graphql_relay": fetch_graphql_relay,
    "login_table": fetch_login_table,
    "js_config_key": fetch_js_config_key,
    "date_window": fetch_date_window,
    "export_links": fetch_export_links,
    "embedded_json": fetch_embedded_json,
    "jsonapi_links": fetch_jsonapi_links,
    "load_more": fetch_load_more,
    "sitemap_pages": fetch_sitemap_pages,
}


JSON_SITES = frozenset(
    ("json_pages", "login_cursor", "token_api", "js_xhr", "infinite_scroll")
    + ("offset_api", "keyset_scroll", "graphql_relay", "js_config_key", "date_window")
    + ("embedded_json", "jsonapi_links")
)


# -- the catalogue ---------------------------------------------------------------------------


def test_catalog_lists_every_site_with_a_shape_and_a_fetcher_here() -> None:
    assert set(CATALOG) == set(V1_FETCHERS)
    for name, spec in CATALOG.items():
        assert spec.name == name
        assert spec.source_type in ("api", "html")
        assert spec.description and "\n" not in spec.description
        site = spec.factory(seed=3, anchor=ANCHOR)
        assert isinstance(site, DemoSite) and site.name == name


@pytest.mark.parametrize("name", list(CATALOG))
def test_records_are_deterministic_with_unique_ids_and_dates(name: str) -> None:
    factory = CATALOG[name].factory
    records = factory(anchor=ANCHOR).ground_truth()
    assert records == factory(anchor=ANCHOR).ground_truth()
    assert factory(seed=1, anchor=ANCHOR).ground_truth() != records
    assert len(records) >= 20
    assert len(set(ids(records))) == len(records)
    every_id = ids(records)
    assert not [a for a in every_id for b in every_id if a != b and a in b], "an id inside another"
    for record in records:
        day = date.fromisoformat(record["date"])
        assert ANCHOR - timedelta(days=60) <= day <= ANCHOR


def test_channel_configs_are_what_a_user_would_send(sites: dict[str, RunningSite]) -> None:
    for name, running in sites.items():
        config = CATALOG[name].channel_config(running)
        assert config == running.channel_config()
        assert config["url"].startswith(running.origin + "/")
        assert config["channel_name"]
        running.variant = "v2"
        assert CATALOG[name].channel_config(running) == config, "configs do not follow variants"
    assert set(sites["login_cursor"].channel_config()["login_credentials"]) == {
        "username",
        "password",
    }
    assert set(sites["csv_links"].channel_config()["login_credentials"]) == {
        "username",
        "password",
    }
    assert {"client_id", "client_secret"} <= set(sites["token_api"].channel_config()["auth_keys"])


# -- v1: what the site serves is its ground truth --------------------------------------------


@pytest.mark.parametrize("name", list(CATALOG))
def test_v1_serves_exactly_the_ground_truth(sites: dict[str, RunningSite], name: str) -> None:
    running = sites[name]
    fetched = V1_FETCHERS[name](running)
    truth = running.ground_truth()
    assert sorted(set(ids(fetched))) == sorted(ids(truth))
    if name in JSON_SITES:
        assert sorted(fetched, key=lambda r: str(r["id"])) == sorted(
            truth, key=lambda r: str(r["id"])
        )
    if name == "csv_links":
        as_text = [{k: str(v) for k, v in r.items()} for r in truth]
        assert sorted(fetched, key=lambda r: r["id"]) == sorted(as_text, key=lambda r: r["id"])


def test_rss_feed_repeats_two_items(sites: dict[str, RunningSite]) -> None:
    entries = fetch_rss_feed(sites["rss_feed"])
    assert len(entries) == len(sites["rss_feed"].ground_truth()) + 2
    repeated = {i for i in ids(entries) if ids(entries).count(i) == 2}
    assert len(repeated) == 2


def test_json_pages_filters_by_date_and_rejects_bad_parameters(
    sites: dict[str, RunningSite],
) -> None:
    running = sites["json_pages"]
    since = (ANCHOR - timedelta(days=7)).isoformat()
    with client(running) as http:
        body = http.get("/api/v1/items", params={"from": since, "per_page": 100}).json()
        assert body["items"] and all(i["date"] >= since for i in body["items"])
        expected = [r for r in running.ground_truth() if r["date"] >= since]
        assert body["items"] == expected and body["total_pages"] == 1
        assert http.get("/api/v1/items", params={"per_page": 1000}).status_code == 400
        assert http.get("/api/v1/items", params={"from": "yesterday"}).status_code == 400
        assert http.get("/api/v1/items", params={"page": 9}).json()["items"] == []
        assert "/api/v1/items" in http.get("/openapi.json").json()["paths"]
        assert "/api/v1/items" in http.get("/").text


def test_login_rejects_wrong_password_and_missing_csrf(sites: dict[str, RunningSite]) -> None:
    for name, failure_status in (("login_cursor", 200), ("csv_links", 401), ("login_table", 200)):
        running = sites[name]
        config = running.channel_config()
        with client(running) as http:
            home = config["url"].removeprefix(running.origin)
            assert http.get(home).status_code == 302
            assert http.get(home).headers["location"].startswith("/login?next=")
            wrong = log_in(http, config, password="not-the-password")
            assert wrong.status_code == failure_status
            assert "Invalid username or password" in wrong.text and not http.cookies
            csrf_less = http.post("/login", data={"username": "x", "password": "y"})
            assert csrf_less.status_code == 403
            right = log_in(http, config)
            assert right.status_code == 303 and right.headers["location"] == home
            assert http.get(home).status_code == 200


def test_login_cursor_api_needs_the_session_and_the_dashboard_loads_it(
    sites: dict[str, RunningSite],
) -> None:
    running = sites["login_cursor"]
    with client(running) as http:
        assert http.get("/api/orders").status_code == 401
        log_in(http, running.channel_config())
        page = http.get("/dashboard").text
        assert 'const CURSOR_PARAM = "after"' in page and "/api/orders" in page
        first = http.get("/api/orders").json()
        assert http.get("/api/orders", params={"after": "garbage"}).status_code == 400
        assert len(first["data"]) == 10 and first["next_cursor"]


def test_token_api_refuses_missing_wrong_and_expired_tokens(
    sites: dict[str, RunningSite],
) -> None:
    running = sites["token_api"]
    config = running.channel_config()
    keys = config["auth_keys"]
    with client(running) as http:
        assert http.get("/api/reports").status_code == 401
        assert http.get("/api/reports", headers={"Authorization": "Bearer nope"}).status_code == 401
        bad = {"grant_type": "client_credentials", "client_id": keys["client_id"]}
        assert http.post("/oauth/token", data={**bad, "client_secret": "x"}).status_code == 401
        assert http.post("/oauth/token", data={"grant_type": "password"}).status_code == 400
        basic = http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(keys["client_id"], keys["client_secret"]),
        )
        assert basic.status_code == 200
        headers = bearer(http, config)
        assert http.get("/api/reports", headers=headers).status_code == 200
        assert isinstance(running.site, TokenApiSite)
        running.site.expire_tokens()
        assert http.get("/api/reports", headers=headers).status_code == 401
        doc = http.get("/openapi.json").json()
        flows = doc["components"]["securitySchemes"]["oauth"]["flows"]
        assert flows["clientCredentials"]["tokenUrl"] == keys["token_url"]


def test_csv_downloads_need_the_login(sites: dict[str, RunningSite]) -> None:
    running = sites["csv_links"]
    name = f"sales-{ANCHOR.isoformat()}.csv"
    with client(running) as http:
        assert http.get(f"/files/{name}").status_code == 302
        log_in(http, running.channel_config())
        assert http.get(f"/files/{name}").status_code == 200
        assert http.get("/files/sales-1999-01-01.csv").status_code == 404


# -- v2: the same address, a realistic change -------------------------------------------------


def test_json_pages_v2_moves_the_endpoint(sites: dict[str, RunningSite]) -> None:
    running = sites["json_pages"]
    origin = running.origin
    running.variant = "v2"
    assert running.origin == origin
    with client(running) as http:
        old = http.get("/api/v1/items")
        assert old.status_code == 404 and "retired" in old.json()["detail"]
        assert http.get("/api/").json()["items_url"] == f"{origin}/api/v2/items"
        assert "/api/v2/items" in http.get("/openapi.json").json()["paths"]
    assert fetch_json_pages(running) == running.ground_truth()


def test_login_cursor_v2_renames_the_cursor_parameter(sites: dict[str, RunningSite]) -> None:
    running = sites["login_cursor"]
    running.variant = "v2"
    with client(running) as http:
        log_in(http, running.channel_config())
        assert 'const CURSOR_PARAM = "cursor"' in http.get("/dashboard").text
        first = http.get("/api/orders").json()
        again = http.get("/api/orders", params={"after": first["next_cursor"]}).json()
        assert again == first, "the old parameter is ignored: first page forever"
        out, params = list(first["data"]), {"cursor": first["next_cursor"]}
        while params["cursor"]:
            body = http.get("/api/orders", params=params).json()
            out += body["data"]
            params = {"cursor": body["next_cursor"]}
    assert out == running.ground_truth()


def test_token_api_v2_pages_with_next_links(sites: dict[str, RunningSite]) -> None:
    running = sites["token_api"]
    running.variant = "v2"
    config = running.channel_config()
    with client(running) as http:
        headers = bearer(http, config)
        old = [
            http.get(config["url"], params={"offset": o, "limit": 25}, headers=headers).json()
            for o in (0, 25)
        ]
        assert old[0]["results"] == old[1]["results"], "offset is ignored in v2"
        out: list[dict[str, Any]] = []
        url: str | None = config["url"]
        while url:
            body = http.get(url, headers=headers).json()
            out += body["results"]
            url = body["next"]
        assert out == running.ground_truth()
        past = http.get(config["url"], params={"page": 99}, headers=headers)
        assert past.status_code == 404 and past.json() == {"detail": "Invalid page."}


def test_csv_links_v2_moves_links_into_a_table(sites: dict[str, RunningSite]) -> None:
    running = sites["csv_links"]
    running.variant = "v2"
    with client(running) as http:
        log_in(http, running.channel_config())
        page = http.get("/reports").text
        assert '<table class="downloads">' in page and "/files/" not in page
        links = re.findall(r'href="(/downloads/[^"]+\.csv)"', page)
        assert len(links) == 8
        old = links[0].replace("/downloads/", "/files/")
        assert http.get(old).status_code == 404
        rows = [r for link in links for r in csv.DictReader(io.StringIO(http.get(link).text))]
    assert sorted(ids(rows)) == sorted(ids(running.ground_truth()))


def test_rss_feed_v2_moves_to_atom(sites: dict[str, RunningSite]) -> None:
    running = sites["rss_feed"]
    running.variant = "v2"
    with client(running) as http:
        assert http.get("/feed.xml").status_code == 404
        home = http.get("/").text
        assert 'type="application/atom+xml"' in home and 'href="/atom.xml"' in home
        response = http.get("/atom.xml")
        assert response.headers["content-type"].startswith("application/atom+xml")
        feed = feedparser.parse(response.content)
    assert feed.version == "atom10" and not feed.bozo
    assert sorted(set(e.id for e in feed.entries)) == sorted(ids(running.ground_truth()))


def test_html_list_v2_changes_markup_and_page_parameter(sites: dict[str, RunningSite]) -> None:
    running = sites["html_list"]
    running.variant = "v2"
    assert fetch_html_list(running) == [], "the v1 selectors find nothing"
    with client(running) as http:
        first = http.get("/catalog").text
        assert 'class="item"' not in first and 'rel="next"' not in first
        assert http.get("/catalog", params={"page": 2}).text == first
        found: list[str] = []
        path: str | None = "/catalog"
        while path:
            page = http.get(path).text
            found += re.findall(r'<article class="product-card" data-product-id="([^"]+)"', page)
            following = re.search(r'<a class="pagination__next"[^>]*href="([^"]+)"', page)
            path = following[1].replace("&amp;", "&") if following else None
    assert found == ids(running.ground_truth())


def test_js_xhr_v2_bumps_the_endpoint(sites: dict[str, RunningSite]) -> None:
    running = sites["js_xhr"]
    running.variant = "v2"
    with client(running) as http:
        assert '"/api/v2/search"' in http.get("/").text
        assert http.get("/api/search").status_code == 404
        pages = [http.get("/api/v2/search", params={"page": n}).json() for n in (1, 2, 3, 4)]
        assert pages[0]["total_pages"] == 4
    assert [r for p in pages for r in p["results"]] == running.ground_truth()


def test_infinite_scroll_v2_uses_a_cursor(sites: dict[str, RunningSite]) -> None:
    running = sites["infinite_scroll"]
    running.variant = "v2"
    with client(running) as http:
        assert 'searchParams.set("cursor", cursor)' in http.get("/").text
        first = http.get("/api/feed", params={"offset": 0}).json()
        assert http.get("/api/feed", params={"offset": 10}).json() == first
        out, cursor = list(first["items"]), first["next_cursor"]
        while cursor:
            body = http.get("/api/feed", params={"cursor": cursor}).json()
            out += body["items"]
            cursor = body["next_cursor"]
    assert sorted(ids(out)) == sorted(ids(running.ground_truth()))


def test_v1_first_page_does_not_show_everything(sites: dict[str, RunningSite]) -> None:
    with client(sites["offset_api"]) as http:
        first = http.get("/api/v1/products").json()
        assert len(first["products"]) == 10 and first["total"] == 37
    with client(sites["atom_paged"]) as http:
        feed = feedparser.parse(http.get("/feed.atom").content)
        assert len(feed.entries) == 10 and [li.rel for li in feed.feed.links].count("next") == 1
        last = feedparser.parse(http.get("/feed.atom", params={"page": 3}).content)
        assert "next" not in [li.rel for li in last.feed.links]
        assert http.get("/feed.atom", params={"page": 4}).status_code == 404
    with client(sites["one_field_list"]) as http:
        assert len(http.get("/api/report-ids").json()) == 10
        last = http.get("/api/report-ids", params={"page": 3})
        assert len(last.json()) == 6 and "next" not in last.links
    with client(sites["nav_table"]) as http:
        page = http.get("/codes").text
        assert len(nav_table_rows(page)) == 10 and "Next" not in page
        assert http.get("/codes", params={"page": 4}).status_code == 404


def test_keyset_scroll_after_is_an_id_not_a_position(sites: dict[str, RunningSite]) -> None:
    running = sites["keyset_scroll"]
    truth = running.ground_truth()
    with client(running) as http:
        after = http.get("/api/listings", params={"after": truth[4]["id"], "limit": 3}).json()
        assert after["listings"] == truth[5:8]
        assert http.get("/api/listings", params={"after": "x"}).status_code == 400


def test_offset_api_v2_renames_everything(sites: dict[str, RunningSite]) -> None:
    running = sites["offset_api"]
    running.variant = "v2"
    with client(running) as http:
        gone = http.get("/api/v1/products")
        assert gone.status_code == 410 and "/api/v2/products" in gone.json()["detail"]
        out: list[dict[str, Any]] = []
        while True:
            body = http.get("/api/v2/products", params={"skip": len(out), "take": 10}).json()
            out += body["data"]
            if len(out) >= body["meta"]["total"]:
                break
    assert out == running.ground_truth()


def test_atom_paged_v2_moves_the_feed_to_cursor_links(sites: dict[str, RunningSite]) -> None:
    running = sites["atom_paged"]
    running.variant = "v2"
    with client(running) as http:
        assert http.get("/feed.atom").status_code == 404
        assert 'href="/feeds/posts.atom"' in http.get("/").text
        first = feedparser.parse(http.get("/feeds/posts.atom").content)
        assert "cursor=" in next(li.href for li in first.feed.links if li.rel == "next")
    found = fetch_atom_paged(running)
    assert sorted(ids(found)) == sorted(ids(running.ground_truth()))


def test_keyset_scroll_v2_renames_the_parameter(sites: dict[str, RunningSite]) -> None:
    running = sites["keyset_scroll"]
    running.variant = "v2"
    with client(running) as http:
        assert 'const PARAM = "since_id"' in http.get("/").text
        first = http.get("/api/listings").json()
        assert "listings" not in first and first["has_more"]
        again = http.get("/api/listings", params={"after": first["results"][-1]["id"]}).json()
        assert again == first, "the old parameter is ignored"
        out, body = list(first["results"]), first
        while body["has_more"]:
            body = http.get("/api/listings", params={"since_id": out[-1]["id"]}).json()
            out += body["results"]
    assert out == running.ground_truth()


def test_one_field_list_v2_serves_plain_strings(sites: dict[str, RunningSite]) -> None:
    running = sites["one_field_list"]
    running.variant = "v2"
    with client(running) as http:
        out: list[str] = []
        page: int | None = 1
        while page:
            response = http.get("/api/report-ids", params={"page": page})
            assert "link" not in response.headers
            out += response.json()["reports"]
            page = response.json()["next_page"]
    assert out == ids(running.ground_truth())


def test_nav_table_v2_moves_to_a_definition_list(sites: dict[str, RunningSite]) -> None:
    running = sites["nav_table"]
    running.variant = "v2"
    assert fetch_nav_table(running) == [], "the v1 table is gone"
    with client(running) as http:
        assert http.get("/codes", params={"page": 2}).text == http.get("/codes").text
        found = [
            code
            for n in (1, 2, 3)
            for code in re.findall(r"<dt>([^<]+)</dt>", http.get(f"/codes/page/{n}").text)
        ]
        assert 'href="/codes/page/2"' in http.get("/codes").text
    assert found == ids(running.ground_truth())


def test_graphql_relay_reads_inline_arguments_and_answers_errors_as_graphql(
    sites: dict[str, RunningSite],
) -> None:
    running = sites["graphql_relay"]
    with client(running) as http:
        first = graphql_page(http, None)["data"]["shipments"]
        assert len(first["edges"]) == 10 and first["pageInfo"]["hasNextPage"]
        inline = '{ shipments(first: 3, after: "%s") { edges { node { id } } } }'
        body = http.post("/graphql", json={"query": inline % first["pageInfo"]["endCursor"]})
        following = [e["node"]["id"] for e in body.json()["data"]["shipments"]["edges"]]
        assert following == ids(running.ground_truth()[10:13])
        wrong = http.post("/graphql", json={"query": "{ deliveries { nodes { id } } }"})
        assert wrong.status_code == 200 and "deliveries" in wrong.json()["errors"][0]["message"]
        assert http.post("/graphql", content=b"not json").status_code == 400
        assert http.get("/graphql").status_code == 405


def test_graphql_relay_v2_renames_the_connection(sites: dict[str, RunningSite]) -> None:
    running = sites["graphql_relay"]
    running.variant = "v2"
    with client(running) as http:
        assert "errors" in graphql_page(http, None)
        assert '"deliveries"' in http.get("/").text
        out: list[dict[str, Any]] = []
        after = None
        while True:
            query = (
                "{ deliveries(first: 10, after: $after) { nodes { id } "
                "pageInfo { endCursor hasNextPage } } }"
            )
            body = http.post("/graphql", json={"query": query, "variables": {"after": after}})
            connection = body.json()["data"]["deliveries"]
            out += connection["nodes"]
            if not connection["pageInfo"]["hasNextPage"]:
                break
            after = connection["pageInfo"]["endCursor"]
    assert ids(out) == ids(running.ground_truth())


def test_login_table_v2_moves_to_offsets_and_a_new_link_text(
    sites: dict[str, RunningSite],
) -> None:
    running = sites["login_table"]
    running.variant = "v2"
    with pytest.raises(httpx.HTTPStatusError, match="301"):
        fetch_login_table(running)
    with client(running) as http:
        log_in(http, running.channel_config())
        moved = http.get("/members/invoices", params={"page": 2})
        assert moved.status_code == 301 and moved.headers["location"] == "/members/billing"
        path: str | None = "/members/billing"
        found: list[dict[str, Any]] = []
        while path:
            page = http.get(path).text
            assert '<table class="invoices-table">' in page and "Next »" not in page
            found += table_rows(page)
            following = re.search(r'<a href="([^"]+)">Older invoices →</a>', page)
            path = following[1] if following else None
    assert ids(found) == ids(running.ground_truth())


def test_js_config_key_refuses_a_missing_or_wrong_key(sites: dict[str, RunningSite]) -> None:
    running = sites["js_config_key"]
    with client(running) as http:
        assert http.get("/api/vehicles").status_code == 401
        wrong = http.get("/api/vehicles", headers={"X-Api-Key": "pk_live_nope"})
        assert wrong.status_code == 401 and wrong.json() == {"error": "invalid api key"}
    assert "pk_live_" not in str(running.channel_config()), "the key is only in the page"


def test_js_config_key_v2_moves_the_key_and_the_header(sites: dict[str, RunningSite]) -> None:
    running = sites["js_config_key"]
    running.variant = "v2"
    with client(running) as http:
        page = http.get("/").text
        assert "window.CONFIG" not in page
        state = re.search(r"window\.__APP_STATE__ = (\{.*?\});", page)
        assert state
        token = json.loads(state[1])["api"]["token"]
        assert http.get("/api/vehicles", headers={"X-Api-Key": token}).status_code == 404
        assert http.get("/api/v2/vehicles", headers={"X-Api-Key": token}).status_code == 401
        headers = {"Authorization": f"Api-Key {token}"}
        pages = [
            http.get("/api/v2/vehicles", params={"page": n}, headers=headers).json()
            for n in (1, 2, 3)
        ]
    assert pages[0]["pages"] == 3
    assert [v for p in pages for v in p["vehicles"]] == running.ground_truth()


def test_date_window_needs_a_window_and_its_page_default_is_narrower(
    sites: dict[str, RunningSite],
) -> None:
    running = sites["date_window"]
    truth = running.ground_truth()
    everything = running.site.records()
    assert 20 <= len(truth) < len(everything)
    assert min(r["date"] for r in truth) >= (ANCHOR - timedelta(days=30)).isoformat()
    with client(running) as http:
        page = http.get("/").text
        week = (ANCHOR - timedelta(days=7)).isoformat()
        assert f'name="from" value="{week}"' in page
        default = http.get("/api/events", params={"from": week, "to": ANCHOR.isoformat()})
        assert 0 < len(default.json()["events"]) < len(truth)
        assert http.get("/api/events").status_code == 400
        backwards = {"from": ANCHOR.isoformat(), "to": week}
        assert http.get("/api/events", params=backwards).status_code == 400
        too_long = {"from": (ANCHOR - timedelta(days=200)).isoformat(), "to": week}
        assert http.get("/api/events", params=too_long).status_code == 400


def test_date_window_v2_renames_the_parameters(sites: dict[str, RunningSite]) -> None:
    running = sites["date_window"]
    running.variant = "v2"
    window = {"from": (ANCHOR - timedelta(days=30)).isoformat(), "to": ANCHOR.isoformat()}
    with client(running) as http:
        old = http.get("/api/events", params=window)
        assert old.status_code == 400 and "start_date" in old.json()["detail"]
        new = {"start_date": window["from"], "end_date": window["to"]}
        events = http.get("/api/events", params=new).json()["data"]["events"]
        assert '"start_date"' in http.get("/").text
    assert events == running.ground_truth()


def test_export_links_serve_each_kind_once(sites: dict[str, RunningSite]) -> None:
    running = sites["export_links"]
    with client(running) as http:
        page = http.get("/exports").text
        links = re.findall(r'href="(/exports/files/[^"]+)"', page)
        assert len(links) == len(set(links)) + 1, "the newest file is linked twice"
        kinds = sorted(link.rsplit(".", 1)[1] for link in set(links))
        assert kinds == ["csv", "json", "pdf", "tsv", "xml"]
        assert http.get("/exports/files/nothing.csv").status_code == 404
    rows = fetch_export_links(running)
    assert len(rows) == len(running.ground_truth()), "every record in exactly one file"


def test_export_links_v2_moves_the_files_into_a_table(sites: dict[str, RunningSite]) -> None:
    running = sites["export_links"]
    running.variant = "v2"
    assert fetch_export_links(running) == []
    with client(running) as http:
        page = http.get("/exports").text
        assert '<table class="files">' in page
        names = sorted(set(re.findall(r'href="/opendata/download\?file=([^"]+)"', page)))
        assert len(names) == 5
        rows = [
            row
            for name in names
            if not name.endswith(".pdf")
            for row in parse_export(
                name, http.get("/opendata/download", params={"file": name}).content
            )
        ]
        assert http.get(f"/exports/files/{names[0]}").status_code == 404
    assert sorted(ids(rows)) == sorted(ids(running.ground_truth()))


def test_embedded_json_v2_moves_to_next_data(sites: dict[str, RunningSite]) -> None:
    running = sites["embedded_json"]
    running.variant = "v2"
    with client(running) as http:
        page = http.get("/jobs").text
        assert 'id="initial-state"' not in page
        assert http.get("/api/jobs").status_code == 404
        data = re.search(r'<script type="application/json" id="__NEXT_DATA__">(.*?)</script>', page)
        assert data
        props = json.loads(data[1])["props"]["pageProps"]
        out = list(props["offers"])
        while props["cursor"]:
            response = http.get("/_next/data/jobs.json", params={"cursor": props["cursor"]})
            props = response.json()["pageProps"]
            out += props["offers"]
    assert sorted(ids(out)) == sorted(ids(running.ground_truth()))


def test_jsonapi_links_v2_pages_by_offset(sites: dict[str, RunningSite]) -> None:
    running = sites["jsonapi_links"]
    with client(running) as http:
        first = http.get("/api/articles").json()
        assert len(first["data"]) == 10 and first["meta"]["total"] == 31
        last = http.get(first["links"]["last"]).json()
        assert "next" not in last["links"] and len(last["data"]) == 1
        bad = http.get("/api/articles", params={"page[size]": 500})
        assert bad.status_code == 400 and bad.json()["errors"][0]["status"] == "400"
    running.variant = "v2"
    with client(running) as http:
        first = http.get("/api/articles").json()
        ignored = http.get("/api/articles", params={"page[number]": 2}).json()
        assert ignored["data"] == first["data"], "page[number] is ignored in v2"
        assert "page%5Boffset%5D=10" in first["links"]["next"]
    found = fetch_jsonapi_links(running)
    assert found == running.ground_truth()


def test_load_more_needs_the_cookie_the_script_sets(sites: dict[str, RunningSite]) -> None:
    running = sites["load_more"]
    with client(running) as http:
        page = http.get("/news").text
        assert len(re.findall(r"<article ", page)) == 8
        following = re.search(r'data-next="([^"]+)"', page)
        assert following
        refused = http.get(following[1])
        assert refused.status_code == 403 and "accept cookies" in refused.text
        http.cookies.set("consent", "yes")
        assert http.get(following[1]).status_code == 200


def test_load_more_v2_renames_the_control_and_the_cookie(sites: dict[str, RunningSite]) -> None:
    running = sites["load_more"]
    running.variant = "v2"
    assert len(fetch_load_more(running)) == 8, "the v1 fetcher stops after the first batch"
    with client(running) as http:
        page = http.get("/news").text
        assert 'document.cookie = "cookie_consent=accepted' in page
        http.cookies.set("consent", "yes")
        following = re.search(r'<a class="more-link" data-href="([^"]+)"', page)
        assert following and http.get(following[1]).status_code == 403
        http.cookies.set("cookie_consent", "accepted")
        found: list[str] = []
        while True:
            found += re.findall(r'<article data-story-id="([^"]+)"', page)
            following = re.search(r'<a class="more-link" data-href="([^"]+)"', page)
            if not following:
                break
            page = http.get(following[1]).text
    assert sorted(found) == sorted(ids(running.ground_truth()))


def test_sitemap_pages_v2_moves_the_index_and_the_pages(sites: dict[str, RunningSite]) -> None:
    running = sites["sitemap_pages"]
    with client(running) as http:
        assert len(re.findall(r'href="/stations/', http.get("/").text)) == 3
        index = http.get("/sitemap.xml").text
        assert index.count("<sitemap>") == 2
    running.variant = "v2"
    assert fetch_sitemap_pages(running) == [], "v1 markup is gone"
    with client(running) as http:
        assert http.get("/sitemap.xml").status_code == 404
        assert "Sitemap: " + running.origin + "/sitemap_index.xml" in http.get("/robots.txt").text
        truth = running.ground_truth()
        assert http.get(f"/stations/{truth[0]['id']}").status_code == 404
        page = http.get(f"/s/{truth[0]['id']}").text
        assert f'data-station-id="{truth[0]["id"]}"' in page


# -- broken: nothing a fetcher can use -------------------------------------------------------


@pytest.mark.parametrize("name", list(CATALOG))
def test_broken_serves_no_records(sites: dict[str, RunningSite], name: str) -> None:
    running = sites[name]
    running.variant = "broken"
    assert running.ground_truth() == []
    if name == "login_cursor":
        with pytest.raises(httpx.HTTPStatusError) as failed:
            fetch_login_cursor(running)
        assert failed.value.response.status_code == 500
    else:
        assert V1_FETCHERS[name](running) == []
    running.variant = "v1"
    assert V1_FETCHERS[name](running), "back to v1, the records are back"


# -- runtime state ---------------------------------------------------------------------------


def test_fail_next_fails_exactly_n_requests_then_recovers(sites: dict[str, RunningSite]) -> None:
    running = sites["html_list"]
    running.fail_next(2, status=503, retry_after="1")
    running.fail_next(1, status=429, retry_after=None)
    with client(running) as http:
        responses = [http.get("/catalog", params={"page": n}) for n in (1, 2, 3, 4)]
    assert [r.status_code for r in responses] == [503, 503, 429, 200]
    assert responses[0].headers["retry-after"] == "1"
    assert "retry-after" not in responses[2].headers
    assert running.requests == [("GET", f"/catalog?page={n}") for n in (1, 2, 3, 4)]
    assert running.site.pending_faults == 0


def test_fail_next_can_target_a_path(sites: dict[str, RunningSite]) -> None:
    running = sites["json_pages"]
    running.fail_next(1, status=500, path_prefix="/api/v1/items")
    with client(running) as http:
        assert http.get("/api/").status_code == 200
        assert http.get("/api/v1/items?page=1").status_code == 500
        assert http.get("/api/v1/items?page=1").status_code == 200
    assert running.requests == [
        ("GET", "/api/"),
        ("GET", "/api/v1/items?page=1"),
        ("GET", "/api/v1/items?page=1"),
    ]


def test_advance_adds_records_everywhere(sites: dict[str, RunningSite]) -> None:
    for name, running in sites.items():
        before = running.ground_truth()
        running.site.advance(3)
        after = running.ground_truth()
        fetched = V1_FETCHERS[name](running)
        assert sorted(set(ids(fetched))) == sorted(ids(after)), name
        if name == "rss_feed":  # a window of the newest 25: one post falls out
            assert len(after) == 25 and len(set(ids(after)) - set(ids(before))) == 3
        else:
            assert len(after) == len(before) + 3 and ids(after)[: len(before)] == ids(before)


def test_unknown_variant_is_refused(sites: dict[str, RunningSite]) -> None:
    with pytest.raises(ValueError, match="unknown variant"):
        sites["js_xhr"].variant = "v3"  # type: ignore[assignment]
    assert VARIANTS == ("v1", "v2", "broken")


# -- lifecycle -------------------------------------------------------------------------------


def test_all_sites_start_and_stop_fast_and_leave_no_threads() -> None:
    threads_before = set(threading.enumerate())
    began = time.monotonic()
    with serve_all() as running:
        started = time.monotonic()
        ports = {site.port for site in running.values()}
        assert len(ports) == len(CATALOG)
        for site in running.values():
            assert site.url == f"http://127.0.0.1:{site.port}/"
            assert httpx.get(site.channel_config()["url"]).status_code in (200, 302, 401)
    ended = time.monotonic()
    assert set(threading.enumerate()) == threads_before
    assert started - began < 3.0 and ended - began < 5.0, (started - began, ended - began)
    for port in ports:
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()


def test_serve_by_name_and_stop_is_idempotent() -> None:
    with serve("rss_feed") as running:
        assert running.is_running and running.name == "rss_feed"
        assert httpx.get(running.url).status_code == 200
    assert not running.is_running
    running.stop()
    with pytest.raises(ValueError, match="unknown demo site"):
        start("no_such_site")


def test_module_entry_point_serves_until_interrupted() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "amazoniax_dagster.devstack.demo_sites",
            "json_pages",
            "--variant",
            "v2",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stderr is not None
        lines = []
        for line in process.stderr:
            lines.append(line)
            if "Ctrl-C" in line:
                break
        url = re.search(r"json_pages\s+api\s+(\S+)", "".join(lines))
        assert url, lines
        assert httpx.get(url[1]).json()["version"] == "v2"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
