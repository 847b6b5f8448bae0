"""What intake accepts before anything runs: limits, ids, paths, URLs, date ranges."""

import json

import pytest

from amazoniax_dagster.core.bounded_json import load_bounded_json, nesting_depth
from amazoniax_dagster.core.date_ranges import DateRangeError, normalize_date_range
from amazoniax_dagster.core.errors import MessageError, UnsafeURLError
from amazoniax_dagster.core.messages import SourceType, parse_fetcher_job
from amazoniax_dagster.core.netpolicy import NetworkPolicy
from amazoniax_dagster.jobs.intake import MAX_ORIGINAL_CHARS, check_addresses, redacted_original
from sensors.kafka import Cursor

S3 = {"bucket": "source-bucket", "access_key": "AKIAXX", "secret_access_key": "s3cr3t-value"}


def msg(**over: object) -> bytes:
    base: dict[str, object] = {"job_id": "j1", "channel_id": "c1", "source_type": "s3"}
    base["config"] = S3
    base.update(over)
    return json.dumps(base).encode()


# --- limits -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "depth"),
    [
        (b"{}", 1),
        (b'{"a": [1, {"b": []}]}', 4),
        (b'{"a": "[[[[[[[[", "b": "\\"[[[["}', 1),  # brackets inside strings do not count
        (b'"\\\\"', 0),  # an escaped backslash ends where it should
        (b"[" * 500 + b"]" * 500, 500),
    ],
)
def test_nesting_depth_counts_structure_only(raw: bytes, depth: int) -> None:
    assert nesting_depth(raw) == depth


def test_a_deeply_nested_message_is_refused_before_parsing() -> None:
    with pytest.raises(MessageError, match="nests 100000 levels deep; the limit is 64"):
        load_bounded_json(b"[" * 100_000 + b"]" * 100_000)


def test_a_message_over_the_size_limit_is_refused() -> None:
    with pytest.raises(MessageError, match="bytes; the limit is 1,024 bytes"):
        parse_fetcher_job(msg(note="x" * 2000), max_bytes=1024)
    assert parse_fetcher_job(msg(note="x" * 500), max_bytes=1024).job_id == "j1"


# --- ids ----------------------------------------------------------------------------------


@pytest.mark.parametrize("channel_id", ["chañnel-ü", "канал_1", "数据.源", "a", "A.b_c-d:e@f"])
def test_channel_ids_in_any_script_are_accepted(channel_id: str) -> None:
    assert parse_fetcher_job(msg(channel_id=channel_id)).channel_id == channel_id


def test_ids_are_normalized_to_one_spelling() -> None:
    decomposed = "chan\u0303nel"  # n + combining tilde
    assert parse_fetcher_job(msg(channel_id=decomposed)).channel_id == "cha\u00f1nel"


@pytest.mark.parametrize(
    "channel_id", ["..", ".", "a/b", "a\\b", "a..b", "_x", "-x", "a b", "x\x00", "x\u202e", ""]
)
def test_unsafe_ids_are_refused(channel_id: str) -> None:
    with pytest.raises(MessageError, match="channel_id: Value error, not a valid id"):
        parse_fetcher_job(msg(channel_id=channel_id))


# --- paths, patterns, URLs ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "config", "expected"),
    [
        ("s3", S3 | {"file_pattern": "../../*"}, "file_pattern climbs out"),
        ("s3", S3 | {"remote_path": "data/../../other"}, "remote_path climbs out"),
        ("s3", S3 | {"file_pattern": "!../x"}, "file_pattern climbs out"),
        ("s3", S3 | {"remote_path": "a\x07b"}, "remote_path has a control character"),
        ("s3", S3 | {"endpoint_url": "file:///etc"}, "endpoint_url must be an http"),
        ("ftp", {"host": "h", "remote_path": "../../"}, "remote_path climbs out"),
        ("ftp", {"host": "ftp://h/x"}, "host must be a plain host"),
        ("html", {"url": "file:///etc/passwd"}, "url must be an http"),
        ("api", {"url": "gopher://h:70/x"}, "url must be an http"),
        ("api", {"url": "https://h", "api_documentation_path": "ftp://h/doc"}, "api_documentation"),
    ],
)
def test_configs_that_climb_out_or_leave_http_are_refused_at_intake(
    source: str, config: dict[str, object], expected: str
) -> None:
    with pytest.raises(MessageError, match=expected):
        parse_fetcher_job(msg(source_type=source, config=config))


@pytest.mark.parametrize(
    ("source", "config"),
    [
        ("html", {"url": "http://169.254.169.254/latest/meta-data/"}),
        ("api", {"url": "http://metadata.google.internal/x"}),
        ("html", {"url": "http://127.0.0.1:8080/"}),
        ("html", {"url": "http://[::ffff:10.0.0.1]/"}),
        ("s3", {"endpoint_url": "http://10.1.2.3:9000"}),
        ("ftp", {"host": "192.168.1.5"}),
    ],
)
def test_addresses_the_policy_refuses_are_refused_without_dns(
    source: str, config: dict[str, object]
) -> None:
    with pytest.raises(UnsafeURLError):
        check_addresses(SourceType(source), config, NetworkPolicy())


