"""Value provenance: where each value of a data request came from (docs/codegen.md §3).

For every *slot* of a request kind (a path segment, query parameter, header, cookie, form or
JSON body field) the values seen in its requests are explained, in this order:

1. **channel config** — a credential or auth key (``${secrets.x}``, also inside ``Basic`` and
   ``Bearer`` headers), the channel URL or a part of it (``${config.origin}`` ...), or a date
   that matches ``navigation_details`` relative to the day of capture (``${window.start:...}``;
   the recipe computes it from the day of the run, never replays the captured date);
2. **an earlier response** — the value occurs in a ``Set-Cookie``, a header, a JSON body, a
   hidden input or the text of a response before the request: an *extract* (a dependency
   edge); a session cookie set by the login form, or a token from a token endpoint, is *auth*;
3. **constant** — the same in every request of the kind;
4. otherwise **unexplained** (a warning). Values that change from request to request are left
   to :mod:`fetcher_codegen.pagination` (counters and cursors) before they count as unexplained.

Secret values never appear in what this module returns: :class:`Source` holds templates and
descriptions only.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from amazoniax_dagster.core.messages import WebSourceConfig
from amazoniax_dagster.core.redaction import is_secret_key
from fetcher_codegen.har import Entry, path_template
from fetcher_codegen.json_body import body_fields, dotted, text_of
from fetcher_codegen.records import json_path, parse_html

SlotPlace = Literal["path", "query", "header", "cookie", "form", "json"]
SourceKind = Literal[
    "constant", "config", "secret", "date", "extract", "cookie_jar", "auth", "unexplained"
]

# Headers every browser sends by itself; a recipe never needs to copy them.
BROWSER_HEADERS = frozenset(
    {
        "accept-encoding", "accept-language", "cache-control", "connection", "host", "pragma",
        "user-agent", "referer", "origin", "content-length", "cookie", "dnt", "priority",
        "if-none-match", "if-modified-since", "te", "upgrade-insecure-requests", "purpose",
        "content-type", "proxy-connection", "proxy-authorization", "keep-alive",
        ":authority", ":method", ":path", ":scheme",
    }
)  # fmt: skip
DATE_FORMATS = ("%Y-%m-%d", "%Y%m%d", "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%Y/%m/%d")
MIN_DISTINCT_LENGTH = 6  # shorter values match earlier responses by chance
# Words ("orders", "Orders", "ORDERS") and small numbers; "ZmVlZDoxMA" is not a word.
_WORDISH = re.compile(r"[A-Z]?[a-z]+|[A-Z]+|\d{1,5}")
_MEDIA_TYPE = re.compile(r"^(\*|[a-z]+)/[\w.+*-]+(\s*[;,]|$)", re.IGNORECASE)
_USERNAME_KEYS = ("username", "user", "email", "login")
_PASSWORD_KEYS = ("password", "pass", "passwd")


@dataclass(frozen=True)
class Slot:
    place: SlotPlace
    name: str  # the parameter/header/cookie/field name; the segment index for ``path``
    values: tuple[str | None, ...]  # one per request of the kind, None when absent

    @property
    def present(self) -> list[str]:
        return [v for v in self.values if v is not None]

    @property
    def constant(self) -> bool:
        return len(set(self.values)) == 1

    @property
    def leaf(self) -> str:
        """The field's own name (``offset`` of the JSON body's ``variables.offset``)."""
        return self.name.rsplit(".", 1)[-1] if self.place == "json" else self.name

    def __str__(self) -> str:
        return f"{self.place} {self.name}"


@dataclass(frozen=True)
class Source:
    """Where a slot's value comes from; ``template`` is what the recipe writes for it."""

    kind: SourceKind
    template: str | None
    detail: str
    entry: int | None = None  # index of the earlier response (a dependency edge)
    selector: Mapping[str, Any] | None = None  # recipe selector that extracts it there
    variable: str | None = None  # the extract's name

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "detail": self.detail}
        if self.template is not None and self.kind != "unexplained":
            out["template"] = self.template
        if self.entry is not None:
            out["from_request"] = self.entry
        return out


