"""Pagination discovered from the responses: GraphQL pageInfo and keyset parameters."""

from __future__ import annotations

import json
from typing import Any

from fetcher_codegen.har import entries_from_har
from fetcher_codegen.pagination import Page, infer
from fetcher_codegen.records import find_records

ORIGIN = "http://shop.test"
QUERY = "query Offers($first: Int, $after: String) { offers(first: $first, after: $after) {...} }"


def har_entry(
    path: str, response: Any, *, request_json: Any = None, method: str = "GET"
) -> dict[str, Any]:
    request: dict[str, Any] = {"method": method, "url": ORIGIN + path, "headers": []}
    if request_json is not None:
        request["postData"] = {"mimeType": "application/json", "text": json.dumps(request_json)}
    return {
        "startedDateTime": "2026-03-10T10:00:00.000Z",
        "_resourceType": "fetch",
        "request": request,
        "response": {
            "status": 200,
            "headers": [],
            "content": {"mimeType": "application/json", "text": json.dumps(response)},
        },
    }


def pages(*items: dict[str, Any]) -> list[Page]:
    return [Page(e, find_records(e)) for e in entries_from_har({"log": {"entries": list(items)}})]


def relay(start: int, more: bool) -> dict[str, Any]:
    edges = [{"node": {"id": f"O-{n}", "title": f"Offer {n}"}} for n in range(start, start + 10)]
    info = {"endCursor": f"Y3Vyc29yOj{start + 9}", "hasNextPage": more}
    return {"data": {"offers": {"edges": edges, "pageInfo": info}}}


def test_a_graphql_relay_cursor_is_found_from_one_page() -> None:
    body = {"query": QUERY, "variables": {"first": 10, "after": None}}
    found, warnings = infer(
        pages(har_entry("/graphql", relay(0, True), request_json=body, method="POST"))
    )
    assert warnings == []
    assert found is not None
    assert found.config == {
        "type": "graphql",
        "end_cursor_path": "data.offers.pageInfo.endCursor",
        "has_next_path": "data.offers.pageInfo.hasNextPage",
        "cursor_variable": "after",
    }


def test_the_graphql_variable_is_the_one_a_later_page_sent_the_cursor_in() -> None:
    query = "query($n: Int, $from: String) { offers(first: $n, from: $from) {...} }"
    first = {"query": query, "variables": {"n": 10}}
    second = {"query": query, "variables": {"n": 10, "from": "Y3Vyc29yOj9"}}
    found, _ = infer(
        pages(
            har_entry("/graphql", relay(0, True), request_json=first, method="POST"),
            har_entry("/graphql", relay(10, False), request_json=second, method="POST"),
        )
    )
    assert found is not None and found.config["cursor_variable"] == "from"


def rows(ids: range) -> dict[str, Any]:
    return {"rows": [{"id": n, "name": f"Row {n}"} for n in ids]}


def test_a_keyset_parameter_is_the_last_record_not_an_offset() -> None:
    found, _ = infer(
        pages(
            har_entry("/api/rows?limit=5", rows(range(101, 106))),
            har_entry("/api/rows?limit=5&after=105", rows(range(106, 111))),
            har_entry("/api/rows?limit=5&after=110", rows(range(111, 113))),
        )
    )
    assert found is not None
    assert found.config["type"] == "cursor"
    assert found.config["cursor_path"] == "rows[-1].id"
    assert found.config["param"] == "after"


def test_keyset_on_a_string_key_of_a_top_level_list() -> None:
    def names(letters: str) -> list[dict[str, str]]:
        return [{"slug": f"item-{c}"} for c in letters]

    found, _ = infer(
        pages(
            har_entry("/api/items", names("abc")),
            har_entry("/api/items?since=item-c", names("def")),
            har_entry("/api/items?since=item-f", names("g")),
        )
    )
    assert found is not None
    assert (found.config["cursor_path"], found.config["param"]) == ("[-1].slug", "since")