def test_host_names_are_left_to_the_connection() -> None:
    check_addresses(SourceType.HTML, {"url": "https://no-such-host.invalid/"}, NetworkPolicy())
    check_addresses(SourceType.FTP, {"host": "ftp.no-such-host.invalid"}, NetworkPolicy())


# --- date ranges --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "canonical"),
    [
        (7, {"last_days": 7}),
        ("7", {"last_days": 7}),
        ("7d", {"last_days": 7}),
        ("7 days", {"last_days": 7}),
        ("7_days", {"last_days": 7}),
        ("last 7 days", {"last_days": 7}),
        ("last_30_days", {"last_days": 30}),
        ("Past 14 Days", {"last_days": 14}),
        ("P10D", {"last_days": 10}),
        ("2 weeks", {"last_days": 14}),
        ("1w", {"last_days": 7}),
        ("today", {"last_days": 0}),
        ("yesterday", {"last_days": 1}),
        ({"last_days": 7}, {"last_days": 7}),
        ({"days": "3"}, {"last_days": 3}),
        ({"from": "2026-01-01", "to": "2026-01-31"}, {"from": "2026-01-01", "to": "2026-01-31"}),
        ({"start": "2026-01-01"}, {"from": "2026-01-01"}),
        ("2026-01-01..2026-01-31", {"from": "2026-01-01", "to": "2026-01-31"}),
        ("2026-01-01/2026-02-01", {"from": "2026-01-01", "to": "2026-02-01"}),
    ],
)
def test_date_ranges_as_customers_write_them(value: object, canonical: dict[str, object]) -> None:
    assert normalize_date_range(value) == canonical


@pytest.mark.parametrize(
    "value",
    ["soon", "7 fortnights", True, 1.5, [7], {"last_days": 7, "to": "2026-01-01"}, {"x": 1},
     {"from": "2026-02-01", "to": "2026-01-01"}, "99999 days", "2026-13-01..2026-12-31"],
)  # fmt: skip
def test_unreadable_date_ranges_say_what_is_accepted(value: object) -> None:
    with pytest.raises(DateRangeError, match="date_range"):
        normalize_date_range(value)


def test_a_web_job_carries_its_date_range_in_canonical_form() -> None:
    config = {"url": "https://example.com", "navigation_details": {"date_range": "7_days"}}
    job = parse_fetcher_job(msg(source_type="html", config=config))
    assert job.config is not None
    assert job.config["navigation_details"] == {"date_range": {"last_days": 7}}
    with pytest.raises(MessageError, match="accepted forms"):
        bad = {"url": "https://example.com", "navigation_details": {"date_range": "soon"}}
        parse_fetcher_job(msg(source_type="html", config=bad))


# --- dead letters and the sensor's cursor ----------------------------------------------------


def test_dead_letters_keep_the_message_without_its_secrets() -> None:
    raw = msg(config=S3 | {"password": "pw-123456", "url": "https://u:urlpass99@h/x"})
    shown = redacted_original(raw)
    assert json.loads(shown)["job_id"] == "j1"
    for secret in ("s3cr3t-value", "pw-123456", "urlpass99"):
        assert secret not in shown


def test_dead_letters_of_text_that_is_not_json_are_redacted_and_cut() -> None:
    raw = b'{"job_id": "x", "secret_access_key": "abcd-secret-1234", ' + b"y" * 200_000
    shown = redacted_original(raw)
    assert "abcd-secret-1234" not in shown
    assert len(shown) < MAX_ORIGINAL_CHARS + 100 and shown.endswith("more characters cut]")


def test_the_cursor_keeps_offsets_failed_ticks_and_dead_letters_and_reads_older_forms() -> None:
    assert Cursor.parse('{"0": 5, "1": 7}') == Cursor({0: 5, 1: 7})
    assert Cursor.parse('{"offsets": {"0": 5}, "failed_ticks": {}}') == Cursor({0: 5})
    cursor = Cursor({1: 7, 0: 5}, {"0:5": 2}, dead_letters=3).format()
    assert Cursor.parse(cursor) == Cursor({0: 5, 1: 7}, {"0:5": 2}, 3)
    # The running count comes first: the sensor's tick list shows the cursor cut in the middle.
    assert cursor.startswith('{"dead_letters": 3, ')


def test_a_secret_in_a_message_cut_short_is_masked_too() -> None:
    shown = redacted_original(b'{"job_id": "x", "password": "pw-cut-short-1234')
    assert "pw-cut-short-1234" not in shown and '"password": "***' in shown
