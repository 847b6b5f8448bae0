"""What a Bedrock call costs and how it fails: usage, failure kinds, and botocore errors in the
product's error tree."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from amazoniax_dagster.core.errors import AmazoniaxError

THROTTLE_CODES = frozenset(
    {
        "ThrottlingException",
        "ServiceUnavailableException",
        "ModelNotReadyException",
        "TooManyRequestsException",
    }
)


TIMEOUT_CODES = frozenset({"ModelTimeoutException", "RequestTimeout", "RequestTimeoutException"})


SERVICE_ERROR_CODES = frozenset(
    {"InternalServerException", "ModelErrorException", "ModelStreamErrorException"}
)


class LLMFailure(StrEnum):
    """Why no usable answer came back; recorded in the provenance file."""

    NOT_CONFIGURED = "not_configured"  # disabled, no model id, no credentials, no boto3
    UNREACHABLE = "unreachable"  # connection refused/closed, DNS, TLS
    TIMEOUT = "timeout"  # connect or read timeout, ModelTimeoutException
    THROTTLED = "throttled"  # still throttled after the configured retries
    BUDGET_EXCEEDED = "budget_exceeded"  # tokens or cost; the request was not sent
    REJECTED = "rejected"  # access denied, unknown model, invalid request (4xx)
    SERVICE_ERROR = "service_error"  # 5xx, model error
    MALFORMED_ANSWER = "malformed_answer"  # no YAML/Python in the answer, or no answer
    INVALID_ANSWER = "invalid_answer"  # the extracted recipe/module failed validation


@dataclass
class LLMUsage:
    """What one generation used; ``to_metadata()`` goes into provenance and logs."""

    model_id: str
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    attempts: int = 0  # Converse requests sent, throttled ones included
    turns: int = 0  # answers received (2 after a repair turn)
    latency_ms: int = 0  # as reported by the service, summed
    elapsed_seconds: float = 0.0  # wall time of the whole generation, backoff included
    har_chars_trimmed: int = 0

    def to_metadata(self) -> dict[str, Any]:
        data = asdict(self)
        data["cost_usd"] = round(self.cost_usd, 6)
        data["elapsed_seconds"] = round(self.elapsed_seconds, 3)
        return data


class LLMUnavailable(AmazoniaxError):
    """No usable LLM answer: the caller falls back to the deterministic path.

    Not a failure of the job: ``reason`` and ``usage`` are recorded, nothing is retried.
    """

    error_class = "llm_unavailable"

    def __init__(self, reason: LLMFailure, detail: str, usage: LLMUsage | None = None) -> None:
        super().__init__(f"LLM unavailable ({reason}): {detail}")
        self.reason = reason
        self.detail = detail
        self.usage = usage if usage is not None else LLMUsage(model_id="")


def translate_error(exc: BaseException, usage: LLMUsage | None = None) -> LLMUnavailable:
    """Map a botocore/boto3 (or socket) error from a Converse call to :class:`LLMUnavailable`."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        HTTPClientError,
        NoCredentialsError,
        NoRegionError,
        ParamValidationError,
        PartialCredentialsError,
        ReadTimeoutError,
    )

    name = type(exc).__name__
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        said = f"Bedrock answered {code or 'an error'} (HTTP {status}): {error.get('Message', '')}"
        said = said.rstrip(": ")
        if code in THROTTLE_CODES or status in (429, 503):
            reason = LLMFailure.THROTTLED
        elif code in TIMEOUT_CODES or status == 408:
            reason = LLMFailure.TIMEOUT
        elif code in SERVICE_ERROR_CODES or (isinstance(status, int) and status >= 500):
            reason = LLMFailure.SERVICE_ERROR
        else:
            reason = LLMFailure.REJECTED
        return LLMUnavailable(reason, said, usage)
    # Timeouts first: ConnectTimeoutError is also an EndpointConnectionError's sibling
    # ConnectionError, and ReadTimeoutError an HTTPClientError.
    if isinstance(exc, ReadTimeoutError | ConnectTimeoutError | TimeoutError):
        return LLMUnavailable(LLMFailure.TIMEOUT, f"the request timed out ({name}: {exc})", usage)
    if isinstance(exc, NoCredentialsError | PartialCredentialsError | NoRegionError):
        return LLMUnavailable(LLMFailure.NOT_CONFIGURED, f"{name}: {exc}", usage)
    if isinstance(exc, ParamValidationError):
        return LLMUnavailable(LLMFailure.REJECTED, f"invalid request ({name}: {exc})", usage)
    if isinstance(exc, EndpointConnectionError | ConnectionClosedError | HTTPClientError | OSError):
        return LLMUnavailable(
            LLMFailure.UNREACHABLE, f"cannot reach Bedrock ({name}: {exc})", usage
        )
    if isinstance(exc, BotoCoreError):
        return LLMUnavailable(LLMFailure.SERVICE_ERROR, f"the client failed ({name}: {exc})", usage)
    return LLMUnavailable(LLMFailure.SERVICE_ERROR, f"unexpected {name}: {exc}", usage)


def _is_throttled(exc: BaseException) -> bool:
    return isinstance(exc, LLMUnavailable) and exc.reason is LLMFailure.THROTTLED
