"""The Bedrock path of generation against the local Converse server: a valid answer is
proved and used (provenance says bedrock, with the tokens used); a malformed answer, a
throttled service and a timeout each fall back to the deterministic synthesis, and the
provenance says why. Asked for a Python fetcher, Bedrock's module is proved in the sandbox
and becomes the candidate's ``fetcher.py``; a module without the entry point falls back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from amazoniax_dagster.core.messages import WebSourceConfig
from amazoniax_dagster.core.netpolicy import NetworkPolicy
from amazoniax_dagster.core.sites import structure_id
from amazoniax_dagster.devstack.demo_sites import RunningSite, serve
from fetcher_codegen import generator
from fetcher_codegen.deterministic import generate_deterministic
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


def _synthesize(
    site: RunningSite,
    fake: FakeBedrock,
    codegen: generator.CodegenSettings = SETTINGS,
    *,
    timeout_seconds: float = 10.0,
) -> generator.Candidate:
    config = WebSourceConfig.model_validate(site.channel_config())
    llm = fake.client(timeout_seconds=timeout_seconds)
    try:
        captured = generator.capture(config, policy=LOOPBACK, settings=SETTINGS)
        return generator.synthesize(
            structure_id(site.url), config, captured, policy=LOOPBACK, settings=codegen, llm=llm
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
    assert request.model_id is not None and "anthropic.claude-test" in request.model_id


@pytest.mark.parametrize("failure", ["malformed", "throttled", "timeout"])
def test_an_unusable_answer_falls_back_to_the_deterministic_path(
    site: RunningSite, failure: str, tmp_path: Path
) -> None:
    with FakeBedrock() as fake:
        timeout = 10.0
        if failure == "malformed":
            fake.malformed()
            fake.malformed()
        elif failure == "throttled":
            fake.throttle(5)
        else:
            fake.delay(3)
            timeout = 0.5
        candidate = _synthesize(site, fake, timeout_seconds=timeout)
    assert candidate.provenance["method"] == "deterministic" and candidate.proved
    reason = candidate.provenance["llm"]["fallback"]
    expected = {"malformed": "malformed", "throttled": "throttled", "timeout": "timeout"}
    assert expected[failure] in reason


# What a good model would answer when asked for Python: the json_pages API, page by page.
PYTHON_FETCHER = """
import json
import pathlib
import urllib.request


def fetch(config, out_dir, run_date):
    base = config["url"].rstrip("/")
    page = 1
    while page <= 50:
        url = f"{base}/v1/items?page={page}&per_page=20"
        with urllib.request.urlopen(url, timeout=10) as answer:
            body = json.load(answer)
        if not body["items"]:
            break
        pathlib.Path(out_dir, f"items_{page}.json").write_text(json.dumps(body["items"]))
        if page >= body["total_pages"]:
            break
        page += 1
    return {"pages": page}
"""
PYTHON = generator.CodegenSettings(retry_code_generation=0, llm_writes="python")


def test_asked_for_python_the_module_is_proved_in_the_sandbox_and_used(
    site: RunningSite,
) -> None:
    with FakeBedrock() as fake:
        fake.answer(f"```python\n{PYTHON_FETCHER}\n```")
        candidate = _synthesize(site, fake, PYTHON)
        (request,) = fake.requests
    assert "def fetch(config: dict, out_dir: str, run_date: str)" in request.all_text
    assert candidate.kind == "python" and candidate.entry_file == "fetcher.py"
    assert candidate.provenance["method"] == "bedrock" and candidate.proved
    assert candidate.provenance["proof"]["files"][0].startswith("items_")
    assert candidate.files() == {"fetcher.py": candidate.text.encode()}


def test_a_module_without_the_entry_point_falls_back_to_a_recipe(site: RunningSite) -> None:
    with FakeBedrock() as fake:
        for _ in range(2):  # the answer and its repair turn
            fake.answer("```python\ndef main():\n    return None\n```")
        candidate = _synthesize(site, fake, PYTHON)
    assert candidate.kind != "python" and candidate.proved
    assert candidate.provenance["llm"]["fallback"] == "invalid_answer"
    assert candidate.provenance["llm"]["asked_for"] == "python"