def test_an_offset_on_contiguous_ids_stays_an_offset() -> None:
    found, _ = infer(
        pages(
            har_entry("/api/rows?offset=0&limit=5", rows(range(1, 6))),
            har_entry("/api/rows?offset=5&limit=5", rows(range(6, 11))),
            har_entry("/api/rows?offset=10&limit=5", rows(range(11, 13))),
        )
    )
    assert found is not None and found.config["type"] == "offset"


def products(n: int) -> list[dict[str, Any]]:
    return [{"sku": f"P-{i}", "name": f"Product {i}"} for i in range(n)]


def test_one_page_that_echoes_offset_and_limit_is_an_offset_api() -> None:
    body = {"total": 37, "offset": 0, "limit": 10, "products": products(10)}
    found, _ = infer(pages(har_entry("/api/products", body)))
    assert found is not None
    assert found.config == {
        "type": "offset", "param": "offset", "limit": 10, "start": 0, "limit_param": "limit",
        "total_path": "total",
    }  # fmt: skip


def test_one_page_that_echoes_page_and_size_in_meta_is_paged() -> None:
    body = {"data": products(20), "meta": {"page": 1, "per_page": 20, "total_pages": 4}}
    found, _ = infer(pages(har_entry("/api/products", body)))
    assert found is not None
    assert found.config == {
        "type": "page_number", "param": "page", "start": 1, "page_size": 20,
        "page_size_param": "per_page", "total_pages_path": "meta.total_pages",
    }  # fmt: skip


def test_one_complete_page_is_not_paged() -> None:
    body = {"total": 7, "offset": 0, "limit": 10, "products": products(7)}
    found, _ = infer(pages(har_entry("/api/products", body)))
    assert found is None


def test_the_channel_window_replaces_the_page_default_window() -> None:
    from datetime import date, timedelta

    from amazoniax_dagster.core.messages import WebSourceConfig
    from fetcher_codegen.provenance import Context, date_source

    today = date(2026, 3, 10)
    cfg = WebSourceConfig.model_validate(
        {"url": f"{ORIGIN}/events", "navigation_details": {"date_range": {"last_days": 30}}}
    )
    ctx = Context(cfg, today, [])
    page_default = date_source((today - timedelta(days=7)).isoformat(), ctx)
    assert page_default is not None
    assert page_default.template == "${window.start:%Y-%m-%d}"  # 30 days at run time, not 7
    assert date_source("2019-01-01", ctx) is None  # an old constant is not the window


def test_a_clicked_through_browser_recipe_starts_where_the_clicking_began() -> None:
    from fetcher_codegen.capture import CaptureStep
    from fetcher_codegen.synthesize_browser import _pagination_start

    def step(index: int, action: str, url: str) -> CaptureStep:
        return CaptureStep(index, action, url, None, None)

    origin = "https://news.example.test"
    # the channel's page is page 1 although later pages have another path (/page/2/)
    steps = [
        step(0, "open", f"{origin}/"),
        step(1, "click next", f"{origin}/page/2/"),
        step(2, "click next", f"{origin}/page/3/"),
    ]
    assert _pagination_start(steps) == f"{origin}/"
    # a data page reached by a link first: the clicking began there
    hub = [
        step(0, "open", f"{origin}/"),
        step(1, "follow link", f"{origin}/archive?year=2026"),
        step(2, "click next", f"{origin}/archive?year=2026&p=2"),
    ]
    assert _pagination_start(hub) == f"{origin}/archive?year=2026"
    assert _pagination_start([step(0, "open", f"{origin}/")]) is None


def test_an_error_reply_names_where_the_resource_moved() -> None:
    from fetcher_codegen.probes import moved_to

    base = "https://shop.test/v1/orders"
    assert moved_to('{"error": "Gone. See /v3/orders?cursor=&size=20."}', base) == [
        "https://shop.test/v3/orders?size=20"
    ]
    reply = "moved to https://shop.test/new/orders, docs at https://elsewhere.test/x"
    assert moved_to(reply, base) == ["https://shop.test/new/orders"]
    assert moved_to("Not found: /v1/orders", base) == []  # itself is not a new place


# --- body probes: the next page of a JSON POST API or GraphQL query --------------------------

SEARCH = "https://shop.test/api/search"


