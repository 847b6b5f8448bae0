"""``load_more``: a news page with a "Load more" button whose ``data-next`` names the next
HTML fragment, and a consent cookie set by JavaScript that the fragments require.

Channel url: ``/news``. 29 stories, 8 per fragment. The page's script sets
``document.cookie = "consent=yes"``; ``/news/more?cursor=…`` answers 403 without it.

* v1: ``<button class="load-more" data-next="/news/more?cursor=…">Load more</button>``; each
  fragment is ``<article data-story-id="NS-…">…</article>`` items plus the next button (none
  after the last).
* v2: the button becomes ``<a class="more-link" data-href="/news/page?after=…">Show more
  stories</a>`` and the cookie is ``cookie_consent=accepted``; ``/news/more`` is 404.
* broken: the page has no stories and no button.
"""

from __future__ import annotations

from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from amazoniax_dagster.devstack.demo_sites.base import (
    ADJECTIVES,
    CITIES,
    DemoSite,
    Record,
    SourceType,
    decode_cursor,
    encode_cursor,
)
from amazoniax_dagster.devstack.demo_sites.markup import escape, html_page

SCRIPT = """
document.cookie = "%(cookie)s; path=/";
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[%(attr)s]");
  if (!button) return;
  const html = await (await fetch(button.getAttribute("%(attr)s"))).text();
  button.insertAdjacentHTML("afterend", html);
  button.remove();
});
"""


class LoadMoreSite(DemoSite):
    """HTML "Load more" button with data-next fragments, gated by a cookie set by JS."""

    name: ClassVar[str] = "load_more"
    source_type: ClassVar[SourceType] = "html"
    base_count: ClassVar[int] = 29
    batch: ClassVar[int] = 8

    def make_record(self, index: int) -> Record:
        rng = self.rng(index)
        return {
            "id": f"NS-{rng.getrandbits(30):08X}",
            "headline": f"{rng.choice(ADJECTIVES)} festival opens in {rng.choice(CITIES)}",
            "date": self.record_date(index).isoformat(),
        }

    def channel_config(self, origin: str) -> dict[str, Any]:
        return {"url": f"{origin}/news", "channel_name": "Demo news (Load more, JS cookie)"}

    @property
    def cookie(self) -> tuple[str, str]:
        return ("cookie_consent", "accepted") if self.variant == "v2" else ("consent", "yes")

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/news", self.home),
            Route("/news/more", self.fragment),
            Route("/news/page", self.fragment),
        ]

    def _fragment(self, start: int) -> str:
        stories = list(reversed(self.ground_truth()))
        chunk = stories[start : start + self.batch]
        items = "".join(
            f'<article data-story-id="{escape(s["id"])}"><h2>{escape(s["headline"])}</h2>'
            f'<time datetime="{s["date"]}">{s["date"]}</time></article>\n'
            for s in chunk
        )
        end = start + self.batch
        if end >= len(stories):
            return items
        cursor = encode_cursor("news", end)
        if self.variant == "v2":
            more = (
                f'<a class="more-link" data-href="/news/page?after={cursor}">Show more stories</a>'
            )
        else:
            href = f"/news/more?cursor={cursor}"
            more = f'<button class="load-more" data-next="{href}">Load more</button>'
        return items + more

    async def home(self, request: Request) -> Response:
        name, value = self.cookie
        attr = "data-href" if self.variant == "v2" else "data-next"
        script = SCRIPT % {"cookie": f"{name}={value}", "attr": attr}
        body = f'<section id="stories">\n{self._fragment(0)}\n</section>\n<script>{script}</script>'
        return html_page("News", body)

    async def fragment(self, request: Request) -> Response:
        v2 = self.variant == "v2"
        if request.url.path != ("/news/page" if v2 else "/news/more"):
            return PlainTextResponse("Not Found", status_code=404)
        name, value = self.cookie
        if request.cookies.get(name) != value:
            return PlainTextResponse("Please accept cookies to load more.", status_code=403)
        start = decode_cursor("news", request.query_params.get("after" if v2 else "cursor", ""))
        if start is None:
            return PlainTextResponse("Bad cursor", status_code=400)
        return HTMLResponse(self._fragment(start))
