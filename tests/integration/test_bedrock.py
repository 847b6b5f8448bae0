"""BedrockClient with the real boto3 ``bedrock-runtime`` client against a fake Converse server.

The fake (``tests/fakes/bedrock_server.py``) is a real HTTP server on 127.0.0.1; boto3 signs,
serialises and parses exactly as it would against AWS.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import yaml

from amazoniax_dagster.core.errors import ConfigError
from fetcher_codegen.llm import BedrockClient, BedrockSettings, GenerationResult
from fetcher_codegen.llm_errors import LLMFailure, LLMUnavailable
from fetcher_codegen.prompts import build_prompt
from resources.bedrock import BedrockResource
from tests.fakes.bedrock_server import FakeBedrock

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

MODEL = "anthropic.claude-test-v1:0"
ACCESS_KEY = "AKIAFAKEACCESSKEY01"
SECRET_KEY = "fake/Secret+Access+Key/0123456789"
CHANNEL_SECRET = "hunter2-channel-password"
SCHEMA: dict[str, Any] = {"type": "object", "required": ["kind"]}
PNG = b"\x89PNG\r\n\x1a\n" + b"fake-screenshot-bytes"
VALID = "Here is the recipe:\n\n```yaml\nkind: recipe\nrequests:\n  - url: https://shop.example/api\n```\n"
HAR = (
    "GET https://shop.example/api/items?page=1 -> 200 application/json (25 records)\n"
    f"POST https://shop.example/login form user=bob&password={CHANNEL_SECRET} -> 302\n"
    f"GET https://shop.example/api/me -> 200 text/plain: welcome back {CHANNEL_SECRET}\n"
)


class Validator:
    """Stands in for the recipe loader: YAML with a ``kind`` key, else ConfigError."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, text: str) -> dict[str, Any]:
        self.seen.append(text)
        data = yaml.safe_load(text)
        if not isinstance(data, dict) or "kind" not in data:
            raise ConfigError("the recipe has no 'kind' (every recipe names its kind)")
        return data


@pytest.fixture()
def fake() -> Iterator[FakeBedrock]:
    with FakeBedrock() as server:
        yield server


@pytest.fixture()
def settings(fake: FakeBedrock) -> BedrockSettings:
    return BedrockSettings(
        model_id=MODEL,
        region="us-east-1",
        endpoint_url=fake.url,
        max_tokens=1000,
        temperature=0.2,
        timeout_seconds=5,
        connect_timeout_seconds=2,
        max_throttle_retries=3,
        throttle_backoff_seconds=0.01,
        throttle_backoff_max_seconds=0.05,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )


def generate(
    settings: BedrockSettings, validate: Validator | None = None, **kwargs: Any
) -> GenerationResult[dict[str, Any]]:
    client = BedrockClient(settings)
    try:
        return client.generate_recipe(
            kwargs.pop("har_summary", HAR),
            kwargs.pop("screenshots", [PNG]),
            "the daily item list as JSON",
            SCHEMA,
            validate or Validator(),
            secret_values=[CHANNEL_SECRET],
            origins=["https://shop.example"],
            **kwargs,
        )
    finally:
        client.close()


def failure(settings: BedrockSettings, **kwargs: Any) -> LLMUnavailable:
    with pytest.raises(LLMUnavailable) as info:
        generate(settings, **kwargs)
    return info.value


