"""The local-stack commands: ``amazoniax dev`` (the product on the embedded stack, with demo
channels) and ``amazoniax stack up|down`` (the stack alone)."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import click

from amazoniax_dagster.cli.options import _fail
from amazoniax_dagster.devstack.console import OutputRelay, output_channel
from amazoniax_dagster.devstack.session import (
    DEFAULT_WORKDIR,
    PROJECT_ROOT,
    _alive,
    _daemon_pids,
    _kill,
    _mask,
    _stop_process_group,
    _wait_for_signal,
    ensure_database,
    prepare_dagster_home,
    running_stack,
)


@click.group()
def stack() -> None:
    """The embedded local stack: real Kafka (tansu), S3 (SeaweedFS) and PostgreSQL."""


@stack.command("up")
@click.option("--workdir", type=click.Path(path_type=Path), default=DEFAULT_WORKDIR / "stack")
def stack_up(workdir: Path) -> None:
    """Start the stack, print its endpoints and keep it up until Ctrl-C."""
    with running_stack(workdir) as endpoints:
        pid_file = workdir / "stack.pid"
        pid_file.write_text(str(os.getpid()))
        env_file = workdir / "stack.env"
        click.echo(f"local stack is up; its settings are in {env_file}:")
        for key, value in endpoints.env().items():
            click.echo(f"  {key}={_mask(key, value)}")
        click.echo("press Ctrl-C to stop it")
        _wait_for_signal()


@stack.command("down")
@click.option("--workdir", type=click.Path(path_type=Path), default=DEFAULT_WORKDIR / "stack")
@click.option("--timeout", default=60.0, show_default=True, help="Seconds to wait for it.")
def stack_down(workdir: Path, timeout: float) -> None:
    """Stop a stack started with `amazoniax stack up` (in another terminal)."""
    pid_file = workdir / "stack.pid"
    try:
        pid = int(pid_file.read_text())
        os.kill(pid, signal.SIGTERM)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        click.echo(f"no local stack is running from {workdir}")
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            click.echo("local stack stopped")
            return
        time.sleep(0.2)
    raise click.ClickException(f"the local stack (pid {pid}) did not stop within {timeout:.0f} s")


@click.command()
@click.option("--port", default=3000, show_default=True, help="Port of the Dagster UI.")
@click.option("--workdir", type=click.Path(path_type=Path), default=DEFAULT_WORKDIR)
@click.option("--no-demo", is_flag=True, help="Do not seed the demo channel and message.")
@click.option(
    "--log-level",
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    default="warning",
    show_default=True,
    help="Dagster's own log level; info shows every daemon and sensor tick.",
)
def dev(port: int, workdir: Path, no_demo: bool, log_level: str) -> None:
    """Run the product locally: the stack, a demo S3 channel and `dagster dev` on 127.0.0.1."""
    from amazoniax_dagster.devstack.demo import (
        DEMO_WEB_CHANNELS,
        DemoFtpServer,
        demo_message,
        seed_demo_bucket,
        send_messages,
        web_message,
    )
    from amazoniax_dagster.devstack.demo_sites import serve
    from amazoniax_dagster.devstack.ports import port_in_use

    if port_in_use(port):  # before the stack starts: a UI that cannot bind would be missing
        _fail(f"port {port} on 127.0.0.1 is in use; free it or choose another with --port")
    with ExitStack() as stack, running_stack(workdir / "stack") as endpoints:
        env = os.environ | endpoints.env()
        env["AMAZONIAX_DAGSTER_PG_URL"] = ensure_database(endpoints.database_url, "dagster")
        env["DAGSTER_HOME"] = str(prepare_dagster_home(workdir / "dagster_home"))
        if not no_demo:
            seed_demo_bucket(endpoints)
            ftp_root = workdir / "demo-ftp"
            shutil.rmtree(ftp_root, ignore_errors=True)
            ftp = stack.enter_context(DemoFtpServer(ftp_root))
            messages = [demo_message(endpoints), ftp.message()]
            for channel_id, site_name in DEMO_WEB_CHANNELS.items():
                site = stack.enter_context(serve(site_name))
                click.echo(f"demo site {site_name} at {site.url} (channel {channel_id})")
                messages.append(web_message(channel_id, site))
            for job_id in send_messages(endpoints, messages):
                click.echo(f"demo job {job_id} is waiting on the amazoniax_fetcher topic")
        click.echo(f"Dagster UI: http://127.0.0.1:{port} (Ctrl-C stops everything)")
        command = [
            sys.executable, "-m", "dagster", "dev",
            "-h", "127.0.0.1", "-p", str(port),
            "-w", str(PROJECT_ROOT / "workspace.yaml"),
            "--log-level", log_level,
        ]  # fmt: skip
        api_port = port + 1 if not port_in_use(port + 1) else 0
        if not api_port:
            click.echo(f"port {port + 1} is in use: the read API is not started")
        api_command = [
            sys.executable, "-m", "amazoniax_dagster.cli.main",
            "api", "--host", "127.0.0.1", "--port", str(api_port),
        ]  # fmt: skip
        api_proc = (
            subprocess.Popen(api_command, env=env, cwd=PROJECT_ROOT, start_new_session=True)
            if api_port
            else None
        )
        # Its output goes through OutputRelay (unbuffered, so that lines come as written).
        source, output = output_channel(sys.stdout.isatty())
        try:
            proc = subprocess.Popen(
                command,
                env=env | {"PYTHONUNBUFFERED": "1"},
                cwd=PROJECT_ROOT,
                start_new_session=True,
                stdout=output,
                stderr=output,
            )
        finally:
            os.close(output)
        relay = OutputRelay(source, sys.stdout.buffer)
        relay.start()
        hurry = threading.Event()
        try:
            _wait_for_signal(proc, hurry)
        finally:
            _stop_dagster(proc, api_proc, relay, f"http://127.0.0.1:{port}", hurry)


def _stop_dagster(
    proc: subprocess.Popen[bytes],
    api_proc: subprocess.Popen[bytes] | None,
    relay: OutputRelay,
    webserver_url: str,
    hurry: threading.Event,
) -> None:
    """Stop ``dagster dev`` (``proc``) and the read API: the runs in flight first, while the
    webserver still answers, then the process groups; return when no process of them is left."""
    stuck = False
    if proc.poll() is None:  # else all it printed, why it exited included, is relayed
        relay.stopping()
        stuck = _end_runs(webserver_url, hurry)
    if api_proc is not None:
        _stop_process_group(api_proc, hurry=hurry)
    # The daemon has nothing left to do; stopped with the others, it could be inside a sensor
    # tick against servers that are stopping, and log their errors.
    _kill(_daemon_pids(proc.pid))
    # A run that ignored its termination has had its time: no second wait for it.
    bound = {"grace": 2.0, "leftovers": 0.0} if stuck else {}
    _stop_process_group(proc, hurry=hurry, **bound)
    relay.join(timeout=5)
    if relay.left_out:
        click.echo(f"left out {relay.left_out} lines of run output and stack traces")


def _end_runs(webserver_url: str, hurry: threading.Event) -> bool:
    """End the runs in flight before their processes go (``end_runs_in_flight``, bounded).
    Whether some did not end in time (and were marked canceled)."""
    from amazoniax_dagster.devstack.dagster_runs import DagsterWebserver, end_runs_in_flight

    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request otherwise
    webserver = DagsterWebserver(webserver_url)
    try:
        ended = end_runs_in_flight(webserver, hurry=hurry)
    finally:
        webserver.close()
    if ended.statuses or ended.error:
        click.echo(ended.summary())
    return bool(ended.forced)
