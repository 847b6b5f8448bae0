"""The deterministic generator: a website in, a proved recipe out, no LLM involved.

    capture (Playwright, HAR) ──► analysis (data requests) ──► synthesis (recipe YAML)
        ──► proof (the recipe run against the site, compared with the capture)

:func:`generate_deterministic` does it all; :func:`candidate_from_capture` starts from an
existing capture (the LLM path shares one capture with this one). A capture with no data
raises :class:`NoDataFound`, which carries the capture for whatever comes next. A proof that
fails does not raise: ``candidate.proof.ok`` is False and the caller decides. A synthesized
recipe is validated against ``recipe.schema.json`` before its proof; an invalid one raises
:class:`InvalidSynthesis` (a bug of the synthesis, which another capture would not fix).

The provenance (``Candidate.provenance``) holds no secret: it is redacted by name and by value
before it is returned.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from amazoniax_dagster.core.errors import NoFetcherError
from amazoniax_dagster.core.messages import WebSourceConfig
from amazoniax_dagster.core.netpolicy import NetworkPolicy
from amazoniax_dagster.core.redaction import Redactor, redact_mapping
from fetcher_codegen.analysis import Analysis, analyze
from fetcher_codegen.capture import Capture, CaptureLimits, capture_site
from fetcher_codegen.har import load_har
from fetcher_codegen.prove import ProofResult, expected_values, prove
from fetcher_codegen.prove_files import captured_files
from fetcher_codegen.synthesize import synthesize
from fetcher_codegen.synthesize_base import RecipeKind

METHOD = "deterministic"


@dataclass
class Candidate:
    kind: RecipeKind
    recipe_text: str
    provenance: dict[str, Any]
    capture: Capture
    proof: ProofResult
    warnings: list[str] = field(default_factory=list)


class InvalidSynthesis(NoFetcherError):
    """A synthesized recipe that its own schema refuses: a synthesis bug, never retried."""


def check_recipe(kind: RecipeKind, text: str) -> None:
    """Validate ``text`` against ``recipe.schema.json`` (http/feed) and the engine's loader
    (every kind) before it is run; :class:`InvalidSynthesis` lists every problem."""
    import yaml
    from jsonschema import Draft202012Validator

    from amazoniax_dagster.core.errors import ConfigError
    from amazoniax_dagster.fetchers.loader import load_recipe_text
    from amazoniax_dagster.fetchers.recipe.schema import SCHEMA_PATH

    problems: list[str] = []
    if kind in ("http", "feed"):
        validator = Draft202012Validator(json.loads(SCHEMA_PATH.read_text("utf-8")))
        for error in validator.iter_errors(yaml.safe_load(text)):
            where = "/".join(str(p) for p in error.absolute_path) or "recipe"
            problems.append(f"{where}: {error.message[:200]}")
    try:
        load_recipe_text(text)
    except ConfigError as exc:
        problems.append(str(exc))
    if problems:
        raise InvalidSynthesis(f"synthesized {kind} recipe is invalid: {'; '.join(problems)}")


class NoDataFound(NoFetcherError):
    """No request of the capture carries records; ``capture`` and ``provenance`` say why."""

    def __init__(self, message: str, *, capture: Capture, provenance: dict[str, Any]) -> None:
        super().__init__(message)
        self.capture = capture
        self.provenance = provenance


def generate_deterministic(
    config: WebSourceConfig,
    work_dir: Path,
    *,
    policy: NetworkPolicy,
    limits: CaptureLimits | None = None,
    run_date: date | None = None,
) -> Candidate:
    """Capture the channel's site into ``work_dir``, synthesize a recipe and prove it."""
    capture = capture_site(config, work_dir, policy=policy, limits=limits)
    return candidate_from_capture(capture, config, policy=policy, run_date=run_date)


def candidate_from_capture(
    capture: Capture,
    config: WebSourceConfig,
    *,
    policy: NetworkPolicy,
    run_date: date | None = None,
) -> Candidate:
    started = time.monotonic()
    entries = load_har(capture.har_path)
    analysis = analyze(entries, config, capture.doms())
    try:
        synthesis = synthesize(analysis, capture, config)
    except NoFetcherError as exc:
        provenance = _provenance(capture, analysis, config, requests=[], warnings=[str(exc)])
        raise NoDataFound(str(exc), capture=capture, provenance=provenance) from exc
    check_recipe(synthesis.kind, synthesis.text)
    synthesized = time.monotonic()
    data = analysis.data or analysis.html_data[:1]
    records = synthesis.records or [r for group in data for r in group.records]
    expected = expected_values(records)
    files = captured_files(analysis.data)
    proof = prove(
        synthesis.text, config, expected, policy=policy, run_date=run_date, expected_files=files
    )
    provenance = _provenance(
        capture,
        analysis,
        config,
        requests=synthesis.requests,
        warnings=synthesis.warnings,
        timings={
            "capture_seconds": capture.seconds,
            "synthesis_seconds": round(synthesized - started, 2),
            "proof_seconds": proof.seconds,
        },
    )
    provenance["kind"] = synthesis.kind
    provenance["proof"] = proof.describe()
    return Candidate(
        synthesis.kind, synthesis.text, _redacted(provenance, config), capture, proof,
        synthesis.warnings,
    )  # fmt: skip


def _provenance(
    capture: Capture,
    analysis: Analysis,
    config: WebSourceConfig,
    *,
    requests: list[dict[str, Any]],
    warnings: list[str],
    timings: dict[str, float] | None = None,
) -> dict[str, Any]:
    return _redacted(
        {
            "method": METHOD,
            "har_sha256": capture.har_sha256,
            "captured_at": capture.started_at.isoformat(),
            "channel_url": capture.channel_url,
            "capture": {
                "seconds": capture.seconds,
                "steps": [step.describe() for step in capture.steps],
                "requests": len(analysis.entries),
                "left_out": dict(analysis.noise.most_common()),
            },
            "data_requests": requests,
            "warnings": list(dict.fromkeys(warnings)),
            "timings": timings or {},
        },
        config,
    )


def _redacted(data: dict[str, Any], config: WebSourceConfig) -> dict[str, Any]:
    found = {**(config.login_credentials or {}), **(config.auth_keys or {})}
    redactor = Redactor(v.get_secret_value() for v in found.values())
    redacted: dict[str, Any] = _walk(redact_mapping(data), redactor)
    return redacted


def _walk(data: Any, redactor: Redactor) -> Any:
    if isinstance(data, dict):
        return {key: _walk(value, redactor) for key, value in data.items()}
    if isinstance(data, list):
        return [_walk(item, redactor) for item in data]
    if isinstance(data, str):
        return redactor(data)
    return data


__all__ = [
    "METHOD",
    "Candidate",
    "InvalidSynthesis",
    "NoDataFound",
    "candidate_from_capture",
    "check_recipe",
    "generate_deterministic",
]
