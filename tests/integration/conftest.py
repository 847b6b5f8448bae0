"""Fixtures shared by the integration tests: the run environment, the fetcher DB, a Dagster
instance, and a harness that drives sensors and runs as the daemon would."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from typing import Any

import dagster as dg
import pytest

from amazoniax_dagster.clients import s3 as s3util
from amazoniax_dagster.clients.kafka import KafkaBus
from amazoniax_dagster.core.sealing import SecretCipher
from amazoniax_dagster.db import FetcherDB, RetryConfig
from amazoniax_dagster.devstack.local_stack import StackEndpoints
from tests.integration.harness import Harness


@pytest.fixture(scope="session")
def stack_env(stack: StackEndpoints) -> Iterator[None]:
    """The run subprocesses resolve their resources' EnvVars from here, as in production."""
    saved = dict(os.environ)
    os.environ.update(stack.env())
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def fetcher_db(stack: StackEndpoints) -> Iterator[FetcherDB]:
    db = FetcherDB(stack.database_url, SecretCipher(stack.secret_key))
    db.migrate()
    # Tests should not wait 30 s between retries; the count stays the production default.
    db.set_retry_config(RetryConfig(max_simple_retries=3, retry_delay_seconds=0.05))
    yield db
    db.set_retry_config(RetryConfig())
    db.close()


@pytest.fixture(scope="session")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dg.DagsterInstance]:
    home = tmp_path_factory.mktemp("dagster_home")
    with dg.DagsterInstance.local_temp(str(home)) as inst:
        yield inst


@pytest.fixture()
def bus(stack: StackEndpoints) -> Iterator[KafkaBus]:
    b = KafkaBus(stack.kafka_bootstrap, client_id="tests")
    yield b
    b.close()


@pytest.fixture()
def harness(
    stack: StackEndpoints,
    stack_env: None,
    fetcher_db: FetcherDB,
    instance: dg.DagsterInstance,
    bus: KafkaBus,
) -> Harness:
    h = Harness(stack, instance, bus)
    h.start_at_end()
    return h


@pytest.fixture()
def output_client(stack: StackEndpoints) -> Any:
    """The product's own (admin) view of S3."""
    return s3util.make_client(
        endpoint_url=stack.s3_endpoint_url,
        access_key_id=stack.s3_access_key_id,
        secret_access_key=stack.s3_secret_access_key,
        region=stack.s3_region,
    )


@pytest.fixture()
def silent_port() -> Iterator[int]:
    """A server that accepts connections and never says a word."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()
