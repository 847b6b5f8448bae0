"""What the explorer tries next on an API (JSON or XML), decided from what it has seen (pure
logic).

A browser clicks "Next" on a web page; an API has no button, so the explorer asks for the next
page the way a person reading the response (and the API's documentation) would:

* a next URL or cursor the response gives (``next``, ``next_cursor``, ``links.next`` ...);
* a page number one higher (the parameter the URL already has, one the documentation lists,
  or the name of a ``page`` field in the body);
* an offset one page further (``offset``/``limit``-like parameters from the URL or the
  documentation, with the page's record count as the step);
* when the body says there is more (``has_more`` true, ``next_page`` = 2, ``total_pages`` or
  ``total`` beyond this page) but names no parameter, the common ones: the next page number
  as ``page``, the last record's id after ``starting_after``/``after``/``since_id`` (keyset),
  the record count as the offset the body echoes (``start: 0``), else as ``offset``.

JSON bodies and XML ones (read as the JSON-shaped tree of
:mod:`amazoniax_dagster.fetchers.recipe.xmltree`) are read alike.

Every candidate is only a guess: the explorer keeps one when its response brings records the
previous page did not (the HAR keeps the rest, and pagination inference ignores them).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from amazoniax_dagster.fetchers.recipe import xmltree
from fetcher_codegen.har import is_tracker

_NEXT_KEYS = (
    "next",
    "next_url",
    "nextUrl",
    "next_page_url",
    "nextPageUrl",
    "next_link",
    "nextLink",
)
_CURSOR_KEYS = (
    "next_cursor", "nextCursor", "cursor", "next_token", "nextToken", "endCursor", "end_cursor",
    "continuation", "next_page_token", "nextPageToken", "NextToken", "NextContinuationToken",
    "NextMarker", "NextPageToken",
)  # fmt: skip
_NESTS = ("meta", "pagination", "paging", "page_info", "pageInfo", "links", "_links")
_NEST_DEPTH = 3
_NEXT_PAGE_NUMBER = ("next_page", "nextPage", "next_page_number", "nextPageNumber")
_CURRENT_PAGE = ("page", "current_page", "currentPage", "page_number", "pageNumber")
_MORE_FLAGS = (
    "has_more", "hasMore", "has_next", "hasNext", "has_next_page", "hasNextPage", "more",
    "more_results", "moreResults", "has_more_results", "hasMoreResults", "IsTruncated",
    "isTruncated", "is_truncated",
)  # fmt: skip
_TOTAL_PAGES = (
    "total_pages", "totalPages", "pages", "page_count", "pageCount", "last_page", "lastPage",
    "num_pages",
)  # fmt: skip
_TOTALS = ("total", "total_count", "totalCount", "total_results", "totalResults", "totalItems")
_KEYSET_PARAMS = ("starting_after", "after", "since_id", "after_id")
_ID_FIELDS = ("id", "uuid", "_id", "key")
_PAGE_PARAMS = ("page", "p", "page_number", "pageNumber", "pageNo", "pg")
_SIZE_PARAMS = ("per_page", "page_size", "pageSize", "limit", "size")
_OFFSET_PARAMS = ("offset", "start", "skip")
_ECHOED_OFFSETS = (*_OFFSET_PARAMS, "startIndex", "start_index", "from")
_LIMIT_PARAMS = ("limit", "count", "size", "max", "per_page", "page_size")
_CURSOR_PARAMS = (
    "cursor",
    "after",
    "page_token",
    "pageToken",
    "next_token",
    "continuation",
    "continuation-token",
    "starting_after",
    "marker",
    "NextToken",
)
_DOC_WORDS = re.compile(r"doc|openapi|swagger|schema|help|terms|privacy|about", re.IGNORECASE)
_DATA_WORDS = re.compile(
    r"report|download|export|data|file|csv|feed|rss|atom|catalog|product|item|listing|result|"
    r"record|archive|order|api",
    re.IGNORECASE,
)
DATA_EXTENSIONS = (
    ".csv", ".tsv", ".json", ".jsonl", ".ndjson", ".xml", ".xlsx", ".xls", ".zip", ".gz",
    ".pdf", ".txt", ".parquet",
)  # fmt: skip


@dataclass(frozen=True)
class Probe:
    url: str
    why: str
    method: str = "GET"
    json: Any = None  # the JSON body to send (a POST probe), else None


def with_params(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query += list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def _fields(body: Any, names: Sequence[str], depth: int = 0) -> Iterator[tuple[str, Any]]:
    """(name, value) of the fields called ``names``: at the top, then in nested paging objects
    (``meta.pagination.total_pages``); a body that is one object under one name (an XML
    document's root element, a JSON envelope) is read inside it."""
    if not isinstance(body, dict) or depth > _NEST_DEPTH:
        return
    if len(body) == 1 and isinstance(wrapped := next(iter(body.values())), dict):
        yield from _fields(wrapped, names, depth)
        return
    for name in names:
        if name in body:
            yield name, body[name]
    for nest in _NESTS:
        yield from _fields(body.get(nest), names, depth + 1)


def _number(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    return int(value) if isinstance(value, str) and value.isdigit() else None


def says_more(body: Any, record_count: int) -> bool:
    """Whether the body says the site has records beyond this page."""
    if any(value is True for _, value in _fields(body, _MORE_FLAGS)):
        return True
    if any((_number(v) or 0) > 1 for _, v in _fields(body, _NEXT_PAGE_NUMBER)):
        return True
    current = next((n for _, v in _fields(body, _CURRENT_PAGE) if (n := _number(v))), 1)
    if any((_number(v) or 0) > current for _, v in _fields(body, _TOTAL_PAGES)):
        return True
    return record_count > 0 and any(
        (_number(v) or 0) > record_count for _, v in _fields(body, _TOTALS)
    )


def next_page_probes(
    url: str,
    body: Any,
    record_count: int,
    documented: Sequence[str] = (),
    last_record: Mapping[str, str] | None = None,
) -> list[Probe]:
    """Requests that may return the page after ``url`` (whose JSON ``body`` is given, and
    whose records end with ``last_record``), the likeliest first."""
    probes: list[Probe] = []
    query = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
    if (linked := xmltree.links(body).get("next")) is not None:
        probes.append(Probe(urljoin(url, linked), "an XML link rel=next"))
    for name, value in _fields(body, _NEXT_KEYS):
        if isinstance(value, str) and value:
            probes.append(Probe(urljoin(url, value), f"next URL in field {name}"))
        elif isinstance(value, dict) and isinstance(value.get("href"), str):
            probes.append(Probe(urljoin(url, value["href"]), f"next link in field {name}"))
    for name, value in _fields(body, _CURSOR_KEYS):
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            params = [p for p in documented if p in _CURSOR_PARAMS]
            params += [p for p in query if p in _CURSOR_PARAMS]
            params += [*_cursor_param_names(name), "cursor", "after"]
            for param in dict.fromkeys(params):
                probes.append(Probe(with_params(url, **{param: str(value)}), f"cursor as {param}"))
    for name, value in _fields(body, _NEXT_PAGE_NUMBER):
        number = _number(value)
        if number is not None and number > 0:
            for param in _page_names(query, documented):
                probes.append(Probe(with_params(url, **{param: str(number)}), f"{name} as {param}"))
    if record_count:
        more = says_more(body, record_count)
        probes += _page_probes(url, body, query, documented, guess=more)
        if more:
            probes += _keyset_probes(url, query, documented, last_record)
        probes += _offset_probes(url, body, query, documented, record_count, guess=more)
    return list({probe.url: probe for probe in probes if probe.url != url}.values())


def _cursor_param_names(field: str) -> list[str]:
    """Parameters a cursor field is sent back as, by its name without ``next``/``end``:
    ``nextPageToken`` -> ``pageToken``, ``next_token`` -> ``token``, ``NextContinuationToken``
    -> ``continuationToken``, ``continuation-token``; ``NextToken`` as it is (AWS)."""
    base = re.sub(r"^(next_?|end_?)", "", field, flags=re.IGNORECASE) or "cursor"
    camel = base[:1].lower() + base[1:]
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", camel).lower().split("_")
    names = [camel, "-".join(words), "_".join(words)]
    return list(dict.fromkeys([*names, field] if field[:1].isupper() else names))


def _page_names(query: Mapping[str, str], documented: Sequence[str]) -> list[str]:
    """The page-number parameter: the one the URL has, else documented ones, else ``page``."""
    names = [p for p in query if p in _PAGE_PARAMS] + [p for p in documented if p in _PAGE_PARAMS]
    return list(dict.fromkeys(names))[:2] or ["page"]


def _keyset_probes(
    url: str,
    query: Mapping[str, str],
    documented: Sequence[str],
    last_record: Mapping[str, str] | None,
) -> list[Probe]:
    if not last_record:
        return []
    value = next((last_record[f] for f in _ID_FIELDS if last_record.get(f)), None)
    if value is None:
        return []
    names = [p for p in query if p in _KEYSET_PARAMS] + [
        p for p in documented if p in _KEYSET_PARAMS
    ]
    return [
        Probe(with_params(url, **{name: value}), f"the last id after {name}")
        for name in dict.fromkeys(names or _KEYSET_PARAMS)
    ]


def _page_probes(
    url: str, body: Any, query: Mapping[str, str], documented: Sequence[str], *, guess: bool
) -> list[Probe]:
    for name in _PAGE_PARAMS:
        if name in query and query[name].isdigit():
            return [Probe(with_params(url, **{name: str(int(query[name]) + 1)}), f"{name} + 1")]
    current = next(
        (v for _, v in _fields(body, ("page", "current_page", "currentPage", "page_number"))
         if isinstance(v, int) and not isinstance(v, bool)),
        None,
    )  # fmt: skip
    names = [p for p in documented if p in _PAGE_PARAMS]
    if (current is not None or guess) and not names:
        names = ["page"]
    return [
        Probe(with_params(url, **{name: str((current or 1) + 1)}), f"documented {name}")
        for name in names[:1]
    ]


def _offset_probes(
    url: str,
    body: Any,
    query: Mapping[str, str],
    documented: Sequence[str],
    count: int,
    *,
    guess: bool,
) -> list[Probe]:
    for name in _OFFSET_PARAMS:
        if name in query and query[name].isdigit():
            size = next((query[p] for p in _LIMIT_PARAMS if query.get(p, "").isdigit()), None)
            step = int(size) if size else count
            return [
                Probe(with_params(url, **{name: str(int(query[name]) + step)}), f"{name} + {step}")
            ]
    # the name the reply gives its own offset (``<start>0</start>``, ``"startIndex": 0``)
    echoed = [n for n, v in _fields(body, _ECHOED_OFFSETS) if _number(v) == 0] if guess else []
    offsets = (
        [p for p in documented if p in _OFFSET_PARAMS] or echoed or (["offset"] if guess else [])
    )
    if not offsets:
        return []
    limits = [p for p in documented if p in _LIMIT_PARAMS]
    params = {offsets[0]: str(count)}
    if limits:
        params[limits[0]] = str(count)
    return [Probe(with_params(url, **params), f"documented {offsets[0]}")]


def documented_params(doc: Any, path: str) -> list[str]:
    """Query parameter names an OpenAPI/Swagger document lists for GET ``path``."""
    if not isinstance(doc, dict) or not isinstance(doc.get("paths"), dict):
        return []
    names: list[str] = []
    for template, item in doc["paths"].items():
        if not isinstance(item, dict) or not _path_matches(str(template), path):
            continue
        for operation in (item, item.get("get")):
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []) or []:
                if isinstance(parameter, dict) and parameter.get("in", "query") == "query":
                    names.append(str(parameter.get("name", "")))
    return [name for name in dict.fromkeys(names) if name]


def _path_matches(template: str, path: str) -> bool:
    pattern = re.sub(r"\\\{[^/]*?\\\}", "[^/]+", re.escape(template.rstrip("/")))
    return re.fullmatch(pattern + "/?", path) is not None or path.rstrip("/").endswith(
        template.rstrip("/")
    )


def json_links(body: Any, base: str, limit: int = 10) -> list[Probe]:
    """Same-site URLs in a JSON document that has no records (an API index), data first."""
    found: list[tuple[int, Probe]] = []
    origin = urlsplit(base)[:2]

    def walk(value: Any, key: str, depth: int) -> None:
        if depth > 3 or len(found) > 4 * limit:
            return
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, str(k), depth + 1)
        elif isinstance(value, list):
            for v in value[:20]:
                walk(v, key, depth + 1)
        elif isinstance(value, str) and (value.startswith("/") or "://" in value):
            url = urljoin(base, value)
            parts = urlsplit(url)
            if parts[:2] != origin or "{" in url or is_tracker(parts.hostname or ""):
                return
            if _DOC_WORDS.search(key) or _DOC_WORDS.search(parts.path):
                return
            found.append(
                (0 if _DATA_WORDS.search(key + parts.path) else 1, Probe(url, f"URL in {key}"))
            )

    walk(body, "", 0)
    found.sort(key=lambda item: item[0])
    unique = {probe.url: probe for _, probe in found if probe.url != base}
    return list(unique.values())[:limit]


