"""The fetcher DB's URL: any PostgreSQL scheme is taken; a bad one never echoes the password."""

from __future__ import annotations

import pytest

from amazoniax_dagster.core.errors import ConfigError, InfrastructureError
from amazoniax_dagster.core.sealing import SecretCipher
from amazoniax_dagster.db import FetcherDB
from amazoniax_dagster.db.pg import libpq_url


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


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:s3cr3t%zzpw@127.0.0.1:1/x",  # libpq quotes the token it cannot decode
        "postgresql://u:s3cr3t-pw@127.0.0.1:notaport/x",
        "postgresql://u:s3cr3t-pw@[::1/x",  # not even a URL to Python
    ],
)
def test_a_url_libpq_cannot_read_is_refused_without_its_password(url: str) -> None:
    db = FetcherDB(url, SecretCipher(SecretCipher.generate_key()))
    with pytest.raises(InfrastructureError) as caught:
        db.ping()
    chain = []
    error: BaseException | None = caught.value
    while error is not None:
        chain.append(str(error))
        error = error.__cause__ or error.__context__
    assert len(chain) >= 2 and not any("s3cr3t" in text for text in chain), chain
