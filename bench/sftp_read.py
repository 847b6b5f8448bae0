"""SFTP reads alone: ``SftpSource`` against ``rclone copy`` to local disk, from the same server.

    uv run python -m bench.sftp_read                                # 1,000 x 100 KB, one 256 MiB
    uv run python -m bench.sftp_read --files 200 --large 64MiB --repeats 1

No stack and no S3: this isolates the SFTP client, which ``bench.ftp_sync`` measures only
together with the upload. The server is the integration tests' asyncssh server
(``tests/integration/ftp_servers.py``), in a thread of this process, so its CPU is in neither
column. The product side is a fresh process that lists the folder and reads every file as the
sync engine does (its listed size and one byte more, 16 files at a time); rclone copies the
same folder to a temp dir with ``--transfers 16``. Both are timed from spawn to exit.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.common import (
    ROOT,
    Measured,
    Row,
    last_json_line,
    median,
    parse_size,
    print_table,
    python_env,
    rclone_env,
    require_rclone,
    run_measured,
    runs_extra,
    warm_bytecode,
    write_results,
)
from bench.ftp_sync import rclone_remote, write_files
from tests.integration.ftp_servers import PASSWORD, USER, SftpServer

WORKERS = 16


def read_folder(port: int, host_key: str, folder: str) -> dict[str, float]:
    """The product side (in its own process): list ``folder`` and read every file."""
    from amazoniax_dagster.core.messages import FtpSourceConfig
    from amazoniax_dagster.core.netpolicy import NetworkPolicy
    from amazoniax_dagster.sources.base import RemoteFile
    from amazoniax_dagster.sources.sftp import SftpSource

    config = FtpSourceConfig(
        protocol="sftp",
        host="127.0.0.1",
        port=port,
        username=USER,
        password=PASSWORD,
        remote_path=folder,
        file_pattern="**/*",
        host_key=host_key,
    )
    source = SftpSource(config, policy=NetworkPolicy.from_env("127.0.0.0/8"))

    def read(remote: RemoteFile) -> int:
        got = 0
        with source.open(remote) as stream:
            expected = remote.size or 0
            while got <= expected and (chunk := stream.read(min(1 << 20, expected + 1 - got))):
                got += len(chunk)
        assert got == expected, (remote.key, got, expected)
        return got

    started = time.perf_counter()
    files = [item for item in source.list_files() if isinstance(item, RemoteFile)]
    with ThreadPoolExecutor(WORKERS) as pool:
        total = sum(pool.map(read, files))
    seconds = time.perf_counter() - started
    source.close()
    return {"files": len(files), "bytes": total, "seconds": seconds}


def compare(
    name: str, folder: str, files: int, port: int, host_key: str, workdir: Path, repeats: int
) -> tuple[list[Measured], list[Measured]]:
    renv = rclone_env(rclone_remote("sftp", port), workdir)
    child = [sys.executable, "-m", "bench.sftp_read", "--child", str(port), host_key, folder]
    products: list[Measured] = []
    refs: list[Measured] = []
    for _ in range(repeats):
        product = run_measured(child, python_env())
        assert last_json_line(product.stdout)["files"] == files, product.stdout
        products.append(product)
        target = Path(tempfile.mkdtemp(dir=workdir))
        cmd = ["rclone", "copy", f"fsrc:{folder}", str(target), "--transfers", str(WORKERS)]
        refs.append(run_measured([*cmd, "--checkers", str(WORKERS), "--stats", "0"], renv))
        shutil.rmtree(target)
    print(
        f"  {name}: product {[round(m.seconds, 2) for m in products]} s, "
        f"rclone {[round(m.seconds, 2) for m in refs]} s",
        flush=True,
    )
    return products, refs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--size", default="100KB")
    parser.add_argument("--large", default="256MiB", help="one file of this size; 0 skips it")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", nargs=3, metavar=("PORT", "HOST_KEY", "FOLDER"))
    args = parser.parse_args(argv)
    if args.child:
        port, host_key, folder = args.child
        print(json.dumps(read_folder(int(port), host_key, folder)), flush=True)
        return 0

    require_rclone()
    warm_bytecode()
    # paramiko is imported on first use, so warm_bytecode does not reach it
    warm = "import paramiko, amazoniax_dagster.sources.sftp"
    subprocess.run([sys.executable, "-c", warm], env=python_env(), cwd=ROOT, check=True)
    size, large = parse_size(args.size), parse_size(args.large)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="amazoniax-bench-sftp-read-") as tmp:
        workdir = Path(tmp)
        root = workdir / "root"
        write_files(root / "small", args.files, size)
        if large:
            (root / "large").mkdir(parents=True)
            with (root / "large" / "large.bin").open("wb") as out:
                for offset in range(0, large, 1 << 24):
                    out.write(os.urandom(min(1 << 24, large - offset)))
        with SftpServer(root) as server:
            port, key = server.port, server.host_key_line
            products, refs = compare(
                "small", "/small", args.files, port, key, workdir, args.repeats
            )
            label = f"SFTP read {args.files} x {size // 1024} KiB"
            p_s, r_s = median([m.seconds for m in products]), median([m.seconds for m in refs])
            rows.append(Row(label, p_s, r_s, "s", "-", None, runs_extra(products, refs)))
            if large:
                products, refs = compare("large", "/large", 1, port, key, workdir, args.repeats)
                mib = large / 2**20
                p_rate = mib / median([m.seconds for m in products])
                r_rate = mib / median([m.seconds for m in refs])
                label = f"SFTP read one {mib:.0f} MiB file (higher is better)"
                extra = runs_extra(products, refs)
                rows.append(Row(label, p_rate, r_rate, "MiB/s", "-", None, extra))
    print_table("SFTP reads alone (no S3)", rows)
    write_results("sftp_read", {"files": args.files, "size": size, "large": large}, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
