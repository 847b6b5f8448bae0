"""Amazon Bedrock as the fetcher writer's LLM: one Converse conversation per generation.

The contract with the caller (fetcher synthesis): :meth:`BedrockClient.generate_recipe`
returns a *validated* answer, or raises :class:`LLMUnavailable` and nothing else. Its
``reason`` (an :class:`LLMFailure`) goes into the provenance file while the deterministic
path carries on, so an LLM that is off, down, slow, throttled, too expensive or wrong never
fails a generation. One generation::

    build the prompt (redacted; capture summary trimmed to the budget) -- too big: refuse
    turn 1   Converse (throttling retried, backoff + jitter) -> extract YAML -> validate
    turn 2   only when turn 1 was unusable and the budget allows: the error is sent back
             once (a repair turn) -> extract -> validate
    still unusable: LLMUnavailable(malformed_answer | invalid_answer)

Budgets hold per generation: input tokens (estimated before sending, see
:mod:`fetcher_codegen.prompts`, then counted from the response's ``usage``) and cost in USD
(a request is sent only if, with ``max_tokens`` of output, it cannot pass the limit).

Only throttling is retried (ThrottlingException, ServiceUnavailableException,
ModelNotReadyException, HTTP 429/503), by tenacity; botocore's own retries are off, so
``attempts`` counts every request. A timeout is not retried: the fallback is ready now.
boto3 is imported lazily; AWS keys are never logged, log lines say model, tokens, cost and
attempts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Generic, Protocol, TypeVar, cast

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_exponential_jitter

from amazoniax_dagster.core.redaction import Redactor
from fetcher_codegen.llm_errors import (
    LLMFailure,
    LLMUnavailable,
    LLMUsage,
    _is_throttled,
    translate_error,
)
from fetcher_codegen.prompts import (
    PYTHON_CONTRACT,
    Prompt,
    PromptTooLarge,
    Want,
    build_prompt,
    estimate_tokens,
    extract_answer,
    repair_prompt,
)

T = TypeVar("T")
log = logging.getLogger(__name__)

# Everything else the service answers (AccessDeniedException, ValidationException,
# ResourceNotFoundException, UnrecognizedClientException, ...) means it refused the request.


@dataclass(frozen=True)
class GenerationResult(Generic[T]):
    value: T  # what ``validate`` returned
    text: str  # the recipe YAML (or module source) that was validated
    usage: LLMUsage
    warnings: tuple[str, ...] = ()  # e.g. the capture summary was trimmed, a screenshot left out


@dataclass(frozen=True)
class BedrockSettings:
    """Plain settings of :class:`BedrockClient` (``resources.bedrock`` fills them)."""

    model_id: str = ""
    region: str = "us-east-1"
    endpoint_url: str | None = None  # a local fake or a VPC endpoint; None: AWS's own
    enabled: bool = True
    max_tokens: int = 4096
    temperature: float = 0.0
    max_input_tokens_per_generation: int = 100_000
    max_cost_usd_per_generation: float = 1.0
    input_price_per_1k_tokens: float = 0.003
    output_price_per_1k_tokens: float = 0.015
    timeout_seconds: float = 120.0  # read timeout of one request
    connect_timeout_seconds: float = 10.0
    max_throttle_retries: int = 4
    throttle_backoff_seconds: float = 2.0  # first wait; doubles, plus up to as much jitter
    throttle_backoff_max_seconds: float = 60.0
    max_repair_turns: int = 1
    aws_access_key_id: str | None = field(default=None, repr=False)
    aws_secret_access_key: str | None = field(default=None, repr=False)

    def cost_usd(self, input_tokens: int, output_tokens: int) -> float:
        return (
            input_tokens * self.input_price_per_1k_tokens
            + output_tokens * self.output_price_per_1k_tokens
        ) / 1000


class ConverseClient(Protocol):
    """The one method of boto3's ``bedrock-runtime`` client this module uses."""

    def converse(self, **kwargs: Any) -> Mapping[str, Any]: ...


