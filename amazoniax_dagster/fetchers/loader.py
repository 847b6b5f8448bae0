"""A stored fetcher version (the files of its Git folder) made runnable.

``recipe.yaml`` holds a declarative recipe (``kind: http | feed``), ``browser.yaml`` a browser
recipe, both run by our own engines; ``fetcher.py`` is Python code, run only in the
sandboxed subprocess. A folder with none of them, or several, is a broken fetcher.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from amazoniax_dagster.core.errors import ConfigError, FetcherCodeError
from amazoniax_dagster.fetchers.base import FetchContext, FetchReport

PYTHON_FILE = "fetcher.py"


@dataclass(frozen=True)
class RecipeFetcher:
    """An ``http`` or ``feed`` recipe, run by the recipe engine."""

    recipe: Any  # recipe.schema.HttpRecipe | FeedRecipe
    kind: str = "recipe"

    def fetch(self, ctx: FetchContext) -> FetchReport:
        from amazoniax_dagster.fetchers.recipe.engine import run_recipe

        return run_recipe(
            self.recipe,
            ctx,
            max_retries=ctx.max_retries,
            retry_delay_seconds=ctx.retry_delay_seconds,
        )


@dataclass(frozen=True)
class BrowserFetcher:
    """Declarative Playwright steps, run in Chromium."""

    recipe: Any  # browser_schema.BrowserRecipe
    kind: str = "browser"

    def fetch(self, ctx: FetchContext) -> FetchReport:
        from amazoniax_dagster.fetchers.browser import run_browser_recipe

        return run_browser_recipe(self.recipe, ctx)


@dataclass(frozen=True)
class PythonFetcher:
    """Generated Python code; it never runs in our process."""

    code: bytes
    kind: str = "python"

    def fetch(self, ctx: FetchContext) -> FetchReport:
        from amazoniax_dagster.fetchers.python_runtime import SandboxLimits, run_python_fetcher

        with tempfile.TemporaryDirectory(prefix="fetcher-code-") as tmp:
            path = Path(tmp, PYTHON_FILE)
            path.write_bytes(self.code)
            return run_python_fetcher(
                path, ctx, ctx.python_limits or SandboxLimits(), launcher=ctx.python_launcher
            )


def load_recipe_text(text: str) -> RecipeFetcher | BrowserFetcher:
    """A recipe document of any kind; ConfigError when it is not valid."""
    try:
        kind = (yaml.safe_load(text) or {}).get("kind")
    except (yaml.YAMLError, AttributeError):
        kind = None
    if kind == "browser":
        from amazoniax_dagster.fetchers.browser_schema import load_browser_recipe

        return BrowserFetcher(load_browser_recipe(text))
    from amazoniax_dagster.fetchers.recipe.schema import load_recipe

    return RecipeFetcher(load_recipe(text))


def load_fetcher(
    name: str, files: Mapping[str, bytes]
) -> RecipeFetcher | BrowserFetcher | PythonFetcher:
    """The runnable form of a version folder (``registry.ENTRY_FILES`` names its entry)."""
    from amazoniax_dagster.core.fetcher_names import ENTRY_FILES, entry_kind

    try:
        kind = entry_kind(files)
    except ValueError as exc:
        raise FetcherCodeError(f"{name}: {exc}") from exc
    entry = files[ENTRY_FILES[kind]]
    if kind == "python":
        return PythonFetcher(entry)
    try:
        return load_recipe_text(entry.decode("utf-8"))
    except (ConfigError, UnicodeDecodeError) as exc:
        # A published recipe that no longer loads is the fetcher's fault, not the channel's.
        raise FetcherCodeError(f"{name}/{ENTRY_FILES[kind]} is not a valid recipe: {exc}") from exc
