"""Python fetchers in the real sandbox: real subprocesses, real Landlock, real rlimits.

Each test writes a small ``fetcher.py`` and runs it through ``run_python_fetcher`` (the plain
subprocess launcher), except the last one, which runs it inside a Dagster run through
``PythonFetchersResource`` (``PipesSubprocessClient``).
"""

from __future__ import annotations

import http.server
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from textwrap import dedent
from typing import Any

import dagster as dg
import psutil
import pytest
from pydantic import SecretStr

from amazoniax_dagster.core.errors import FetcherCodeError
from amazoniax_dagster.core.messages import WebSourceConfig
from amazoniax_dagster.fetchers import landlock
from amazoniax_dagster.fetchers.base import FetchContext, FetchReport
from amazoniax_dagster.fetchers.python_runtime import SandboxLimits, run_python_fetcher
from resources.python_fetchers import PythonFetchersResource

pytestmark = pytest.mark.skipif(
    landlock.abi_version() < 3, reason="needs Linux Landlock ABI 3+ (Linux 6.2+)"
)

TOKEN = "tok-SECRET-sandbox-5b21"
LIMITS = SandboxLimits(cpu_seconds=10, memory_bytes=256 * 1024**2, wall_seconds=20)
ALLOWED_ENV = {"PATH", "LANG", "HOME", "TMPDIR", "DAGSTER_PIPES_CONTEXT", "DAGSTER_PIPES_MESSAGES"}


def write_fetcher(root: Path, code: str) -> Path:
    folder = root / "example.com_fetcher_v1"
    folder.mkdir()
    path = folder / "fetcher.py"
    path.write_text(dedent(code))
    return path


def make_ctx(out: Path, **navigation: Any) -> FetchContext:
    config = WebSourceConfig(
        url="https://example.com/data",
        auth_keys={"token": SecretStr(TOKEN)},
        navigation_details=navigation or None,
    )
    out.mkdir(exist_ok=True)
    return FetchContext(config=config, out_dir=out)


def test_the_fetcher_sees_none_of_the_parents_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AMAZONIAX_FAKE_SECRET", "fake-amazoniax-secret-1234")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fake-aws-secret-5678")
    code = write_fetcher(
        tmp_path,
        """
        import json, os

        def fetch(config, out_dir, run_date):
            seen = {"env": dict(os.environ), "cwd": os.getcwd()}
            try:  # the supervisor's environment holds everything the parent had
                with open(f"/proc/{os.getppid()}/environ", "rb") as handle:
                    seen["parent_environ"] = handle.read().decode(errors="replace")
            except OSError as exc:
                seen["parent_environ"] = type(exc).__name__
            with open(os.path.join(out_dir, "seen.json"), "w") as handle:
                json.dump(seen, handle)
        """,
    )
    out = tmp_path / "out"

    report = run_python_fetcher(code, make_ctx(out), LIMITS)

    assert [f.relative_path for f in report.files] == ["seen.json"]
    text = (out / "seen.json").read_text()
    seen = json.loads(text)
    assert set(seen["env"]) <= ALLOWED_ENV
    assert seen["env"]["HOME"] == seen["env"]["TMPDIR"] == seen["cwd"]
    assert seen["parent_environ"] == "PermissionError"
    for value in ("fake-amazoniax-secret-1234", "fake-aws-secret-5678", TOKEN):
        assert value not in text


