"""html/api channels end to end: a Kafka message runs the site's published fetcher (recipe
from the Git registry) against a real local site, to S3, with de-duplication; a changed site
fails as *site changed* and requests heal mode; 503 storms are retried; 401 is a config
error; a plain API channel with an OpenAPI document runs the generic fetcher."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from amazoniax_dagster.clients.kafka import KafkaBus, Topics
from amazoniax_dagster.core.sites import structure_id
from amazoniax_dagster.db import FetcherDB
from amazoniax_dagster.devstack.demo_sites import CATALOG, RunningSite, serve
from amazoniax_dagster.devstack.local_stack import StackEndpoints
from amazoniax_dagster.fetchers.publishing import publish_version
from amazoniax_dagster.fetchers.registry import FetcherRepo
from tests.integration.harness import Harness, end_offsets, read_json
from tests.integration.test_s3_channel import objects_under

TOPICS = Topics()

RECIPES = {
    "token_api": """
version: 1
kind: http
name: reports
auth:
  type: token_endpoint
  token_url: "${secrets.token_url}"
steps:
  - name: reports
    request: {url: /api/reports}
    records: results
    paginate: {type: offset, param: offset, limit: 10, limit_param: limit, total_path: count}
    save: [{type: body, name: "reports_${page}.json"}]
""",
    "csv_links": r"""
version: 1
kind: http
name: sales
auth: {type: login_form, login_url: /login}
steps:
  - name: reports
    request: {url: "${config.url}"}
    save: [{type: links, select: {type: html_links, pattern: "\\.csv$"}}]
""",
    "rss_feed": """
version: 1
kind: feed
name: news
url: /feed.xml
""",
    "html_list": """
version: 1
kind: browser
name: catalog
start_url: /catalog
steps:
  - {type: expect, selector: "li.item"}
  - type: paginate
    strategy: {type: click_next, selector: "a[rel=next]", content_selector: "ul"}
    steps:
      - {type: save_page, name: "catalog-${page}.html"}
""",
    "login_cursor": """
version: 1
kind: http
name: orders
auth: {type: login_form, login_url: /login}
steps:
  - name: orders
    request: {url: /api/orders}
    records: data
    paginate: {type: cursor, cursor_path: next_cursor, param: after}
    save: [{type: body, name: "orders_${page}.json"}]
""",
    "json_pages": """
version: 1
kind: http
name: items
steps:
  - name: items
    request: {url: /api/v1/items, query: {per_page: "20"}}
    records: items
    paginate: {type: page_number, param: page, total_pages_path: total_pages}
    save: [{type: body, name: "items_${page}.json"}]
