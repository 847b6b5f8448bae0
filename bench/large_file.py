"""One large object S3 → S3: throughput and peak RSS of the process tree, product vs rclone.

    uv run python -m bench.large_file                 # 2 GiB
    uv run python -m bench.large_file --size 200MiB   # while developing

Product: ``python -m bench.product_job`` on a channel holding only that object (a fresh
process: the object streams through SHA-256 into a multipart upload while it downloads).
Reference: ``rclone copy --transfers 20 --checkers 20`` between two env-configured remotes on
the same SeaweedFS. Each side runs ``--repeats`` times, alternating (fresh channel and
destination each time); throughput is the median, peak RSS the worst run. RSS is the sum over
the process and its children, sampled every 50 ms (psutil).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from boto3.s3.transfer import TransferConfig

from amazoniax_dagster.core.sealing import SecretCipher
from amazoniax_dagster.db import FetcherDB
from bench.common import (
    OUTPUT_BUCKET,
    SOURCE_BUCKET,
    Measured,
    Row,
    channel_client,
    human_size,
    last_json_line,
    local_stack,
    median,
    parse_size,
    print_table,
    product_env,
    rclone_copy_cmd,
    rclone_env,
    rclone_s3_env,
    require_rclone,
    run_measured,
    s3_channel_config,
    warm_bytecode,
    write_results,
)

MIB = 1024 * 1024
RSS_LIMIT = 150 * MIB


def seed(client: object, key: str, size: int, workdir: Path) -> None:
    """Write ``size`` random bytes to a temp file and upload it (multipart)."""
    path = workdir / "large.bin"
    with path.open("wb") as handle:
        left = size
        while left > 0:
            n = min(left, 16 * MIB)
            handle.write(os.urandom(n))
            left -= n
    config = TransferConfig(multipart_threshold=64 * MIB, multipart_chunksize=64 * MIB)
    client.upload_file(str(path), SOURCE_BUCKET, key, Config=config)  # type: ignore[attr-defined]
    path.unlink()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", default="2GiB", help="object size, e.g. 200MiB, 2GiB")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each side (median)")
    args = parser.parse_args(argv)
    require_rclone()
    size = parse_size(args.size)
    warm_bytecode()
    products: list[Measured] = []
    refs: list[Measured] = []
    report: dict[str, Any] = {}
    with local_stack("large") as (ep, workdir):
        db = FetcherDB(ep.database_url, SecretCipher(ep.secret_key))
        db.migrate()
        prefix = "large/"
        print(f"seeding one {human_size(size)} object ...", flush=True)
        seed(channel_client(ep), f"{prefix}big.bin", size, workdir)
        remotes = rclone_s3_env("src", ep, channel=True) | rclone_s3_env("dst", ep, channel=False)
        renv = rclone_env(remotes, workdir) | {"TMPDIR": tempfile.gettempdir()}
        src = f"src:{SOURCE_BUCKET}/{prefix}"
        for run in range(max(1, args.repeats)):
            channel = f"bench-large-{run}"  # a fresh channel: the object is new to it
            db.save_channel(channel, "s3", s3_channel_config(ep, prefix))
            job = f"{channel}--j1"  # job ids are global in the fetcher DB
            cmd = [sys.executable, "-m", "bench.product_job", "--channel", channel, "--job", job]
            product = run_measured(cmd, product_env(ep), sample_rss=True)
            report = last_json_line(product.stdout)
            assert report["ok"] and report["summary"]["files_uploaded"] == 1, report
            print(f"product: {product.seconds:.2f} s, peak RSS {human_size(product.peak_rss)}")
            dst = f"dst:{OUTPUT_BUCKET}/rclone/{channel}/"
            ref = run_measured(rclone_copy_cmd(src, dst, checksum=False), renv, sample_rss=True)
            print(f"rclone: {ref.seconds:.2f} s, peak RSS {human_size(ref.peak_rss)}")
            products.append(product)
            refs.append(ref)
        db.close()

    p_s = median([m.seconds for m in products])
    r_s = median([m.seconds for m in refs])
    p_rss = max(m.peak_rss for m in products)  # the worst run: a ceiling must hold every time
    r_rss = max(m.peak_rss for m in refs)
    p_tp, r_tp = size / MIB / p_s, size / MIB / r_s
    runs = {
        "product_seconds": [m.seconds for m in products],
        "rclone_seconds": [m.seconds for m in refs],
        "product_peak_rss_mib": [round(m.peak_rss / MIB, 1) for m in products],
        "rclone_peak_rss_mib": [round(m.peak_rss / MIB, 1) for m in refs],
    }
    label = f"large file {human_size(size)}"
    rows = [
        Row(
            f"{label}: throughput",
            p_tp,
            r_tp,
            "MiB/s",
            ">= 0.9x",
            p_tp >= 0.9 * r_tp,
            report | runs,
        ),
        Row(
            f"{label}: peak RSS (tree, worst run)",
            p_rss / MIB,
            r_rss / MIB,
            "MiB",
            "< 150 MiB",
            p_rss < RSS_LIMIT,
            runs,
        ),
    ]
    print_table("One large object S3 -> S3", rows)
    write_results("large_file", {"size": size, "repeats": args.repeats}, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
