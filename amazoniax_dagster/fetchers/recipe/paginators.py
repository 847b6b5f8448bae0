"""Paginators: one small strategy class per ``paginate.type``, fresh for every step of a run.

The engine asks a paginator three things, in a loop: :meth:`Paginator.variables` (``page``,
``offset``, ``cursor`` for templates), :meth:`Paginator.prepare` (put the position into the
request) and, after each page, :meth:`Paginator.advance` (move on, or stop and say why).

Every paginator stops, whatever the site answers: on an empty page (the records list is
empty), a page whose body equals an earlier one, a ``has_more_path`` that is false, a
``total_path``/``total_pages_path`` reached, a position (page, offset, cursor, next URL) seen
before, no next position, and after ``FetchLimits.max_pages`` pages (``guard_hit``).

Paths (``cursor_path``, ``has_more_path``, ``total_path``, ``next_url_path`` ...) read a JSON
reply, or an XML reply as the same dict/list tree (:mod:`.xmltree`: ``response.nextPageToken``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, ClassVar, Generic, TypeVar
from urllib.parse import urljoin

from amazoniax_dagster.core.errors import ConfigError, SiteChangedError
from amazoniax_dagster.fetchers.recipe import jsonpath
from amazoniax_dagster.fetchers.recipe.http import Page, PreparedRequest
from amazoniax_dagster.fetchers.recipe.schema import (
    CursorPaginate,
    GraphqlPaginate,
    LinkHeaderPaginate,
    NextUrlPaginate,
    OffsetPaginate,
    PageNumberPaginate,
    PaginateConfig,
    _PaginateBase,
)

C = TypeVar("C", bound=_PaginateBase)


class Paginator(Generic[C]):
    """Stop rules shared by every paginator; subclasses say how to reach the next page."""

    end_reason: ClassVar[str] = "no next page"

    def __init__(self, config: C, *, max_pages: int) -> None:
        self.config = config
        self.max_pages = max_pages
        self.pages = 0  # pages seen so far
        self.stop_reason: str | None = None
        self.guard_hit = False
        self._records = 0
        self._bodies: set[str] = set()
        self._positions: set[str] = set()

    def variables(self) -> dict[str, Any]:
        return {"page": self.pages + 1, "offset": 0, "cursor": ""}

    def prepare(self, request: PreparedRequest) -> PreparedRequest:
        return request

    def advance(self, page: Page) -> bool:
        """Take in ``page``; True when there is a next page to request."""
        self.pages += 1
        self._records += len(page.records or ())
        self.stop_reason = self._stop_reason(page)
        if self.stop_reason is None and self.pages >= self.max_pages:
            self.stop_reason, self.guard_hit = f"max_pages ({self.max_pages}) reached", True
        return self.stop_reason is None

    def _stop_reason(self, page: Page) -> str | None:
        config = self.config
        if page.records is not None and not page.records:
            return "empty page"
        if page.digest in self._bodies:
            if self.pages == 2 and page.records:
                # Asked for the next page, the site sent the first one again: it no longer
                # reads the paging parameter, and stopping here would lose the rest quietly.
                raise SiteChangedError(
                    "pagination no longer works: the second page is the first page again "
                    f"({len(page.records)} records); the site ignores the recipe's paging "
                    "parameter"
                )
            return "same body as an earlier page"
        self._bodies.add(page.digest)
        if config.has_more_path and not _truthy(_at(page, config.has_more_path)):
            return "has_more is false"
        total = _number(_at(page, config.total_path)) if config.total_path else None
        if total is not None and self._records >= total:
            return "total reached"
        last = _number(_at(page, config.total_pages_path)) if config.total_pages_path else None
        if last is not None and self.pages >= last:
            return "last page reached"
        self._positions.add(self._position(page))
        following = self._next(page)
        if following is None:
            return self.end_reason
        if following in self._positions:
            return "repeated position"
        return None

    def _position(self, page: Page) -> str:
        """The position of ``page`` (page, offset, cursor or URL) as a comparable key."""
        raise NotImplementedError

    def _next(self, page: Page) -> str | None:
        """Move to the page after ``page``; return its position, or None when there is none."""
        raise NotImplementedError


class SinglePage(Paginator[_PaginateBase]):
    """No ``paginate``: one request."""

    def advance(self, page: Page) -> bool:
        self.pages, self.stop_reason = self.pages + 1, "single request"
        return False


class PageNumberPaginator(Paginator[PageNumberPaginate]):
    end_reason = "short page"

    def __init__(self, config: PageNumberPaginate, *, max_pages: int) -> None:
        super().__init__(config, max_pages=max_pages)
        self.page = config.start

    def variables(self) -> dict[str, Any]:
        return {**super().variables(), "page": self.page}

    def prepare(self, request: PreparedRequest) -> PreparedRequest:
        params = {self.config.param: str(self.page)} if self.config.param else {}
        if self.config.page_size_param and self.config.page_size:
            params[self.config.page_size_param] = str(self.config.page_size)
        return request.with_params(**params)

    def _position(self, page: Page) -> str:
        return str(self.page)

    def _next(self, page: Page) -> str | None:
        size = self.config.page_size
        if size and page.records is not None and len(page.records) < size:
            return None
        self.page += 1
        return str(self.page)


class OffsetPaginator(Paginator[OffsetPaginate]):
    end_reason = "short page"

    def __init__(self, config: OffsetPaginate, *, max_pages: int) -> None:
        super().__init__(config, max_pages=max_pages)
        self.offset = config.start

    def variables(self) -> dict[str, Any]:
        return {**super().variables(), "offset": self.offset}

    def prepare(self, request: PreparedRequest) -> PreparedRequest:
        params = {self.config.param: str(self.offset)} if self.config.param else {}
        if self.config.limit_param:
            params[self.config.limit_param] = str(self.config.limit)
        return request.with_params(**params)

    def _position(self, page: Page) -> str:
        return str(self.offset)

    def _next(self, page: Page) -> str | None:
        if page.records is not None and len(page.records) < self.config.limit:
            return None
        self.offset += self.config.limit
        return str(self.offset)


class CursorPaginator(Paginator[CursorPaginate]):
    end_reason = "no next cursor"

    def __init__(self, config: CursorPaginate, *, max_pages: int) -> None:
        super().__init__(config, max_pages=max_pages)
        self.cursor = ""

    def variables(self) -> dict[str, Any]:
        # no cursor yet: null where ``${cursor}`` is a whole JSON body value, else empty text
        return {**super().variables(), "cursor": self.cursor or None}

    def prepare(self, request: PreparedRequest) -> PreparedRequest:
        if self.cursor and self.config.param:
            return request.with_params(**{self.config.param: self.cursor})
        return request

    def _position(self, page: Page) -> str:
        return self.cursor

    def _next(self, page: Page) -> str | None:
        if self.config.cursor_header:
            found: Any = page.headers.get(self.config.cursor_header)
        else:
            found = _at(page, self.config.cursor_path or "")
        if found in (None, "", jsonpath.MISSING) or isinstance(found, bool | dict | list):
            return None
        self.cursor = str(found)
        return self.cursor


class _UrlPaginator(Paginator[C]):
    """Paginators whose next position is a whole URL given by the response."""

    def __init__(self, config: C, *, max_pages: int) -> None:
        super().__init__(config, max_pages=max_pages)
        self.next_url: str | None = None
        self._current = ""

    def prepare(self, request: PreparedRequest) -> PreparedRequest:
        if self.next_url is None:
            self._current = request.url
            return request
        return replace(request, url=self.next_url, params={})  # the URL carries its query

    def _position(self, page: Page) -> str:
        return self.next_url or self._current

    def _next(self, page: Page) -> str | None:
        target = self._next_url(page)
        if not target:
            return None
        self.next_url = urljoin(page.url, target)
        return self.next_url

    def _next_url(self, page: Page) -> str | None:
        raise NotImplementedError


class LinkHeaderPaginator(_UrlPaginator[LinkHeaderPaginate]):
    end_reason = "no next link"

    def _next_url(self, page: Page) -> str | None:
        return page.links.get(self.config.rel)


class NextUrlPaginator(_UrlPaginator[NextUrlPaginate]):
    end_reason = "no next URL"

    def _next_url(self, page: Page) -> str | None:
        found = _at(page, self.config.next_url_path)
        return found if isinstance(found, str) else None


class GraphqlPaginator(Paginator[GraphqlPaginate]):
    """Relay-style ``pageInfo``: ``endCursor`` goes into ``variables.<cursor_variable>``."""

    end_reason = "hasNextPage is false"

    def __init__(self, config: GraphqlPaginate, *, max_pages: int) -> None:
        super().__init__(config, max_pages=max_pages)
        self.cursor = ""

    def variables(self) -> dict[str, Any]:
        return {**super().variables(), "cursor": self.cursor}

    def prepare(self, request: PreparedRequest) -> PreparedRequest:
        if not isinstance(request.json, dict):
            raise ConfigError("a graphql paginator needs a JSON object request body")
        body = copy.deepcopy(request.json)
        variables = body.setdefault("variables", {})
        if not isinstance(variables, dict):
            raise ConfigError("a graphql paginator needs 'variables' to be a JSON object")
        variables[self.config.cursor_variable] = self.cursor or None
        return replace(request, json=body)

    def _position(self, page: Page) -> str:
        return self.cursor

    def _next(self, page: Page) -> str | None:
        if not _truthy(_at(page, self.config.has_next_path)):
            return None
        found = _at(page, self.config.end_cursor_path)
        if not isinstance(found, str | int) or found == "":
            return None
        self.cursor = str(found)
        return self.cursor


PAGINATOR_TYPES: Mapping[str, type[Paginator[Any]]] = {
    "page_number": PageNumberPaginator,
    "offset": OffsetPaginator,
    "cursor": CursorPaginator,
    "link_header": LinkHeaderPaginator,
    "next_url": NextUrlPaginator,
    "graphql": GraphqlPaginator,
}


def make_paginator(config: PaginateConfig | None, *, max_pages: int) -> Paginator[Any]:
    """A fresh paginator for one step of one run (SinglePage without ``paginate``)."""
    if config is None:
        return SinglePage(_PaginateBase(), max_pages=max_pages)
    if config.type not in PAGINATOR_TYPES:
        known = ", ".join(sorted(PAGINATOR_TYPES))
        raise ConfigError(f"unknown paginator type {config.type!r}; known: {known}")
    return PAGINATOR_TYPES[config.type](config, max_pages=max_pages)


def _at(page: Page, path: str) -> Any:
    return jsonpath.find(page.tree(), path)  # a JSON reply, or an XML one as the same tree


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def _number(value: Any) -> int | None:
    try:
        return int(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None


__all__ = [
    "PAGINATOR_TYPES",
    "CursorPaginator",
    "GraphqlPaginator",
    "LinkHeaderPaginator",
    "NextUrlPaginator",
    "OffsetPaginator",
    "PageNumberPaginator",
    "Paginator",
    "SinglePage",
    "make_paginator",
]
