"""Browser recipes (``kind: browser``): declarative Playwright steps for sites that only
render in a browser.

A recipe logs in when it has a ``login``, opens ``start_url`` and runs its ``steps`` in
order. Every step and every pagination strategy carries a ``type``; :data:`STEP_TYPES` and
:data:`PAGINATION_TYPES` are the name→class tables (pydantic discriminated unions built from
them), so an unknown type is refused with the list of known ones. Example::

    version: 1
    kind: browser
    name: example-orders
    login:
      url: /login
      username_selector: "#user"
      password_selector: "#password"
      submit_selector: "button[type=submit]"
      success: {selector: "#logout"}
    start_url: /orders
    steps:
      - {type: expect, selector: "#orders"}
      - type: paginate
        strategy: {type: click_next, selector: "button.next", content_selector: "#orders"}
        steps:
          - {type: save_page, name: "orders-${page}.html"}

Templates (``${...}``, the recipe engine's :mod:`.recipe.templating`) may use
``config.*``, ``secrets.*``, ``run_date`` and ``page`` (the pagination iteration, 1 outside
any ``paginate``). URLs are relative to the channel URL.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from amazoniax_dagster.core.errors import ConfigError
from amazoniax_dagster.fetchers.recipe.templating import ROOTS, expressions

BROWSER_ROOTS: Mapping[str, frozenset[str] | None] = {
    name: ROOTS[name] for name in ("config", "secrets", "run_date", "page")
}


def _template(text: str) -> str:
    expressions(text, BROWSER_ROOTS)
    return text


Template = Annotated[str, AfterValidator(_template)]
Selector = Annotated[str, Field(min_length=1, max_length=1000)]
Seconds = Annotated[float, Field(gt=0, le=600)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- login -------------------------------------------------------------------------------


class LoginSuccess(_Model):
    """How to tell that the login worked: a selector that appears, and/or a URL part."""

    selector: Selector | None = None
    url_contains: str | None = None

    @model_validator(mode="after")
    def _one(self) -> LoginSuccess:
        if self.selector is None and self.url_contains is None:
            raise ValueError("set selector and/or url_contains")
        return self


class BrowserLogin(_Model):
    """Fill a login form and submit it. A form still shown after submitting = refused."""

    url: Template = ""
    username_selector: Selector
    password_selector: Selector
    submit_selector: Selector
    username: Template = "${secrets.username}"
    password: Template = "${secrets.password}"
    success: LoginSuccess
    timeout_seconds: Seconds | None = None


# --- pagination strategies ---------------------------------------------------------------


class ClickNextPagination(_Model):
    """Click ``selector`` until it is gone, hidden or disabled, or the content stops changing."""

    type: Literal["click_next"]
    selector: Selector
    content_selector: Selector = Field(
        "body", description="the element whose HTML must change after each click"
    )
    wait_seconds: Seconds = Field(10.0, description="how long a click may take to change it")


class ScrollPagination(_Model):
    """Scroll to the bottom until the page stops growing."""

    type: Literal["scroll"]
    item_selector: Selector | None = Field(
        None, description="count these to measure growth (default: the page height)"
    )
    wait_seconds: Seconds = Field(3.0, description="how long new content may take to appear")


PAGINATION_TYPES: dict[str, type[_Model]] = {
    "click_next": ClickNextPagination,
    "scroll": ScrollPagination,
}
Pagination = Annotated[ClickNextPagination | ScrollPagination, Field(discriminator="type")]


# --- steps -------------------------------------------------------------------------------


class GotoStep(_Model):
    type: Literal["goto"]
    url: Template


class FillStep(_Model):
    type: Literal["fill"]
    selector: Selector
    value: Template


class ClickStep(_Model):
    type: Literal["click"]
    selector: Selector


class WaitForStep(_Model):
    """Wait for a selector to be visible, or for a load state of the page."""

    type: Literal["wait_for"]
    selector: Selector | None = None
    load_state: Literal["load", "domcontentloaded", "networkidle"] | None = None
    timeout_seconds: Seconds | None = None

    @model_validator(mode="after")
    def _one(self) -> WaitForStep:
        if (self.selector is None) == (self.load_state is None):
            raise ValueError("set exactly one of selector and load_state")
        return self


class SavePageStep(_Model):
    """Save the rendered DOM as HTML under ``name`` (a template, e.g. ``list-${page}.html``)."""

    type: Literal["save_page"]
    name: Template


class DownloadStep(_Model):
    """Follow each link (``href``) or click each element matching ``selector``; keep the file
    under the server's name (``Content-Disposition``, else the URL's last segment)."""

    type: Literal["download"]
    selector: Selector
    max_files: Annotated[int, Field(ge=1, le=10_000)] = 100


class ExpectStep(_Model):
    """``selector`` must be on the page, else the site changed."""

    type: Literal["expect"]
    selector: Selector
    timeout_seconds: Seconds | None = None


class PaginateStep(_Model):
    """Run ``steps`` on the current page, then advance with ``strategy``, until it ends."""

    type: Literal["paginate"]
    strategy: Pagination
    steps: list[Step] = Field(default_factory=list)
    max_iterations: Annotated[int, Field(ge=1, le=10_000)] = 100


STEP_TYPES: dict[str, type[_Model]] = {
    "goto": GotoStep,
    "fill": FillStep,
    "click": ClickStep,
    "wait_for": WaitForStep,
    "save_page": SavePageStep,
    "download": DownloadStep,
    "paginate": PaginateStep,
    "expect": ExpectStep,
}
Step = Annotated[
    GotoStep
    | FillStep
    | ClickStep
    | WaitForStep
    | SavePageStep
    | DownloadStep
    | PaginateStep
    | ExpectStep,
    Field(discriminator="type"),
]
PaginateStep.model_rebuild()


class BrowserRecipe(_Model):
    version: Literal[1]
    kind: Literal["browser"]
    name: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")]
    description: str | None = None
    start_url: Template = Field("", description="relative to the channel URL; '' = that URL")
    login: BrowserLogin | None = None
    steps: Annotated[list[Step], Field(min_length=1)]


def load_browser_recipe(text: str) -> BrowserRecipe:
    """Parse and validate a YAML browser recipe; ConfigError names each problem's place."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"browser recipe is not valid YAML{at}") from None
    if not isinstance(data, dict):
        raise ConfigError("browser recipe must be a YAML mapping with version, kind, name, ...")
    return parse_browser_recipe(data)


