"""Prove a new recipe before keeping it (docs/codegen.md §5).

Run the recipe at once against the site, through the real runners (the recipe engine for
``http``/``feed``, the browser runtime for ``browser``), into a temp folder, then check:

* every sampled record value of the captured data responses appears in the output files
  (at most :data:`MAX_VALUES`; each record contributes its identifying values first), and
  every captured download without records (``expected_files``) was fetched again;
* the run stopped by itself: no error, and no pagination guard (``max_pages``) hit;
* the run reached the site's own end (completeness): the last page of every step shows no
  sign of more data (``hasNextPage``/``has_more`` true, a next URL or cursor, a Link
  rel=next, a ``total`` above the records received, a full page without paginate). A capture
  sees only the pages it clicked through; this check refuses a fetcher that stops there.

Values are compared as parsed values (JSON scalars, CSV cells, XML and HTML texts and
attributes) and, failing that, as text inside an output file. The result never holds secret
values: missing values equal to a channel secret are not listed.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from defusedxml import ElementTree as SafeET

from amazoniax_dagster.core.errors import AmazoniaxError
from amazoniax_dagster.core.messages import WebSourceConfig
from amazoniax_dagster.core.netpolicy import NetworkPolicy
from amazoniax_dagster.core.redaction import Redactor
from amazoniax_dagster.fetchers.base import FetchContext, FetchLimits, FetchReport
from fetcher_codegen.prove_files import files_missing
from fetcher_codegen.records import Record, Records, html_texts, scalar_text

MAX_VALUES = 300
MAX_SHOWN_MISSING = 20
PROOF_LIMITS = FetchLimits(max_pages=200, max_requests=2000, timeout_seconds=20.0)
_ID_KEY = re.compile(r"(^|[^a-z])(id|guid|uuid|key|sku|ref|slug)($|[^a-z])|@data-[\w-]*id$", re.I)
_GUARD = re.compile(r"max_pages|max_iterations|guard", re.IGNORECASE)


@dataclass
class ProofResult:
    ok: bool
    seconds: float
    files: list[str] = field(default_factory=list)
    checked: int = 0
    missing: list[str] = field(default_factory=list)  # a sample, never secret values
    missing_count: int = 0
    terminated: bool = True
    unfollowed: list[str] = field(default_factory=list)  # signs of more data left behind
    error: str | None = None
    warnings: list[str] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "seconds": self.seconds,
            "files": self.files[:50],
            "file_count": len(self.files),
            "values_checked": self.checked,
            "values_missing": self.missing_count,
            "missing_sample": self.missing,
            "terminated": self.terminated,
            "complete": not self.unfollowed,
            "unfollowed": self.unfollowed[:10],
            "error": self.error,
            "warnings": self.warnings[:10],
        }


def expected_values(records: Iterable[Records], limit: int = MAX_VALUES) -> list[str]:
    """Values to look for: every record's identifying fields first, then the others."""
    rows: list[Record] = [item for group in records for item in group.items]
    ids: list[str] = []
    others: list[list[str]] = []
    for row in rows:
        keys = sorted(row, key=lambda k: not _ID_KEY.search(k))
        usable = [row[k] for k in keys if _usable(row[k])]
        id_values = [row[k] for k in keys if _ID_KEY.search(k) and _usable(row[k])]
        ids += id_values[:1]
        others.append([v for v in usable if v not in id_values[:1]])
    values = list(dict.fromkeys(ids))
    depth = 0
    while len(values) < limit and any(depth < len(o) for o in others):
        values += [o[depth] for o in others if depth < len(o)]
        depth += 1
    return list(dict.fromkeys(values))[:limit]


def _usable(value: str) -> bool:
    return len(value.strip()) >= 2 and value.strip() not in ("true", "false", "null")


def prove(
    recipe_text: str,
    config: WebSourceConfig,
    expected: Sequence[str],
    *,
    policy: NetworkPolicy,
    run_date: date | None = None,
    limits: FetchLimits = PROOF_LIMITS,
    out_dir: Path | None = None,
    expected_files: Sequence[str] = (),
) -> ProofResult:
    """Run the recipe into ``out_dir`` (a temp folder, removed, when None) and check it."""
    return prove_fetcher(
        lambda ctx: run(recipe_text, ctx),
        config,
        expected,
        policy=policy,
        run_date=run_date,
        limits=limits,
        out_dir=out_dir,
        expected_files=expected_files,
    )


