"""FTP → S3 and SFTP → S3: the product's channel job vs ``rclone copy`` from an ftp/sftp remote.

    uv run python -m bench.ftp_sync                          # 1,000 x 100 KB, ftp and sftp
    uv run python -m bench.ftp_sync --files 200 --protocols sftp --repeats 1 --profile

The servers are the integration tests' (``tests/integration/ftp_servers.py``: pyftpdlib and
asyncssh, in threads of this process, on 127.0.0.1). Phases: initial copy, no-change re-run,
1% changed (rewritten with new bytes and an mtime one minute later). Each phase runs
``--repeats`` times (default 3) on as many lanes (a channel and an rclone destination each),
product and rclone alternating; the table shows medians and the JSON every run. The product
uses the channel config's defaults unless ``--max-connections`` sets it; rclone runs with
``--transfers 20 --checkers 20`` and compares size + modtime on re-runs (an FTP/SFTP remote
without a shell has no hashes for ``--checksum``). ``--profile`` records a py-spy profile of
one more initial copy.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from amazoniax_dagster.core.sealing import SecretCipher
from amazoniax_dagster.db import FetcherDB
from amazoniax_dagster.devstack.local_stack import StackEndpoints
from bench import profile
from bench.common import (
    OUTPUT_BUCKET,
    RESULTS_DIR,
    Measured,
    Row,
    admin_client,
    count_objects,
    last_json_line,
    local_stack,
    median,
    parse_size,
    print_table,
    product_env,
    rclone_copy_cmd,
    rclone_env,
    rclone_obscure,
    rclone_s3_env,
    require_rclone,
    run_measured,
    runs_extra,
    warm_bytecode,
    write_results,
)
from tests.integration.ftp_servers import PASSWORD, USER, FtpServer, SftpServer


def write_files(data: Path, count: int, size: int) -> list[Path]:
    paths = []
    for i in range(count):
        path = data / f"d{i % 10:02d}" / f"file-{i:06d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size))
        paths.append(path)
    return paths


@contextmanager
def server(protocol: str, root: Path) -> Iterator[tuple[int, str | None]]:
    if protocol == "ftp":
        with FtpServer(root) as ftp:
            yield ftp.port, None
    else:
        with SftpServer(root) as sftp:
            yield sftp.port, sftp.host_key_line


def rclone_remote(protocol: str, port: int) -> dict[str, str]:
    prefix = "RCLONE_CONFIG_FSRC_"
    env = {
        prefix + "TYPE": protocol,
        prefix + "HOST": "127.0.0.1",
        prefix + "PORT": str(port),
        prefix + "USER": USER,
        prefix + "PASS": rclone_obscure(PASSWORD),
    }
    if protocol == "sftp":
        env[prefix + "SHELL_TYPE"] = "none"
        env[prefix + "DISABLE_HASHCHECK"] = "true"
    return env


def bench_protocol(
    ep: StackEndpoints,
    workdir: Path,
    protocol: str,
    files: int,
    size: int,
    *,
    max_conn: int | None,
    repeats: int,
    do_profile: bool,
) -> list[Row]:
    """Each phase ``repeats`` times, product and rclone alternating, on separate lanes (a
    channel and an rclone destination each) that all see the same source; medians."""
    root = workdir / f"{protocol}-root"
    paths = write_files(root / "data", files, size)
    db = FetcherDB(ep.database_url, SecretCipher(ep.secret_key))
    env = product_env(ep)
    rows: list[Row] = []
    with server(protocol, root) as (port, host_key):
        config: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": port,
            "protocol": protocol,
            "username": USER,
            "password": PASSWORD,
            "remote_path": "/data",
            "file_pattern": "**/*",
        }
        if host_key:
            config["host_key"] = host_key
        if max_conn:
            config["max_connections"] = max_conn
        lanes = [f"bench-{protocol}-{lane}" for lane in range(repeats)]
        for channel in lanes:
            db.save_channel(channel, "ftp", config)  # sftp is an ftp source_type
        renv = rclone_env(
            rclone_remote(protocol, port) | rclone_s3_env("dst", ep, channel=False), workdir
        )

        def phase(name: str, job: str, check: str, expect: int, limit: float) -> None:
            products: list[Measured] = []
            refs: list[Measured] = []
            report: dict[str, Any] = {}
            for channel in lanes:
                cmd = [sys.executable, "-m", "bench.product_job", "--channel", channel]
                # job ids are global in the fetcher DB: one per lane (see bench.s3_sync)
                product = run_measured([*cmd, "--job", f"{channel}--{job}"], env)
                report = last_json_line(product.stdout)
                assert report["ok"] and report["summary"][check] == expect, report
                dst = f"dst:{OUTPUT_BUCKET}/rclone/{channel}/"
                ref = run_measured(rclone_copy_cmd("fsrc:/data", dst, checksum=False), renv)
                refs.append(ref)
                products.append(product)
            p_s, r_s = median([m.seconds for m in products]), median([m.seconds for m in refs])
            label = f"{protocol.upper()} {files} x {size // 1024} KiB: {name}"
            runs = runs_extra(products, refs)
            rows.append(
                Row(label, p_s, r_s, "s", f"<= {limit:.1f}x", p_s <= limit * r_s, report | runs)
            )
            print(f"  {label}: product {p_s:.2f} s, rclone {r_s:.2f} s {runs}", flush=True)

        phase("initial copy", "job-initial", "files_uploaded", files, 1.0)
        for channel in lanes:
            prefix = f"rclone/{channel}/"
            assert count_objects(admin_client(ep), OUTPUT_BUCKET, prefix) == files
        phase("no-change re-run", "job-nochange", "unchanged", files, 2.0)
        changed = random.Random(7).sample(paths, max(1, files // 100))
        later = time.time() + 60
        for path in changed:
            path.write_bytes(os.urandom(size))
            os.utime(path, (later, later))
        phase(f"1% changed ({len(changed)})", "job-changed", "files_uploaded", len(changed), 1.0)
        if do_profile:
            prof = f"bench-{protocol}-profile"
            db.save_channel(prof, "ftp", config)
            RESULTS_DIR.mkdir(parents=True, exist_ok=True)
            out = RESULTS_DIR / f"profile-{protocol}-{files}x{size}-initial.txt"
            cmd = [sys.executable, "-m", "bench.product_job", "--channel", prof, "--job", "p"]
            measured = run_measured(profile.profile_cmd(cmd, out), env)
            print(f"  profiled initial: {measured.seconds:.2f} s under py-spy")
            rows[-3].extra = rows[-3].extra | {
                "profile_initial": profile.print_summary(f"{protocol} initial", out)
            }
    db.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--size", default="100KB")
    parser.add_argument("--protocols", default="ftp,sftp")
    parser.add_argument(
        "--max-connections", type=int, default=None, help="channel config (default: unset)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs per phase (median)")
    parser.add_argument("--profile", action="store_true", help="py-spy the initial copy")
    args = parser.parse_args(argv)
    require_rclone()
    size = parse_size(args.size)
    warm_bytecode()
    rows: list[Row] = []
    with local_stack("ftp") as (ep, workdir):
        FetcherDB(ep.database_url, SecretCipher(ep.secret_key)).migrate()
        for protocol in args.protocols.split(","):
            rows += bench_protocol(
                ep,
                workdir,
                protocol,
                args.files,
                size,
                max_conn=args.max_connections,
                repeats=max(1, args.repeats),
                do_profile=args.profile,
            )
    print_table("FTP/SFTP -> S3 sync (seconds, lower is better)", rows)
    write_results("ftp_sync", vars(args), rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
