"""Counters between pages: a page number growing by 1, or an offset growing by the page size."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from fetcher_codegen.pagination.base import OFFSET_NAMES, PAGE_NAMES, SIZE_NAMES, Page, Pagination
from fetcher_codegen.provenance import Slot


def _ints(values: Sequence[str | None]) -> list[int | None] | None:
    out: list[int | None] = []
    for value in values:
        if value is None:
            out.append(None)
        elif re.fullmatch(r"-?\d{1,9}", value):
            out.append(int(value))
        else:
            return None
    return out


def counter(pages: Sequence[Page], slots: Sequence[Slot]) -> Pagination | None:
    counts = [page.records.count if page.records else 0 for page in pages]
    candidates = sorted(
        (s for s in slots if not s.constant and s.place in ("query", "json", "form", "path")),
        key=lambda s: not (PAGE_NAMES.match(s.leaf) or OFFSET_NAMES.match(s.leaf)),
    )
    for slot in candidates:
        numbers = _ints(slot.values)
        if numbers is None or any(n is None for n in numbers[1:]):
            continue
        kind = _counter_kind(slot.leaf, numbers, counts)
        if kind is None:
            continue
        step, first = kind
        size = _size_slot(slots, slot, counts)
        in_query = slot.place == "query"
        # a size beside a counter in a body or form stays there, sent as captured
        size_param = size[0].name if size is not None and in_query else None
        taken = {(slot.place, slot.name)}
        variable = "${page}" if step == 1 else "${offset}"
        templates: dict[tuple[str, str], str] = {}
        if not in_query:
            templates[(slot.place, slot.name)] = variable
        param = slot.name if in_query else None
        if step == 1:
            config: dict[str, Any] = {"type": "page_number", "param": param, "start": first}
            if size is not None:
                config["page_size"] = size[1]
            if size_param is not None:
                config["page_size_param"] = size_param
                taken.add((slot.place, size_param))
            detail = f"page number in {slot}"
        else:
            limit = size[1] if size is not None and size[1] >= step else step
            config = {"type": "offset", "param": param, "limit": limit, "start": first}
            config["limit_param"] = size_param
            if size_param is not None:
                taken.add((slot.place, size_param))
            detail = f"offset in {slot}, {limit} a page"
        return Pagination(config, frozenset(taken), templates, detail)
    return None


def _counter_kind(
    name: str, numbers: Sequence[int | None], counts: Sequence[int]
) -> tuple[int, int] | None:
    """(step, start) of a counter (step 1: a page number), or None when it is not one.

    An offset grows by a constant page size or by the records the previous page brought
    (``offset=40`` after 10 records, then ``offset=42`` after the last 2). A parameter missing
    from the first request starts at the page before the second (page) or at 0 (offset).
    """
    first = numbers[0]
    if first is None:
        second = numbers[1]
        assert second is not None
        page_like = PAGE_NAMES.match(name) or (not OFFSET_NAMES.match(name) and second == 2)
        first = max(second - 1, 0) if page_like else 0
    sequence = [first, *(n for n in numbers[1:] if n is not None)]
    diffs = [b - a for a, b in zip(sequence, sequence[1:], strict=False)]
    if not diffs or any(d < 1 for d in diffs):
        return None
    if all(d == 1 for d in diffs) and not OFFSET_NAMES.match(name):
        return 1, first
    if len(set(diffs)) == 1 and diffs[0] > 1:
        return diffs[0], first
    if max(counts) > 1 and all(d == counts[i] for i, d in enumerate(diffs)):
        return max(counts), first
    return None


def _size_slot(
    slots: Sequence[Slot], counter: Slot, counts: Sequence[int]
) -> tuple[Slot, int] | None:
    """A parameter holding the page size: constant where present, named or valued like one."""
    container = counter.name[: -len(counter.leaf)]
    for slot in slots:
        if slot is counter or slot.place != counter.place:
            continue
        if slot.name[: -len(slot.leaf)] != container:  # not beside the counter
            continue
        present = set(slot.present)
        if len(present) != 1:
            continue
        value = present.pop()
        if not value.isdigit() or int(value) < 1:
            continue
        if SIZE_NAMES.match(slot.leaf) or int(value) == max(counts, default=0):
            return slot, int(value)
    return None
