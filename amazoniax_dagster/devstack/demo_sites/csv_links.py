"""``csv_links``: daily CSV reports behind a login form, linked from an HTML page.

Channel url: ``/reports`` with ``login_credentials`` (anonymous visits, downloads included,
redirect to ``/login?next=...``; a wrong password re-shows the form with status 401).

* v1: ``/reports`` lists ``<ul class="files"><li><a href="/files/sales-YYYY-MM-DD.csv">``, one
  file per day for the last 8 days (51 rows in all); each download is ``text/csv`` with
  ``Content-Disposition: attachment; filename=sales-YYYY-MM-DD.csv``, a header row
  ``id,date,product,quantity,amount`` and one row per record.
* v2: the links move into ``<table class="downloads">`` (link text "Download") and to
  ``/downloads/sales-YYYY-MM-DD.csv``; ``/files/...`` answers 404.
* broken: v1 markup and paths, but every CSV holds only its header row.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import date
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from amazoniax_dagster.devstack.demo_sites.base import (
    ADJECTIVES,
    NOUNS,
    DemoSite,
    Record,
    SourceType,
)
from amazoniax_dagster.devstack.demo_sites.login import FormLogin
from amazoniax_dagster.devstack.demo_sites.markup import escape, html_page

USERNAME = "finance@demo-corp.test"
PASSWORD = "s3cret-csv-links-42"  # a demo value, public on purpose
COLUMNS = ("id", "date", "product", "quantity", "amount")


class CsvLinksSite(DemoSite):
    """Login form, then an HTML page of links to daily CSV downloads (attachment, id column)."""

    name: ClassVar[str] = "csv_links"
    source_type: ClassVar[SourceType] = "html"
    base_count: ClassVar[int] = 51
    span_days: ClassVar[int] = 7  # one file per day: 8 files

    def __init__(self, *, seed: int = 0, anchor: date | None = None) -> None:
        super().__init__(seed=seed, anchor=anchor)
        self.login = FormLogin(USERNAME, PASSWORD, home="/reports", failure_status=401)

    def reset(self) -> None:
        super().reset()
        self.login.reset()

    def make_record(self, index: int) -> Record:
        rng = self.rng(index)
        return {
            "id": f"S-{300104 + index * 7}",
            "date": self.record_date(index).isoformat(),
            "product": f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}",
            "quantity": rng.randint(1, 12),
            "amount": round(rng.uniform(3, 600), 2),
        }

    def channel_config(self, origin: str) -> dict[str, Any]:
        return {
            "url": f"{origin}/reports",
            "channel_name": "Demo daily sales CSVs (login + downloads)",
            "login_credentials": {"username": USERNAME, "password": PASSWORD},
        }

    def files(self) -> dict[str, list[Record]]:
        """File name -> its rows, newest file first (rows empty when broken)."""
        by_day: dict[str, list[Record]] = defaultdict(list)
        for record in self.records():
            by_day[record["date"]].append(record)
        return {
            f"sales-{day}.csv": [] if self.variant == "broken" else rows
            for day, rows in sorted(by_day.items(), reverse=True)
        }

    @property
    def download_prefix(self) -> str:
        return "/downloads/" if self.variant == "v2" else "/files/"

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/", self.root),
            Route("/login", self.login.endpoint, methods=["GET", "POST"]),
            Route("/logout", self.login.logout, methods=["GET", "POST"]),
            Route("/reports", self.reports),
            Route("/files/{name:str}", self.download),
            Route("/downloads/{name:str}", self.download),
        ]

    async def root(self, request: Request) -> Response:
        return RedirectResponse("/reports", status_code=302)

    async def reports(self, request: Request) -> Response:
        if not self.login.is_authenticated(request):
            return self.login.redirect_to_login(request)
        files = self.files()
        if self.variant == "v2":
            rows = "\n".join(
                f"<tr><td>{escape(name)}</td><td>{_day_of(name)}</td>"
                f"<td>{len(content)} rows</td>"
                f'<td><a class="btn" href="/downloads/{escape(name)}">Download</a></td></tr>'
                for name, content in files.items()
            )
            listing = (
                '<table class="downloads">\n<thead><tr><th>File</th><th>Day</th>'
                "<th>Size</th><th></th></tr></thead>\n"
                f"<tbody>\n{rows}\n</tbody>\n</table>"
            )
        else:
            items = "\n".join(
                f'<li><a href="/files/{escape(name)}">{escape(name)}</a> ({len(content)} rows)</li>'
                for name, content in files.items()
            )
            listing = f'<ul class="files">\n{items}\n</ul>'
        body = f'<p><a href="/logout">Sign out</a></p>\n<h2>Daily sales</h2>\n{listing}'
        return html_page("Reports", body)

    async def download(self, request: Request) -> Response:
        if not self.login.is_authenticated(request):
            return self.login.redirect_to_login(request)
        name = request.path_params["name"]
        files = self.files()
        if not request.url.path.startswith(self.download_prefix) or name not in files:
            return PlainTextResponse("Not Found", status_code=404)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(files[name])
        return Response(
            buffer.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )


def _day_of(file_name: str) -> str:
    return file_name.removeprefix("sales-").removesuffix(".csv")
