"""Shared pieces of the benchmarks: the local stack, seeding, timing, RSS sampling, rclone,
result tables and JSON files. Nothing here is product code: it only drives the product."""

from __future__ import annotations

import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from amazoniax_dagster.clients import s3 as s3util
from amazoniax_dagster.devstack.local_stack import LocalStack, StackEndpoints

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
SOURCE_BUCKET = "bench-source"
OUTPUT_BUCKET = "amazoniax-output"

_UNITS = {"": 1, "B": 1, "KB": 1024, "K": 1024, "KIB": 1024, "MB": 1024**2, "M": 1024**2}
_UNITS |= {"MIB": 1024**2, "GB": 1024**3, "G": 1024**3, "GIB": 1024**3}


def parse_size(text: str) -> int:
    """``100KB`` / ``200MiB`` / ``2GiB`` / ``4096`` → bytes (binary units throughout)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", text)
    if match is None or match.group(2).upper() not in _UNITS:
        raise ValueError(f"not a size: {text!r}")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def human_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


# --------------------------------------------------------------------------- the stack


@contextmanager
def local_stack(
    name: str, services: Sequence[str] = ("kafka", "s3", "postgres")
) -> Iterator[tuple[StackEndpoints, Path]]:
    """A LocalStack in a fresh temp dir (removed afterwards), with the source bucket."""
    workdir = Path(tempfile.mkdtemp(prefix=f"amazoniax-bench-{name}-"))
    stack = LocalStack(workdir / "stack", services=services, buckets=(OUTPUT_BUCKET, SOURCE_BUCKET))
    try:
        endpoints = stack.start()
        print(f"local stack up in {stack.startup_seconds:.1f} s ({workdir})", flush=True)
        yield endpoints, workdir
    finally:
        stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def admin_client(ep: StackEndpoints, pool: int = 64) -> Any:
    return s3util.make_client(
        endpoint_url=ep.s3_endpoint_url,
        access_key_id=ep.s3_access_key_id,
        secret_access_key=ep.s3_secret_access_key,
        region=ep.s3_region,
        max_pool_connections=pool,
    )


def channel_client(ep: StackEndpoints, pool: int = 64) -> Any:
    return s3util.make_client(
        endpoint_url=ep.s3_endpoint_url,
        access_key_id=ep.channel_s3_access_key_id,
        secret_access_key=ep.channel_s3_secret_access_key,
        region=ep.s3_region,
        max_pool_connections=pool,
    )


def object_key(prefix: str, i: int) -> str:
    return f"{prefix}d{i % 10:02d}/file-{i:06d}.bin"


def put_objects(client: Any, bucket: str, keys: Sequence[str], size: int) -> None:
    """Write ``keys`` with fresh random bytes of ``size`` each, 32 in parallel."""

    def put(key: str) -> None:
        client.put_object(Bucket=bucket, Key=key, Body=os.urandom(size))

    with ThreadPoolExecutor(32) as pool:
        list(pool.map(put, keys))


def count_objects(client: Any, bucket: str, prefix: str) -> int:
    total = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        total += len(page.get("Contents", []))
    return total


def s3_channel_config(ep: StackEndpoints, prefix: str, **extra: Any) -> dict[str, Any]:
    return {
        "bucket": SOURCE_BUCKET,
        "remote_path": prefix,
        "file_pattern": "**",
        "endpoint_url": ep.s3_endpoint_url,
        "region": ep.s3_region,
        "access_key": ep.channel_s3_access_key_id,
        "secret_access_key": ep.channel_s3_secret_access_key,
    } | extra


PYCACHE = Path(tempfile.gettempdir()) / "amazoniax-bench-pycache"


def python_env() -> dict[str, str]:
    """The environment of product subprocesses. This machine sets PYTHONDONTWRITEBYTECODE, so
    most of .venv has no .pyc and every start would compile ~all of Dagster from source (2/3 of
    a no-change run in the first profile). A deployment has bytecode (``uv sync
    --compile-bytecode``, or written on first start), so the benchmarks cache it under a
    prefix of their own (nothing is written into .venv) and warm it before measuring.
    ``BENCH_COLD_BYTECODE=1`` keeps the machine's setting."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    if os.environ.get("BENCH_COLD_BYTECODE") != "1":
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    return env


def warm_bytecode() -> None:
    """Import what the product subprocesses import once, so their .pyc files exist."""
    code = "import bench.product_job, bench.dagster_run, amazoniax_dagster.definitions"
    subprocess.run([sys.executable, "-c", code], env=python_env(), cwd=ROOT, check=True)


def product_env(ep: StackEndpoints) -> dict[str, str]:
    return python_env() | ep.env()


# --------------------------------------------------------------------------- rclone


def require_rclone() -> None:
    """Stop before the stack starts and the data is seeded when the reference is missing."""
    if shutil.which("rclone") is None:
        raise SystemExit(
            "rclone is not installed, and it is this benchmark's reference "
            "(Debian: apt-get install rclone)"
        )


def rclone_version() -> str:
    if shutil.which("rclone") is None:
        return "(not installed)"
    out = subprocess.run(["rclone", "version"], capture_output=True, text=True, check=False)
    return out.stdout.splitlines()[0] if out.stdout else "?"


