"""The sandbox's pure parts, Landlock in a short-lived child, and what the runtime trusts.

The full runs (real fetchers, limits, Pipes) are in tests/integration/test_python_runtime.py.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from amazoniax_dagster.core.errors import FetcherCodeError, InfrastructureError
from amazoniax_dagster.core.messages import WebSourceConfig
from amazoniax_dagster.fetchers import landlock
from amazoniax_dagster.fetchers.base import FetchContext
from amazoniax_dagster.fetchers.pipes_entry import RESULT_KIND
from amazoniax_dagster.fetchers.python_runtime import SandboxCommand, run_python_fetcher
from amazoniax_dagster.fetchers.sandbox import (
    MIN_LANDLOCK_ABI,
    NONCE_ENV,
    OUTCOME_KIND,
    SandboxLimits,
    clean_env,
    confinement_refusal,
    sandbox_command,
)

PASSWORD = "pw-SECRET-unit-8e2f"


# --------------------------------------------------------------------------- confinement


@pytest.mark.parametrize(
    ("abi", "allow_unconfined", "refused"),
    [(0, False, True), (2, False, True), (3, False, False), (7, False, False), (0, True, False)],
)
def test_without_landlock_the_sandbox_refuses_unless_told_otherwise(
    abi: int, allow_unconfined: bool, refused: bool
) -> None:
    reason = confinement_refusal(abi, allow_unconfined)
    assert (reason is not None) is refused
    if reason is not None:
        assert "allow_unconfined=True" in reason and f"ABI {MIN_LANDLOCK_ABI}+" in reason


def test_the_refusal_says_what_is_missing() -> None:
    assert "not available" in (confinement_refusal(0, False) or "")
    assert "Landlock is ABI 2" in (confinement_refusal(2, False) or "")


def test_handled_rights_grow_with_the_abi() -> None:
    assert landlock.handled_fs_rights(1) == (1 << 13) - 1
    assert landlock.handled_fs_rights(2) == landlock.handled_fs_rights(1) | landlock.FS_REFER
    assert landlock.handled_fs_rights(3) & landlock.FS_TRUNCATE
    assert not landlock.handled_fs_rights(4) & landlock.FS_IOCTL_DEV
    assert landlock.handled_fs_rights(5) & landlock.FS_IOCTL_DEV


_LANDLOCKED_CHILD = """
import sys
from pathlib import Path
from amazoniax_dagster.fetchers import landlock

inside, outside = Path(sys.argv[1]), Path(sys.argv[2])
landlock.restrict_self(writable_dirs=[inside])
(inside / "ok.txt").write_text("ok")
try:
    outside.write_text("escaped")
except PermissionError:
    print("refused")