@dataclass
class Context:
    """What values may come from: the channel config, the day of capture, every entry."""

    config: WebSourceConfig
    capture_date: date
    entries: Sequence[Entry]
    secrets: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        found = {**(self.config.login_credentials or {}), **(self.config.auth_keys or {})}
        self.secrets = {k: v.get_secret_value() for k, v in found.items() if v.get_secret_value()}

    def credential(self, keys: Sequence[str]) -> tuple[str, str] | None:
        creds = self.config.login_credentials or {}
        for key in keys:
            if key in creds:
                return key, creds[key].get_secret_value()
        return None

    @property
    def date_range(self) -> Mapping[str, Any] | None:
        raw = (self.config.navigation_details or {}).get("date_range")
        return raw if isinstance(raw, Mapping) else None


# --- slots -----------------------------------------------------------------------------------


def request_slots(entries: Sequence[Entry]) -> list[Slot]:
    """Every slot of these requests (one kind), with its value in each."""
    names: dict[tuple[SlotPlace, str], None] = {}
    rows = [dict(_slot_values(entry)) for entry in entries]
    for row in rows:
        names.update(dict.fromkeys(row))
    return [
        Slot(place, name, tuple(row.get((place, name)) for row in rows)) for place, name in names
    ]


def _slot_values(entry: Entry) -> Iterator[tuple[tuple[SlotPlace, str], str]]:
    template = path_template(entry.path).split("/")
    for index, segment in enumerate(entry.path.split("/")):
        if index < len(template) and template[index] != segment:
            yield ("path", str(index)), segment
    for name, value in entry.query:
        yield ("query", name), value
    for name, value in entry.request_headers:
        if name.lower() not in BROWSER_HEADERS and not name.lower().startswith("sec-"):
            yield ("header", name.lower()), value
    for name, value in entry.cookies.items():
        yield ("cookie", name), value
    for name, value in (entry.form or {}).items():
        yield ("form", name), value
    for path, value in body_fields(entry.json_body):
        yield ("json", dotted(path)), text_of(value)


# --- explaining one value ----------------------------------------------------------------------


def explain(slot: Slot, ctx: Context, before: int) -> Source:
    """The source of a slot whose value does not change (or of its first value)."""
    value = slot.present[0] if slot.present else ""
    found = from_config(value, ctx) or from_responses(value, slot, ctx, before)
    if found is not None:
        return found
    if slot.constant:
        if is_secret_key(slot.name) and value:
            return Source("unexplained", value, f"{slot} looks secret but matches no config value")
        return Source("constant", value, "the same in every request")
    return Source("unexplained", None, f"{slot} changes between requests")


def from_config(value: str, ctx: Context) -> Source | None:
    """A credential, a part of the channel URL, or a date relative to the capture day."""
    if not value:
        return None
    for name, secret in ctx.secrets.items():
        if value == secret:
            return Source("secret", f"${{secrets.{name}}}", f"the channel's {name}")
    basic = _basic_auth(value, ctx)
    if basic is not None:
        return basic
    scheme, _, rest = value.partition(" ")
    if scheme.lower() in ("bearer", "token") and rest:
        for name, secret in ctx.secrets.items():
            if rest == secret:
                return Source("secret", f"{scheme} ${{secrets.{name}}}", f"the channel's {name}")
    url = ctx.config.url
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
    for template, candidate in (
        ("${config.url}", url),
        ("${config.origin}", origin),
        ("${config.host}", parts.hostname or ""),
        ("${config.path}", parts.path if len(parts.path) > 1 else ""),
    ):
        if candidate and value == candidate:
            return Source("config", template, "a part of the channel URL")
    return date_source(value, ctx)


