"""How fetchers are generated and validated in this deployment (docs/architecture.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import dagster as dg
from pydantic import Field

if TYPE_CHECKING:
    from fetcher_codegen.generator import CodegenSettings


class CodegenSettingsResource(dg.ConfigurableResource):
    retry_code_generation: int = Field(
        default=2, description="new attempts at a recipe when the first does not reproduce"
    )
    historical_weeks: int = Field(default=2, description="history a candidate is judged on")
    min_success_rate: float = Field(default=0.8, description="share of channels that must pass")
    count_tolerance: float = Field(default=0.5, description="file count may differ this much")
    capture_max_pages: int = Field(default=6, description="pages the explorer follows")
    capture_max_seconds: float = Field(default=90.0, description="time the explorer may take")
    agent_capture: bool = Field(
        default=True,
        description="with Bedrock configured, a browser-use agent drives the first capture",
    )
    agent_max_steps: int = Field(default=12, description="steps the browser-use agent may take")
    llm_writes: Literal["recipe", "python"] = Field(
        default="recipe",
        description="what Bedrock is asked to write: a recipe, or a Python fetcher (sandboxed)",
    )

    def settings(self) -> CodegenSettings:
        from fetcher_codegen.generator import CodegenSettings
        from fetcher_codegen.validation import ValidationSettings

        return CodegenSettings(
            retry_code_generation=self.retry_code_generation,
            validation=ValidationSettings(
                historical_weeks=self.historical_weeks,
                min_success_rate=self.min_success_rate,
                count_tolerance=self.count_tolerance,
            ),
            capture_max_pages=self.capture_max_pages,
            capture_max_seconds=self.capture_max_seconds,
            agent_capture=self.agent_capture,
            agent_max_steps=self.agent_max_steps,
            llm_writes=self.llm_writes,
        )
