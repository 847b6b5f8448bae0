"""What a channel step imports once its run worker has loaded the code location.

    uv run python -m bench.step_imports
    uv run python -m bench.step_imports --repeats 10

A run worker imports Dagster, its instance storage and ``amazoniax_dagster.definitions``; the
channel step then imports the job path (``channel_job``, the S3 source, the sandbox's limits)
on first use, and the fetcher catalog only for a web/API channel. Each repeat is a fresh
interpreter that does exactly that and reports the CPU and wall time of the job-path imports
and of the full collections that fall into them, with the heap frozen after the code location
loads (as ``definitions`` does) and, for reference, with ``gc.freeze`` switched off. No stack
is needed: nothing here connects anywhere.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

from bench.common import ROOT, Row, print_table, python_env, warm_bytecode, write_results

# Runs in the child interpreter. ``FREEZE`` is substituted: "0" makes gc.freeze a no-op before
# the code location loads, so the heap stays as it was before this pass.
_CHILD = """
import gc, json, time
if not {freeze}:
    gc.freeze = lambda: None
import dagster
import dagster._core.storage.runs.sqlite  # the run worker's instance storage (bench: SQLite)
import amazoniax_dagster.definitions
full = [0.0, 0.0]
def _timed(phase, info):
    if info["generation"] == 2:
        if phase == "start":
            full[1] = time.perf_counter()
        else:
            full[0] += time.perf_counter() - full[1]
gc.callbacks.append(_timed)
cpu, wall = time.process_time(), time.perf_counter()
import amazoniax_dagster.jobs.channel_job, amazoniax_dagster.sources.s3
import amazoniax_dagster.fetchers.sandbox  # PythonFetchersResource.limits(), in every step
print(json.dumps({{"cpu": time.process_time() - cpu, "wall": time.perf_counter() - wall,
                   "full_collections": full[0]}}))
"""


def measure(freeze: bool) -> dict[str, float]:
    code = _CHILD.format(freeze=int(freeze))
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=python_env(),
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    report: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    warm_bytecode()
    runs: dict[bool, list[dict[str, float]]] = {True: [], False: []}
    for i in range(args.repeats):
        for freeze in (True, False):
            runs[freeze].append(measure(freeze))
        print(
            f"  repeat {i + 1}: frozen {runs[True][-1]['cpu']:.3f} CPU-s, "
            f"not frozen {runs[False][-1]['cpu']:.3f} CPU-s",
            flush=True,
        )
    med = statistics.median
    rows = [
        Row(
            f"job-path imports in a run worker, {what} ({'frozen' if freeze else 'not frozen'})",
            med(r[what] for r in runs[freeze]),
            None,
            "s",
            "-",
            None,
            {"runs": [r[what] for r in runs[freeze]]},
        )
        for what in ("cpu", "wall", "full_collections")
        for freeze in (True, False)
    ]
    print_table("Channel step imports after the code location loads", rows)
    write_results("step_imports", vars(args), rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
