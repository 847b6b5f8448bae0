"""``atom_paged``: a blog's Atom feed split into pages linked by ``rel="next"`` (RFC 5005).

Channel url: ``/``, a blog page with ``<link rel="alternate" type="application/atom+xml">``.
30 posts, newest first, 10 an Atom page: the first feed document holds only a third.

* v1: ``/feed.atom`` then ``/feed.atom?page=N``; each page has ``<link rel="next">`` until
  the last (and ``rel="previous"`` after the first); a page past the end is 404.
* v2: the feed moves to ``/feeds/posts.atom?cursor=<opaque>`` (the next link carries the
  cursor); ``/feed.atom`` is 404; the blog page links the new address.
* broken: the feed is valid but has no entries and no next link.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar
from xml.sax.saxutils import escape as xml_escape
from xml.sax.saxutils import quoteattr

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from amazoniax_dagster.devstack.demo_sites.base import (
    ADJECTIVES,
    NOUNS,
    PEOPLE,
    DemoSite,
    Record,
    SourceType,
    decode_cursor,
    encode_cursor,
    int_param,
)
from amazoniax_dagster.devstack.demo_sites.markup import html_page


class AtomPagedSite(DemoSite):
    """Atom feed paged by <link rel="next"> (10 entries a document, 3 documents)."""

    name: ClassVar[str] = "atom_paged"
    source_type: ClassVar[SourceType] = "html"
    base_count: ClassVar[int] = 30
    page_size: ClassVar[int] = 10

    def make_record(self, index: int) -> Record:
        rng = self.rng(index)
        return {
            "id": f"tag:blog.example,2026:post-{5101 + index * 11}",
            "title": f"Notes on the {rng.choice(ADJECTIVES).lower()} {rng.choice(NOUNS).lower()}",
            "author": rng.choice(PEOPLE),
            "date": self.record_date(index).isoformat(),
        }

    def channel_config(self, origin: str) -> dict[str, Any]:
        return {"url": f"{origin}/", "channel_name": "Demo blog (paged Atom feed)"}

    @property
    def feed_path(self) -> str:
        return "/feeds/posts.atom" if self.variant == "v2" else "/feed.atom"

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/", self.home),
            Route("/feed.atom", self.feed),
            Route("/feeds/posts.atom", self.feed),
        ]

    async def home(self, request: Request) -> Response:
        head = (
            '<link rel="alternate" type="application/atom+xml" title="Posts"'
            f' href="{self.feed_path}">\n'
        )
        return html_page(
            "Demo blog", f'<p>Subscribe: <a href="{self.feed_path}">Atom feed</a></p>', head=head
        )

    async def feed(self, request: Request) -> Response:
        if request.url.path != self.feed_path:
            return PlainTextResponse("Not Found", status_code=404)
        posts = list(reversed(self.ground_truth()))
        pages = max(1, math.ceil(len(posts) / self.page_size))
        if self.variant == "v2":
            cursor = request.query_params.get("cursor")
            start = decode_cursor("atom", cursor) if cursor else 0
            page = 0 if start is None else start // self.page_size + 1
        else:
            try:
                page = int_param(request.query_params.get("page"), 1)
            except ValueError:
                page = 0
        if not 1 <= page <= pages:
            return PlainTextResponse("Not Found", status_code=404)
        base = str(request.base_url).rstrip("/") + self.feed_path
        links = [f'<link rel="self" href={quoteattr(str(request.url))}/>']
        if page < pages:
            links.append(f'<link rel="next" href={quoteattr(self._page_url(base, page + 1))}/>')
        if page > 1:
            links.append(f'<link rel="previous" href={quoteattr(self._page_url(base, page - 1))}/>')
        chunk = posts[(page - 1) * self.page_size : page * self.page_size]
        updated = (posts[0]["date"] if posts else self.anchor.isoformat()) + "T08:00:00Z"
        entries = "".join(
            f"<entry><id>{xml_escape(p['id'])}</id><title>{xml_escape(p['title'])}</title>"
            f"<author><name>{xml_escape(p['author'])}</name></author>"
            f"<updated>{p['date']}T08:00:00Z</updated>"
            f'<link rel="alternate" href={quoteattr(base + "#" + p["id"].rsplit(":", 1)[1])}/>'
            "</entry>\n"
            for p in chunk
        )
        text = (
            '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">\n'
            "<title>Demo blog</title><id>tag:blog.example,2026:feed</id>"
            f"<updated>{updated}</updated>\n" + "\n".join(links) + f"\n{entries}</feed>\n"
        )
        return Response(text, media_type="application/atom+xml")

    def _page_url(self, base: str, page: int) -> str:
        if self.variant == "v2":
            return f"{base}?cursor={encode_cursor('atom', (page - 1) * self.page_size)}"
        return f"{base}?page={page}"
