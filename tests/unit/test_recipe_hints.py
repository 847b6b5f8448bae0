"""Signs of more data in the last page a recipe step fetched (the completeness proof's input)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import httpx

from amazoniax_dagster.fetchers.recipe.hints import more_hints
from amazoniax_dagster.fetchers.recipe.http import Page


def page(tmp_path: Path, body: Any, records: int, content_type: str = "application/json") -> Page:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    path = tmp_path / "page.body"
    path.write_bytes(raw)
    return Page(
        url="https://api.example.test/v1/x",
        shown_url="https://api.example.test/v1/x",
        status=200,
        headers=httpx.Headers({"content-type": content_type}),
        path=path,
        size=len(raw),
        digest=hashlib.sha256(raw).hexdigest(),
        records=[{}] * records,
    )


def test_a_next_page_number_and_a_page_count_beyond_this_page_are_signs(tmp_path: Path) -> None:
    assert more_hints(page(tmp_path, {"data": [1, 2], "nextPage": 2}, 2), 2, {}) == [
        "nextPage is 2"
    ]
    deep = {"rows": [1], "meta": {"paging": {"current_page": 2, "page_count": 5}}}
    assert more_hints(page(tmp_path, deep, 1), 11, {}) == ["page_count is 5, this is page 2"]


def test_the_last_page_shows_no_sign(tmp_path: Path) -> None:
    last = {"rows": [1], "meta": {"page": 3, "total_pages": 3}, "next_page": None}
    assert more_hints(page(tmp_path, last, 1), 21, {}) == []
    assert more_hints(page(tmp_path, {"rows": [1], "has_more": False}, 1), 1, {}) == []


def test_an_xml_reply_and_a_numeric_cursor_are_read_too(tmp_path: Path) -> None:
    xml = (
        b'<?xml version="1.0"?><result xmlns="urn:x"><rows><row><id>1</id></row></rows>'
        b"<paging><moreResults>true</moreResults><nextToken>AbC</nextToken></paging></result>"
    )
    hints = more_hints(page(tmp_path, xml, 0, "text/xml; charset=utf-8"), 1, {})
    assert sorted(hints) == ["moreResults is true", "nextToken is set"]
    atom = b'<feed xmlns="http://www.w3.org/2005/Atom"><link rel="next" href="/f?p=2"/></feed>'
    assert more_hints(page(tmp_path, atom, 0, "application/xml"), 0, {}) == ["a link rel=next"]
    assert more_hints(page(tmp_path, {"data": [1], "next_cursor": 40}, 1), 1, {}) == [
        "next_cursor is set"
    ]
    last = b"<result><rows><row><id>1</id></row></rows><nextToken/></result>"
    assert more_hints(page(tmp_path, last, 0, "application/xml"), 1, {}) == []
    # a Spring Data page: "last" false means more pages
    spring = {"content": [1, 2], "last": False, "totalPages": 3, "number": 0}
    assert "last is false" in more_hints(page(tmp_path, spring, 2), 2, {}, paginated=True)
    # its last page, paged: the page count alone (no page number it names) is no sign
    end = {"content": [1], "last": True, "totalPages": 3, "number": 2}
    assert more_hints(page(tmp_path, end, 1), 5, {}, paginated=True) == []


def test_a_full_page_asked_for_in_a_json_body_is_a_sign(tmp_path: Path) -> None:
    from amazoniax_dagster.fetchers.recipe.hints import body_params

    sent = {"query": "q", "variables": {"offset": 0, "limit": 3, "exact": True}}
    assert body_params(sent) == {"offset": "0", "limit": "3"}
    full = page(tmp_path, {"data": {"items": [1, 2, 3]}}, 3)
    assert more_hints(full, 3, body_params(sent)) == ["a full page (limit=3) with no page after it"]
    assert more_hints(page(tmp_path, {"items": [1, 2]}, 2), 2, body_params(sent)) == []
    assert body_params(None) == {} and body_params(["not", "an", "object"]) == {}


def test_an_aws_style_truncated_listing_says_there_is_more(tmp_path: Path) -> None:
    listing = (
        b'<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        b"<IsTruncated>%s</IsTruncated><Contents><Key>a.csv</Key></Contents></ListBucketResult>"
    )
    truncated = page(tmp_path, listing % b"true", 1, "application/xml")
    assert more_hints(truncated, 1, {}) == ["IsTruncated is true"]
    assert more_hints(page(tmp_path, listing % b"false", 1, "application/xml"), 1, {}) == []