""",
}


@pytest.fixture()
def site(request: pytest.FixtureRequest) -> Iterator[RunningSite]:
    with serve(request.param) as running:
        yield running


@pytest.fixture()
def publisher(stack: StackEndpoints, fetcher_db: FetcherDB, tmp_path: Path) -> Iterator[Any]:
    repo = FetcherRepo(tmp_path / "cache", remote_url=stack.fetchers_remote_url)
    repo.sync()

    def publish(site: RunningSite, recipe: str) -> str:
        version = publish_version(
            fetcher_db,
            repo,
            structure_id=structure_id(site.url),
            files={_entry_file(recipe): recipe.encode()},
            provenance={"method": "hand-written for the tests"},
        )
        return version.fetcher_name

    yield publish


def _entry_file(text: str) -> str:
    if text.startswith("def ") or "\ndef fetch(" in text:
        return "fetcher.py"
    return "browser.yaml" if "kind: browser" in text else "recipe.yaml"


def message(site: RunningSite, channel_id: str, job_id: str, **config: Any) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "channel_id": channel_id,
        "source_type": CATALOG[site.name].source_type,
        "is_new": True,
        "config": site.channel_config() | config,
    }


def run(harness: Harness, msg: dict[str, Any]) -> dg.DagsterRun:
    harness.produce(msg, key=msg["channel_id"])
    result = harness.tick()
    (run,) = harness.run_all(result)
    return run


def new_ids() -> tuple[str, str]:
    return f"ch-{uuid.uuid4().hex[:8]}", f"job-{uuid.uuid4().hex[:8]}"


@pytest.mark.parametrize(
    "site", ["token_api", "login_cursor", "csv_links", "rss_feed", "html_list"], indirect=True
)
def test_a_published_recipe_fetches_the_site_to_s3_and_dedups_the_second_run(
    site: RunningSite,
    publisher: Any,
    harness: Harness,
    fetcher_db: FetcherDB,
    stack: StackEndpoints,
    output_client: Any,
    bus: KafkaBus,
) -> None:
    fetcher = publisher(site, RECIPES[site.name])
    channel, job1 = new_ids()
    parsers_from = end_offsets(bus, TOPICS.parsers)

    run1 = run(harness, message(site, channel, job1))
    assert run1.status is dg.DagsterRunStatus.SUCCESS
    record = fetcher_db.get_job(job1)
    assert record is not None and record.status == "success"
    assert record.metadata["fetcher"] == fetcher and record.metadata["fetcher_how"] == "site"
    files = objects_under(output_client, stack.output_bucket, f"raw/{channel}/{job1}/")
    assert files and record.metadata["new"] == len(files)
    text = b"".join(files.values()).decode()
    missing = [r["id"] for r in site.ground_truth() if str(r["id"]) not in text]
    assert not missing, f"records missing from the fetched files: {missing[:5]}"
    mapped = fetcher_db.channel_fetcher(channel)
    assert mapped is not None and mapped.fetcher_name == fetcher

    # Second run, nothing changed on the site: same bytes, nothing new uploaded or announced.
    _, job2 = new_ids()
    run2 = run(harness, message(site, channel, job2) | {"is_new": False})
    assert run2.status is dg.DagsterRunStatus.SUCCESS
    record2 = fetcher_db.get_job(job2)
    assert record2 is not None and record2.metadata["fetcher_how"] == "mapped"
    assert record2.metadata["new"] == 0 and record2.metadata["updated"] == 0
    assert record2.metadata["duplicate"] == len(files)
    assert objects_under(output_client, stack.output_bucket, f"raw/{channel}/{job2}/") == {}
    parsers = [m["job_id"] for m in read_json(bus, TOPICS.parsers, parsers_from)]
    assert job1 in parsers and job2 not in parsers


@pytest.mark.parametrize("site", ["json_pages"], indirect=True)
def test_a_changed_site_fails_as_site_changed_and_requests_heal_mode(
    site: RunningSite, publisher: Any, harness: Harness, fetcher_db: FetcherDB, bus: KafkaBus
) -> None:
    publisher(site, RECIPES["json_pages"])
    channel, job1 = new_ids()
    assert run(harness, message(site, channel, job1)).status is dg.DagsterRunStatus.SUCCESS

    site.variant = "v2"  # the API moved to /api/v2; /api/v1 answers 404
    fetcher_from = end_offsets(bus, TOPICS.fetcher)
    status_from = end_offsets(bus, TOPICS.status)
    _, job2 = new_ids()
    run2 = run(harness, message(site, channel, job2) | {"is_new": False})
    assert run2.status is dg.DagsterRunStatus.FAILURE
    record = fetcher_db.get_job(job2)
    assert record is not None and record.metadata["error_class"] == "site_changed"
    heal = [m for m in read_json(bus, TOPICS.fetcher, fetcher_from) if m.get("heal_mode")]
    assert [(m["job_id"], m["channel_id"]) for m in heal] == [(f"{job2}-heal1", channel)]
    (status,) = [m for m in read_json(bus, TOPICS.status, status_from) if m["job_id"] == job2]
    assert status["status"] == "failed"
    assert "heal mode requested" in status["message"]


@pytest.mark.parametrize("site", ["token_api"], indirect=True)
def test_a_503_storm_is_retried_and_a_401_fails_at_once_as_a_config_error(
    site: RunningSite, publisher: Any, harness: Harness, fetcher_db: FetcherDB, bus: KafkaBus
) -> None:
    publisher(site, RECIPES["token_api"])
    channel, job1 = new_ids()
    site.fail_next(2, status=503, path_prefix="/api/reports")
    assert run(harness, message(site, channel, job1)).status is dg.DagsterRunStatus.SUCCESS
    record = fetcher_db.get_job(job1)
    assert record is not None and record.metadata["new"] > 0

    fetcher_from = end_offsets(bus, TOPICS.fetcher)
    before = len(site.requests)
    _, job2 = new_ids()
    wrong = site.channel_config()["auth_keys"] | {"client_secret": "not-the-secret"}
    run2 = run(harness, message(site, channel, job2, auth_keys=wrong))
    assert run2.status is dg.DagsterRunStatus.FAILURE
    record2 = fetcher_db.get_job(job2)
    assert record2 is not None and record2.metadata["error_class"] == "config"
    token_calls = [r for r in site.requests[before:] if r[1].startswith("/oauth/token")]
    assert len(token_calls) == 1, "a refused credential is not retried"
    assert "not-the-secret" not in (record2.message or "")
    events = harness.instance.all_logs(run2.run_id)
    shown = " ".join(str(e.dagster_event or e.user_message) for e in events) + str(run2.tags)
    assert "not-the-secret" not in shown and wrong["client_id"] not in str(run2.run_config)
    assert not [m for m in read_json(bus, TOPICS.fetcher, fetcher_from) if m.get("heal_mode")]


@pytest.mark.parametrize("site", ["json_pages"], indirect=True)
def test_a_plain_api_channel_runs_the_generic_fetcher_from_its_openapi_document(
    site: RunningSite, harness: Harness, fetcher_db: FetcherDB
) -> None:
    channel, job = new_ids()
    msg = message(site, channel, job)
    msg["config"]["url"] = f"{site.origin}/api/v1/items"
    assert run(harness, msg).status is dg.DagsterRunStatus.SUCCESS
    record = fetcher_db.get_job(job)
    assert record is not None and record.metadata["fetcher"] == "generic_api"
    assert record.metadata["pages"] >= 3 and record.metadata["new"] >= 3


@pytest.mark.parametrize("site", ["login_cursor"], indirect=True)
def test_a_site_that_ignores_the_old_cursor_fails_as_site_changed_not_silently_short(
    site: RunningSite, publisher: Any, harness: Harness, fetcher_db: FetcherDB
) -> None:
    publisher(site, RECIPES["login_cursor"])
    channel, job1 = new_ids()
    assert run(harness, message(site, channel, job1)).status is dg.DagsterRunStatus.SUCCESS
    first = fetcher_db.get_job(job1)
    assert first is not None and first.metadata["records"] == len(site.ground_truth())

    site.variant = "v2"  # "after" renamed "cursor": the old name is ignored, page 1 forever
    _, job2 = new_ids()
    run2 = run(harness, message(site, channel, job2) | {"is_new": False})
    assert run2.status is dg.DagsterRunStatus.FAILURE
    record = fetcher_db.get_job(job2)
    assert record is not None and record.metadata["error_class"] == "site_changed"
    assert "second page is the first page again" in (record.message or "")


PYTHON_FETCHER = """
import json
import os
import urllib.request


