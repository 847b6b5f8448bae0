"""The Bedrock path of generation against the local Converse server: a valid answer is
proved and used (provenance says bedrock, with the tokens used); a malformed answer, a
throttled service and a timeout each fall back to the deterministic synthesis, and the
provenance says why."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from amazoniax_dagster.demo_sites import RunningSite, serve
from amazoniax_dagster.messages import WebSourceConfig
from amazoniax_dagster.netpolicy import NetworkPolicy
from amazoniax_dagster.sites import structure_id
from fetcher_codegen import generator
from fetcher_codegen.deterministic import generate_deterministic
from fetcher_codegen.llm import BedrockClient, BedrockSettings
from tests.fakes.bedrock_server import FakeBedrock

LOOPBACK = NetworkPolicy.from_env("127.0.0.0/8")
SETTINGS = generator.CodegenSettings(retry_code_generation=0)


@pytest.fixture(scope="module")
def site() -> Iterator[RunningSite]:
    with serve("json_pages") as running:
        yield running


@pytest.fixture(scope="module")
def known_good_recipe(site: RunningSite, tmp_path_factory: pytest.TempPathFactory) -> str:
    """What a good model would answer: a recipe that works for this site."""
    config = WebSourceConfig.model_validate(site.channel_config())
    found = generate_deterministic(config, tmp_path_factory.mktemp("cap"), policy=LOOPBACK)
    assert found.proof.ok
    return found.recipe_text


def _synthesize(site: RunningSite, fake: FakeBedrock, **settings: float) -> generator.Candidate:
    config = WebSourceConfig.model_validate(site.channel_config())
    llm = BedrockClient(
        BedrockSettings(
            model_id="anthropic.claude-test",
            endpoint_url=fake.url,
            aws_access_key_id="test",
            aws_secret_access_key="test",
            throttle_backoff_seconds=0.01,
            throttle_backoff_max_seconds=0.02,
            max_throttle_retries=1,
            timeout_seconds=settings.get("timeout_seconds", 10.0),
            connect_timeout_seconds=2.0,
        )
    )
    try:
        captured = generator.capture(config, policy=LOOPBACK, settings=SETTINGS)
        return generator.synthesize(
            structure_id(site.url), config, captured, policy=LOOPBACK, settings=SETTINGS, llm=llm
        )
    finally:
        llm.close()


def test_a_valid_answer_is_proved_and_used(site: RunningSite, known_good_recipe: str) -> None:
    with FakeBedrock() as fake:
        fake.answer(f"Here is the recipe:\n```yaml\n{known_good_recipe}\n```", output_tokens=321)
        candidate = _synthesize(site, fake)
        (request,) = fake.requests
    assert candidate.provenance["method"] == "bedrock" and candidate.proved
    assert candidate.provenance["usage"]["output_tokens"] == 321
    assert request.images, "the screenshots went with the HAR summary"
    assert "anthropic.claude-test" in request.model_id


@pytest.mark.parametrize("failure", ["malformed", "throttled", "timeout"])
def test_an_unusable_answer_falls_back_to_the_deterministic_path(
    site: RunningSite, failure: str, tmp_path: Path
) -> None:
    with FakeBedrock() as fake:
        extra: dict[str, float] = {}
        if failure == "malformed":
            fake.malformed()
            fake.malformed()
        elif failure == "throttled":
            fake.throttle(5)
        else:
            fake.delay(3)
            extra["timeout_seconds"] = 0.5
        candidate = _synthesize(site, fake, **extra)
    assert candidate.provenance["method"] == "deterministic" and candidate.proved
    reason = candidate.provenance["llm"]["fallback"]
    expected = {"malformed": "malformed", "throttled": "throttled", "timeout": "timeout"}
    assert expected[failure] in reason
