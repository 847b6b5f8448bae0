"""Cursors between pages: a parameter whose value the previous reply gave (a path in its JSON
or XML tree, or a header), or a field of its last record (keyset). A number is a cursor only
where the reply names it one (``nextPageToken: 15``): elsewhere small numbers coincide."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from fetcher_codegen.pagination.base import (
    CURSOR_KEYS,
    OFFSET_NAMES,
    PAGE_NAMES,
    Page,
    Pagination,
    hint_fields,
)
from fetcher_codegen.provenance import Slot, distinctive, find_json_path
from fetcher_codegen.records import json_path


def cursor(pages: Sequence[Page], slots: Sequence[Slot]) -> Pagination | None:
    for slot in slots:
        if slot.constant or slot.place not in ("query", "json", "form"):
            continue
        sources: set[tuple[str, str]] = set()
        for i in range(1, len(pages)):
            value = slot.values[i]
            previous = pages[i - 1].entry
            path = _cursor_path(previous.tree, value)
            header = next(
                (n for n, v in previous.response_headers if v == value and n.lower() != "link"),
                None,
            )
            if value is None or path is None and (not distinctive(value) or value.isdigit()):
                sources = set()
                break
            if path is not None:
                sources.add(("path", path))
            elif header is not None:
                sources.add(("header", header))
            else:
                sources = set()
                break
        if len(sources) != 1 or slot.values[0] is not None and slot.values[0] == slot.values[1]:
            continue
        where, name = sources.pop()
        config: dict[str, Any] = {"type": "cursor"}
        config["cursor_path" if where == "path" else "cursor_header"] = name
        config["param"] = slot.name if slot.place == "query" else None
        templates: dict[tuple[str, str], str] = {}
        if slot.place != "query":
            templates[(slot.place, slot.name)] = "${cursor}"
        return Pagination(
            config, frozenset({(slot.place, slot.name)}), templates, f"cursor from {name}"
        )
    return None


def _cursor_path(body: Any, value: str | None) -> str | None:
    """Where ``value`` is in ``body``: a field named like a cursor, else (a token-like value)
    anywhere."""
    if value is None or body is None:
        return None
    named = hint_fields(body, CURSOR_KEYS)
    found = next((p for p, v in named if isinstance(v, str | int) and str(v) == value), None)
    if found is not None or not distinctive(value) or value.isdigit():
        return found
    return find_json_path(body, value)


def keyset(pages: Sequence[Page], slots: Sequence[Slot]) -> Pagination | None:
    """A parameter carrying a field of the previous page's last record (``after=<last id>``)."""
    records = [page.records for page in pages]
    if any(r is None or not r.count for r in records[:-1]) or pages[0].entry.tree is None:
        return None
    for slot in slots:
        counter_like = PAGE_NAMES.match(slot.leaf) or OFFSET_NAMES.match(slot.leaf)
        if slot.constant or slot.place not in ("query", "json", "form") or counter_like:
            continue
        fields: set[str] | None = None
        for i in range(1, len(pages)):
            before = records[i - 1]
            assert before is not None
            last = before.items[-1]
            matching = {
                k
                for k, v in last.items()
                if v == slot.values[i] and v not in ("", None) and "@" not in k[1:]
            }  # not an XML child's attribute (``link@href``): the tree has no such name
            fields = matching if fields is None else fields & matching
            if not fields:
                break
        if not fields:
            continue
        first_records = records[0]
        assert first_records is not None
        name = sorted(fields, key=lambda k: (not re.search(r"id$", k, re.I), k))[0]
        base = "" if first_records.path == "$" else first_records.path
        key = json_path(tuple(name.split(".")))
        config: dict[str, Any] = {
            "type": "cursor",
            "cursor_path": f"{base}[-1]{key if key.startswith('[') else '.' + key}",
            "param": slot.name if slot.place == "query" else None,
        }
        templates: dict[tuple[str, str], str] = {}
        if slot.place != "query":
            templates[(slot.place, slot.name)] = "${cursor}"
        detail = f"keyset: {slot} is the last record's {name}"
        return Pagination(config, frozenset({(slot.place, slot.name)}), templates, detail)
    return None
