"""Field types every recipe model shares: checked templates, JSON paths, regexes, rates."""

from __future__ import annotations

import re
from typing import Annotated

import limits
from pydantic import AfterValidator, BaseModel, ConfigDict, JsonValue, StringConstraints

from amazoniax_dagster.fetchers.recipe import jsonpath
from amazoniax_dagster.fetchers.recipe.templating import (
    ROOTS,
    SAVE_NAME_ROOTS,
    expressions,
    template_strings,
)


def _template(text: str) -> str:
    expressions(text, ROOTS)
    return text


def _name_template(text: str) -> str:
    expressions(text, SAVE_NAME_ROOTS)
    return text


def json_templates(data: JsonValue) -> JsonValue:
    for text in template_strings(data):
        expressions(text, ROOTS)
    return data


def _json_path(text: str) -> str:
    jsonpath.parse_path(text)
    return text


def _regex(text: str) -> str:
    try:
        re.compile(text)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from exc
    return text


def _rate(text: str) -> str:
    try:
        limits.parse(text)
    except ValueError:
        raise ValueError("not a rate limit (write e.g. '10/second' or '100/minute')") from None
    return text


Template = Annotated[str, AfterValidator(_template)]
NameTemplate = Annotated[str, AfterValidator(_name_template)]
JsonPath = Annotated[str, AfterValidator(_json_path)]
Regex = Annotated[str, AfterValidator(_regex)]
RateLimit = Annotated[str, AfterValidator(_rate)]
Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")]
VariableName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


__all__ = [
    "JsonPath",
    "Name",
    "NameTemplate",
    "RateLimit",
    "Regex",
    "Template",
    "Model",
    "VariableName",
    "json_templates",
]
