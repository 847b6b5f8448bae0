"""Asset checks of ``channel_files``, reported with every successful materialization.

The checks are partitioned like the asset: the UI shows each channel's latest result, and a
failing channel stays visible whichever channel ran last.
"""

import warnings
from typing import TYPE_CHECKING

import dagster as dg

from assets.partitions import channels_partitions

if TYPE_CHECKING:
    from amazoniax_dagster.sync.engine import SyncResult

FILES_WELL_FORMED = "files_well_formed"
NOT_EMPTY_WHERE_HISTORY_HAS_DATA = "not_empty_where_history_has_data"
ASSET_KEY = dg.AssetKey("channel_files")

MAX_ROWS = 200


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


def check_results(
    result: "SyncResult", *, channel_id: str, policy: str
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
        for e in check_evaluations(result, channel_id=channel_id, policy=policy)
    ]


def check_evaluations(
    result: "SyncResult", *, channel_id: str, policy: str
) -> list[dg.AssetCheckEvaluation]:
    """The same checks as events, for a run that materializes the channel from another step."""
    return [_well_formed(result, channel_id, policy), _not_empty(result, channel_id)]


def _well_formed(result: "SyncResult", channel_id: str, policy: str) -> dg.AssetCheckEvaluation:
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
    return dg.AssetCheckEvaluation(
        asset_key=ASSET_KEY,
        check_name=FILES_WELL_FORMED,
        passed=not invalid,
        severity=dg.AssetCheckSeverity.WARN,
        partition=channel_id,
        description=(
            f"{channel_id}: {len(invalid)} of {len(checks)} checked files invalid"
            if invalid
            else f"{channel_id}: {len(checks)} checked files well formed"
        ),
        metadata={
            "channel": channel_id,
            "checked": len(checks),
            "invalid": len(invalid),
            "skipped": sum(1 for c in checks if c.verdict == "skipped"),
            "invalid_files_policy": policy,
            "files": table,
        },
    )


def _not_empty(result: "SyncResult", channel_id: str) -> dg.AssetCheckEvaluation:
    listed = len(result.outcomes) + len(result.rejected)
    return dg.AssetCheckEvaluation(
        asset_key=ASSET_KEY,
        check_name=NOT_EMPTY_WHERE_HISTORY_HAS_DATA,
        passed=listed > 0 or result.history_files == 0,
        severity=dg.AssetCheckSeverity.WARN,
        partition=channel_id,
        metadata={
            "channel": channel_id,
            "listed": listed,
            "delivered_before": result.history_files,
        },
    )
