"""Asset checks of ``channel_files``, reported with every successful materialization."""

from typing import TYPE_CHECKING

import dagster as dg

if TYPE_CHECKING:
    from amazoniax_dagster.sync.engine import SyncResult

FILES_WELL_FORMED = "files_well_formed"
NOT_EMPTY_WHERE_HISTORY_HAS_DATA = "not_empty_where_history_has_data"

MAX_ROWS = 200

CHECK_SPECS = [
    dg.AssetCheckSpec(
        FILES_WELL_FORMED,
        asset="channel_files",
        description=(
            "Every new or updated file is well formed for its type: JSON parses (and matches "
            "the channel's schema), CSV has one column count and UTF-8, XML is well formed, "
            "HTML parses; other types pass by an extension allow-list."
        ),
    ),
    dg.AssetCheckSpec(
        NOT_EMPTY_WHERE_HISTORY_HAS_DATA,
        asset="channel_files",
        description="The source listed files, or the channel never delivered any before.",
    ),
]


def check_results(result: "SyncResult", *, policy: str) -> list[dg.AssetCheckResult]:
    return [_well_formed(result, policy), _not_empty(result)]


def _well_formed(result: "SyncResult", policy: str) -> dg.AssetCheckResult:
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
    return dg.AssetCheckResult(
        check_name=FILES_WELL_FORMED,
        passed=not invalid,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "checked": len(checks),
            "invalid": len(invalid),
            "skipped": sum(1 for c in checks if c.verdict == "skipped"),
            "invalid_files_policy": policy,
            "files": table,
        },
    )


def _not_empty(result: "SyncResult") -> dg.AssetCheckResult:
    listed = len(result.outcomes) + len(result.rejected)
    return dg.AssetCheckResult(
        check_name=NOT_EMPTY_WHERE_HISTORY_HAS_DATA,
        passed=listed > 0 or result.history_files == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"listed": listed, "delivered_before": result.history_files},
    )
