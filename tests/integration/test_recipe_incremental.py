"""Incremental recipes run by the engine against a real local site: a paged feed stops at the
first page with entries before the checkpoint, an RSS feed keeps entries after it by their
published date, a newest-first API stops paging at the checkpoint (``row_order: desc``), and
page cursors resume an append-only list at its last page (by number or by offset)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from amazoniax_dagster.core.checkpoints import Checkpoint
from tests.integration.recipe_sites import SiteState
from tests.integration.test_recipe_engine import (
    FAST,
    context,
    http_recipe,
    origin,
    records,
    run,
    site_state,
    state,
)

__all__ = ["origin", "site_state", "state"]  # the fixtures, used by name


def feed(url: str, cursor: str) -> str:
    return (
        f"version: 1\nkind: feed\nname: news\n{FAST}url: {url}\n"
        f"incremental: {{cursor_path: {cursor}}}\n"
    )


def test_a_paged_feed_stops_at_the_first_page_with_entries_before_the_checkpoint(
    tmp_path: Path, origin: str, state: SiteState
) -> None:
    recipe = feed("/paged.atom", "updated")
    first = run(recipe, context(tmp_path / "1", origin))
    assert state.hits["/paged.atom"] == 3 and not first.incremental
    assert first.checkpoint == Checkpoint("timestamp", "2026-01-19T00:00:00Z")

    ctx = replace(
        context(tmp_path / "2", origin), checkpoint=Checkpoint("timestamp", "2026-01-16T00:00:00Z")
    )
    report = run(recipe, ctx)
    entries = json.loads((ctx.out_dir / "entries.json").read_text())
    assert [e["id"] for e in entries] == ["urn:e1", "urn:e2", "urn:e3"]
    assert state.hits["/paged.atom"] == 3 + 2, "page 2 reached the checkpoint: no page 3"
    assert report.incremental and report.metadata["entries_before_checkpoint"] == 1
    assert report.checkpoint == Checkpoint("timestamp", "2026-01-19T00:00:00Z")


def test_an_rss_feed_keeps_entries_published_after_the_checkpoint_and_undated_ones(
    tmp_path: Path, origin: str, state: SiteState
) -> None:
    ctx = replace(
        context(tmp_path, origin),
        checkpoint=Checkpoint("timestamp", "Mon, 09 Feb 2026 10:00:00 GMT"),
    )
    report = run(feed("/feed.xml", "published"), ctx)
    entries = json.loads((ctx.out_dir / "entries.json").read_text())
    assert [e["title"] for e in entries] == ["First (again)", "Second", "Third"]
    assert report.checkpoint == Checkpoint("timestamp", "Tue, 10 Feb 2026 10:00:00 GMT")


def test_a_newest_first_api_stops_paging_at_the_checkpoint(
    tmp_path: Path, origin: str, state: SiteState
) -> None:
    recipe = http_recipe(
        "  - name: items\n"
        "    request: {url: /newest, query: {after: '${incremental.start_value}'}}\n"
        "    records: items\n"
        "    paginate: {type: page_number, param: page}\n"
        "    incremental: {cursor_path: id, cursor_type: id, row_order: desc}\n"
        "    save: [{type: body}]\n"
    )
    ctx = replace(context(tmp_path, origin), checkpoint=Checkpoint("id", "3"))
    report = run(recipe, ctx)
    assert state.hits["/newest"] == 2, "the page holding id 3 is the last one asked"
    assert [q["after"] for q in state.queries] == ["3", "3"]  # ${incremental.start_value}
    assert [r["id"] for r in records(ctx, report)] == [5, 4, 3, 2]
    assert report.checkpoint == Checkpoint("id", "5")
    assert report.metadata["steps"]["items"]["stopped"] == "reached records before the checkpoint"
    assert report.metadata["incremental"]["records_after_start"] == 2


@pytest.mark.parametrize(
    ("path", "paginate", "hits", "checkpoint"),
    [
        ("/pages", "{type: page_number, param: page}", 4, "3"),
        ("/offset", "{type: offset, param: offset, limit: 2, limit_param: limit}", 3, "4"),
    ],
)
def test_a_page_cursor_resumes_at_the_last_page_that_had_records(
    tmp_path: Path,
    origin: str,
    state: SiteState,
    path: str,
    paginate: str,
    hits: int,
    checkpoint: str,
) -> None:
    recipe = http_recipe(
        f"  - name: items\n    request: {{url: {path}}}\n    records: items\n"
        f"    paginate: {paginate}\n    incremental: {{cursor_type: page}}\n"
        "    save: [{type: body}]\n"
    )
    first = run(recipe, context(tmp_path / "1", origin))
    assert state.hits[path] == hits and first.checkpoint == Checkpoint("page", checkpoint)

    ctx = replace(context(tmp_path / "2", origin), checkpoint=first.checkpoint)
    again = run(recipe, ctx)
    assert [r["id"] for r in records(ctx, again)] == [5], "only the last page is read again"
    assert again.checkpoint == first.checkpoint and again.incremental
