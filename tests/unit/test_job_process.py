"""A job process starts light and exits without a collector walk over its heap (issue 7).

Each check runs in a fresh interpreter: what a module imports, and what happens at exit, are
properties of a whole process.
"""

import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet


def _run(code: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=env,
    )
    return proc.stdout.strip()


@pytest.mark.parametrize(
    ("module", "absent"),
    [
        # A job never migrates, publishes fetcher versions or talks boto3.
        (
            "amazoniax_dagster.jobs.channel_job",
            (
                "alembic",
                "boto3",
                "botocore",
                "confluent_kafka",  # imported by the first publish (or its warm-up)
                "amazoniax_dagster.fetchers.registry",
                "jsonschema",
                "charset_normalizer",
                "sqlalchemy",  # the fetcher DB is plain SQL on psycopg2
                "wcmatch",  # only for a channel with a file_pattern
                "defusedxml",  # only when an XML file is checked
                "ijson",  # only for a JSON file too large to load whole
                "tenacity",  # only once a call has failed and is retried
                "ssl",  # only for an HTTPS endpoint or FTPS
            ),  # fmt: skip
        ),
        # botocore loads when an S3 source is opened, not when its module is imported.
        ("amazoniax_dagster.sources.s3", ("boto3", "botocore", "urllib3")),
        # Operating commands (submit, status, doctor, ...) do not need the local stack.
        (
            "amazoniax_dagster.cli.main",
            ("amazoniax_dagster.devstack.local_stack", "boto3", "confluent_kafka", "sqlalchemy"),
        ),
    ],
)
def test_import_leaves_out(module: str, absent: tuple[str, ...]) -> None:
    code = f"import sys, {module}; print([m for m in {absent!r} if m in sys.modules])"
    assert _run(code) == "[]"


def test_migrating_still_finds_alembic() -> None:
    code = (
        "import sys; from amazoniax_dagster.db import FetcherDB; "
        "from amazoniax_dagster.db import migrate; "
        "print('alembic' in sys.modules, callable(migrate.upgrade), callable(FetcherDB.migrate))"
    )
    assert _run(code) == "True True True"


def test_a_process_that_ran_a_job_freezes_its_heap_at_exit() -> None:
    # Exit hooks run last-registered first: the probe, registered before the job's hook, runs
    # after it and sees the frozen heap.
    code = (
        "import atexit, gc\n"
        "atexit.register(lambda: print('frozen at exit:', gc.get_freeze_count() > 0))\n"
        "from amazoniax_dagster.jobs import channel_job\n"
        "before = atexit._ncallbacks()\n"
        "channel_job._skip_exit_collection(); channel_job._skip_exit_collection()\n"
        "print('hooks added:', atexit._ncallbacks() - before)\n"
        "print('frozen while running:', gc.get_freeze_count() > 0)\n"
    )
    assert _run(code).splitlines() == [
        "hooks added: 1",
        "frozen while running: False",
        "frozen at exit: True",
    ]


def test_a_process_that_ran_no_job_exits_as_usual() -> None:
    code = (
        "import atexit, gc\n"
        "atexit.register(lambda: print('frozen at exit:', gc.get_freeze_count() > 0))\n"
        "import amazoniax_dagster.jobs.channel_job\n"
    )
    assert _run(code) == "frozen at exit: False"


def test_loading_the_code_location_only_assembles() -> None:
    # No process-wide side effect on import: the garbage collector is left as it was.
    code = "import gc, amazoniax_dagster.definitions; print(gc.get_freeze_count())"
    assert _run(code) == "0"


def test_checking_a_json_file_without_a_schema_leaves_jsonschema_out() -> None:
    code = (
        "import io, sys\n"
        "from amazoniax_dagster.sync.validation import validate_file\n"
        "check = validate_file('a.json', io.BytesIO(b'{\"a\": 1}'))\n"
        "print(check.verdict, 'jsonschema' in sys.modules)\n"
    )
    assert _run(code) == "valid False"


@pytest.mark.parametrize(
    "url", ["postgresql://u@127.0.0.1:1/d", "postgresql+psycopg://u@127.0.0.1:1/d"]
)
def test_the_fetcher_db_talks_psycopg2_whatever_driver_the_url_names(url: str) -> None:
    # Dagster's Postgres storage has loaded psycopg2 in a run worker already.
    code = (
        "import sys\n"
        "from amazoniax_dagster.db import FetcherDB\n"
        "from amazoniax_dagster.core.errors import InfrastructureError\n"
        "from amazoniax_dagster.core.sealing import SecretCipher\n"
        f"db = FetcherDB({url!r}, SecretCipher(SecretCipher.generate_key()))\n"
        "try:\n"
        "    db.ping()\n"
        "except InfrastructureError as exc:\n"
        "    print(type(exc.__cause__).__module__, end=' ')\n"
        "print([m for m in ('psycopg', 'sqlalchemy') if m in sys.modules])\n"
    )
    assert _run(code) == "psycopg2 []"


def test_a_steps_services_load_the_fetcher_catalog_only_when_asked(tmp_path: Path) -> None:
    # S3 and FTP steps never use the fetchers repository: building their services must not
    # import it (~20 ms a run). Nothing here connects: the DB, S3 and Kafka clients are lazy.
    key = Fernet.generate_key().decode()
    code = f"""
import sys
import dagster as dg
from assets.job_services import job_services
from resources import (FetcherDBResource, FetcherRepoResource, FetchSettings, KafkaResource,
                       OutputBucketResource, PythonFetchersResource)
services = job_services(
    dg.build_asset_context(),
    fetcher_db=FetcherDBResource(database_url="postgresql://u@127.0.0.1:9/db", secret_key={key!r}),
    output_bucket=OutputBucketResource(bucket="out", endpoint_url="http://127.0.0.1:9"),
    kafka=KafkaResource(bootstrap_servers="127.0.0.1:9"),
    fetch_settings=FetchSettings(),
    fetcher_repo=FetcherRepoResource(repo_path={str(tmp_path / "repo")!r}),
    python_fetchers=PythonFetchersResource(),
)
print("amazoniax_dagster.fetchers.catalog" in sys.modules)
catalog = services.catalog()
print("amazoniax_dagster.fetchers.catalog" in sys.modules, type(catalog).__name__)
"""
    assert _run(code).splitlines()[-2:] == ["False", "True RegistryCatalog"]
