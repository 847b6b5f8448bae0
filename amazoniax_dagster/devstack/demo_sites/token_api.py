"""``token_api``: a reports API behind an OAuth2 client-credentials token.

Channel url: ``/api/reports`` with ``auth_keys`` {``client_id``, ``client_secret``,
``token_url``} and ``api_documentation_path`` = ``/openapi.json`` (which names the token URL
too).

* token: ``POST /oauth/token`` (form ``grant_type=client_credentials``, ``client_id``,
  ``client_secret``; HTTP Basic client auth also accepted) -> ``{"access_token": ...,
  "token_type": "Bearer", "expires_in": 3600}``; bad client -> 401 ``invalid_client``, other
  grant types -> 400. ``expire_tokens()`` invalidates every token issued so far.
* data (``Authorization: Bearer <token>``, else 401 with ``WWW-Authenticate``):
  v1: ``GET /api/reports?offset=0&limit=25`` -> ``{"count": 41, "results": [...]}``.
* v2: page-number style with links: ``GET /api/reports?page=1&page_size=25`` ->
  ``{"count", "next": <absolute url> | null, "previous": ..., "results"}``; ``offset`` and
  ``limit`` are ignored (an old client gets page 1 every time); a page past the end is 404
  ``{"detail": "Invalid page."}``.
* broken: ``{"count": 0, "results": []}``.
"""

from __future__ import annotations

import base64
import binascii
import math
import secrets
import time
from datetime import date
from typing import Any, ClassVar
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from amazoniax_dagster.devstack.demo_sites.base import (
    CITIES,
    DemoSite,
    Record,
    SourceType,
    int_param,
    json_error,
)
from amazoniax_dagster.devstack.demo_sites.login import read_form

CLIENT_ID = "reports-demo-client"
CLIENT_SECRET = "cs_demo_5b1f0e7c9a2d4e68"  # a demo value, public on purpose
TOKEN_TTL_SECONDS = 3600
KINDS = ("Weekly sales", "Stock level", "Returns", "Footfall", "Margin")


class TokenApiSite(DemoSite):
    """OAuth2 client-credentials token, then a Bearer JSON API with offset/limit pagination."""

    name: ClassVar[str] = "token_api"
    source_type: ClassVar[SourceType] = "api"
    base_count: ClassVar[int] = 41
    page_size: ClassVar[int] = 25

    def __init__(self, *, seed: int = 0, anchor: date | None = None) -> None:
        super().__init__(seed=seed, anchor=anchor)
        self.tokens: dict[str, float] = {}  # token -> monotonic expiry

    def reset(self) -> None:
        super().reset()
        self.tokens.clear()

    def expire_tokens(self) -> None:
        """Every token issued so far stops working (as after a key rotation or expiry)."""
        self.tokens.clear()

    def make_record(self, index: int) -> Record:
        rng = self.rng(index)
        return {
            "id": f"rpt_{rng.getrandbits(40):010x}",
            "title": f"{rng.choice(KINDS)} — {rng.choice(CITIES)}",
            "region": rng.choice(CITIES),
            "amount": round(rng.uniform(100, 25000), 2),
            "date": self.record_date(index).isoformat(),
        }

    def channel_config(self, origin: str) -> dict[str, Any]:
        return {
            "url": f"{origin}/api/reports",
            "channel_name": "Demo reports API (client credentials)",
            "api_documentation_path": f"{origin}/openapi.json",
            "auth_keys": {
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "token_url": f"{origin}/oauth/token",
            },
        }

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/oauth/token", self.token, methods=["POST"]),
            Route("/api/reports", self.reports),
            Route("/openapi.json", self.openapi),
        ]

    async def token(self, request: Request) -> Response:
        form = await read_form(request)
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        basic = _basic_credentials(request.headers.get("authorization", ""))
        if basic is not None:
            client_id, client_secret = basic
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        if client_id != CLIENT_ID or not secrets.compare_digest(
            (client_secret or "").encode(), CLIENT_SECRET.encode()
        ):
            return JSONResponse(
                {"error": "invalid_client"},
                status_code=401,
                headers={"WWW-Authenticate": 'Basic realm="token"'},
            )
        token = secrets.token_urlsafe(32)
        self.tokens[token] = time.monotonic() + TOKEN_TTL_SECONDS
        return JSONResponse(
            {"access_token": token, "token_type": "Bearer", "expires_in": TOKEN_TTL_SECONDS},
            headers={"Cache-Control": "no-store"},
        )

    def _authorized(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        expiry = self.tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        return expiry is not None and expiry > time.monotonic()

    async def reports(self, request: Request) -> Response:
        if not self._authorized(request):
            return JSONResponse(
                {"detail": "Authentication credentials were not provided or are invalid."},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        if self.variant == "broken":
            return JSONResponse({"count": 0, "results": []})
        records = self.records()
        params = request.query_params
        if self.variant == "v1":
            try:
                offset = int_param(params.get("offset"), 0, minimum=0)
                limit = int_param(params.get("limit"), self.page_size, maximum=100)
            except ValueError as exc:
                return json_error(400, f"invalid pagination parameter: {exc}")
            return JSONResponse(
                {"count": len(records), "results": records[offset : offset + limit]}
            )
        try:
            page = int_param(params.get("page"), 1)
            size = int_param(params.get("page_size"), self.page_size, maximum=100)
        except ValueError:
            return json_error(404, "Invalid page.")
        pages = max(1, math.ceil(len(records) / size))
        if page > pages:
            return json_error(404, "Invalid page.")
        base = f"{str(request.base_url).rstrip('/')}/api/reports"
        return JSONResponse(
            {
                "count": len(records),
                "next": f"{base}?page={page + 1}&page_size={size}" if page < pages else None,
                "previous": f"{base}?page={page - 1}&page_size={size}" if page > 1 else None,
                "results": records[(page - 1) * size : page * size],
            }
        )

    async def openapi(self, request: Request) -> Response:
        base = str(request.base_url).rstrip("/")
        version = "v2" if self.variant == "v2" else "v1"
        if self.variant == "v2":
            parameters = [
                {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}},
                {"name": "page_size", "in": "query", "schema": {"type": "integer"}},
            ]
        else:
            parameters = [
                {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": 100}},
            ]
        return JSONResponse(
            {
                "openapi": "3.0.3",
                "info": {"title": "Demo reports API", "version": version},
                "servers": [{"url": base}],
                "components": {
                    "securitySchemes": {
                        "oauth": {
                            "type": "oauth2",
                            "flows": {
                                "clientCredentials": {
                                    "tokenUrl": f"{base}/oauth/token",
                                    "scopes": {},
                                }
                            },
                        }
                    }
                },
                "security": [{"oauth": []}],
                "paths": {
                    "/api/reports": {
                        "get": {
                            "summary": "List reports",
                            "parameters": parameters,
                            "responses": {"200": {"description": "A page of reports"}},
                        }
                    }
                },
            }
        )


def _basic_credentials(header: str) -> tuple[str, str] | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (unquote(user), unquote(password)) if sep else None
