"""``rss_feed``: a news site with an RSS 2.0 feed (Atom after the redesign).

Channel url: the home page ``/``, whose ``<link rel="alternate">`` names the feed. The feed
holds the newest 25 posts (24 at first; ``advance()`` pushes old ones out, so consecutive
fetches overlap) and, as real feeds do, repeats two of them (same guid twice, the repeat with a
later date); ``ground_truth()`` lists each post once. Posts are pages at ``/posts/<n>``.

* v1: ``/feed.xml`` (``application/rss+xml``), items with ``<guid isPermaLink="false">``
  ``tag:news.demo.test,2019:post-<n>``.
* v2: the feed moved to Atom at ``/atom.xml`` (``<entry><id>`` = the same tag URI), the home
  page's alternate link points there, and ``/feed.xml`` answers 404 (not a redirect: the old
  URL is simply gone, as after many CMS migrations).
* broken: ``/feed.xml`` is a valid RSS document with no items.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, time, timedelta
from email.utils import format_datetime
from typing import Any, ClassVar

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
)
from amazoniax_dagster.devstack.demo_sites.markup import escape, html_page

FEED_SIZE = 25
ATOM_NS = "http://www.w3.org/2005/Atom"
TOPICS = ("business", "science", "sports", "culture", "local")
VERBS = ("unveils", "recalls", "discounts", "reinvents", "ships", "bans")
REPEATS = ((2, 11), (5, 17))  # (position of the post, position of its repeat) in the feed


class RssFeedSite(DemoSite):
    """News home page linking an RSS 2.0 feed (guid per item, two repeated items); v2 = Atom."""

    name: ClassVar[str] = "rss_feed"
    source_type: ClassVar[SourceType] = "html"
    base_count: ClassVar[int] = 24

    def make_record(self, index: int) -> Record:
        rng = self.rng(index)
        number = 4101 + index
        return {
            "id": f"tag:news.demo.test,2019:post-{number}",
            "number": number,
            "title": f"{rng.choice(PEOPLE)} {rng.choice(VERBS)} the "
            f"{rng.choice(ADJECTIVES).lower()} {rng.choice(NOUNS).lower()}",
            "category": rng.choice(TOPICS),
            "date": self.record_date(index).isoformat(),
            "published": self._published(index).isoformat(),
        }

    def _published(self, index: int) -> datetime:
        day = self.record_date(index)
        return datetime.combine(day, time(9, 0), tzinfo=UTC) + timedelta(minutes=index % 600)

    def window(self) -> list[Record]:
        """The posts in the feed, newest first."""
        return list(reversed(self.records()))[:FEED_SIZE]

    def ground_truth(self) -> list[Record]:
        return [] if self.variant == "broken" else self.window()

    def feed_entries(self) -> list[Record]:
        """What the feed lists, newest first, with the repeats of REPEATS inserted."""
        if self.variant == "broken":
            return []
        posts = self.window()
        entries = list(posts)
        for source, target in REPEATS:
            if source < len(posts) and target <= len(entries):
                repeat = dict(posts[source])
                later = datetime.fromisoformat(repeat["published"]) + timedelta(hours=1)
                repeat["published"] = later.isoformat()
                entries.insert(target, repeat)
        return entries

    def channel_config(self, origin: str) -> dict[str, Any]:
        return {"url": f"{origin}/", "channel_name": "Demo news feed"}

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/", self.home),
            Route("/feed.xml", self.rss),
            Route("/atom.xml", self.atom),
            Route("/posts/{number:int}", self.post),
        ]

    async def home(self, request: Request) -> Response:
        if self.variant == "v2":
            link = '<link rel="alternate" type="application/atom+xml" title="Demo News" '
            link += 'href="/atom.xml">\n'
            subscribe = '<a href="/atom.xml">Subscribe (Atom)</a>'
        else:
            link = '<link rel="alternate" type="application/rss+xml" title="Demo News" '
            link += 'href="/feed.xml">\n'
            subscribe = '<a href="/feed.xml">Subscribe (RSS)</a>'
        body = f"<p>Local news, every morning.</p>\n<p>{subscribe}</p>"
        return html_page("Demo News", body, head=link)

    async def post(self, request: Request) -> Response:
        index = request.path_params["number"] - 4101
        if not 0 <= index < self.record_count or self.variant == "broken":
            return PlainTextResponse("Not Found", status_code=404)
        post = self.make_record(index)
        body = (
            f'<article data-id="{escape(post["id"])}">\n<h2>{escape(post["title"])}</h2>\n'
            f'<time datetime="{post["published"]}">{post["date"]}</time>\n'
            f"<p>Filed under {post['category']}.</p>\n</article>"
        )
        return html_page("Demo News", body)

    async def rss(self, request: Request) -> Response:
        if self.variant == "v2":
            return PlainTextResponse("Not Found", status_code=404)
        origin = str(request.base_url).rstrip("/")
        rss = ET.Element("rss", version="2.0")
        channel = ET.SubElement(rss, "channel")
        ET.SubElement(channel, "title").text = "Demo News"
        ET.SubElement(channel, "link").text = f"{origin}/"
        ET.SubElement(channel, "description").text = "Local news, every morning."
        ET.SubElement(channel, "lastBuildDate").text = format_datetime(self._updated())
        for entry in self.feed_entries():
            item = ET.SubElement(channel, "item")
            ET.SubElement(item, "title").text = entry["title"]
            ET.SubElement(item, "link").text = f"{origin}/posts/{entry['number']}"
            ET.SubElement(item, "guid", isPermaLink="false").text = entry["id"]
            published = datetime.fromisoformat(entry["published"])
            ET.SubElement(item, "pubDate").text = format_datetime(published)
            ET.SubElement(item, "category").text = entry["category"]
            ET.SubElement(item, "description").text = f"{entry['title']}."
        return _xml(rss, "application/rss+xml")

    async def atom(self, request: Request) -> Response:
        if self.variant != "v2":
            return PlainTextResponse("Not Found", status_code=404)
        origin = str(request.base_url).rstrip("/")
        feed = ET.Element("feed", xmlns=ATOM_NS)
        ET.SubElement(feed, "title").text = "Demo News"
        ET.SubElement(feed, "id").text = "tag:news.demo.test,2019:feed"
        ET.SubElement(feed, "updated").text = self._updated().isoformat()
        ET.SubElement(feed, "link", rel="self", href=f"{origin}/atom.xml")
        ET.SubElement(feed, "link", rel="alternate", href=f"{origin}/")
        for entry in self.feed_entries():
            node = ET.SubElement(feed, "entry")
            ET.SubElement(node, "id").text = entry["id"]
            ET.SubElement(node, "title").text = entry["title"]
            ET.SubElement(node, "link", href=f"{origin}/posts/{entry['number']}")
            ET.SubElement(node, "updated").text = entry["published"]
            ET.SubElement(node, "published").text = entry["published"]
            ET.SubElement(node, "category", term=entry["category"])
            author = ET.SubElement(node, "author")
            ET.SubElement(author, "name").text = "Demo News desk"
            ET.SubElement(node, "summary").text = f"{entry['title']}."
        return _xml(feed, "application/atom+xml")

    def _updated(self) -> datetime:
        return self._published(self.record_count - 1) + timedelta(hours=1)


def _xml(root: ET.Element, media_type: str) -> Response:
    body = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return Response(body, media_type=f"{media_type}; charset=utf-8")
