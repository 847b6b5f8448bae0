"""Records loaded per second: a JSONL job folder in S3 -> ``unified_items``, against the least a
plain ``COPY`` of the same rows takes to reach a table defined as ``unified_items`` is (the
floor). Peak RSS of the load.

    uv run python -m bench.records --records 1000000 --repeats 1

Each repeat loads the file into a fresh channel (every record new), then COPYs the same rows,
mapped beforehand (not timed), into ``copy_indexed`` (``unified_items``' columns, indexes and
defaults) and into ``copy_bare`` (the same columns and defaults, no index), then builds
``unified_items``' indexes on ``copy_bare``. The floor is the faster of "COPY into the indexed
table" and "bare COPY, then build the indexes"; the bare COPY alone is shown too, though it
does not reach the same table. Medians over repeats; the JSON keeps every run.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import psutil

from amazoniax_dagster.clients.output_bucket import OutputBucket, OutputSettings
from amazoniax_dagster.db.pg import Database
from amazoniax_dagster.records.engine import load_folder
from amazoniax_dagster.records.mapping import RecordMapping, to_item
from bench.common import (
    OUTPUT_BUCKET,
    Row,
    RssSampler,
    local_stack,
    median,
    print_table,
    write_results,
)

COLUMNS = (
    "source_type, source_name, external_id, title, content, url, published_at, raw, "
    "content_hash, job_id, file_key"
)
FLOOR_TABLES = {
    "copy_bare": "CREATE TABLE IF NOT EXISTS copy_bare (LIKE unified_items INCLUDING DEFAULTS)",
    "copy_indexed": "CREATE TABLE IF NOT EXISTS copy_indexed (LIKE unified_items INCLUDING ALL)",
}


class OwnRss(RssSampler):
    """Peak RSS of this process alone: the stack's servers are its children here."""

    def __init__(self) -> None:
        super().__init__(os.getpid())

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            self.peak = max(self.peak, me.memory_info().rss)
            self._stop.wait(self.interval)


def record(i: int) -> dict[str, object]:
    return {
        "id": f"rec-{i}",
        "title": f"Record number {i}",
        "summary": f"Body of record {i}, with some text to make it realistic.",
        "url": f"https://example.test/items/{i}",
        "published_at": f"2026-01-{1 + i % 28:02d}T12:00:00Z",
        "score": i % 97,
    }


def write_jsonl(path: Path, count: int) -> None:
    with path.open("w") as out:
        for i in range(count):
            out.write(json.dumps(record(i)) + "\n")


def write_rows(source: Path, rows: Path) -> None:
    """The records of ``source`` mapped as the loader stores them, as COPY text in ``rows``."""
    with source.open() as lines, rows.open("w") as out:
        for line in lines:
            item = to_item(json.loads(line), RecordMapping())
            cells = [
                "api", "floor", item.external_id, item.title or "", item.content or "",
                item.url or "", item.published_at.isoformat() if item.published_at else "",
                item.body.decode(), item.content_hash, "job", "key",
            ]  # fmt: skip
            out.write("\t".join(c.replace("\\", "\\\\").replace("\t", "\\t") for c in cells))
            out.write("\n")


def copy_seconds(db: Database, table: str, rows: Path) -> float:
    """Seconds to COPY ``rows`` into an emptied ``table``, in one transaction."""
    with db.transaction() as sql:
        sql.execute(FLOOR_TABLES[table])
        sql.execute(f"TRUNCATE {table}")
    with rows.open() as data:
        began = time.perf_counter()
        with db.transaction() as sql:
            sql.cursor.copy_expert(f"COPY {table} ({COLUMNS}) FROM STDIN", data)
        return time.perf_counter() - began


