"""The recipe schema: pydantic models, the YAML loader and the published JSON Schema.

A recipe is a YAML document with ``version: 1``, a ``kind`` (``http``: steps of requests;
``feed``: an RSS/Atom feed) and a ``name``. Every strategy (auth, paginator, selector, save)
carries a ``type``; the models are discriminated unions on it, so an unknown type is refused
with the list of known ones. Templates (``${...}``, see :mod:`.templating`) are checked here,
at load time. Regenerate the published schema with
``python -m amazoniax_dagster.fetchers.recipe``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    Field,
    JsonValue,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from amazoniax_dagster.core.errors import ConfigError
from amazoniax_dagster.fetchers.recipe.date_range import DateRange
from amazoniax_dagster.fetchers.recipe.fields import (
    JsonPath,
    Model,
    Name,
    NameTemplate,
    RateLimit,
    Regex,
    Template,
    VariableName,
    json_templates,
)
from amazoniax_dagster.fetchers.recipe.incremental import Incremental
from amazoniax_dagster.fetchers.recipe.templating import (
    SAVE_NAME_ROOTS,
    expressions,
    template_strings,
)

SCHEMA_PATH = Path(__file__).with_name("recipe.schema.json")


# --- auth --------------------------------------------------------------------------------


class _AuthBase(Model):
    # Credentials go to the channel URL's host, the hosts of the steps' own request URLs and
    # these hosts; never to a host that only a response named (links, next URLs).
    hosts: list[str] = Field(default_factory=list)


class BasicAuth(_AuthBase):
    type: Literal["basic"]
    username: Template = "${secrets.username}"
    password: Template = "${secrets.password}"


class BearerAuth(_AuthBase):
    type: Literal["bearer"]
    token: Template = "${secrets.token}"


class ApiKeyAuth(_AuthBase):
    type: Literal["api_key"]
    name: str = Field(description="header or query parameter name, e.g. X-Api-Key")
    value: Template = "${secrets.api_key}"
    location: Literal["header", "query"] = "header"


class LoginFormAuth(_AuthBase):
    """GET the login page, POST its form with the hidden inputs and ``fields``; keep cookies."""

    type: Literal["login_form"]
    login_url: Template = "${config.url}"
    fields: dict[str, Template] = Field(
        default_factory=lambda: {
            "username": "${secrets.username}",
            "password": "${secrets.password}",
        }
    )
    submit_url: Template | None = Field(default=None, description="default: the form's action")
    failure_marker: Regex | None = Field(default=None, description="found in the reply = refused")


class TokenEndpointAuth(_AuthBase):
    """POST credentials to a token endpoint, send the token as a header; refresh on 401."""

    type: Literal["token_endpoint"]
    token_url: Template
    body: dict[str, Template] = Field(
        default_factory=lambda: {
            "grant_type": "client_credentials",
            "client_id": "${secrets.client_id}",
            "client_secret": "${secrets.client_secret}",
        }
    )
    body_format: Literal["form", "json"] = "form"
    token_path: JsonPath = "access_token"
    header: str = "Authorization"
    scheme: str = "Bearer"


AuthConfig = Annotated[
    BasicAuth | BearerAuth | ApiKeyAuth | LoginFormAuth | TokenEndpointAuth,
    Field(discriminator="type"),
]

# --- pagination --------------------------------------------------------------------------


class _PaginateBase(Model):
    """Stop rules every paginator has, besides an empty or repeated page."""

    has_more_path: JsonPath | None = Field(default=None, description="stop when this is false")
    total_path: JsonPath | None = Field(
        default=None, description="stop when this many records seen"
    )
    total_pages_path: JsonPath | None = Field(
        default=None, description="stop after this many pages"
    )


class PageNumberPaginate(_PaginateBase):
    type: Literal["page_number"]
    param: str | None = Field(default="page", description="None: only ${page} in templates")
    start: int = 1
    page_size: Annotated[int, Field(ge=1)] | None = None
    page_size_param: str | None = None


class OffsetPaginate(_PaginateBase):
    type: Literal["offset"]
    param: str | None = "offset"
    limit: Annotated[int, Field(ge=1)]
    limit_param: str | None = "limit"
    start: Annotated[int, Field(ge=0)] = 0


class CursorPaginate(_PaginateBase):
    type: Literal["cursor"]
    cursor_path: JsonPath | None = None
    cursor_header: str | None = None
    param: str | None = "cursor"

    @model_validator(mode="after")
    def _one_source(self) -> CursorPaginate:
        if (self.cursor_path is None) == (self.cursor_header is None):
            raise ValueError("set exactly one of cursor_path and cursor_header")
        return self


class LinkHeaderPaginate(_PaginateBase):
    """Follow the URL of relation ``rel``: a ``Link`` header, or an XML reply's ``<link>``."""

    type: Literal["link_header"]
    rel: str = "next"