def make_bedrock_client(settings: BedrockSettings) -> ConverseClient:
    """A boto3 ``bedrock-runtime`` client with botocore's retries off and our timeouts."""
    import boto3
    from botocore.config import Config

    config = Config(
        region_name=settings.region,
        connect_timeout=settings.connect_timeout_seconds,
        read_timeout=settings.timeout_seconds,
        # tenacity retries throttling, with the stored settings; botocore's would hide them.
        retries={"total_max_attempts": 1, "mode": "standard"},
        user_agent_extra="amazoniax-fetcher-codegen",
    )
    session = boto3.session.Session()
    client = session.client(
        "bedrock-runtime",
        endpoint_url=settings.endpoint_url or None,
        aws_access_key_id=settings.aws_access_key_id or None,
        aws_secret_access_key=settings.aws_secret_access_key or None,
        config=config,
    )
    return cast(ConverseClient, client)


@dataclass(frozen=True)
class _Answer:
    text: str
    stop_reason: str


class BedrockClient:
    """Writes fetchers with a Bedrock model; see the module docstring for the contract."""

    def __init__(self, settings: BedrockSettings, *, client: ConverseClient | None = None) -> None:
        self._settings = settings
        self._client = client
        # AWS keys could only leak through an error message; mask them there too.
        self._key_redactor = Redactor(
            key for key in (settings.aws_access_key_id, settings.aws_secret_access_key) if key
        )

    @property
    def settings(self) -> BedrockSettings:
        return self._settings

    def not_configured_reason(self) -> str | None:
        """Why this client cannot be used at all, or None when it is configured."""
        if not self._settings.enabled:
            return "the LLM is disabled (bedrock enabled=false)"
        if not self._settings.model_id.strip():
            return "no Bedrock model id is configured"
        return None

    def generate_recipe(
        self,
        har_summary: str,
        screenshots: Sequence[bytes],
        channel_goal: str,
        recipe_schema: Mapping[str, Any],
        validate: Callable[[str], T],
        *,
        want: Want = "recipe",
        secret_values: Iterable[str] = (),
        origins: Sequence[str] = (),
        navigation_details: Mapping[str, Any] | None = None,
        capture_date: date | None = None,
        python_contract: str = PYTHON_CONTRACT,
    ) -> GenerationResult[T]:
        """Ask the model for a recipe (or a Python module), validated by ``validate``.

        ``validate`` gets the extracted YAML (or source) and returns the loaded object; any
        exception it raises marks the answer invalid (the text goes back in a repair turn).
        ``secret_values`` are the channel's secrets, masked in every prompt; ``origins`` the
        capture's origins, the only ones the answer may use. Raises :class:`LLMUnavailable`.
        """
        settings = self._settings
        usage = LLMUsage(model_id=settings.model_id)
        started = time.monotonic()
        secrets = tuple(secret_values)  # used twice: a generator must not run dry
        try:
            return self._generate(
                usage,
                validate,
                want,
                Redactor(secrets),
                lambda cap: build_prompt(
                    har_summary=har_summary,
                    channel_goal=channel_goal,
                    recipe_schema=recipe_schema,
                    screenshots=screenshots,
                    secret_values=secrets,
                    origins=origins,
                    navigation_details=navigation_details,
                    capture_date=capture_date,
                    want=want,
                    max_input_tokens=cap,
                    python_contract=python_contract,
                ),
            )
        except LLMUnavailable as exc:
            log.warning(
                "bedrock %s gave no usable %s (%s): %s [tokens in %d, out %d, cost $%.4f, "
                "attempts %d]",
                settings.model_id or "-",
                want,
                exc.reason,
                exc.detail,
                usage.input_tokens,
                usage.output_tokens,
                usage.cost_usd,
                usage.attempts,
            )
            raise
        finally:
            usage.elapsed_seconds = time.monotonic() - started

    def close(self) -> None:
        if self._client is not None and hasattr(self._client, "close"):
            self._client.close()
        self._client = None

    def _generate(
        self,
        usage: LLMUsage,
        validate: Callable[[str], T],
        want: Want,
        redactor: Redactor,
        make_prompt: Callable[[int], Prompt],
    ) -> GenerationResult[T]:
        settings = self._settings
        reason = self.not_configured_reason()
        if reason is not None:
            raise LLMUnavailable(LLMFailure.NOT_CONFIGURED, reason, usage)
        cap = self._input_token_cap()
        if cap <= 0:
            raise LLMUnavailable(
                LLMFailure.BUDGET_EXCEEDED,
                f"max_tokens={settings.max_tokens} of output alone could cost "
                f"${settings.cost_usd(0, settings.max_tokens):.4f}, over the budget of "
                f"${settings.max_cost_usd_per_generation} per generation",
                usage,
            )
        try:
            prompt = make_prompt(cap)
        except PromptTooLarge as exc:
            raise LLMUnavailable(LLMFailure.BUDGET_EXCEEDED, str(exc), usage) from exc
        usage.har_chars_trimmed = prompt.har_chars_trimmed

        messages: list[dict[str, Any]] = [prompt.user_message()]
        estimated = prompt.estimated_tokens
        failure = LLMFailure.MALFORMED_ANSWER
        problem = ""
        for turn in range(settings.max_repair_turns + 1):
            over = self._budget_problem(usage, estimated)
            if over is not None and turn == 0:
                raise LLMUnavailable(LLMFailure.BUDGET_EXCEEDED, over, usage)
            if over is not None:
                raise LLMUnavailable(failure, f"{problem} (no repair turn: {over})", usage)
            answer = self._converse(prompt.system, messages, usage, estimated)
            try:
                text = extract_answer(answer.text, want)
            except ValueError as exc:
                failure, problem = LLMFailure.MALFORMED_ANSWER, str(exc)
            else:
                try:
                    value = validate(text)
                except Exception as exc:  # untrusted output: whatever breaks, the answer is bad
                    failure = LLMFailure.INVALID_ANSWER
                    problem = redactor(f"the {want} is invalid: {type(exc).__name__}: {exc}")
                else:
                    log.info(
                        "bedrock %s wrote a valid %s in %d turn(s): tokens in %d, out %d, "
                        "cost $%.4f, attempts %d",
                        settings.model_id,
                        want,
                        usage.turns,
                        usage.input_tokens,
                        usage.output_tokens,
                        usage.cost_usd,
                        usage.attempts,
                    )
                    return GenerationResult(value, text, usage, prompt.warnings)
            if answer.stop_reason != "end_turn":
                problem += f" (the model stopped with {answer.stop_reason!r})"
            repair = repair_prompt(problem, want=want, redactor=redactor)
            messages += [
                {"role": "assistant", "content": [{"text": answer.text or "(empty)"}]},
                {"role": "user", "content": [{"text": repair}]},
            ]
            estimated += estimate_tokens(answer.text, repair)
        raise LLMUnavailable(failure, problem, usage)

    def _input_token_cap(self) -> int:
        """Input tokens one generation may send: the token budget, or less if cost-bound."""
        settings = self._settings
        cap = settings.max_input_tokens_per_generation
        if settings.input_price_per_1k_tokens > 0:
            spare = settings.max_cost_usd_per_generation - settings.cost_usd(0, settings.max_tokens)
            cap = min(cap, int(spare * 1000 / settings.input_price_per_1k_tokens))
        return cap

    def _budget_problem(self, usage: LLMUsage, estimated_input: int) -> str | None:
        """Why a request of ``estimated_input`` tokens must not be sent, or None."""
        settings = self._settings
        limit = settings.max_input_tokens_per_generation
        if usage.input_tokens + estimated_input > limit:
            return (
                f"about {estimated_input} more input tokens would pass the budget of {limit} "
                f"per generation ({usage.input_tokens} used)"
            )
        worst = usage.cost_usd + settings.cost_usd(estimated_input, settings.max_tokens)
        if worst > settings.max_cost_usd_per_generation:
            return (
                f"the request could bring the cost to ${worst:.4f}, over the budget of "
                f"${settings.max_cost_usd_per_generation} per generation "
                f"(${usage.cost_usd:.4f} used)"
            )
        return None

    def _converse(
        self, system: str, messages: list[dict[str, Any]], usage: LLMUsage, estimated: int
    ) -> _Answer:
        """One turn of a recipe generation: a metered Converse request, its text."""
        settings = self._settings
        request: dict[str, Any] = {
            "modelId": settings.model_id,
            "system": [{"text": system}],
            "messages": messages,
            "inferenceConfig": {
                "maxTokens": settings.max_tokens,
                "temperature": settings.temperature,
            },
        }
        response = self.converse(request, usage, estimated_input=estimated)
        text = _text(response)
        if text is None:
            raise LLMUnavailable(
                LLMFailure.MALFORMED_ANSWER,
                "the Converse response has no output message (not the Converse shape)",
                usage,
            )
        return _Answer(text, str(response.get("stopReason") or "unknown"))

    def converse(
        self, request: Mapping[str, Any], usage: LLMUsage, *, estimated_input: int
    ) -> Mapping[str, Any]:
        """One Converse request under this client's rules, for any caller (the recipe
        writer, the browser agent): refused when it could pass the budgets, retried while
        throttled, its usage added to ``usage``. Raises :class:`LLMUnavailable` only."""
        settings = self._settings
        reason = self.not_configured_reason()
        if reason is not None:
            raise LLMUnavailable(LLMFailure.NOT_CONFIGURED, reason, usage)
        over = self._budget_problem(usage, estimated_input)
        if over is not None:
            raise LLMUnavailable(LLMFailure.BUDGET_EXCEEDED, over, usage)
        client = self._get_client(usage)

        def once() -> Mapping[str, Any]:
            from botocore.exceptions import BotoCoreError, ClientError

            usage.attempts += 1
            try:
                return client.converse(**request)
            except (BotoCoreError, ClientError, OSError) as exc:
                error = translate_error(exc, usage)
                detail = self._key_redactor(error.detail)
                raise LLMUnavailable(error.reason, detail, usage) from exc

        def log_retry(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.warning(
                "bedrock %s throttled (attempt %d of %d): %s; retrying",
                settings.model_id,
                state.attempt_number,
                settings.max_throttle_retries + 1,
                exc.detail if isinstance(exc, LLMUnavailable) else exc,
            )

        attempts_before = usage.attempts
        backoff = settings.throttle_backoff_seconds
        retrying = Retrying(
            stop=stop_after_attempt(settings.max_throttle_retries + 1),
            wait=wait_exponential_jitter(
                initial=backoff, max=settings.throttle_backoff_max_seconds, jitter=backoff
            ),
            retry=retry_if_exception(_is_throttled),
            before_sleep=log_retry,
            reraise=True,
        )
        try:
            response = retrying(once)
        except LLMUnavailable as exc:
            if exc.reason is LLMFailure.THROTTLED:
                attempts = usage.attempts - attempts_before
                raise LLMUnavailable(
                    exc.reason, f"{exc.detail}; gave up after {attempts} attempts", usage
                ) from exc.__cause__
            raise
        self._record(response, usage, estimated_input)
        return response

    def _record(self, response: Mapping[str, Any], usage: LLMUsage, estimated: int) -> None:
        """Add the response's usage to ``usage`` (estimates stand in for a missing one)."""
        settings = self._settings
        usage.turns += 1
        reported = response.get("usage")
        reported = reported if isinstance(reported, Mapping) else {}
        input_tokens = _as_int(reported.get("inputTokens"), estimated)
        output_tokens = _as_int(
            reported.get("outputTokens"), estimate_tokens(_text(response) or "")
        )
        usage.input_tokens += input_tokens
        usage.output_tokens += output_tokens
        usage.cost_usd += settings.cost_usd(input_tokens, output_tokens)
        metrics = response.get("metrics")
        if isinstance(metrics, Mapping):
            usage.latency_ms += _as_int(metrics.get("latencyMs"), 0)
        log.info(
            "bedrock %s turn %d: tokens in %d, out %d, cost $%.4f so far, attempts %d, stop %s",
            settings.model_id,
            usage.turns,
            input_tokens,
            output_tokens,
            usage.cost_usd,
            usage.attempts,
            response.get("stopReason") or "unknown",
        )

    def _get_client(self, usage: LLMUsage) -> ConverseClient:
        if self._client is None:
            try:
                self._client = make_bedrock_client(self._settings)
            except ImportError as exc:
                raise LLMUnavailable(
                    LLMFailure.NOT_CONFIGURED, f"boto3 is not installed ({exc})", usage
                ) from exc
            except Exception as exc:  # boto raises many kinds while configuring a client
                raise translate_error(exc, usage) from exc
        return self._client


def _text(response: Mapping[str, Any]) -> str | None:
    """The answer's text blocks joined; None when the response is not the Converse shape."""
    try:
        blocks = response["output"]["message"]["content"]
        return "".join(b["text"] for b in blocks if isinstance(b, Mapping) and "text" in b)
    except (KeyError, TypeError):
        return None


def _as_int(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


__all__ = [
    "BedrockClient",
    "BedrockSettings",
    "ConverseClient",
    "GenerationResult",
    "make_bedrock_client",
]
