"""Fetcher generation on holdout sites: shapes outside the demo catalogue (bench/holdout_sites.py).

    uv run python -m bench.holdout                         # every holdout site
    uv run python -m bench.holdout --sites xml_token --keep

As ``bench.codegen`` does for the demo sites: serve the site on 127.0.0.1, generate a fetcher
from scratch with ``generate_deterministic`` (capture, synthesis, proof), run the recipe once
more into a fresh folder and compare the ids in its files with the site's ground truth. A site
succeeds when every id was fetched. "proved" says whether the generator would publish it: a
site that is incomplete but proved is the failure that matters most.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from amazoniax_dagster.core.errors import NoFetcherError
from amazoniax_dagster.core.messages import WebSourceConfig
from amazoniax_dagster.core.netpolicy import NetworkPolicy
from amazoniax_dagster.fetchers.base import FetchContext, FetchLimits
from bench.codegen import ids_in_file
from bench.common import Row, print_table, write_results
from bench.holdout_sites import SITES, serve
from fetcher_codegen.deterministic import generate_deterministic
from fetcher_codegen.prove import run


def bench_site(name: str, workdir: Path, policy: NetworkPolicy) -> dict[str, Any]:
    site = SITES[name]
    result: dict[str, Any] = {"site": name, "what": site.what, "ok": False, "proved": False}
    server, origin = serve(name)
    try:
        config = WebSourceConfig.model_validate(
            {"url": origin + site.path, "channel_name": f"Holdout {name}", **site.config}
        )
        started = time.perf_counter()
        try:
            candidate = generate_deterministic(config, workdir / name / "capture", policy=policy)
        except NoFetcherError as exc:
            result.update(error=str(exc), generate_seconds=round(time.perf_counter() - started, 2))
            return result
        result.update(
            generate_seconds=round(time.perf_counter() - started, 2),
            kind=candidate.kind,
            proved=candidate.proof.ok,
        )
        (workdir / name / "recipe.yaml").write_text(candidate.recipe_text)
        out = workdir / name / "out"
        out.mkdir(parents=True)
        ctx = FetchContext(config, out, policy, limits=FetchLimits(max_pages=200), max_retries=1)
        report = run(candidate.recipe_text, ctx)
        fetched: set[str] = set()
        for file in report.files:
            fetched |= ids_in_file(out / file.relative_path)
        expected = {str(record[site.id_key]) for record in site.truth}
        result.update(
            files=len(report.files),
            expected_ids=len(expected),
            fetched_ids=len(expected & fetched),
            ok=expected <= fetched,
        )
        return result
    finally:
        server.shutdown()
        server.server_close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", default=",".join(SITES), help="comma-separated names")
    parser.add_argument("--keep", action="store_true", help="keep captures, recipes, outputs")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.sites.split(",") if n.strip()]
    policy = NetworkPolicy(allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),))
    workdir = Path(tempfile.mkdtemp(prefix="amazoniax-bench-holdout-"))
    results = []
    try:
        for name in names:
            try:
                result = bench_site(name, workdir, policy)
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
            f"holdout {r['site']}: {r.get('fetched_ids', 0)}/{r.get('expected_ids', '?')} ids, "
            f"{'proved' if r.get('proved') else 'not proved'}",
            float(r.get("generate_seconds", 0.0)),
            None,
            "s",
            "all ids",
            bool(r["ok"]),
            extra=r,
        )
        for r in results
    ]
    complete = sum(1 for r in results if r["ok"])
    wrongly_proved = [r["site"] for r in results if r.get("proved") and not r["ok"]]
    print_table("Fetcher generation on holdout sites", rows)
    print(f"complete: {complete} of {len(results)}; proved but incomplete: {wrongly_proved}")
    write_results("holdout", {"sites": names}, rows)
    return 0 if not wrongly_proved else 1


if __name__ == "__main__":
    sys.exit(main())
