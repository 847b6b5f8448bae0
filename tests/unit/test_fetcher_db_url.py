"""The fetcher DB's URL: any PostgreSQL scheme is taken, anything else is refused unechoed."""

from __future__ import annotations

import pytest

from amazoniax_dagster.db.pg import libpq_url
from amazoniax_dagster.errors import ConfigError


@pytest.mark.parametrize(
    "scheme", ["postgresql", "postgres", "postgresql+psycopg2", "postgresql+psycopg", "POSTGRESQL"]
)
def test_a_postgresql_url_reaches_libpq_as_postgresql(scheme: str) -> None:
    assert libpq_url(f"{scheme}://u:p%40ss@db:5432/x?sslmode=require") == (
        "postgresql://u:p%40ss@db:5432/x?sslmode=require"
    )


@pytest.mark.parametrize(
    "url", ["mysql://u:s3cr3t-pw@db/x", "u:s3cr3t-pw@db/x", "sqlite:///s3cr3t-pw.db"]
)
def test_another_url_is_refused_without_its_password(url: str) -> None:
    with pytest.raises(ConfigError, match="must start with postgresql://") as caught:
        libpq_url(url)
    assert "s3cr3t-pw" not in str(caught.value)
