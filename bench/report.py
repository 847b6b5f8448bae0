"""The latest result of every benchmark as one Markdown table (for bench/README.md).

uv run python -m bench.report
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bench.common import RESULTS_DIR

BENCHES = ("s3_sync", "large_file", "sensor", "run_overhead", "ftp_sync", "codegen", "heal")


def latest(bench: str) -> Path | None:
    files = sorted(RESULTS_DIR.glob(f"{bench}-*.json"))
    return files[-1] if files else None


def main() -> int:
    print("| row | product | reference | ratio | target | met |")
    print("|---|---:|---:|---:|---|---|")
    for bench in BENCHES:
        path = latest(bench)
        if path is None:
            print(f"| {bench}: not run | | | | | |")
            continue
        for row in json.loads(path.read_text())["rows"]:
            unit = row["unit"]
            ref = "-" if row["reference"] is None else f"{row['reference']:.2f} {unit}"
            ratio = "-" if row["ratio"] is None else f"{row['ratio']:.2f}x"
            met = {True: "yes", False: "**no**", None: "-"}[row["ok"]]
            print(
                f"| {row['name']} | {row['product']:.2f} {unit} | {ref} | {ratio} | "
                f"{row['target']} | {met} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
