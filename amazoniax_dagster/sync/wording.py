"""The words for file outcomes, one vocabulary for logs, status messages and metadata.

A listed file is new, updated, duplicate or unchanged; a remote name the product refuses is
rejected; a fetched file that fails its format check is invalid (and quarantined, or uploaded
and flagged). Metadata keys are these words with ``_files`` (``new_files``, ...).
"""

from __future__ import annotations

from collections.abc import Mapping

OUTCOMES = ("new", "updated", "duplicate", "unchanged", "rejected", "invalid")


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``1 file``, ``2 files``, ``0 files``."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def outcome_counts(summary: Mapping[str, int | float]) -> str:
    """``2 new, 1 updated, 4 unchanged``: each outcome that happened, in one fixed order."""
    return ", ".join(f"{int(summary[word])} {word}" for word in OUTCOMES if summary.get(word))


def job_message(summary: Mapping[str, int | float], output_uri: str) -> str:
    """What a finished file job did, for its status message and its log.

    ``3 files uploaded to s3://…/; 7 files listed: 2 new, 1 updated, 4 unchanged;
    1 invalid file quarantined``.
    """
    uploaded = int(summary.get("files_uploaded", 0))
    where = f" to {output_uri}" if uploaded else ""
    text = f"{count(uploaded, 'file') if uploaded else 'no files'} uploaded{where}"
    listed = int(summary.get("listed", 0))
    others = {word: n for word, n in summary.items() if word != "invalid"}
    text += f"; {count(listed, 'file')} listed"
    if counts := outcome_counts(others):
        text += f": {counts}"
    if invalid := int(summary.get("invalid", 0)):
        kept_out = "quarantined" if summary.get("quarantined") else "uploaded and flagged"
        text += f"; {count(invalid, 'invalid file')} {kept_out}"
    return text
