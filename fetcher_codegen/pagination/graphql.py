"""A GraphQL relay connection: ``pageInfo{endCursor hasNextPage}`` in the reply (one page is
enough)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from fetcher_codegen.pagination.base import MAX_INFO_DEPTH, Page, Pagination, at_path
from fetcher_codegen.records import json_path

_END_CURSOR = ("endCursor", "end_cursor")
_HAS_NEXT = ("hasNextPage", "has_next_page")
_GRAPHQL_VARIABLE = re.compile(r"\$(after|cursor|endCursor|end_cursor|next|token)\s*:\s*String")


def _page_info(data: Any, parts: tuple[str | int, ...] = ()) -> tuple[str, str] | None:
    """JSON paths of ``endCursor`` and ``hasNextPage`` in the first object holding both."""
    if len(parts) > MAX_INFO_DEPTH or not isinstance(data, dict):
        return None
    end = next((k for k in _END_CURSOR if k in data), None)
    more = next((k for k in _HAS_NEXT if k in data), None)
    if end is not None and more is not None:
        return json_path((*parts, end)), json_path((*parts, more))
    for key, value in data.items():
        found = _page_info(value, (*parts, str(key)))
        if found is not None:
            return found
    return None


def graphql(pages: Sequence[Page]) -> Pagination | None:
    first = pages[0].entry
    body = first.json_body
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        return None
    found = _page_info(first.json)
    if found is None:
        return None
    end_path, has_next_path = found
    variable = _cursor_variable(pages, body["query"])
    config = {
        "type": "graphql",
        "end_cursor_path": end_path,
        "has_next_path": has_next_path,
        "cursor_variable": variable,
    }
    return Pagination(config, detail=f"GraphQL pageInfo at {end_path}, variable ${variable}")


def _cursor_variable(pages: Sequence[Page], query: str) -> str:
    """The variable a later page sent the previous endCursor in, else the query's own."""
    for previous, page in zip(pages, pages[1:], strict=False):
        found = _page_info(previous.entry.json)
        variables = (page.entry.json_body or {}).get("variables")
        if found is None or not isinstance(variables, dict):
            continue
        cursor = at_path(previous.entry.json, found[0])
        for name, value in variables.items():
            if cursor is not None and value == cursor:
                return str(name)
    declared = _GRAPHQL_VARIABLE.search(query)
    return declared.group(1) if declared else "after"