class NextUrlPaginate(_PaginateBase):
    type: Literal["next_url"]
    next_url_path: JsonPath


class GraphqlPaginate(_PaginateBase):
    type: Literal["graphql"]
    end_cursor_path: JsonPath
    has_next_path: JsonPath
    cursor_variable: str = "after"


PaginateConfig = Annotated[
    PageNumberPaginate
    | OffsetPaginate
    | CursorPaginate
    | LinkHeaderPaginate
    | NextUrlPaginate
    | GraphqlPaginate,
    Field(discriminator="type"),
]

# --- selectors: where extracted values and file links come from ---------------------------


class _SelectorBase(Model):
    required: bool = Field(default=True, description="nothing found = the site changed")


class JsonSelector(_SelectorBase):
    type: Literal["json"]
    path: JsonPath


class RegexSelector(_SelectorBase):
    type: Literal["regex"]
    pattern: Regex
    group: int | str = Field(default=1, description="ignored when the pattern has no group")


class HeaderSelector(_SelectorBase):
    type: Literal["header"]
    name: str


class CookieSelector(_SelectorBase):
    type: Literal["cookie"]
    name: str


class HtmlInputSelector(_SelectorBase):
    type: Literal["html_input"]
    name: str = Field(description="the value of <input name=...>, e.g. a CSRF token")


class HtmlLinksSelector(_SelectorBase):
    type: Literal["html_links"]
    pattern: Regex = Field(default=".", description="hrefs of <a> that match (re.search)")


Selector = Annotated[
    JsonSelector
    | RegexSelector
    | HeaderSelector
    | CookieSelector
    | HtmlInputSelector
    | HtmlLinksSelector,
    Field(discriminator="type"),
]
LinkSelector = Annotated[
    JsonSelector | RegexSelector | HtmlLinksSelector, Field(discriminator="type")
]

# --- steps ---------------------------------------------------------------------------------


class SaveBody(Model):
    type: Literal["body"]
    name: NameTemplate | None = Field(default=None, description="default ${step}_${page}.${ext}")


class FollowPages(Model):
    """What to take from each page a ``links`` save opens (a list's detail pages)."""

    select: LinkSelector | None = Field(default=None, description="data-file links to download")
    save_page: bool = Field(default=False, description="also keep each detail page itself")

    @model_validator(mode="after")
    def _takes_something(self) -> FollowPages:
        if self.select is None and not self.save_page:
            raise ValueError("follow needs a select, save_page: true, or both")
        return self


class SaveLinks(Model):
    """Download every linked file, named as the server names it; with ``follow``, the links
    are pages on the same host (a list's items): open each and take what ``follow`` says."""

    type: Literal["links"]
    select: LinkSelector
    follow: FollowPages | None = None


class SaveSitemap(Model):
    """Download every page the reply's sitemaps list (robots.txt ``Sitemap:`` lines, sitemap
    index files and sitemaps, read in turn), named after the page's last path segment."""

    type: Literal["sitemap"]
    pattern: Regex = Field(default=".", description="page URLs that match (re.search)")
    max_sitemaps: Annotated[int, Field(ge=1)] = Field(default=50, description="documents read")


SaveConfig = Annotated[SaveBody | SaveLinks | SaveSitemap, Field(discriminator="type")]


