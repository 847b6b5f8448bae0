"""Data files a page links to are downloads whatever their kind, not only CSV attachments."""

from __future__ import annotations

from typing import Any

from amazoniax_dagster.core.messages import WebSourceConfig
from fetcher_codegen.analysis import analyze
from fetcher_codegen.har import entries_from_har

ORIGIN = "http://stats.test"


def opened(path: str, mime: str, text: str, resource_type: str = "document") -> dict[str, Any]:
    return {
        "startedDateTime": "2026-03-10T10:00:00.000Z",
        "_resourceType": resource_type,
        "request": {"method": "GET", "url": ORIGIN + path, "headers": []},
        "response": {"status": 200, "headers": [], "content": {"mimeType": mime, "text": text}},
    }


def test_linked_xml_tsv_and_pdf_files_are_downloads() -> None:
    page = "".join(
        f"<li><a href='/files/{name}'>{name}</a></li>"
        for name in ("stats.xml", "stats.tsv", "method.pdf")
    )
    entries = entries_from_har(
        {
            "log": {
                "entries": [
                    opened("/exports", "text/html", f"<html><body><ul>{page}</ul></body></html>"),
                    opened("/files/stats.xml", "application/xml", "<rows><r id='1'/></rows>"),
                    opened("/files/stats.tsv", "text/tab-separated-values", "id\tv\n1\t2\n"),
                    opened("/files/method.pdf", "application/pdf", "%PDF-1.4 x"),
                ]
            }
        }
    )
    analysis = analyze(entries, WebSourceConfig(url=f"{ORIGIN}/exports"))
    downloads = {e.path for d in analysis.data if d.downloads for e in d.entries}
    assert downloads == {"/files/stats.xml", "/files/stats.tsv", "/files/method.pdf"}


def test_a_script_call_to_a_json_file_is_not_a_download() -> None:
    body = '{"items": [{"id": "a", "n": 1}, {"id": "b", "n": 2}]}'
    entries = entries_from_har(
        {"log": {"entries": [opened("/api/items.json", "application/json", body, "fetch")]}}
    )
    analysis = analyze(entries, WebSourceConfig(url=f"{ORIGIN}/"))
    assert [d.downloads for d in analysis.data] == [False]
