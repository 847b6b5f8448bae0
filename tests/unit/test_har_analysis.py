"""HAR analysis, value provenance, pagination inference and recipe synthesis, on small
hand-made HAR documents (no browser, no server)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import yaml

from amazoniax_dagster.core.errors import NoFetcherError
from amazoniax_dagster.core.messages import WebSourceConfig
from amazoniax_dagster.fetchers.recipe import load_recipe
from fetcher_codegen.analysis import analyze
from fetcher_codegen.capture import Capture, CaptureStep
from fetcher_codegen.har import (
    Entry,
    entries_from_har,
    group_by_kind,
    noise_reason,
    path_template,
    resource_name,
)
from fetcher_codegen.pagination import Page, infer
from fetcher_codegen.probes import (
    auth_attempts,
    documented_params,
    json_links,
    next_page_probes,
    says_more,
)
from fetcher_codegen.provenance import Context, Slot, date_source, explain
from fetcher_codegen.records import find_records, html_records
from fetcher_codegen.summary import summarize_har
from fetcher_codegen.synthesize import synthesize

ORIGIN = "https://shop.example"
CAPTURE_DAY = date(2026, 3, 10)


def entry(
    url: str,
    body: Any = None,
    *,
    method: str = "GET",
    status: int = 200,
    mime: str = "application/json",
    headers: Sequence[tuple[str, str]] = (),
    response_headers: Sequence[tuple[str, str]] = (),
    form: dict[str, str] | None = None,
    request_json: Any = None,
    resource_type: str = "fetch",
) -> dict[str, Any]:
    """One HAR entry as Playwright writes it; a dict/list body is written as JSON."""
    text = json.dumps(body) if isinstance(body, dict | list) else (body or "")
    request: dict[str, Any] = {
        "method": method,
        "url": url if "://" in url else ORIGIN + url,
        "headers": [{"name": k, "value": v} for k, v in headers],
    }
    if form is not None:
        request["postData"] = {
            "mimeType": "application/x-www-form-urlencoded",
            "text": urlencode(form),
        }
    if request_json is not None:
        request["postData"] = {"mimeType": "application/json", "text": json.dumps(request_json)}
    return {
        "startedDateTime": f"{CAPTURE_DAY.isoformat()}T10:00:00.000Z",
        "_resourceType": resource_type,
        "request": request,
        "response": {
            "status": status,
            "headers": [{"name": k, "value": v} for k, v in response_headers],
            "content": {"mimeType": mime, "text": text},
        },
    }


def har(*items: dict[str, Any]) -> list[Entry]:
    return entries_from_har({"log": {"entries": list(items)}})


def items(start: int, n: int) -> list[dict[str, Any]]:
    return [
        {"id": f"A-{i:04d}", "name": f"Item {i}", "price": i * 1.5} for i in range(start, start + n)
    ]


def config(**extra: Any) -> WebSourceConfig:
    return WebSourceConfig.model_validate({"url": f"{ORIGIN}/app", **extra})


def capture_for(
    tmp_path: Path, data: list[dict[str, Any]], steps: Sequence[CaptureStep] = ()
) -> Capture:
    har_path = tmp_path / "capture.har"
    har_path.write_text(json.dumps({"log": {"entries": data}}))
    started = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
    return Capture(har_path, tmp_path, f"{ORIGIN}/app", started, 1.0, list(steps))


def recipe_of(tmp_path: Path, data: list[dict[str, Any]], cfg: WebSourceConfig) -> dict[str, Any]:
    capture = capture_for(tmp_path, data)
    synthesis = synthesize(analyze(har(*data), cfg), capture, cfg)
    load_recipe(synthesis.text)  # what synthesis writes, the engine accepts
    recipe: dict[str, Any] = yaml.safe_load(synthesis.text)
    return recipe


# --- noise and kinds ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        (entry("/static/app.js", "x", mime="application/javascript"), "static asset"),
        (entry("/logo.png", "x", mime="image/png", resource_type="image"), "static asset (image)"),
        (entry("/fonts/a.woff2", "x", mime="font/woff2"), "static asset"),
        (entry("https://www.google-analytics.com/g/collect?v=2", ""), "analytics/tracker"),
        (entry("/api/items", "", method="OPTIONS"), "preflight"),
        (entry("/old", "", status=302), "redirect"),
        (entry("/favicon.ico", "x", mime="image/x-icon"), "favicon"),
        (entry("/api/items", "", status=204), "empty body"),
        (entry("/api/items", {"detail": "no"}, status=404), "error status 404"),
        (entry("/api/items", {"items": items(0, 3)}), None),
    ],
)
def test_noise_reasons(item: dict[str, Any], reason: str | None) -> None:
    assert noise_reason(har(item)[0]) == reason


def test_path_templates_group_requests_of_one_kind() -> None:
    assert path_template("/api/v2/orders/123/items") == "/api/v2/orders/{n}/items"
    assert path_template("/files/sales-2026-01-05.csv") == "/files/sales-{n}-{n}-{n}.csv"
    entries = har(entry("/api/orders/1"), entry("/api/orders/2"), entry("/api/users/1"))
    assert [len(g.entries) for g in group_by_kind(entries)] == [2, 1]
    assert resource_name("/api/v2/items") == "items"
    assert resource_name("/feed.xml") == "feed"
    assert resource_name("/api/") == "data"


def test_records_in_json_csv_rss_and_html() -> None:
    nested = har(entry("/x", {"meta": {"n": 2}, "data": {"orders": items(0, 4)}}))[0]
    found = find_records(nested)
    assert found is not None and (found.path, found.count) == ("data.orders", 4)
    table = har(entry("/f.csv", "id,name\n1,a\n2,b\n", mime="text/csv"))[0]
    assert [r["id"] for r in find_records(table).items] == ["1", "2"]  # type: ignore[union-attr]
    rss = (
        "<rss><channel><item><guid>g1</guid><title>A</title></item>"
        "<item><guid>g2</guid><title>B</title></item></channel></rss>"
    )
    feed = find_records(har(entry("/feed.xml", rss, mime="application/rss+xml"))[0])
    assert feed is not None and [r["guid"] for r in feed.items] == ["g1", "g2"]
    html = (
        "<ul class='list'>"
        + "".join(
            f"<li class='row' data-id='R{i}'><b>Name {i}</b> <i>{i} EUR</i></li>" for i in range(4)
        )
        + "</ul><nav><a href='/a'>a</a></nav>"
    )
    blocks = html_records(html)
    assert blocks is not None and blocks.path == "ul.list > li.row"
    assert [r["@data-id"] for r in blocks.items] == ["R0", "R1", "R2", "R3"]


def test_analysis_keeps_data_and_leaves_out_docs_logins_and_indexes() -> None:
    entries = har(
        entry(
            "/openapi.json",
            {
                "openapi": "3.0.0",
                "paths": {},
                "servers": [{"url": "a", "x": 1}, {"url": "b", "x": 2}],
            },
        ),
        entry("/api/", {"items_url": f"{ORIGIN}/api/items"}),
        entry("/login", "<form><input type='password' name='p'></form>", mime="text/html"),
        entry("/api/items", {"items": items(0, 5)}),
        entry("/app.css", "body{}", mime="text/css"),
    )
    analysis = analyze(entries, config(api_documentation_path="/openapi.json"))
    assert [str(d.group.kind) for d in analysis.data] == [f"GET {ORIGIN}/api/items"]
    assert analysis.noise["API documentation"] == 1 and analysis.noise["login page"] == 1
    assert analysis.noise["no records"] == 1


# --- pagination ----------------------------------------------------------------------------------


def pages(*items_: dict[str, Any]) -> list[Page]:
    return [Page(e, find_records(e)) for e in har(*items_)]


def test_page_counter_with_the_first_page_unnumbered() -> None:
    found, _ = infer(
        pages(
            entry("/api/items", {"items": items(0, 20), "page": 1, "total_pages": 3}),
            entry("/api/items?page=2", {"items": items(20, 20), "page": 2, "total_pages": 3}),
            entry("/api/items?page=3", {"items": items(40, 5), "page": 3, "total_pages": 3}),
        )
    )
    assert found is not None
    assert found.config == {
        "type": "page_number",
        "param": "page",
        "start": 1,
        "total_pages_path": "total_pages",
    }


def test_offset_by_page_size_with_limit_parameter() -> None:
    found, _ = infer(
        pages(
            entry("/api/r?offset=0&limit=25", {"count": 60, "results": items(0, 25)}),
            entry("/api/r?offset=25&limit=25", {"count": 60, "results": items(25, 25)}),
            entry("/api/r?offset=50&limit=25", {"count": 60, "results": items(50, 10)}),
        )
    )
    assert found is not None
    assert found.config == {
        "type": "offset", "param": "offset", "limit": 25, "start": 0, "limit_param": "limit",
        "total_path": "count",
    }  # fmt: skip


def test_offset_that_grows_by_the_records_received() -> None:
    found, _ = infer(
        pages(
            entry("/api/feed?offset=0&limit=10", {"items": items(0, 10)}),
            entry("/api/feed?offset=10&limit=10", {"items": items(10, 10)}),
            entry("/api/feed?offset=20&limit=10", {"items": items(20, 3)}),
            entry("/api/feed?offset=23&limit=10", {"items": []}),
        )
    )
    assert found is not None and found.config["type"] == "offset"
    assert (found.config["limit"], found.config["limit_param"]) == (10, "limit")


def test_cursor_from_the_previous_response_and_ignored_probes_left_out() -> None:
    found, _ = infer(
        pages(
            entry("/api/orders", {"data": items(0, 10), "next_cursor": "b3JkZXJzOjEw"}),
            entry(
                "/api/orders?cursor=b3JkZXJzOjEw",
                {"data": items(0, 10), "next_cursor": "b3JkZXJzOjEw"},
            ),
            entry(
                "/api/orders?after=b3JkZXJzOjEw",
                {"data": items(10, 10), "next_cursor": "b3JkZXJzOjIw"},
            ),
            entry("/api/orders?after=b3JkZXJzOjIw", {"data": items(20, 4), "next_cursor": None}),
        )
    )
    assert found is not None
    assert found.config == {"type": "cursor", "cursor_path": "next_cursor", "param": "after"}


def test_next_url_in_the_body_and_link_header() -> None:
    body_pages = pages(
        entry(
            "/api/r", {"results": items(0, 5), "links": {"next": f"{ORIGIN}/api/r?page=2&size=5"}}
        ),
        entry("/api/r?page=2&size=5", {"results": items(5, 5), "links": {"next": None}}),
    )
    found, _ = infer(body_pages)
    assert found is not None and found.config == {"type": "next_url", "next_url_path": "links.next"}
    link = '<https://shop.example/api/r?since=X91>; rel="next"'
    header_pages = pages(
        entry("/api/r", items(0, 5), response_headers=[("Link", link)]),
        entry("/api/r?since=X91", items(5, 5)),
    )
    found, _ = infer(header_pages)
    assert found is not None and found.config == {"type": "link_header"}


def test_one_page_that_says_there_is_more_is_a_warning() -> None:
    found, warnings = infer(pages(entry("/api/x", {"data": items(0, 5), "has_more": True})))
    assert found is None and warnings == [
        "the first page says there is more, but no second page was captured"
    ]


# --- provenance ----------------------------------------------------------------------------


def test_dates_from_navigation_details_are_computed_from_the_run_date() -> None:
    week_ago = (CAPTURE_DAY - timedelta(days=7)).isoformat()
    cfg = config(navigation_details={"date_range": {"last_days": 7}})
    ctx = Context(cfg, CAPTURE_DAY, [])
    start = date_source(week_ago, ctx)
    end = date_source(CAPTURE_DAY.strftime("%Y%m%d"), ctx)
    assert start is not None and start.template == "${window.start:%Y-%m-%d}"
    assert end is not None and end.template == "${window.end:%Y%m%d}"
    assert date_source("2019-01-01", ctx) is None  # a date the config does not explain


def test_date_parameters_become_window_templates_in_the_recipe(tmp_path: Path) -> None:
    week_ago = (CAPTURE_DAY - timedelta(days=7)).isoformat()
    cfg = config(navigation_details={"date_range": {"last_days": 7}})
    url = f"/api/sales?from={week_ago}&to={CAPTURE_DAY.isoformat()}&format=json"
    recipe = recipe_of(tmp_path, [entry(url, {"sales": items(0, 3)})], cfg)
    assert recipe["steps"][0]["request"]["query"] == {
        "from": "${window.start:%Y-%m-%d}", "to": "${window.end:%Y-%m-%d}", "format": "json",
    }  # fmt: skip


def test_a_graphql_body_pages_by_its_variables_and_takes_dates_from_the_window(
    tmp_path: Path,
) -> None:
    week_ago = (CAPTURE_DAY - timedelta(days=7)).isoformat()
    cfg = config(navigation_details={"date_range": {"last_days": 7}})
    query = "query($since: Date, $offset: Int, $limit: Int) { sales {...} }"

    def page(offset: int, n: int) -> dict[str, Any]:
        sent = {"query": query, "variables": {"since": week_ago, "offset": offset, "limit": 3}}
        reply = {"data": {"sales": items(offset, n)}}
        return entry("/graphql", reply, method="POST", request_json=sent)

    step = recipe_of(tmp_path, [page(0, 3), page(3, 3), page(6, 1)], cfg)["steps"][0]
    assert step["request"]["json"] == {
        "query": query,
        "variables": {"since": "${window.start:%Y-%m-%d}", "offset": "${offset}", "limit": 3},
    }
    assert step["paginate"] == {
        "type": "offset", "param": None, "limit": 3, "start": 0, "limit_param": None,
    }  # fmt: skip


def test_secrets_and_channel_url_parts_are_templates() -> None:
    cfg = config(auth_keys={"api_key": "k-8f3a9c2e11"})
    ctx = Context(cfg, CAPTURE_DAY, [])
    key = explain(Slot("header", "x-api-key", ("k-8f3a9c2e11",)), ctx, 0)
    assert (key.kind, key.template) == ("secret", "${secrets.api_key}")
    host = explain(Slot("query", "site", ("shop.example",)), ctx, 0)
    assert (host.kind, host.template) == ("config", "${config.host}")
    unknown = explain(Slot("query", "token", ("zz-unknown-99",)), ctx, 0)
    assert unknown.kind == "unexplained" and "zz-unknown-99" not in json.dumps(unknown.describe())


def test_a_key_nested_in_a_json_body_is_a_secret_template(tmp_path: Path) -> None:
    cfg = config(auth_keys={"api_key": "k-8f3a9c2e11"})
    sent = {"auth": {"key": "k-8f3a9c2e11"}, "q": "x", "exact": False, "max": 50}
    data = [entry("/api/search", {"hits": items(0, 3)}, method="POST", request_json=sent)]
    synthesis = synthesize(analyze(har(*data), cfg), capture_for(tmp_path, data), cfg)
    assert "k-8f3a9c2e11" not in synthesis.text
    load_recipe(synthesis.text)  # the engine accepts a secret in a body
    request = yaml.safe_load(synthesis.text)["steps"][0]["request"]
    assert request["json"] == {
        "auth": {"key": "${secrets.api_key}"}, "q": "x", "exact": False, "max": 50,
    }  # fmt: skip


def test_csrf_token_in_a_hidden_input_becomes_an_extract_step(tmp_path: Path) -> None:
    form = "<form><input type='hidden' name='csrf_token' value='Xy7-token-42'></form>"
    data = [
        entry("/app", f"<html><body>{form}</body></html>", mime="text/html"),
        entry("/api/search", {"results": items(0, 4)}, method="POST",
              headers=[("X-CSRF-Token", "Xy7-token-42")], form={"q": "lamp"}),
    ]  # fmt: skip
    recipe = recipe_of(tmp_path, data, config())
    page, search = recipe["steps"]
    assert page["request"]["url"] == "${config.url}"
    assert page["extract"] == {"x_csrf_token": {"type": "html_input", "name": "csrf_token"}}
    assert search["request"]["headers"] == {"X-CSRF-Token": "${extract.x_csrf_token}"}
    assert search["request"]["method"] == "POST" and search["request"]["form"] == {"q": "lamp"}


def test_api_key_in_an_inline_script_becomes_a_regex_extract(tmp_path: Path) -> None:
    script = '<script>window.CONFIG = {"apiKey": "pk_live_51HqL", "debug": false};</script>'
    data = [
        entry("/app", f"<html><head>{script}</head></html>", mime="text/html"),
        entry("/api/items?key=pk_live_51HqL", {"items": items(0, 4)}),
    ]
    recipe = recipe_of(tmp_path, data, config())
    selector = recipe["steps"][0]["extract"]["key"]
    assert selector["type"] == "regex"
    import re

    assert re.search(selector["pattern"], script).group(1) == "pk_live_51HqL"  # type: ignore[union-attr]
    assert recipe["steps"][1]["request"]["query"] == {"key": "${extract.key}"}


def test_token_from_a_token_endpoint_is_token_endpoint_auth(tmp_path: Path) -> None:
    keys = {"client_id": "cid-1234", "client_secret": "cs-secret-9876"}
    cfg = config(auth_keys={**keys, "token_url": f"{ORIGIN}/oauth/token"})
    token = {"access_token": "tok-AbC123xyz", "token_type": "Bearer"}
    bearer = [("Authorization", "Bearer tok-AbC123xyz")]
    data = [
        entry(
            "/oauth/token", token, method="POST", form={"grant_type": "client_credentials", **keys}
        ),
        entry("/app", {"results": items(0, 3)}, headers=bearer),
    ]
    recipe = recipe_of(tmp_path, data, cfg)
    assert recipe["auth"] == {
        "type": "token_endpoint",
        "token_url": "${secrets.token_url}",
        "body": {"grant_type": "client_credentials", "client_id": "${secrets.client_id}",
                 "client_secret": "${secrets.client_secret}"},
        "body_format": "form",
        "token_path": "access_token",
    }  # fmt: skip
    assert "headers" not in recipe["steps"][0]["request"]
    assert "tok-AbC123xyz" not in yaml.safe_dump(recipe)


def test_session_cookie_from_a_login_form_is_login_form_auth(tmp_path: Path) -> None:
    cfg = config(login_credentials={"username": "ann@example.org", "password": "pw-Secret-1"})
    login_page = (
        "<form method='post'><input type='hidden' name='csrf' value='c5f-Token-77'>"
        "<input name='username'><input type='password' name='password'></form>"
    )
    sent = {"csrf": "c5f-Token-77", "username": "ann@example.org", "password": "pw-Secret-1"}
    data = [
        entry("/app", "", status=302, mime="text/html", response_headers=[("Location", "/login")]),
        entry("/login", login_page, mime="text/html"),
        entry("/login", "", method="POST", status=303, mime="text/html",
              form=sent,
              response_headers=[("Set-Cookie", "sid=s3ss10n-Value-1; Path=/; HttpOnly")]),
        entry("/api/orders", {"data": items(0, 5)}, headers=[("Cookie", "sid=s3ss10n-Value-1")]),
    ]  # fmt: skip
    recipe = recipe_of(tmp_path, data, cfg)
    assert recipe["auth"] == {
        "type": "login_form",
        "login_url": "${config.url}",
        "fields": {"username": "${secrets.username}", "password": "${secrets.password}"},
    }
    assert recipe["steps"][0]["request"] == {"url": "/api/orders"}
    assert recipe["steps"][0]["save"] == [{"type": "body", "name": "orders.${ext}"}]


def test_downloads_linked_from_a_page_are_saved_as_links(tmp_path: Path) -> None:
    listing = (
        "<ul>" + "".join(f"<li><a href='/files/r-{d}.csv'>r-{d}</a></li>" for d in (1, 2)) + "</ul>"
    )
    data = [
        entry("/app", f"<html>{listing}<a href='/logout'>out</a></html>", mime="text/html"),
        *(
            entry(f"/files/r-{d}.csv", "id,v\n1,2\n", mime="text/csv",
                  response_headers=[("Content-Disposition", f'attachment; filename="r-{d}.csv"')])
            for d in (1, 2)
        ),
    ]  # fmt: skip
    recipe = recipe_of(tmp_path, data, config())
    assert recipe["steps"] == [
        {
            "name": "app_page",
            "request": {"url": "${config.url}"},
            "save": [
                {"type": "links", "select": {"type": "html_links", "pattern": r"\.csv(\?|$)"}}
            ],
        }
    ]


def test_feed_only_captures_make_a_feed_recipe(tmp_path: Path) -> None:
    rss = (
        "<rss><channel>"
        + "".join(f"<item><guid>g{i}</guid><title>T{i}</title></item>" for i in range(3))
        + "</channel></rss>"
    )
    data = [
        entry("/app", "<html><link rel='alternate' href='/news.rss'></html>", mime="text/html"),
        entry("/news.rss", rss, mime="application/rss+xml"),
    ]
    recipe = recipe_of(tmp_path, data, config())
    assert (recipe["kind"], recipe["url"], recipe["entries_name"]) == (
        "feed",
        "/news.rss",
        "news_entries.json",
    )


def test_nothing_with_records_is_no_fetcher(tmp_path: Path) -> None:
    data = [entry("/app", "<html><p>hello</p></html>", mime="text/html")]
    with pytest.raises(NoFetcherError, match="carries records"):
        synthesize(analyze(har(*data), config()), capture_for(tmp_path, data), config())


# --- probes ---------------------------------------------------------------------------------------


def test_probes_for_the_next_page() -> None:
    body = {"items": items(0, 20), "page": 1, "total_pages": 3}
    # the page number first; an offset is a later guess when the body says there is more
    assert [p.url for p in next_page_probes(f"{ORIGIN}/api/items", body, 20)] == [
        f"{ORIGIN}/api/items?page=2",
        f"{ORIGIN}/api/items?offset=20",
    ]
    offset = next_page_probes(
        f"{ORIGIN}/api/r", {"count": 41, "results": []}, 25, ["offset", "limit"]
    )
    assert [p.url for p in offset] == [f"{ORIGIN}/api/r?offset=25&limit=25"]
    cursor = next_page_probes(f"{ORIGIN}/api/o", {"data": [], "next_cursor": "abc"}, 10, ["after"])
    assert cursor[0].url == f"{ORIGIN}/api/o?after=abc"


def test_a_next_page_number_is_asked_for_by_the_page_parameter() -> None:
    url = f"{ORIGIN}/api/things?page=2"
    body = {"things": items(0, 5), "paging": {"next_page": 3}}
    assert next_page_probes(url, body, 5)[0].url == f"{ORIGIN}/api/things?page=3"
    # no page parameter yet: the common name
    first = next_page_probes(f"{ORIGIN}/api/things", {"rows": items(0, 5), "nextPage": 2}, 5)
    assert first[0].url == f"{ORIGIN}/api/things?page=2"


def test_more_without_a_cursor_is_probed_by_keyset_page_and_offset() -> None:
    body = {"object": "list", "entries": items(0, 3), "hasMore": True}
    last = {"uuid": "u-3", "name": "three"}
    urls = [p.url for p in next_page_probes(f"{ORIGIN}/v2/entries", body, 3, (), last)]
    assert urls == [
        f"{ORIGIN}/v2/entries?page=2",
        f"{ORIGIN}/v2/entries?starting_after=u-3",
        f"{ORIGIN}/v2/entries?after=u-3",
        f"{ORIGIN}/v2/entries?since_id=u-3",
        f"{ORIGIN}/v2/entries?after_id=u-3",
        f"{ORIGIN}/v2/entries?offset=3",
    ]
    # a documented keyset parameter is the only one tried
    documented = next_page_probes(f"{ORIGIN}/v2/entries", body, 3, ["after_id"], last)
    assert [p.url for p in documented if "u-3" in p.url] == [f"{ORIGIN}/v2/entries?after_id=u-3"]


def test_what_says_there_is_more() -> None:
    deep = {"results": items(0, 4), "meta": {"pagination": {"current_page": 1, "last_page": 4}}}
    assert says_more(deep, 4)
    assert not says_more({"results": items(0, 4), "meta": {"page": 3, "total_pages": 3}}, 4)
    assert says_more({"results": items(0, 4), "total": 9}, 4)
    assert not says_more({"results": items(0, 4), "total": 4, "has_more": False}, 4)
    # nothing said: no guesses beyond what the URL or the documentation name
    assert next_page_probes(f"{ORIGIN}/api/x", {"results": items(0, 4)}, 4) == []


def test_documented_parameters_index_links_and_auth_attempts() -> None:
    doc = {
        "paths": {
            "/api/{version}/items": {
                "get": {
                    "parameters": [{"name": "page", "in": "query"}, {"name": "X", "in": "header"}]
                }
            }
        }
    }
    assert documented_params(doc, "/api/v1/items") == ["page"]
    index = {"items_url": f"{ORIGIN}/api/v1/items", "documentation_url": f"{ORIGIN}/openapi.json"}
    assert [p.url for p in json_links(index, f"{ORIGIN}/api/")] == [f"{ORIGIN}/api/v1/items"]
    attempts = auth_attempts({"client_id": "a", "client_secret": "b", "token_url": "https://t/x"})
    assert attempts[0].token_request == {
        "url": "https://t/x",
        "grant_type": "client_credentials",
        "client_id": "a",
        "client_secret": "b",
    }


# --- summary ------------------------------------------------------------------------------------


def test_summary_is_compact_and_redacted(tmp_path: Path) -> None:
    data = [
        entry(
            "/oauth/token",
            {"access_token": "tok-AbC123xyz"},
            method="POST",
            form={"client_secret": "cs-secret-9876"},
        ),
        entry(
            "/api/r", {"results": items(0, 3)}, headers=[("Authorization", "Bearer tok-AbC123xyz")]
        ),
        entry(
            "/api/r?offset=3",
            {"results": items(3, 3)},
            headers=[("Authorization", "Bearer tok-AbC123xyz")],
        ),
        entry("/app.js", "x", mime="application/javascript"),
    ]
    text = summarize_har(capture_for(tmp_path, data), {"cs-secret-9876"})
    assert "tok-AbC123xyz" not in text and "cs-secret-9876" not in text
    assert "records at 'results': 3, 3 per response" in text
    assert "query offset = —, 3" in text and "1 static asset" in text


def test_auth_attempts_answer_what_the_refusal_asked_for() -> None:
    keys = {"secret_token": "s3"}
    asked = auth_attempts(keys, challenge='ApiKey realm="partners"', refusal="")
    assert asked[0].headers == {"Authorization": "ApiKey s3"}
    named = auth_attempts(keys, refusal='{"message": "Api-Key header required"}')
    assert named[0].headers == {"Api-Key": "s3"}
    # a Basic challenge is for a user and a password, not a key: the common ways only
    basic = auth_attempts(keys, challenge='Basic realm="x"', refusal="Unauthorized")
    assert basic[0].headers == {"Authorization": "Bearer s3"}
    # a plain "api_key" is also tried as a Bearer token, after the key-shaped ways
    plain = auth_attempts({"api_key": "k"})
    assert [a.why for a in plain] == [
        "api_key as X-API-Key",
        "api_key as a query parameter",
        "api_key as a Bearer token",
    ]