class RequestSpec(Model):
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    url: Template = Field(description="relative URLs resolve against config.url")
    headers: dict[str, Template] = Field(default_factory=dict)
    query: dict[str, Template] = Field(default_factory=dict)
    json_body: Annotated[JsonValue, AfterValidator(json_templates)] = Field(
        default=None, alias="json"
    )
    form: dict[str, Template] | None = None

    @model_validator(mode="after")
    def _one_body(self) -> RequestSpec:
        if self.json_body is not None and self.form is not None:
            raise ValueError("set at most one of json and form")
        return self


class Step(Model):
    name: Name
    request: RequestSpec
    extract: dict[VariableName, Selector] = Field(default_factory=dict)
    records: JsonPath | None = Field(
        default=None, description="the list of records in a JSON reply"
    )
    paginate: PaginateConfig | None = None
    save: list[SaveConfig] = Field(default_factory=list)
    incremental: Incremental | None = Field(
        default=None, description="ask only for records after the last successful job's"
    )

    def templates(self) -> list[str]:
        request = self.request.model_dump(by_alias=True, exclude={"method"})
        names = [s.name for s in self.save if isinstance(s, SaveBody) and s.name]
        return template_strings(request) + names


# --- recipes ---------------------------------------------------------------------------------


_STATIC_ROOTS = frozenset({"config", "secrets", "window", "run_date"})


class _RecipeBase(Model):
    version: Literal[1]
    name: Name
    description: str | None = None
    rate_limit: RateLimit = Field(default="10/second", description="per host, moving window")
    headers: dict[str, Template] = Field(default_factory=dict, description="on every request")
    auth: AuthConfig | None = None
    date_range: DateRange | None = Field(
        default=None, description="used when the channel's navigation_details has no date_range"
    )

    def static_problems(self) -> list[str]:
        auth = self.auth.model_dump(exclude={"failure_marker", "token_path"}) if self.auth else {}
        return _static_problems("auth", template_strings(auth)) + _static_problems(
            "headers", list(self.headers.values())
        )


class HttpRecipe(_RecipeBase):
    """Steps of HTTP requests, run in order; later steps may use earlier extracts."""

    kind: Literal["http"]
    steps: Annotated[list[Step], Field(min_length=1)]

    @model_validator(mode="after")
    def _consistent(self) -> HttpRecipe:
        problems = self.static_problems() + _step_problems(self.steps)
        if problems:
            raise ValueError("; ".join(problems))
        return self


class FeedRecipe(_RecipeBase):
    """An RSS/Atom feed: unique entries saved as JSON, optionally the document and files."""

    kind: Literal["feed"]
    url: Template = "${config.url}"
    entries_name: NameTemplate = "entries.json"
    save_document: bool = False
    document_name: NameTemplate = "feed.${ext}"
    download: Literal["none", "link", "enclosure"] = "none"
    incremental: Incremental | None = Field(
        default=None, description="keep only entries after the last successful job's"
    )

    @model_validator(mode="after")
    def _consistent(self) -> FeedRecipe:
        problems = self.static_problems() + _static_problems("url", [self.url])
        if self.incremental:
            problems += _incremental_problems("incremental", self.incremental)
            if self.incremental.cursor_path not in _FEED_CURSORS:
                known = ", ".join(_FEED_CURSORS)
                problems.append(f"incremental.cursor_path: a feed entry's is one of {known}")
        if problems:
            raise ValueError("; ".join(problems))
        return self


# Add a kind here (and its runner in engine.RUNNERS) to extend recipes, e.g. browser recipes.
Recipe = Annotated[HttpRecipe | FeedRecipe, Field(discriminator="kind")]
RECIPE_ADAPTER: TypeAdapter[HttpRecipe | FeedRecipe] = TypeAdapter(Recipe)


_FEED_CURSORS = ("updated", "published")


