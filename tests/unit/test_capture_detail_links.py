"""Which links of a page are a list's items (detail pages), and which links a detail page
offers as data files."""

from __future__ import annotations

from fetcher_codegen.capture.detail import file_links, item_links

PAGE = "https://shop.test/catalogue?page=1"
LIST = "DIV.card<LI.item<UL.products"


def link(href: str, text: str = "x", parent: str = LIST) -> dict[str, str]:
    return {"href": href, "text": text, "parent": parent}


def test_the_largest_group_of_same_place_same_parent_links_is_the_list() -> None:
    links = [
        link("https://shop.test/about", "About", "NAV.top"),
        link("https://shop.test/help/faq", "FAQ", "FOOTER.f"),
        link("https://shop.test/help/terms", "Terms", "FOOTER.f"),
        *(link(f"https://shop.test/products/sku-{n}", f"Product {n}") for n in (4, 5, 6, 4)),
        link("https://shop.test/catalogue?page=2", "2", "NAV.pages"),
        link("https://shop.test/catalogue?page=3", "3", "NAV.pages"),
        link("https://shop.test/catalogue?page=4", "Next", "NAV.pages"),
    ]
    assert item_links(links, PAGE) == [
        "https://shop.test/products/sku-4",
        "https://shop.test/products/sku-5",
        "https://shop.test/products/sku-6",
    ]


def test_fewer_than_three_items_files_and_other_sites_are_no_list() -> None:
    links = [
        link("https://shop.test/products/a"),
        link("https://shop.test/products/b"),
        link("https://other.test/products/c"),
        link("https://shop.test/files/a.csv"),
        link("https://shop.test/files/b.csv"),
        link("https://shop.test/files/c.csv"),
    ]
    assert item_links(links, PAGE) == []


def test_links_in_different_places_are_different_groups() -> None:
    links = [link(f"https://shop.test/news/n{n}", parent=f"DIV.box{n}") for n in range(5)]
    assert item_links(links, PAGE) == []


def test_a_detail_page_offers_its_data_files_each_once() -> None:
    html = (
        '<a href="/">Home</a><a href="sheet.pdf">Datasheet</a><a href="/spec/7.json">Spec</a>'
        '<a href="sheet.pdf#p2">again</a><a href="mailto:a@b.test">mail</a>'
    )
    assert file_links(html, "https://shop.test/products/7/") == [
        "https://shop.test/products/7/sheet.pdf",
        "https://shop.test/spec/7.json",
    ]
