"""Selectors: the values a recipe takes from a response (extracts, file links, login forms).

Each selector ``type`` maps to one small function in :data:`SELECTORS`; HTML is read with the
standard library's tolerant ``html.parser`` (inputs, forms and ``<a href>`` are all we need).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin

import httpx

from amazoniax_dagster.core.errors import ConfigError, SiteChangedError
from amazoniax_dagster.fetchers.recipe import jsonpath
from amazoniax_dagster.fetchers.recipe.http import Page
from amazoniax_dagster.fetchers.recipe.schema import (
    CookieSelector,
    HeaderSelector,
    HtmlInputSelector,
    HtmlLinksSelector,
    JsonSelector,
    RegexSelector,
    Selector,
)


@dataclass
class HtmlForm:
    action: str | None
    method: str
    fields: dict[str, str] = field(default_factory=dict)  # inputs that carry a value
    has_password: bool = False


class _HtmlScan(HTMLParser):
    """Forms with their inputs, every input, and every ``<a href>``, in document order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[HtmlForm] = []
        self.inputs: list[tuple[str, str]] = []  # (name, value)
        self.links: list[str] = []
        self._form: HtmlForm | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {name: value or "" for name, value in attrs}
        if tag == "form":
            self._form = HtmlForm(a.get("action") or None, (a.get("method") or "get").upper())
            self.forms.append(self._form)
        elif tag == "input" and a.get("name"):
            kind = a.get("type", "text").lower()
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            self.inputs.append((a["name"], a.get("value", "")))
            if self._form is not None:
                self._form.has_password |= kind == "password"
                if kind not in ("submit", "button", "image", "file"):
                    self._form.fields[a["name"]] = a.get("value", "")
        elif tag == "a" and a.get("href"):
            self.links.append(a["href"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None


def scan_html(text: str) -> _HtmlScan:
    scan = _HtmlScan()
    scan.feed(text)
    scan.close()
    return scan


def login_form(text: str) -> HtmlForm | None:
    """The form with a password input, else None (the page is not a login page)."""
    return next((form for form in scan_html(text).forms if form.has_password), None)


def _json(selector: JsonSelector, page: Page, cookies: httpx.Cookies) -> list[Any]:
    return [v for v in jsonpath.find_all(page.json(), selector.path) if v not in (None, "")]


def _regex(selector: RegexSelector, page: Page, cookies: httpx.Cookies) -> list[Any]:
    pattern = re.compile(selector.pattern)
    group = selector.group if pattern.groups or isinstance(selector.group, str) else 0
    try:
        return [match.group(group) for match in pattern.finditer(page.text())]
    except IndexError as exc:
        raise ConfigError(f"regex selector: the pattern has no group {group!r}") from exc


def _header(selector: HeaderSelector, page: Page, cookies: httpx.Cookies) -> list[Any]:
    return list(page.headers.get_list(selector.name))


def _cookie(selector: CookieSelector, page: Page, cookies: httpx.Cookies) -> list[Any]:
    value = cookies.get(selector.name)
    return [value] if value else []


def _html_input(selector: HtmlInputSelector, page: Page, cookies: httpx.Cookies) -> list[Any]:
    return [value for name, value in scan_html(page.text()).inputs if name == selector.name]


def _html_links(selector: HtmlLinksSelector, page: Page, cookies: httpx.Cookies) -> list[Any]:
    pattern = re.compile(selector.pattern)
    return [href for href in scan_html(page.text()).links if pattern.search(href)]


SELECTORS: Mapping[str, Callable[[Any, Page, httpx.Cookies], list[Any]]] = {
    "json": _json,
    "regex": _regex,
    "header": _header,
    "cookie": _cookie,
    "html_input": _html_input,
    "html_links": _html_links,
}


def select(selector: Selector, page: Page, cookies: httpx.Cookies, *, what: str) -> list[Any]:
    """Every value ``selector`` finds; SiteChangedError when a required one finds none."""
    values = SELECTORS[selector.type](selector, page, cookies)
    if not values and selector.required:
        raise SiteChangedError(
            f"{what}: the {selector.type} selector found nothing in {page.shown_url}"
        )
    return values


def extract(
    extracts: Mapping[str, Selector], page: Page, cookies: httpx.Cookies, *, step: str
) -> dict[str, Any]:
    """The first value of each named selector (None when an optional one finds nothing)."""
    found = {}
    for name, selector in extracts.items():
        values = select(selector, page, cookies, what=f"step {step!r}, extract {name!r}")
        found[name] = values[0] if values else None
    return found


def link_urls(selector: Selector, page: Page, cookies: httpx.Cookies, *, step: str) -> list[str]:
    """Absolute file URLs, each once, in the order the page lists them."""
    values = select(selector, page, cookies, what=f"step {step!r}, links")
    urls = (urljoin(page.url, value.strip()) for value in values if isinstance(value, str))
    # mailto:, javascript: and the like are not files (and must not fail the URL policy).
    return list(dict.fromkeys(url for url in urls if url.startswith(("http://", "https://"))))


__all__ = ["SELECTORS", "HtmlForm", "extract", "link_urls", "login_form", "scan_html", "select"]