def hits(start: int, n: int) -> list[dict[str, Any]]:
    return [{"id": f"H-{i}", "title": f"Hit {i}"} for i in range(start, start + n)]


def probe_bodies(
    sent: Any, reply: Any, count: int, last: dict[str, str] | None = None
) -> list[Any]:
    from fetcher_codegen.probes_body import next_body_probes

    found = next_body_probes(SEARCH, sent, reply, count, last)
    assert all(p.method == "POST" and p.url == SEARCH for p in found)
    return [p.json for p in found]


def test_a_body_page_number_is_advanced_and_the_filter_kept() -> None:
    sent = {"filter": {"q": "lamp", "tags": ["a"]}, "page": 1, "size": 20}
    reply = {"results": hits(0, 20), "total": 55}
    assert probe_bodies(sent, reply, 20)[0] == {
        "filter": {"q": "lamp", "tags": ["a"]}, "page": 2, "size": 20,
    }  # fmt: skip


def test_a_body_offset_moves_by_the_size_beside_it_and_keeps_its_type() -> None:
    sent = {"paging": {"offset": "0", "limit": "25"}, "sort": "date"}
    assert probe_bodies(sent, {"rows": hits(0, 25)}, 25) == [
        {"paging": {"offset": "25", "limit": "25"}, "sort": "date"}
    ]


def test_graphql_offset_variables_are_advanced() -> None:
    query = "query Items($offset: Int, $limit: Int) { items(offset: $offset, limit: $limit) {id} }"
    sent = {"query": query, "variables": {"offset": 0, "limit": 10}}
    reply = {"data": {"items": {"nodes": hits(0, 10), "totalCount": 37}}}
    assert probe_bodies(sent, reply, 10) == [
        {"query": query, "variables": {"offset": 10, "limit": 10}}
    ]


def test_the_replys_cursor_goes_into_the_body_cursor() -> None:
    sent = {"cursor": None, "q": "x"}
    reply = {"items": hits(0, 5), "meta": {"next_cursor": "c-2"}}
    assert probe_bodies(sent, reply, 5) == [{"cursor": "c-2", "q": "x"}]


def test_a_body_without_paging_fields_gets_the_common_ones_when_the_reply_says_more() -> None:
    sent = {"q": "x"}
    reply = {"items": hits(0, 5), "has_more": True}
    assert probe_bodies(sent, reply, 5, {"id": "H-4"}) == [
        {"q": "x", "page": 2},
        {"q": "x", "offset": 5},
        {"q": "x", "after": "H-4"},
    ]


def test_graphql_guesses_only_the_variables_its_query_declares() -> None:
    query = "query($page: Int!, $q: String) { search(page: $page, q: $q) { hits {id} pages } }"
    sent = {"query": query, "variables": {"q": "x"}}
    reply = {"data": {"search": {"hits": hits(0, 10), "pages": 4}}}
    assert probe_bodies(sent, reply, 10) == [{"query": query, "variables": {"q": "x", "page": 2}}]


def test_nothing_is_guessed_when_the_reply_does_not_say_more() -> None:
    assert probe_bodies({"q": "x"}, {"items": hits(0, 3)}, 3) == []
    assert probe_bodies({"page": 1}, {"items": []}, 0) == []
    assert probe_bodies(["not", "an", "object"], {"items": hits(0, 3)}, 3) == []


# --- pagination read from two POST pages that differ in one body field -----------------------


def posted(path: str, body: Any, reply: Any) -> dict[str, Any]:
    return har_entry(path, reply, request_json=body, method="POST")


def test_two_post_pages_differing_in_the_body_page_are_page_numbers() -> None:
    def body(n: int) -> dict[str, Any]:
        return {"filter": {"q": "lamp"}, "page": n, "size": 5}

    found, _ = infer(
        pages(
            posted("/api/search", body(1), {"results": hits(0, 5), "total": 12}),
            posted("/api/search", body(2), {"results": hits(5, 5), "total": 12}),
        )
    )
    assert found is not None
    assert found.config == {
        "type": "page_number", "param": None, "start": 1, "page_size": 5, "total_path": "total",
    }  # fmt: skip
    assert dict(found.templates) == {("json", "page"): "${page}"}
    assert ("json", "size") not in found.slots  # the size stays in the body