def _step_problems(steps: list[Step]) -> list[str]:
    problems: list[str] = []
    incremental = [index for index, step in enumerate(steps) if step.incremental]
    if len(incremental) > 1:
        problems.append(
            f"steps[{incremental[1]}].incremental: a channel keeps one checkpoint, "
            f"and steps[{incremental[0]}] already has incremental"
        )
    extracted: set[str] = set()
    names: set[str] = set()
    for index, step in enumerate(steps):
        where = f"steps[{index}]"
        if step.name in names:
            problems.append(f"{where}.name: another step is also called {step.name!r}")
        names.add(step.name)
        for text in step.templates():
            for expr in expressions(text, SAVE_NAME_ROOTS):
                if expr.root == "extract" and expr.name not in extracted:
                    problems.append(
                        f"{where}: uses ${{{expr.ref}}}, which no earlier step extracts"
                    )
                if expr.root == "incremental" and step.incremental is None:
                    problems.append(f"{where}: uses ${{{expr.ref}}} without incremental")
        if step.incremental:
            problems += _incremental_problems(f"{where}.incremental", step.incremental)
            if step.records is None:
                problems.append(f"{where}.incremental: needs records (the list the cursor is in)")
            paged = isinstance(step.paginate, PageNumberPaginate | OffsetPaginate)
            if step.incremental.cursor_type == "page" and not paged:
                problems.append(f"{where}.incremental: a page cursor needs page_number or offset")
        extracted.update(step.extract)
        paginate = step.paginate
        items = any(isinstance(save, SaveLinks) and save.follow for save in step.save)
        stops = (step.records, items, *(_stop_paths(paginate) if paginate else ()))
        if isinstance(paginate, PageNumberPaginate | OffsetPaginate) and not any(stops):
            problems.append(
                f"{where}.paginate: a {paginate.type} paginator needs records, has_more_path, "
                "total_path, total_pages_path or a links save with follow (its items) to know "
                "where to stop"
            )
    return problems


def _incremental_problems(where: str, spec: Incremental) -> list[str]:
    """The initial value is rendered before any request: no page or extract."""
    initial = [spec.initial_value] if spec.initial_value else []
    return _static_problems(f"{where}.initial_value", initial)


def _stop_paths(paginate: _PaginateBase) -> tuple[str | None, ...]:
    return (paginate.has_more_path, paginate.total_path, paginate.total_pages_path)


def _static_problems(where: str, texts: list[str]) -> list[str]:
    """Auth, shared headers and feed URLs are rendered before any step: no page or extract."""
    used = {expr.root for text in texts for expr in expressions(text)}
    if used - _STATIC_ROOTS:
        allowed = ", ".join(sorted(_STATIC_ROOTS))
        return [f"{where}: templates there may only use {allowed}"]
    return []


def load_recipe(text: str) -> Recipe:
    """Parse and validate a YAML recipe; ConfigError lists every problem and where it is.

    Messages name fields and positions only, never the values found there.
    """
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"recipe is not valid YAML: {exc.problem}{at}") from None
    except yaml.YAMLError:
        raise ConfigError("recipe is not valid YAML") from None
    if not isinstance(data, dict):
        raise ConfigError("recipe must be a YAML mapping with version, kind, name, ...")
    try:
        return RECIPE_ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid recipe: {describe_errors(exc)}") from None


def describe_errors(exc: ValidationError) -> str:
    """Each error as ``field.path[0].x: message``, without the input values."""
    problems = []
    for err in exc.errors(include_input=False, include_url=False):
        loc: list[Any] = list(err["loc"])
        if loc and loc[0] in {"http", "feed"}:  # the kind tag pydantic puts first
            loc = loc[1:]
        ctx = err.get("ctx") or {}
        message = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            field = str(ctx.get("discriminator", "type")).strip("'")
            loc.append(field)
            known = ctx.get("expected_tags") or ""
            message = f"unknown {field}; known: {known}" if known else f"missing {field}"
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
        problems.append(f"{path}: {message}" if path else message)
    return "; ".join(problems)


def recipe_json_schema() -> dict[str, Any]:
    """The JSON Schema of :data:`Recipe`, as committed in ``recipe.schema.json``."""
    schema = RECIPE_ADAPTER.json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "amazoniax recipe"
    return schema


def write_json_schema(path: Path = SCHEMA_PATH) -> None:
    path.write_text(json.dumps(recipe_json_schema(), indent=2, sort_keys=True) + "\n")
