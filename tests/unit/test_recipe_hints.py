"""Signs of more data in the last page a recipe step fetched (the completeness proof's input)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import httpx

from amazoniax_dagster.fetchers.recipe.hints import more_hints
from amazoniax_dagster.fetchers.recipe.http import Page


def page(tmp_path: Path, body: Any, records: int) -> Page:
    raw = json.dumps(body).encode()
    path = tmp_path / "page.json"
    path.write_bytes(raw)
    return Page(
        url="https://api.example.test/v1/x",
        shown_url="https://api.example.test/v1/x",
        status=200,
        headers=httpx.Headers({"content-type": "application/json"}),
        path=path,
        size=len(raw),
        digest=hashlib.sha256(raw).hexdigest(),
        records=[{}] * records,
    )


def test_a_next_page_number_and_a_page_count_beyond_this_page_are_signs(tmp_path: Path) -> None:
    assert more_hints(page(tmp_path, {"data": [1, 2], "nextPage": 2}, 2), 2, {}) == [
        "nextPage is 2"
    ]
    deep = {"rows": [1], "meta": {"paging": {"current_page": 2, "page_count": 5}}}
    assert more_hints(page(tmp_path, deep, 1), 11, {}) == ["page_count is 5, this is page 2"]


def test_the_last_page_shows_no_sign(tmp_path: Path) -> None:
    last = {"rows": [1], "meta": {"page": 3, "total_pages": 3}, "next_page": None}
    assert more_hints(page(tmp_path, last, 1), 21, {}) == []
    assert more_hints(page(tmp_path, {"rows": [1], "has_more": False}, 1), 1, {}) == []
