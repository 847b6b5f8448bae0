"""The validation pipeline: a candidate fetcher runs for every channel mapped to
its site, and each channel's output is compared with what that channel fetched in the last
``historical_weeks``. The candidate may be published only when the share of channels that
pass reaches ``min_success_rate``.

Per channel, the candidate's files must:
- not be empty where the history has data;
- number within ``count_tolerance`` of what the channel's jobs fetched (min/max of the window);
- keep the file-name shapes of history (``sales-2026-11-01.csv`` ~ ``sales-2026-11-08.csv``);
- keep the structure of history's files of the same kind: JSON/XML paths, CSV header, HTML
  landmarks or visible text (see ``structure``).
A channel with no history passes when the candidate fetched something for it.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from amazoniax_dagster.clients.output_bucket import OutputBucket
from amazoniax_dagster.core.errors import AmazoniaxError
from amazoniax_dagster.core.messages import WebSourceConfig
from amazoniax_dagster.core.netpolicy import NetworkPolicy
from amazoniax_dagster.db import FetcherDB, RecentOutputs
from amazoniax_dagster.fetchers.base import FetchContext, Fetcher, FetchLimits
from fetcher_codegen.structure import Signature, name_shape, signature, similarity

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ValidationSettings:
    historical_weeks: int = 2
    min_success_rate: float = 0.8
    count_tolerance: float = 0.5  # a candidate may fetch 50% fewer or more files
    min_structure_similarity: float = 0.5
    samples: int = 30  # newest delivered files read back from the output bucket


@dataclass(frozen=True)
class HistoryWindow:
    """A channel's recent outputs, reduced to what validation compares."""

    file_counts: list[int]
    signatures: dict[str, list[Signature]]  # by file kind ("json", "csv", ...)
    shapes: frozenset[str]

    @property
    def has_data(self) -> bool:
        return any(self.file_counts) or bool(self.shapes)


@dataclass
class ChannelVerdict:
    channel_id: str
    passed: bool
    files: int = 0
    expected: str = "any"
    reasons: list[str] = field(default_factory=list)
    checks: dict[str, bool] = field(default_factory=dict)


