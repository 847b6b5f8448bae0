"""Channel registry files: shapes, per-entry validation, and the import command's exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from amazoniax_dagster.cli import main as cli
from amazoniax_dagster.cli.channel_registry import (
    RegistryError,
    import_registry,
    parse_registry,
    read_registry_file,
)

SECRET = "reg-S3CRET-value-42"

S3 = {"source_type": "s3", "config": {"bucket": "bucket-a", "secret_access_key": SECRET}}
FTP = {
    "source_type": "ftp",
    "description": "daily reports",
    "config": {"host": "ftp.example.com", "username": "bob", "password": SECRET},
}

YAML = f"""
channels:
  s3_financial_data:
    source_type: s3
    config:
      bucket: bucket-a
      remote_path: data/
      access_key: AKIAX
      secret_access_key: {SECRET}
  ftp_reports:
    source_type: ftp
    config: {{host: ftp.example.com, port: 2121, password: {SECRET}}}
"""


def test_yaml_mapping_under_channels(tmp_path: Path) -> None:
    path = tmp_path / "registry.yaml"
    path.write_text(YAML)
    registry = parse_registry(read_registry_file(path))
    assert registry.valid
    assert [(e.channel_id, e.source_type.value) for e in registry.entries] == [
        ("s3_financial_data", "s3"),
        ("ftp_reports", "ftp"),
    ]
    assert registry.entries[1].config["port"] == 2121
    assert SECRET not in repr(registry)


@pytest.mark.parametrize(
    "data",
    [
        {"a": S3, "b": FTP},
        {"channels": {"a": S3, "b": FTP}},
        [{"channel_id": "a", **S3}, {"id": "b", **FTP}],
        {"channels": [{"service_id": "a", **S3}, {"channel_id": "b", **FTP}]},
    ],
)
def test_every_shape_gives_the_same_entries(data: Any) -> None:
    registry = parse_registry(data)
    assert registry.valid
    assert [e.channel_id for e in registry.entries] == ["a", "b"]


def test_json_files_are_read_as_json(tmp_path: Path) -> None:
    path = tmp_path / "registry.json"
    path.write_text(json.dumps({"channels": {"a": S3}}))
    assert parse_registry(read_registry_file(path)).entries[0].channel_id == "a"


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ({"source_type": "gopher", "config": {}}, "source_type must be one of"),
        ({"config": {"bucket": "bucket-a"}}, "source_type must be one of"),
        ({"source_type": "s3"}, "config is missing"),
        ({"source_type": "s3", "config": {"bucket": "ab"}}, "invalid s3 config: bucket"),
        ({"source_type": "ftp", "config": {"port": 21}}, "invalid ftp config: host"),
        ({"source_type": "s3", "confg": {}}, "unknown field(s) confg"),
        ("s3://bucket", "must be a mapping"),
    ],
)
def test_invalid_entries_are_listed_with_reasons(entry: Any, reason: str) -> None:
    registry = parse_registry({"good": S3, "bad": entry})
    assert [e.channel_id for e in registry.entries] == ["good"]
    [issue] = registry.issues
    assert issue.where == "bad"
    assert reason in issue.reason


def test_reasons_never_echo_config_values() -> None:
    entry = {"source_type": "ftp", "config": {"host": "h", "port": SECRET, "password": SECRET}}
    registry = parse_registry({"x": entry})
    assert registry.issues and SECRET not in str(registry.issues[0])


def test_bad_ids_and_duplicates() -> None:
    registry = parse_registry([{"channel_id": "a/b", **S3}, {"id": "c", **S3}, {"id": "c", **S3}])
    assert [str(i) for i in registry.issues] == [
        "a/b: channel id must be letters, digits and . _ : @ - (at most 200)",
        "c: declared more than once",
    ]


@pytest.mark.parametrize("data", [None, "text", 3, {}, []])
def test_a_registry_must_declare_channels(data: Any) -> None:
    with pytest.raises(RegistryError):
        parse_registry(data)


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "registry.yaml"
    path.write_text("channels:\n  a: [unclosed\n")
    with pytest.raises(RegistryError, match="not valid YAML"):
        read_registry_file(path)


class RecordingDB:
    def __init__(self, existing: list[str]) -> None:
        self.existing = existing
        self.saved: list[tuple[str, str, dict[str, Any]]] = []

    def list_channel_ids(self) -> list[str]:
        return list(self.existing)

    def save_channel(self, channel_id: str, source_type: str, config: dict[str, Any]) -> None:
        self.saved.append((channel_id, source_type, config))


def test_import_counts_created_and_updated() -> None:
    db = RecordingDB(["b"])
    result = import_registry(parse_registry({"a": S3, "b": FTP}), db)  # type: ignore[arg-type]
    assert (result.created, result.updated) == (["a"], ["b"])
    assert [s[:2] for s in db.saved] == [("a", "s3"), ("b", "ftp")]


def test_import_stores_nothing_when_one_entry_is_invalid() -> None:
    db = RecordingDB([])
    registry = parse_registry({"a": S3, "bad": {"source_type": "s3", "config": {}}})
    with pytest.raises(RegistryError) as caught:
        import_registry(registry, db)  # type: ignore[arg-type]
    assert db.saved == [] and caught.value.issues[0].where == "bad"
    result = import_registry(registry, db, skip_invalid=True)  # type: ignore[arg-type]
    assert result.created == ["a"] and [i.where for i in result.skipped] == ["bad"]


def test_import_command_lists_invalid_entries_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "registry.yaml"
    path.write_text(YAML + "  broken:\n    source_type: s3\n    config: {bucket: x}\n")
    result = CliRunner().invoke(
        cli.main,
        ["channels", "import", str(path)],
        env={"AMAZONIAX_DATABASE_URL": "postgresql+psycopg://u@127.0.0.1:1/d"},
    )
    assert result.exit_code == 2
    assert "invalid: broken: invalid s3 config: bucket" in result.output
    assert "nothing was stored" in result.output
    assert SECRET not in result.output


def test_import_dry_run_validates_only(tmp_path: Path) -> None:
    path = tmp_path / "registry.yaml"
    path.write_text(YAML)
    result = CliRunner().invoke(cli.main, ["channels", "import", str(path), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "2 valid channel(s); nothing stored" in result.output