@dataclass(frozen=True)
class AuthAttempt:
    """One way to present the channel's auth keys; values are secrets (never log them)."""

    why: str
    token_request: Mapping[str, str] | None = None  # url + form fields of a token endpoint
    headers: Mapping[str, str] | None = None
    params: Mapping[str, str] | None = None


def auth_attempts(
    keys: Mapping[str, str], *, challenge: str | None = None, refusal: str = ""
) -> list[AuthAttempt]:
    """Ways to use ``auth_keys`` on an API that answered 401/403, most specific first: what
    the refusal asked for (its ``WWW-Authenticate`` scheme, a header its message names), then
    the common ways."""
    lowered = {k.lower(): (k, v) for k, v in keys.items()}
    attempts: list[AuthAttempt] = []
    token_url = next(
        (v for k, (_, v) in lowered.items() if "token_url" in k or k == "token_endpoint"), None
    )
    client_id = lowered.get("client_id")
    client_secret = lowered.get("client_secret")
    if token_url and client_id and client_secret:
        attempts.append(
            AuthAttempt(
                "client credentials at the token URL",
                token_request={
                    "url": token_url,
                    "grant_type": "client_credentials",
                    "client_id": client_id[1],
                    "client_secret": client_secret[1],
                },
            )
        )
    credentials = [
        (key, name, value)
        for key, (name, value) in lowered.items()
        if value and "url" not in key and key not in ("client_id", "client_secret")
    ]
    scheme = _challenge_scheme(challenge)
    named = _named_headers(refusal)
    asked: list[AuthAttempt] = []
    for _, name, value in credentials:
        if scheme:
            asked.append(
                AuthAttempt(
                    f"{name} with the {scheme} scheme the server asked for",
                    headers={"Authorization": f"{scheme} {value}"},
                )
            )
        for header in named:
            asked.append(
                AuthAttempt(
                    f"{name} in the {header} header the server named", headers={header: value}
                )
            )
    common: list[AuthAttempt] = []
    for key, name, value in credentials:
        bearer = AuthAttempt(
            f"{name} as a Bearer token", headers={"Authorization": f"Bearer {value}"}
        )
        if "token" in key or "bearer" in key or "access" in key:
            common.append(bearer)
        if "key" in key:
            common.append(AuthAttempt(f"{name} as X-API-Key", headers={"X-API-Key": value}))
            common.append(AuthAttempt(f"{name} as a query parameter", params={name: value}))
            common.append(bearer)
    return attempts + asked[:4] + common[:5]


