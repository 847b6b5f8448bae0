"""Fetcher generation without an LLM, on every demo site: does the fetcher get every record?

    uv run python -m bench.codegen                       # every site of the catalogue
    uv run python -m bench.codegen --sites html_list,rss_feed --keep

For each demo site (``demo_sites.CATALOG``): serve v1 on 127.0.0.1, generate a
fetcher from scratch (``fetcher_codegen.deterministic.generate_deterministic``: capture with
Chromium, HAR analysis, recipe synthesis, proof), run the generated recipe once more into a
fresh folder (``fetcher_codegen.prove.run``, the product's own runners), read the ids of the
records in the files it wrote, by type, and compare them with the site's ``ground_truth()``.
A site succeeds when every ground-truth id was fetched. Target: at least 7 of 8.

Ids by file type: JSON — every value of a key named ``id``/``guid`` (any depth), and the
strings of a list of strings; CSV — the
``id`` column; XML — ``<guid>``/``<id>`` texts and ``id`` attributes; HTML — ``data-id`` and
``data-*-id`` attributes, and every text shown (ids in table cells).
"""

from __future__ import annotations

import argparse
import csv
import io
import ipaddress
import json
import shutil
import sys
import tempfile
import time
import traceback
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from defusedxml import ElementTree as SafeET

from amazoniax_dagster.core.errors import NoFetcherError
from amazoniax_dagster.core.messages import WebSourceConfig
from amazoniax_dagster.core.netpolicy import NetworkPolicy
from amazoniax_dagster.devstack.demo_sites import CATALOG, Variant, serve
from amazoniax_dagster.fetchers.base import FetchContext, FetchLimits
from bench.common import Row, print_table, write_results
from fetcher_codegen.deterministic import generate_deterministic
from fetcher_codegen.prove import run
from fetcher_codegen.records import html_texts

TARGET_SITES = 7
ID_KEYS = frozenset({"id", "guid"})


class _DataIds(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value and name.startswith("data-") and (name == "data-id" or name.endswith("-id")):
                self.ids.add(value)


def ids_in_file(path: Path) -> set[str]:
    """Record ids in one output file, parsed by its type."""
    text = path.read_bytes().decode("utf-8", errors="replace")
    suffix = path.suffix.lower()
    ids: set[str] = set()
    if suffix == ".json":
        _json_ids(json.loads(text), ids)
    elif suffix in (".csv", ".tsv"):
        reader = csv.DictReader(io.StringIO(text), delimiter="\t" if suffix == ".tsv" else ",")
        ids |= {row["id"] for row in reader if row.get("id")}
    elif suffix in (".xml", ".rss", ".atom"):
        root = SafeET.fromstring(text.encode("utf-8"))
        for node in root.iter():
            local = node.tag.rsplit("}", 1)[-1]
            if local in ID_KEYS and (node.text or "").strip():
                ids.add((node.text or "").strip())
            if node.get("id"):
                ids.add(str(node.get("id")))
    elif suffix in (".html", ".htm"):
        parser = _DataIds()
        parser.feed(text)
        ids |= parser.ids | html_texts(text)  # ids in attributes or shown in cells
    return ids


def _json_ids(data: Any, out: set[str]) -> None:
    if isinstance(data, dict):
        for key, value in data.items():
            if key in ID_KEYS and isinstance(value, str | int) and not isinstance(value, bool):
                out.add(str(value))
            _json_ids(value, out)
    elif isinstance(data, list):
        if data and all(isinstance(item, str) for item in data):
            out.update(data)  # a one-field list: its strings are the records (ids)
        for item in data:
            _json_ids(item, out)


def bench_site(
    name: str, workdir: Path, policy: NetworkPolicy, variant: Variant = "v1"
) -> dict[str, Any]:
    result: dict[str, Any] = {"site": name, "variant": variant, "ok": False}
    with serve(name) as site:
        site.variant = variant
        config = WebSourceConfig.model_validate(site.channel_config())
        started = time.perf_counter()
        try:
            candidate = generate_deterministic(config, workdir / name / "capture", policy=policy)
        except NoFetcherError as exc:  # no data found, or a synthesis its schema refuses
            result.update(error=str(exc), generate_seconds=round(time.perf_counter() - started, 2))
            return result
        result["generate_seconds"] = round(time.perf_counter() - started, 2)
        result.update(
            kind=candidate.kind,
            proof_ok=candidate.proof.ok,
            timings=candidate.provenance.get("timings", {}),
            warnings=candidate.provenance.get("warnings", []),
        )
        (workdir / name / "recipe.yaml").write_text(candidate.recipe_text)
        (workdir / name / "provenance.json").write_text(json.dumps(candidate.provenance, indent=2))
        out = workdir / name / "out"
        out.mkdir(parents=True)
        started = time.perf_counter()
        ctx = FetchContext(
            config, out, policy, limits=FetchLimits(max_pages=200), max_retries=1,
            retry_delay_seconds=0.5,
        )  # fmt: skip
        report = run(candidate.recipe_text, ctx)
        result["run_seconds"] = round(time.perf_counter() - started, 2)
        fetched: set[str] = set()
        for file in report.files:
            fetched |= ids_in_file(out / file.relative_path)
        expected = {str(record["id"]) for record in site.ground_truth()}
        missing = sorted(expected - fetched)
        result.update(
            files=len(report.files),
            expected_ids=len(expected),
            fetched_ids=len(expected & fetched),
            missing_ids=missing[:10],
            ok=not missing and bool(expected),
        )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", default=",".join(CATALOG), help="comma-separated names")
    parser.add_argument("--keep", action="store_true", help="keep captures, recipes, outputs")
    parser.add_argument(
        "--variant", default="v1", choices=["v1", "v2"], help="v2: every site's redesign"
    )
    args = parser.parse_args(argv)
    variant: Variant = args.variant
    names = [n.strip() for n in args.sites.split(",") if n.strip()]
    policy = NetworkPolicy(allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),))
    workdir = Path(tempfile.mkdtemp(prefix="amazoniax-bench-codegen-"))
    results = []
    try:
        for name in names:
            try:
                result = bench_site(name, workdir, policy, variant)
            except Exception as exc:  # noqa: BLE001 - a benchmark reports, it does not stop
                result = {"site": name, "ok": False, "error": f"{type(exc).__name__}: {exc}"}
                traceback.print_exc()
            results.append(result)
            print(json.dumps(result), flush=True)
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    rows = [
        Row(
            f"codegen {r['site']} {args.variant}: generate ({r.get('kind', '-')}), all ids",
            float(r.get("generate_seconds", 0.0)),
            None,
            "s",
            "all ids",
            bool(r["ok"]),
            extra=r,
        )
        for r in results
    ]
    succeeded = sum(1 for r in results if r["ok"])
    target = min(TARGET_SITES, len(results))
    rows.append(
        Row(
            f"codegen {args.variant}: sites with every id ({len(results)})",
            float(succeeded),
            None,
            "sites",
            f">= {target}",
            succeeded >= target,
        )  # fmt: skip
    )
    print_table(f"Fetcher generation without an LLM (demo sites, {args.variant})", rows)
    for r in results:
        if not r["ok"]:
            reason = r.get("error") or f"missing ids {r.get('missing_ids')}"
            print(f"{r['site']}: FAILED: {reason}")
    write_results("codegen", {"sites": names, "variant": args.variant}, rows)
    return 0 if succeeded >= target else 1


if __name__ == "__main__":
    sys.exit(main())
