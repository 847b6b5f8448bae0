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
        "channel_files",
        "channel_records",
        "fetcher_code",
        "fetcher_dead_letters",
    ]
    assert sorted(s.name for s in repo.sensor_defs) == [
        "health_alert_sensor",
        "kafka_fetcher_sensor",
        "records_automation",
        "status_on_cancel",
        "status_on_failure",
        "status_on_success",
        "stored_channels_sensor",
    ]
    assert sorted(k.name for k in defs.get_assets_def("channel_files").check_keys) == [
        "files_well_formed",
        "not_empty_where_history_has_data",
    ]
    assert sorted(k.name for k in defs.get_assets_def("channel_records").check_keys) == [
        "every_record_loaded_or_counted",
        "mapped_fields_found",
        "one_row_per_external_id",
    ]
    assert sorted(k.name for k in defs.get_assets_def("fetcher_code").check_keys) == [
        "reproduces_capture",
        "validated_on_mapped_channels",
    ]
    assert {"channel_files_job", "fetcher_code_job"} <= {j.name for j in repo.get_all_jobs()}
    assert sorted(defs.resources) == [
        "bedrock",
        "codegen_settings",
        "fetch_settings",
        "fetcher_db",
        "fetcher_repo",
        "kafka",
        "output_bucket",
        "python_fetchers",
    ]


def test_channel_files_is_partitioned_by_channel() -> None:
    assets_def = defs.get_assets_def("channel_files")
    assert isinstance(assets_def.partitions_def, dg.DynamicPartitionsDefinition)
    assert assets_def.partitions_def.name == "channels"


def test_fetcher_code_is_partitioned_by_site_and_backed_by_the_generation_graph() -> None:
    assets_def = defs.get_assets_def("fetcher_code")
    assert isinstance(assets_def.partitions_def, dg.DynamicPartitionsDefinition)
    assert assets_def.partitions_def.name == "sites"
    assert isinstance(assets_def.node_def, dg.GraphDefinition)
    graph = assets_def.node_def
    assert {node.name for node in graph.nodes} == {
        "capture", "synthesize", "validate", "publish", "fetch_for_job"
    }  # fmt: skip
    # Each op feeds the next: capture -> synthesize -> validate -> publish -> fetch_for_job.
    order = ["capture", "synthesize", "validate", "publish", "fetch_for_job"]
    for upstream, downstream in zip(order, order[1:], strict=False):
        deps = graph.dependency_structure.input_to_upstream_outputs_for_node(downstream)
        assert upstream in {o.node_name for outs in deps.values() for o in outs}


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
        "AMAZONIAX_FETCHERS_REPO_PATH": "/tmp/x",
        "AMAZONIAX_FETCHERS_REMOTE_URL": "",
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
        "heavy = [m for m in ('boto3', 'botocore', 'kafka', 'confluent_kafka', 'sqlalchemy', "
        "'psycopg', 'alembic', 'cryptography') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