def _basic_auth(value: str, ctx: Context) -> Source | None:
    scheme, _, encoded = value.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded, validate=True).decode()
    except ValueError:
        return None
    user, _, password = decoded.partition(":")
    users = {v: k for k, v in ctx.secrets.items()}
    if user in users and password in users:
        return Source("auth", None, "HTTP Basic with the channel's credentials")
    return None


def parse_date(value: str) -> tuple[date, str] | None:
    """``value`` as a date and the strftime format it was written in, else None."""
    text = value.strip()
    if not 6 <= len(text) <= 32:
        return None
    for fmt in DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date(), fmt
        except ValueError:
            continue
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}T[\d:.]+(Z|[+-]\d{2}:?\d{2})?", text):
        return datetime.fromisoformat(text.replace("Z", "+00:00")).date(), "%Y-%m-%dT00:00:00"
    return None


PAGE_WINDOW_DAYS = 366  # a recent date a page asked for by default: its own window's start


def date_source(value: str, ctx: Context) -> Source | None:
    """A date in a request: the run's window (from navigation_details) or the run date."""
    parsed = parse_date(value)
    if parsed is None:
        return None
    day, fmt = parsed
    days_before = (ctx.capture_date - day).days
    window = ctx.date_range or {}
    if "from" in window or "to" in window:
        for key, edge in (("from", "start"), ("to", "end")):
            if str(window.get(key, "")) == day.isoformat():
                return Source("date", f"${{window.{edge}:{fmt}}}", f"navigation_details.{key}")
    if "last_days" in window and days_before == window["last_days"]:
        return Source("date", f"${{window.start:{fmt}}}", "navigation_details.date_range start")
    if days_before == 0:
        edge = "${window.end:" + fmt + "}" if window else "${run_date:" + fmt + "}"
        return Source("date", edge, "the day of the run")
    if 0 < days_before <= PAGE_WINDOW_DAYS and window:
        # the page's own default window (a week, a month): the channel's window replaces it
        return Source(
            "date",
            f"${{window.start:{fmt}}}",
            f"navigation_details.date_range start (the page asked for {days_before} days)",
        )
    if 0 < days_before <= 3660 and not window:
        return Source(
            "date",
            f"${{window.start:{fmt}}}",
            f"{days_before} days before the day of the run (recipe date_range.last_days)",
        )
    return None


def from_responses(value: str, slot: Slot, ctx: Context, before: int) -> Source | None:
    """The latest response before request ``before`` that holds ``value``."""
    if not distinctive(value):
        return None
    variable = variable_name(slot.name)
    for entry in reversed(ctx.entries[:before]):
        found = locate(value, entry)
        if found is None:
            continue
        how, selector = found
        if how == "set-cookie" and slot.place == "cookie":
            kind: SourceKind = "auth" if is_login(entry, ctx) else "cookie_jar"
            detail = "session cookie set by the login form" if kind == "auth" else how
            return Source(kind, None, f"{detail} ({entry.method} {_shown(entry)})", entry.index)
        return Source(
            "extract",
            f"${{extract.{variable}}}",
            f"{how} of {entry.method} {_shown(entry)}",
            entry.index,
            selector,
            variable,
        )
    return None


def distinctive(value: str) -> bool:
    """Long and specific enough that finding it elsewhere is not a coincidence: a token-like
    value (a digit, mixed case or 12+ characters), not a word, number or media type."""
    if len(value) < MIN_DISTINCT_LENGTH or _WORDISH.fullmatch(value) or _MEDIA_TYPE.match(value):
        return False
    mixed = value != value.lower() and value != value.upper()
    return any(ch.isdigit() for ch in value) or mixed or len(value) >= 12


