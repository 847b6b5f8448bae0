"""The recipe engine: run a validated recipe for one channel and report the files it saved.

An ``http`` recipe runs its steps in order. For each page of a step: render the request from
the templates, send it, check the records list, take the extracts (from the first page) for
later steps, save what the step says, and ask the paginator whether to go on::

    steps ──► request ──► send ──► records? ──► extract ──► save ──► paginator.advance ─┐
                ▲                                                                      │
                └──────────────────────────── next page ◄──────────────────────────────┘
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import httpx

from amazoniax_dagster.core.errors import ConfigError, SiteChangedError
from amazoniax_dagster.fetchers.base import FetchContext, FetchReport
from amazoniax_dagster.fetchers.recipe import jsonpath, xmltree
from amazoniax_dagster.fetchers.recipe.detail_pages import save_detail_pages
from amazoniax_dagster.fetchers.recipe.feeds import run_feed
from amazoniax_dagster.fetchers.recipe.files import extension_for
from amazoniax_dagster.fetchers.recipe.hints import body_params, more_hints
from amazoniax_dagster.fetchers.recipe.http import HostBreakers, Page, PreparedRequest
from amazoniax_dagster.fetchers.recipe.incremental import Cursor, position
from amazoniax_dagster.fetchers.recipe.paginators import make_paginator
from amazoniax_dagster.fetchers.recipe.schema import (
    HttpRecipe,
    OffsetPaginate,
    PaginateConfig,
    Recipe,
    SaveBody,
    SaveLinks,
    Step,
)
from amazoniax_dagster.fetchers.recipe.selectors import extract, link_urls
from amazoniax_dagster.fetchers.recipe.session import ClientSettings, Session
from amazoniax_dagster.fetchers.recipe.sitemaps import save_sitemap
from amazoniax_dagster.fetchers.recipe.templating import SAVE_NAME_ROOTS, Scope, render

DEFAULT_BODY_NAME = "${step}_${page}.${ext}"


def run_recipe(
    recipe: Recipe,
    ctx: FetchContext,
    *,
    max_retries: int | None = None,
    retry_delay_seconds: float | None = None,
    breakers: HostBreakers | None = None,
) -> FetchReport:
    """Run ``recipe`` for the channel in ``ctx``; files land in ``ctx.out_dir``.

    Retry settings default to the context's (the channel's ``max_simple_retries`` and
    ``retry_delay_seconds``); share ``breakers`` to keep circuit state across runs.
    """
    if recipe.kind not in RUNNERS:
        raise ConfigError(f"unknown recipe kind {recipe.kind!r}; known: {', '.join(RUNNERS)}")
    settings = ClientSettings(
        ctx.max_retries if max_retries is None else max_retries,
        ctx.retry_delay_seconds if retry_delay_seconds is None else retry_delay_seconds,
        breakers,
    )
    return RUNNERS[recipe.kind](recipe, ctx, settings)


def run_http(recipe: HttpRecipe, ctx: FetchContext, settings: ClientSettings) -> FetchReport:
    with Session.open(recipe, ctx, settings) as session:
        for step in recipe.steps:
            run_step(step, session)
        return session.finish()


def run_step(step: Step, session: Session) -> None:
    cursor = session.cursor if step.incremental else None
    paginator = make_paginator(resumed(step, cursor), max_pages=session.ctx.limits.max_pages)
    received = 0
    hints: list[str] = []
    while True:
        start = {"incremental_start": cursor.start_value} if cursor else {}
        variables = paginator.variables()
        scope = session.scope(**variables, **start)
        request = paginator.prepare(session.render_request(step.request, scope))
        if cursor:
            request = request.with_params(**cursor.params())
        page = session.send(request)
        page.records = records_of(step, page)
        past_start = False
        if page.records is not None:
            session.report.records = (session.report.records or 0) + len(page.records)
            received += len(page.records)
            if cursor:
                past_start = not observe(cursor, step, page, variables)
        if paginator.pages == 0:  # values for later steps come from a step's first page
            session.extracts.update(
                extract(step.extract, page, session.client.cookies, step=step.name)
            )
        for save in step.save:
            SAVERS[save.type](save, page, scope, session, step.name)
        more = paginator.advance(page)
        if more and past_start and cursor and cursor.spec.row_order == "desc":
            more, paginator.stop_reason = False, "reached records before the checkpoint"
        if not more:
            hints = _unfollowed(step, page, received, request)
        session.release(page)
        if not more:
            break
    session.step_done(step.name, paginator, hints)


def resumed(step: Step, cursor: Cursor | None) -> PaginateConfig | None:
    """The step's paging, starting at the checkpoint's page for a page cursor."""
    paginate = step.paginate
    if cursor is None or not cursor.by_page or cursor.start_value is None or paginate is None:
        return paginate
    return paginate.model_copy(update={"start": position(cursor.start_value)})


def observe(cursor: Cursor, step: Step, page: Page, variables: dict[str, Any]) -> bool:
    """Show the cursor a page of records; False when one is not after the start."""
    where = f"step {step.name!r}, {page.shown_url}"
    if cursor.by_page:
        at = "offset" if isinstance(step.paginate, OffsetPaginate) else "page"
        return cursor.observe([variables[at]] if page.records else [], where)
    return cursor.observe([cursor.value_of(record, where) for record in page.records or ()], where)


def _unfollowed(step: Step, page: Page, received: int, request: PreparedRequest) -> list[str]:
    """Signs of more data on a step's last page (a full page counts only without paginate)."""
    params = {**body_params(request.json), **dict(httpx.URL(request.url).params), **request.params}
    paginated = step.paginate is not None
    return more_hints(page, received, {} if paginated else params, paginated=paginated)


def records_of(step: Step, page: Page) -> list[Any] | None:
    """The page's records list; SiteChangedError when the recipe's path leads nowhere."""
    if step.records is None:
        return None
    tree = page.tree()
    if page.is_xml():  # one element, or an empty container, is still a list
        found = xmltree.records_at(tree, step.records)
    else:
        found = jsonpath.find(tree, step.records)
    if not isinstance(found, list):
        raise SiteChangedError(
            f"step {step.name!r}: no list at records path {step.records!r} "
            f"in the reply of {page.shown_url}"
        )
    return found


def save_body(save: SaveBody, page: Page, scope: Scope, session: Session, step: str) -> None:
    names = scope.with_variables(step=step, ext=extension_for(page.content_type))
    session.save(page, render(save.name or DEFAULT_BODY_NAME, names, SAVE_NAME_ROOTS))


def save_links(save: SaveLinks, page: Page, scope: Scope, session: Session, step: str) -> None:
    if save.follow is not None:
        return save_detail_pages(save, save.follow, page, session, step)
    for url in link_urls(save.select, page, session.client.cookies, step=step):
        session.download(url, label=step)


SAVERS: Mapping[str, Callable[[Any, Page, Scope, Session, str], None]] = {
    "body": save_body,
    "links": save_links,
    "sitemap": save_sitemap,
}
# One runner per recipe kind; a new kind (e.g. "browser") adds its runner here.
RUNNERS: Mapping[str, Callable[[Any, FetchContext, ClientSettings], FetchReport]] = {
    "http": run_http,
    "feed": run_feed,
}

__all__ = ["RUNNERS", "SAVERS", "records_of", "run_http", "run_recipe", "run_step"]
