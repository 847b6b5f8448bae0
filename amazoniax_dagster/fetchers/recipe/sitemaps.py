"""Sitemaps: the pages a site lists in robots.txt ``Sitemap:`` lines, sitemap index files and
sitemaps (``<urlset>``), read in turn.

:func:`read_sitemap` parses one document (also used by the capture); :func:`save_sitemap` is the
``sitemap`` save of a recipe step: it reads the step's reply and the sitemaps it leads to, and
downloads every listed page whose URL matches the save's pattern.
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

from defusedxml import ElementTree as SafeET

from amazoniax_dagster.core.errors import SiteChangedError
from amazoniax_dagster.fetchers.recipe.files import extension_for, is_safe_name
from amazoniax_dagster.fetchers.recipe.http import Page, PreparedRequest

if TYPE_CHECKING:
    from amazoniax_dagster.fetchers.recipe.schema import SaveSitemap
    from amazoniax_dagster.fetchers.recipe.session import Session
    from amazoniax_dagster.fetchers.recipe.templating import Scope

_ROBOTS_LINE = re.compile(r"^\s*sitemap\s*:\s*(\S+)", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class Sitemap:
    """What one document lists: further sitemaps (robots.txt, an index) and pages (urlset)."""

    kind: str  # "robots", "index", "urlset" or "none"
    sitemaps: list[str] = field(default_factory=list)
    pages: list[str] = field(default_factory=list)


def read_sitemap(body: bytes, url: str) -> Sitemap:
    """The sitemaps and pages ``body`` (fetched from ``url``) lists; relative URLs resolved."""
    if body[:2] == b"\x1f\x8b":  # a gzipped sitemap (sitemap.xml.gz)
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError):
            return Sitemap("none")
    text = body.decode("utf-8", errors="replace").lstrip("\ufeff")
    if not text.lstrip().startswith("<"):
        found = [urljoin(url, m) for m in _ROBOTS_LINE.findall(text)]
        return Sitemap("robots" if found else "none", sitemaps=found)
    try:
        root = SafeET.fromstring(text.encode("utf-8"))
    except Exception:  # noqa: BLE001 - defusedxml refuses entities/DTDs; broken XML lists nothing
        return Sitemap("none")
    kind = {"sitemapindex": "index", "urlset": "urlset"}.get(_local(root.tag))
    if kind is None:
        return Sitemap("none")
    locs = [
        urljoin(url, (node.text or "").strip())
        for node in root.iter()
        if _local(node.tag) == "loc" and (node.text or "").strip()
    ]
    return Sitemap(kind, sitemaps=locs) if kind == "index" else Sitemap(kind, pages=locs)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def listed_pages(first: Page, session: Session, *, max_sitemaps: int) -> list[str]:
    """Every page the sitemaps reachable from ``first`` list, in order, each once."""
    pages: list[str] = []
    found = read_sitemap(first.content(), first.url)
    queue, read = list(found.sitemaps), {first.url}
    pages += found.pages
    while queue and len(read) <= max_sitemaps:
        url = queue.pop(0)
        if url in read or not url.startswith(("http://", "https://")):
            continue
        read.add(url)
        reply = session.send(PreparedRequest("GET", url))
        found = read_sitemap(reply.content(), reply.url)
        session.release(reply)
        queue += found.sitemaps
        pages += found.pages
    return list(dict.fromkeys(p for p in pages if p.startswith(("http://", "https://"))))


def page_file_name(page: Page) -> str:
    """``/stations/ST-1`` -> ``ST-1.html``: the last path segment, with the reply's extension."""
    segment = urlsplit(page.url).path.rstrip("/").rpartition("/")[2] or "index"
    ext = extension_for(page.content_type)
    name = segment if segment.lower().endswith(f".{ext}") else f"{segment}.{ext}"
    return name if is_safe_name(name) else f"page.{ext}"


def save_sitemap(save: SaveSitemap, page: Page, scope: Scope, session: Session, step: str) -> None:
    pattern = re.compile(save.pattern)
    listed = listed_pages(page, session, max_sitemaps=save.max_sitemaps)
    wanted = [url for url in listed if pattern.search(url)]
    if not wanted:
        raise SiteChangedError(
            f"step {step!r}: the sitemaps read from {page.shown_url} list {len(listed)} pages, "
            f"none matching {save.pattern!r}"
        )
    for url in wanted:
        reply = session.send(PreparedRequest("GET", url))
        session.save(reply, page_file_name(reply))


__all__ = ["Sitemap", "listed_pages", "page_file_name", "read_sitemap", "save_sitemap"]
