"""What the explorer re-sends to a JSON POST API (a search endpoint, GraphQL) for the page after
one it saw (pure logic): the same request with the body's page, offset, cursor or keyset field
advanced.

Paging fields are looked for at the top of the body, in nested objects (``{"paging": {"page":
1}}``) and in GraphQL ``variables``, by the names the GET probes know (:mod:`.probes`):

* a cursor the reply gives (``next_cursor``, ``nextToken``, ``endCursor`` ...) goes into the
  body's cursor field;
* a page number one higher (or the reply's ``next_page``);
* an offset one page further: the body's size field, else the record count, as the step;
* the last record's id into a keyset field (``after``, ``since_id`` ...), when the reply says
  there is more;
* a body without any paging field, when the reply says there is more (``has_more``, a total
  beyond this page, a cursor, a full page): the fields a GraphQL query declares
  (``$page: Int``, ``$offset: Int``), else the common ``page``, ``offset`` and ``after``.

A POST may do more than read: nothing is sent unless the reply had records, and the explorer
keeps only probes whose reply brings records the previous page did not.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from fetcher_codegen.json_body import BodyPath, body_fields, dotted, with_fields
from fetcher_codegen.probes import (
    _CURRENT_PAGE,
    _CURSOR_KEYS,
    _CURSOR_PARAMS,
    _ID_FIELDS,
    _KEYSET_PARAMS,
    _LIMIT_PARAMS,
    _NEXT_PAGE_NUMBER,
    _OFFSET_PARAMS,
    _PAGE_PARAMS,
    _SIZE_PARAMS,
    Probe,
    _number,
    _path_matches,
    says_more,
)

MAX_BODY_PROBES = 6
_REPLY_DEPTH = 4  # {"data": {"search": {"pageInfo": {...}}}}
_DECLARED = re.compile(r"\$(\w+)\s*:\s*\[?\s*(\w+)")
_CURSOR_FIELDS = (*_CURSOR_PARAMS, "token", "nextToken", "next_cursor")
_SIZES = (*_SIZE_PARAMS, *_LIMIT_PARAMS, "first", "take", "rows")


def next_body_probes(
    url: str,
    sent: Any,
    reply: Any,
    record_count: int,
    last_record: Mapping[str, str] | None = None,
    documented: Sequence[str] = (),
) -> list[Probe]:
    """POST requests that may return the page after the one ``sent`` asked for (whose JSON
    ``reply`` held ``record_count`` records ending with ``last_record``), the likeliest first;
    ``documented`` names the body fields the API's documentation lists."""
    if not isinstance(sent, dict) or not record_count:
        return []
    fields = list(body_fields(sent))
    objects = list(_objects(reply))
    cursor = _first_value(objects, _CURSOR_KEYS)
    if cursor is not None and any(value == cursor for _, value in fields):
        cursor = None  # the reply echoes the cursor it was sent
    more = (
        cursor is not None
        or any(says_more(obj, record_count) for obj in objects)
        or any(_number(v) == record_count for p, v in fields if p[-1] in _SIZES)
    )
    last_id = next((last_record[f] for f in _ID_FIELDS if last_record and last_record.get(f)), None)
    changes = _advanced(fields, objects, cursor, record_count, last_id if more else None)
    if not changes and more and not any(_paging_name(path[-1]) for path, _ in fields):
        changes = _guessed(sent, objects, cursor, record_count, last_id, documented)
    probes: dict[str, Probe] = {}
    unchanged = json.dumps(sent, sort_keys=True)
    for why, change in changes:
        body = with_fields(sent, change)
        key = json.dumps(body, sort_keys=True)
        if key != unchanged and key not in probes:
            probes[key] = Probe(url, why, "POST", body)
    return list(probes.values())[:MAX_BODY_PROBES]


def _advanced(
    fields: Sequence[tuple[BodyPath, Any]],
    objects: Sequence[dict[str, Any]],
    cursor: str | None,
    count: int,
    last_id: str | None,
) -> list[tuple[str, dict[BodyPath, Any]]]:
    """The body's own paging fields, each moved one page on."""
    changes: list[tuple[str, dict[BodyPath, Any]]] = []
    following = _first_value(objects, _NEXT_PAGE_NUMBER)
    for path, value in fields:
        name, number = path[-1], _number(value)
        if name in _CURSOR_FIELDS and cursor is not None:
            changes.append((f"the reply's cursor in {dotted(path)}", {path: cursor}))
        if name in _KEYSET_PARAMS and last_id is not None:
            changes.append((f"the last id in {dotted(path)}", {path: _like(value, last_id)}))
        if number is None:
            continue
        if name in _PAGE_PARAMS:
            target = _number(following) or number + 1
            changes.append((f"{dotted(path)} + 1", {path: _like(value, target)}))
        elif name in _OFFSET_PARAMS:
            step = _size(fields, path[:-1]) or count
            changes.append((f"{dotted(path)} + {step}", {path: _like(value, number + step)}))
    return changes