"""


@pytest.mark.skipif(landlock.abi_version() < 1, reason="needs Linux Landlock")
def test_landlock_confines_writes_of_the_process_that_restricts_itself(tmp_path: Path) -> None:
    inside, outside = tmp_path / "inside", tmp_path / "outside.txt"
    inside.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", _LANDLOCKED_CHILD, str(inside), str(outside)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert done.stdout.strip() == "refused"
    assert (inside / "ok.txt").read_text() == "ok"
    assert not outside.exists()
    (tmp_path / "after.txt").write_text("the parent is not confined")


# --------------------------------------------------------------------------- environment


def test_the_child_environment_keeps_only_path_lang_home_and_pipes(tmp_path: Path) -> None:
    inherited = {
        "PATH": "/usr/bin",
        "LANG": "de_DE.UTF-8",
        "HOME": "/root",
        "AMAZONIAX_SECRET_KEY": "x",
        "AWS_SECRET_ACCESS_KEY": "y",
        "DAGSTER_PIPES_CONTEXT": "ctx",
        "DAGSTER_PIPES_MESSAGES": "msg",
        "PYTHONPATH": "/evil",
        NONCE_ENV: "nonce",
    }
    env = clean_env(inherited, tmp_path)
    assert env == {
        "PATH": "/usr/bin",
        "LANG": "de_DE.UTF-8",
        "HOME": str(tmp_path),
        "TMPDIR": str(tmp_path),
        "DAGSTER_PIPES_CONTEXT": "ctx",
        "DAGSTER_PIPES_MESSAGES": "msg",
    }


def test_the_child_environment_has_defaults(tmp_path: Path) -> None:
    env = clean_env({}, tmp_path)
    assert env["PATH"] == "/usr/local/bin:/usr/bin:/bin" and env["LANG"] == "C.UTF-8"


def test_limits_below_what_python_needs_are_refused() -> None:
    with pytest.raises(ValueError, match="sandbox limits too small"):
        SandboxLimits(memory_bytes=1024**2)
    with pytest.raises(ValueError, match="sandbox limits too small"):
        SandboxLimits(cpu_seconds=0)


def test_the_sandbox_command_is_isolated_python_around_the_child(tmp_path: Path) -> None:
    argv = sandbox_command(
        ["child", "--x"],
        job_dir=tmp_path,
        home=tmp_path / "home",
        limits=SandboxLimits(cpu_seconds=3),
        max_file_bytes=1000,
    )
    assert argv[:5] == [sys.executable, "-I", "-B", "-m", "amazoniax_dagster.fetchers.sandbox"]
    assert argv[-3:] == ["--", "child", "--x"]
    assert "--cpu-seconds=3" in argv and "--max-file-bytes=1000" in argv
    assert "--allow-unconfined" not in argv
    unconfined = SandboxLimits(allow_unconfined=True)
    command = sandbox_command(
        ["c"], job_dir=tmp_path, home=tmp_path, limits=unconfined, max_file_bytes=1
    )
    assert "--allow-unconfined" in command


# --------------------------------------------------------------------------- runtime trust


class RecordingLauncher:
    """Stands in for the process launcher: records what it was given, answers ``reply``."""

    def __init__(self, reply: Any) -> None:
        self.reply = reply
        self.command: SandboxCommand | None = None
        self.input_mode = 0
        self.input: dict[str, Any] = {}

    def launch(self, command: SandboxCommand) -> list[Any]:
        self.command = command
        input_file = Path(command.extras["input_file"])
        self.input_mode = stat.S_IMODE(input_file.stat().st_mode)
        self.input = json.loads(input_file.read_text())
        return self.reply(command) if callable(self.reply) else self.reply


def make_ctx(tmp_path: Path) -> FetchContext:
    config = WebSourceConfig(
        url="https://example.com/",
        login_credentials={"username": SecretStr("alice"), "password": SecretStr(PASSWORD)},
    )
    return FetchContext(config=config, out_dir=tmp_path / "out")


def outcome(nonce: str, **fields: Any) -> dict[str, Any]:
    return {
        "kind": OUTCOME_KIND,
        "nonce": nonce,
        "confinement": "landlock-abi-7",
        "returncode": 0,
        **fields,
    }


@pytest.fixture()
def code(tmp_path: Path) -> Path:
    path = tmp_path / "site_fetcher_v1" / "fetcher.py"
    path.parent.mkdir()
    path.write_text("def fetch(config, out_dir, run_date):\n    return None\n")
    return path


def test_secrets_travel_only_in_the_private_input_file(tmp_path: Path, code: Path) -> None:
    launcher = RecordingLauncher(
        lambda c: [{"kind": RESULT_KIND, "metadata": {}}, outcome(c.env[NONCE_ENV])]
    )
    (tmp_path / "out").mkdir()

    report = run_python_fetcher(code, make_ctx(tmp_path), SandboxLimits(), launcher)

    command = launcher.command
    assert command is not None and report.files == []
    visible = json.dumps([command.argv, dict(command.env), dict(command.extras), str(command.cwd)])
    assert PASSWORD not in visible
    assert set(command.env) == {NONCE_ENV}
    assert launcher.input_mode == 0o600
    assert launcher.input["config"]["login_credentials"]["password"] == PASSWORD
    assert PASSWORD in launcher.input["secrets"]
    assert not Path(command.extras["input_file"]).exists()  # the job folder is gone


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ([], "without reporting how the python fetcher ended"),
        ([{"kind": RESULT_KIND, "metadata": {}}], "without reporting"),
        ([outcome("forged-by-the-child")], "wrong nonce"),
    ],
)
def test_only_the_supervisors_outcome_counts(
    tmp_path: Path, code: Path, reply: list[Any], message: str
) -> None:
    with pytest.raises(InfrastructureError, match=message):
        run_python_fetcher(code, make_ctx(tmp_path), SandboxLimits(), RecordingLauncher(reply))


def test_a_refusal_of_the_supervisor_is_an_infrastructure_error(tmp_path: Path, code: Path) -> None:
    refused = confinement_refusal(0, False)
    launcher = RecordingLauncher(lambda c: [outcome(c.env[NONCE_ENV], refused=refused)])
    with pytest.raises(InfrastructureError, match="refusing to run a Python fetcher unconfined"):
        run_python_fetcher(code, make_ctx(tmp_path), SandboxLimits(), launcher)


def test_a_clean_exit_without_a_result_is_the_fetchers_fault(tmp_path: Path, code: Path) -> None:
    launcher = RecordingLauncher(lambda c: [outcome(c.env[NONCE_ENV])])
    with pytest.raises(FetcherCodeError, match="without reporting a result"):
        run_python_fetcher(code, make_ctx(tmp_path), SandboxLimits(), launcher)


def test_missing_code_is_the_fetchers_fault(tmp_path: Path) -> None:
    with pytest.raises(FetcherCodeError, match="is not a file"):
        run_python_fetcher(tmp_path / "nope.py", make_ctx(tmp_path), SandboxLimits())


def test_the_supervisor_runs_under_isolated_python(tmp_path: Path) -> None:
    """``-I`` ignores PYTHONPATH: the project must import from the environment itself."""
    done = subprocess.run(
        [sys.executable, "-I", "-c", "import amazoniax_dagster.fetchers.sandbox"],
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        check=False,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr


def test_readable_except_names_every_sibling_on_the_way_to_a_hidden_tree(tmp_path: Path) -> None:
    for folder in ("etc", "run/secrets/kubernetes", "run/lock", "usr/lib"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "run").symlink_to(tmp_path / "run")  # like /var/run -> /run
    (tmp_path / "var" / "log").mkdir()

    readable = landlock.readable_except([tmp_path / "run" / "secrets"], root=tmp_path)

    relative = sorted(str(p.relative_to(tmp_path)) for p in readable)
    # "var" as a whole is fine: Landlock judges the resolved path, and var/run/secrets
    # resolves to run/secrets, which no rule covers.
    assert relative == ["etc", "file.txt", "run/lock", "usr", "var"]
    assert landlock.readable_except([tmp_path / "missing"], root=tmp_path) == [tmp_path]
