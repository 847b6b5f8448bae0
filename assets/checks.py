"""Asset checks of ``channel_files``, reported with every successful materialization.

The checks are partitioned like the asset: the UI shows each channel's latest result, and a
failing channel stays visible whichever channel ran last. The asset's overview and a check's
"latest execution" show the latest channel's result only, so every result also names the other
channels whose latest result of that check failed (``failing_channels``).
"""

import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import dagster as dg

from amazoniax_dagster.sync.wording import count
from assets.partitions import channels_partitions

if TYPE_CHECKING:
    from amazoniax_dagster.sync.engine import SyncResult

FILES_WELL_FORMED = "files_well_formed"
NOT_EMPTY_WHERE_HISTORY_HAS_DATA = "not_empty_where_history_has_data"
ASSET_KEY = dg.AssetKey("channel_files")

MAX_ROWS = 200
#: channels named in a result's cross-channel summary (the count is always complete)
MAX_NAMED = 20


def _spec(name: str, description: str) -> dg.AssetCheckSpec:
    with warnings.catch_warnings():
        # Partitioned checks are a Dagster preview, chosen knowingly: say so once, here.
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return dg.AssetCheckSpec(
            name, asset=ASSET_KEY, partitions_def=channels_partitions, description=description
        )


CHECK_SPECS = [
    _spec(
        FILES_WELL_FORMED,
        (
            "Every new or updated file is well formed for its type: JSON parses (and matches "
            "the channel's schema), CSV has one column count and UTF-8, XML is well formed, "
            "HTML parses; other types pass by an extension allow-list."
        ),
    ),
    _spec(
        NOT_EMPTY_WHERE_HISTORY_HAS_DATA,
        "The source listed files, or the channel never delivered any before.",
    ),
]


def failing_channels(instance: dg.DagsterInstance) -> dict[str, list[str]]:
    """Check name -> the channels whose latest result of that check failed, sorted."""
    keys = [spec.key for spec in CHECK_SPECS]
    failing: dict[str, list[str]] = {key.name: [] for key in keys}
    for info in instance.event_log_storage.get_asset_check_partition_info(keys):
        if info.partition_key is not None and info.latest_execution_status.value == "FAILED":
            failing[info.check_key.name].append(info.partition_key)
    return {name: sorted(channels) for name, channels in failing.items()}


def check_results(
    result: "SyncResult",
    *,
    channel_id: str,
    policy: str,
    failing: Mapping[str, Sequence[str]] | None = None,
) -> list[dg.AssetCheckResult]:
    """The checks' results, returned with the materialization of ``channel_id``'s partition."""
    return [
        dg.AssetCheckResult(
            check_name=e.check_name,
            passed=e.passed,
            severity=e.severity,
            description=e.description,
            metadata=e.metadata,
        )
        for e in check_evaluations(result, channel_id=channel_id, policy=policy, failing=failing)
    ]


def check_evaluations(
    result: "SyncResult",
    *,
    channel_id: str,
    policy: str,
    failing: Mapping[str, Sequence[str]] | None = None,
) -> list[dg.AssetCheckEvaluation]:
    """The same checks as events, for a run that materializes the channel from another step.
    ``failing``: the channels each check failed for before (see :func:`failing_channels`)."""
    failed_before = failing or {}
    return [
        _well_formed(result, channel_id, policy, failed_before.get(FILES_WELL_FORMED, [])),
        _not_empty(result, channel_id, failed_before.get(NOT_EMPTY_WHERE_HISTORY_HAS_DATA, [])),
    ]


def _evaluation(
    check_name: str,
    channel_id: str,
    *,
    passed: bool,
    description: str,
    metadata: dict[str, Any],
    failed_before: Sequence[str],
) -> dg.AssetCheckEvaluation:
    """One channel's result, with the channels the check fails for now (this one included)."""
    others = [c for c in failed_before if c != channel_id]
    now = sorted(others + ([] if passed else [channel_id]))
    return dg.AssetCheckEvaluation(
        asset_key=ASSET_KEY,
        check_name=check_name,
        passed=passed,
        severity=dg.AssetCheckSeverity.WARN,
        partition=channel_id,
        description=f"{channel_id}: {description}; "
        + (
            f"{count(len(others), 'other channel')} failing: {_named(others)}"
            if others
            else "no other channel failing"
        ),
        metadata={"channel": channel_id}
        | metadata
        | {"channels_failing": len(now), "failing_channels": _named(now) or "(none)"},
    )


def _named(channels: Sequence[str]) -> str:
    more = len(channels) - MAX_NAMED
    return ", ".join(channels[:MAX_NAMED]) + (f" and {more} more" if more > 0 else "")


def _well_formed(
    result: "SyncResult", channel_id: str, policy: str, failed_before: Sequence[str]
) -> dg.AssetCheckEvaluation:
    checks = result.checks
    invalid = [c for c in checks if c.verdict == "invalid"]
    rows = sorted(checks, key=lambda c: (c.verdict != "invalid", c.path))[:MAX_ROWS]
    table = dg.MetadataValue.table(
        records=[
            dg.TableRecord(
                {
                    "file": c.path,
                    "kind": c.kind,
                    "verdict": str(c.verdict),
                    "reason": c.reason or "",
                }
            )
            for c in rows
        ],
        schema=dg.TableSchema(
            columns=[
                dg.TableColumn("file", "string"),
                dg.TableColumn("kind", "string"),
                dg.TableColumn("verdict", "string"),
                dg.TableColumn("reason", "string"),
            ]
        ),
    )
    checked = count(len(checks), "checked file")
    return _evaluation(
        FILES_WELL_FORMED,
        channel_id,
        passed=not invalid,
        description=f"{len(invalid)} of {checked} invalid" if invalid else f"{checked} well formed",
        metadata={
            "checked": len(checks),
            "invalid": len(invalid),
            "skipped": sum(1 for c in checks if c.verdict == "skipped"),
            "invalid_files_policy": policy,
            "files": table,
        },
        failed_before=failed_before,
    )


def _not_empty(
    result: "SyncResult", channel_id: str, failed_before: Sequence[str]
) -> dg.AssetCheckEvaluation:
    listed = len(result.outcomes) + len(result.rejected)
    before = f", {count(result.history_files, 'file')} delivered before"
    return _evaluation(
        NOT_EMPTY_WHERE_HISTORY_HAS_DATA,
        channel_id,
        passed=listed > 0 or result.history_files == 0,
        description=f"{count(listed, 'file')} listed" + (before if result.history_files else ""),
        metadata={"listed": listed, "delivered_before": result.history_files},
        failed_before=failed_before,
    )