_NOT_A_SCHEME = frozenset({"basic", "digest", "negotiate", "ntlm"})
_HEADER_NAME = re.compile(r"\b[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)+\b")


def _challenge_scheme(challenge: str | None) -> str | None:
    """The scheme of a ``WWW-Authenticate`` challenge a key can answer (``Token``, ``Bearer``)."""
    scheme = (challenge or "").strip().split(" ", 1)[0].split(",", 1)[0]
    if not re.fullmatch(r"[A-Za-z][\w.-]*", scheme) or scheme.lower() in _NOT_A_SCHEME:
        return None
    return scheme


def _named_headers(text: str) -> list[str]:
    """Header names a refusal's message mentions (``missing X-Api-Token header``)."""
    found = [
        name
        for name in _HEADER_NAME.findall(text[:2000])
        if re.search(r"key|token|auth", name, re.IGNORECASE)
        and name.lower() not in ("www-authenticate", "content-type")
    ]
    return list(dict.fromkeys(found))[:2]


def data_link_score(href: str, text: str) -> int:
    """How much a link on a page looks like a data file (2), a data page (1) or neither (0)."""
    path = urlsplit(href).path.lower()
    if path.endswith(DATA_EXTENSIONS) or re.search(r"\b(download|export|csv|xlsx?)\b", text, re.I):
        return 2
    if _DATA_WORDS.search(text) or _DATA_WORDS.search(path):
        return 1
    return 0


_NAMED_URL = re.compile(
    r"""(?:https?://[^\s"'<>`]+|(?<![\w.])/[A-Za-z0-9_\-./~%]+(?:\?[^\s"'<>`]*)?)"""
)


def moved_to(text: str | None, base: str) -> list[str]:
    """Same-site URLs an error reply names ("API v1 is gone; use /api/v2/items?skip=&take="):
    where the resource went. Parameters named without a value are dropped."""
    found = []
    origin = urlsplit(base)[:2]
    for match in _NAMED_URL.findall(text or ""):
        parts = urlsplit(urljoin(base, match.rstrip(".,;:)")))
        if parts[:2] != origin or parts.path == urlsplit(base).path:
            continue
        query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if v])
        found.append(urlunsplit((*parts[:3], query, "")))
    return list(dict.fromkeys(found))


__all__ = [
    "moved_to",
    "DATA_EXTENSIONS",
    "AuthAttempt",
    "Probe",
    "auth_attempts",
    "data_link_score",
    "documented_params",
    "json_links",
    "next_page_probes",
    "says_more",
    "with_params",
]
