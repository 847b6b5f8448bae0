"""Recipe loading: valid and invalid recipes, templates, JSON paths, the published schema."""

from __future__ import annotations

import json
import typing
from datetime import date

import jsonschema
import pytest
from pydantic import SecretStr

import amazoniax_dagster.fetchers.recipe as recipe_pkg
from amazoniax_dagster.core.errors import ConfigError
from amazoniax_dagster.fetchers.recipe import (
    AUTH_TYPES,
    PAGINATOR_TYPES,
    RUNNERS,
    SCHEMA_PATH,
    AuthConfig,
    DateRange,
    FeedRecipe,
    HttpRecipe,
    PaginateConfig,
    SaveConfig,
    Selector,
    load_recipe,
    recipe_json_schema,
)
from amazoniax_dagster.fetchers.recipe.engine import SAVERS
from amazoniax_dagster.fetchers.recipe.jsonpath import MISSING, find, find_all, parse_path
from amazoniax_dagster.fetchers.recipe.selectors import SELECTORS
from amazoniax_dagster.fetchers.recipe.templating import (
    DateWindow,
    Scope,
    render,
    render_data,
)

HEAD = "version: 1\nkind: http\nname: demo\n"

VALID = {
    "bearer_cursor": HEAD
    + """
auth: {type: bearer, token: "${secrets.api_token}"}
steps:
  - name: items
    request: {url: /api/items, query: {since: "${window.start:%Y-%m-%d}"}}
    records: data.items
    paginate: {type: cursor, cursor_path: $.next, param: cursor}
    save: [{type: body}]
""",
    "login_links": HEAD
    + """
rate_limit: 5/second
auth:
  type: login_form
  login_url: /login
  failure_marker: "(?i)invalid"
steps:
  - name: home
    request: {url: /reports}
    extract:
      csrf: {type: html_input, name: csrf_token}
      first: {type: regex, pattern: 'id="(\\d+)"', required: false}
    save: [{type: links, select: {type: html_links, pattern: '\\.csv$'}}]
  - name: export
    request:
      method: POST
      url: "/export/${extract.first}"
      form: {csrf: "${extract.csrf}"}
    save: [{type: body, name: "export_${run_date:%Y%m%d}.${ext}"}]
""",
    "graphql": HEAD
    + """
auth: {type: token_endpoint, token_url: /oauth/token, body_format: json}
steps:
  - name: nodes
    request:
      method: POST
      url: /graphql
      json: {query: "{ items { nodes { id } } }", variables: {first: 50, page: "${page}"}}
    records: data.items.nodes
    paginate:
      type: graphql
      end_cursor_path: data.items.pageInfo.endCursor
      has_next_path: data.items.pageInfo.hasNextPage
""",
    "page_and_offset": HEAD
    + """
date_range: {from: 2026-01-01, to: 2026-01-31}
steps:
  - name: pages
    request: {url: "${config.origin}/pages/${page:03d}"}
    paginate: {type: page_number, param: null, has_more_path: meta.more}
  - name: offsets
    request: {url: /offset}
    records: '["odd.key"][*]'
    paginate: {type: offset, limit: 100, total_path: meta.total}
  - name: linked
    request: {url: /linked, headers: {X-Api-Key: "${secrets.api_key}"}}
    paginate: {type: link_header}
  - name: next
    request: {url: /next}
    paginate: {type: next_url, next_url_path: links.next}
""",
    "feed": """
version: 1
kind: feed
name: news
auth: {type: basic}
download: enclosure
save_document: true
entries_name: "entries_${run_date}.json"
""",
}

