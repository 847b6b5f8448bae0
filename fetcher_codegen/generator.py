"""Fetcher generation, step by step: capture → synthesize → validate → publish.

The ``fetcher_code`` asset runs these steps as ops; :class:`SiteGenerator` runs them in one
go where there is no Dagster (the command line). A candidate is proved against its own
capture first (it must fetch every record value the capture saw), then validated on every
channel mapped to the site against their history; only then is it published as the site's
next version and are the channels remapped. A candidate that fails validation is kept on a
``candidates/`` branch for review.

Bedrock, when configured, drives the first capture (a browser-use agent, see
:mod:`fetcher_codegen.agent`) and writes the first candidate; any failure to get a usable
answer falls back to the deterministic explorer or synthesis, and the provenance says which
path captured and which produced the fetcher, and why.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NoReturn

from amazoniax_dagster.clients.output_bucket import OutputBucket
from amazoniax_dagster.core.errors import ConfigError, FetcherCodeError, ValidationFailedError
from amazoniax_dagster.core.messages import WebSourceConfig
from amazoniax_dagster.core.netpolicy import NetworkPolicy
from amazoniax_dagster.core.redaction import collect_secret_values
from amazoniax_dagster.core.sites import structure_id
from amazoniax_dagster.db import FetcherDB
from amazoniax_dagster.db.fetcher_versions import FetcherVersion
from amazoniax_dagster.fetchers.base import FetchLimits, LoadedFetcher
from amazoniax_dagster.fetchers.loader import (
    BrowserFetcher,
    PythonFetcher,
    RecipeFetcher,
    load_recipe_text,
)
from amazoniax_dagster.fetchers.routing import GenerationRequest
from fetcher_codegen.validation import (
    ValidationReport,
    ValidationSettings,
    history_window,
    validate_candidate,
)

if TYPE_CHECKING:
    from amazoniax_dagster.fetchers.registry import FetcherRepo
    from fetcher_codegen.capture import Capture, CaptureLimits
    from fetcher_codegen.llm import BedrockClient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CodegenSettings:
    retry_code_generation: int = 2
    validation: ValidationSettings = field(default_factory=ValidationSettings)
    capture_max_pages: int = 5
    capture_max_seconds: float = 90.0
    agent_capture: bool = True  # with an LLM, a browser-use agent drives the first capture
    agent_max_steps: int = 12
    # What the LLM is asked to write: a recipe, or - only when asked here - a Python fetcher
    # (run in the sandbox). Without an LLM, or when its answer is unusable, a recipe it is.
    llm_writes: Literal["recipe", "python"] = "recipe"
    validation_limits: FetchLimits = field(
        default_factory=lambda: FetchLimits(max_pages=200, max_requests=2000)
    )

    def capture_limits(self, attempt: int = 0) -> CaptureLimits:
        from fetcher_codegen.capture import CaptureLimits

        # A retry explores further: more pages, more time.
        return CaptureLimits(
            max_pages=self.capture_max_pages * (attempt + 1),
            max_seconds=self.capture_max_seconds * (attempt + 1),
        )


@dataclass(frozen=True)
class Candidate:
    """A fetcher not yet published. Plain data (ops pass it along): no secret inside."""

    site: str
    kind: str  # http | feed | browser | python
    text: str
    provenance: dict[str, Any]

    @property
    def entry_file(self) -> str:
        from amazoniax_dagster.core.fetcher_names import ENTRY_FILES

        return ENTRY_FILES.get(self.kind, ENTRY_FILES["recipe"])

    @property
    def proved(self) -> bool:
        return bool(self.provenance.get("proof", {}).get("ok"))

    def fetcher(self) -> RecipeFetcher | BrowserFetcher | PythonFetcher:
        if self.kind == "python":
            return python_fetcher(self.text)
        return load_recipe_text(self.text)

    def files(self) -> dict[str, bytes]:
        return {self.entry_file: self.text.encode()}

    def with_validation(self, report: ValidationReport) -> Candidate:
        validation = {
            "passed": report.passed,
            "success_rate": report.success_rate,
            "min_success_rate": report.min_success_rate,
            "channels": [
                {"channel_id": v.channel_id, "passed": v.passed, "files": v.files,
                 "reasons": v.reasons}
                for v in report.verdicts
            ],
        }  # fmt: skip
        return replace(self, provenance=self.provenance | {"validation": validation})

    def to_dict(self) -> dict[str, Any]:
        return {"site": self.site, "kind": self.kind, "text": self.text,
                "provenance": self.provenance}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Candidate:
        return cls(data["site"], data["kind"], data["text"], dict(data["provenance"]))


# -- which channel, which config --------------------------------------------------------------


def channel_config(db: FetcherDB, channel_id: str) -> WebSourceConfig:
    stored = db.get_channel(channel_id)
    if stored.source_type not in ("html", "api"):
        raise ConfigError(f"channel {channel_id} is {stored.source_type}, not a web/API channel")
    return WebSourceConfig.model_validate(stored.config)


def capture_channel(
    db: FetcherDB, site: str, trigger_channel: str | None
) -> tuple[str, WebSourceConfig]:
    """The channel whose view of the site is captured: the one that asked, else one already
    mapped to the site, else any stored web channel on it."""
    if trigger_channel:
        return trigger_channel, channel_config(db, trigger_channel)
    for channel_id in db.channels_for_site(site) + db.list_channel_ids():
        try:
            config = channel_config(db, channel_id)
            if structure_id(config.url) == site:
                return channel_id, config
        except (ConfigError, ValueError):
            continue
    raise ConfigError(f"no stored web/API channel is on site {site}: nothing to capture")


def secret_values(config: WebSourceConfig) -> set[str]:
    return collect_secret_values(config.model_dump(mode="json", exclude_none=True)) | {
        value.get_secret_value()
        for group in (config.login_credentials or {}, config.auth_keys or {})
        for value in group.values()
    }


# -- the steps ---------------------------------------------------------------------------------


def capture(
    config: WebSourceConfig,
    *,
    policy: NetworkPolicy,
    settings: CodegenSettings,
    attempt: int = 0,
    work_root: Path | None = None,
    llm: BedrockClient | None = None,
) -> Capture:
    """Explore the site in Chromium; the HAR in the work dir holds secrets until synthesis
    deletes it. With ``llm``, the first attempt is driven by a browser-use agent; retries
    are the explorer's alone (deterministic, further)."""
    from fetcher_codegen.capture import capture_site

    agent = None
    if llm is not None and settings.agent_capture and attempt == 0:
        if llm.not_configured_reason() is None:
            from fetcher_codegen.agent import AgentDriver, AgentSettings

            agent = AgentDriver(llm, AgentSettings(max_steps=settings.agent_max_steps))
    work_dir = Path(tempfile.mkdtemp(prefix="capture-", dir=work_root))
    try:
        return capture_site(
            config,
            work_dir,
            policy=policy,
            limits=settings.capture_limits(attempt),
            agent=agent,
        )
    except BaseException:
        shutil.rmtree(work_dir, ignore_errors=True)
        raise


