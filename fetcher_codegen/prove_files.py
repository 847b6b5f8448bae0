"""Files the proof must see fetched again: captured downloads that carry no records (a PDF, an
archive, a spreadsheet the parser cannot read), which no record value can vouch for."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit

from amazoniax_dagster.fetchers.base import FetchReport
from fetcher_codegen.analysis import DataGroup


def captured_files(data: Iterable[DataGroup]) -> list[str]:
    """URL paths of the capture's downloads without records, each once."""
    return list(
        dict.fromkeys(
            urlsplit(entry.url).path
            for group in data
            if group.downloads and not group.record_count
            for entry in group.entries
            if 200 <= entry.status < 300
        )
    )


def files_missing(report: FetchReport, paths: Sequence[str]) -> list[str]:
    """``file <path>`` for each expected path no saved file was fetched from."""
    fetched = {urlsplit(f.source_url).path for f in report.files if f.source_url}
    return [f"file {path}" for path in paths if path not in fetched]


__all__ = ["captured_files", "files_missing"]