def test_a_valid_answer_is_used(
    fake: FakeBedrock, settings: BedrockSettings, caplog: pytest.LogCaptureFixture
) -> None:
    fake.answer(VALID, input_tokens=1234, output_tokens=56)
    validate = Validator()
    with caplog.at_level(logging.INFO, logger="fetcher_codegen"):
        result = generate(settings, validate)

    assert result.value == {"kind": "recipe", "requests": [{"url": "https://shop.example/api"}]}
    assert validate.seen == ["kind: recipe\nrequests:\n  - url: https://shop.example/api\n"]
    assert result.text == validate.seen[0]
    usage = result.usage
    assert (usage.input_tokens, usage.output_tokens) == (1234, 56)
    assert usage.cost_usd == pytest.approx((1234 * 0.003 + 56 * 0.015) / 1000)
    assert (usage.attempts, usage.turns, usage.model_id) == (1, 1, MODEL)
    assert usage.latency_ms == 12 and usage.elapsed_seconds > 0

    [request] = fake.requests
    assert request.method == "POST" and request.model_id == MODEL
    assert request.path == "/model/anthropic.claude-test-v1%3A0/converse"
    assert request.authorization.startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/")
    assert "/us-east-1/bedrock/aws4_request" in request.authorization
    assert request.body["inferenceConfig"] == {"maxTokens": 1000, "temperature": 0.2}
    assert request.images == [("png", PNG)]
    assert '"required": [\n  "kind"\n ]' in request.system_text
    assert "https://shop.example" in request.system_text
    assert "GET https://shop.example/api/items?page=1" in request.texts[0]
    assert "the daily item list as JSON" in request.texts[0]
    assert CHANNEL_SECRET not in request.all_text
    assert SECRET_KEY not in str(request.headers)

    logged = caplog.text
    assert MODEL in logged and "tokens in 1234, out 56" in logged and "attempts 1" in logged
    assert SECRET_KEY not in logged and ACCESS_KEY not in logged


def test_no_yaml_gets_one_repair_turn_then_gives_up(
    fake: FakeBedrock, settings: BedrockSettings
) -> None:
    fake.answer("I am sorry, I cannot write that.")
    fake.answer("Still nothing useful.")
    err = failure(settings)

    assert err.reason is LLMFailure.MALFORMED_ANSWER
    assert "no YAML recipe" in err.detail
    assert (err.usage.attempts, err.usage.turns) == (2, 2)
    assert err.usage.input_tokens > 0 and err.usage.cost_usd > 0
    first, second = fake.requests
    roles = [m["role"] for m in second.messages]
    assert roles == ["user", "assistant", "user"]
    assert second.messages[1]["content"] == [{"text": "I am sorry, I cannot write that."}]
    assert "could not be used" in second.texts[-1] and "no YAML recipe" in second.texts[-1]
    assert second.images == [("png", PNG)]  # the whole conversation is sent again
    assert second.system_text == first.system_text


def test_invalid_recipe_is_repaired(fake: FakeBedrock, settings: BedrockSettings) -> None:
    fake.answer("```yaml\nrequests: []\n```", input_tokens=100, output_tokens=10)
    fake.answer(VALID, input_tokens=200, output_tokens=20)
    validate = Validator()
    result = generate(settings, validate)

    assert result.value["kind"] == "recipe"
    assert len(validate.seen) == 2
    assert (result.usage.turns, result.usage.attempts) == (2, 2)
    assert (result.usage.input_tokens, result.usage.output_tokens) == (300, 30)
    assert "the recipe has no 'kind'" in fake.requests[1].texts[-1]


def test_invalid_recipe_after_repair_gives_up_without_leaking_secrets(
    fake: FakeBedrock, settings: BedrockSettings
) -> None:
    def leaky(text: str) -> dict[str, Any]:
        raise ConfigError(f"login failed with password {CHANNEL_SECRET}")

    fake.answer(VALID)
    fake.answer(VALID)
    client = BedrockClient(settings)
    with pytest.raises(LLMUnavailable) as info:  # secrets given as a one-shot iterator
        client.generate_recipe(HAR, [], "goal", SCHEMA, leaky, secret_values=iter([CHANNEL_SECRET]))
    err = info.value
    assert err.reason is LLMFailure.INVALID_ANSWER
    assert "ConfigError: login failed with password ***" in err.detail
    assert CHANNEL_SECRET not in str(err)
    assert all(CHANNEL_SECRET not in r.all_text for r in fake.requests)
    assert fake.pending() == 0


