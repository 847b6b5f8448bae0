from datetime import UTC, datetime

import pytest

from amazoniax_dagster.db import ChannelHistory, SourceIdentity
from amazoniax_dagster.sources.base import RemoteFile
from amazoniax_dagster.sync.engine import Classification, classify, listing_unchanged

HISTORY = ChannelHistory(
    latest_hash_by_path={"a.csv": "h-a2", "b.csv": "h-b"},
    delivered_hashes={"h-a1", "h-a2", "h-b"},
)


@pytest.mark.parametrize(
    ("path", "digest", "expected"),
    [
        ("c.csv", "h-c", Classification.NEW),
        ("a.csv", "h-a3", Classification.UPDATED),
        ("a.csv", "h-a2", Classification.DUPLICATE),
        ("a.csv", "h-a1", Classification.DUPLICATE),  # reverted to bytes delivered before
        ("copy-of-b.csv", "h-b", Classification.DUPLICATE),  # same bytes under a new name
    ],
)
def test_classification(path: str, digest: str, expected: Classification) -> None:
    assert classify(path, digest, HISTORY) is expected


T1 = datetime(2026, 1, 1, tzinfo=UTC)
T2 = datetime(2026, 1, 2, tzinfo=UTC)
KNOWN = SourceIdentity("k", "k", 10, "etag1", T1, "h")


@pytest.mark.parametrize(
    ("remote", "known", "unchanged"),
    [
        (RemoteFile("k", "k", 10, "etag1", T2), KNOWN, True),  # etag decides over mtime
        (RemoteFile("k", "k", 10, "etag2", T1), KNOWN, False),
        (RemoteFile("k", "k", 11, "etag1", T1), KNOWN, False),
        (RemoteFile("k", "k", None, "etag1", T1), KNOWN, False),
        (RemoteFile("k", "k", 10, None, T1), KNOWN, True),  # no etag (FTP): size + mtime
        (RemoteFile("k", "k", 10, None, T2), KNOWN, False),
        (RemoteFile("k", "k", 10, None, None), KNOWN, False),  # nothing to compare: download
        (RemoteFile("k", "k", 10, "etag1", T1), None, False),
    ],
)
def test_listing_unchanged(
    remote: RemoteFile, known: SourceIdentity | None, unchanged: bool
) -> None:
    assert listing_unchanged(remote, known) is unchanged
