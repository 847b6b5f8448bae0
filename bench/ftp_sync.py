"""FTP → S3 and SFTP → S3: the product's channel job vs ``rclone copy`` from an ftp/sftp remote.

    uv run python -m bench.ftp_sync                          # 1,000 x 100 KB, ftp and sftp
    uv run python -m bench.ftp_sync --files 200 --protocols sftp

The servers are the integration tests' (``tests/integration/ftp_servers.py``: pyftpdlib and
asyncssh, in threads of this process, on 127.0.0.1). Phases: initial copy, no-change re-run,
1% changed (rewritten with new bytes and an mtime one minute later). The product uses the
channel config's defaults (``max_connections`` 4) unless ``--max-connections`` says otherwise;
rclone runs with ``--transfers 20 --checkers 20`` and compares size + modtime on re-runs (an
FTP/SFTP remote without a shell has no hashes for ``--checksum``).
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

from amazoniax_dagster.db import FetcherDB
from amazoniax_dagster.local_stack import StackEndpoints
from amazoniax_dagster.sealing import SecretCipher
from bench.common import (
    OUTPUT_BUCKET,
    Row,
    admin_client,
    count_objects,
    last_json_line,
    local_stack,
    parse_size,
    print_table,
    product_env,
    rclone_copy_cmd,
    rclone_env,
    rclone_obscure,
    rclone_s3_env,
    run_measured,
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
    ep: StackEndpoints, workdir: Path, protocol: str, files: int, size: int, max_conn: int | None
) -> list[Row]:
    root = workdir / f"{protocol}-root"
    paths = write_files(root / "data", files, size)
    db = FetcherDB(ep.database_url, SecretCipher(ep.secret_key))
    env = product_env(ep)
    rows: list[Row] = []
    with server(protocol, root) as (port, host_key):
        channel = f"bench-{protocol}"
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
        db.save_channel(channel, "ftp", config)  # sftp is an ftp source_type
        renv = rclone_env(
            rclone_remote(protocol, port) | rclone_s3_env("dst", ep, channel=False), workdir
        )
        src, dst = "fsrc:/data", f"dst:{OUTPUT_BUCKET}/rclone/{channel}/"

        def phase(name: str, job: str, check: str, expect: int, limit: float) -> None:
            cmd = [sys.executable, "-m", "bench.product_job", "--channel", channel, "--job", job]
            product = run_measured(cmd, env)
            report = last_json_line(product.stdout)
            assert report["ok"] and report["summary"][check] == expect, report
            ref = run_measured(rclone_copy_cmd(src, dst, checksum=False), renv).seconds
            ok = product.seconds <= limit * ref
            label = f"{protocol.upper()} {files} x {size // 1024} KiB: {name}"
            rows.append(Row(label, product.seconds, ref, "s", f"<= {limit:.1f}x", ok, report))
            print(f"  {label}: product {product.seconds:.2f} s, rclone {ref:.2f} s", flush=True)

        phase("initial copy", "job-initial", "files_uploaded", files, 1.0)
        assert count_objects(admin_client(ep), OUTPUT_BUCKET, f"rclone/{channel}/") == files
        phase("no-change re-run", "job-nochange", "unchanged", files, 2.0)
        changed = random.Random(7).sample(paths, max(1, files // 100))
        later = time.time() + 60
        for path in changed:
            path.write_bytes(os.urandom(size))
            os.utime(path, (later, later))
        phase(f"1% changed ({len(changed)})", "job-changed", "files_uploaded", len(changed), 1.0)
    db.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--size", default="100KB")
    parser.add_argument("--protocols", default="ftp,sftp")
    parser.add_argument("--max-connections", type=int, default=None, help="config; default 4")
    args = parser.parse_args(argv)
    size = parse_size(args.size)
    warm_bytecode()
    rows: list[Row] = []
    with local_stack("ftp") as (ep, workdir):
        FetcherDB(ep.database_url, SecretCipher(ep.secret_key)).migrate()
        for protocol in args.protocols.split(","):
            rows += bench_protocol(ep, workdir, protocol, args.files, size, args.max_connections)
    print_table("FTP/SFTP -> S3 sync (seconds, lower is better)", rows)
    write_results("ftp_sync", vars(args), rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
