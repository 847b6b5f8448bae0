"""The operator commands without services: batch parsing, the submission loop on a fake
backend, exit codes and output formatting (click's CliRunner), the doctor's deadlines."""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from amazoniax_dagster.cli import main as cli
from amazoniax_dagster.cli.batch_file import BatchError, PreparedJob, prepare_batch
from amazoniax_dagster.cli.doctor import Check, CheckFailed, CheckResult, DoctorReport, run_checks
from amazoniax_dagster.cli.job_status import JobsOverview
from amazoniax_dagster.cli.settings import load_settings, read_env_file
from amazoniax_dagster.cli.submit import JobProgress, StatusUpdate, count, submit_jobs
from amazoniax_dagster.core.errors import ConfigError, TransientError
from amazoniax_dagster.db.rows import JobFailure

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
SECRET = "s3cr3t-VALUE-never-shown"


def s3_job(job_id: str | None = "j1", channel: str = "chan-a", **extra: Any) -> dict[str, Any]:
    job: dict[str, Any] = {
        "channel_id": channel,
        "source_type": "s3",
        "config": {"bucket": "bucket-a", "secret_access_key": SECRET, "access_key": "AKIAX"},
        **extra,
    }
    if job_id is not None:
        job["job_id"] = job_id
    return job


# --------------------------------------------------------------------------- batch parsing


def test_a_list_of_kafka_messages_is_a_batch() -> None:
    jobs = prepare_batch([s3_job("j1"), s3_job("j2", is_new=True, extra_field=1)], now=NOW)
    assert [j.job_id for j in jobs] == ["j1", "j2"]
    assert jobs[1].job.is_new is True
    sent = json.loads(jobs[1].payload)
    assert sent["extra_field"] == 1  # unknown fields travel on, as on the topic
    assert sent["config"]["secret_access_key"] == SECRET  # the message itself is complete


def test_seed_002_shape_maps_service_id_and_looks_up_the_source_type() -> None:
    batch = {
        "description": "nightly",
        "jobs": [
            {"job_id": "unique_job_001", "service_id": "s3_financial_data"},
            {"service_id": "ftp_reports"},
        ],
    }
    asked: list[str] = []

    def source_types(ids: Any) -> dict[str, str]:
        asked.extend(ids)
        return {"s3_financial_data": "s3", "ftp_reports": "ftp"}

    jobs = prepare_batch(batch, source_types=source_types, now=NOW)
    assert sorted(asked) == ["ftp_reports", "s3_financial_data"]
    assert [(j.job_id, j.channel_id, j.job.source_type) for j in jobs] == [
        ("unique_job_001", "s3_financial_data", "s3"),
        ("batch-20260102T030405-0002", "ftp_reports", "ftp"),
    ]
    message = json.loads(jobs[0].payload)
    assert "service_id" not in message and message["channel_id"] == "s3_financial_data"
    assert "config" not in message  # runs on the stored config


def test_generated_job_ids_are_unique_and_valid() -> None:
    jobs = prepare_batch([s3_job(None) for _ in range(3)], now=NOW)
    assert [j.job_id for j in jobs] == [
        "batch-20260102T030405-0001",
        "batch-20260102T030405-0002",
        "batch-20260102T030405-0003",
    ]


@pytest.mark.parametrize(
    ("batch", "index", "reason"),
    [
        ({"jobs": [s3_job("j1"), "text"]}, 1, "must be a JSON object"),
        ([s3_job("j1"), s3_job("bad/id")], 1, "job_id"),
        ([s3_job("j1", source_type="gopher")], 0, "source_type"),
        ([s3_job("j1", config={"bucket": "x"})], 0, "invalid s3 config: bucket"),
        ([s3_job("j1"), s3_job("j1")], 1, "repeats job #1"),
        ([{"job_id": "j1", "channel_id": "c"}], 0, "source_type"),
    ],
)
def test_a_bad_entry_is_named_by_index_and_reason(batch: Any, index: int, reason: str) -> None:
    with pytest.raises(BatchError) as caught:
        prepare_batch(batch, now=NOW)
    [error] = caught.value.errors
    assert error.index == index
    assert reason in error.reason
    assert SECRET not in str(caught.value)