@dataclass
class ValidationReport:
    verdicts: list[ChannelVerdict]
    min_success_rate: float

    @property
    def success_rate(self) -> float:
        return sum(v.passed for v in self.verdicts) / len(self.verdicts) if self.verdicts else 0.0

    @property
    def passed(self) -> bool:
        return bool(self.verdicts) and self.success_rate >= self.min_success_rate

    def table(self) -> str:
        """A Markdown table a person reads in the Dagster UI."""
        rows = [
            "| channel | result | files | expected | non-empty | count | names | structure | why |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for v in self.verdicts:
            marks = [
                "✓" if v.checks.get(c, True) else "✗"
                for c in ("non_empty", "count", "names", "structure")
            ]
            reason = "; ".join(v.reasons).replace("|", "/") or "-"
            rows.append(
                f"| {v.channel_id} | {'pass' if v.passed else 'FAIL'} | {v.files} | "
                f"{v.expected} | {' | '.join(marks)} | {reason} |"
            )
        return "\n".join(rows)


def history_window(
    db: FetcherDB,
    output: OutputBucket,
    channel_id: str,
    settings: ValidationSettings,
    *,
    now: datetime | None = None,
) -> HistoryWindow:
    since = (now or datetime.now(UTC)) - timedelta(weeks=settings.historical_weeks)
    recent = db.recent_outputs(channel_id, since=since)
    return window_from(recent, output.read_head, settings)


def window_from(
    recent: RecentOutputs, read: Callable[[str], bytes], settings: ValidationSettings
) -> HistoryWindow:
    """The newest delivered files (``samples`` of them) read back and reduced to signatures."""
    signatures: dict[str, list[Signature]] = {}
    for delivered in recent.files[: settings.samples]:  # newest first: the latest structure
        sig = signature(delivered.file_path, read(delivered.s3_key))
        signatures.setdefault(sig.kind, []).append(sig)
    return HistoryWindow(
        file_counts=recent.file_counts,
        signatures=signatures,
        shapes=frozenset(name_shape(f.file_path) for f in recent.files),
    )


def compare(
    channel_id: str, files: dict[str, bytes], window: HistoryWindow, settings: ValidationSettings
) -> ChannelVerdict:
    """Judge one channel's candidate output (relative path -> head bytes) against history."""
    verdict = ChannelVerdict(channel_id, passed=True, files=len(files))
    if not window.has_data:
        verdict.checks["non_empty"] = bool(files)
        if not files:
            verdict.reasons.append("fetched nothing")
        verdict.passed = bool(files)
        return verdict

    verdict.checks["non_empty"] = bool(files)
    if not files:
        verdict.reasons.append("fetched nothing where history has data")

    counts = [c for c in window.file_counts if c] or [len(window.shapes)]
    low = int(min(counts) * (1 - settings.count_tolerance))
    high = max(1, round(max(counts) * (1 + settings.count_tolerance)))
    verdict.expected = f"{max(low, 1)}–{high}"
    verdict.checks["count"] = max(low, 1) <= len(files) <= high
    if not verdict.checks["count"]:
        verdict.reasons.append(f"{len(files)} files, history says {verdict.expected}")

    signatures = [signature(path, head) for path, head in files.items()]
    shapes = {name_shape(p) for p in files}
    shared = len(shapes & window.shapes) / len(shapes) if shapes else 0.0
    # A site may rename its files (feed.xml -> atom.xml); the same kinds of file still count.
    same_kinds = bool(signatures) and {s.kind for s in signatures} <= set(window.signatures)
    verdict.checks["names"] = shared >= 0.5 or same_kinds or not window.shapes
    if not verdict.checks["names"]:
        verdict.reasons.append(f"file names and types changed ({shared:.0%} known names)")

    verdict.checks["structure"] = _structure_matches(signatures, window, settings, verdict.reasons)
    verdict.passed = all(verdict.checks.values())
    return verdict


def _structure_matches(
    signatures: list[Signature],
    window: HistoryWindow,
    settings: ValidationSettings,
    reasons: list[str],
) -> bool:
    """Per kind of file, all candidate files together against all history samples together:
    page 1 of a candidate need not look like the page history happened to sample."""
    if not signatures:
        return False
    scores: list[float] = []
    for kind in sorted({s.kind for s in signatures}):
        past = window.signatures.get(kind)
        if not past:
            continue
        scores.append(_score(_union(s for s in signatures if s.kind == kind), _union(past)))
    if not scores:
        kinds = ", ".join(sorted(window.signatures)) or "none"
        reasons.append(f"no file of the kinds history has ({kinds})")
        return not window.signatures
    score = sum(scores) / len(scores)
    if score < settings.min_structure_similarity:
        reasons.append(f"structure differs from history (similarity {score:.2f})")
        return False
    return True


def _union(signatures: Iterable[Signature]) -> Signature:
    found = list(signatures)
    return Signature(
        found[0].kind,
        frozenset().union(*(s.features for s in found)),
        frozenset().union(*(s.text for s in found)),
        frozenset().union(*(s.values for s in found)),
    )


def _score(new: Signature, old: Signature) -> float:
    if old.text and not new.text:
        return 0.0  # the data is gone: a CSV with only its header, a page without text
    shape = similarity(new.features, old.features)
    if new.values and old.values:
        # An API redesigned around the same records (new keys, new paging) keeps the values.
        shape = max(shape, similarity(new.values, old.values))
    if new.text or old.text:
        # Markup, columns or wrappers may change while the data stays: either may match.
        return max(shape, similarity(new.text, old.text))
    return shape


def validate_candidate(
    fetcher: Fetcher,
    channels: Sequence[tuple[str, WebSourceConfig]],
    windows: dict[str, HistoryWindow],
    settings: ValidationSettings,
    *,
    policy: NetworkPolicy,
    limits: FetchLimits,
    work_dir: Path | None = None,
) -> ValidationReport:
    """Run ``fetcher`` once per channel (its own config and credentials) and judge each."""
    verdicts: list[ChannelVerdict] = []
    for channel_id, config in channels:
        with tempfile.TemporaryDirectory(prefix="validate-", dir=work_dir) as tmp:
            out = Path(tmp)
            try:
                fetcher.fetch(
                    FetchContext(config=config, out_dir=out, policy=policy, limits=limits)
                )
            except AmazoniaxError as exc:
                verdicts.append(
                    ChannelVerdict(channel_id, passed=False, reasons=[f"{exc.error_class}: {exc}"])
                )
                continue
            files = {
                p.relative_to(out).as_posix(): _head(p)
                for p in sorted(out.rglob("*"))
                if p.is_file() and not p.is_symlink()
            }
        verdict = compare(channel_id, files, windows[channel_id], settings)
        log.info(
            "validation of channel %s: %s (%s)",
            channel_id,
            "pass" if verdict.passed else "fail",
            "; ".join(verdict.reasons) or "all checks passed",
        )
        verdicts.append(verdict)
    return ValidationReport(verdicts, settings.min_success_rate)


def _head(path: Path, max_bytes: int = 4 * 1024 * 1024) -> bytes:
    with path.open("rb") as f:
        return f.read(max_bytes)