@pytest.fixture()
def outside(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("outside") / "escaped.txt"


@pytest.mark.parametrize("where", ["temp folder", "parent cwd"])
def test_writing_outside_the_job_folder_fails_inside_the_fetcher(
    tmp_path: Path, outside: Path, where: str
) -> None:
    target = outside if where == "temp folder" else Path.cwd() / f"escaped-{uuid.uuid4().hex}"
    code = write_fetcher(
        tmp_path,
        """
        def fetch(config, out_dir, run_date):
            with open(config["navigation_details"]["target"], "w") as handle:
                handle.write("escaped")
        """,
    )

    with pytest.raises(FetcherCodeError, match="raised PermissionError: .*Permission denied"):
        run_python_fetcher(code, make_ctx(tmp_path / "out", target=str(target)), LIMITS)
    assert not target.exists()


def test_links_out_of_the_folder_are_not_collected(tmp_path: Path, outside: Path) -> None:
    outside.write_text("outside")
    code = write_fetcher(
        tmp_path,
        """
        import errno, os

        def fetch(config, out_dir, run_date):
            secret_file = config["navigation_details"]["outside"]
            os.symlink(secret_file, os.path.join(out_dir, "link.txt"))
            os.symlink(os.path.dirname(secret_file), os.path.join(out_dir, "folder"))
            try:
                os.link(secret_file, os.path.join(out_dir, "hard.txt"))
                hard = "linked"
            except OSError as exc:
                hard = errno.errorcode[exc.errno]
            with open(os.path.join(out_dir, "real.txt"), "w") as handle:
                handle.write("real")
            return {"hard_link": hard}
        """,
    )
    out = tmp_path / "out"

    report = run_python_fetcher(code, make_ctx(out, outside=str(outside)), LIMITS)

    assert [f.relative_path for f in report.files] == ["real.txt"]
    assert sorted(p.name for p in out.iterdir()) == ["real.txt"]
    assert len(report.warnings) == 2
    assert all("symbolic links are not collected" in w for w in report.warnings)
    assert report.metadata["hard_link"] == "EXDEV"  # Landlock refuses to link in from outside


def test_an_endless_fetcher_is_killed_at_the_wall_clock_limit(tmp_path: Path) -> None:
    marker = f"{299 + uuid.uuid4().int % 1000 / 1000:.3f}"  # a unique `sleep` argument
    code = write_fetcher(
        tmp_path,
        f"""
        import os, subprocess, time

        def fetch(config, out_dir, run_date):
            subprocess.Popen(["sleep", "{marker}"], start_new_session=True)  # escapes the group
            while True:
                time.sleep(0.05)
        """,
    )
    limits = SandboxLimits(cpu_seconds=10, memory_bytes=256 * 1024**2, wall_seconds=1.5)

    started = time.monotonic()
    with pytest.raises(FetcherCodeError, match="wall-clock limit of 1.5 s"):
        run_python_fetcher(code, make_ctx(tmp_path / "out"), limits)
    assert time.monotonic() - started < 6
    leftovers = [p for p in psutil.process_iter(["cmdline"]) if marker in (p.info["cmdline"] or [])]
    assert leftovers == []


def test_a_busy_fetcher_is_killed_at_the_cpu_limit(tmp_path: Path) -> None:
    code = write_fetcher(
        tmp_path,
        """
        def fetch(config, out_dir, run_date):
            while True:
                pass
        """,
    )
    limits = SandboxLimits(cpu_seconds=1, memory_bytes=256 * 1024**2, wall_seconds=20)

    with pytest.raises(FetcherCodeError, match="CPU time limit of 1 s"):
        run_python_fetcher(code, make_ctx(tmp_path / "out"), limits)


def test_a_greedy_fetcher_fails_with_a_memory_limit_report(tmp_path: Path) -> None:
    code = write_fetcher(
        tmp_path,
        """
        def fetch(config, out_dir, run_date):
            hoard = bytearray(1024 ** 3)
            return {"size": len(hoard)}
        """,
    )

    with pytest.raises(FetcherCodeError, match="ran out of memory: its memory limit of 256 MiB"):
        run_python_fetcher(code, make_ctx(tmp_path / "out"), LIMITS)


def test_an_exception_is_reported_with_its_type_and_without_secrets(tmp_path: Path) -> None:
    code = write_fetcher(
        tmp_path,
        """
        def fetch(config, out_dir, run_date):
            raise ValueError("the server refused token " + config["auth_keys"]["token"])
        """,
    )

    with pytest.raises(FetcherCodeError) as caught:
        run_python_fetcher(code, make_ctx(tmp_path / "out"), LIMITS)
    assert "raised ValueError: the server refused token ***" in str(caught.value)
    assert TOKEN not in str(caught.value)


@pytest.fixture(scope="module")
def data_server() -> Iterator[str]:
    files = {"/a.json": b'{"records": [1, 2, 3]}', "/b.csv": b"id\n1\n2\n"}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = files.get(self.path)
            authorized = self.headers.get("Authorization") == f"Bearer {TOKEN}"
            self.send_response(200 if body and authorized else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


GOOD_FETCHER = """
import logging, os, urllib.request

log = logging.getLogger("example")

def fetch(config, out_dir, run_date):
    base = config["navigation_details"]["base"]
    token = config["auth_keys"]["token"]
    os.makedirs(os.path.join(out_dir, "data"))
    for name in ("a.json", "b.csv"):
        request = urllib.request.Request(
            f"{base}/{name}", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, timeout=5) as reply:
            body = reply.read()
        with open(os.path.join(out_dir, "data", name), "wb") as handle:
            handle.write(body)
        log.info("saved %s with token %s", name, token)
    return {"downloaded": 2, "run_date": run_date, "api_token": token}
"""


def check_good_report(report: FetchReport, out: Path) -> None:
    assert [(f.relative_path, f.size) for f in report.files] == [
        ("data/a.json", 22),
        ("data/b.csv", 7),
    ]
    assert (out / "data" / "a.json").read_bytes() == b'{"records": [1, 2, 3]}'
    assert report.metadata["downloaded"] == 2
    assert report.metadata["api_token"] == "***"
    assert report.metadata["sandbox"]["confinement"].startswith("landlock-abi-")
    assert TOKEN not in json.dumps(report.metadata)
    assert report.warnings == []


def test_a_good_fetcher_downloads_two_files_and_reports_them(
    tmp_path: Path, data_server: str, caplog: pytest.LogCaptureFixture
) -> None:
    code = write_fetcher(tmp_path, GOOD_FETCHER)
    out = tmp_path / "out"

    with caplog.at_level("INFO", logger="amazoniax_dagster"):
        report = run_python_fetcher(code, make_ctx(out, base=data_server), LIMITS)

    check_good_report(report, out)
    assert report.metadata["run_date"] == make_ctx(out).run_date.isoformat()
    assert "example: saved a.json with token ***" in caplog.text  # the fetcher's log, masked
    assert TOKEN not in caplog.text


def test_a_fetcher_runs_through_dagster_pipes_in_a_run(tmp_path: Path, data_server: str) -> None:
    code = write_fetcher(tmp_path, GOOD_FETCHER)
    out = tmp_path / "out"
    reports: list[FetchReport] = []

    @dg.asset
    def fetched(context, python_fetchers: PythonFetchersResource) -> dg.MaterializeResult:  # type: ignore[no-untyped-def]
        # (context unannotated: with postponed annotations Dagster would see a string)
        report = python_fetchers.run(context, code, make_ctx(out, base=data_server))
        reports.append(report)
        return dg.MaterializeResult(metadata={"files": len(report.files)})

    resource = PythonFetchersResource(cpu_seconds=10, memory_mb=256, wall_seconds=20)
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            [fetched], resources={"python_fetchers": resource}, instance=instance
        )
        messages = [entry.user_message for entry in instance.all_logs(result.run_id)]

    assert result.success
    check_good_report(reports[0], out)
    materialization = result.asset_materializations_for_node("fetched")[0]
    assert materialization.metadata["files"].value == 2
    # The child's Pipes session and its (masked) log lines are in the run's event log.
    assert any("successfully opened dagster pipes" in m for m in messages)
    assert any("example: saved b.csv with token ***" in m for m in messages)
    assert not any("unexpected message" in m for m in messages)
    assert all(TOKEN not in m for m in messages)


def test_hidden_paths_cannot_even_be_read(tmp_path: Path, outside: Path) -> None:
    outside.write_text("service account token")
    code = write_fetcher(
        tmp_path,
        """
        def fetch(config, out_dir, run_date):
            with open(config["navigation_details"]["path"]) as handle:
                return {"content": handle.read()}
        """,
    )
    limits = SandboxLimits(memory_bytes=256 * 1024**2, hidden_paths=(str(outside.parent),))

    link = tmp_path / "link"
    link.symlink_to(outside.parent)  # like /var/run -> /run
    for path in (outside, link / outside.name):
        with pytest.raises(FetcherCodeError, match="raised PermissionError: .*Permission denied"):
            run_python_fetcher(code, make_ctx(tmp_path / "out", path=str(path)), limits)
    # Without hiding it, the same file is readable: read-only access is the default.
    report = run_python_fetcher(
        code, make_ctx(tmp_path / "out2", path=str(outside)), SandboxLimits()
    )
    assert report.metadata["content"] == "service account token"
