"""`amazoniax stack up` in one terminal, `amazoniax stack down` in another: nothing is left."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.integration


def test_stack_up_then_down_leaves_no_process(tmp_path: Path) -> None:
    workdir = tmp_path / "stack"
    up = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "amazoniax_dagster.cli.main",
            "stack",
            "up",
            "--workdir",
            str(workdir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (workdir / "stack.pid").exists():
            assert up.poll() is None, up.stdout.read().decode() if up.stdout else ""
            assert time.monotonic() < deadline, "stack up did not come up in 60 s"
            time.sleep(0.2)
        env = (workdir / "stack.env").read_text()
        assert "AMAZONIAX_KAFKA_BOOTSTRAP=127.0.0.1:" in env
        children = psutil.Process(up.pid).children(recursive=True)
        assert len(children) >= 3  # broker, S3, PostgreSQL (and its workers)

        down = subprocess.run(
            [
                sys.executable,
                "-m",
                "amazoniax_dagster.cli.main",
                "stack",
                "down",
                "--workdir",
                str(workdir),
            ],
            capture_output=True,
            text=True,
            timeout=90,
        )
        assert down.returncode == 0, down.stdout + down.stderr
        assert "local stack stopped" in down.stdout
        assert up.wait(timeout=10) is not None
        time.sleep(0.5)
        assert [p.pid for p in children if p.is_running() and p.status() != "zombie"] == []
    finally:
        if up.poll() is None:
            up.kill()
