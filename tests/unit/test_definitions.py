"""The code location loads, validates, and keeps its names (a rename shows up here)."""

import subprocess
import sys
from pathlib import Path

import dagster as dg

from amazoniax_dagster.definitions import defs

ROOT = Path(__file__).resolve().parents[2]


def test_snapshot_of_names() -> None:
    repo = defs.get_repository_def()
    assert sorted(k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()) == [
        "channel_files"
    ]
    assert sorted(s.name for s in repo.sensor_defs) == [
        "kafka_fetcher_sensor",
        "status_on_cancel",
        "status_on_failure",
        "status_on_success",
        "stored_channels_sensor",
    ]
    assert sorted(k.name for k in defs.get_assets_def("channel_files").check_keys) == [
        "files_well_formed",
        "not_empty_where_history_has_data",
    ]
    assert "channel_files_job" in {j.name for j in repo.get_all_jobs()}
    assert sorted(defs.resources) == ["fetch_settings", "fetcher_db", "kafka", "output_bucket"]


def test_channel_files_is_partitioned_by_channel() -> None:
    assets_def = defs.get_assets_def("channel_files")
    assert isinstance(assets_def.partitions_def, dg.DynamicPartitionsDefinition)
    assert assets_def.partitions_def.name == "channels"


def test_dagster_validates_the_definitions(tmp_path: Path) -> None:
    env = {
        "AMAZONIAX_DATABASE_URL": "postgresql+psycopg://u@127.0.0.1:1/x",
        "AMAZONIAX_SECRET_KEY": "k",
        "AMAZONIAX_OUTPUT_BUCKET": "b",
        "AMAZONIAX_S3_ENDPOINT_URL": "http://127.0.0.1:1",
        "AMAZONIAX_S3_ACCESS_KEY_ID": "a",
        "AMAZONIAX_S3_SECRET_ACCESS_KEY": "s",
        "AMAZONIAX_S3_REGION": "us-east-1",
        "AMAZONIAX_KAFKA_BOOTSTRAP": "127.0.0.1:1",
        "AMAZONIAX_ALLOWED_NETWORKS": "",
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "dagster",
            "definitions",
            "validate",
            "-w",
            str(ROOT / "workspace.yaml"),
        ],
        cwd=tmp_path,  # not ROOT: a temporary instance would read the local dagster.yaml
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Validation successful" in proc.stdout + proc.stderr


def test_loading_the_code_location_stays_light() -> None:
    code = (
        "import sys; import amazoniax_dagster.definitions; "
        "heavy = [m for m in ('boto3', 'botocore', 'kafka', 'sqlalchemy', 'psycopg', "
        "'alembic', 'cryptography') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
