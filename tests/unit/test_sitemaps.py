"""Sitemap documents (robots.txt lines, index files, urlsets) and record pages of one layout."""

from __future__ import annotations

import gzip
import re

from amazoniax_dagster.fetchers.recipe.sitemaps import read_sitemap
from fetcher_codegen.synthesize_sitemap import page_pattern, page_records

NS = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'


def test_robots_txt_sitemap_lines_resolve_against_the_site() -> None:
    robots = b"User-agent: *\nDisallow: /x\nsitemap: /maps/a.xml\nSitemap: https://cdn.test/b.xml\n"
    found = read_sitemap(robots, "https://site.test/robots.txt")
    assert found.kind == "robots"
    assert found.sitemaps == ["https://site.test/maps/a.xml", "https://cdn.test/b.xml"]
    assert read_sitemap(b"User-agent: *\n", "https://site.test/robots.txt").kind == "none"


def test_an_index_lists_sitemaps_and_a_urlset_lists_pages() -> None:
    index = f"<sitemapindex {NS}><sitemap><loc> /s1.xml </loc></sitemap></sitemapindex>"
    assert read_sitemap(index.encode(), "https://site.test/sitemap.xml").sitemaps == [
        "https://site.test/s1.xml"
    ]
    urlset = f"<urlset {NS}><url><loc>https://site.test/p/1</loc><lastmod>2026-01-01</lastmod>"
    urlset += "</url><url><loc>https://site.test/p/2</loc></url></urlset>"
    found = read_sitemap(gzip.compress(urlset.encode()), "https://site.test/s1.xml.gz")
    assert (found.kind, found.pages) == (
        "urlset",
        ["https://site.test/p/1", "https://site.test/p/2"],
    )


def test_other_xml_and_unsafe_xml_list_nothing() -> None:
    assert read_sitemap(b"<rss><channel/></rss>", "https://x.test/feed").kind == "none"
    bomb = b'<?xml version="1.0"?><!DOCTYPE u [<!ENTITY a "aaaa">]><urlset>&a;</urlset>'
    assert read_sitemap(bomb, "https://x.test/sitemap.xml").kind == "none"
    assert read_sitemap(b"<urlset><url>", "https://x.test/sitemap.xml").kind == "none"


def _page(name: str, sku: str) -> str:
    return f"<body><nav>Home</nav><div class=p><h2>{name}</h2><i>{sku}</i></div></body>"


def test_pages_of_one_layout_are_one_record_each_with_the_values_that_differ() -> None:
    records = page_records([_page("Lamp", "A-1"), _page("Desk", "B-2")])
    assert records is not None and records.count == 2
    assert sorted(records.items[1].values()) == ["B-2", "Desk"]  # the shared nav is left out
    assert page_records([_page("Lamp", "A-1"), _page("Lamp", "A-1")]) is None
    other = "<body><table><tr><td>1</td><td>2</td><td>3</td></tr></table></body>"
    assert page_records([_page("Lamp", "A-1"), other]) is None


def test_the_page_pattern_keeps_to_one_folder() -> None:
    pattern = re.compile(page_pattern("/catalog/item/"))
    assert pattern.search("https://s.test/catalog/item/sku-1")
    assert not pattern.search("https://s.test/catalog/item/sku-1/reviews")
    assert not pattern.search("https://s.test/about")
