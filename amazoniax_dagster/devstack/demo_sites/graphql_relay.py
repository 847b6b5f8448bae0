"""``graphql_relay``: a GraphQL API paged by Relay cursors, called from a small JS page.

Channel url: ``/``: a page whose script POSTs to ``/graphql`` and renders the shipments.
37 shipments, ``first`` 1..50 (the page asks for 10), so four pages.

* v1: ``POST /graphql`` with ``{"query": "query Shipments($first: Int, $after: String)
  { shipments(first: $first, after: $after) { edges { cursor node { id reference status date } }
  pageInfo { endCursor hasNextPage } } }", "variables": {"first": 10, "after": null}}`` ->
  ``{"data": {"shipments": {"edges": [...], "pageInfo": {...}}}}``. Arguments may also be
  written inline (``shipments(first: 10, after: "…")``). A query naming another root field is
  answered with a GraphQL error (status 200, ``{"errors": [...]}``), as GraphQL servers do.
* v2: the root field is renamed ``deliveries`` and takes ``nodes`` instead of ``edges``
  (``deliveries(first:, after:) { nodes { … } pageInfo { … } }``).
* broken: an empty connection (``edges: []``, ``hasNextPage: false``).
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from amazoniax_dagster.devstack.demo_sites.base import (
    CITIES,
    DemoSite,
    Record,
    SourceType,
    decode_cursor,
    encode_cursor,
)
from amazoniax_dagster.devstack.demo_sites.markup import html_page

STATUSES = ("created", "in_transit", "delivered", "returned")
V1_QUERY = (
    "query Shipments($first: Int, $after: String) { shipments(first: $first, after: $after) "
    "{ edges { cursor node { id reference status destination date } } "
    "pageInfo { endCursor hasNextPage } } }"
)
V2_QUERY = (
    "query Deliveries($first: Int, $after: String) { deliveries(first: $first, after: $after) "
    "{ nodes { id reference status destination date } pageInfo { endCursor hasNextPage } } }"
)
SCRIPT = """
const QUERY = %(query)s;
const FIELD = %(field)s;
const table = document.getElementById("shipments");
let after = null;
async function loadPage() {
  const response = await fetch("/graphql", {
    method: "POST",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify({query: QUERY, variables: {first: 10, after: after}}),
  });
  const connection = (await response.json()).data[FIELD];
  const nodes = connection.edges ? connection.edges.map((e) => e.node) : connection.nodes;
  for (const node of nodes) {
    const row = table.insertRow();
    row.dataset.id = node.id;
    for (const key of ["id", "reference", "status", "destination", "date"]) {
      row.insertCell().textContent = node[key];
    }
  }
  after = connection.pageInfo.endCursor;
  document.getElementById("more").hidden = !connection.pageInfo.hasNextPage;
}
document.getElementById("more").addEventListener("click", loadPage);
loadPage();
"""
_ARGUMENT = r"{name}\s*:\s*(?:\$(\w+)|\"([^\"]*)\"|(\d+)|null)"


class GraphqlRelaySite(DemoSite):
    """GraphQL (POST /graphql) paged by Relay cursors: pageInfo { endCursor hasNextPage }."""

    name: ClassVar[str] = "graphql_relay"
    source_type: ClassVar[SourceType] = "html"
    base_count: ClassVar[int] = 37
    first_max: ClassVar[int] = 50

    def make_record(self, index: int) -> Record:
        rng = self.rng(index)
        return {
            "id": f"U2hpcG1lbnQ6{70300 + index * 31}",
            "reference": f"SHP-{rng.getrandbits(24):06X}",
            "status": rng.choice(STATUSES),
            "destination": rng.choice(CITIES),
            "date": self.record_date(index).isoformat(),
        }

    def channel_config(self, origin: str) -> dict[str, Any]:
        return {"url": f"{origin}/", "channel_name": "Demo shipments (GraphQL relay cursor)"}

    @property
    def root_field(self) -> str:
        return "deliveries" if self.variant == "v2" else "shipments"

    def routes(self) -> list[BaseRoute]:
        return [Route("/", self.home), Route("/graphql", self.graphql, methods=["POST"])]

    async def home(self, request: Request) -> Response:
        query = V2_QUERY if self.variant == "v2" else V1_QUERY
        script = SCRIPT % {"query": json.dumps(query), "field": json.dumps(self.root_field)}
        body = (
            '<table id="shipments"><tr><th>Id</th><th>Reference</th><th>Status</th>'
            "<th>Destination</th><th>Date</th></tr></table>\n"
            '<button id="more" hidden>Load more</button>\n'
            f"<script>{script}</script>"
        )
        return html_page("Shipments", body)

    async def graphql(self, request: Request) -> Response:
        try:
            payload = json.loads(await request.body())
            query = str(payload["query"])
            variables = payload.get("variables") or {}
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"errors": [{"message": "Must provide a query string."}]}, 400)
        field = re.search(r"\{\s*(\w+)\s*(?:\(([^)]*)\))?\s*\{", query)
        if field is None or field[1] != self.root_field:
            name = field[1] if field else "?"
            message = f'Cannot query field "{name}" on type "Query".'
            return JSONResponse({"errors": [{"message": message}]})
        arguments = field[2] or ""
        try:
            first = int(_argument(arguments, "first", variables) or 10)
            after_text = _argument(arguments, "after", variables)
        except ValueError:
            return JSONResponse({"errors": [{"message": "Int cannot represent a non-integer"}]})
        if not 1 <= first <= self.first_max:
            message = f"first must be between 1 and {self.first_max}"
            return JSONResponse({"errors": [{"message": message}]})
        start = 0
        if after_text:
            decoded = decode_cursor("shipment", after_text)
            if decoded is None:
                return JSONResponse({"errors": [{"message": "Invalid cursor"}]})
            start = decoded + 1
        records = self.ground_truth()
        chunk = records[start : start + first]
        cursors = [encode_cursor("shipment", start + i) for i in range(len(chunk))]
        page_info = {
            "endCursor": cursors[-1] if cursors else None,
            "hasNextPage": start + first < len(records),
        }
        if self.variant == "v2":
            connection: dict[str, Any] = {"nodes": chunk, "pageInfo": page_info}
        else:
            edges = [{"cursor": c, "node": n} for c, n in zip(cursors, chunk, strict=True)]
            connection = {"edges": edges, "pageInfo": page_info}
        return JSONResponse({"data": {self.root_field: connection}})


def _argument(arguments: str, name: str, variables: dict[str, Any]) -> str | None:
    """An argument's value, inline or through a ``$variable``; None when absent or null."""
    found = re.search(_ARGUMENT.format(name=name), arguments)
    if found is None:
        return None
    if found[1]:
        value = variables.get(found[1])
        return None if value is None else str(value)
    return found[2] if found[2] is not None else found[3]
