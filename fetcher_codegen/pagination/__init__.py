"""Infer how a request kind pages through its records, from two or more of its requests.

Evidence, strongest first (each needs every transition between consecutive pages to agree):

* **next URL** — request *i* is a URL the response to request *i-1* gave: at a JSON path
  (``next_url``) or in a ``Link: <...>; rel="next"`` header (``link_header``);
* **cursor** — a parameter of request *i* whose value occurs in response *i-1* (a JSON path or
  a header) and is not a small number (``cursor``);
* **GraphQL relay** — a JSON request with ``query`` and ``variables`` whose response holds a
  ``pageInfo``-like object (``endCursor`` and ``hasNextPage``): the ``graphql`` paginator, from
  the response alone (one page is enough), the cursor variable named by the query;
* **keyset** — a parameter of request *i* equal to a field of the *last record* of response
  *i-1* (``after=<last id>``, numbers too): a ``cursor`` read at ``<records>[-1].<field>``;
* **counter** — an integer parameter growing by 1 (``page_number``) or by a constant step,
  the page size (``offset``); a parameter missing from the first request is its start value.

Requests that brought back the records of an earlier one (a probe the site ignored) or failed
are left out first. Stop rules come from the first page's body: ``total_pages``, ``total`` /
``count`` and ``has_more``-like fields, when present. With a single page, only a next URL or
Link header the server gave counts; other hints become a warning.
"""

from fetcher_codegen.pagination.base import Page, Pagination, distinct_pages, stop_rules
from fetcher_codegen.pagination.detect import infer

__all__ = ["Page", "Pagination", "distinct_pages", "infer", "stop_rules"]