def index_build_seconds(db: Database) -> float:
    """Seconds to build ``unified_items``' indexes on ``copy_bare`` as it was just loaded."""
    with db.transaction() as sql:
        definitions = [
            definition
            for (definition,) in sql.all(
                "SELECT indexdef FROM pg_indexes WHERE tablename = 'unified_items'"
            )
        ]
    names = [d.split(" INDEX ", 1)[1].split(" ON ", 1)[0] for d in definitions]
    began = time.perf_counter()
    with db.transaction() as sql:
        for name, definition in zip(names, definitions, strict=True):
            bare = definition.replace(f" {name} ", f" bare_{name} ", 1)
            sql.execute(bare.replace("public.unified_items ", "public.copy_bare ", 1))
    seconds = time.perf_counter() - began
    with db.transaction() as sql:  # the next repeat's COPY is into a bare table again
        for name in names:
            sql.execute(f"DROP INDEX bare_{name}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    with local_stack("records", services=("s3", "postgres")) as (ep, _workdir):
        from amazoniax_dagster.core.sealing import SecretCipher
        from amazoniax_dagster.db import FetcherDB

        FetcherDB(ep.database_url, SecretCipher(ep.secret_key)).migrate()
        db = Database(ep.database_url)
        bucket = OutputBucket(
            OutputSettings(
                bucket=OUTPUT_BUCKET,
                endpoint_url=ep.s3_endpoint_url,
                access_key_id=ep.s3_access_key_id,
                secret_access_key=ep.s3_secret_access_key,
                region=ep.s3_region,
            )
        )
        with tempfile.TemporaryDirectory() as tmp:
            path, rows_path = Path(tmp) / "items.jsonl", Path(tmp) / "rows.tsv"
            write_jsonl(path, args.records)
            write_rows(path, rows_path)
            key = bucket.key_for("bench", "job", "items.jsonl")
            with path.open("rb") as stream:
                bucket.upload(stream, key, sha256="0" * 64, size=path.stat().st_size)
            loads: list[float] = []
            floors: dict[str, list[float]] = {table: [] for table in FLOOR_TABLES}
            peaks: list[int] = []
            builds: list[float] = []
            base = psutil.Process().memory_info().rss
            for repeat in range(args.repeats):
                began = time.perf_counter()
                with OwnRss() as rss:
                    result = load_folder(
                        db,
                        bucket,
                        bucket.job_folder("bench", "job"),
                        channel_id=f"bench-{repeat}",
                        job_id="job",
                        source_type="api",
                        mapping=RecordMapping(),
                    )
                loads.append(time.perf_counter() - began)
                peaks.append(rss.peak)
                assert result.counts.inserted == args.records, result.counts
                for table, seconds in floors.items():
                    seconds.append(copy_seconds(db, table, rows_path))
                builds.append(index_build_seconds(db))
        product = args.records / median(loads)
        indexed = args.records / median(floors["copy_indexed"])
        bare = args.records / median(floors["copy_bare"])
        bare_then_build = args.records / (median(floors["copy_bare"]) + median(builds))
        floor = max(indexed, bare_then_build)  # the faster way to the same table
        runs = {"load_seconds": loads} | {f"{t}_seconds": s for t, s in floors.items()}
        runs["index_build_seconds"] = builds
        rows = [
            Row(
                f"{args.records:,} JSONL records S3 -> unified_items vs the floor",
                round(product),
                round(floor),
                "rec/s",
                ">= 0.5x",
                ok=product >= 0.5 * floor,
                extra=runs,
            ),
            Row("floor a: COPY into the table's definition", round(indexed), None, "rec/s", "-"),
            Row(
                "floor b: bare COPY, then the table's indexes built",
                round(bare_then_build),
                None,
                "rec/s",
                "-",
            ),
            Row(
                "load vs a bare COPY (same columns and defaults, no index)",
                round(product),
                round(bare),
                "rec/s",
                "-",
            ),
            Row(
                "peak RSS of the loading process (its own, not the stack's)",
                round(max(peaks) / 2**20),
                None,
                "MiB",
                "flat",
                extra={"rss_before_load_mib": round(base / 2**20), "peaks": peaks},
            ),
        ]
        print_table("records", rows)
        write_results("records", vars(args), rows)
        bucket.close()
        db.close()


if __name__ == "__main__":
    main()
