"""Which rule explains a request kind's pages: GraphQL first, then one-page rules or, with two
or more pages, the between-page rules strongest first."""

from __future__ import annotations

from collections.abc import Sequence

from fetcher_codegen.pagination.base import Page, Pagination, distinct_pages, stop_rules
from fetcher_codegen.pagination.counter import counter
from fetcher_codegen.pagination.cursor import cursor, keyset
from fetcher_codegen.pagination.graphql import graphql
from fetcher_codegen.pagination.links import link_header, next_url
from fetcher_codegen.pagination.one_page import single_page
from fetcher_codegen.provenance import request_slots


def infer(pages: Sequence[Page]) -> tuple[Pagination | None, list[str]]:
    """The pagination of one request kind and warnings about what could not be inferred."""
    pages = distinct_pages(pages)
    if not pages:
        return None, []
    first = pages[0].records.count if pages[0].records else 0
    where = pages[0].records.path if pages[0].records else None
    stops = stop_rules(pages[0].entry, first_count=first, pages_seen=len(pages), records_path=where)
    relay = graphql(pages)
    if relay is not None:
        return relay, []
    if len(pages) == 1:
        return single_page(pages[0], stops)
    entries = [page.entry for page in pages]
    slots = request_slots(entries)
    for finder in (link_header, next_url, keyset, cursor, counter):
        found = finder(pages, slots)
        if found is not None:
            config = {**found.config, **{k: v for k, v in stops.items() if k not in found.config}}
            return Pagination(config, found.slots, found.templates, found.detail), []
    varying = [str(slot) for slot in slots if not slot.constant]
    if varying:
        return None, [f"pages differ in {', '.join(varying)}, but no pagination rule explains it"]
    return None, []