def test_a_validator_crash_is_an_invalid_answer(
    fake: FakeBedrock, settings: BedrockSettings
) -> None:
    def crashes(text: str) -> dict[str, Any]:
        raise TypeError("list indices must be integers")

    fake.answer(VALID)
    client = BedrockClient(replace(settings, max_repair_turns=0))
    with pytest.raises(LLMUnavailable) as info:
        client.generate_recipe(HAR, [], "goal", SCHEMA, crashes)
    assert info.value.reason is LLMFailure.INVALID_ANSWER
    assert "TypeError" in info.value.detail
    assert len(fake.requests) == 1


def test_a_response_not_in_converse_shape_is_malformed(
    fake: FakeBedrock, settings: BedrockSettings
) -> None:
    fake.malformed()
    err = failure(settings)
    assert err.reason is LLMFailure.MALFORMED_ANSWER
    assert "not the Converse shape" in err.detail
    assert len(fake.requests) == 1  # a broken service is not asked to repair anything


def test_python_is_extracted_only_when_asked(fake: FakeBedrock, settings: BedrockSettings) -> None:
    fake.answer("```python\ndef fetch(ctx):\n    return []\n```")
    client = BedrockClient(settings)
    result = client.generate_recipe(HAR, [], "goal", SCHEMA, lambda text: text, want="python")
    assert result.value == "def fetch(ctx):\n    return []\n"
    assert "```python" in fake.requests[0].system_text
    assert '"required"' not in fake.requests[0].system_text


def test_throttled_twice_then_success(
    fake: FakeBedrock, settings: BedrockSettings, caplog: pytest.LogCaptureFixture
) -> None:
    fake.throttle(2)
    fake.answer(VALID)
    with caplog.at_level(logging.WARNING, logger="fetcher_codegen"):
        result = generate(settings)
    assert result.usage.attempts == 3 and result.usage.turns == 1
    assert len(fake.requests) == 3
    assert caplog.text.count("throttled (attempt") == 2


@pytest.mark.parametrize(
    ("code", "status"),
    [("ServiceUnavailableException", 503), ("ModelNotReadyException", 429)],
)
def test_other_throttling_answers_are_retried(
    fake: FakeBedrock, settings: BedrockSettings, code: str, status: int
) -> None:
    fake.error(code, status, "not now")
    fake.answer(VALID)
    assert generate(settings).usage.attempts == 2


def test_throttled_always_gives_up(fake: FakeBedrock, settings: BedrockSettings) -> None:
    fake.throttle(10)
    err = failure(replace(settings, max_throttle_retries=2))
    assert err.reason is LLMFailure.THROTTLED
    assert "ThrottlingException" in err.detail and "gave up after 3 attempts" in err.detail
    assert err.usage.attempts == 3 and err.usage.turns == 0
    assert len(fake.requests) == 3


@pytest.mark.parametrize(
    ("code", "status", "reason"),
    [
        ("AccessDeniedException", 403, LLMFailure.REJECTED),
        ("ValidationException", 400, LLMFailure.REJECTED),
        ("ResourceNotFoundException", 404, LLMFailure.REJECTED),
        ("InternalServerException", 500, LLMFailure.SERVICE_ERROR),
        ("ModelTimeoutException", 408, LLMFailure.TIMEOUT),
    ],
)
def test_service_errors_are_not_retried(
    fake: FakeBedrock, settings: BedrockSettings, code: str, status: int, reason: LLMFailure
) -> None:
    fake.error(code, status, "no")
    fake.answer(VALID)
    err = failure(settings)
    assert err.reason is reason
    assert code in err.detail
    assert len(fake.requests) == 1


def test_timeout_gives_up_quickly(fake: FakeBedrock, settings: BedrockSettings) -> None:
    fake.delay(10)
    fake.answer(VALID)
    started = time.monotonic()
    err = failure(replace(settings, timeout_seconds=0.3))
    assert err.reason is LLMFailure.TIMEOUT
    assert time.monotonic() - started < 3
    assert err.usage.attempts == 1


