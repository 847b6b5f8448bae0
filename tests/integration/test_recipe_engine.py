"""The recipe engine against real (small, local) web sites."""

from __future__ import annotations

import ipaddress
import json
import logging
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from amazoniax_dagster.core.errors import (
    ConfigError,
    FetcherCodeError,
    SiteChangedError,
    TransientError,
    UnsafeURLError,
)
from amazoniax_dagster.core.messages import WebSourceConfig
from amazoniax_dagster.core.netpolicy import NetworkPolicy
from amazoniax_dagster.fetchers.base import FetchContext, FetchLimits, FetchReport
from amazoniax_dagster.fetchers.recipe import (
    CircuitOpenError,
    HostBreakers,
    PreparedRequest,
    SafeClient,
    load_recipe,
    run_recipe,
)
from tests.integration import recipe_sites
from tests.integration.recipe_sites import SiteState, make_app, serve

LOOPBACK = NetworkPolicy(allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),))
FAST = "rate_limit: 1000/second\n"


@pytest.fixture(scope="module")
def site_state() -> SiteState:
    return SiteState()


@pytest.fixture(scope="module")
def origin(site_state: SiteState) -> Iterator[str]:
    with serve(make_app(site_state)) as url:
        yield url


@pytest.fixture()
def state(site_state: SiteState) -> SiteState:
    site_state.reset()
    return site_state


def context(
    tmp_path: Path,
    origin: str,
    *,
    limits: FetchLimits | None = None,
    **config: Any,
) -> FetchContext:
    return FetchContext(
        config=WebSourceConfig(url=f"{origin}/", **config),
        out_dir=tmp_path / "out",
        policy=LOOPBACK,
        run_date=date(2026, 2, 10),
        limits=limits or FetchLimits(),
    )


def run(text: str, ctx: FetchContext, **settings: Any) -> FetchReport:
    settings.setdefault("retry_delay_seconds", 0.01)
    return run_recipe(load_recipe(text), ctx, **settings)


def http_recipe(steps: str, *, auth: str = "") -> str:
    return f"version: 1\nkind: http\nname: test\n{FAST}{auth}steps:\n{steps}"


def saved(ctx: FetchContext, report: FetchReport) -> dict[str, str]:
    return {f.relative_path: (ctx.out_dir / f.relative_path).read_text() for f in report.files}


def records(ctx: FetchContext, report: FetchReport, key: str = "items") -> list[Any]:
    bodies = [json.loads(text) for text in saved(ctx, report).values()]
    return [record for body in bodies for record in _at(body, key)]


