"""Signs in a response that the site has more data than the page brought.

The last page a step fetched is read for them (the recipe reached the site's own end only when
it shows none): ``hasNextPage``/``has_more`` true, a next URL or cursor, a next page number,
a ``Link`` rel=next header, a ``total`` above the records the step received, a page count above
the current page, or a page as full as the size it asked for. Names follow the common API
conventions; nested ``pageInfo``/``meta``/``links`` objects are searched a few levels down. An
XML reply is read as the same tree (:mod:`.xmltree`), its root ``<link rel="next">`` as a link.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from amazoniax_dagster.core.errors import SiteChangedError
from amazoniax_dagster.fetchers.recipe.http import Page

MAX_DEPTH = 4
_HAS_MORE = re.compile(
    r"^(has_?more(_?(results|items|pages|data))?|has_?next(_?page)?|more(_?(results|items))?|"
    r"is_?truncated)$",
    re.IGNORECASE,
)
_IS_LAST = re.compile(r"^(is_?last(_?page)?|last)$", re.IGNORECASE)
_NEXT = re.compile(
    r"^(next|next_?url|next_?page_?url|next_?link|next_?href|next_?cursor|next_?token|"
    r"next_?page_?token|continuation(_?token)?)$",
    re.IGNORECASE,
)
_NEXT_NUMBER = re.compile(r"^next_?page(_?(number|no|num))?$", re.IGNORECASE)
_TOTAL_PAGES = re.compile(
    r"^(total_?pages|page_?count|num_?pages|last_?page|pages)$", re.IGNORECASE
)
_CURRENT_PAGE = re.compile(r"^(page|current_?page|page_?number)$", re.IGNORECASE)
_TOTAL = re.compile(r"^(total|total_?count|total_?results|total_?items|count)$", re.IGNORECASE)
_SIZE = re.compile(
    r"^(limit|per_?page|page_?size|size|max_?results|take|items_?per_page|first)$", re.IGNORECASE
)


def _fields(data: Any, depth: int = 0) -> Iterator[tuple[str, Any]]:
    """(name, value) of every field of the object, and of nested objects (not list items)."""
    if depth > MAX_DEPTH or not isinstance(data, dict):
        return
    for key, value in data.items():
        yield str(key), value
        if isinstance(value, dict):
            yield from _fields(value, depth + 1)


def more_hints(
    page: Page, received: int, params: Mapping[str, str], *, paginated: bool = False
) -> list[str]:
    """What ``page`` says about data beyond it; ``received`` counts the step's records so far,
    ``params`` are the query parameters the page was asked with and ``paginated`` says whether
    the step paged (then a page count counts only next to the page's own number)."""
    hints = []
    if "next" in page.links:
        hints.append("a link rel=next")
    fields = list(_fields(_data_or_none(page)))
    current = next((v for n, v in fields if _CURRENT_PAGE.match(n) and _is_int(v)), None)
    for name, value in fields:
        if _HAS_MORE.match(name) and value is True:
            hints.append(f"{name} is true")
        elif _IS_LAST.match(name) and value is False:
            hints.append(f"{name} is false")
        elif _NEXT.match(name) and (_is_int(value) or isinstance(value, str) and value.strip()):
            hints.append(f"{name} is set")
        elif _NEXT_NUMBER.match(name) and _is_int(value) and value > 0:
            hints.append(f"{name} is {value}")
        elif (
            _TOTAL_PAGES.match(name)
            and _is_int(value)
            and (current is not None or not paginated)
            and value > (current or 1)
        ):
            hints.append(f"{name} is {value}, this is page {current or 1}")
        elif _TOTAL.match(name) and isinstance(value, int) and not isinstance(value, bool):
            if page.records is not None and value > received:
                hints.append(f"{name} is {value}, {received} records received")
    if page.records:
        for name, value in params.items():
            if _SIZE.match(name) and value.isdigit() and int(value) == len(page.records) > 1:
                hints.append(f"a full page ({name}={value}) with no page after it")
    return list(dict.fromkeys(hints))


def body_params(body: Any) -> dict[str, str]:
    """The number fields of a JSON request body and of its nested objects (GraphQL
    ``variables``), by name: a page size sent in the body counts as one sent in the query."""
    return {name: str(value) for name, value in _fields(body) if _is_int(value)}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _data_or_none(page: Page) -> Any:
    """A JSON reply, or an XML one as the tree recipe paths read; None for other replies."""
    if "json" not in page.content_type and not page.is_xml():
        return None
    try:
        return page.tree()
    except SiteChangedError:
        return None


__all__ = ["body_params", "more_hints"]
