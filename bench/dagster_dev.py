"""A ``dagster dev`` deployment for the run-queue benchmark: its instance and workspace files,
starting and stopping the process tree, waiting for its code locations, and the CPU of each
part of the tree (code servers and runs, daemon, webserver)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

NOOP_LOCATION = "bench_noop"


def write_instance(home: Path, concurrency: int, dequeue_workers: int = 0) -> None:
    """The project's local dagster.yaml (as ``amazoniax dev`` copies it), with the queue's
    limit set to ``concurrency`` (and its dequeue threads to ``dequeue_workers`` unless 0)
    and the default run launcher spelled out."""
    import yaml

    from bench.common import ROOT

    config = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    config["run_coordinator"]["config"]["max_concurrent_runs"] = concurrency
    if dequeue_workers:
        config["run_coordinator"]["config"]["dequeue_num_workers"] = dequeue_workers
    config["run_launcher"] = {"module": "dagster", "class": "DefaultRunLauncher"}
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def write_workspace(path: Path) -> Path:
    import yaml

    from bench.common import ROOT

    product = yaml.safe_load((ROOT / "workspace.yaml").read_text())
    noop = {
        "python_module": {
            "module_name": "bench.dagster_run",
            "attribute": "noop_job_def",
            "location_name": NOOP_LOCATION,
            "working_directory": str(ROOT),
        }
    }
    path.write_text(yaml.safe_dump({"load_from": [*product["load_from"], noop]}))
    return path


def start_dagster_dev(env: dict[str, str], workspace: Path, port: int, log: Path) -> Any:
    from bench.common import ROOT

    command = [
        sys.executable, "-m", "dagster", "dev",
        "-h", "127.0.0.1", "-p", str(port), "-w", str(workspace),
    ]  # fmt: skip
    with log.open("wb") as out:
        return subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop_process_tree(proc: Any) -> None:
    """SIGTERM to ``dagster dev``'s process group, then SIGKILL to whatever is left of its
    tree (webserver, daemon, code servers, run workers) after 30 s. Processes are found by
    their session (``dagster dev`` leads its own) as well as by parentage: while shutting
    down, ``dagster dev`` may start a code server again, whose parent then exits."""
    import psutil

    def members() -> list[Any]:
        found = {}
        for p in psutil.process_iter():
            try:
                if os.getsid(p.pid) == proc.pid:
                    found[p.pid] = p
            except (OSError, psutil.Error):
                continue
        try:
            root = psutil.Process(proc.pid)
            for p in [root, *root.children(recursive=True)]:
                found[p.pid] = p
        except psutil.NoSuchProcess:
            pass
        return list(found.values())

    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 30
    while (alive := members()) and time.monotonic() < deadline:
        psutil.wait_procs(alive, timeout=2)
    for _ in range(5):
        alive = members()
        if not alive:
            break
        for p in alive:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(alive, timeout=5)
    proc.poll()


PARTS = (
    ("amazoniax_dagster.definitions", "product code server + its runs"),
    ("bench.dagster_run", "no-op code server + its runs"),
    ("dagster._daemon", "daemon"),
    ("dagster_webserver", "webserver"),
)


def tree_cpu(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) so far of the ``dagster dev`` tree, by part: each child of
    ``dagster dev`` with its whole subtree. A run worker's time is in its code server's
    subtree: in its own while it lives, in its parent's children times once reaped (the code
    server reaps its run workers). A shared machine's load leaves these nearly unchanged,
    unlike wall times."""
    import psutil

    def own_and_reaped(proc: Any) -> float:
        try:
            t = proc.cpu_times()
        except psutil.NoSuchProcess:
            return 0.0
        return float(t.user + t.system + t.children_user + t.children_system)

    try:
        root = psutil.Process(pid)
        children = root.children()
    except psutil.NoSuchProcess:
        return {}
    parts = {"dagster dev": float(root.cpu_times().user + root.cpu_times().system)}
    for child in children:
        try:
            cmdline = " ".join(child.cmdline())
            subtree = [child, *child.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        label = next((name for key, name in PARTS if key in cmdline), cmdline[:60])
        parts[label] = parts.get(label, 0.0) + sum(own_and_reaped(p) for p in subtree)
    return parts


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: after[k] - before.get(k, 0.0) for k in after}


def wait_for_locations(port: int, proc: Any, log: Path, timeout: float = 180.0) -> str:
    """Until the webserver answers and both code locations are loaded; returns the name of
    the repository Dagster made of the no-op location (a single job)."""
    query = json.dumps(
        {
            "query": "{ workspaceOrError { ... on Workspace { locationEntries { name "
            "loadStatus locationOrLoadError { __typename "
            "... on RepositoryLocation { repositories { name } } } } } } }"
        }
    ).encode()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"dagster dev exited ({proc.returncode}):\n{tail(log)}")
        try:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/graphql",
                data=query,
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=5) as response:
                data = json.load(response)
            entries = data["data"]["workspaceOrError"]["locationEntries"]
            loaded = [e for e in entries if e["loadStatus"] == "LOADED"]
            if len(loaded) == len(entries) == 2:
                errors = [
                    e["name"]
                    for e in loaded
                    if e["locationOrLoadError"]["__typename"] != "RepositoryLocation"
                ]
                if errors:
                    raise RuntimeError(f"code locations failed to load: {errors}\n{tail(log)}")
                noop = next(e for e in loaded if e["name"] == NOOP_LOCATION)
                return str(noop["locationOrLoadError"]["repositories"][0]["name"])
        except (OSError, KeyError, TypeError, ValueError, StopIteration, IndexError):
            pass
        time.sleep(1)
    raise RuntimeError(f"dagster dev not ready after {timeout:.0f} s:\n{tail(log)}")


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