def parse_browser_recipe(data: Mapping[str, Any]) -> BrowserRecipe:
    try:
        return BrowserRecipe.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid browser recipe: {describe_errors(exc)}") from None


def describe_errors(exc: ValidationError) -> str:
    """Each problem as ``steps[2].strategy: message``, without the values found there."""
    problems = []
    for err in exc.errors(include_input=False, include_url=False, include_context=True):
        # pydantic puts the discriminator tag in the location: keep only field names/indexes
        loc = [p for p in err["loc"] if isinstance(p, int) or p not in _TAGS]
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
        ctx = err.get("ctx") or {}
        if err["type"] == "union_tag_invalid":
            message = f"unknown type; known: {ctx.get('expected_tags')}"
        elif err["type"] == "union_tag_not_found":
            message = "missing type"
        else:
            message = str(err["msg"]).removeprefix("Value error, ")
        problems.append(f"{path or 'recipe'}: {message}")
    return "; ".join(problems)


_TAGS = frozenset(STEP_TYPES) | frozenset(PAGINATION_TYPES)

__all__ = [
    "BROWSER_ROOTS",
    "PAGINATION_TYPES",
    "STEP_TYPES",
    "BrowserLogin",
    "BrowserRecipe",
    "ClickNextPagination",
    "ClickStep",
    "DownloadStep",
    "ExpectStep",
    "FillStep",
    "GotoStep",
    "LoginSuccess",
    "PaginateStep",
    "SavePageStep",
    "ScrollPagination",
    "Step",
    "WaitForStep",
    "load_browser_recipe",
    "parse_browser_recipe",
]