def rclone_obscure(password: str) -> str:
    out = subprocess.run(
        ["rclone", "obscure", password], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def rclone_s3_env(name: str, ep: StackEndpoints, *, channel: bool) -> dict[str, str]:
    """An rclone remote ``name`` on the stack's SeaweedFS, configured by environment only."""
    prefix = f"RCLONE_CONFIG_{name.upper()}_"
    key = ep.channel_s3_access_key_id if channel else ep.s3_access_key_id
    secret = ep.channel_s3_secret_access_key if channel else ep.s3_secret_access_key
    return {
        prefix + "TYPE": "s3",
        prefix + "PROVIDER": "Other",
        prefix + "ENDPOINT": ep.s3_endpoint_url,
        prefix + "ACCESS_KEY_ID": key,
        prefix + "SECRET_ACCESS_KEY": secret,
        prefix + "REGION": ep.s3_region,
        prefix + "FORCE_PATH_STYLE": "true",
    }


def rclone_env(remotes: dict[str, str], workdir: Path) -> dict[str, str]:
    # AWS_CA_BUNDLE makes rclone's S3 backend fail ("unsupported transport"); the stack is
    # plain http on loopback, so no CA is involved anyway.
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    env["RCLONE_CONFIG"] = str(workdir / "rclone-empty.conf")  # no user config leaks in
    Path(env["RCLONE_CONFIG"]).touch()
    env.update(remotes)
    return env


def rclone_copy_cmd(src: str, dst: str, *, checksum: bool) -> list[str]:
    cmd = ["rclone", "copy", src, dst, "--transfers", "20", "--checkers", "20"]
    cmd += ["--s3-no-check-bucket", "--stats", "0"]
    if checksum:
        cmd.append("--checksum")
    return cmd


# --------------------------------------------------------------------------- measuring


@dataclass
class Measured:
    seconds: float
    peak_rss: int = 0  # bytes, whole process tree, sampled every 50 ms
    stdout: str = ""
    returncode: int = 0
    cpu_seconds: float = 0.0  # user + system of the process and the children it waited for


class RssSampler:
    """Samples the summed RSS of a process and its descendants every ``interval`` s."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            root = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            return
        while not self._stop.is_set():
            total = 0
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            for proc in procs:
                try:
                    total += proc.memory_info().rss
                except psutil.NoSuchProcess:
                    continue
            self.peak = max(self.peak, total)
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_measured(
    cmd: Sequence[str], env: dict[str, str], *, sample_rss: bool = False, check: bool = True
) -> Measured:
    """Run ``cmd`` to completion: wall seconds from spawn to exit, CPU seconds, optional peak
    tree RSS. CPU is the RUSAGE_CHILDREN delta, so run one command at a time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.Popen(
        list(cmd), env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    sampler = RssSampler(proc.pid) if sample_rss else None
    if sampler:
        sampler.__enter__()
    try:
        out, err = proc.communicate()
    finally:
        if sampler:
            sampler.__exit__()
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}):\n{err[-3000:]}\n{out[-2000:]}")
    return Measured(seconds, sampler.peak if sampler else 0, out, proc.returncode, cpu)


def runs_extra(products: Sequence[Measured], refs: Sequence[Measured]) -> dict[str, Any]:
    """Every run's wall and CPU seconds, product and reference, for a row's JSON. On this
    2-core machine the client's CPU is taken from the servers it talks to, so it is part of
    the story of a copy's time."""
    return {
        "product_runs": [m.seconds for m in products],
        "reference_runs": [m.seconds for m in refs],
        "product_cpu": [round(m.cpu_seconds, 3) for m in products],
        "reference_cpu": [round(m.cpu_seconds, 3) for m in refs],
    }


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def last_json_line(text: str) -> dict[str, Any]:
    for line in reversed(text.splitlines()):
        if line.startswith("{"):
            return dict(json.loads(line))
    raise ValueError(f"no JSON line in output:\n{text[-2000:]}")


# --------------------------------------------------------------------------- results


@dataclass
class Row:
    name: str
    product: float
    reference: float | None
    unit: str  # "s", "MiB/s", "msg/s", "MiB"
    target: str  # e.g. "<= 1.0x", ">= 0.9x", ">= 1000"
    ok: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.reference in (None, 0):
            return None
        return self.product / self.reference


def print_table(title: str, rows: Sequence[Row]) -> None:
    header = f"{'row':<54} {'product':>12} {'reference':>12} {'ratio':>7}  {'target':<14} ok"
    print(f"\n## {title}\n")
    print(header)
    print("-" * len(header))
    for row in rows:
        ref = "-" if row.reference is None else f"{row.reference:.2f} {row.unit}"
        ratio = "-" if row.ratio is None else f"{row.ratio:.2f}x"
        ok = "-" if row.ok is None else ("yes" if row.ok else "NO")
        print(
            f"{row.name:<54} {f'{row.product:.2f} {row.unit}':>12} {ref:>12} {ratio:>7}  "
            f"{row.target:<14} {ok}"
        )
    print(flush=True)


def machine() -> dict[str, Any]:
    weed = ROOT / ".venv" / "bin" / "weed"
    weed_version = "?"
    if weed.exists():
        out = subprocess.run([str(weed), "version"], capture_output=True, text=True, check=False)
        weed_version = out.stdout.strip().splitlines()[0] if out.stdout.strip() else "?"
    return {
        "nproc": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 1024**3, 1),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "rclone": rclone_version(),
        "seaweedfs": weed_version,
    }


def write_results(bench: str, params: dict[str, Any], rows: Sequence[Row]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = RESULTS_DIR / f"{bench}-{stamp}.json"
    data = {
        "bench": bench,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "params": params,
        "machine": machine(),
        "rows": [asdict(r) | {"ratio": r.ratio} for r in rows],
    }
    path.write_text(json.dumps(data, indent=2, default=str))
    print(f"results written to {path.relative_to(ROOT)}")
    return path
