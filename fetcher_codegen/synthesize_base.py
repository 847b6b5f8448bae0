"""What every recipe builder shares: the synthesis result, names, literals and URL templates."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml

from amazoniax_dagster.core.messages import WebSourceConfig
from fetcher_codegen.analysis import Analysis, DataGroup
from fetcher_codegen.capture import Capture
from fetcher_codegen.har import path_template
from fetcher_codegen.pagination import Pagination
from fetcher_codegen.provenance import (
    Context,
    Source,
)
from fetcher_codegen.records import Records

RecipeKind = Literal["http", "feed", "browser"]


MAX_DEPENDENCY_DEPTH = 3


@dataclass
class Synthesis:
    kind: RecipeKind
    recipe: dict[str, Any]
    requests: list[dict[str, Any]] = field(default_factory=list)  # provenance per data kind
    warnings: list[str] = field(default_factory=list)
    # what the proof looks for when not the analysis' data (records spread over pages)
    records: list[Records] | None = None

    @property
    def text(self) -> str:
        return recipe_yaml(self.recipe)


def recipe_yaml(recipe: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(recipe), sort_keys=False, allow_unicode=True, width=100)


def recipe_name(config: WebSourceConfig, resource: str) -> str:
    base = config.channel_name or urlsplit(config.url).hostname or resource
    slug = re.sub(r"[^A-Za-z0-9]+", "-", base).strip("-").lower()[:40] or resource
    return slug if slug[0].isalpha() else f"site-{slug}"[:64]


def literal(value: str) -> str:
    """A constant in a template field (a literal ``${`` is written ``$${``)."""
    return value.replace("${", "$${")


def url_template(
    url: str,
    config: WebSourceConfig,
    *,
    keep_query: bool = False,
    segments: Mapping[int, str] | None = None,
) -> str:
    """``${config.url}`` for the channel URL, a path for its origin, else the absolute URL.

    ``segments`` replaces path segments (by index) with templates, e.g. ``${page}``.
    """
    bare = url.split("#", 1)[0]
    if not keep_query:
        bare = bare.split("?", 1)[0]
    channel = urlsplit(config.url)
    target = urlsplit(bare)
    if not segments and not channel.query and bare == config.url.split("#", 1)[0]:
        return "${config.url}"
    parts = [literal(part) for part in (target.path or "/").split("/")]
    for index, template in (segments or {}).items():
        if index < len(parts):
            parts[index] = template
    path = "/".join(parts) + (f"?{literal(target.query)}" if target.query else "")
    if (target.scheme, target.netloc) == (channel.scheme, channel.netloc):
        return path
    return f"{target.scheme}://{literal(target.netloc)}{path}"


class _Builder:
    def __init__(self, analysis: Analysis, capture: Capture, config: WebSourceConfig) -> None:
        self.analysis = analysis
        self.capture = capture
        self.config = config
        self.ctx = Context(config, capture.capture_date, analysis.entries)
        self.by_index = {entry.index: entry for entry in analysis.entries}
        self.warnings: list[str] = list(capture.warnings)
        self.sources: list[Source] = []

    def data_provenance(self, data: DataGroup, pagination: Pagination | None) -> dict[str, Any]:
        first = data.group.first
        return {
            "kind": f"{first.method} {path_template(first.path)}",
            "format": data.format,
            "requests": len(data.pages),
            "records": data.record_count,
            "records_path": data.records_path,
            "dom_evidence": data.dom_evidence,
            "pagination": pagination.detail if pagination else None,
        }
