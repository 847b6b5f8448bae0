"""Records loaded per second: a JSONL job folder in S3 -> ``unified_items``, against a plain
``COPY`` of the same rows into a table of the same columns (the floor). Peak RSS of the load.

    uv run python -m bench.records --records 1000000
"""

from __future__ import annotations

import argparse
import io
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
from bench.common import OUTPUT_BUCKET, Row, RssSampler, local_stack, print_table, write_results

FLOOR_TABLE = """
CREATE TABLE IF NOT EXISTS copy_floor (source_type text, source_name text, external_id text,
    title text, content text, url text, published_at timestamptz, raw jsonb, content_hash text,
    job_id text, file_key text)
"""


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


def copy_floor(db: Database, path: Path) -> float:
    """The same rows (mapped, as the loader stores them) by COPY; mapping is not timed."""
    buffer = io.StringIO()
    with path.open() as lines:
        for line in lines:
            item = to_item(json.loads(line), RecordMapping())
            cells = [
                "api", "bench", item.external_id, item.title or "", item.content or "",
                item.url or "", item.published_at.isoformat() if item.published_at else "",
                json.dumps(item.raw), item.content_hash, "job", "key",
            ]  # fmt: skip
            buffer.write("\t".join(c.replace("\\", "\\\\").replace("\t", "\\t") for c in cells))
            buffer.write("\n")
    buffer.seek(0)
    with db.transaction() as sql:
        sql.execute(FLOOR_TABLE)
        sql.execute("TRUNCATE copy_floor")
    began = time.perf_counter()
    with db.transaction() as sql:
        sql.cursor.copy_expert("COPY copy_floor FROM STDIN", buffer)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
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
            path = Path(tmp) / "items.jsonl"
            write_jsonl(path, args.records)
            size = path.stat().st_size
            key = bucket.key_for("bench", "job", "items.jsonl")
            with path.open("rb") as stream:
                bucket.upload(stream, key, sha256="0" * 64, size=size)
            began = time.perf_counter()
            base = psutil.Process().memory_info().rss
            with OwnRss() as rss:
                result = load_folder(
                    db,
                    bucket,
                    bucket.job_folder("bench", "job"),
                    channel_id="bench",
                    job_id="job",
                    source_type="api",
                    mapping=RecordMapping(),
                )
            load_s = time.perf_counter() - began
            floor_s = copy_floor(db, path)  # after the load: its buffer must not count in RSS
        assert result.counts.inserted == args.records, result.counts
        product, floor = args.records / load_s, args.records / floor_s
        rows = [
            Row(
                f"{args.records:,} JSONL records S3 -> unified_items",
                round(product),
                round(floor),
                "rec/s",
                ">= 0.5x",
                ok=product >= 0.5 * floor,
                extra={"load_seconds": load_s, "copy_seconds": floor_s},
            ),
            Row(
                "peak RSS of the loading process (its own, not the stack's)",
                round(rss.peak / 2**20),
                None,
                "MiB",
                "flat",
                extra={"rss_before_load_mib": round(base / 2**20)},
            ),
        ]
        print_table("records", rows)
        write_results("records", vars(args), rows)
        bucket.close()
        db.close()


if __name__ == "__main__":
    main()