def test_every_bad_entry_is_reported_at_once() -> None:
    with pytest.raises(BatchError) as caught:
        prepare_batch([s3_job("a/b"), s3_job("ok"), 42, s3_job("c", config={"bucket": 1})])
    assert [e.index for e in caught.value.errors] == [0, 2, 3]


def test_unknown_channels_and_used_job_ids_are_refused_with_a_db() -> None:
    batch = [
        {"job_id": "new", "service_id": "nobody"},
        {"job_id": "old", "service_id": "known"},
        {"job_id": "typed", "channel_id": "known", "source_type": "ftp"},
    ]
    with pytest.raises(BatchError) as caught:
        prepare_batch(
            batch,
            source_types=lambda ids: {"known": "s3"},
            known_jobs=lambda ids: {"old"} & set(ids),
        )
    reasons = {e.index: e.reason for e in caught.value.errors}
    assert "no stored config" in reasons[0]
    assert "already submitted" in reasons[1]
    assert "does not match the stored channel" in reasons[2]


@pytest.mark.parametrize("data", [{}, {"jobs": {}}, "x", {"jobs": []}, []])
def test_a_batch_needs_a_list_of_jobs(data: Any) -> None:
    with pytest.raises(BatchError):
        prepare_batch(data)


# --------------------------------------------------------------------------- the loop


class FakeBackend:
    """Reports a status for every job one poll after it was sent; remembers the peak."""

    def __init__(self, outcomes: Mapping[str, str] | None = None, *, silent: bool = False) -> None:
        self.outcomes = dict(outcomes or {})
        self.silent = silent
        self.sent: list[str] = []
        self.reported: set[str] = set()
        self.peak = 0
        self.started = False
        self.fail_send_after: int | None = None

    def start(self) -> None:
        self.started = True

    def send(self, job: PreparedJob) -> None:
        if self.fail_send_after is not None and len(self.sent) >= self.fail_send_after:
            raise TransientError("could not publish to amazoniax_fetcher: KafkaTimeoutError")
        self.sent.append(job.job_id)
        self.peak = max(self.peak, len(self.sent) - len(self.reported))

    def poll_statuses(self) -> list[StatusUpdate]:
        if self.silent:
            return []
        updates = []
        for job_id in self.sent:
            if job_id not in self.reported:
                self.reported.add(job_id)
                status = self.outcomes.get(job_id, "success")
                message = f"done with password={SECRET}" if status != "success" else "ok"
                updates.append(StatusUpdate(job_id, status, message, files=2, seconds=1.5))
        return updates

    def job_states(self, job_ids: Collection[str]) -> Mapping[str, str]:
        return {job_id: "running" for job_id in job_ids}


def _jobs(n: int) -> list[PreparedJob]:
    return prepare_batch([s3_job(f"j{i}") for i in range(n)])


def test_max_workers_bounds_the_jobs_in_flight() -> None:
    backend = FakeBackend()
    snapshots: list[int] = []
    report = submit_jobs(
        _jobs(7),
        backend,
        max_workers=3,
        on_update=lambda jobs: snapshots.append(sum(j.in_flight for j in jobs)),
        sleep=lambda s: None,
    )
    assert backend.sent == [f"j{i}" for i in range(7)]
    assert backend.peak == 3 and max(snapshots) == 3
    assert report.exit_code == 0
    assert count(report.jobs).succeeded == 7


def test_a_failed_job_makes_exit_code_1_and_review_counts_as_failed() -> None:
    backend = FakeBackend({"j1": "failed", "j2": "requires_human_review"})
    report = submit_jobs(_jobs(3), backend, sleep=lambda s: None)
    assert report.exit_code == 1
    assert count(report.jobs).failed == 2
    assert {j.job_id: j.files for j in report.jobs} == {"j0": 2, "j1": 2, "j2": 2}


