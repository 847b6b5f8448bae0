"""A compact, redacted text of a capture, for an LLM prompt (written by another module).

Kept requests only (noise is counted, not listed), grouped by kind, in the order they were
made: method, path template, status, format, records found, the values that change between
requests of the kind, request headers and bodies (redacted), and the start of one response
body. Secrets are masked by name (headers, parameters) and by value (the channel's
credentials and every token seen in the capture's auth replies).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from amazoniax_dagster.core.redaction import Redactor, redact_headers, redact_url
from fetcher_codegen.capture import Capture
from fetcher_codegen.har import Entry, group_by_kind, load_har, noise_reason, path_template
from fetcher_codegen.provenance import BROWSER_HEADERS, request_slots
from fetcher_codegen.records import find_records

MAX_SUMMARY_CHARS = 30_000
BODY_CHARS = 700
MAX_GROUPS = 25


def summarize_har(capture: Capture, secrets: Iterable[str]) -> str:
    """The capture as text an LLM can read; no secret value survives in it."""
    entries = load_har(capture.har_path)
    redactor = Redactor(secrets)
    redactor.add(*_tokens(entries))
    noise: dict[str, int] = {}
    kept: list[Entry] = []
    for entry in entries:
        reason = noise_reason(entry)
        if reason in (None, "redirect") or entry.method == "POST":
            kept.append(entry)
        else:
            noise[reason or "?"] = noise.get(reason or "?", 0) + 1
    steps = ", ".join(f"{s.action}" + (f" ({s.detail})" if s.detail else "") for s in capture.steps)
    lines = [
        f"Capture of {capture.channel_url} on {capture.capture_date.isoformat()}: "
        f"{len(entries)} requests, {len(kept)} listed below.",
        f"Explorer steps: {steps or 'none'}.",
        "Left out: " + (", ".join(f"{n} {why}" for why, n in sorted(noise.items())) or "nothing"),
    ]
    for number, group in enumerate(group_by_kind(kept)[:MAX_GROUPS], start=1):
        lines.append("")
        lines += _group_lines(number, group.entries)
    text = redactor("\n".join(lines))
    if len(text) > MAX_SUMMARY_CHARS:
        text = text[:MAX_SUMMARY_CHARS].rsplit("\n", 1)[0] + "\n[... summary cut here]"
    return text


def _group_lines(number: int, entries: list[Entry]) -> list[str]:
    first = entries[0]
    statuses = ", ".join(sorted({str(e.status) for e in entries}))
    records = [find_records(e) for e in entries]
    counts = [r.count if r else 0 for r in records]
    head = (
        f"[{number}] {first.method} {first.origin}{path_template(first.path)} — "
        f"{len(entries)} request(s), status {statuses}, {first.format}"
        + (f", {first.mime.split(';')[0]}" if first.mime else "")
    )
    lines = [head]
    found = next((r for r in records if r and r.count), None)
    if found is not None:
        lines.append(f"    records at {found.path!r}: {', '.join(map(str, counts))} per response")
    for entry in entries[:6]:
        lines.append(f"    - {entry.method} {redact_url(entry.url)} -> {entry.status}")
    slots = [s for s in request_slots(entries) if not s.constant]
    if slots:
        lines.append("    changing values: " + "; ".join(
            f"{s} = {', '.join('—' if v is None else v for v in s.values[:6])}" for s in slots[:6]
        ))  # fmt: skip
    headers = {
        name: value
        for name, value in first.request_headers
        if name.lower() not in BROWSER_HEADERS and not name.lower().startswith("sec-")
    }
    if headers:
        lines.append(f"    request headers: {json.dumps(redact_headers(headers))}")
    cookies = sorted(first.cookies)
    if cookies:
        lines.append(f"    cookies sent: {', '.join(cookies)}")
    if first.post_text:
        lines.append(f"    request body ({first.post_mime}): {_body_shape(first)}")
    set_cookies = sorted({name for e in entries for name in e.set_cookies})
    if set_cookies:
        lines.append(f"    sets cookies: {', '.join(set_cookies)}")
    for name in ("location", "link", "content-disposition"):
        value = first.response_header(name)
        if value:
            lines.append(f"    {name}: {redact_url(value)}")
    if first.body and first.format not in ("binary", "empty"):
        body = " ".join(first.text[:BODY_CHARS].split())
        lines.append(f"    body: {body}" + (" [...]" if len(first.text) > BODY_CHARS else ""))
    return lines


def _body_shape(entry: Entry) -> str:
    if entry.form is not None:
        return ", ".join(f"{k}=<{len(v)} chars>" for k, v in entry.form.items())
    if isinstance(entry.json_body, dict):
        return "JSON with fields " + ", ".join(map(str, entry.json_body))
    return f"<{len(entry.post_text or '')} chars>"


def _tokens(entries: Iterable[Entry]) -> list[str]:
    """Values the site handed out as credentials (tokens in JSON replies, cookies)."""
    found: list[str] = []
    for entry in entries:
        found += list(entry.set_cookies.values())
        body: Any = entry.json if entry.format == "json" else None
        if isinstance(body, dict):
            found += [
                str(value)
                for key, value in body.items()
                if isinstance(value, str) and "token" in key.lower()
            ]
    return [value for value in found if len(value) >= 8]


__all__ = ["MAX_SUMMARY_CHARS", "summarize_har"]
