"""The words for file outcomes: plurals, one vocabulary, the status message of a file job."""

from datetime import UTC, datetime

import pytest

from amazoniax_dagster.sources.base import RejectedFile, RemoteFile
from amazoniax_dagster.sync.engine import Classification, FileOutcome, SyncResult
from amazoniax_dagster.sync.validation.rules import FileCheck, Verdict
from amazoniax_dagster.sync.wording import count, job_message, outcome_counts

URI = "s3://out/raw/ch/job-1/"


@pytest.mark.parametrize(
    ("n", "noun", "expected"),
    [
        (0, "file", "0 files"),
        (1, "file", "1 file"),
        (2, "file", "2 files"),
        (1, "invalid file", "1 invalid file"),
        (3, "invalid file", "3 invalid files"),
        (1, "entry", "1 entry"),
    ],
)
def test_count_says_one_file_and_two_files(n: int, noun: str, expected: str) -> None:
    assert count(n, noun) == expected


def test_count_takes_an_irregular_plural() -> None:
    assert count(2, "entry", "entries") == "2 entries"


def test_outcome_counts_keep_one_order_and_leave_out_what_did_not_happen() -> None:
    summary = {"unchanged": 4, "new": 2, "rejected": 0, "duplicate": 1, "listed": 7}
    assert outcome_counts(summary) == "2 new, 1 duplicate, 4 unchanged"
    assert outcome_counts({"listed": 0}) == ""


def remote(path: str) -> RemoteFile:
    return RemoteFile(key=path, relative_path=path, size=1, mtime=datetime(2026, 1, 1, tzinfo=UTC))


def result_of(
    outcomes: list[tuple[str, Classification, bool, bool]], rejected: int = 0
) -> SyncResult:
    """A SyncResult with files (path, classification, invalid, quarantined)."""
    result = SyncResult("ch", "job-1", URI)
    for path, classification, invalid, quarantined in outcomes:
        uploaded = classification in (Classification.NEW, Classification.UPDATED)
        result.outcomes.append(
            FileOutcome(
                remote(path),
                classification,
                f"h-{path}",
                1,
                f"raw/ch/job-1/{path}" if uploaded else None,
                uploaded,
                FileCheck(path, "json", Verdict.INVALID, "bad", {}) if invalid else None,
                quarantined,
            )
        )
    result.rejected = [RejectedFile(f"../bad{i}", "climbs out") for i in range(rejected)]
    return result


def test_a_job_that_uploaded_one_file_says_file_not_files() -> None:
    result = result_of(
        [
            ("a.csv", Classification.NEW, False, False),
            ("b.csv", Classification.UNCHANGED, False, False),
            ("c.csv", Classification.UNCHANGED, False, False),
        ]
    )
    assert job_message(result.summary(), URI) == (
        f"1 file uploaded to {URI}; 3 files listed: 1 new, 2 unchanged"
    )


def test_a_job_with_nothing_new_names_every_outcome_in_the_same_words() -> None:
    result = result_of(
        [
            ("a.csv", Classification.DUPLICATE, False, False),
            ("b.csv", Classification.UNCHANGED, False, False),
        ],
        rejected=1,
    )
    assert job_message(result.summary(), URI) == (
        "no files uploaded; 3 files listed: 1 duplicate, 1 unchanged, 1 rejected"
    )


def test_an_empty_listing_says_so() -> None:
    assert job_message(result_of([]).summary(), URI) == "no files uploaded; 0 files listed"


def test_invalid_files_say_whether_they_were_quarantined_or_flagged() -> None:
    files = [
        ("good.json", Classification.NEW, False, False),
        ("bad.json", Classification.UPDATED, True, True),
    ]
    quarantined = result_of(files)
    assert job_message(quarantined.summary(), URI).endswith(
        "; 2 files listed: 1 new, 1 updated; 1 invalid file quarantined"
    )
    flagged = result_of([(p, c, i, False) for p, c, i, _ in files * 2])
    assert job_message(flagged.summary(), URI).endswith(
        "; 4 files listed: 2 new, 2 updated; 2 invalid files uploaded and flagged"
    )


def test_the_metadata_of_a_materialization_uses_the_same_words() -> None:
    from amazoniax_dagster.jobs.channel_job import JobOutcome
    from amazoniax_dagster.jobs.services import JobRequest
    from amazoniax_dagster.sync.wording import OUTCOMES
    from assets.channel_files import job_metadata

    result = result_of(
        [
            ("a.csv", Classification.NEW, True, False),
            ("b.csv", Classification.DUPLICATE, False, False),
        ],
        rejected=1,
    )
    request = JobRequest(job_id="job-1", channel_id="ch")
    metadata = job_metadata(JobOutcome(request, result))
    summary = result.summary()
    assert {f"{word}_files": summary[word] for word in OUTCOMES} == {
        f"{word}_files": metadata[f"{word}_files"] for word in OUTCOMES
    }
    assert [metadata[f"{w}_files"] for w in OUTCOMES] == [1, 0, 1, 0, 1, 1]
