"""Reading the site's sitemaps: robots.txt ``Sitemap:`` lines (else ``/sitemap.xml``), sitemap
index files and sitemaps, then a few of the pages they list, so that pages reachable only
through a sitemap are in the capture (and the synthesis can follow the sitemaps)."""

from __future__ import annotations

from collections import Counter
from urllib.parse import urlsplit

from amazoniax_dagster.fetchers.recipe.sitemaps import read_sitemap
from fetcher_codegen.capture.browsing import Browsing

MAX_SITEMAPS = 10  # documents read during the capture
SAMPLE_PAGES = 3  # listed pages fetched: the first, one in the middle, the last


def page_folder(url: str) -> str:
    """``https://x/stations/ST-1`` -> ``/stations/``: the kind of page a sitemap lists."""
    return urlsplit(url).path.rpartition("/")[0] + "/"


class SitemapExplorer(Browsing):
    def read_sitemaps(self) -> None:
        parts = urlsplit(self.page.url or self.config.url)
        origin = f"{parts.scheme}://{parts.netloc}"
        robots = self.fetch(f"{origin}/robots.txt")
        queue: list[str] = []
        if 200 <= robots.status < 300 and robots.text:
            queue = read_sitemap(robots.text.encode(), robots.url).sitemaps
        queue = queue or [f"{origin}/sitemap.xml"]
        read: set[str] = set()
        pages: list[str] = []
        while queue and len(read) < MAX_SITEMAPS and self.time_left() > 0:
            url = queue.pop(0)
            if url in read or not self._allowed(url):
                continue
            read.add(url)
            reply = self.fetch(url)
            if not 200 <= reply.status < 300 or not reply.text:
                continue
            found = read_sitemap(reply.text.encode(), reply.url)
            queue += found.sitemaps
            pages += found.pages
        same_site = [p for p in dict.fromkeys(pages) if urlsplit(p)[:2] == parts[:2]]
        if not same_site:
            return
        folder = Counter(page_folder(p) for p in same_site).most_common(1)[0][0]
        kind = [p for p in same_site if page_folder(p) == folder]
        seen = {s.url for s in self.seen}
        picks = [kind[0], kind[len(kind) // 2], kind[-1]]
        sample = [p for p in dict.fromkeys(picks) if p not in seen][:SAMPLE_PAGES]
        for url in sample:
            if self.time_left() <= 0:
                break
            self.fetch(url, headers={"accept": "text/html,application/xhtml+xml"})
        self.step(
            "read sitemaps",
            f"{len(same_site)} pages listed in {len(read)} sitemaps; fetched {len(sample)}",
        )