def test_no_status_before_the_timeout_makes_exit_code_3() -> None:
    clock = iter(range(0, 1000, 5))
    report = submit_jobs(
        _jobs(2),
        FakeBackend(silent=True),
        timeout=12,
        clock=lambda: float(next(clock)),
        sleep=lambda s: None,
    )
    assert report.timed_out and report.exit_code == 3
    assert all("no status within 12 s" in j.message for j in report.jobs)


def test_no_wait_returns_once_everything_is_sent() -> None:
    backend = FakeBackend(silent=True)
    report = submit_jobs(_jobs(3), backend, wait=False, sleep=lambda s: None)
    assert backend.sent == ["j0", "j1", "j2"]
    assert report.exit_code == 0 and count(report.jobs).queued == 3


def test_kafka_failing_mid_batch_stops_sending_and_says_so() -> None:
    backend = FakeBackend()
    backend.fail_send_after = 2
    report = submit_jobs(_jobs(4), backend, max_workers=10, sleep=lambda s: None)
    assert backend.sent == ["j0", "j1"]
    assert report.exit_code == 1 and report.error and "stopped sending" in report.error


# --------------------------------------------------------------------------- the command


@pytest.fixture()
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "AMAZONIAX_KAFKA_BOOTSTRAP",
        "AMAZONIAX_DATABASE_URL",
        "AMAZONIAX_SECRET_KEY",
        "AMAZONIAX_OUTPUT_BUCKET",
        "AMAZONIAX_BEDROCK_ENDPOINT_URL",
        "AMAZONIAX_BEDROCK_MODEL_ID",
        "AMAZONIAX_FETCHERS_REMOTE_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AMAZONIAX_KAFKA_BOOTSTRAP", "127.0.0.1:1")


@pytest.fixture()
def fake_backend(monkeypatch: pytest.MonkeyPatch, no_env: None) -> FakeBackend:
    backend = FakeBackend({"j1": "failed"})
    monkeypatch.setattr(cli, "open_submit_backend", lambda settings, db: backend)
    return backend


def _write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "batch.json"
    path.write_text(json.dumps(data))
    return path


def test_submit_an_invalid_batch_sends_nothing_and_exits_2(
    tmp_path: Path, fake_backend: FakeBackend
) -> None:
    path = _write(tmp_path, [s3_job("j0"), s3_job("j/1"), {"job_id": "j2"}])
    result = CliRunner().invoke(cli.main, ["submit", str(path)])
    assert result.exit_code == 2, result.output
    assert fake_backend.sent == [] and not fake_backend.started
    # The second and third jobs are bad, counted from 1 as people count.
    assert "job #2:" in result.output and "job #3:" in result.output
    assert "job #1:" not in result.output and "job #0" not in result.output
    assert SECRET not in result.output


def test_submit_not_json_exits_2(tmp_path: Path, fake_backend: FakeBackend) -> None:
    path = tmp_path / "batch.json"
    path.write_text("{nope")
    result = CliRunner().invoke(cli.main, ["submit", str(path)])
    assert result.exit_code == 2 and "not valid JSON" in result.output


