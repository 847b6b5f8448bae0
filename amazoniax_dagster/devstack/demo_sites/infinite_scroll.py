"""``infinite_scroll``: a JS feed page that loads more posts as the reader scrolls.

Channel url: ``/``. The page loads the first batch, and an IntersectionObserver on a sentinel
below the list loads the next one when it scrolls into view (each post is tall, so a batch
fills more than a screen). 42 posts, newest first, 10 a batch.

* v1: ``GET /api/feed?offset=N&limit=10`` -> ``{"items": [...]}``; the script stops at the
  first empty list.
* v2: cursor based: ``GET /api/feed?limit=10[&cursor=<opaque>]`` -> ``{"items": [...],
  "next_cursor": "..." | null}``; ``offset`` is ignored (an old client gets the first batch
  forever and never sees an empty list).
* broken: ``/api/feed`` answers ``{"items": []}`` whatever is asked.
"""

from __future__ import annotations

from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
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
    json_error,
)
from amazoniax_dagster.devstack.demo_sites.markup import html_page

V1_FETCH = """
function nextUrl() {
  const url = new URL("/api/feed", window.location.origin);
  url.searchParams.set("offset", String(list.children.length));
  url.searchParams.set("limit", "10");
  return url;
}
function done(body) { return body.items.length === 0; }
"""
V2_FETCH = """
let cursor = null;
function nextUrl() {
  const url = new URL("/api/feed", window.location.origin);
  url.searchParams.set("limit", "10");
  if (cursor) url.searchParams.set("cursor", cursor);
  return url;
}
function done(body) { cursor = body.next_cursor; return !cursor; }
"""
FEED_SCRIPT = """
const list = document.getElementById("feed");
const sentinel = document.getElementById("sentinel");
let loading = false;
let finished = false;
%(fetch)s
async function loadMore() {
  if (loading || finished) return;
  loading = true;
  try {
    const response = await fetch(nextUrl(), {headers: {"Accept": "application/json"}});
    if (!response.ok) { sentinel.textContent = "Could not load posts"; finished = true; return; }
    const body = await response.json();
    for (const post of body.items) {
      const li = document.createElement("li");
      li.className = "post";
      li.dataset.id = post.id;
      li.innerHTML = "<h3></h3><p class='author'></p><p class='meta'></p>";
      li.querySelector("h3").textContent = post.title;
      li.querySelector(".author").textContent = post.author;
      li.querySelector(".meta").textContent = post.date + " · " + post.likes + " likes";
      list.appendChild(li);
    }
    if (done(body)) {
      finished = true;
      sentinel.textContent = list.children.length ? "You're all caught up" : "No posts yet";
    }
  } finally {
    loading = false;
  }
  const box = sentinel.getBoundingClientRect();
  if (!finished && box.top < window.innerHeight) loadMore();
}
new IntersectionObserver((entries) => {
  if (entries.some((e) => e.isIntersecting)) loadMore();
}, {rootMargin: "200px"}).observe(sentinel);
"""
STYLE = "<style>.post{min-height:140px;border-bottom:1px solid #ddd}</style>\n"


class InfiniteScrollSite(DemoSite):
    """JS feed appending /api/feed?offset=N&limit=10 batches on scroll until an empty list."""

    name: ClassVar[str] = "infinite_scroll"
    source_type: ClassVar[SourceType] = "html"
    base_count: ClassVar[int] = 42
    batch: ClassVar[int] = 10

    def make_record(self, index: int) -> Record:
        rng = self.rng(index)
        return {
            "id": f"post-{rng.getrandbits(32):08x}",
            "author": rng.choice(PEOPLE),
            "title": f"My new {rng.choice(ADJECTIVES).lower()} {rng.choice(NOUNS).lower()}",
            "likes": rng.randint(0, 480),
            "date": self.record_date(index).isoformat(),
        }

    def newest_first(self) -> list[Record]:
        return list(reversed(self.records()))

    def channel_config(self, origin: str) -> dict[str, Any]:
        return {"url": f"{origin}/", "channel_name": "Demo social feed (infinite scroll)"}

    def routes(self) -> list[BaseRoute]:
        return [Route("/", self.home), Route("/api/feed", self.feed)]

    async def home(self, request: Request) -> Response:
        fetch = V2_FETCH if self.variant == "v2" else V1_FETCH
        body = (
            '<ul id="feed" class="feed"></ul>\n<div id="sentinel">Loading more…</div>\n'
            f"<script>{FEED_SCRIPT % {'fetch': fetch}}</script>"
        )
        return html_page("Feed", body, head=STYLE)

    async def feed(self, request: Request) -> Response:
        params = request.query_params
        try:
            limit = int_param(params.get("limit"), self.batch, maximum=50)
            offset = int_param(params.get("offset"), 0, minimum=0)
        except ValueError as exc:
            return json_error(400, f"invalid parameter: {exc}")
        if self.variant == "broken":
            return JSONResponse({"items": []})
        posts = self.newest_first()
        if self.variant == "v1":
            return JSONResponse({"items": posts[offset : offset + limit]})
        start = 0
        if params.get("cursor"):
            decoded = decode_cursor("feed", params["cursor"])
            if decoded is None:
                return json_error(400, "invalid cursor")
            start = decoded
        end = start + limit
        next_cursor = encode_cursor("feed", end) if end < len(posts) else None
        return JSONResponse({"items": posts[start:end], "next_cursor": next_cursor})
