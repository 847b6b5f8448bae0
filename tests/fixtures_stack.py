"""Session fixtures for the real local stack (Kafka, S3, PostgreSQL); one stack per run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from amazoniax_dagster.devstack.local_stack import LocalStack, StackEndpoints


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """The started :class:`LocalStack`; stopped at the end of the session."""
    # handle_sigterm=False: pytest would report the SystemExit as a failed test and go on;
    # with the default action a SIGTERM ends pytest and the children die with it (pdeathsig).
    workdir = tmp_path_factory.mktemp("local-stack")
    with LocalStack(workdir, handle_sigterm=False) as started:
        yield started


@pytest.fixture(scope="session")
def stack(local_stack: LocalStack) -> StackEndpoints:
    """Where the session's local services answer."""
    return local_stack.endpoints