def _guessed(
    sent: dict[str, Any],
    objects: Sequence[dict[str, Any]],
    cursor: str | None,
    count: int,
    last_id: str | None,
    documented: Sequence[str],
) -> list[tuple[str, dict[BodyPath, Any]]]:
    """Paging fields a body without any may take: a GraphQL query's declared variables, else
    the documented ones, else the common names."""
    current = _number(_first_value(objects, _CURRENT_PAGE)) or 1
    query = sent.get("query")
    if isinstance(query, str):
        declared = dict(_DECLARED.findall(query))
        names = [n for n in declared if _paging_name(n)]
        where: BodyPath = ("variables",)
    else:
        names = [n for n in documented if _paging_name(n)] or ["page", "offset", "after", "cursor"]
        where = ()
    changes: list[tuple[str, dict[BodyPath, Any]]] = []
    for name in names:
        path = (*where, name)
        if name in _PAGE_PARAMS:
            changes.append((f"guessed {dotted(path)}", {path: current + 1}))
        elif name in _OFFSET_PARAMS:
            changes.append((f"guessed {dotted(path)}", {path: count}))
        elif name in _CURSOR_FIELDS and cursor is not None:
            changes.append((f"the reply's cursor in guessed {dotted(path)}", {path: cursor}))
        elif name in _KEYSET_PARAMS and last_id is not None:
            changes.append((f"the last id in guessed {dotted(path)}", {path: last_id}))
    return changes


def documented_body_fields(doc: Any, path: str) -> list[str]:
    """Property names of the JSON request body an OpenAPI document gives POST ``path``
    (a schema inline or one ``$ref`` away)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("paths"), dict):
        return []
    names: list[str] = []
    for template, item in doc["paths"].items():
        operation = item.get("post") if isinstance(item, dict) else None
        if not isinstance(operation, dict) or not _path_matches(str(template), path):
            continue
        content = (operation.get("requestBody") or {}).get("content") or {}
        for media, spec in content.items() if isinstance(content, dict) else ():
            schema = spec.get("schema") if "json" in media and isinstance(spec, dict) else None
            names += list(_properties(doc, schema))
    return list(dict.fromkeys(names))


def _properties(doc: dict[str, Any], schema: Any) -> dict[str, Any]:
    if isinstance(schema, dict) and isinstance(schema.get("$ref"), str):
        found: Any = doc
        for part in schema["$ref"].removeprefix("#/").split("/"):
            found = found.get(part) if isinstance(found, dict) else None
        schema = found
    properties = schema.get("properties") if isinstance(schema, dict) else None
    return properties if isinstance(properties, dict) else {}


def _paging_name(name: str) -> bool:
    return any(
        name in names for names in (_PAGE_PARAMS, _OFFSET_PARAMS, _CURSOR_FIELDS, _KEYSET_PARAMS)
    )


def _objects(reply: Any, depth: int = 0) -> Iterator[dict[str, Any]]:
    """The reply's objects outside lists, outer first (where paging fields live)."""
    if not isinstance(reply, dict) or depth > _REPLY_DEPTH:
        return
    yield reply
    for value in reply.values():
        yield from _objects(value, depth + 1)


def _first_value(objects: Sequence[dict[str, Any]], names: Sequence[str]) -> Any:
    for obj in objects:
        for name in names:
            value = obj.get(name)
            if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
                return value
    return None


def _size(fields: Sequence[tuple[BodyPath, Any]], where: BodyPath) -> int | None:
    """The page size beside a counter (``{"offset": 0, "limit": 25}``)."""
    for path, value in fields:
        if path[:-1] == where and path[-1] in _SIZES and (size := _number(value)):
            return size
    return None


def _like(original: Any, value: Any) -> Any:
    """``value`` in the type the body used: ``"2"`` for a string field, ``2`` for a number."""
    if isinstance(original, str):
        return str(value)
    number = _number(value)
    return number if number is not None and isinstance(original, int | type(None)) else value


__all__ = ["MAX_BODY_PROBES", "documented_body_fields", "next_body_probes"]
