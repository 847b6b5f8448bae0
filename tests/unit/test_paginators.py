"""Paginator stop logic: every paginator ends, whatever the pages say."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import TypeAdapter

from amazoniax_dagster.core.errors import ConfigError, SiteChangedError
from amazoniax_dagster.fetchers.recipe import (
    CursorPaginate,
    Page,
    PaginateConfig,
    PreparedRequest,
    make_paginator,
)
from amazoniax_dagster.fetchers.recipe.templating import Scope, render_data
from amazoniax_dagster.fetchers.recipe.xmltree import records_at

BASE = "https://api.example.com/items"
CONFIG = TypeAdapter(PaginateConfig)


@dataclass
class Reply:
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Run:
    requests: list[PreparedRequest]
    stop_reason: str | None
    guard_hit: bool


def drive(
    tmp_path: Path,
    config: dict[str, Any] | None,
    replies: list[Reply],
    *,
    records: str | None = "items",
    max_pages: int = 100,
    request: PreparedRequest | None = None,
    body: Any = None,
) -> Run:
    """Request pages the way the engine does until the paginator stops (or replies run out);
    a ``body`` template is rendered with the paginator's variables, as a step's JSON body."""
    paginator = make_paginator(
        CONFIG.validate_python(config) if config else None, max_pages=max_pages
    )
    sent: list[PreparedRequest] = []
    for number, reply in enumerate(replies):
        if body is not None:
            scope = Scope(BASE, variables=paginator.variables())
            request = PreparedRequest("POST", BASE, json=render_data(body, scope))
        prepared = paginator.prepare(request or PreparedRequest("GET", BASE))
        sent.append(prepared)
        page = _page(tmp_path / f"{number}.body", prepared, reply)
        if records and page.is_xml():
            page.records = records_at(page.tree(), records)
        else:
            page.records = page.json().get(records) if records else None
        if not paginator.advance(page):
            return Run(sent, paginator.stop_reason, paginator.guard_hit)
    raise AssertionError(f"the paginator asked for more than {len(replies)} pages")


def _page(path: Path, request: PreparedRequest, reply: Reply) -> Page:
    """A page of ``reply``: its body as JSON, or as given when it is text (an XML reply)."""
    xml = isinstance(reply.body, str)
    content = reply.body.encode() if xml else json.dumps(reply.body).encode()
    path.write_bytes(content)
    url = str(httpx.URL(request.url, params=dict(request.params)))
    media = "application/xml" if xml else "application/json"
    headers = httpx.Headers({"content-type": media, **reply.headers})
    digest = hashlib.sha256(content).hexdigest()
    return Page(url, url, 200, headers, path, len(content), digest)


def items(*values: int, **extra: Any) -> Reply:
    return Reply({"items": list(values), **extra})


def params(run: Run, name: str) -> list[str | None]:
    return [request.params.get(name) for request in run.requests]


def test_page_number_stops_on_an_empty_page(tmp_path: Path) -> None:
    run = drive(tmp_path, {"type": "page_number"}, [items(1, 2), items(3, 4), items()])
    assert params(run, "page") == ["1", "2", "3"]
    assert run.stop_reason == "empty page"


def test_page_number_stops_on_a_short_page(tmp_path: Path) -> None:
    config = {"type": "page_number", "start": 0, "page_size": 2, "page_size_param": "size"}
    run = drive(tmp_path, config, [items(1, 2), items(3)])
    assert params(run, "page") == ["0", "1"]
    assert params(run, "size") == ["2", "2"]
    assert run.stop_reason == "short page"


def test_page_number_stops_at_total_pages(tmp_path: Path) -> None:
    config = {"type": "page_number", "total_pages_path": "meta.pages"}
    replies = [items(n, meta={"pages": 2}) for n in range(1, 5)]
    run = drive(tmp_path, config, replies)
    assert len(run.requests) == 2 and run.stop_reason == "last page reached"


def test_offset_advances_by_the_limit_and_stops_on_a_short_page(tmp_path: Path) -> None:
    run = drive(tmp_path, {"type": "offset", "limit": 2}, [items(1, 2), items(3, 4), items(5)])
    assert params(run, "offset") == ["0", "2", "4"]
    assert params(run, "limit") == ["2", "2", "2"]
    assert run.stop_reason == "short page"


def test_offset_stops_when_the_total_is_reached(tmp_path: Path) -> None:
    config = {"type": "offset", "limit": 2, "total_path": "total"}
    replies = [items(1, 2, total=4), items(3, 4, total=4), items(5, 6, total=4)]
    run = drive(tmp_path, config, replies)
    assert len(run.requests) == 2 and run.stop_reason == "total reached"


def test_cursor_follows_until_there_is_none(tmp_path: Path) -> None:
    config = {"type": "cursor", "cursor_path": "next"}
    replies = [items(1, next="c2"), items(2, next="c3"), items(3, next=None)]
    run = drive(tmp_path, config, replies)
    assert params(run, "cursor") == [None, "c2", "c3"]
    assert run.stop_reason == "no next cursor"


def test_cursor_from_a_header(tmp_path: Path) -> None:
    config = {"type": "cursor", "cursor_header": "X-Next", "param": "after"}
    replies = [Reply({"items": [1]}, {"X-Next": "b"}), Reply({"items": [2]})]
    run = drive(tmp_path, config, replies)
    assert params(run, "after") == [None, "b"]
    assert run.stop_reason == "no next cursor"


def test_a_cursor_that_repeats_stops(tmp_path: Path) -> None:
    config = {"type": "cursor", "cursor_path": "next"}
    replies = [items(n, next="same") for n in range(1, 10)]
    run = drive(tmp_path, config, replies)
    assert len(run.requests) == 2 and run.stop_reason == "repeated position"


def test_a_later_page_repeating_an_earlier_one_stops(tmp_path: Path) -> None:
    config = {"type": "page_number"}
    run = drive(tmp_path, config, [items(1, 2), items(3, 4), items(3, 4), items(5)])
    assert len(run.requests) == 3 and run.stop_reason == "same body as an earlier page"


def test_a_second_page_that_is_the_first_again_is_a_site_change(tmp_path: Path) -> None:
    """The site ignores the paging parameter (renamed, dropped): stopping would lose the rest
    without a word, so the fetch fails as site changed and heal takes over."""
    config = {"type": "offset", "param": "offset", "limit": 2}
    with pytest.raises(SiteChangedError, match="second page is the first page again"):
        drive(tmp_path, config, [items(1, 2)] * 5)


def test_has_more_false_stops(tmp_path: Path) -> None:
    config = {"type": "page_number", "has_more_path": "meta.has_more"}
    replies = [Reply({"meta": {"has_more": True}, "n": 1}), Reply({"meta": {"has_more": False}})]
    run = drive(tmp_path, config, replies, records=None)
    assert len(run.requests) == 2 and run.stop_reason == "has_more is false"


def test_the_max_pages_guard_stops_an_endless_site(tmp_path: Path) -> None:
    config = {"type": "cursor", "cursor_path": "next"}
    replies = [items(n, next=f"c{n + 1}") for n in range(1, 50)]
    run = drive(tmp_path, config, replies, max_pages=5)
    assert len(run.requests) == 5
    assert run.guard_hit and run.stop_reason == "max_pages (5) reached"


def test_link_header_follows_rel_next(tmp_path: Path) -> None:
    replies = [
        Reply({"items": [1]}, {"Link": '<https://api.example.com/items?page=2>; rel="next"'}),
        Reply({"items": [2]}, {"Link": '</items?page=3>; rel="next", </items?page=1>; rel="prev"'}),
        Reply({"items": [3]}, {"Link": '</items?page=1>; rel="first"'}),
    ]
    request = PreparedRequest("GET", BASE, params={"q": "x"})
    run = drive(tmp_path, {"type": "link_header"}, replies, request=request)
    assert [r.url for r in run.requests] == [
        BASE,
        "https://api.example.com/items?page=2",
        "https://api.example.com/items?page=3",
    ]
    assert [dict(r.params) for r in run.requests] == [{"q": "x"}, {}, {}]
    assert run.stop_reason == "no next link"


def test_a_link_to_the_same_page_stops(tmp_path: Path) -> None:
    replies = [Reply({"items": [n]}, {"Link": f'<{BASE}>; rel="next"'}) for n in range(5)]
    run = drive(tmp_path, {"type": "link_header"}, replies)
    assert len(run.requests) == 1 and run.stop_reason == "repeated position"


def test_next_url_resolves_relative_urls(tmp_path: Path) -> None:
    config = {"type": "next_url", "next_url_path": "links.next"}
    replies = [
        items(1, links={"next": "/items?after=1"}),
        items(2, links={"next": "https://other.example.com/items?after=2"}),
        items(3, links={"next": None}),
    ]
    run = drive(tmp_path, config, replies)
    assert [r.url for r in run.requests][1:] == [
        "https://api.example.com/items?after=1",
        "https://other.example.com/items?after=2",
    ]
    assert run.stop_reason == "no next URL"


def test_graphql_puts_the_end_cursor_into_the_variables(tmp_path: Path) -> None:
    config = {
        "type": "graphql",
        "end_cursor_path": "data.pageInfo.endCursor",
        "has_next_path": "data.pageInfo.hasNextPage",
    }

    def reply(n: int, more: bool) -> Reply:
        info = {"endCursor": f"e{n}", "hasNextPage": more}
        return Reply({"data": {"nodes": [n], "pageInfo": info}})

    request = PreparedRequest("POST", BASE, json={"query": "q", "variables": {"first": 1}})
    run = drive(
        tmp_path,
        config,
        [reply(1, True), reply(2, True), reply(3, False)],
        records=None,
        request=request,
    )
    assert [r.json["variables"] for r in run.requests] == [
        {"first": 1, "after": None},
        {"first": 1, "after": "e1"},
        {"first": 1, "after": "e2"},
    ]
    assert run.stop_reason == "hasNextPage is false"


def test_graphql_needs_a_json_body(tmp_path: Path) -> None:
    config = {"type": "graphql", "end_cursor_path": "a", "has_next_path": "b"}
    with pytest.raises(ConfigError, match="JSON object request body"):
        drive(tmp_path, config, [items(1)])


def test_without_paginate_there_is_one_request(tmp_path: Path) -> None:
    run = drive(tmp_path, None, [items(1), items(2)])
    assert len(run.requests) == 1 and run.stop_reason == "single request"


def test_a_json_path_on_a_non_json_page_is_a_site_change(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_bytes(b"<html>maintenance</html>")
    page = Page(BASE, BASE, 200, httpx.Headers({"content-type": "text/html"}), path, 24, "d")
    paginator = make_paginator(
        CONFIG.validate_python({"type": "next_url", "next_url_path": "n"}), max_pages=9
    )
    with pytest.raises(SiteChangedError, match="expected JSON"):
        paginator.advance(page)


def test_an_unknown_paginator_type_lists_the_known_ones() -> None:
    config = CursorPaginate.model_construct(type="scroll")
    with pytest.raises(ConfigError) as caught:
        make_paginator(config, max_pages=1)
    for name in ("cursor", "graphql", "link_header", "next_url", "offset", "page_number"):
        assert name in str(caught.value)


def test_a_page_number_in_a_json_body_is_sent_as_a_number(tmp_path: Path) -> None:
    config = {"type": "page_number", "param": None, "page_size": 2}
    body = {"filter": {"q": "lamp"}, "page": "${page}", "size": 2}
    run = drive(tmp_path, config, [items(1, 2), items(3, 4), items(5)], body=body)
    assert [r.json for r in run.requests] == [
        {"filter": {"q": "lamp"}, "page": n, "size": 2} for n in (1, 2, 3)
    ]
    assert run.requests[0].params == {} and run.stop_reason == "short page"


def test_an_offset_in_graphql_variables_moves_by_the_limit(tmp_path: Path) -> None:
    config = {"type": "offset", "param": None, "limit_param": None, "limit": 2}
    body = {"query": "q", "variables": {"offset": "${offset}", "limit": 2}}
    run = drive(tmp_path, config, [items(1, 2), items(3, 4), items()], body=body)
    assert [r.json["variables"] for r in run.requests] == [
        {"offset": n, "limit": 2} for n in (0, 2, 4)
    ]
    assert run.stop_reason == "empty page"


def test_a_body_cursor_is_null_until_the_reply_gives_one(tmp_path: Path) -> None:
    config = {"type": "cursor", "param": None, "cursor_path": "next"}
    body = {"cursor": "${cursor}", "q": "x"}
    replies = [items(1, next="c2"), items(2, next="c3"), items(3, next=None)]
    run = drive(tmp_path, config, replies, body=body)
    assert [r.json["cursor"] for r in run.requests] == [None, "c2", "c3"]
    assert run.stop_reason == "no next cursor"


# --- XML replies: the same paths, read in the XML tree ------------------------------------


def vehicles(*ids: int, token: int | None = None) -> Reply:
    """A page of a token-paged XML API: ``<nextPageToken>`` only while there is more."""
    rows = "".join(f"<vehicle><id>{i}</id></vehicle>" for i in ids)
    more = f"<nextPageToken>{token}</nextPageToken>" if token is not None else ""
    return Reply(f'<?xml version="1.0"?><response><vehicles>{rows}</vehicles>{more}</response>')


def test_a_cursor_path_reads_a_token_element_of_an_xml_reply(tmp_path: Path) -> None:
    config = {"type": "cursor", "cursor_path": "response.nextPageToken", "param": "pageToken"}
    replies = [vehicles(1, 2, token=2), vehicles(3, 4, token=4), vehicles(5), vehicles(6)]
    run = drive(tmp_path, config, replies, records="response.vehicles.vehicle")
    assert params(run, "pageToken") == [None, "2", "4"]
    assert run.stop_reason == "no next cursor"


def s3_listing(*keys: str, truncated: bool, token: str = "") -> Reply:
    """An AWS-style ListObjectsV2 reply (namespaced, ``IsTruncated`` and a continuation)."""
    rows = "".join(f"<Contents><Key>{k}</Key><Size>1</Size></Contents>" for k in keys)
    following = f"<NextContinuationToken>{token}</NextContinuationToken>" if token else ""
    return Reply(
        '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        f"<Name>b</Name><KeyCount>{len(keys)}</KeyCount><IsTruncated>{str(truncated).lower()}"
        f"</IsTruncated>{rows}{following}</ListBucketResult>"
    )


def test_aws_style_is_truncated_and_a_continuation_token_page_an_xml_listing(
    tmp_path: Path,
) -> None:
    config = {
        "type": "cursor",
        "cursor_path": "ListBucketResult.NextContinuationToken",
        "has_more_path": "ListBucketResult.IsTruncated",
        "param": "continuation-token",
    }
    replies = [
        s3_listing("a.csv", "b.csv", truncated=True, token="1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm"),
        s3_listing("c.csv", truncated=True, token="007"),
        s3_listing("d.csv", truncated=False, token="should-not-be-followed"),
        s3_listing("e.csv", truncated=False),
    ]
    run = drive(tmp_path, config, replies, records="ListBucketResult.Contents")
    # the one-element page still counts as a page of records; a leading zero stays text
    assert params(run, "continuation-token") == [None, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm", "007"]
    assert run.stop_reason == "has_more is false"


def test_an_xml_total_stops_an_offset_paginator(tmp_path: Path) -> None:
    config = {"type": "offset", "param": "start", "limit": 2, "total_path": "results.total"}
    page = '<results><total>3</total><item id="{0}"/><item id="{1}"/></results>'
    replies = [Reply(page.format(1, 2)), Reply(page.format(3, 4)), Reply(page.format(5, 6))]
    run = drive(tmp_path, config, replies, records="results.item")
    assert params(run, "start") == ["0", "2"]
    assert run.stop_reason == "total reached"


def test_an_xml_reply_that_is_not_well_formed_is_a_site_change(tmp_path: Path) -> None:
    config = {"type": "cursor", "cursor_path": "response.next"}
    with pytest.raises(SiteChangedError, match="expected XML"):
        drive(tmp_path, config, [Reply("<response><next>2</response>")], records=None)


def test_an_xml_reply_declaring_entities_is_refused(tmp_path: Path) -> None:
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;">]>'
        "<r><next>&b;</next></r>"
    )
    with pytest.raises(SiteChangedError, match="expected XML"):
        drive(tmp_path, {"type": "cursor", "cursor_path": "r.next"}, [Reply(bomb)], records=None)


def test_a_link_paginator_follows_the_root_link_rel_next_of_an_xml_reply(tmp_path: Path) -> None:
    def listing(number: int, *rels: str) -> Reply:
        links = "".join(f'<link rel="{r}" href="/items?p={number + d}"/>' for r, d in rels)
        # a record's own link is not the document's
        row = f'<row><link rel="next" href="/rows/{number}"/><id>{number}</id></row>'
        return Reply(f"<dataset>{links}<rows>{row}{row}</rows></dataset>")

    replies = [
        listing(1, ("next", 1)),
        listing(2, ("prev", -1), ("next", 1)),
        listing(3, ("prev", -1), ("self", 0)),
    ]
    run = drive(tmp_path, {"type": "link_header"}, replies, records="dataset.rows.row")
    assert [r.url for r in run.requests] == [BASE, f"{BASE}?p=2", f"{BASE}?p=3"]
    assert run.stop_reason == "no next link"
