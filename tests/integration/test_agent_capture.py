"""A browser-use agent drives the capture when Bedrock is configured.

The agent is browser-use's own ``Agent`` connected to the capture's Chromium over CDP; its
model is the local Converse server answering with the tool calls a careful model would make
(``tests/fakes/browsing_model.py`` reads the page state browser-use sends). What the agent
made the site send is in the HAR, its "next" clicks become the browser recipe's pagination,
credentials reach the model only as placeholders, and a model that cannot be used (throttled,
slow, answering without a tool call) leaves the capture to the deterministic explorer.
"""

from __future__ import annotations

import json
import logging
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from amazoniax_dagster.core.messages import WebSourceConfig
from amazoniax_dagster.core.netpolicy import NetworkPolicy
from amazoniax_dagster.core.sites import structure_id
from amazoniax_dagster.db import FetcherDB
from amazoniax_dagster.devstack.demo_sites import RunningSite, serve
from amazoniax_dagster.devstack.local_stack import StackEndpoints
from fetcher_codegen import generator
from fetcher_codegen.capture import Capture
from fetcher_codegen.har import Entry, load_har
from tests.fakes.bedrock_server import FakeBedrock
from tests.fakes.browsing_model import BrowsingModel
from tests.integration.harness import Harness
from tests.integration.test_s3_channel import objects_under

LOOPBACK = NetworkPolicy.from_env("127.0.0.0/8")
SETTINGS = generator.CodegenSettings(
    retry_code_generation=0, capture_max_seconds=60, agent_max_steps=8
)


@pytest.fixture(scope="module")
def html_list() -> Iterator[RunningSite]:
    with serve("html_list") as running:
        yield running


def _capture_and_synthesize(
    site: RunningSite, fake: FakeBedrock, **settings: float
) -> tuple[Capture, list[Entry], generator.Candidate]:
    config = WebSourceConfig.model_validate(site.channel_config())
    llm = fake.client(model_id="anthropic.claude-agent-test", **settings)
    try:
        captured = generator.capture(config, policy=LOOPBACK, settings=SETTINGS, llm=llm)
        har = load_har(captured.har_path)  # synthesis deletes the capture's work dir
        candidate = generator.synthesize(
            structure_id(site.url), config, captured, policy=LOOPBACK, settings=SETTINGS
        )
    finally:
        llm.close()
    return captured, har, candidate


