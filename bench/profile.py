"""py-spy profiles of a product phase, summarised into where the wall time goes.

``py-spy record --format raw --idle --threads`` writes collapsed stacks (``frame;frame;... N``)
with idle samples included, so threads that wait on the network or on each other count too.
:func:`summarize` buckets every sample by the most telling frame on its stack.
"""

from __future__ import annotations

import shutil
import sys
from collections import Counter
from pathlib import Path

# (bucket, substrings of a frame; the first bucket whose substring is on the stack wins,
# checked from the innermost frame outwards)
BUCKETS: list[tuple[str, tuple[str, ...]]] = [
    ("imports", ("_find_and_load", "<frozen importlib")),
    (
        "db (sqlalchemy/psycopg)",
        ("sqlalchemy/", "psycopg/", "psycopg2/", "repository.py", "db/pg.py"),
    ),
    ("listing", ("list_files (amazoniax_dagster/sources/", "list_objects", "paginate")),
    (
        "source read (GET / RETR / SFTP read)",
        (
            "_download (amazoniax_dagster/sync/engine.py",  # before the transfer module
            "Transfers.fetch",
            "Transfers._fetch_small",
            "Transfers._fetch_large",
            "_read_into (amazoniax_dagster/sync/transfer.py",
        ),
    ),
    (
        "per-file TransferManager (threads, locks)",
        ("BoundedExecutor.submit", "create_transfer_manager", "TransferManager.__exit__"),
    ),
    (
        "S3 PUT / parts (output)",
        (
            "upload (amazoniax_dagster/clients/output_bucket.py",
            "upload_bytes (amazoniax",
            "upload_part (amazoniax",
            "put_bytes (amazoniax",
            "SyncEngine._keep",
            "StreamingUpload.",
        ),
    ),
    ("sha256/spool", ("hashlib", "SpooledTemporaryFile", "tempfile.py")),
    ("validation", ("validation.py",)),
    ("kafka publish", ("kafka.py",)),
    (
        "client setup (boto3 / S3Reader / FTP, SSH connect)",
        (
            "make_client",
            "boto3/session",
            "botocore/session",
            "S3Reader.__init__",
            "FtpSource._connect",
            "SftpSource._session",
        ),
    ),
    ("thread pool wait", ("_run_all (amazoniax_dagster/sync/engine.py",)),
]


def py_spy() -> str | None:
    return shutil.which("py-spy") or (
        str(Path(sys.executable).parent / "py-spy")
        if (Path(sys.executable).parent / "py-spy").exists()
        else None
    )


def profile_cmd(cmd: list[str], out: Path, rate: int = 200) -> list[str]:
    exe = py_spy()
    if exe is None:
        raise RuntimeError("py-spy not found (uv sync --dev)")
    return [exe, "record", "--format", "raw", "--idle", "--threads", "--rate", str(rate)] + [
        "--nonblocking",
        "-o",
        str(out),
        "--",
        *cmd,
    ]


def _bucket(frames: list[str]) -> str:
    for frame in reversed(frames):
        for name, needles in BUCKETS:
            if any(n in frame for n in needles):
                return name
    return "other"


def summarize(path: Path) -> dict[str, dict[str, float]]:
    """Per thread kind (main / workers / other threads): share of samples per bucket."""
    kinds: dict[str, Counter[str]] = {}
    lines = path.read_text(errors="replace").splitlines()
    main_tid = next((ln.split(";")[0].split(":")[0] for ln in lines if "MainThread" in ln), "?")
    for line in lines:
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        thread = frames[0]
        if thread.split(":")[0] == main_tid:
            kind = "main thread"
        elif "ThreadPoolExecutor" in stack or "_worker (concurrent" in stack:
            kind = "worker threads"
        else:
            kind = "other threads"
        kinds.setdefault(kind, Counter())[_bucket(frames)] += int(count)
    return {
        kind: {b: round(100 * n / sum(c.values()), 1) for b, n in c.most_common()}
        for kind, c in kinds.items()
    }


def top_frames(path: Path, thread_kind: str = "", n: int = 25) -> list[tuple[str, int]]:
    """Inclusive sample counts of the most common frames (for the README's evidence)."""
    counts: Counter[str] = Counter()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit() or thread_kind not in stack.split(";")[0]:
            continue
        for frame in set(stack.split(";")[1:]):
            counts[frame] += int(count)
    return counts.most_common(n)


def print_summary(title: str, path: Path) -> dict[str, dict[str, float]]:
    summary = summarize(path)
    print(f"\nprofile {title} ({path.name}): % of samples per bucket")
    for kind, buckets in summary.items():
        text = ", ".join(f"{b} {p}%" for b, p in buckets.items())
        print(f"  {kind}: {text}")
    return summary


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print_summary(arg, Path(arg))
        for frame, count in top_frames(Path(arg)):
            print(f"    {count:6d}  {frame}")
