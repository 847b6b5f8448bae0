"""Apply the fetcher DB's Alembic migrations (``amazoniax db upgrade`` and the tests use this)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        # ConfigParser interpolation would choke on '%' in passwords.
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision``; safe to call on every start (no-op when current)."""
    cfg = alembic_config()
    with engine.begin() as conn:
        # One migrator at a time when several processes start together.
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(727274001)")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