def test_unreachable_endpoint(settings: BedrockSettings) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nobody listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = time.monotonic()
    err = failure(replace(settings, endpoint_url=f"http://127.0.0.1:{port}"))
    assert err.reason is LLMFailure.UNREACHABLE
    assert "EndpointConnectionError" in err.detail
    assert time.monotonic() - started < 3


def test_over_the_token_budget_nothing_is_sent(
    fake: FakeBedrock, settings: BedrockSettings
) -> None:
    err = failure(replace(settings, max_input_tokens_per_generation=300))
    assert err.reason is LLMFailure.BUDGET_EXCEEDED
    assert "budget allows 300" in err.detail
    assert fake.requests == [] and err.usage.attempts == 0


def test_over_the_cost_budget_nothing_is_sent(fake: FakeBedrock, settings: BedrockSettings) -> None:
    fake.answer(VALID)
    err = failure(
        replace(settings, input_price_per_1k_tokens=10.0, max_cost_usd_per_generation=0.05)
    )
    assert err.reason is LLMFailure.BUDGET_EXCEEDED
    assert fake.requests == []


def test_a_long_capture_is_trimmed_to_fit(fake: FakeBedrock, settings: BedrockSettings) -> None:
    har = "\n".join(f"GET https://shop.example/api/items?page={n} -> 200" for n in range(20_000))
    fake.answer(VALID)
    result = generate(replace(settings, max_input_tokens_per_generation=8_000), har_summary=har)
    assert result.usage.har_chars_trimmed > 0
    assert any("trimmed" in w for w in result.warnings)
    assert "left out to fit the token budget" in fake.requests[0].texts[0]
    assert result.usage.input_tokens <= 8_000  # the fake counts chars/4 like the estimate


def test_no_repair_turn_when_the_budget_is_spent(
    fake: FakeBedrock, settings: BedrockSettings
) -> None:
    one_turn = build_prompt(
        har_summary=HAR,
        channel_goal="the daily item list as JSON",
        recipe_schema=SCHEMA,
        screenshots=[PNG],
        secret_values=[CHANNEL_SECRET],
        origins=["https://shop.example"],
    ).estimated_tokens
    fake.answer("no recipe, sorry")
    fake.answer(VALID)
    err = failure(replace(settings, max_input_tokens_per_generation=int(one_turn * 1.5)))
    assert err.reason is LLMFailure.MALFORMED_ANSWER
    assert "no repair turn" in err.detail
    assert len(fake.requests) == 1


def test_disabled_sends_nothing(fake: FakeBedrock, settings: BedrockSettings) -> None:
    err = failure(replace(settings, enabled=False))
    assert err.reason is LLMFailure.NOT_CONFIGURED
    assert fake.requests == []


def test_the_resource_builds_a_working_client(
    fake: FakeBedrock, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dagster as dg

    monkeypatch.setenv("TEST_BEDROCK_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("TEST_BEDROCK_SECRET", SECRET_KEY)
    resource = BedrockResource(
        enabled=True,
        model_id=MODEL,
        endpoint_url=fake.url,
        timeout_seconds=5,
        aws_access_key_id=dg.EnvVar("TEST_BEDROCK_KEY_ID"),
        aws_secret_access_key=dg.EnvVar("TEST_BEDROCK_SECRET"),
    )
    fake.answer(VALID)

    @dg.op
    def write(bedrock: BedrockResource) -> dict[str, Any]:
        client = bedrock.get_client()
        result = client.generate_recipe(HAR, [PNG], "goal", SCHEMA, Validator())
        return result.usage.to_metadata()

    @dg.job(resource_defs={"bedrock": resource})
    def job() -> None:
        write()

    outcome = job.execute_in_process()
    assert outcome.success
    assert outcome.output_for_node("write")["attempts"] == 1
    assert fake.requests[0].authorization.startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/")
