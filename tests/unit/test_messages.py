import json

import pytest

from amazoniax_dagster.core.errors import MessageError
from amazoniax_dagster.core.messages import (
    Flow,
    ParsersMessage,
    S3SourceConfig,
    StatusMessage,
    parse_fetcher_job,
)

S3 = {
    "bucket": "source-bucket",
    "remote_path": "/data/",
    "access_key": "AKIAXX",
    "secret_access_key": "s3cr3t-value",
}


def msg(**over: object) -> bytes:
    base: dict[str, object] = {
        "job_id": "job_12345",
        "channel_id": "001",
        "source_type": "s3",
        "is_new": True,
        "heal_mode": False,
        "config": S3,
    }
    base.update(over)
    return json.dumps({k: v for k, v in base.items() if v is not ...}).encode()


@pytest.mark.parametrize(
    ("raw", "flow"),
    [
        (msg(), Flow.NEW),
        (msg(is_new=False), Flow.EXISTING),
        (msg(is_new=True, heal_mode=True), Flow.HEAL),
        (msg(config=...), Flow.NEW),  # no config: the stored channel config is used
        (msg(channel_id=7), Flow.NEW),  # numeric ids are read as text
    ],
)
def test_valid_messages(raw: bytes, flow: Flow) -> None:
    job = parse_fetcher_job(raw)
    assert job.flow is flow
    assert isinstance(job.channel_id, str)


def test_unknown_fields_are_kept() -> None:
    job = parse_fetcher_job(msg(priority="high", config={**S3, "storage_class": "GLACIER"}))
    assert job.model_extra == {"priority": "high"}
    assert job.config is not None and job.config["storage_class"] == "GLACIER"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b"\xff\xfe", "not valid JSON"),
        (msg(source_type="gopher"), "source_type"),
        (msg(job_id=...), "job_id: Field required"),
        (msg(job_id="../../etc"), "job_id"),
        (msg(channel_id="a/b"), "channel_id"),
        (msg(config={"remote_path": "/x"}), "config: bucket: Field required"),
        (msg(source_type="ftp", config={"username": "u"}), "host: Field required"),
        (msg(is_new="perhaps"), "is_new"),
    ],
)
def test_invalid_messages_say_why(raw: bytes, expected: str) -> None:
    with pytest.raises(MessageError) as err:
        parse_fetcher_job(raw)
    assert expected in str(err.value)


def test_error_messages_never_echo_secrets() -> None:
    bad = msg(config={**S3, "bucket": 12345678901234567890, "secret_access_key": ["s3cr3t-value"]})
    with pytest.raises(MessageError) as err:
        parse_fetcher_job(bad)
    assert "s3cr3t-value" not in str(err.value)
    assert "secret_access_key" in str(err.value)


def test_secrets_are_hidden_in_repr() -> None:
    cfg = S3SourceConfig.model_validate(S3)
    assert "s3cr3t-value" not in repr(cfg)
    assert cfg.secret_access_key is not None
    assert cfg.secret_access_key.get_secret_value() == "s3cr3t-value"


def test_outgoing_messages_match_the_contract() -> None:
    parsers = json.loads(
        ParsersMessage(
            job_id="j", channel_id="c", s3_output_path="s3://b/p/", file_count=3
        ).to_bytes()
    )
    assert set(parsers) == {"job_id", "channel_id", "s3_output_path", "file_count", "timestamp"}
    assert parsers["timestamp"].endswith("Z")
    status = json.loads(
        StatusMessage(job_id="j", channel_id="c", status="success", message="ok").to_bytes()
    )
    assert set(status) == {"job_id", "channel_id", "status", "message", "timestamp", "metadata"}
    assert status["metadata"] == {"files_processed": 0, "execution_time_seconds": 0.0}
