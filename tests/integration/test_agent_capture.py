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
from collections.abc import Iterator

import pytest

from amazoniax_dagster.demo_sites import RunningSite, serve
from amazoniax_dagster.messages import WebSourceConfig
from amazoniax_dagster.netpolicy import NetworkPolicy
from amazoniax_dagster.sites import structure_id
from fetcher_codegen import generator
from fetcher_codegen.capture import Capture
from fetcher_codegen.har import Entry, load_har
from tests.fakes.bedrock_server import FakeBedrock
from tests.fakes.browsing_model import BrowsingModel

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
    html_list: RunningSite,
) -> None:
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
