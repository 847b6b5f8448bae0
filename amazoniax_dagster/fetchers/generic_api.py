"""The generic API fetcher: an ``api`` channel with a plain config — an endpoint URL
and ``auth_keys`` — runs a recipe built from that config, no site fetcher needed.

Auth comes from the names of ``auth_keys``: ``token``/``access_token``/``bearer_token`` →
bearer; ``api_key``/``x-api-key``/``apikey``/``key`` → an API key header; ``username`` +
``password`` → basic; ``client_id`` + ``client_secret`` (+ ``token_url``) → a token endpoint.
With ``api_documentation_path`` (an OpenAPI 3 document, by URL or relative to the channel
URL), the endpoint, its auth scheme, its page/offset/cursor parameters and the list of
records come from the document instead. Pages are followed through ``Link`` headers
otherwise.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urljoin, urlsplit

import yaml

from amazoniax_dagster.core.errors import ConfigError
from amazoniax_dagster.core.messages import WebSourceConfig
from amazoniax_dagster.core.netpolicy import NetworkPolicy
from amazoniax_dagster.core.redaction import redact_url
from amazoniax_dagster.fetchers.base import LoadedFetcher
from amazoniax_dagster.fetchers.loader import RecipeFetcher

log = logging.getLogger(__name__)

NAME = "generic_api"
_BEARER_KEYS = ("token", "access_token", "bearer_token", "bearer", "api_token")
_API_KEY_KEYS = ("api_key", "x-api-key", "x_api_key", "apikey", "key")
_MAX_DOCUMENT_BYTES = 5 * 1024 * 1024


def generic_api_fetcher(
    config: WebSourceConfig, *, policy: NetworkPolicy | None = None
) -> LoadedFetcher:
    from amazoniax_dagster.fetchers.recipe.schema import RECIPE_ADAPTER

    document = None
    if config.api_documentation_path:
        document = fetch_openapi(config, policy or NetworkPolicy())
    spec = generic_recipe(config, document)
    recipe = RECIPE_ADAPTER.validate_python(spec)
    return LoadedFetcher(NAME, RecipeFetcher(recipe), how="generic")


def generic_recipe(config: WebSourceConfig, openapi: dict[str, Any] | None) -> dict[str, Any]:
    """The recipe (as data) for a plain API config, optionally described by OpenAPI."""
    keys = {k.lower(): k for k in (config.auth_keys or {})}
    step: dict[str, Any] = {
        "name": "data",
        "request": {"url": "${config.url}"},
        "paginate": {"type": "link_header"},
        "save": [{"type": "body", "name": "data_${page}.${ext}"}],
    }
    auth = _auth_from_keys(keys)
    if openapi is not None:
        endpoint = _openapi_endpoint(config, openapi)
        step["request"]["url"] = endpoint.url
        if endpoint.records:
            step["records"] = endpoint.records
        step["paginate"] = endpoint.paginate or {"type": "link_header"}
        auth = _openapi_auth(openapi, endpoint.security, keys) or auth
    recipe: dict[str, Any] = {"version": 1, "kind": "http", "name": NAME, "steps": [step]}
    if auth:
        recipe["auth"] = auth
    return recipe


def _auth_from_keys(keys: dict[str, str]) -> dict[str, Any] | None:
    for candidate in _BEARER_KEYS:
        if candidate in keys:
            return {"type": "bearer", "token": f"${{secrets.{keys[candidate]}}}"}
    for candidate in _API_KEY_KEYS:
        if candidate in keys:
            return {
                "type": "api_key",
                "name": "X-API-Key",
                "value": f"${{secrets.{keys[candidate]}}}",
            }
    if "username" in keys and "password" in keys:
        return {
            "type": "basic",
            "username": f"${{secrets.{keys['username']}}}",
            "password": f"${{secrets.{keys['password']}}}",
        }
    if "client_id" in keys and "client_secret" in keys and "token_url" in keys:
        return {
            "type": "token_endpoint",
            "token_url": f"${{secrets.{keys['token_url']}}}",
            "body": {
                "grant_type": "client_credentials",
                "client_id": f"${{secrets.{keys['client_id']}}}",
                "client_secret": f"${{secrets.{keys['client_secret']}}}",
            },
        }
    if len(keys) == 1:  # one unnamed secret: the common case is a bearer token
        (only,) = keys.values()
        return {"type": "bearer", "token": f"${{secrets.{only}}}"}
    return None


class _Endpoint:
    def __init__(
        self, url: str, records: str | None, paginate: dict[str, Any] | None, security: list[str]
    ) -> None:
        self.url, self.records, self.paginate, self.security = url, records, paginate, security


def _openapi_endpoint(config: WebSourceConfig, doc: dict[str, Any]) -> _Endpoint:
    paths = doc.get("paths")
    if not isinstance(paths, dict) or not paths:
        raise ConfigError("the API documentation has no paths")
    base = _server_url(config, doc)
    wanted = urlsplit(config.url).path.rstrip("/")
    gets = [
        (path, item["get"])
        for path, item in paths.items()
        if isinstance(item, dict) and isinstance(item.get("get"), dict) and "{" not in path
    ]
    if not gets:
        raise ConfigError("the API documentation has no GET endpoint without path parameters")
    # The endpoint the channel URL names, else the first that returns a list of records.
    chosen = next(
        ((p, op) for p, op in gets if (base.rstrip("/") + p).endswith(wanted) and wanted),
        None,
    ) or next(((p, op) for p, op in gets if _records_path(op, doc) is not None), gets[0])
    path, operation = chosen
    records = _records_path(operation, doc)
    params = {
        p.get("name", "").lower(): p.get("name", "")
        for p in operation.get("parameters", [])
        if isinstance(p, dict) and p.get("in") == "query"
    }
    security = [
        name
        for requirement in operation.get("security", doc.get("security", [])) or []
        if isinstance(requirement, dict)
        for name in requirement
    ]
    return _Endpoint(
        urljoin(base.rstrip("/") + "/", path.lstrip("/")),
        records,
        _paginate(params, operation, doc, records),
        security,
    )


def _server_url(config: WebSourceConfig, doc: dict[str, Any]) -> str:
    servers = doc.get("servers") or []
    first = servers[0].get("url") if servers and isinstance(servers[0], dict) else None
    origin = "{0.scheme}://{0.netloc}/".format(urlsplit(config.url))
    return urljoin(origin, first) if isinstance(first, str) else origin


def _schema(node: Any, doc: dict[str, Any], depth: int = 0) -> dict[str, Any]:
    """Follow local ``$ref``s (``#/components/schemas/X``)."""
    while isinstance(node, dict) and "$ref" in node and depth < 20:
        ref = str(node["$ref"])
        if not ref.startswith("#/"):
            return {}
        target: Any = doc
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        node, depth = target, depth + 1
    return node if isinstance(node, dict) else {}


def _response_schema(operation: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    responses = operation.get("responses") or {}
    ok = responses.get("200") or responses.get(200) or {}
    content = _schema(ok, doc).get("content") or {}
    media: Any = content.get("application/json") or next(iter(content.values()), {})
    return _schema(media.get("schema") if isinstance(media, dict) else None, doc)


def _records_path(operation: dict[str, Any], doc: dict[str, Any]) -> str | None:
    schema = _response_schema(operation, doc)
    if schema.get("type") == "array":
        return "$"
    for name, prop in (schema.get("properties") or {}).items():
        if _schema(prop, doc).get("type") == "array":
            return str(name)
    return None


def _paginate(
    params: dict[str, str],
    operation: dict[str, Any],
    doc: dict[str, Any],
    records: str | None,
) -> dict[str, Any] | None:
    if records is None:
        return None  # without a record list no paginator knows when to stop
    if "page" in params:
        return {"type": "page_number", "param": params["page"], "start": 1}
    if "offset" in params:
        limit = params.get("limit")
        return {"type": "offset", "param": params["offset"], "limit": 100, "limit_param": limit}
    for name in ("cursor", "after", "page_token", "next_token"):
        if name in params:
            props = _response_schema(operation, doc).get("properties") or {}
            source = next(
                (p for p in props if p.lower() in ("next_cursor", "nextcursor", "next", "cursor")),
                None,
            )
            if source:
                return {"type": "cursor", "param": params[name], "cursor_path": source}
    return None


def _openapi_auth(
    doc: dict[str, Any], security: list[str], keys: dict[str, str]
) -> dict[str, Any] | None:
    schemes = (doc.get("components") or {}).get("securitySchemes") or {}
    for name in security or list(schemes):
        scheme = _schema(schemes.get(name), doc)
        kind = scheme.get("type")
        secret = keys.get(name.lower()) or next(iter(keys.values()), None)
        if secret is None:
            return None
        if kind == "http" and str(scheme.get("scheme", "")).lower() == "bearer":
            return {"type": "bearer", "token": f"${{secrets.{secret}}}"}
        if kind == "http" and str(scheme.get("scheme", "")).lower() == "basic":
            return _auth_from_keys(keys)
        if kind == "apiKey" and scheme.get("in") in ("header", "query"):
            return {
                "type": "api_key",
                "name": str(scheme.get("name", "X-API-Key")),
                "value": f"${{secrets.{secret}}}",
                "location": scheme["in"],
            }
        if kind == "oauth2":
            flow = (scheme.get("flows") or {}).get("clientCredentials") or {}
            if flow.get("tokenUrl") and "client_id" in keys and "client_secret" in keys:
                return {
                    "type": "token_endpoint",
                    "token_url": str(flow["tokenUrl"]),
                    "body": {
                        "grant_type": "client_credentials",
                        "client_id": f"${{secrets.{keys['client_id']}}}",
                        "client_secret": f"${{secrets.{keys['client_secret']}}}",
                    },
                }
    return None


def fetch_openapi(config: WebSourceConfig, policy: NetworkPolicy) -> dict[str, Any]:
    """The OpenAPI document named by ``api_documentation_path``: a URL, or a path relative
    to the channel URL. Local files are never read: the path comes from a message."""
    import httpx

    assert config.api_documentation_path
    url = urljoin(config.url, config.api_documentation_path)
    policy.check_url(url)
    try:
        with httpx.Client(timeout=30.0, follow_redirects=False) as client:
            response = client.get(url)
    except httpx.HTTPError as exc:
        raise ConfigError(
            f"could not read the API documentation at {redact_url(url)}: {exc}"
        ) from exc
    if response.status_code != 200:
        raise ConfigError(
            f"the API documentation at {redact_url(url)} answered {response.status_code}"
        )
    if len(response.content) > _MAX_DOCUMENT_BYTES:
        raise ConfigError("the API documentation is larger than 5 MiB")
    try:
        document = (
            json.loads(response.content)
            if response.content.lstrip()[:1] in (b"{", b"[")
            else yaml.safe_load(response.content)
        )
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigError("the API documentation is neither JSON nor YAML") from exc
    if not isinstance(document, dict) or "paths" not in document:
        raise ConfigError("the API documentation is not an OpenAPI document (no paths)")
    log.info("generic API fetcher: using the OpenAPI document at %s", redact_url(url))
    return document
