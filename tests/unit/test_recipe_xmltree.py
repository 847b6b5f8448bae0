"""The XML tree recipe paths read: the JSON shape of an XML document."""

from __future__ import annotations

import pytest

from amazoniax_dagster.fetchers.recipe.xmltree import (
    XmlTreeError,
    looks_like_xml,
    parse,
    records_at,
)


def test_children_attributes_text_and_repeats_map_to_dicts_and_lists() -> None:
    tree = parse(
        '<feed xmlns="http://www.w3.org/2005/Atom" xmlns:os="http://a9.com/-/spec/opensearch/1.1/">'
        "<os:totalResults>47</os:totalResults><os:startIndex>007</os:startIndex>"
        '<link rel="self" href="/f?start=0"/><link rel="next" href="/f?start=10"/>'
        "<entry><id>a</id><ok>true</ok><empty/></entry>"
        '<note lang="en">mixed <b>bold</b></note></feed>'
    )
    feed = tree["feed"]
    assert feed["totalResults"] == 47 and feed["startIndex"] == "007"
    assert feed["link"] == [
        {"@rel": "self", "@href": "/f?start=0"},
        {"@rel": "next", "@href": "/f?start=10"},
    ]
    assert feed["entry"] == {"id": "a", "ok": True, "empty": None}  # one entry: not a list
    assert feed["note"] == {"@lang": "en", "b": "bold", "#text": "mixed"}


def test_records_at_reads_one_many_or_none() -> None:
    many = parse("<r><items><i>1</i><i>2</i></items></r>")
    one = parse("<r><items><i><id>1</id></i></items></r>")
    empty = parse("<r><items/></r>")
    bare = parse('<r><items count="0"/></r>')
    assert records_at(many, "r.items.i") == [1, 2]
    assert records_at(one, "r.items.i") == [{"id": 1}]
    assert records_at(empty, "r.items.i") == [] and records_at(bare, "r.items.i") == []
    assert records_at(parse("<error>gone</error>"), "r.items.i") is None


@pytest.mark.parametrize(
    "text",
    [
        "<r><a></r>",
        '<!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/passwd">]><r>&e;</r>',
        '<!DOCTYPE r [<!ENTITY e "x">]><r>&e;</r>',
    ],
)
def test_malformed_or_entity_declaring_xml_is_refused(text: str) -> None:
    with pytest.raises(XmlTreeError):
        parse(text)


def test_xml_is_told_by_its_media_type_or_its_first_character() -> None:
    assert looks_like_xml(b"{}", "application/atom+xml")
    assert looks_like_xml(b" <r/>", "text/plain")
    assert not looks_like_xml(b"<!doctype html>", "text/html")
    assert not looks_like_xml(b'{"a": 1}', "application/json")


def test_only_canonical_integers_and_booleans_are_typed() -> None:
    values = "".join(f"<v>{v}</v>" for v in ("0", "-12", "-0", "007", "1.5", "True", "x"))
    assert parse(f"<r>{values}</r>")["r"]["v"] == [0, -12, "-0", "007", "1.5", "True", "x"]