def test_the_agent_pages_through_the_site_and_its_clicks_become_the_recipe(
    html_list: RunningSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The system temp dir, where the capture's work dir and browser-use's folders would go.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with FakeBedrock() as fake:
        model = BrowsingModel()
        fake.respond_with(model)
        captured, har, candidate = _capture_and_synthesize(html_list, fake)
        requests = list(fake.requests)

    assert captured.driver == "browser-use"
    agent = captured.agent or {}
    assert agent["done"] and agent["stopped"] is None
    assert agent["usage"]["turns"] == len(requests) >= 2
    assert agent["usage"]["input_tokens"] > 0 and agent["usage"]["cost_usd"] > 0
    clicks = [s for s in captured.steps if s.action == "click next"]
    assert len(clicks) >= 2, [s.describe() for s in captured.steps]
    assert all(s.selector == 'a[rel~="next"]' for s in clicks)
    assert all(s.screenshot for s in clicks), "each agent step keeps what the model saw"
    pages = {e.url.split("?")[-1] for e in har}
    assert {"page=2", "page=3"} <= pages, "the pages the agent opened are in the HAR"
    assert requests[0].images, "the agent's model sees screenshots"

    assert candidate.proved and candidate.kind == "browser"
    assert 'a[rel~="next"]' in candidate.text
    assert candidate.provenance["capture"]["driver"] == "browser-use"
    assert candidate.provenance["capture"]["agent"]["steps"] == agent["steps"]

    # The agent's screenshots and files went with the capture's work dir: nothing is left.
    left = {p.name for p in tmp_path.iterdir()} - {"amazoniax-browser-use"}
    assert not left, f"left in the temp dir: {sorted(left)}"
    # browser-use's import made an empty /tmp/browser-use-downloads-* folder: gone as well.
    from browser_use.browser.session import DEFAULT_BROWSER_PROFILE

    assert not Path(DEFAULT_BROWSER_PROFILE.downloads_path or "/nonexistent").exists()


def test_the_agent_logs_in_with_placeholders_and_secrets_stay_out_of_prompts_and_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Credential names the explorer does not know ("account", "pin"): only the agent can log
    in, typing placeholders that browser-use replaces with the values."""
    with serve("csv_links") as site, FakeBedrock() as fake:
        given = site.channel_config()
        creds = given["login_credentials"]
        given["login_credentials"] = {"account": creds["username"], "pin": creds["password"]}
        config = WebSourceConfig.model_validate(given)
        secrets = generator.secret_values(config)
        model = BrowsingModel(sections=r"^$", login=("account", "pin"))
        fake.respond_with(model)
        caplog.set_level(logging.DEBUG)
        llm = fake.client(model_id="anthropic.claude-agent-test")
        try:
            captured = generator.capture(config, policy=LOOPBACK, settings=SETTINGS, llm=llm)
            candidate = generator.synthesize(
                structure_id(site.url), config, captured, policy=LOOPBACK, settings=SETTINGS
            )
        finally:
            llm.close()
        requests = list(fake.requests)

    assert captured.driver == "browser-use" and captured.login is None  # not the explorer
    assert any(s.action == "input" for s in captured.steps)
    assert model.typed == ["<secret>account</secret>", "<secret>pin</secret>"]
    assert "<secret>pin</secret>" in requests[0].all_text
    assert any(r.name.startswith("browser_use") for r in caplog.records), "its logs were read"
    for secret in secrets:
        assert all(secret not in request.all_text for request in requests)
        assert secret not in caplog.text
        assert secret not in json.dumps(candidate.provenance)
    assert candidate.proved, candidate.provenance.get("proof")
    assert candidate.provenance["capture"]["driver"] == "browser-use"


@pytest.mark.parametrize("failure", ["throttled", "timeout", "no_tool_call"])
def test_an_unusable_model_leaves_the_capture_to_the_explorer(
    html_list: RunningSite, failure: str
) -> None:
    with FakeBedrock() as fake:
        settings: dict[str, float] = {}
        if failure == "throttled":
            fake.throttle(2)  # one try and one retry, both throttled
        elif failure == "timeout":
            fake.delay(3)
            settings["timeout_seconds"] = 1.0
        else:
            for _ in range(3):
                fake.answer("I would click the Next link.")  # prose, not the tool call
        captured, _, candidate = _capture_and_synthesize(html_list, fake, **settings)

    agent = captured.agent or {}
    assert captured.driver == "explorer"
    expected = {"throttled": "throttled", "timeout": "timeout", "no_tool_call": "model"}[failure]
    assert str(agent["stopped"]).startswith(expected), agent
    assert any("did not drive the capture" in w for w in captured.warnings)
    assert any(s.action == "click next" for s in captured.steps), "the explorer paged"
    assert candidate.proved and candidate.provenance["capture"]["driver"] == "explorer"


def test_a_fetcher_code_run_with_bedrock_on_is_captured_by_the_agent(
    harness: Harness,
    fetcher_db: FetcherDB,
    stack: StackEndpoints,
    output_client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Through Dagster: the ``bedrock`` resource (env-configured, as in production) reaches
    the capture op, the agent drives, the recipe writer's prose falls back to the
    deterministic recipe, and the check metadata says who captured."""
    with serve("html_list") as site, FakeBedrock() as fake:
        model = BrowsingModel()
        fake.respond_with(lambda r: model(r) if "toolConfig" in r.body else "No recipe, sorry.")
        monkeypatch.setenv("AMAZONIAX_BEDROCK_MODEL_ID", "anthropic.claude-agent-test")
        monkeypatch.setenv("AMAZONIAX_BEDROCK_ENDPOINT_URL", fake.url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
        channel, job = f"ch-{uuid.uuid4().hex[:8]}", f"job-{uuid.uuid4().hex[:8]}"
        harness.produce(
            {"job_id": job, "channel_id": channel, "source_type": "html",
             "config": site.channel_config(), "is_new": True},
            key=channel,
        )  # fmt: skip
        result = harness.tick()
        (request,) = result.run_requests or []
        assert request.job_name == "fetcher_code_job"
        (run,) = harness.run_all(result)
        requests = list(fake.requests)
        expected = site.ground_truth()

    assert run.status is dg.DagsterRunStatus.SUCCESS
    checks = _check_metadata(harness, run)
    assert checks["reproduces_capture"]["capture_driver"] == "browser-use"
    assert checks["reproduces_capture"]["method"] == "deterministic"  # the prose fell back
    assert any("toolConfig" in r.body for r in requests), "the agent asked the model"
    assert any("toolConfig" not in r.body for r in requests), "so did the recipe writer"
    version = fetcher_db.latest_fetcher(structure_id(site.url))
    assert version is not None and version.kind == "browser"
    files = objects_under(output_client, stack.output_bucket, f"raw/{channel}/{job}/")
    text = b"".join(files.values()).decode()
    assert all(str(r["name"]) in text for r in expected) and expected


def _check_metadata(harness: Harness, run: dg.DagsterRun) -> dict[str, dict[str, Any]]:
    return {
        name: {key: value.value for key, value in data.metadata.items()}
        for name, data in harness.asset_checks(run).items()
    }
