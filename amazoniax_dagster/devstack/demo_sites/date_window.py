"""``date_window``: an events API that answers only for a date window (``?from=&to=``).

Channel url: ``/``: a search page whose form (two date inputs, defaulting to the last 7
days) loads ``/api/events?from=YYYY-MM-DD&to=YYYY-MM-DD`` by XHR. The channel asks for the
last 30 days (``navigation_details.date_range``), wider than the page's default, so a fetcher
that copies the form's default misses most of the window. 64 events over 60 days; the ground
truth is the events inside the channel's window (about half).

* v1: ``from`` and ``to`` are required (400 without them, or when ``from`` > ``to``, or when
  the window is longer than 92 days); the answer is ``{"events": [...], "from": …, "to": …}``,
  every event of the window at once.
* v2: the parameters become ``start_date``/``end_date`` and the events move under
  ``{"data": {"events": [...]}}``; ``from``/``to`` alone -> 400 naming the new parameters.
* broken: ``{"events": []}`` for any window.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from amazoniax_dagster.devstack.demo_sites.base import (
    ADJECTIVES,
    CITIES,
    DemoSite,
    Record,
    SourceType,
    json_error,
)
from amazoniax_dagster.devstack.demo_sites.markup import html_page

WINDOW_DAYS = 30
MAX_WINDOW_DAYS = 92
SCRIPT = """
const form = document.getElementById("search");
const FROM = "%(start)s", TO = "%(end)s", ROWS = %(rows)s;
async function search(event) {
  if (event) event.preventDefault();
  const url = new URL("/api/events", window.location.origin);
  url.searchParams.set(FROM, form.elements.from.value);
  url.searchParams.set(TO, form.elements.to.value);
  const body = await (await fetch(url)).json();
  const list = document.getElementById("events");
  list.replaceChildren();
  for (const e of ROWS(body)) {
    const li = document.createElement("li");
    li.dataset.id = e.id;
    li.textContent = e.date + " " + e.title + " (" + e.city + ")";
    list.appendChild(li);
  }
}
form.addEventListener("submit", search);
search();
"""


class DateWindowSite(DemoSite):
    """Events API that needs a date window (?from=&to=); the channel asks for 30 days."""

    name: ClassVar[str] = "date_window"
    source_type: ClassVar[SourceType] = "html"
    base_count: ClassVar[int] = 64

    def make_record(self, index: int) -> Record:
        rng = self.rng(index)
        return {
            "id": f"EV-{9000 + index * 37}",
            "title": f"{rng.choice(ADJECTIVES)} meetup",
            "city": rng.choice(CITIES),
            "date": self.record_date(index).isoformat(),
        }

    def ground_truth(self) -> list[Record]:
        """The events inside the channel's window (the last 30 days, today included)."""
        since = (self.anchor - timedelta(days=WINDOW_DAYS)).isoformat()
        return [r for r in super().ground_truth() if r["date"] >= since]

    def channel_config(self, origin: str) -> dict[str, Any]:
        return {
            "url": f"{origin}/",
            "channel_name": "Demo events (date-window API)",
            "navigation_details": {"date_range": {"last_days": WINDOW_DAYS}},
        }

    def routes(self) -> list[BaseRoute]:
        return [Route("/", self.home), Route("/api/events", self.events)]

    async def home(self, request: Request) -> Response:
        v2 = self.variant == "v2"
        script = SCRIPT % {
            "start": "start_date" if v2 else "from",
            "end": "end_date" if v2 else "to",
            "rows": "(b) => b.data.events" if v2 else "(b) => b.events",
        }
        week_ago = (self.anchor - timedelta(days=7)).isoformat()
        body = (
            '<form id="search">'
            f'<label>From <input type="date" name="from" value="{week_ago}"></label> '
            f'<label>To <input type="date" name="to" value="{self.anchor.isoformat()}"></label> '
            '<button type="submit">Search</button></form>\n<ul id="events"></ul>\n'
            f"<script>{script}</script>"
        )
        return html_page("Events", body)

    async def events(self, request: Request) -> Response:
        v2 = self.variant == "v2"
        names = ("start_date", "end_date") if v2 else ("from", "to")
        params = request.query_params
        if not params.get(names[0]) or not params.get(names[1]):
            return json_error(400, f"{names[0]} and {names[1]} (YYYY-MM-DD) are required")
        try:
            start = date.fromisoformat(params[names[0]])
            end = date.fromisoformat(params[names[1]])
        except ValueError as exc:
            return json_error(400, f"invalid date: {exc}")
        if start > end or (end - start).days > MAX_WINDOW_DAYS:
            return json_error(400, f"the window must run forwards, {MAX_WINDOW_DAYS} days at most")
        selected = [
            r
            for r in ([] if self.variant == "broken" else self.records())
            if start.isoformat() <= r["date"] <= end.isoformat()
        ]
        if v2:
            return JSONResponse({"data": {"events": selected}})
        return JSONResponse({"events": selected, "from": start.isoformat(), "to": end.isoformat()})
