"""Declarative HTTP recipes: load a YAML recipe, run it for a channel, get a FetchReport.

    recipe = load_recipe(yaml_text)          # ConfigError lists every problem and where
    report = run_recipe(recipe, ctx, max_retries=3, retry_delay_seconds=30.0)

``kind: http`` recipes are steps of requests (auth, extracts, pagination, saves);
``kind: feed`` recipes read an RSS/Atom feed. ``recipe.schema.json`` next to this file is the
published JSON Schema (``python -m amazoniax_dagster.fetchers.recipe`` rewrites it).
"""

from __future__ import annotations

from amazoniax_dagster.fetchers.recipe.auth import AUTH_TYPES, AuthStrategy, make_auth
from amazoniax_dagster.fetchers.recipe.date_range import DateRange
from amazoniax_dagster.fetchers.recipe.engine import RUNNERS, run_recipe
from amazoniax_dagster.fetchers.recipe.http import (
    CircuitOpenError,
    CredentialsRefusedError,
    HostBreakers,
    Page,
    PreparedRequest,
    SafeClient,
    UnexpectedStatusError,
)
from amazoniax_dagster.fetchers.recipe.paginators import PAGINATOR_TYPES, Paginator, make_paginator
from amazoniax_dagster.fetchers.recipe.schema import (
    RECIPE_ADAPTER,
    SCHEMA_PATH,
    ApiKeyAuth,
    AuthConfig,
    BasicAuth,
    BearerAuth,
    CookieSelector,
    CursorPaginate,
    FeedRecipe,
    GraphqlPaginate,
    HeaderSelector,
    HtmlInputSelector,
    HtmlLinksSelector,
    HttpRecipe,
    JsonSelector,
    LinkHeaderPaginate,
    LoginFormAuth,
    NextUrlPaginate,
    OffsetPaginate,
    PageNumberPaginate,
    PaginateConfig,
    Recipe,
    RegexSelector,
    RequestSpec,
    SaveBody,
    SaveConfig,
    SaveLinks,
    Selector,
    Step,
    TokenEndpointAuth,
    load_recipe,
    recipe_json_schema,
)
from amazoniax_dagster.fetchers.recipe.session import ClientSettings

__all__ = [
    "AUTH_TYPES",
    "PAGINATOR_TYPES",
    "RECIPE_ADAPTER",
    "RUNNERS",
    "SCHEMA_PATH",
    "ApiKeyAuth",
    "AuthConfig",
    "AuthStrategy",
    "BasicAuth",
    "BearerAuth",
    "CircuitOpenError",
    "ClientSettings",
    "CookieSelector",
    "CredentialsRefusedError",
    "CursorPaginate",
    "DateRange",
    "FeedRecipe",
    "GraphqlPaginate",
    "HeaderSelector",
    "HostBreakers",
    "HtmlInputSelector",
    "HtmlLinksSelector",
    "HttpRecipe",
    "JsonSelector",
    "LinkHeaderPaginate",
    "LoginFormAuth",
    "NextUrlPaginate",
    "OffsetPaginate",
    "Page",
    "PageNumberPaginate",
    "PaginateConfig",
    "Paginator",
    "PreparedRequest",
    "Recipe",
    "RegexSelector",
    "RequestSpec",
    "SafeClient",
    "SaveBody",
    "SaveConfig",
    "SaveLinks",
    "Selector",
    "Step",
    "TokenEndpointAuth",
    "UnexpectedStatusError",
    "load_recipe",
    "make_auth",
    "make_paginator",
    "recipe_json_schema",
    "run_recipe",
]
