"""Turn an analysed capture into a recipe: ``http``, ``feed`` or ``browser`` (docs/codegen.md §3-4).

* Data requests exist (JSON, CSV, XML, downloads): an ``http`` recipe. Each data kind becomes
  a step: its URL and every value explained by :mod:`.provenance` (templates for secrets,
  channel URL parts and dates; extracts from earlier responses, which become earlier steps),
  pagination from :mod:`.pagination`, records path, and a saved body named after the resource
  (``/api/v2/items`` -> ``items_${page}.json``). Downloads linked from a page become a
  ``links`` save on that page's step, keeping the server's file names. A session cookie from
  a login form is ``login_form`` auth; a token from a token endpoint is ``token_endpoint``.
* Only feeds: a ``feed`` recipe (entries as JSON, and the document itself).
* Records one page each, on pages the sitemaps list: an ``http`` recipe that reads the
  sitemaps and downloads the listed pages (:mod:`.synthesize_sitemap`).
* Records only in rendered pages: a ``browser`` recipe that logs in like the capture did,
  opens the page, pages through it the way the capture did (click next / scroll) and saves
  each page's DOM.

File names depend on resources, not on versions or capture details, so that a regenerated
fetcher names its files as its predecessor did.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from amazoniax_dagster.core.errors import NoFetcherError
from amazoniax_dagster.core.messages import WebSourceConfig
from fetcher_codegen.analysis import Analysis, DataGroup
from fetcher_codegen.capture import Capture
from fetcher_codegen.har import Entry, path_template, resource_name
from fetcher_codegen.incremental_hint import propose
from fetcher_codegen.json_body import recipe_body
from fetcher_codegen.pagination import Page, Pagination, distinct_pages, infer
from fetcher_codegen.probes import DATA_EXTENSIONS
from fetcher_codegen.provenance import (
    Slot,
    Source,
    explain,
    find_json_path,
    from_config,
    from_responses,
    request_slots,
    window_days,
)
from fetcher_codegen.records import parse_html
from fetcher_codegen.synthesize_base import (
    MAX_DEPENDENCY_DEPTH,
    Synthesis,
    _Builder,
    literal,
    recipe_name,
    url_template,
)
from fetcher_codegen.synthesize_browser import _BrowserBuilder
from fetcher_codegen.synthesize_detail import follow_details
from fetcher_codegen.synthesize_sitemap import SitemapBuilder

_BROWSER_ACCEPT = re.compile(r"^(\*/\*|text/html,application/xhtml\+xml.*)$")
_AUTH_SCHEMES = ("bearer", "token", "jwt")


def synthesize(analysis: Analysis, capture: Capture, config: WebSourceConfig) -> Synthesis:
    """The recipe for this capture; NoFetcherError when no request carries records."""
    if analysis.data:
        if all(d.format in ("rss", "atom") for d in analysis.data):
            return _FeedBuilder(analysis, capture, config).build()
        return _HttpBuilder(analysis, capture, config).build()
    sitemap = SitemapBuilder(analysis, capture, config).build()
    if sitemap is not None:
        return sitemap
    if analysis.html_data:
        return _BrowserBuilder(analysis, capture, config).build()
    raise NoFetcherError(
        f"no request in the capture of {capture.channel_url} carries records "
        f"({sum(analysis.noise.values())} requests left out: "
        f"{', '.join(f'{n} {why}' for why, n in analysis.noise.most_common(4)) or 'none'})"
    )


# --- http ------------------------------------------------------------------------------------


class _HttpBuilder(_Builder):
    def __init__(self, analysis: Analysis, capture: Capture, config: WebSourceConfig) -> None:
        super().__init__(analysis, capture, config)
        self.steps: list[dict[str, Any]] = []
        self.step_for: dict[int, dict[str, Any]] = {}  # entry index -> its step
        self.auth: dict[str, Any] | None = None
        self.requests: list[dict[str, Any]] = []
        self.detail_pages: set[str] = set()  # detail pages a follow save already opens

    def build(self) -> Synthesis:
        for data in sorted(self.analysis.data, key=lambda d: d.group.first.index):
            if follow_details(self, data) or (data.downloads and self._links(data)):
                continue
            self._data_step(data)
        recipe: dict[str, Any] = {
            "version": 1,
            "kind": "http",
            "name": recipe_name(self.config, self.steps[-1]["name"]),
            "description": "generated from a browser capture, without an LLM",
        }
        if self.auth is not None:
            recipe["auth"] = self.auth
        days = window_days(self.ctx, self.sources)
        if days is not None:
            recipe["date_range"] = {"last_days": days}
        recipe["steps"] = self.steps
        return Synthesis("http", recipe, self.requests, self.warnings)

    # -- steps ----------------------------------------------------------------------------

    def _unique_name(self, base: str) -> str:
        names = {step["name"] for step in self.steps}
        name, number = base, 1
        while name in names:
            number += 1
            name = f"{base}_{number}"
        return name

    def _data_step(self, data: DataGroup) -> None:
        pages = distinct_pages(data.pages) or data.pages
        pagination, notes = infer(pages)
        self.warnings += notes
        entries = [page.entry for page in pages]
        resource = resource_name(entries[0].path)
        request, values = self._request(entries, pagination, depth=0)
        step: dict[str, Any] = {"name": self._unique_name(resource), "request": request}
        if data.format in ("json", "xml") and data.records_path:
            step["records"] = data.records_path
        if pagination is not None:
            step["paginate"] = pagination.config
        if "records" in step and (since := propose(request.get("query", {}), _items(pages))):
            del request["query"][since["start_param"]]  # the engine sends it from now on
            if not request["query"]:
                del request["query"]
            step["incremental"] = since
        name = f"{resource}_${{page}}.${{ext}}" if pagination else f"{resource}.${{ext}}"
        step["save"] = [{"type": "body", "name": name}]
        self._add(step, entries[0].index)
        self.requests.append({**self.data_provenance(data, pagination), "values": _listed(values)})

    def _add(self, step: dict[str, Any], index: int) -> None:
        """Insert ``step`` after the steps it depends on (already added), before later ones."""
        self.steps.append(step)
        self.step_for.setdefault(index, step)

    def _dependency(self, index: int, depth: int) -> dict[str, Any]:
        """The step that requests entry ``index`` (created, without saving, when missing)."""
        if index in self.step_for:
            return self.step_for[index]
        entry = self.by_index[index]
        request, _ = self._request([entry], None, depth=depth + 1)
        step: dict[str, Any] = {
            "name": self._unique_name(f"{resource_name(entry.path, 'page')}_page"),
            "request": request,
        }
        self._add(step, index)
        return step

    def _request(
        self, entries: Sequence[Entry], pagination: Pagination | None, *, depth: int
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The request spec of a kind and the provenance of each of its values."""
        first = entries[0]
        slots = request_slots(entries)
        taken = pagination.slots if pagination else frozenset()
        templates = dict(pagination.templates) if pagination else {}
        values: dict[str, Any] = {}
        request: dict[str, Any] = {}
        query: dict[str, str] = {}
        headers: dict[str, str] = {}
        form: dict[str, str] = {}
        body: dict[str, str | None] = {}
        segments: dict[int, str] = {}
        for slot in slots:
            key = (slot.place, slot.name)
            if key in taken and key not in templates:
                values[str(slot)] = {"kind": "paginator"}
                continue
            if key in templates:
                value: str | None = templates[key]
                values[str(slot)] = {"kind": "paginator"}
            else:
                value = self._value(slot, first.index, depth, values)
            if slot.place == "json":
                body[slot.name] = value  # None: left out of the body
            elif value is None:
                continue
            elif slot.place == "query":
                query[slot.name] = value
            elif slot.place == "header":
                headers[_header_name(first, slot.name)] = value
            elif slot.place == "cookie":
                headers["Cookie"] = "; ".join(
                    filter(None, [headers.get("Cookie"), f"{slot.name}={value}"])
                )
            elif slot.place == "form":
                form[slot.name] = value
            elif slot.place == "path":
                segments[int(slot.name)] = value
        if first.method != "GET":
            request["method"] = first.method
        request["url"] = url_template(first.url, self.config, segments=segments)
        for name, mapping in (("headers", headers), ("query", query), ("form", form)):
            if mapping:
                request[name] = mapping
        if isinstance(first.json_body, dict):
            request["json"] = recipe_body(first.json_body, body)
        return request, values

    def _value(self, slot: Slot, before: int, depth: int, values: dict[str, Any]) -> str | None:
        """The template of one slot (None: nothing to send explicitly)."""
        first = slot.present[0] if slot.present else ""
        if slot.place == "header" and slot.name == "accept" and _BROWSER_ACCEPT.match(first):
            return None
        if slot.place == "header" and slot.name == "authorization":
            return self._authorization(slot, first, before, depth, values)
        source = explain(slot, self.ctx, before)
        self.sources.append(source)
        values[str(slot)] = source.describe()
        if source.kind == "unexplained":
            self.warnings.append(f"unexplained value: {source.detail}")
            return literal(first)
        if source.kind == "constant":
            return literal(first)
        if source.kind in ("secret", "config", "date"):
            return source.template
        if source.kind == "extract":
            return self._extract(source, depth)
        if (
            source.kind == "cookie_jar"
            and source.entry is not None
            and depth < MAX_DEPENDENCY_DEPTH
        ):
            self._dependency(source.entry, depth)
            return None
        if source.kind == "auth" and source.entry is not None:
            self._login_form(self.by_index[source.entry])
            return None
        if source.kind == "auth":  # HTTP Basic with the channel's credentials
            self.auth = {"type": "basic"}
            return None
        return None

    def _extract(self, source: Source, depth: int) -> str | None:
        if source.entry is None or source.variable is None or depth >= MAX_DEPENDENCY_DEPTH:
            return source.template
        step = self._dependency(source.entry, depth)
        extracts = step.setdefault("extract", {})
        extracts.setdefault(source.variable, dict(source.selector or {}))
        return source.template

    def _authorization(
        self, slot: Slot, value: str, before: int, depth: int, values: dict[str, Any]
    ) -> str | None:
        direct = from_config(value, self.ctx)
        if direct is not None:
            values[str(slot)] = direct.describe()
            if direct.kind == "auth":
                self.auth = {"type": "basic"}
                return None
            return direct.template
        scheme, _, credential = value.partition(" ")
        if scheme.lower() not in _AUTH_SCHEMES or not credential:
            return self._value(
                Slot("header", "x-authorization", slot.values), before, depth, values
            )
        token_slot = Slot(
            "header", "authorization", tuple(v.partition(" ")[2] if v else v for v in slot.values)
        )
        source = from_config(credential, self.ctx) or from_responses(
            credential, token_slot, self.ctx, before
        )
        if source is None:
            self.warnings.append("unexplained value: the Authorization header")
            values[str(slot)] = {"kind": "unexplained", "detail": "Authorization header"}
            return literal(value)
        values[str(slot)] = source.describe()
        if source.kind == "secret":
            name = (source.template or "").removeprefix("${secrets.").removesuffix("}")
            self.auth = {"type": "bearer", "token": f"${{secrets.{name}}}"}
            return None
        if source.kind == "extract" and source.entry is not None:
            token_entry = self.by_index[source.entry]
            if token_entry.method == "POST" and self._token_endpoint(token_entry, source, scheme):
                return None
            template = self._extract(source, depth)
            return f"{scheme} {template}"
        return literal(value)

    def _token_endpoint(self, entry: Entry, source: Source, scheme: str) -> bool:
        fields: Mapping[str, Any] = (
            entry.form or (entry.json_body if isinstance(entry.json_body, dict) else {}) or {}
        )
        body: dict[str, str] = {}
        sends_secret = False
        for name, value in fields.items():
            found = from_config(str(value), self.ctx)
            if found is not None and found.template is not None:
                body[name] = found.template
                sends_secret |= found.kind == "secret"
            else:
                body[name] = literal(str(value))
        selector = source.selector or {}
        if not sends_secret or selector.get("type") != "json":
            return False
        token_url = from_config(entry.url_without_query, self.ctx)
        self.auth = {
            "type": "token_endpoint",
            "token_url": token_url.template
            if token_url and token_url.template
            else url_template(entry.url, self.config),
            "body": body,
            "body_format": "form" if entry.form is not None else "json",
            "token_path": selector["path"],
        }
        if scheme.lower() != "bearer":
            self.auth["scheme"] = scheme
        return True

    def _login_form(self, login: Entry) -> None:
        """``login_form`` auth from the POST that sent the password and the page it came from."""
        if self.auth is not None and self.auth.get("type") == "login_form":
            return
        form_page = next(
            (
                e
                for e in reversed(self.analysis.entries[: login.index])
                if e.method == "GET" and e.format == "html" and _has_password(e.text)
            ),
            None,
        )
        fields: dict[str, str] = {}
        hidden = _input_values(form_page.text) if form_page else {}
        for name, value in (login.form or {}).items():
            found = from_config(value, self.ctx)
            if found is not None and found.kind == "secret" and found.template:
                fields[name] = found.template
            elif hidden.get(name) != value:
                fields[name] = literal(value)
        auth: dict[str, Any] = {"type": "login_form"}
        if form_page is not None:
            auth["login_url"] = self._page_url(form_page)
        auth["fields"] = fields
        self.auth = auth

    def _page_url(self, page: Entry) -> str:
        """How to reach ``page``: the channel URL when it redirected there, else its URL."""
        channel = self.config.url.split("#", 1)[0]
        for entry in self.analysis.entries[: page.index]:
            if entry.url == channel and 300 <= entry.status < 400:
                return "${config.url}"
        if page.url == channel:
            return "${config.url}"
        parts = urlsplit(page.url)
        same = urlsplit(channel)[:2] == parts[:2]
        return (
            literal(parts.path + (f"?{parts.query}" if parts.query else ""))
            if same
            else literal(page.url)
        )

    # -- downloads ------------------------------------------------------------------------

    def _links(self, data: DataGroup) -> bool:
        """Downloads linked from an earlier page: a ``links`` save on that page's step."""
        entries = [e for e in data.entries if 200 <= e.status < 300]
        first = entries[0]
        href_of = {e.index: _href_forms(e.url) for e in entries}
        for candidate in reversed(self.analysis.entries[: first.index]):
            if candidate.method != "GET" or not 200 <= candidate.status < 300:
                continue
            if candidate.format not in ("html", "json"):
                continue
            found = [
                next((h for h in forms if h in candidate.text), None) for forms in href_of.values()
            ]
            if not all(found):
                continue
            selector = _link_selector(candidate, [h for h in found if h])
            if selector is None:
                continue
            step = self._dependency(candidate.index, 0)
            step.setdefault("save", []).append({"type": "links", "select": selector})
            self.requests.append(
                {
                    **self.data_provenance(data, None),
                    "values": [
                        {
                            "slot": "url",
                            "kind": "extract",
                            "detail": f"links in {candidate.method} {candidate.path}",
                        }
                    ],
                }
            )
            return True
        return False