INVALID = {
    "unknown_auth_type": (
        HEAD + "auth: {type: oauth9}\nsteps: [{name: a, request: {url: /}}]",
        ["auth.type", "'basic'", "'bearer'", "'api_key'", "'login_form'", "'token_endpoint'"],
    ),
    "unknown_paginator_type": (
        HEAD + "steps: [{name: a, request: {url: /}, paginate: {type: scroll}}]",
        ["steps[0].paginate.type", "'page_number'", "'graphql'", "'link_header'"],
    ),
    "unknown_selector_type": (
        HEAD + "steps: [{name: a, request: {url: /}, extract: {x: {type: xpath, name: q}}}]",
        ["steps[0].extract.x.type", "'json'", "'html_input'"],
    ),
    "links_only_from_json_regex_html": (
        HEAD + "steps: [{name: a, request: {url: /}, save: [{type: links, select: {type: cookie, "
        "name: x}}]}]",
        ["steps[0].save[0].links.select.type", "'json'", "'regex'", "'html_links'"],
    ),
    "unknown_kind": ("version: 1\nkind: ftp\nname: x", ["kind", "'http'", "'feed'"]),
    "wrong_version": (
        "version: 2\nkind: feed\nname: x",
        ["version"],
    ),
    "typo_field": (
        HEAD + "steps: [{name: a, request: {url: /, methd: GET}}]",
        ["steps[0].request.methd", "Extra inputs are not permitted"],
    ),
    "missing_url": (
        HEAD + "steps: [{name: a, request: {method: GET}}]",
        ["steps[0].request.url", "Field required"],
    ),
    "no_steps": (HEAD + "steps: []", ["steps"]),
    "unknown_template_name": (
        HEAD + "steps: [{name: a, request: {url: '/${config.password}'}}]",
        ["steps[0].request.url", "unknown template name 'config.password'", "config.url"],
    ),
    "unknown_template_root": (
        HEAD + "steps: [{name: a, request: {url: /, query: {q: '${env.HOME}'}}}]",
        ["steps[0].request.query.q", "unknown template name 'env.HOME'"],
    ),
    "unclosed_template": (
        HEAD + "steps: [{name: a, request: {url: '/${page'}}]",
        ["steps[0].request.url", "unclosed"],
    ),
    "save_names_only_in_save": (
        HEAD + "steps: [{name: a, request: {url: '/${ext}'}}]",
        ["steps[0].request.url", "unknown template name 'ext'"],
    ),
    "extract_used_before_defined": (
        HEAD
        + "steps:\n"
        + "  - {name: a, request: {url: '/x/${extract.csrf}'}}\n"
        + "  - {name: b, request: {url: /}, extract: {csrf: {type: cookie, name: c}}}\n",
        ["steps[0]", "${extract.csrf}", "no earlier step extracts"],
    ),
    "page_number_without_stop": (
        HEAD + "steps: [{name: a, request: {url: /}, paginate: {type: page_number}}]",
        ["steps[0].paginate", "page_number", "records", "has_more_path"],
    ),
    "duplicate_step_names": (
        HEAD + "steps: [{name: a, request: {url: /}}, {name: a, request: {url: /b}}]",
        ["steps[1].name", "also called"],
    ),
    "bad_json_path": (
        HEAD + "steps: [{name: a, request: {url: /}, records: 'data..items'}]",
        ["steps[0].records", "invalid JSON path"],
    ),
    "bad_regex": (
        HEAD + "steps: [{name: a, request: {url: /}, extract: {x: {type: regex, pattern: '(a'}}}]",
        ["steps[0].extract.x.regex.pattern", "not a valid regular expression"],
    ),
    "bad_rate_limit": (
        "version: 1\nkind: feed\nname: x\nrate_limit: lots",
        ["rate_limit", "10/second"],
    ),
    "cursor_two_sources": (
        HEAD + "steps: [{name: a, request: {url: /}, paginate: {type: cursor, cursor_path: n, "
        "cursor_header: X-Next}}]",
        ["steps[0].paginate.cursor", "exactly one of cursor_path and cursor_header"],
    ),
    "auth_uses_page": (
        HEAD + "auth: {type: bearer, token: '${page}'}\nsteps: [{name: a, request: {url: /}}]",
        ["auth: templates there may only use"],
    ),
    "json_and_form": (
        HEAD + "steps: [{name: a, request: {url: /, method: POST, json: {}, form: {}}}]",
        ["steps[0].request", "at most one of json and form"],
    ),
    "date_range_both_forms": (
        "version: 1\nkind: feed\nname: x\ndate_range: {last_days: 3, from: 2026-01-01}",
        ["date_range", "either last_days or from"],
    ),
    "bad_step_name": (
        HEAD + "steps: [{name: '../etc', request: {url: /}}]",
        ["steps[0].name"],
    ),
    "not_yaml": ("version: 1\nkind: [http\n", ["not valid YAML", "line"]),
    "not_a_mapping": ("- a\n- b\n", ["YAML mapping"]),
}


@pytest.mark.parametrize("text", VALID.values(), ids=VALID.keys())
def test_valid_recipes_load_and_match_the_published_schema(text: str) -> None:
    recipe = load_recipe(text)
    assert isinstance(recipe, HttpRecipe | FeedRecipe)
    published = json.loads(SCHEMA_PATH.read_text())
    jsonschema.validate(recipe.model_dump(mode="json", by_alias=True), published)


@pytest.mark.parametrize(("text", "expected"), INVALID.values(), ids=INVALID.keys())
def test_invalid_recipes_name_the_field(text: str, expected: list[str]) -> None:
    with pytest.raises(ConfigError) as caught:
        load_recipe(text)
    message = str(caught.value)
    for part in expected:
        assert part in message, message


def test_errors_never_echo_values() -> None:
    text = (
        HEAD
        + "auth: {type: hunter2-secret-type}\n"
        + "rate_limit: hunter2-secret-rate\n"
        + "steps: [{name: a, request: {url: /, method: hunter2-secret-method}}]"
    )
    with pytest.raises(ConfigError) as caught:
        load_recipe(text)
    assert "hunter2" not in str(caught.value)
    assert "rate_limit" in str(caught.value) and "steps[0].request.method" in str(caught.value)


def test_yaml_errors_never_echo_the_line() -> None:
    with pytest.raises(ConfigError) as caught:
        load_recipe("version: 1\npassword: 'hunter2-secret\n  : [")
    assert "hunter2" not in str(caught.value)


