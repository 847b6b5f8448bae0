"""``export_links``: an open-data page listing export files of several kinds, one per quarter.

Channel url: ``/exports``. 40 measurements split into four files of different kinds (newest
first): ``.json``, ``.xml``, ``.tsv`` and ``.csv``, plus a ``methodology.pdf`` (no records).
The page links the newest file twice (a "Latest" banner and the list), so a fetcher must
download each file once. Every record is in exactly one file.

* v1: links ``/exports/files/<name>`` in ``<ul class="exports">``; JSON is
  ``{"measurements": [...]}``, XML ``<measurements><measurement><id>…``, TSV/CSV have a header.
* v2: the files move to ``/opendata/download?file=<name>`` (served with a
  ``Content-Disposition`` file name) and the list becomes a table with a "Format" column;
  ``/exports/files/…`` is 404.
* broken: "No exports available." and no links.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any, ClassVar
from xml.sax.saxutils import escape as xml_escape

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from amazoniax_dagster.devstack.demo_sites.base import CITIES, DemoSite, Record, SourceType
from amazoniax_dagster.devstack.demo_sites.markup import escape, html_page

KINDS = ("json", "xml", "tsv", "csv")
MEDIA = {
    "json": "application/json",
    "xml": "application/xml",
    "tsv": "text/tab-separated-values",
    "csv": "text/csv",
    "pdf": "application/pdf",
}
FIELDS = ("id", "station", "pm25", "date")
PDF_NAME = "methodology.pdf"


class ExportLinksSite(DemoSite):
    """Page of export-file links (json, xml, tsv, csv, pdf), newest linked twice."""

    name: ClassVar[str] = "export_links"
    source_type: ClassVar[SourceType] = "html"
    base_count: ClassVar[int] = 40

    def make_record(self, index: int) -> Record:
        rng = self.rng(index)
        return {
            "id": f"AQ-{rng.choice(CITIES)[:3].upper()}-{51000 + index * 13}",
            "station": rng.choice(CITIES),
            "pm25": round(rng.uniform(2, 60), 1),
            "date": self.record_date(index).isoformat(),
        }

    def channel_config(self, origin: str) -> dict[str, Any]:
        return {"url": f"{origin}/exports", "channel_name": "Demo air quality exports (files)"}

    def files(self) -> dict[str, tuple[str, list[Record]]]:
        """File name -> (kind, records), newest first; records split into len(KINDS) parts."""
        records = self.ground_truth()
        size = -(-len(records) // len(KINDS)) if records else 0
        out: dict[str, tuple[str, list[Record]]] = {}
        for part, kind in enumerate(KINDS):
            chunk = list(reversed(records))[part * size : (part + 1) * size]
            if chunk:
                out[f"air-quality-{chunk[-1]['date']}-to-{chunk[0]['date']}.{kind}"] = (kind, chunk)
        return out

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/exports", self.page),
            Route("/exports/files/{name:str}", self.file_v1),
            Route("/opendata/download", self.file_v2),
        ]

    def _href(self, name: str) -> str:
        if self.variant == "v2":
            return f"/opendata/download?file={name}"
        return f"/exports/files/{name}"

    async def page(self, request: Request) -> Response:
        files = self.files()
        if not files:
            return html_page("Air quality exports", "<p>No exports available.</p>")
        names = [*files, PDF_NAME]
        latest = f'<p class="latest">Latest: <a href="{self._href(names[0])}">{names[0]}</a></p>'
        if self.variant == "v2":
            rows = "".join(
                f'<tr><td><a href="{escape(self._href(n))}">{escape(n)}</a></td>'
                f"<td>{n.rsplit('.', 1)[1].upper()}</td></tr>\n"
                for n in names
            )
            listing = f'<table class="files"><tr><th>File</th><th>Format</th></tr>\n{rows}</table>'
        else:
            items = "".join(f'<li><a href="{self._href(n)}">{escape(n)}</a></li>\n' for n in names)
            listing = f'<ul class="exports">\n{items}</ul>'
        return html_page("Air quality exports", f"{latest}\n{listing}")

    async def file_v1(self, request: Request) -> Response:
        if self.variant == "v2":
            return PlainTextResponse("Not Found", status_code=404)
        return self._file(request.path_params["name"])

    async def file_v2(self, request: Request) -> Response:
        if self.variant != "v2":
            return PlainTextResponse("Not Found", status_code=404)
        return self._file(request.query_params.get("file", ""))

    def _file(self, name: str) -> Response:
        headers = {"Content-Disposition": f'attachment; filename="{name}"'}
        if name == PDF_NAME and self.variant != "broken":
            return Response(_pdf("Air quality exports: methodology"), 200, headers, MEDIA["pdf"])
        found = self.files().get(name)
        if found is None:
            return PlainTextResponse("Not Found", status_code=404)
        kind, records = found
        return Response(_render(kind, records), 200, headers, MEDIA[kind])


def _render(kind: str, records: list[Record]) -> str:
    rows = [{key: r[key] for key in FIELDS} for r in records]
    if kind == "json":
        return json.dumps({"measurements": rows}, indent=1)
    if kind == "xml":
        body = "".join(
            "<measurement>"
            + "".join(f"<{k}>{xml_escape(str(v))}</{k}>" for k, v in row.items())
            + "</measurement>\n"
            for row in rows
        )
        return f'<?xml version="1.0" encoding="utf-8"?>\n<measurements>\n{body}</measurements>\n'
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, FIELDS, delimiter="\t" if kind == "tsv" else ",", lineterminator="\n"
    )
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _pdf(title: str) -> bytes:
    """A minimal one-page PDF showing ``title`` (valid xref offsets, Helvetica)."""
    stream = f"BT /F1 18 Tf 72 720 Td ({title}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)
