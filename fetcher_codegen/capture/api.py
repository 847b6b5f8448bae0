"""Exploring an API (JSON, or XML read as the same tree): present auth keys, read its
documentation, follow an index's links and probe the pages after each one seen."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from fetcher_codegen.capture.browsing import Browsing
from fetcher_codegen.capture.model import Seen
from fetcher_codegen.probes import (
    auth_attempts,
    documented_params,
    json_links,
    moved_to,
    next_page_probes,
)
from fetcher_codegen.probes_body import documented_body_fields, next_body_probes


class ApiExplorer(Browsing):
    def authorize_api(self) -> None:
        main = self._document()
        keys = {k: v.get_secret_value() for k, v in (self.config.auth_keys or {}).items()}
        if main is None or main.status not in (401, 403) or not keys:
            return
        challenge = main.response_headers.get("www-authenticate")
        for attempt in auth_attempts(keys, challenge=challenge, refusal=main.text or ""):
            headers = dict(attempt.headers or {})
            if attempt.token_request is not None:
                fields = dict(attempt.token_request)
                token_url = fields.pop("url")
                if not self._allowed(token_url):
                    continue
                reply = self.fetch(token_url, method="POST", form=fields,
                                   headers={"Accept": "application/json"})  # fmt: skip
                token = token_in(reply.text)
                if token is None:
                    continue
                self.redact.add(token)
                headers = {"Authorization": f"Bearer {token}"}
            url = self.config.url
            if attempt.params:
                from fetcher_codegen.probes import with_params

                url = with_params(url, **attempt.params)
            headers.setdefault("Accept", "application/json")
            reply = self.fetch(url, headers=headers)
            if 200 <= reply.status < 300:
                self.api_headers = {k.lower(): v for k, v in headers.items()}
                self.authorized = reply
                self.step("authorize", f"the API accepted {attempt.why}")
                return
        self.warn("the API refused every way of presenting the channel's auth_keys")

    def read_documentation(self) -> None:
        doc_path = self.config.api_documentation_path
        if not doc_path:
            return
        url = (
            doc_path
            if "://" in doc_path
            else self.config.url.rstrip("/") + "/" + doc_path.lstrip("/")
        )
        if "://" not in doc_path and doc_path.startswith("/"):
            parts = urlsplit(self.config.url)
            url = f"{parts.scheme}://{parts.netloc}{doc_path}"
        if not self._allowed(url):
            return
        self.doc_url = url
        reply = self.fetch(url, headers={"accept": "application/json", **self.api_headers})
        self.documented = reply.json()

    def explore_api(self, start: Seen) -> None:
        body = start.api_body()
        if start.api_records() is not None or not isinstance(body, dict):
            self.probe_chain(start)
            return
        if start.status in (401, 403):
            if self.authorized is not None:
                self.explore_api(self.authorized)
            return
        if start.status >= 400 and self.follow_moved(start):
            return
        followed = 0
        for probe in json_links(body, start.url, self.limits.max_follow_links):
            if self.time_left() <= 0 or followed >= self.limits.max_follow_links:
                break
            followed += 1
            reply = self.fetch(
                probe.url, headers={"accept": "application/json", **self.api_headers}
            )
            if reply.api_records() is not None:
                self.probe_chain(reply)
        if followed:
            self.step("follow links", f"followed {followed} URLs of the JSON index")

    def follow_moved(self, start: Seen) -> bool:
        """An error reply that names where the resource went (404/410 "use /api/v2/..."):
        explore the first named URL that answers with records."""
        for url in moved_to(start.text, start.url)[:3]:
            if self.time_left() <= 0 or not self._allowed(url):
                break
            reply = self.fetch(url, headers={"accept": "application/json", **self.api_headers})
            if 200 <= reply.status < 300 and reply.api_records() is not None:
                self.step("follow moved", f"HTTP {start.status} named {urlsplit(url).path}")
                self.probe_chain(reply)
                return True
        return False

    def probe_chain(self, start: Seen) -> None:
        """Ask for the pages after ``start`` until a probe brings nothing new: the next URL of
        a GET, the next body of a JSON POST (a search endpoint, a GraphQL query)."""
        path = urlsplit(start.url).path
        if kind_key(start) in self.probed:
            return
        self.probed.add(kind_key(start))
        documented = documented_params(self.documented, path)
        headers = {
            k.lower(): v
            for k, v in start.request_headers.items()
            if k.lower() in ("authorization", "accept") or k.lower().startswith("x-")
        }
        headers.update(self.api_headers)
        current, pages = start, 1
        while pages < self.limits.max_pages and self.time_left() > 0:
            body = current.api_body()
            records = current.api_records()
            if records is None or not records.count:
                return
            accepted = None
            if current.method == "POST":
                probes = next_body_probes(
                    current.url,
                    current.request_json(),
                    body,
                    records.count,
                    records.items[-1],
                    documented_body_fields(self.documented, path),
                )
            else:
                probes = next_page_probes(
                    current.url, body, records.count, documented, records.items[-1]
                )
            for probe in probes[:6]:
                reply = self.fetch(
                    probe.url, method=probe.method, headers=headers, json_body=probe.json
                )
                if not 200 <= reply.status < 300:
                    continue
                found = reply.api_records()
                if found and found.count and found.items[0] != records.items[0]:
                    accepted = reply
                    break
            if accepted is None:
                return
            current, pages = accepted, pages + 1
        if pages > 1:
            self.step("probe pages", f"{pages} pages of {start.method} {path}")

    def complete_pagination(self) -> None:
        """Probe the next page of every API kind (JSON or XML) with records seen on one page
        only: GET requests, and POST requests that sent a JSON object."""
        by_kind: dict[str, list[Seen]] = {}
        for seen in list(self.seen):
            if seen.url == self.doc_url or not 200 <= seen.status < 300:
                continue
            probed = seen.method == "GET" or (
                seen.method == "POST" and isinstance(seen.request_json(), dict)
            )
            if probed and seen.api_body() is not None:
                by_kind.setdefault(kind_key(seen), []).append(seen)
        for group in by_kind.values():
            if self.time_left() <= 0:
                return
            firsts = set()
            for seen in group:
                records = seen.api_records()
                firsts.add(json.dumps(records.items[0] if records and records.count else None))
            if len(firsts) == 1 and group[0].api_records() is not None:
                self.probe_chain(group[0])


def kind_key(seen: Seen) -> str:
    """Requests of one kind page together: method and path, and a GraphQL query's text."""
    key = f"{seen.method} {urlsplit(seen.url).path}"
    sent = seen.request_json() if seen.method != "GET" else None
    if isinstance(sent, dict) and isinstance(sent.get("query"), str):
        key += " " + " ".join(sent["query"].split())
    return key


def token_in(text: str | None) -> str | None:
    try:
        body = json.loads(text or "null")
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    for key in ("access_token", "token", "id_token", "accessToken"):
        if isinstance(body.get(key), str) and body[key]:
            return str(body[key])
    return None