def test_published_schema_is_current() -> None:
    """Regenerate with ``python -m amazoniax_dagster.fetchers.recipe``."""
    assert json.loads(SCHEMA_PATH.read_text()) == recipe_json_schema()


def _tags(union: object) -> set[str]:
    members = typing.get_args(typing.get_args(union)[0])
    return {typing.get_args(m.model_fields["type"].annotation)[0] for m in members}


def test_strategy_tables_match_the_schema_unions() -> None:
    assert set(AUTH_TYPES) == _tags(AuthConfig)
    assert set(PAGINATOR_TYPES) == _tags(PaginateConfig)
    assert set(SELECTORS) == _tags(Selector)
    assert set(SAVERS) == _tags(SaveConfig)
    assert set(RUNNERS) == {"http", "feed"}


def test_public_api_is_exported() -> None:
    for name in recipe_pkg.__all__:
        assert getattr(recipe_pkg, name) is not None, name
    assert recipe_pkg.__all__ == sorted(recipe_pkg.__all__, key=lambda n: (not n.isupper(), n))


# --- templates ----------------------------------------------------------------------------


def _scope(**variables: object) -> Scope:
    return Scope(
        url="https://user:pw@example.com:8443/app/index.html?x=1",
        channel_name="demo",
        secrets={"token": SecretStr("s3cret"), "api_key": SecretStr("k-1")},
        extracts={"csrf": "abc", "n": 7},
        window=DateWindow(date(2026, 1, 1), date(2026, 1, 31)),
        run_date=date(2026, 2, 10),
        variables=variables,
    )


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("${config.url}", "https://user:pw@example.com:8443/app/index.html?x=1"),
        ("${config.origin}/api", "https://example.com:8443/api"),
        ("${config.host}|${config.scheme}|${config.path}", "example.com|https|/app/index.html"),
        ("${config.channel_name}", "demo"),
        ("Bearer ${secrets.token}", "Bearer s3cret"),
        ("${extract.csrf}-${extract.n}", "abc-7"),
        ("${window.start}..${window.end:%d.%m.%Y}", "2026-01-01..31.01.2026"),
        ("${run_date:%Y%m%d}", "20260210"),
        ("p${page:03d}&o=${offset}&c=${cursor}", "p002&o=40&c="),
        ("cost: $${page} is ${ page }", "cost: ${page} is 2"),
        ("no templates here", "no templates here"),
    ],
)
def test_render(template: str, expected: str) -> None:
    assert render(template, _scope(page=2, offset=40, cursor="")) == expected


def test_render_data_keeps_native_types_of_bare_expressions() -> None:
    body = {"variables": {"page": "${page}", "label": "p${page}", "day": "${run_date}"}}
    assert render_data(body, _scope(page=3)) == {
        "variables": {"page": 3, "label": "p3", "day": "2026-02-10"}
    }


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("${secrets.missing}", "no 'missing' in auth_keys or login_credentials"),
        ("${extract.later}", "before it is extracted"),
        ("${page:%Y}", "cannot format"),
    ],
)
def test_render_errors_are_config_errors(template: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        render(template, _scope(page=1))


def test_window_is_needed_when_used() -> None:
    scope = Scope(url="https://example.com/")
    with pytest.raises(ConfigError, match="date_range"):
        render("${window.start}", scope)


@pytest.mark.parametrize(
    ("raw", "start", "end"),
    [
        ({"last_days": 7}, date(2026, 2, 3), date(2026, 2, 10)),
        ({"from": "2026-01-01", "to": "2026-01-31"}, date(2026, 1, 1), date(2026, 1, 31)),
        ({"from": "2026-01-15"}, date(2026, 1, 15), date(2026, 2, 10)),
    ],
)
def test_date_ranges_are_relative_to_the_run_date(
    raw: dict[str, object], start: date, end: date
) -> None:
    assert DateRange.model_validate(raw).window(date(2026, 2, 10)) == DateWindow(start, end)


# --- JSON paths -----------------------------------------------------------------------------

DOC = {"data": {"items": [{"id": 1, "url": "a"}, {"id": 2, "url": "b"}]}, "odd.key": [3], "n": 0}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("data.items[0].id", 1),
        ("$.data.items[-1].url", "b"),
        ("$", DOC),
        ('["odd.key"][0]', 3),
        ("n", 0),
        ("data.items[5]", MISSING),
        ("data.missing.deeper", MISSING),
        ("data.items.id", MISSING),
    ],
)
def test_json_path_find(path: str, expected: object) -> None:
    assert find(DOC, path) == expected


def test_json_path_wildcard() -> None:
    assert find_all(DOC, "data.items[*].url") == ["a", "b"]
    assert find_all(DOC, "data.items[*].nope") == []


@pytest.mark.parametrize("path", ["data..items", "data.", "[x]", "a b", "data[0"])
def test_bad_json_paths(path: str) -> None:
    with pytest.raises(ValueError, match="invalid JSON path"):
        parse_path(path)
