"""The generator proposes ``incremental`` when a captured data request asks for changes after
a moment and its records carry a growing timestamp; otherwise it leaves the request alone."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from fetcher_codegen.incremental_hint import propose
from tests.unit.test_har_analysis import CAPTURE_DAY, config, entry, recipe_of


def changes(field: str, n: int = 3) -> list[dict[str, Any]]:
    return [
        {"id": i, "title": f"Change {i}", field: f"2026-03-0{i + 1}T08:00:00Z"} for i in range(n)
    ]


def test_a_since_parameter_and_updated_records_become_an_incremental_step(tmp_path: Path) -> None:
    week_ago = (CAPTURE_DAY - timedelta(days=7)).isoformat()
    cfg = config(navigation_details={"date_range": {"last_days": 7}})
    url = f"/api/changes?updated_since={week_ago}&per_page=20"
    (step,) = recipe_of(tmp_path, [entry(url, {"changes": changes("updated_at")})], cfg)["steps"]
    assert step["incremental"] == {
        "cursor_path": "updated_at",
        "start_param": "updated_since",
        "initial_value": "${window.start:%Y-%m-%d}",
    }
    assert step["request"]["query"] == {"per_page": "20"}


def test_another_naming_of_the_same_kind_is_proposed_too(tmp_path: Path) -> None:
    url = "/v2/orders?modifiedAfter=2026-02-01T00:00:00Z"
    (step,) = recipe_of(tmp_path, [entry(url, {"data": changes("modifiedAt")})], config())["steps"]
    incremental = step["incremental"]
    assert (incremental["cursor_path"], incremental["start_param"]) == (
        "modifiedAt",
        "modifiedAfter",
    )
    assert "query" not in step["request"]


def test_no_proposal_without_both_a_since_parameter_and_timestamped_records() -> None:
    records = [{"id": "1", "updated_at": "2026-03-01T08:00:00Z"}]
    assert propose({"from": "2026-03-01"}, records) is None  # a window, not a change cursor
    assert propose({"since": "2026-03-01"}, [{"id": "1", "updated_at": "soon"}]) is None
    assert propose({"since": "2026-03-01"}, [{"id": "1", "updated": "7"}]) is None
    # A since parameter the paginator or an earlier step fills is paging, not a start.
    assert propose({"since": "${cursor}"}, records) is None
    assert propose({"updated_after": "${extract.last}"}, records) is None
    assert propose({"since": "last-week"}, records) is None  # no moment the engine could send
