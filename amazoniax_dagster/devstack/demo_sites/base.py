"""What every demo site shares: its variant, fault injection, the request log, seeded records.

A :class:`DemoSite` is an ASGI app whose behaviour can be changed while it is served, at the
same address (the site's identity, ``host:port``, never changes):

* ``variant`` — ``"v1"`` (default), ``"v2"`` (a realistic redesign: moved endpoint, renamed
  parameter, new markup) or ``"broken"`` (the data disappears: no correct fetcher can reproduce
  the site's history, so validation of any candidate must fail);
* ``fail_next(n, ...)`` — the next ``n`` requests get an error status (a fault storm);
* ``requests`` — every request received, as ``(method, path?query)``;
* ``advance(n)`` — ``n`` new records appear (dated on the anchor day), as on a live site;
* ``ground_truth()`` — the records served in the current variant, each with an ``id`` whose
  value appears verbatim in whatever the site serves (JSON, CSV, XML or HTML).

Records are deterministic: record ``i`` of a site depends only on (site name, seed, i), and its
date is relative to ``anchor`` (today unless given), so date-range filters behave as they would
on a real site on the day of the run.
"""

from __future__ import annotations

import abc
import base64
import binascii
import random
import threading
from dataclasses import dataclass
from datetime import date, timedelta
from http import HTTPStatus
from typing import Any, ClassVar, Literal, Protocol

from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

Variant = Literal["v1", "v2", "broken"]
VARIANTS: tuple[Variant, ...] = ("v1", "v2", "broken")
SourceType = Literal["api", "html"]
Record = dict[str, Any]

ADJECTIVES = (
    "Amber", "Brisk", "Cedar", "Dusk", "Ember", "Fjord", "Granite", "Harbor", "Indigo",
    "Juniper", "Kestrel", "Linen", "Maple", "Nimbus", "Onyx", "Pine", "Quartz", "Russet",
)  # fmt: skip
NOUNS = (
    "Lamp", "Kettle", "Chair", "Desk", "Mug", "Backpack", "Blanket", "Clock", "Teapot",
    "Notebook", "Speaker", "Vase", "Jacket", "Bottle", "Planter", "Toaster",
)  # fmt: skip
PEOPLE = (
    "Ada Byrne", "Bruno Costa", "Chen Wei", "Dara Okafor", "Elif Yilmaz", "Farah Haddad",
    "Goran Petrov", "Hana Sato", "Ines Duarte", "Jonas Berg", "Kavya Rao", "Liam Walsh",
)  # fmt: skip
CITIES = ("Lisbon", "Leeds", "Lyon", "Leipzig", "Ljubljana", "Lublin", "Lugano", "Lucerne")