def fetch(config, out_dir, run_date):
    url = config["url"].rstrip("/") + "/feed.xml"
    with urllib.request.urlopen(url, timeout=10) as reply:
        data = reply.read()
    with open(os.path.join(out_dir, "feed.xml"), "wb") as f:
        f.write(data)
    with open(os.path.join(out_dir, "seen_env.json"), "w") as f:
        json.dump(sorted(os.environ), f)
    return {"bytes": len(data)}
"""


@pytest.mark.parametrize("site", ["rss_feed"], indirect=True)
def test_a_python_fetcher_runs_sandboxed_through_pipes_in_a_channel_run(
    site: RunningSite,
    publisher: Any,
    harness: Harness,
    fetcher_db: FetcherDB,
    stack: StackEndpoints,
    output_client: Any,
) -> None:
    publisher(site, PYTHON_FETCHER)
    channel, job = new_ids()
    run1 = run(harness, message(site, channel, job))
    assert run1.status is dg.DagsterRunStatus.SUCCESS
    record = fetcher_db.get_job(job)
    assert record is not None and record.metadata["fetcher_kind"] == "python"
    files = objects_under(output_client, stack.output_bucket, f"raw/{channel}/{job}/")
    assert all(str(r["id"]) in files["feed.xml"].decode() for r in site.ground_truth())
    seen = json.loads(files["seen_env.json"])
    assert not [name for name in seen if name.startswith(("AMAZONIAX_", "AWS_", "DAGSTER_PG"))]
    # The sandboxed child reported through Dagster Pipes inside the run.
    logs = " ".join(e.user_message for e in harness.instance.all_logs(run1.run_id))
    assert "pipes" in logs.lower()


@pytest.mark.parametrize("site", ["rss_feed"], indirect=True)
def test_a_site_failing_with_5xx_job_after_job_is_handed_to_a_person(
    site: RunningSite, publisher: Any, harness: Harness, fetcher_db: FetcherDB, bus: KafkaBus
) -> None:
    publisher(site, RECIPES["rss_feed"])
    channel, _ = new_ids()
    site.fail_next(1000, status=500, retry_after=None)
    status_from = end_offsets(bus, TOPICS.status)
    jobs = [new_ids()[1] for _ in range(3)]
    for job in jobs:
        assert run(harness, message(site, channel, job)).status is dg.DagsterRunStatus.FAILURE
    statuses = {m["job_id"]: m for m in read_json(bus, TOPICS.status, status_from)}
    assert [statuses[j]["status"] for j in jobs] == ["failed", "failed", "requires_human_review"]
    assert "transient" in statuses[jobs[2]]["message"]
