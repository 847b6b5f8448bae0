"""``login_table``: a members' area behind a login form (CSRF + session cookie) whose data is a
server-rendered HTML table paged by "Next »" links.

Channel url: ``/members/invoices`` (redirects to ``/login`` until signed in). 32 invoices,
10 a page, so four pages.

* v1: ``/members/invoices?page=N`` -> ``<table class="data">`` with a header row and rows
  ``<td>INV-…</td><td>customer</td><td>amount</td><td>date</td>``; the pager's last link is
  ``<a href="?page=N+1">Next »</a>`` until the last page.
* v2: the list moves to ``/members/billing?offset=N`` (rows in ``<tbody>`` of
  ``<table class="invoices-table">``, the link text "Older invoices →"); the v1 path
  redirects (301) to the new one, and ``?page=`` is ignored there.
* broken: the table has a header row and no data rows, and no pager.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from amazoniax_dagster.devstack.demo_sites.base import (
    PEOPLE,
    DemoSite,
    Record,
    SourceType,
    int_param,
)
from amazoniax_dagster.devstack.demo_sites.login import FormLogin
from amazoniax_dagster.devstack.demo_sites.markup import escape, html_page, money

USERNAME = "accounts@demo.example"
PASSWORD = "ledger-2026-secret"
HEADER = "<tr><th>Invoice</th><th>Customer</th><th>Amount</th><th>Date</th></tr>"


class LoginTableSite(DemoSite):
    """Login form (CSRF + session) over an HTML table paged by "Next »" links."""

    name: ClassVar[str] = "login_table"
    source_type: ClassVar[SourceType] = "html"
    base_count: ClassVar[int] = 32
    page_size: ClassVar[int] = 10

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.login = FormLogin(USERNAME, PASSWORD, home="/members/invoices")

    def reset(self) -> None:
        super().reset()
        self.login.reset()

    def make_record(self, index: int) -> Record:
        rng = self.rng(index)
        return {
            "id": f"INV-{2026}{3100 + index * 7:05d}",
            "customer": rng.choice(PEOPLE),
            "amount": round(rng.uniform(40, 4000), 2),
            "date": self.record_date(index).isoformat(),
        }

    def channel_config(self, origin: str) -> dict[str, Any]:
        return {
            "url": f"{origin}/members/invoices",
            "channel_name": "Demo invoices (login + HTML table)",
            "login_credentials": {"username": USERNAME, "password": PASSWORD},
        }

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/login", self.login.endpoint, methods=["GET", "POST"]),
            Route("/logout", self.login.logout),
            Route("/members/invoices", self.invoices),
            Route("/members/billing", self.billing),
        ]

    async def invoices(self, request: Request) -> Response:
        if not self.login.is_authenticated(request):
            return self.login.redirect_to_login(request)
        if self.variant == "v2":
            return RedirectResponse("/members/billing", status_code=301)
        try:
            page = int_param(request.query_params.get("page"), 1)
        except ValueError:
            page = 0
        return self._page(page, lambda n: f"?page={n}", "Next »", 'class="data"', tbody=False)

    async def billing(self, request: Request) -> Response:
        if not self.login.is_authenticated(request):
            return self.login.redirect_to_login(request)
        if self.variant != "v2":
            return PlainTextResponse("Not Found", status_code=404)
        try:
            offset = int_param(request.query_params.get("offset"), 0, minimum=0)
        except ValueError:
            offset = -1
        if offset % self.page_size:
            return PlainTextResponse("Not Found", status_code=404)
        return self._page(
            offset // self.page_size + 1,
            lambda n: f"/members/billing?offset={(n - 1) * self.page_size}",
            "Older invoices →",
            'class="invoices-table"',
            tbody=True,
        )

    def _page(
        self, page: int, href: Any, next_text: str, table_attrs: str, *, tbody: bool
    ) -> Response:
        records = self.ground_truth()
        pages = max(1, math.ceil(len(records) / self.page_size))
        if not 1 <= page <= pages:
            return PlainTextResponse("Page not found", status_code=404)
        chunk = records[(page - 1) * self.page_size : page * self.page_size]
        rows = "".join(
            f"<tr><td>{escape(r['id'])}</td><td>{escape(r['customer'])}</td>"
            f"<td>{money(r['amount'], '€')}</td><td>{r['date']}</td></tr>\n"
            for r in chunk
        )
        if tbody:
            table = f"<table {table_attrs}><thead>{HEADER}</thead><tbody>\n{rows}</tbody></table>"
        else:
            table = f"<table {table_attrs}>\n{HEADER}\n{rows}</table>"
        pager = ""
        if records:
            links = [f"<span>Page {page} of {pages}</span>"]
            if page < pages:
                links.append(f'<a href="{href(page + 1)}">{next_text}</a>')
            pager = f'\n<div class="pager">{" ".join(links)}</div>'
        return html_page("Invoices", f'{table}{pager}\n<p><a href="/logout">Sign out</a></p>')
