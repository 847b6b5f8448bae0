"""Incremental recipes: the ``incremental`` spec, cursor comparison, and the feed filter."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import jsonschema
import pytest

from amazoniax_dagster.core.checkpoints import Checkpoint
from amazoniax_dagster.core.errors import ConfigError, SiteChangedError
from amazoniax_dagster.fetchers.recipe import SCHEMA_PATH, FeedRecipe, HttpRecipe, load_recipe
from amazoniax_dagster.fetchers.recipe.feeds import after_checkpoint
from amazoniax_dagster.fetchers.recipe.incremental import Cursor, Incremental, identifier, timestamp

STEP = """version: 1
kind: http
name: changes
steps:
  - name: changes
    request: {url: /api/changes}
    records: items
    incremental: %s
    save: [{type: body}]
"""


def test_an_incremental_step_loads_and_matches_the_published_schema() -> None:
    spec = "{cursor_path: updated_at, start_param: since, initial_value: '${window.start}'}"
    recipe = load_recipe(STEP % spec)
    assert isinstance(recipe, HttpRecipe)
    incremental = recipe.steps[0].incremental
    assert incremental is not None and incremental.cursor_type == "timestamp"
    published = json.loads(SCHEMA_PATH.read_text())
    jsonschema.validate(recipe.model_dump(mode="json", by_alias=True), published)
    feed = load_recipe("version: 1\nkind: feed\nname: news\nincremental: {cursor_path: updated}")
    assert isinstance(feed, FeedRecipe) and feed.incremental is not None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (STEP % "{cursor_type: month}", "steps[0].incremental.cursor_type"),
        (STEP % "{cursor_path: a, cursor_type: page}", "a page cursor is the paginator's"),
        (STEP % "{cursor_type: page}", "a page cursor needs page_number or offset"),
        (STEP % "{cursor_path: a, initial_value: '${extract.x}'}", "initial_value: templates"),
        (STEP % "{start_param: since}", "a timestamp cursor needs cursor_path"),
        (STEP.replace("    records: items\n", "") % "{cursor_path: a}", "needs records"),
        (
            (STEP % "{cursor_path: a}").replace("/api/changes", "'/x?s=${incremental.start_value}'")
            + "  - name: two\n    request: {url: '/y?s=${incremental.start_value}'}\n",
            "steps[1]: uses ${incremental.start_value} without incremental",
        ),
        (
            (STEP % "{cursor_path: a}")
            + "  - {name: two, request: {url: /y}, records: r, incremental: {cursor_path: b}}\n",
            "steps[1].incremental: a channel keeps one checkpoint",
        ),
        (
            "version: 1\nkind: feed\nname: news\nincremental: {cursor_path: title}",
            "a feed entry's is one of updated, published",
        ),
    ],
)
def test_invalid_incremental_specs_name_the_problem(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_recipe(text)
    assert expected in str(caught.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-03-01T10:00:00Z", datetime(2026, 3, 1, 10, tzinfo=UTC)),
        ("2026-03-01T12:00:00+02:00", datetime(2026, 3, 1, 10, tzinfo=UTC)),
        ("2026-03-01", datetime(2026, 3, 1, tzinfo=UTC)),
        ("Sun, 01 Mar 2026 10:00:00 GMT", datetime(2026, 3, 1, 10, tzinfo=UTC)),
        (1772359200, datetime(2026, 3, 1, 10, tzinfo=UTC)),
        ("1772359200000", datetime(2026, 3, 1, 10, tzinfo=UTC)),
    ],
)
def test_timestamps_in_the_usual_forms_compare_as_instants(
    value: object, expected: datetime
) -> None:
    assert timestamp(value) == expected


def test_ids_compare_as_numbers_when_they_are_numbers() -> None:
    assert identifier("10") > identifier(9)
    assert identifier("b-2") > identifier("b-10")  # text ids compare as text
    with pytest.raises(ValueError):
        timestamp("yesterday")


def _cursor(stored: Checkpoint | None = None, initial: str | None = None, **spec: str) -> Cursor:
    fields: dict[str, str] = {"cursor_path": "meta.updated", "start_param": "since", **spec}
    return Cursor(Incremental.model_validate(fields), stored, initial)


def test_a_cursor_starts_at_the_checkpoint_and_keeps_the_greatest_value_as_written() -> None:
    cursor = _cursor(Checkpoint("timestamp", "2026-03-01T10:00:00Z"), "2026-01-01")
    assert cursor.params() == {"since": "2026-03-01T10:00:00Z"} and cursor.from_checkpoint
    values = ["2026-03-01T12:00:00+02:00", "2026-03-02T08:00:00Z", "2026-03-01T11:00:00Z"]
    assert not cursor.observe(values, "page 1")  # the first is the checkpoint itself
    assert cursor.checkpoint() == Checkpoint("timestamp", "2026-03-02T08:00:00Z")
    assert cursor.metadata()["records_after_start"] == 2


def test_without_a_checkpoint_the_initial_value_or_nothing_is_sent() -> None:
    assert _cursor(initial="2026-01-01").params() == {"since": "2026-01-01"}
    first = _cursor()
    assert first.params() == {} and first.checkpoint() is None
    assert first.observe([3, 1, 2], "page 1")
    assert first.checkpoint() == Checkpoint("timestamp", "3")


def test_an_id_cursor_and_a_checkpoint_of_another_type() -> None:
    cursor = _cursor(Checkpoint("timestamp", "2026-03-01"), "100", cursor_type="id")
    assert cursor.ignored_checkpoint and cursor.params() == {"since": "100"}
    cursor.observe([99, 101, "250", 180], "page 1")
    assert cursor.checkpoint() == Checkpoint("id", "250")


def test_a_quiet_run_keeps_the_old_checkpoint() -> None:
    cursor = _cursor(Checkpoint("id", "7"), cursor_type="id")
    assert not cursor.observe([5, 7], "page 1")
    assert cursor.checkpoint() == Checkpoint("id", "7")


def test_records_without_the_cursor_or_with_a_bad_one_are_a_changed_site() -> None:
    cursor = _cursor()
    with pytest.raises(SiteChangedError, match="no cursor value at 'meta.updated'"):
        cursor.value_of({"meta": {}}, "page 1")
    assert cursor.value_of({"meta": {"updated": 5}}, "page 1") == 5
    with pytest.raises(SiteChangedError, match="is not a timestamp"):
        cursor.observe(["soon"], "page 1")
    with pytest.raises(ConfigError, match="start value is not a timestamp"):
        _cursor(initial="last week")


def test_feed_entries_after_the_checkpoint_and_undated_ones_are_kept() -> None:
    spec = Incremental(cursor_path="updated")
    cursor = Cursor(spec, Checkpoint("timestamp", "Sun, 01 Mar 2026 10:00:00 GMT"), None)
    entries = [
        {"id": "a", "updated": "2026-03-02T00:00:00Z"},
        {"id": "b", "updated": "Sun, 01 Mar 2026 10:00:00 GMT"},
        {"id": "c"},
        {"id": "d", "updated": "2026-02-27T00:00:00Z"},
    ]
    assert [e["id"] for e in after_checkpoint(entries, cursor, "feed")] == ["a", "c"]
    assert cursor.checkpoint() == Checkpoint("timestamp", "2026-03-02T00:00:00Z")
    assert after_checkpoint(entries, None, "feed") == entries