def prove_fetcher(
    fetch: Callable[[FetchContext], FetchReport],
    config: WebSourceConfig,
    expected: Sequence[str],
    *,
    policy: NetworkPolicy,
    run_date: date | None = None,
    limits: FetchLimits = PROOF_LIMITS,
    out_dir: Path | None = None,
    expected_files: Sequence[str] = (),
) -> ProofResult:
    """:func:`prove` for any fetcher (a Python module runs in its sandbox through ``fetch``)."""
    started = time.monotonic()
    redactor = Redactor(_secrets(config))
    temp = out_dir is None
    folder = out_dir or Path(tempfile.mkdtemp(prefix="amazoniax-proof-"))
    try:
        ctx = FetchContext(
            config,
            folder,
            policy,
            run_date or date.today(),
            limits,
            max_retries=1,
            retry_delay_seconds=0.5,
        )
        try:
            report = fetch(ctx)
        except AmazoniaxError as exc:
            return ProofResult(
                False,
                round(time.monotonic() - started, 2),
                error=f"{type(exc).__name__}: {redactor(str(exc))}",
                terminated=False,
            )
        files = sorted(f.relative_path for f in report.files)
        found, blob = output_values(folder, files)
        secrets = set(_secrets(config))
        missing = [v for v in expected if v not in found and v not in blob]
        missing += files_missing(report, expected_files)  # downloads no value vouches for
        terminated = not any(_GUARD.search(w) for w in report.warnings)
        unfollowed = unfollowed_hints(report)
        return ProofResult(
            ok=bool(files) and not missing and terminated and not unfollowed,
            seconds=round(time.monotonic() - started, 2),
            files=files,
            checked=len(expected) + len(expected_files),
            missing=[redactor(v)[:80] for v in missing if v not in secrets][:MAX_SHOWN_MISSING],
            missing_count=len(missing),
            terminated=terminated,
            unfollowed=[redactor(u) for u in unfollowed],
            warnings=[redactor(w) for w in report.warnings],
        )
    finally:
        if temp:
            shutil.rmtree(folder, ignore_errors=True)


def unfollowed_hints(report: FetchReport) -> list[str]:
    """Signs of more data on the last page of a step that the fetcher did not follow."""
    steps = report.metadata.get("steps")
    if not isinstance(steps, dict):
        return []
    return [
        f"step {name!r} stopped ({info.get('stopped')}) although its last page shows {hint}"
        for name, info in steps.items()
        if isinstance(info, dict)
        for hint in info.get("more") or []
    ]


def run(recipe_text: str, ctx: FetchContext) -> FetchReport:
    """Run a recipe text (any kind) the way a published fetcher runs."""
    from amazoniax_dagster.fetchers.loader import load_recipe_text

    return load_recipe_text(recipe_text).fetch(ctx)


def _secrets(config: WebSourceConfig) -> list[str]:
    found = {**(config.login_credentials or {}), **(config.auth_keys or {})}
    return [v.get_secret_value() for v in found.values() if v.get_secret_value()]


def output_values(folder: Path, files: Sequence[str]) -> tuple[set[str], str]:
    """Every value in the output files (parsed by type), and their text joined."""
    values: set[str] = set()
    texts: list[str] = []
    for name in files:
        path = folder / name
        try:
            text = path.read_bytes().decode("utf-8", errors="replace")
        except OSError:
            continue
        texts.append(text)
        values |= file_values(name, text)
    return values, "\n".join(texts)


def file_values(name: str, text: str) -> set[str]:
    """The values one file holds, read as its extension says (unparseable: none)."""
    suffix = Path(name).suffix.lower()
    try:
        if suffix in (".json", ".jsonl", ".ndjson"):
            lines = text.splitlines() if suffix != ".json" else [text]
            found: set[str] = set()
            for line in lines:
                if line.strip():
                    _json_scalars(json.loads(line), found)
            return found
        if suffix in (".csv", ".tsv"):
            delimiter = "\t" if suffix == ".tsv" else ","
            return {
                cell for row in csv.reader(io.StringIO(text), delimiter=delimiter) for cell in row
            }
        if suffix in (".xml", ".rss", ".atom"):
            root = SafeET.fromstring(text.encode("utf-8"))
            return {
                value.strip()
                for node in root.iter()
                for value in (node.text or "", *node.attrib.values())
                if value.strip()
            }
        if suffix in (".html", ".htm"):
            return html_texts(text)
    except (ValueError, csv.Error, SafeET.ParseError):
        return set()
    return set()


def _json_scalars(data: Any, out: set[str]) -> None:
    if isinstance(data, dict):
        for value in data.values():
            _json_scalars(value, out)
    elif isinstance(data, list):
        for value in data:
            _json_scalars(value, out)
    elif data is not None:
        out.add(scalar_text(data))


__all__ = [
    "MAX_VALUES",
    "PROOF_LIMITS",
    "ProofResult",
    "expected_values",
    "file_values",
    "output_values",
    "prove",
    "run",
    "unfollowed_hints",
]
