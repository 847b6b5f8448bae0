"""Amazon Bedrock as a resource: the LLM that improves generated fetchers, when configured.

Off by default: every flow works without it (``enabled=False`` makes the client raise
``LLMUnavailable(not_configured)`` at once, and the caller takes the deterministic path).
Without explicit keys boto3's default credential chain is used (IRSA / instance role).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field, PrivateAttr

if TYPE_CHECKING:
    from fetcher_codegen.llm import BedrockClient, BedrockSettings


class BedrockResource(dg.ConfigurableResource):
    # Unset (None): read from AMAZONIAX_BEDROCK_* when a run uses the resource, never at import.
    enabled: bool | None = Field(
        default=None, description="use the LLM at all; default: when a model id is set"
    )
    model_id: str | None = Field(
        default=None,
        description="Bedrock model or inference profile id; default: $AMAZONIAX_BEDROCK_MODEL_ID",
    )
    region: str | None = Field(
        default=None, description="default: $AMAZONIAX_BEDROCK_REGION, else us-east-1"
    )
    endpoint_url: str | None = Field(
        default=None,
        description="a VPC endpoint or a local fake; default: $AMAZONIAX_BEDROCK_ENDPOINT_URL, "
        "else AWS's own",
    )
    max_tokens: int = Field(default=4096, description="output tokens per answer")
    temperature: float = 0.0
    max_input_tokens_per_generation: int = Field(
        default=100_000, description="input tokens of all turns of one generation (estimated)"
    )
    max_cost_usd_per_generation: float = 1.0
    input_price_per_1k_tokens: float = 0.003
    output_price_per_1k_tokens: float = 0.015
    timeout_seconds: float = Field(default=120.0, description="read timeout of one request")
    max_throttle_retries: int = Field(default=4, description="retries while throttled")
    aws_access_key_id: str | None = Field(default=None, description="use dg.EnvVar")
    aws_secret_access_key: str | None = Field(default=None, description="use dg.EnvVar")

    _client: BedrockClient | None = PrivateAttr(default=None)

    def settings(self) -> BedrockSettings:
        from fetcher_codegen.llm import BedrockSettings

        model_id = _or_env(self.model_id, "AMAZONIAX_BEDROCK_MODEL_ID", "")
        return BedrockSettings(
            model_id=model_id,
            region=_or_env(self.region, "AMAZONIAX_BEDROCK_REGION", "us-east-1"),
            endpoint_url=_or_env(self.endpoint_url, "AMAZONIAX_BEDROCK_ENDPOINT_URL", "") or None,
            enabled=bool(model_id) if self.enabled is None else self.enabled,
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            max_input_tokens_per_generation=self.max_input_tokens_per_generation,
            max_cost_usd_per_generation=self.max_cost_usd_per_generation,
            input_price_per_1k_tokens=self.input_price_per_1k_tokens,
            output_price_per_1k_tokens=self.output_price_per_1k_tokens,
            timeout_seconds=self.timeout_seconds,
            max_throttle_retries=self.max_throttle_retries,
            aws_access_key_id=self.aws_access_key_id or None,
            aws_secret_access_key=self.aws_secret_access_key or None,
        )

    def get_client(self) -> BedrockClient:
        if self._client is None:
            from fetcher_codegen.llm import BedrockClient

            self._client = BedrockClient(self.settings())
        return self._client

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _or_env(value: str | None, name: str, default: str) -> str:
    """The configured value, else the environment's (read when a run needs it)."""
    return value if value is not None else os.environ.get(name, default)
