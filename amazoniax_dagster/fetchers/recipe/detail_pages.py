"""A ``links`` save with ``follow``: the links a list page selects are detail pages on the
list's own host; each is opened once and its data-file links (and/or the page) are saved.

Bounded like paging: at most ``limits.max_pages`` detail pages per list page (a warning names
the rest), every request through the session (network policy, ``max_requests``, credentials
only to trusted hosts), and each file URL downloaded once per run.
"""

from __future__ import annotations

from amazoniax_dagster.fetchers.recipe.files import extension_for
from amazoniax_dagster.fetchers.recipe.http import Page, PreparedRequest, host_of
from amazoniax_dagster.fetchers.recipe.schema import FollowPages, SaveLinks
from amazoniax_dagster.fetchers.recipe.selectors import link_urls
from amazoniax_dagster.fetchers.recipe.session import Session


def save_detail_pages(save: SaveLinks, follow: FollowPages, page: Page, session: Session,
                      step: str) -> None:  # fmt: skip
    """Open each same-host page ``save.select`` finds on ``page``; save what ``follow`` says."""
    cookies = session.client.cookies
    host = host_of(page.url)
    urls = [url for url in link_urls(save.select, page, cookies, step=step) if host_of(url) == host]
    if page.records is None:
        page.records = urls  # a list page's records are its items: a page of none ends paging
    opened = session.report.metadata.setdefault("detail_pages", {})
    limit = session.ctx.limits.max_pages
    fresh = [url for url in urls if url not in opened]
    if len(fresh) > limit:
        session.warn(
            f"step {step!r}: {len(fresh)} detail pages on {page.shown_url}, the max_pages "
            f"guard opened {limit}; the rest were not fetched"
        )
    for url in fresh[:limit]:
        detail = session.send(PreparedRequest("GET", url))
        try:
            opened[url] = _take(follow, detail, session, step, len(opened) + 1)
        finally:
            session.release(detail)


def _take(follow: FollowPages, detail: Page, session: Session, step: str, number: int) -> int:
    """Save ``detail``'s files (each URL once per run) and the page if asked; files saved."""
    saved = 0
    if follow.select is not None:
        cookies = session.client.cookies
        for url in link_urls(follow.select, detail, cookies, step=f"{step} detail page"):
            if url in session.downloaded:
                continue
            session.downloaded.add(url)
            session.download(url, label=step)
            saved += 1
    if follow.save_page:
        session.save(detail, f"{step}_detail_{number}.{extension_for(detail.content_type)}")
        saved += 1
    return saved


__all__ = ["save_detail_pages"]
