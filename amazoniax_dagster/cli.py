"""``amazoniax``: the command line.

amazoniax dev          the whole product on the embedded local stack, with a demo channel
amazoniax stack up     only the local stack (Kafka, S3, PostgreSQL), until Ctrl-C
amazoniax db upgrade   apply the fetcher DB migrations
amazoniax secret-key   print a new key for AMAZONIAX_SECRET_KEY
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import click

from amazoniax_dagster.local_stack import LocalStack, StackEndpoints

log = logging.getLogger("amazoniax_dagster.cli")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_WORKDIR = PROJECT_ROOT / ".amazoniax"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log debug details.")
def main(verbose: bool) -> None:
    """amazoniax: fetch channel files, de-duplicate them, hand them to parsers."""
    # A shell that starts us in the background leaves SIGINT ignored, and children inherit
    # that: restore it so Ctrl-C / SIGINT always stops the stack and dagster dev.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )


@main.group()
def stack() -> None:
    """The embedded local stack: real Kafka (tansu), S3 (SeaweedFS) and PostgreSQL."""


@stack.command("up")
@click.option("--workdir", type=click.Path(path_type=Path), default=DEFAULT_WORKDIR / "stack")
def stack_up(workdir: Path) -> None:
    """Start the stack, print its endpoints and keep it up until Ctrl-C."""
    with running_stack(workdir) as endpoints:
        env_file = workdir / "stack.env"
        click.echo(f"local stack is up; its settings are in {env_file}:")
        for key, value in endpoints.env().items():
            click.echo(f"  {key}={_mask(key, value)}")
        click.echo("press Ctrl-C to stop it")
        _wait_for_signal()


@main.command()
@click.option("--port", default=3000, show_default=True, help="Port of the Dagster UI.")
@click.option("--workdir", type=click.Path(path_type=Path), default=DEFAULT_WORKDIR)
@click.option("--no-demo", is_flag=True, help="Do not seed the demo channel and message.")
def dev(port: int, workdir: Path, no_demo: bool) -> None:
    """Run the product locally: the stack, a demo S3 channel and `dagster dev` on 127.0.0.1."""
    from amazoniax_dagster.demo import DemoFtpServer, demo_message, seed_demo_bucket, send_messages

    with ExitStack() as stack, running_stack(workdir / "stack") as endpoints:
        env = os.environ | endpoints.env()
        env["AMAZONIAX_DAGSTER_PG_URL"] = ensure_database(endpoints.database_url, "dagster")
        env["DAGSTER_HOME"] = str(prepare_dagster_home(workdir / "dagster_home"))
        if not no_demo:
            seed_demo_bucket(endpoints)
            ftp_root = workdir / "demo-ftp"
            shutil.rmtree(ftp_root, ignore_errors=True)
            ftp = stack.enter_context(DemoFtpServer(ftp_root))
            for job_id in send_messages(endpoints, [demo_message(endpoints), ftp.message()]):
                click.echo(f"demo job {job_id} is waiting on the amazoniax_fetcher topic")
        click.echo(f"Dagster UI: http://127.0.0.1:{port} (Ctrl-C stops everything)")
        command = [
            sys.executable, "-m", "dagster", "dev",
            "-h", "127.0.0.1", "-p", str(port),
            "-w", str(PROJECT_ROOT / "workspace.yaml"),
        ]  # fmt: skip
        proc = subprocess.Popen(command, env=env, cwd=PROJECT_ROOT, start_new_session=True)
        try:
            _wait_for_signal(proc)
        finally:
            _stop_process_group(proc)


@main.group()
def db() -> None:
    """The fetcher DB."""


@db.command("upgrade")
@click.option("--database-url", envvar="AMAZONIAX_DATABASE_URL", required=True)
def db_upgrade(database_url: str) -> None:
    """Apply the migrations (AMAZONIAX_DATABASE_URL)."""
    from sqlalchemy import create_engine

    from amazoniax_dagster.db import migrate

    engine = create_engine(database_url)
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()
    click.echo("fetcher DB is at the latest migration")


@main.command("secret-key")
def secret_key() -> None:
    """Print a new Fernet key for AMAZONIAX_SECRET_KEY."""
    from amazoniax_dagster.sealing import SecretCipher

    click.echo(SecretCipher.generate_key())


@contextmanager
def running_stack(workdir: Path) -> Iterator[StackEndpoints]:
    """Start the stack with a migrated fetcher DB; stop it however the block ends."""
    from sqlalchemy import create_engine

    from amazoniax_dagster.db import migrate

    # The broker keeps topics in memory only, so the stack is ephemeral as a whole: kept
    # Postgres data (Dagster's sensor cursor, the channel history) would not match a new,
    # empty Kafka.
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    local = LocalStack(workdir)
    # SIGTERM should unwind like Ctrl-C so that the stack is stopped, not orphaned.
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        endpoints = local.start()
        engine = create_engine(endpoints.database_url)
        try:
            migrate.upgrade(engine)
        finally:
            engine.dispose()
        local.write_env_file(workdir / "stack.env")
        yield endpoints
    finally:
        local.stop()


def ensure_database(database_url: str, name: str) -> str:
    """Create database ``name`` on the same server if missing; return a psycopg2 URL for it
    (dagster-postgres's NOTIFY does not work with psycopg 3, SQLAlchemy 2.1's default)."""
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    admin = url.set(drivername="postgresql", database="postgres").render_as_string(False)
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    return url.set(drivername="postgresql+psycopg2", database=name).render_as_string(False)


def prepare_dagster_home(home: Path) -> Path:
    shutil.rmtree(home, ignore_errors=True)  # its storage lived in the ephemeral stack
    home.mkdir(parents=True)
    shutil.copyfile(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    return home


def _wait_for_signal(proc: subprocess.Popen[bytes] | None = None) -> None:
    stop = threading.Event()
    try:
        while not stop.wait(0.5):
            if proc is not None and proc.poll() is not None:
                click.echo(f"dagster dev exited with {proc.returncode}")
                return
    except KeyboardInterrupt:
        click.echo("stopping ...")


def _stop_process_group(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _mask(key: str, value: str) -> str:
    return "***" if "SECRET" in key else value


if __name__ == "__main__":
    main()
