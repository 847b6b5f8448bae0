"""The fetcher DB on real PostgreSQL: migrations, defaults, idempotent writes, sealed secrets."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import psycopg2
import psycopg2.errors
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from amazoniax_dagster.core.errors import ConfigError, InfrastructureError
from amazoniax_dagster.core.sealing import SecretCipher
from amazoniax_dagster.db import DeliveredFile, FetcherDB, RetryConfig, SourceIdentity
from amazoniax_dagster.db.migrate import engine_url
from amazoniax_dagster.db.models import metadata
from amazoniax_dagster.db.pg import libpq_url
from amazoniax_dagster.devstack.local_stack import StackEndpoints

pytestmark = pytest.mark.integration


@pytest.fixture()
def fresh_db(stack: StackEndpoints) -> Iterator[FetcherDB]:
    """A new, empty database on the stack's server, migrated from scratch."""
    name = f"t_{uuid.uuid4().hex[:10]}"
    admin = create_engine(
        stack.database_url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    db = FetcherDB(
        stack.database_url.rsplit("/", 1)[0] + f"/{name}", SecretCipher(stack.secret_key)
    )
    db.migrate()
    yield db
    db.close()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def test_migrations_and_models_describe_the_same_schema(fresh_db: FetcherDB) -> None:
    engine = create_engine(engine_url(fresh_db.url))
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    assert diff == []


def test_migrating_twice_is_a_no_op(fresh_db: FetcherDB) -> None:
    fresh_db.migrate()
    with fresh_db.database.transaction() as sql:
        assert sql.scalar("SELECT version_num FROM alembic_version") == _head()


def test_retry_settings_default_to_seed_000_and_can_be_overridden(fresh_db: FetcherDB) -> None:
    assert fresh_db.retry_config() == RetryConfig(3, 2, 30.0)
    fresh_db.set_retry_config(RetryConfig(5, 1, 2.5), scope="ch-1")
    assert fresh_db.retry_config("ch-1") == RetryConfig(5, 1, 2.5)
    assert fresh_db.retry_config("ch-2") == RetryConfig(3, 2, 30.0)


def test_channel_secrets_are_sealed_at_rest(fresh_db: FetcherDB) -> None:
    config = {"bucket": "b", "secret_access_key": "very-secret-value", "access_key": "AKIA1234"}
    fresh_db.save_channel("ch", "s3", config)
    with fresh_db.database.transaction() as sql:
        raw = sql.scalar("SELECT config_json::text FROM channels")
    assert raw is not None and "very-secret-value" not in raw and "AKIA1234" not in raw
    assert fresh_db.get_channel("ch").config == config
    with pytest.raises(ConfigError, match="no stored config"):
        fresh_db.get_channel("unknown")


def test_recording_a_job_twice_changes_nothing(fresh_db: FetcherDB) -> None:
    files = [DeliveredFile("a.csv", "raw/ch/j1/a.csv", "h1", 10, "new")]
    idents = [SourceIdentity("exports/a.csv", "a.csv", 10, "e1", None, "h1")]
    for _ in range(2):
        fresh_db.record_files(job_id="j1", channel_id="ch", delivered=files, identities=idents)
    assert fresh_db.job_files("j1") == files
    history = fresh_db.load_history("ch")
    assert history.latest_hash_by_path == {"a.csv": "h1"}
    assert set(history.identities) == {"exports/a.csv"}
    # A job's own records are left out when that job runs again.
    assert fresh_db.load_history("ch", exclude_job_id="j1").latest_hash_by_path == {}


@pytest.mark.parametrize("scheme", ["postgresql", "postgresql+psycopg2", "postgresql+psycopg"])
def test_a_jobs_files_are_recorded_whole_whatever_driver_the_url_names(
    fresh_db: FetcherDB, stack: StackEndpoints, scheme: str
) -> None:
    url = f"{scheme}://{fresh_db.url.split('://', 1)[1]}"
    db = FetcherDB(url, SecretCipher(stack.secret_key))
    when = datetime(2026, 11, 23, 6, 0, 1, 500, tzinfo=UTC)
    files = [
        DeliveredFile(f"dir/ü 'q\"{n}.csv", f"raw/ch/j1/{n}", f"h{n}", n, "new")
        for n in range(1500)
    ] + [
        DeliveredFile("bad.json", "quarantine/ch/j1/bad.json", "hb", 3, "updated", "invalid", True)
    ]
    idents = [SourceIdentity(f"k/{n}", f"dir/{n}", n, f"e{n}", when, f"h{n}") for n in range(1500)]
    # Nothing known but the hash; and a key listed twice, of which the last counts.
    idents += [SourceIdentity("k/bare", "bare", None, None, None, "hx")]
    idents += [SourceIdentity("k/0", "dir/0", 7, "again", None, "h-again")]
    try:
        db.record_files(job_id="j1", channel_id="ch", delivered=files, identities=idents)
        assert db.job_files("j1") == files
        history = db.load_history("ch")
        assert len(history.identities) == 1501
        assert history.identities["k/1"] == idents[1]
        assert history.identities["k/bare"] == idents[-2]
        assert history.identities["k/0"] == idents[-1]
        # A later job's look at a key replaces the earlier one.
        newer = SourceIdentity("k/1", "dir/1", 2, "e-new", None, "h-new")
        db.record_files(job_id="j2", channel_id="ch", delivered=[], identities=[newer])
        assert db.load_history("ch").identities["k/1"] == newer
        # Columns with no value in any row (an array of NULLs) still have their type.
        plain = [DeliveredFile("p.csv", "raw/ch/j3/p.csv", "hp", 1, "new")]
        bare = [SourceIdentity("k/p", "p.csv", None, None, None, "hp")]
        db.record_files(job_id="j3", channel_id="ch", delivered=plain, identities=bare)
        assert db.job_files("j3") == plain
        assert db.load_history("ch").identities["k/p"] == bare[0]
    finally:
        db.close()


def test_queueing_the_same_job_twice_keeps_the_first(fresh_db: FetcherDB) -> None:
    args = {"job_id": "j", "channel_id": "c", "source_type": "s3", "flow": "new"}
    assert fresh_db.queue_job(**args, config={"bucket": "first"}) is True
    assert fresh_db.queue_job(**args, config={"bucket": "second"}) is False
    assert fresh_db.job_config("j") == {"bucket": "first"}


def test_an_unreachable_db_is_an_infrastructure_error() -> None:
    db = FetcherDB(
        "postgresql+psycopg://postgres@127.0.0.1:1/x?connect_timeout=2",
        SecretCipher(SecretCipher.generate_key()),
    )
    with pytest.raises(InfrastructureError, match="unreachable"):
        db.ping()


def test_a_dropped_connection_costs_a_reconnect_not_a_failure(fresh_db: FetcherDB) -> None:
    fresh_db.ping()  # leaves a connection in the pool
    admin = psycopg2.connect(libpq_url(fresh_db.url))
    admin.autocommit = True
    with admin.cursor() as cur:  # as a server restart or an idle timeout would
        cur.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        assert cur.rowcount >= 1
    admin.close()
    assert fresh_db.retry_config() == RetryConfig(3, 2, 30.0)


def test_a_failed_transaction_is_rolled_back_whole(fresh_db: FetcherDB) -> None:
    with pytest.raises(psycopg2.errors.InvalidTextRepresentation):
        with fresh_db.database.transaction() as sql:
            sql.execute(
                "INSERT INTO retry_settings (scope, max_simple_retries, max_heal_retries,"
                " retry_delay_seconds) VALUES ('rolled-back', 1, 1, 1)"
            )
            sql.execute("SELECT 'not json'::jsonb")
    assert fresh_db.retry_config("rolled-back") == RetryConfig(3, 2, 30.0)


def test_a_refused_statement_says_what_failed_and_the_next_one_runs(fresh_db: FetcherDB) -> None:
    job = {"job_id": "j", "channel_id": "c", "flow": "new", "config": None}
    with pytest.raises(InfrastructureError, match="could not queue the job: value too long"):
        fresh_db.queue_job(**job, source_type="x" * 17)
    assert fresh_db.queue_job(**job, source_type="s3") is True


def test_more_threads_than_connections_wait_their_turn(
    fresh_db: FetcherDB, stack: StackEndpoints
) -> None:
    # pool_size=1: one connection kept, at most two open at once.
    db = FetcherDB(
        f"{fresh_db.url}?application_name=pool-test", SecretCipher(stack.secret_key), pool_size=1
    )

    def busy(_: int) -> int:
        with db.database.transaction() as sql:
            sql.execute("SELECT pg_sleep(0.02)")
            return int(
                sql.scalar(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pool-test'"
                )
            )

    try:
        with ThreadPoolExecutor(8) as pool:
            open_at_once = list(pool.map(busy, range(40)))
        assert max(open_at_once) == 2
    finally:
        db.close()
    with fresh_db.database.transaction() as sql:
        left = sql.scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pool-test'"
        )
    assert left == 0  # close() closed the connection the pool kept


def _head() -> str:
    from alembic.script import ScriptDirectory

    from amazoniax_dagster.db.migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head