def synthesize(
    site: str,
    config: WebSourceConfig,
    captured: Capture,
    *,
    policy: NetworkPolicy,
    settings: CodegenSettings,
    llm: BedrockClient | None = None,
    run_date: date | None = None,
) -> Candidate:
    """A proved candidate when one can be had within ``retry_code_generation`` new attempts
    (each explores further); else the last candidate, with its failed proof. The captures are
    deleted here, whatever happens: their HARs hold what was typed into login forms."""
    attempt, best = 0, None
    current: Capture | None = captured
    try:
        while current is not None:
            best = _one_candidate(
                site, config, current, policy, llm, run_date, want=settings.llm_writes
            )
            shutil.rmtree(current.work_dir, ignore_errors=True)
            current = None
            if best.proved or attempt >= settings.retry_code_generation:
                break
            attempt += 1
            log.info("candidate for %s did not reproduce its capture; attempt %d", site, attempt)
            current = capture(config, policy=policy, settings=settings, attempt=attempt)
    finally:
        if current is not None:
            shutil.rmtree(current.work_dir, ignore_errors=True)
    assert best is not None
    return replace(best, provenance=best.provenance | {"attempts": attempt + 1})


def _one_candidate(
    site: str,
    config: WebSourceConfig,
    captured: Capture,
    policy: NetworkPolicy,
    llm: BedrockClient | None,
    run_date: date | None,
    *,
    want: Literal["recipe", "python"] = "recipe",
) -> Candidate:
    from fetcher_codegen.deterministic import candidate_from_capture

    llm_note: dict[str, Any] = {}
    driver = {"driver": captured.driver} | ({"agent": captured.agent} if captured.agent else {})
    if llm is not None:
        found, llm_note = _llm_candidate(site, config, captured, policy, llm, run_date, want)
        if found is not None:
            return replace(found, provenance=found.provenance | {"capture": driver})
    result = candidate_from_capture(captured, config, policy=policy, run_date=run_date)
    provenance = result.provenance | ({"llm": llm_note} if llm_note else {})
    provenance["capture"] = provenance.get("capture", {}) | driver
    return Candidate(site, result.kind, result.recipe_text, provenance)


