"""Apply the fetcher DB's Alembic migrations (``amazoniax db upgrade`` and the tests use this)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import URL, Engine, create_engine, make_url
from sqlalchemy.pool import NullPool

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def engine_url(url: str) -> URL:
    """``url`` for SQLAlchemy, with psycopg2 as the driver when it names none (``postgresql://``):
    the driver the repository uses, and the one Dagster's Postgres storage has loaded."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+psycopg2")
    return parsed


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


def upgrade_database(url: str, revision: str = "head") -> None:
    """``upgrade`` the database at ``url``, on a connection of its own that is closed after."""
    engine = create_engine(engine_url(url), poolclass=NullPool)
    try:
        upgrade(engine, revision)
    finally:
        engine.dispose()