def locate(value: str, entry: Entry) -> tuple[str, dict[str, Any]] | None:
    """Where in ``entry``'s response ``value`` is, and a selector that finds it there."""
    for name, cookie in entry.set_cookies.items():
        if cookie == value:
            return "set-cookie", {"type": "cookie", "name": name}
    for name, header in entry.response_headers:
        if header == value and name.lower() != "set-cookie":
            return f"header {name}", {"type": "header", "name": name}
    if value not in entry.text:
        return None
    if entry.format == "json":
        path = find_json_path(entry.json, value)
        if path is not None:
            return f"JSON {path}", {"type": "json", "path": path}
    if entry.format == "html":
        field_name = hidden_input(entry.text, value)
        if field_name is not None:
            return f"input {field_name}", {"type": "html_input", "name": field_name}
    pattern = value_regex(entry.text, value)
    if pattern is not None:
        return "text", {"type": "regex", "pattern": pattern}
    return None


def find_json_path(data: Any, value: str, parts: tuple[str | int, ...] = ()) -> str | None:
    """The shortest path whose scalar equals ``value`` (breadth first)."""
    queue: list[tuple[tuple[str | int, ...], Any]] = [(parts, data)]
    while queue:
        where, item = queue.pop(0)
        if isinstance(item, dict):
            queue.extend(((*where, str(k)), v) for k, v in item.items())
        elif isinstance(item, list):
            queue.extend(((*where, i), v) for i, v in enumerate(item[:200]))
        elif item is not None and str(item) == value:
            return json_path(where)
    return None


def hidden_input(html: str, value: str) -> str | None:
    stack = [parse_html(html)]
    while stack:
        node = stack.pop()
        if node.tag == "input" and node.attrs.get("value") == value and node.attrs.get("name"):
            return node.attrs["name"]
        stack.extend(node.children)
    return None


def value_regex(text: str, value: str) -> str | None:
    """A regex whose first match's group 1 is ``value`` in ``text``: the literal text before
    the value (as short as stays unambiguous), then the value's character class."""
    position = text.find(value)
    if position < 0:
        return None
    after = text[position + len(value) : position + len(value) + 1]
    stop = re.escape(after) if after and not after.isalnum() else ""
    body = f"([^{stop}\\s<>]+)" if stop else r"([\w.~+/=-]+)"
    for width in (8, 16, 24, 40, 64):
        prefix = text[max(0, position - width) : position]
        if not prefix.strip():
            continue
        pattern = r"\s*".join(re.escape(part) for part in prefix.split()) or re.escape(prefix)
        if prefix[:1].isspace():
            pattern = r"\s*" + pattern
        if prefix[-1:].isspace():
            pattern += r"\s*"
        candidate = pattern + body
        try:
            match = re.search(candidate, text)
        except re.error:
            continue
        if match is not None and match.group(1) == value:
            return candidate
    return None


def is_login(entry: Entry, ctx: Context) -> bool:
    """A request that sends the channel's password (a login form or a token request)."""
    password = ctx.credential(_PASSWORD_KEYS)
    if entry.method != "POST" or password is None:
        return False
    fields = entry.form or (entry.json_body if isinstance(entry.json_body, dict) else {})
    return any(str(v) == password[1] for v in fields.values())


def variable_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_").lower() or "value"
    return cleaned if cleaned[0].isalpha() else f"v_{cleaned}"


def _shown(entry: Entry) -> str:
    return urlsplit(entry.url).path or "/"


def window_days(ctx: Context, sources: Sequence[Source]) -> int | None:
    """Days of the recipe's own ``date_range`` when dates were explained without one."""
    if ctx.date_range:
        return None
    for source in sources:
        match = re.match(r"(\d+) days before", source.detail)
        if source.kind == "date" and match:
            return int(match.group(1))
    return None


__all__ = [
    "BROWSER_HEADERS",
    "Context",
    "Slot",
    "Source",
    "date_source",
    "distinctive",
    "explain",
    "find_json_path",
    "from_config",
    "from_responses",
    "hidden_input",
    "is_login",
    "locate",
    "parse_date",
    "request_slots",
    "value_regex",
    "variable_name",
    "window_days",
]