def _llm_candidate(
    site: str,
    config: WebSourceConfig,
    captured: Capture,
    policy: NetworkPolicy,
    llm: BedrockClient,
    run_date: date | None,
    want: Literal["recipe", "python"] = "recipe",
) -> tuple[Candidate | None, dict[str, Any]]:
    """Bedrock's recipe (or Python fetcher), proved like any other; (None, why) when it
    cannot be used."""
    from amazoniax_dagster.fetchers.recipe.schema import recipe_json_schema
    from fetcher_codegen.analysis import analyze
    from fetcher_codegen.har import load_har
    from fetcher_codegen.llm_errors import LLMUnavailable
    from fetcher_codegen.prove import expected_values, prove_fetcher
    from fetcher_codegen.summary import summarize_har

    secrets = secret_values(config)
    validate: Any = python_fetcher if want == "python" else load_recipe_text
    try:
        answer = llm.generate_recipe(
            summarize_har(captured, secrets),
            [path.read_bytes() for path in captured.screenshots()[:4]],
            config.channel_name or f"fetch the data files of {captured.channel_url}",
            recipe_json_schema(),
            validate,
            want=want,
            secret_values=secrets,
            origins=[config.url],
            navigation_details=config.navigation_details,
            capture_date=captured.capture_date,
        )
    except LLMUnavailable as exc:
        log.warning("Bedrock unavailable (%s): deterministic synthesis instead", exc.reason)
        return None, {"fallback": str(exc.reason), "detail": exc.detail, "asked_for": want}
    analysis = analyze(load_har(captured.har_path), config, captured.doms())
    expected = expected_values(r for group in analysis.data for r in group.records)
    fetcher = answer.value
    proof = prove_fetcher(fetcher.fetch, config, expected, policy=policy, run_date=run_date)
    usage = answer.usage.to_metadata()
    if not proof.ok:
        log.warning("Bedrock's %s did not reproduce the capture: deterministic instead", want)
        return None, {"fallback": "proof_failed", "usage": usage, "asked_for": want}
    kind = "python" if want == "python" else str(getattr(fetcher, "recipe", fetcher).kind)
    provenance = {
        "method": "bedrock",
        "har_sha256": captured.har_sha256,
        "usage": usage,
        "proof": proof.describe(),
        "kind": kind,
    }
    return Candidate(site, kind, answer.text, provenance), {}


def python_fetcher(source: str) -> PythonFetcher:
    """A generated Python module as a fetcher, once it holds the entry point the sandbox
    calls (``fetch(config, out_dir, run_date)``); ValueError says what is wrong."""
    import ast

    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ValueError(f"the module does not parse: {exc.msg} (line {exc.lineno})") from exc
    entry = next(
        (n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "fetch"), None
    )
    if entry is None:
        raise ValueError(
            "the module defines no top-level function fetch(config, out_dir, run_date)"
        )
    names = [a.arg for a in entry.args.args]
    if len(names) != 3:
        raise ValueError(
            f"fetch() takes {len(names)} arguments ({', '.join(names)}); the sandbox passes "
            "three: config, out_dir, run_date"
        )
    return PythonFetcher(source.encode("utf-8"))