def _at(body: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        body = body[part]
    return body


# --- auth and pagination, end to end ----------------------------------------------------------


def test_bearer_auth_and_cursor_pagination_to_the_end(
    tmp_path: Path, origin: str, state: SiteState
) -> None:
    recipe = http_recipe(
        """
  - name: items
    request: {url: api/items}
    records: data.items
    paginate: {type: cursor, cursor_path: next}
    save: [{type: body}]
""",
        auth="auth: {type: bearer, token: '${secrets.token}'}\n",
    )
    ctx = context(tmp_path, origin, auth_keys={"token": recipe_sites.BEARER_TOKEN})
    report = run(recipe, ctx)
    assert sorted(saved(ctx, report)) == ["items_1.json", "items_2.json", "items_3.json"]
    assert records(ctx, report, "data.items") == recipe_sites.ITEMS
    assert report.pages == 3 and report.requests == 3
    assert report.metadata["steps"]["items"] == {"pages": 3, "stopped": "no next cursor"}
    assert report.warnings == []
    assert not any(p.name.startswith(".recipe-spool") for p in ctx.out_dir.iterdir())


def test_login_form_with_csrf_then_csv_downloads(
    tmp_path: Path, origin: str, state: SiteState
) -> None:
    recipe = http_recipe(
        """
  - name: reports
    request: {url: /reports}
    save: [{type: links, select: {type: html_links, pattern: '\\.csv'}}]
""",
        auth="auth: {type: login_form, login_url: /login}\n",
    )
    credentials = {"username": recipe_sites.USERNAME, "password": recipe_sites.PASSWORD}
    ctx = context(tmp_path, origin, login_credentials=credentials)
    report = run(recipe, ctx)
    files = saved(ctx, report)
    # Server names (Content-Disposition, else the URL), no path tricks, numbered twins.
    assert sorted(files) == [
        "2026-02.csv",
        "evil.csv",
        "report-2026-01.csv",
        "twin.csv",
        "twin_2.csv",
    ]
    assert files["report-2026-01.csv"] == "id,name\n1,2026-01.csv\n"
    assert state.hits["/login"] == 2  # GET the form, POST it; the session cookie did the rest
    assert not (tmp_path / "evil.csv").exists()


def test_a_refused_login_is_a_config_error(tmp_path: Path, origin: str, state: SiteState) -> None:
    recipe = http_recipe(
        "  - {name: reports, request: {url: /reports}}\n",
        auth="auth: {type: login_form, login_url: /login}\n",
    )
    ctx = context(
        tmp_path, origin, login_credentials={"username": "alice", "password": "wrong-password"}
    )
    with pytest.raises(ConfigError, match="credentials were refused"):
        run(recipe, ctx)
    assert state.hits["/reports"] == 0


def test_token_endpoint_refreshes_once_on_401(
    tmp_path: Path, origin: str, state: SiteState
) -> None:
    recipe = http_recipe(
        """
  - name: secure
    request: {url: /api/secure}
    records: items
    save: [{type: body, name: "secure.${ext}"}]
""",
        auth="auth: {type: token_endpoint, token_url: /oauth/token}\n",
    )
    keys = {"client_id": "me", "client_secret": recipe_sites.CLIENT_SECRET}
    ctx = context(tmp_path, origin, auth_keys=keys)
    report = run(recipe, ctx)
    assert list(saved(ctx, report)) == ["secure.json"]
    assert state.hits["/oauth/token"] == 2 and state.hits["/api/secure"] == 2


def test_token_endpoint_refusing_the_client_is_a_config_error(
    tmp_path: Path, origin: str, state: SiteState
) -> None:
    recipe = http_recipe(
        "  - {name: secure, request: {url: /api/secure}}\n",
        auth="auth: {type: token_endpoint, token_url: /oauth/token}\n",
    )
    ctx = context(tmp_path, origin, auth_keys={"client_id": "me", "client_secret": "nope-nope"})
    with pytest.raises(ConfigError, match="token endpoint"):
        run(recipe, ctx)
    assert state.hits["/api/secure"] == 0


@pytest.mark.parametrize(
    ("steps", "key"),
    [
        (
            "  - {name: p, request: {url: /pages}, records: items,"
            " paginate: {type: page_number}, save: [{type: body}]}\n",
            "items",
        ),
        (
            "  - {name: p, request: {url: /offset}, records: items,"
            " paginate: {type: offset, limit: 2}, save: [{type: body}]}\n",
            "items",
        ),
        (
            "  - {name: p, request: {url: /linked}, records: items,"
            " paginate: {type: link_header}, save: [{type: body}]}\n",
            "items",
        ),
        (
            "  - {name: p, request: {url: /next-url}, records: results,"
            " paginate: {type: next_url, next_url_path: next}, save: [{type: body}]}\n",
            "results",
        ),
        (
            "  - name: p\n"
            "    request: {url: /graphql, method: POST, json: {query: '{items}', variables: {}}}\n"
            "    records: data.items.nodes\n"
            "    paginate: {type: graphql, end_cursor_path: data.items.pageInfo.endCursor,"
            " has_next_path: data.items.pageInfo.hasNextPage}\n"
            "    save: [{type: body}]\n",
            "data.items.nodes",
        ),
    ],
    ids=["page_number", "offset", "link_header", "next_url", "graphql"],
)
def test_pagination_collects_every_record(
    tmp_path: Path, origin: str, state: SiteState, steps: str, key: str
) -> None:
    ctx = context(tmp_path, origin)
    report = run(http_recipe(steps), ctx)
    assert records(ctx, report, key) == recipe_sites.ITEMS


def test_pagination_reads_pages_it_does_not_save(
    tmp_path: Path, origin: str, state: SiteState
) -> None:
    recipe = http_recipe(
        "  - {name: p, request: {url: /next-url},"
        " paginate: {type: next_url, next_url_path: next}}\n"
    )
    report = run(recipe, context(tmp_path, origin))
    assert report.metadata["steps"]["p"] == {"pages": 3, "stopped": "no next URL"}
    assert report.files == [] and state.hits["/next-url"] == 3


def test_the_date_window_follows_navigation_details(
    tmp_path: Path, origin: str, state: SiteState
) -> None:
    recipe = http_recipe(
        """
  - name: dated
    request:
      url: /api/by-date
      query: {from: "${window.start}", to: "${window.end:%d.%m.%Y}"}
    save: [{type: body, name: "dated_${window.start:%Y%m%d}.json"}]
"""
    )
    ctx = context(tmp_path, origin, navigation_details={"date_range": {"last_days": 7}})
    report = run(recipe, ctx)
    assert saved(ctx, report) == {
        "dated_20260203.json": '{"items":[{"from":"2026-02-03","to":"10.02.2026"}]}'
    }


def test_a_feed_is_saved_without_duplicate_entries(
    tmp_path: Path, origin: str, state: SiteState
) -> None:
    recipe = f"""
version: 1
kind: feed
name: news
{FAST}url: /feed.xml
save_document: true
download: enclosure
"""
    ctx = context(tmp_path, origin)
    report = run(recipe, ctx)
    assert {f.relative_path for f in report.files} == {"entries.json", "feed.xml", "first.pdf"}
    entries = json.loads((ctx.out_dir / "entries.json").read_text())
    assert [e["title"] for e in entries] == ["First", "Second", "Third"]
    assert entries[0]["link"] == f"{origin}/news/1"
    assert report.metadata["duplicate_entries"] == 2


def test_a_paged_atom_feed_is_followed_to_its_last_page(
    tmp_path: Path, origin: str, state: SiteState
) -> None:
    recipe = f"""
version: 1
kind: feed
name: paged
{FAST}url: /paged.atom
save_document: true
"""
    ctx = context(tmp_path, origin)
    report = run(recipe, ctx)
    entries = json.loads((ctx.out_dir / "entries.json").read_text())
    assert [e["id"] for e in entries] == [f"urn:e{n}" for n in range(1, 7)]
    assert state.hits["/paged.atom"] == 3
    assert report.pages == 3
    assert len([f for f in report.files if f.relative_path.startswith("feed")]) == 3


# --- failures ------------------------------------------------------------------------------------


def test_a_503_storm_is_retried(tmp_path: Path, origin: str, state: SiteState) -> None:
    recipe = http_recipe("  - {name: f, request: {url: /flaky}, records: items}\n")
    report = run(recipe, context(tmp_path, origin), max_retries=3)
    assert state.hits["/flaky"] == 3
    assert report.requests == 3


def test_a_503_that_lasts_is_transient_after_the_retries(
    tmp_path: Path, origin: str, state: SiteState
) -> None:
    recipe = http_recipe("  - {name: f, request: {url: /always-503}}\n")
    with pytest.raises(TransientError, match="HTTP 503") as caught:
        run(recipe, context(tmp_path, origin), max_retries=2)
    assert caught.value.retry_after == 0
    assert state.hits["/always-503"] == 3


def test_a_long_retry_after_is_left_to_the_job_retry(
    tmp_path: Path, origin: str, state: SiteState
) -> None:
    recipe = http_recipe("  - {name: s, request: {url: /slow-down}}\n")
    with pytest.raises(TransientError, match="HTTP 429") as caught:
        run(recipe, context(tmp_path, origin), max_retries=3)
    assert caught.value.retry_after == 3600
    assert state.hits["/slow-down"] == 1


def test_the_circuit_opens_after_five_failures(
    tmp_path: Path, origin: str, state: SiteState
) -> None:
    recipe = http_recipe("  - {name: f, request: {url: /always-503}}\n")
    breakers = HostBreakers(fail_max=5, reset_timeout=60)
    for _ in range(5):
        with pytest.raises(TransientError):
            run(recipe, context(tmp_path, origin), max_retries=0, breakers=breakers)
    with pytest.raises(CircuitOpenError, match="127.0.0.1"):
        run(recipe, context(tmp_path, origin), max_retries=3, breakers=breakers)
    assert state.hits["/always-503"] == 5


def test_401_is_a_config_error_at_once(tmp_path: Path, origin: str, state: SiteState) -> None:
    recipe = http_recipe("  - {name: u, request: {url: /unauthorized}}\n")
    with pytest.raises(ConfigError, match="credentials were refused: HTTP 401"):
        run(recipe, context(tmp_path, origin), max_retries=3)
    assert state.hits["/unauthorized"] == 1


def test_a_404_endpoint_is_a_site_change(tmp_path: Path, origin: str, state: SiteState) -> None:
    recipe = http_recipe("  - {name: g, request: {url: /gone}}\n")
    with pytest.raises(SiteChangedError, match="HTTP 404"):
        run(recipe, context(tmp_path, origin))
    assert state.hits["/gone"] == 1


def test_a_renamed_records_field_is_a_site_change(
    tmp_path: Path, origin: str, state: SiteState
) -> None:
    recipe = http_recipe("  - {name: r, request: {url: /renamed}, records: data.items}\n")
    with pytest.raises(SiteChangedError, match="records path 'data.items'"):
        run(recipe, context(tmp_path, origin))


def test_a_redirect_to_the_metadata_address_is_refused(
    tmp_path: Path, origin: str, state: SiteState
) -> None:
    recipe = http_recipe("  - {name: m, request: {url: /to-metadata}}\n")
    with pytest.raises(UnsafeURLError, match="169.254.169.254"):
        run(recipe, context(tmp_path, origin))


def test_a_cursor_that_never_changes_terminates(
    tmp_path: Path, origin: str, state: SiteState
) -> None:
    recipe = http_recipe(
        "  - {name: s, request: {url: /stuck}, records: items,"
        " paginate: {type: cursor, cursor_path: next}}\n"
    )
    report = run(recipe, context(tmp_path, origin))
    assert state.hits["/stuck"] == 2
    assert report.metadata["steps"]["s"]["stopped"] == "repeated position"


def test_the_max_pages_guard_is_a_warning(tmp_path: Path, origin: str, state: SiteState) -> None:
    recipe = http_recipe(
        "  - {name: p, request: {url: /pages}, records: items,"
        " paginate: {type: page_number}, save: [{type: body}]}\n"
    )
    ctx = context(tmp_path, origin, limits=FetchLimits(max_pages=2))
    report = run(recipe, ctx)
    assert len(report.files) == 2
    assert len(report.warnings) == 1 and "max_pages" in report.warnings[0]


def test_the_request_budget_stops_the_run(tmp_path: Path, origin: str, state: SiteState) -> None:
    recipe = http_recipe(
        "  - {name: p, request: {url: /pages}, records: items, paginate: {type: page_number}}\n"
    )
    ctx = context(tmp_path, origin, limits=FetchLimits(max_requests=2))
    with pytest.raises(FetcherCodeError, match="max_requests"):
        run(recipe, ctx)
    assert state.hits["/pages"] == 2


def test_a_body_over_max_file_bytes_is_refused(
    tmp_path: Path, origin: str, state: SiteState
) -> None:
    recipe = http_recipe("  - {name: b, request: {url: /big}, save: [{type: body}]}\n")
    ctx = context(tmp_path, origin, limits=FetchLimits(max_file_bytes=1000))
    with pytest.raises(ConfigError, match="max_file_bytes"):
        run(recipe, ctx)
    assert not list(ctx.out_dir.iterdir())


def test_requests_are_paced_per_host(tmp_path: Path, origin: str, state: SiteState) -> None:
    with SafeClient(LOOPBACK, FetchLimits(), rate_limit="4/second") as client:
        started = time.monotonic()
        for n in range(6):
            client.fetch(PreparedRequest("GET", f"{origin}/pages"), tmp_path / f"{n}.json")
        elapsed = time.monotonic() - started
    assert elapsed >= 0.9  # the 5th request waits for the first to leave the 1 s window


# --- secrets ------------------------------------------------------------------------------------


def test_secrets_never_reach_the_report_or_the_logs(
    tmp_path: Path, origin: str, state: SiteState, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets = [recipe_sites.BEARER_TOKEN, recipe_sites.API_KEY, recipe_sites.PASSWORD]
    bearer = http_recipe(
        "  - {name: items, request: {url: /api/items}, records: data.items,"
        " paginate: {type: cursor, cursor_path: next}, save: [{type: body}]}\n",
        auth="auth: {type: bearer}\n",
    )
    keyed = http_recipe(
        "  - {name: keyed, request: {url: /api/keyed}, save: [{type: body}]}\n",
        auth="auth: {type: api_key, name: k, location: query, value: '${secrets.k}'}\n",
    )
    login = http_recipe(
        "  - {name: r, request: {url: /reports},"
        " save: [{type: links, select: {type: html_links, pattern: 2026-01}}]}\n",
        auth="auth: {type: login_form, login_url: /login}\n",
    )
    token = http_recipe(
        "  - {name: secure, request: {url: /api/secure}, save: [{type: body}]}\n",
        auth="auth: {type: token_endpoint, token_url: /oauth/token}\n",
    )
    client = {"client_id": "me", "client_secret": recipe_sites.CLIENT_SECRET}
    reports = [
        run(bearer, context(tmp_path / "a", origin, auth_keys={"token": secrets[0]})),
        run(token, context(tmp_path / "e", origin, auth_keys=client)),
        run(keyed, context(tmp_path / "b", origin, auth_keys={"k": secrets[1]})),
        run(
            login,
            context(
                tmp_path / "c",
                origin,
                login_credentials={"username": recipe_sites.USERNAME, "password": secrets[2]},
            ),
        ),
    ]
    # The same key refused: the error names the URL, not the key.
    wrong_key = "key-SECRET-wrong-000000"
    with pytest.raises(ConfigError) as refused:
        run(keyed, context(tmp_path / "d", origin, auth_keys={"k": wrong_key}))
    secrets += [wrong_key, recipe_sites.CLIENT_SECRET, *state.issued_tokens]
    assert len(state.issued_tokens) == 2

    assert "k=***" in str(refused.value)
    # Our process's log lines; uvicorn's are the test site's own (server-side) access log.
    ours = [r for r in caplog.records if not r.name.startswith("uvicorn")]
    logged = "".join(f"{r.getMessage()}{r.exc_text or ''}\n" for r in ours)
    files = [f.relative_path for report in reports for f in report.files]
    shown = repr(reports) + str(refused.value) + logged + repr(files)
    for secret in secrets:
        assert secret not in shown
    assert "/api/keyed?k=***" in logged  # the requests were logged, redacted
