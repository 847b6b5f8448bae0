"""``kind: feed`` recipes: an RSS/Atom feed, its unique entries saved as JSON.

A paged feed (RFC 5005: ``<link rel="next">`` in Atom, ``atom:link rel="next"`` in RSS) is
followed to its last page, each page URL once, within ``ctx.limits.max_pages``.

feedparser only ever sees the body as a file object: given a string or bytes it would fetch
URLs or open local paths by itself, bypassing the network policy.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any
from urllib.parse import urljoin

import feedparser  # type: ignore[import-untyped]

from amazoniax_dagster.core.errors import SiteChangedError
from amazoniax_dagster.fetchers.base import FetchContext, FetchReport
from amazoniax_dagster.fetchers.recipe.files import extension_for
from amazoniax_dagster.fetchers.recipe.http import Page, PreparedRequest
from amazoniax_dagster.fetchers.recipe.incremental import Cursor
from amazoniax_dagster.fetchers.recipe.schema import FeedRecipe
from amazoniax_dagster.fetchers.recipe.session import ClientSettings, Session
from amazoniax_dagster.fetchers.recipe.templating import SAVE_NAME_ROOTS, render

log = logging.getLogger(__name__)

_ENTRY_FIELDS = ("id", "title", "link", "published", "updated", "author", "summary")


def run_feed(recipe: FeedRecipe, ctx: FetchContext, settings: ClientSettings) -> FetchReport:
    with Session.open(recipe, ctx, settings) as session:
        scope = session.scope()
        url = session.trust(session.absolute(render(recipe.url, scope)))
        entries: list[dict[str, Any]] = []
        pages: list[Page] = []
        seen = {url}
        skipped = 0
        while True:
            # The start parameter goes with the feed URL; next-page URLs carry their own query.
            params = session.cursor.params() if session.cursor and not pages else {}
            page = session.send(PreparedRequest("GET", url, params=params))
            raw_entries, next_url = _parse(page)
            found = [_entry(raw, page.url) for raw in raw_entries]
            pages.append(page)
            newer = after_checkpoint(found, session.cursor, page.shown_url)
            entries += newer
            skipped += len(found) - len(newer)
            if next_url is None or next_url in seen:
                break
            if len(found) > len(newer):  # newest first: later pages are older still
                break
            if len(pages) >= session.ctx.limits.max_pages:
                session.warn(
                    f"feed stopped at the max_pages guard after {len(pages)} pages; "
                    "later pages were not fetched"
                )
                break
            seen.add(next_url)
            url = next_url
        unique = unique_entries(entries)
        names = scope.with_variables(step="feed", ext="json")
        entries_file = session.spool_path()
        entries_file.write_text(json.dumps(unique, indent=2, ensure_ascii=False), "utf-8")
        session.output.add(
            render(recipe.entries_name, names, SAVE_NAME_ROOTS),
            entries_file,
            source_url=pages[0].shown_url,
        )
        for number, page in enumerate(pages, start=1):
            if recipe.save_document:
                doc = names.with_variables(ext=extension_for(page.content_type), page=number)
                session.save(page, render(recipe.document_name, doc, SAVE_NAME_ROOTS))
            session.release(page)
        for file_url in entry_files(unique, recipe.download):
            session.download(file_url, label="feed")
        session.report.pages = len(pages)
        session.report.records = len(unique)
        session.report.metadata.update(
            entries=len(unique), duplicate_entries=len(entries) - len(unique)
        )
        if session.cursor:
            session.report.metadata["entries_before_checkpoint"] = skipped
        return session.finish()


def after_checkpoint(
    entries: list[dict[str, Any]], cursor: Cursor | None, where: str
) -> list[dict[str, Any]]:
    """The entries after the cursor's start; an entry without a date is kept (it cannot be
    placed), a date that does not parse is a changed feed."""
    if cursor is None:
        return entries
    field = cursor.spec.cursor_path or "updated"
    dated = [entry for entry in entries if entry.get(field)]
    cursor.observe([entry[field] for entry in dated], f"feed {where}")
    return [e for e in entries if not e.get(field) or cursor.is_newer(e[field], where)]


def _parse(page: Page) -> tuple[list[Any], str | None]:
    """The entries of one feed page and the URL of the next page (None on the last)."""
    # content-location makes feedparser resolve relative links against the feed's own URL.
    headers = {"content-type": page.headers.get("content-type", ""), "content-location": page.url}
    with page.path.open("rb") as body:
        parsed = feedparser.parse(body, response_headers=headers)
    if not parsed.get("version") and not parsed.entries:
        raise SiteChangedError(f"{page.shown_url} is not an RSS or Atom feed any more")
    links = parsed.get("feed", {}).get("links", [])
    nexts = [link.get("href") for link in links if link.get("rel") == "next" and link.get("href")]
    next_url = urljoin(page.url, nexts[0]) if nexts else None
    if next_url is not None and not next_url.startswith(("http://", "https://")):
        next_url = None
    return list(parsed.entries), next_url


def _entry(raw: Any, feed_url: str) -> dict[str, Any]:
    # ``name in raw`` first: feedparser warns when a missing "updated" falls back to another key.
    entry = {name: raw[name] for name in _ENTRY_FIELDS if name in raw and raw[name] is not None}
    entry["enclosures"] = [
        {key: enclosure.get(key) for key in ("href", "type", "length") if enclosure.get(key)}
        for enclosure in raw.get("enclosures", [])
    ]
    for enclosure in entry["enclosures"]:  # feedparser leaves enclosure URLs as written
        if "href" in enclosure:
            enclosure["href"] = urljoin(feed_url, enclosure["href"])
    entry["tags"] = [tag.get("term") for tag in raw.get("tags", []) if tag.get("term")]
    return entry


def entry_key(entry: dict[str, Any]) -> str:
    """Identity of an entry: its id/guid, else its link, else title and date."""
    if entry.get("id"):
        return f"id:{entry['id']}"
    if entry.get("link"):
        return f"link:{entry['link']}"
    return f"title:{entry.get('title', '')}|{entry.get('published') or entry.get('updated', '')}"


def unique_entries(entries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The first entry of each identity, in feed order."""
    seen: dict[str, dict[str, Any]] = {}
    for entry in entries:
        seen.setdefault(entry_key(entry), entry)
    return list(seen.values())


def entry_files(entries: list[dict[str, Any]], download: str) -> list[str]:
    """The URLs to download: each entry's link or enclosures, each URL once."""
    urls: list[str] = []
    for entry in entries:
        if download == "link" and entry.get("link"):
            urls.append(entry["link"])
        elif download == "enclosure":
            urls.extend(
                enclosure["href"] for enclosure in entry["enclosures"] if "href" in enclosure
            )
    return list(dict.fromkeys(url for url in urls if url.startswith(("http://", "https://"))))


__all__ = ["after_checkpoint", "entry_files", "entry_key", "run_feed", "unique_entries"]