def test_graphql_offset_variables_are_an_offset_in_the_body() -> None:
    query = "query($offset: Int, $limit: Int) { items(offset: $offset, limit: $limit) {id} }"

    def body(offset: int) -> dict[str, Any]:
        return {"query": query, "variables": {"offset": offset, "limit": 10}}

    def reply(start: int, n: int) -> dict[str, Any]:
        return {"data": {"members": {"items": hits(start, n), "totalCount": 24}}}

    found, _ = infer(
        pages(
            posted("/graphql", body(0), reply(0, 10)),
            posted("/graphql", body(10), reply(10, 10)),
            posted("/graphql", body(20), reply(20, 4)),
        )
    )
    assert found is not None
    assert found.config == {
        "type": "offset", "param": None, "limit": 10, "start": 0, "limit_param": None,
        "total_path": "data.members.totalCount",  # beside the records
    }  # fmt: skip
    assert dict(found.templates) == {("json", "variables.offset"): "${offset}"}


def test_a_body_cursor_the_previous_reply_gave_is_a_cursor() -> None:
    found, _ = infer(
        pages(
            posted("/api/feed", {"cursor": None}, {"items": hits(0, 5), "next": "Q3VyMDA1"}),
            posted("/api/feed", {"cursor": "Q3VyMDA1"}, {"items": hits(5, 5), "next": None}),
        )
    )
    assert found is not None
    assert found.config == {"type": "cursor", "cursor_path": "next", "param": None}
    assert dict(found.templates) == {("json", "cursor"): "${cursor}"}


def test_a_recipe_body_keeps_the_json_types_of_captured_constants() -> None:
    from fetcher_codegen.json_body import recipe_body

    first = {"page": 1, "size": 20, "exact": True, "cursor": None, "q": "a", "f": {"ids": [1]}}
    values = {"page": "${page}", "size": "20", "exact": "true", "cursor": "", "q": "a"}
    assert recipe_body(first, {**values, "f.ids": None}) == {
        "page": "${page}", "size": 20, "exact": True, "cursor": None, "q": "a", "f": {},
    }  # fmt: skip
    nested = {"variables": {"offset": 0, "limit": 10}}
    assert recipe_body(nested, {"variables.offset": "${offset}", "variables.limit": "10"}) == {
        "variables": {"offset": "${offset}", "limit": 10}
    }


def test_a_body_keyset_gets_the_last_id_and_is_read_back_as_a_keyset() -> None:
    reply = {"items": hits(0, 5), "hasMore": True}
    assert probe_bodies({"after": None, "q": "x"}, reply, 5, {"id": "H-4"}) == [
        {"after": "H-4", "q": "x"}
    ]
    found, _ = infer(
        pages(
            posted("/api/feed", {"after": None, "q": "x"}, reply),
            posted("/api/feed", {"after": "H-4", "q": "x"}, {"items": hits(5, 3)}),
        )
    )
    assert found is not None
    assert found.config == {
        "type": "cursor", "cursor_path": "items[-1].id", "param": None, "has_more_path": "hasMore",
    }  # fmt: skip
    assert dict(found.templates) == {("json", "after"): "${cursor}"}


def test_the_documented_body_fields_are_the_guesses() -> None:
    from fetcher_codegen.probes_body import documented_body_fields, next_body_probes

    doc = {
        "paths": {
            "/api/search": {
                "post": {
                    "requestBody": {
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Q"}}
                        }
                    }
                }
            }
        },
        "components": {"schemas": {"Q": {"properties": {"q": {}, "skip": {}, "take": {}}}}},
    }
    documented = documented_body_fields(doc, "/api/search")
    assert documented == ["q", "skip", "take"]
    assert documented_body_fields(doc, "/api/other") == []
    reply = {"items": hits(0, 5), "total": 12}
    probes = next_body_probes(SEARCH, {"q": "x"}, reply, 5, None, documented)
    assert [p.json for p in probes] == [{"q": "x", "skip": 5}]
