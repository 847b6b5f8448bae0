"""Pure parts of an html/api job."""

from __future__ import annotations

from pathlib import Path

from amazoniax_dagster.jobs.site_job import csv_rows


def test_csv_rows_counts_data_rows_not_headers(tmp_path: Path) -> None:
    assert csv_rows(tmp_path) is None  # no CSV: the count is unknown, not zero
    (tmp_path / "a.csv").write_text("id,v\n1,x\n2,y\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.tsv").write_text("id\tv\n\n")
    (tmp_path / "notes.json").write_text("[1, 2, 3]")
    assert csv_rows(tmp_path) == 2
    (tmp_path / "a.csv").write_text("id,v\n")
    assert csv_rows(tmp_path) == 0