def encode_cursor(kind: str, index: int) -> str:
    """An opaque cursor (base64url of ``kind:index``), as APIs hand out."""
    return base64.urlsafe_b64encode(f"{kind}:{index}".encode()).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str) -> int | None:
    """The index inside a cursor of ``kind``; None for anything that is not one."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    prefix, _, number = text.partition(":")
    if prefix != kind or not number.isdigit():
        return None
    return int(number)


def int_param(value: str | None, default: int, *, minimum: int = 1, maximum: int = 10**9) -> int:
    """A query parameter as an int; the default when absent; ValueError when out of range."""
    if value is None or value == "":
        return default
    number = int(value)
    if not minimum <= number <= maximum:
        raise ValueError(f"{number} is not within [{minimum}, {maximum}]")
    return number


def json_error(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


@dataclass
class _Fault:
    remaining: int
    status: int
    retry_after: str | None
    path_prefix: str | None


class DemoSite(abc.ABC):
    """One demo website; subclasses supply records, routes and the channel config."""

    name: ClassVar[str]
    source_type: ClassVar[SourceType]
    base_count: ClassVar[int]  # records before any advance()
    span_days: ClassVar[int] = 60  # the base records are spread over this many days

    def __init__(self, *, seed: int = 0, anchor: date | None = None) -> None:
        self.seed = seed
        self.anchor = anchor or date.today()
        self.requests: list[tuple[str, str]] = []
        self._variant: Variant = "v1"
        self._faults: list[_Fault] = []
        self._added = 0
        self._lock = threading.Lock()
        self._app: ASGIApp | None = None

    # -- runtime state ---------------------------------------------------------------------

    @property
    def variant(self) -> Variant:
        return self._variant

    @variant.setter
    def variant(self, value: Variant) -> None:
        if value not in VARIANTS:
            raise ValueError(f"unknown variant {value!r}; known: {', '.join(VARIANTS)}")
        self._variant = value

    def fail_next(
        self,
        n: int,
        status: int = 503,
        retry_after: str | None = "0",
        *,
        path_prefix: str | None = None,
    ) -> None:
        """Answer the next ``n`` requests (those whose path starts with ``path_prefix``, if
        given) with ``status`` and a ``Retry-After`` header (none when ``retry_after`` is None).
        Calls queue up: ``fail_next(2, 503); fail_next(1, 429)`` fails 3 requests in that order.
        """
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        with self._lock:
            self._faults.append(_Fault(n, status, retry_after, path_prefix))

    @property
    def pending_faults(self) -> int:
        with self._lock:
            return sum(f.remaining for f in self._faults)

    def advance(self, n: int = 1) -> None:
        """``n`` new records appear, dated on the anchor day (the newest)."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        self._added += n

    def reset(self) -> None:
        """Back to the state after construction: v1, no faults, empty log, base records.
        Subclasses extend it to drop their sessions and tokens."""
        with self._lock:
            self._faults.clear()
        self._variant = "v1"
        self._added = 0
        self.requests.clear()

    # -- records -----------------------------------------------------------------------------

    @property
    def record_count(self) -> int:
        return self.base_count + self._added

    def rng(self, index: int) -> random.Random:
        return random.Random(f"{self.name}:{self.seed}:{index}")

    def record_date(self, index: int) -> date:
        """Record 0 is the oldest; records added by advance() are dated on the anchor day."""
        if index >= self.base_count or self.base_count == 1:
            return self.anchor
        days_ago = (self.base_count - 1 - index) * self.span_days // (self.base_count - 1)
        return self.anchor - timedelta(days=days_ago)

    @abc.abstractmethod
    def make_record(self, index: int) -> Record:
        """Record ``index``, deterministic; must have an ``id``."""

    def records(self) -> list[Record]:
        """All records the site holds, oldest first (what v1 and v2 serve)."""
        return [self.make_record(i) for i in range(self.record_count)]

    def ground_truth(self) -> list[Record]:
        """The records served in the current variant; ``[]`` when broken."""
        return [] if self._variant == "broken" else self.records()

    # -- the web side ------------------------------------------------------------------------

    @abc.abstractmethod
    def routes(self) -> list[BaseRoute]:
        """The site's routes; handlers read ``self.variant`` on every request."""

    @abc.abstractmethod
    def channel_config(self, origin: str) -> dict[str, Any]:
        """The html/api channel config a user would send for this site served at ``origin``.
        It does not depend on the variant: users do not edit configs when a site changes."""

    @property
    def app(self) -> ASGIApp:
        if self._app is None:
            self._app = Starlette(routes=self.routes())
        return self._app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Log the request, inject a pending fault, else hand over to the site's routes."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw_path = scope.get("raw_path") or scope["path"].encode()
        target = raw_path.decode("latin-1")
        if scope.get("query_string"):
            target += "?" + scope["query_string"].decode("latin-1")
        self.requests.append((scope["method"], target))
        fault = self._take_fault(target)
        if fault is None:
            await self.app(scope, receive, send)
            return
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        response: Response = PlainTextResponse(
            f"{fault.status} {_phrase(fault.status)}\n", fault.status, headers=headers
        )
        await response(scope, receive, send)

    def _take_fault(self, target: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.remaining and (
                    fault.path_prefix is None or target.startswith(fault.path_prefix)
                ):
                    fault.remaining -= 1
                    return fault
            self._faults = [f for f in self._faults if f.remaining]
            return None


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class ServedSite(Protocol):
    """A demo site being served (``server.RunningSite``), as the catalogue sees it."""

    site: DemoSite

    @property
    def origin(self) -> str: ...