def _items(pages: Sequence[Page]) -> list[dict[str, str]]:
    return [item for page in pages if page.records for item in page.records.items]


def _listed(values: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Slot provenance as a list (slot names like "cookie x" are not keys a redactor masks)."""
    return [{"slot": slot, **source} for slot, source in values.items()]


def _href_forms(url: str) -> list[str]:
    parts = urlsplit(url)
    relative = parts.path + (f"?{parts.query}" if parts.query else "")
    return [url, relative, relative.replace("&", "&amp;")]


def _link_selector(page: Entry, hrefs: Sequence[str]) -> dict[str, Any] | None:
    if page.format == "json":
        paths = {find_json_path(page.json, href) for href in hrefs}
        if None in paths:
            return None
        general = {re.sub(r"\[\d+\]", "[*]", p or "") for p in paths}
        return {"type": "json", "path": general.pop()} if len(general) == 1 else None
    extensions = {
        ext for ext in DATA_EXTENSIONS if all(urlsplit(h).path.lower().endswith(ext) for h in hrefs)
    }
    if extensions:
        ext = max(extensions, key=len)
        return {"type": "html_links", "pattern": re.escape(ext) + r"(\?|$)"}
    templates = {path_template(urlsplit(h).path) for h in hrefs}
    if len(templates) != 1:
        return None
    pattern = re.escape(templates.pop()).replace(r"\{n\}", r"\d+").replace(r"\{id\}", r"[^/]+")
    return {"type": "html_links", "pattern": pattern + r"(\?|$)"}


def _has_password(html: str) -> bool:
    return re.search(r"""type\s*=\s*["']?password""", html, re.IGNORECASE) is not None


def _input_values(html: str) -> dict[str, str]:
    out: dict[str, str] = {}
    stack = [parse_html(html)]
    while stack:
        node = stack.pop()
        if node.tag == "input" and node.attrs.get("name"):
            out[node.attrs["name"]] = node.attrs.get("value", "")
        stack.extend(node.children)
    return out


def _header_name(entry: Entry, lowered: str) -> str:
    return next((name for name, _ in entry.request_headers if name.lower() == lowered), lowered)


# --- feed ------------------------------------------------------------------------------------


class _FeedBuilder(_Builder):
    def build(self) -> Synthesis:
        data = max(self.analysis.data, key=lambda d: d.record_count)
        entry = data.group.first
        # Auth and request values as an http recipe would have them; a feed recipe can only
        # carry auth, so a feed that needs more (extracts, headers) is an http recipe.
        http = _HttpBuilder(self.analysis, self.capture, self.config)
        request, _ = http._request([entry], None, depth=0)
        if http.steps or set(request) - {"url"}:
            return http.build()
        resource = resource_name(entry.path, "feed")
        recipe: dict[str, Any] = {
            "version": 1,
            "kind": "feed",
            "name": recipe_name(self.config, resource),
            "description": "generated from a browser capture, without an LLM",
            "url": url_template(entry.url, self.config, keep_query=True),
            "entries_name": f"{resource}_entries.json",
            "save_document": True,
            "document_name": f"{resource}.${{ext}}",
        }
        if http.auth is not None:
            recipe["auth"] = http.auth
        found = [
            e
            for e in self.analysis.entries[: entry.index]
            if e.format == "html" and _path_in(entry, e.text)
        ]
        detail = "the feed URL" + (" (linked from the page)" if found else "")
        values = [{"slot": "url", "kind": "constant", "detail": detail}]
        requests = [{**self.data_provenance(data, None), "values": values}]
        return Synthesis("feed", recipe, requests, self.warnings)


def _path_in(entry: Entry, text: str) -> bool:
    return entry.path in text or entry.url in text


__all__ = [
    "synthesize",
]
