"""Browser recipe schema: valid and invalid recipes, and the type tables."""

from __future__ import annotations

from typing import Any, get_args

import pytest

from amazoniax_dagster.core.errors import ConfigError
from amazoniax_dagster.fetchers import browser
from amazoniax_dagster.fetchers.browser_schema import (
    PAGINATION_TYPES,
    STEP_TYPES,
    BrowserRecipe,
    PaginateStep,
    Step,
    load_browser_recipe,
    parse_browser_recipe,
)


def recipe(*steps: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"version": 1, "kind": "browser", "name": "t", "steps": list(steps), **extra}


def test_a_full_recipe_loads() -> None:
    loaded = load_browser_recipe(
        """
        version: 1
        kind: browser
        name: orders
        login:
          url: /login
          username_selector: "#u"
          password_selector: "#p"
          submit_selector: "#go"
          success: {url_contains: /home}
        start_url: /orders?day=${run_date}
        steps:
          - {type: expect, selector: "#orders"}
          - type: paginate
            strategy: {type: click_next, selector: ".next"}
            steps: [{type: save_page, name: "orders-${page:03d}.html"}]
          - {type: wait_for, load_state: networkidle}
          - {type: download, selector: "a.csv", max_files: 5}
        """
    )
    assert isinstance(loaded, BrowserRecipe)
    paginate = loaded.steps[1]
    assert isinstance(paginate, PaginateStep) and paginate.max_iterations == 100
    assert loaded.login is not None and loaded.login.password == "${secrets.password}"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (recipe({"type": "jump"}), "steps[0]: unknown type; known: 'goto', 'fill'"),
        (recipe({"selector": "#x"}), "steps[0]: missing type"),
        (
            recipe({"type": "paginate", "strategy": {"type": "wheel"}}),
            "steps[0].strategy: unknown type; known: 'click_next', 'scroll'",
        ),
        (
            recipe({"type": "paginate", "strategy": {"type": "scroll"}, "steps": [{"type": "x"}]}),
            "steps[0].steps[0]: unknown type",
        ),
        (recipe({"type": "save_page", "name": "${cursor}.html"}), "unknown template name 'cursor'"),
        (recipe({"type": "fill", "selector": "#a", "value": "${secrets}"}), "needs a '.name'"),
        (recipe({"type": "wait_for"}), "set exactly one of selector and load_state"),
        (recipe({"type": "click", "selector": ""}), "steps[0].selector"),
        (recipe({"type": "click", "selector": "#a", "force": True}), "steps[0].force: Extra"),
        (recipe(), "steps: List should have at least 1 item"),
        (
            recipe(
                {"type": "click", "selector": "#a"},
                login={
                    "username_selector": "#u",
                    "password_selector": "#p",
                    "submit_selector": "#s",
                    "success": {},
                },
            ),
            "login.success: set selector and/or url_contains",
        ),
        (
            {**recipe({"type": "click", "selector": "#a"}), "kind": "http"},
            "kind: Input should be 'browser'",
        ),
    ],
)
def test_invalid_recipes_are_refused_with_the_place(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_browser_recipe(data)
    assert message in str(caught.value)


def test_error_messages_never_echo_values() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_browser_recipe(recipe({"type": "fill", "selector": "#a", "value": 12345678}))
    assert "12345678" not in str(caught.value)


def test_yaml_problems_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        load_browser_recipe("version: [1\n")
    with pytest.raises(ConfigError, match="must be a YAML mapping"):
        load_browser_recipe("- 1\n")


def _tag(cls: Any) -> str:
    (value,) = get_args(cls.model_fields["type"].annotation)
    return str(value)


def test_the_type_tables_match_the_unions_and_the_runners() -> None:
    union_members = get_args(get_args(Step)[0])
    assert set(union_members) == set(STEP_TYPES.values())
    assert all(_tag(cls) == name for name, cls in STEP_TYPES.items())
    assert all(_tag(cls) == name for name, cls in PAGINATION_TYPES.items())
    # Every step and strategy the schema accepts has a runner in the browser engine.
    assert set(browser._STEP_RUNNERS) == set(STEP_TYPES.values())
    assert set(browser._ADVANCE) == set(PAGINATION_TYPES.values())


def test_importing_the_browser_engine_does_not_import_playwright() -> None:
    import subprocess
    import sys

    code = "import sys, amazoniax_dagster.fetchers.browser; print('playwright' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