def test_submit_waits_prints_a_summary_and_exits_1_on_a_failure(
    tmp_path: Path, fake_backend: FakeBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("amazoniax_dagster.cli.submit.time.sleep", lambda s: None)
    path = _write(tmp_path, [s3_job("j0"), s3_job("j1"), s3_job("j2")])
    result = CliRunner().invoke(cli.main, ["submit", str(path), "--max-workers", "2"])
    assert result.exit_code == 1, result.output
    assert fake_backend.peak == 2 and fake_backend.started
    # plain progress lines (not a terminal), then the summary table
    assert "submitted 2/3 · queued 2 · running 0" in result.output
    assert "waiting 1" in result.output
    assert "succeeded 2 · failed 1" in result.output
    for header in ("job_id", "channel", "status", "files", "seconds", "message"):
        assert header in result.output
    row = next(line for line in result.output.splitlines() if "│ j1 " in line)
    assert "failed" in row and "chan-a" in row and "1.5" in row
    assert SECRET not in result.output  # the status message quoted it: masked


def test_submit_no_wait_lists_the_job_ids(tmp_path: Path, fake_backend: FakeBackend) -> None:
    path = _write(tmp_path, [s3_job("j0"), s3_job("j1")])
    result = CliRunner().invoke(cli.main, ["submit", str(path), "--no-wait"])
    assert result.exit_code == 0, result.output
    assert "sent 2 job(s): j0, j1" in result.output
    assert not fake_backend.started  # nothing to follow: the status topic is not read


def test_submit_timeout_exits_3(
    tmp_path: Path, no_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = FakeBackend(silent=True)
    monkeypatch.setattr(cli, "open_submit_backend", lambda settings, db: backend)
    monkeypatch.setattr("amazoniax_dagster.cli.submit.time.sleep", lambda s: time.sleep(0.01))
    path = _write(tmp_path, [s3_job("j0")])
    result = CliRunner().invoke(cli.main, ["submit", str(path), "--timeout", "0.2"])
    assert result.exit_code == 3, result.output
    assert "timed out" in result.output


def test_submit_without_kafka_settings_exits_2(tmp_path: Path, no_env: None) -> None:
    path = _write(tmp_path, [s3_job("j0")])
    result = CliRunner().invoke(
        cli.main, ["submit", str(path)], env={"AMAZONIAX_KAFKA_BOOTSTRAP": ""}
    )
    assert result.exit_code == 2
    assert "AMAZONIAX_KAFKA_BOOTSTRAP is not set" in result.output


def test_help_texts_read_well() -> None:
    runner = CliRunner()
    top = runner.invoke(cli.main, ["--help"]).output
    for command in ("submit", "doctor", "status", "channels", "dev", "stack", "db"):
        assert command in top
    submit = runner.invoke(cli.main, ["submit", "--help"]).output
    assert "--max-workers" in submit and "[default: 20" in submit
    assert "3  --timeout passed" in submit
    for args in (["doctor"], ["status"], ["channels", "import"], ["channels", "list"]):
        result = runner.invoke(cli.main, [*args, "--help"])
        assert result.exit_code == 0 and "--env-file" in result.output


# --------------------------------------------------------------------------- env files


def test_env_file_values_win_and_comments_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "stack.env"
    path.write_text(
        "# local stack\nexport AMAZONIAX_KAFKA_BOOTSTRAP=127.0.0.1:9\n\n"
        "AMAZONIAX_DATABASE_URL='postgresql+psycopg://u@h/d'\n"
    )
    assert read_env_file(path)["AMAZONIAX_DATABASE_URL"] == "postgresql+psycopg://u@h/d"
    settings = load_settings(path, {"AMAZONIAX_KAFKA_BOOTSTRAP": "other:1", "X": "y"})
    assert settings.kafka_bootstrap == "127.0.0.1:9"
    assert settings.database_url == "postgresql+psycopg://u@h/d"


def test_a_bad_env_file_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.env"
    path.write_text("A=1\nnot a setting\n")
    with pytest.raises(ConfigError, match="bad.env:2"):
        read_env_file(path)


def test_settings_never_show_secrets_in_their_repr() -> None:
    settings = load_settings(
        None, {"AMAZONIAX_SECRET_KEY": SECRET, "AMAZONIAX_DATABASE_URL": SECRET}
    )
    assert SECRET not in repr(settings)


# --------------------------------------------------------------------------- doctor


def test_doctor_lines_and_exit_code(monkeypatch: pytest.MonkeyPatch, no_env: None) -> None:
    report = DoctorReport(
        [
            CheckResult("kafka", "ok", 12.3, "127.0.0.1:1, 4 topics present"),
            CheckResult("s3 output bucket", "failed", 5000.0, "no answer within 5 s"),
            CheckResult("bedrock", "skipped", None, "not configured"),
        ]
    )
    monkeypatch.setattr("amazoniax_dagster.cli.doctor.run_doctor", lambda settings, timeout: report)
    result = CliRunner().invoke(cli.main, ["doctor"])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0].startswith("✓ kafka") and "12 ms" in lines[0]
    assert lines[1].startswith("✗ s3 output bucket") and "no answer within 5 s" in lines[1]
    assert lines[2].startswith("- bedrock") and "not configured" in lines[2]

    as_json = CliRunner().invoke(cli.main, ["doctor", "--json"])
    data = json.loads(as_json.output)
    assert data["ok"] is False
    assert [c["status"] for c in data["checks"]] == ["ok", "failed", "skipped"]


def test_doctor_passes_when_every_check_passes(
    monkeypatch: pytest.MonkeyPatch, no_env: None
) -> None:
    report = DoctorReport([CheckResult("kafka", "ok", 1.0, "fine")])
    monkeypatch.setattr("amazoniax_dagster.cli.doctor.run_doctor", lambda settings, timeout: report)
    assert CliRunner().invoke(cli.main, ["doctor"]).exit_code == 0


def test_a_hanging_check_fails_at_its_deadline() -> None:
    def hang() -> str:
        time.sleep(10)
        return "never"

    def broken() -> str:
        raise CheckFailed(f"login refused for password={SECRET}")

    began = time.monotonic()
    results = run_checks(
        [Check("slow", hang), Check("broken", broken), Check("fine", lambda: "ok")],
        timeout=0.3,
    )
    assert time.monotonic() - began < 2
    assert [r.status for r in results] == ["failed", "failed", "ok"]
    assert "no answer within 0.3 s" in results[0].detail
    assert SECRET not in results[1].detail


def test_doctor_without_settings_names_what_is_missing(no_env: None) -> None:
    from amazoniax_dagster.cli.doctor import run_doctor
    from amazoniax_dagster.cli.settings import Settings

    report = run_doctor(Settings(), timeout=1.0)
    by_name = {c.component: c for c in report.checks}
    assert "AMAZONIAX_KAFKA_BOOTSTRAP is not set" in by_name["kafka"].detail
    assert "AMAZONIAX_OUTPUT_BUCKET is not set" in by_name["s3 output bucket"].detail
    assert by_name["bedrock"].status == "skipped" and "not configured" in by_name["bedrock"].detail
    assert by_name["fetchers repo"].status == "skipped"
    assert not report.ok


def test_doctor_checks_a_local_fetchers_repo(tmp_path: Path) -> None:
    from amazoniax_dagster.cli.doctor import check_fetchers_repo
    from amazoniax_dagster.cli.settings import Settings

    with pytest.raises(CheckFailed):
        check_fetchers_repo(Settings(fetchers_repo=str(tmp_path)), timeout=5)


# --------------------------------------------------------------------------- status


def test_status_json_and_tables(monkeypatch: pytest.MonkeyPatch, no_env: None) -> None:
    overview = JobsOverview(
        counts={
            "queued": 2,
            "running": 1,
            "success": 5,
            "failed": 1,
            "requires_human_review": 0,
            "canceled": 1,
        },
        recent_failures=[
            JobFailure("job-9", "chan-a", "failed", f"boom token={SECRET}", NOW),
        ],
    )
    monkeypatch.setattr(
        "amazoniax_dagster.cli.job_status.jobs_overview", lambda db, failures: overview
    )
    env = {"AMAZONIAX_DATABASE_URL": "postgresql+psycopg://u@127.0.0.1:1/d"}
    result = CliRunner().invoke(cli.main, ["status", "--json"], env=env)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["counts"]["queued"] == 2 and data["total"] == 10 and data["queue_size"] == 2
    assert data["recent_failures"][0]["time"] == "2026-01-02T03:04:05Z"
    assert SECRET not in result.output

    table = CliRunner().invoke(cli.main, ["status"], env=env)
    assert table.exit_code == 0
    assert "requires_human_review" in table.output and "queue size: 2" in table.output
    assert "job-9" in table.output and SECRET not in table.output


def test_progress_counts() -> None:
    jobs = [
        JobProgress("a", "c", "waiting"),
        JobProgress("b", "c", "queued"),
        JobProgress("c", "c", "running"),
        JobProgress("d", "c", "success"),
        JobProgress("e", "c", "requires_human_review"),
    ]
    c = count(jobs)
    assert (c.total, c.submitted, c.waiting, c.queued, c.running) == (5, 4, 1, 1, 1)
    assert (c.succeeded, c.failed, c.finished) == (1, 1, 2)


def test_status_counts_dead_letters(monkeypatch: pytest.MonkeyPatch, no_env: None) -> None:
    from amazoniax_dagster.db.rows import DeadLetterRow

    refused = DeadLetterRow("job-x", "chan-b", "invalid_message", f"bad password={SECRET}", NOW)
    overview = JobsOverview(
        counts={"queued": 0}, recent_failures=[], dead_letters=7, recent_dead_letters=[refused]
    )
    monkeypatch.setattr(
        "amazoniax_dagster.cli.job_status.jobs_overview", lambda db, failures: overview
    )
    env = {"AMAZONIAX_DATABASE_URL": "postgresql://u@127.0.0.1:1/d", "COLUMNS": "80"}
    table = CliRunner().invoke(cli.main, ["status"], env=env)
    assert table.exit_code == 0, table.output
    assert "no failed jobs" in table.output
    assert "messages refused (dead-lettered): 7" in table.output
    assert "job-x" in table.output and "invalid_message" in table.output
    assert SECRET not in table.output
    data = json.loads(CliRunner().invoke(cli.main, ["status", "--json"], env=env).output)
    assert data["dead_letters"] == 7 and data["recent_dead_letters"][0]["job_id"] == "job-x"


def test_the_jobs_table_reads_at_80_columns() -> None:
    from rich.console import Console

    from amazoniax_dagster.cli.output import summary_table
    from amazoniax_dagster.cli.submit import SubmitReport
    from amazoniax_dagster.core.redaction import Redactor

    message = "the secret access key is wrong for bucket exports-eu-west-1-orders-archive"
    jobs = [
        JobProgress("batch-20260102T030405-0001", "orders-eu-west-1", "success", 12, 3.4, ""),
        JobProgress("batch-20260102T030405-0002", "orders-us-east-2", "failed", None, 1.2, message),
    ]
    console = Console(width=80, record=True, color_system=None)
    console.print(summary_table(SubmitReport(jobs, waited=True), Redactor(), width=80))
    text = console.export_text()
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80
    for job in jobs:  # ids and channels whole, on one line each
        assert any(job.job_id in line for line in lines)
        assert any(job.channel_id in line for line in lines)
    cells = [line.split("│")[3] for line in lines if line.count("│") == 4]
    assert "".join(message.split()) in "".join("".join(cells).split())  # all of it, uncut
    assert "the secret access key is" in text  # and it wraps between words
    assert "12 files" in text and "3.4 s" in text


def test_a_job_shown_running_never_goes_back_to_queued() -> None:
    class SlowBackend(FakeBackend):
        """The DB says running once, then cannot be read; the status comes on the 4th poll."""

        polls = 0
        states = iter([{"j1": "running"}])

        def poll_statuses(self) -> list[StatusUpdate]:
            self.polls += 1
            return super().poll_statuses() if self.polls >= 4 else []

        def job_states(self, job_ids: Collection[str]) -> Mapping[str, str]:
            return next(self.states, {})

    seen: list[str] = []
    report = submit_jobs(
        prepare_batch([s3_job("j1")], now=NOW),
        SlowBackend(),
        on_update=lambda jobs: seen.append(jobs[0].state),
        sleep=lambda s: None,
    )
    assert report.jobs[0].state == "success"
    assert "running" in seen and "queued" not in seen[seen.index("running") :]