def fail_proof(candidate: Candidate) -> NoReturn:
    proof = candidate.provenance.get("proof", {})
    raise FetcherCodeError(
        f"no recipe for {candidate.site} reproduced its capture "
        f"({proof.get('values_missing', '?')} of {proof.get('values_checked', '?')} record values "
        "missing, "
        f"{candidate.provenance.get('attempts', 1)} attempts)"
    )


def validate(
    candidate: Candidate,
    *,
    db: FetcherDB,
    output: OutputBucket,
    trigger_channel: str | None,
    policy: NetworkPolicy,
    settings: CodegenSettings,
) -> ValidationReport:
    """Run the candidate for every channel of the site (and the one that asked)."""
    channel_ids = list(dict.fromkeys([*db.channels_for_site(candidate.site), trigger_channel]))
    channels = [(cid, channel_config(db, cid)) for cid in channel_ids if cid]
    windows = {cid: history_window(db, output, cid, settings.validation) for cid, _ in channels}
    report = validate_candidate(
        candidate.fetcher(),
        channels,
        windows,
        settings.validation,
        policy=policy,
        limits=settings.validation_limits,
    )
    log.info(
        "validation of %s: %.0f%% of %d channels passed (needs %.0f%%)",
        candidate.site,
        report.success_rate * 100,
        len(report.verdicts),
        report.min_success_rate * 100,
    )
    return report


def reject(
    candidate: Candidate, report: ValidationReport, *, db: FetcherDB, repo: FetcherRepo
) -> FetcherVersion:
    from amazoniax_dagster.fetchers.publishing import keep_candidate

    return keep_candidate(
        db,
        repo,
        structure_id=candidate.site,
        files=candidate.files(),
        provenance=candidate.with_validation(report).provenance,
    )


def fail_validation(
    candidate: Candidate, report: ValidationReport, kept: FetcherVersion
) -> NoReturn:
    failing = [v.channel_id for v in report.verdicts if not v.passed]
    raise ValidationFailedError(
        f"the new fetcher for {candidate.site} passed on {report.success_rate:.0%} of "
        f"{len(report.verdicts)} channels (needs {report.min_success_rate:.0%}; failing: "
        f"{', '.join(failing[:5])}); kept for review as {kept.fetcher_name} on its candidate "
        "branch, not published"
    )


def publish(candidate: Candidate, *, db: FetcherDB, repo: FetcherRepo) -> FetcherVersion:
    from amazoniax_dagster.fetchers.publishing import publish_version

    return publish_version(
        db,
        repo,
        structure_id=candidate.site,
        files=candidate.files(),
        provenance=candidate.provenance,
    )


# -- all steps at once (no Dagster) -------------------------------------------------------------


@dataclass
class SiteGenerator:
    """The :class:`FetcherGenerator` of the routing, for jobs run without Dagster."""

    db: FetcherDB
    output: OutputBucket
    repo: FetcherRepo
    policy: NetworkPolicy
    settings: CodegenSettings = field(default_factory=CodegenSettings)
    llm: BedrockClient | None = None

    def generate(self, request: GenerationRequest) -> LoadedFetcher:
        from amazoniax_dagster.fetchers.catalog import RegistryCatalog

        captured = capture(request.config, policy=self.policy, settings=self.settings, llm=self.llm)
        candidate = synthesize(
            request.site, request.config, captured, policy=self.policy, settings=self.settings,
            llm=self.llm,
        )  # fmt: skip
        if not candidate.proved:
            fail_proof(candidate)
        report = validate(
            candidate, db=self.db, output=self.output, trigger_channel=request.channel_id,
            policy=self.policy, settings=self.settings,
        )  # fmt: skip
        if not report.passed:
            fail_validation(
                candidate, report, reject(candidate, report, db=self.db, repo=self.repo)
            )
        version = publish(candidate.with_validation(report), db=self.db, repo=self.repo)
        self.db.map_channel(request.channel_id, version.id)
        loaded = RegistryCatalog(self.db, self.repo).load(version, how="generated")
        return replace(loaded, how="healed" if request.heal else "generated")
