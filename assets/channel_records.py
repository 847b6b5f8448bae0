"""``channel_records``: the records of a channel's delivered files, in ``unified_items``.

Materialised by declarative automation after each ``channel_files`` run of the partition (and
from the UI, for a launch or a backfill). Each run loads the files not loaded yet, so a run
stopped half-way is finished by the next one.
"""

import dagster as dg

from assets.channel_files import channel_files
from assets.failures import ExpectedFailure
from assets.partitions import channels_partitions
from resources import FetcherDBResource, OutputBucketResource

ALL_LOADED = "every_record_loaded_or_counted"
UNIQUE_IDS = "one_row_per_external_id"
FIELDS_FOUND = "mapped_fields_found"

RECORD_CHECKS = [
    dg.AssetCheckSpec(
        ALL_LOADED,
        asset="channel_records",
        description="Every extracted record was loaded (inserted, updated, unchanged) or failed.",
    ),
    dg.AssetCheckSpec(
        UNIQUE_IDS,
        asset="channel_records",
        description="No external_id appears twice for the channel in unified_items.",
    ),
    dg.AssetCheckSpec(
        FIELDS_FOUND,
        asset="channel_records",
        description=(
            "Share of the channel's items with a title and a timestamp: must be 100 % for the "
            "fields the channel's records mapping marks required."
        ),
    ),
]


@dg.asset(
    partitions_def=channels_partitions,
    deps=[channel_files],
    kinds={"postgres", "python"},
    group_name="records",
    check_specs=RECORD_CHECKS,
    automation_condition=dg.AutomationCondition.eager(),
    description=(
        "Records of the channel's files (JSON, JSONL, CSV/TSV, XML, RSS/Atom) normalised into "
        "unified_items: one row per (source_type, channel, external_id), rewritten only when "
        "the record changed."
    ),
)
def channel_records(
    context: dg.AssetExecutionContext,
    fetcher_db: FetcherDBResource,
    output_bucket: OutputBucketResource,
) -> dg.MaterializeResult:
    from pydantic import ValidationError

    from amazoniax_dagster.records.engine import load_files, pending_files
    from amazoniax_dagster.records.mapping import RecordMapping
    from amazoniax_dagster.records.stats import channel_quality

    channel_id = context.partition_key
    db = fetcher_db.get_db()
    stored = db.get_channels([channel_id]).get(channel_id)
    if stored is None:
        raise ExpectedFailure(f"channel {channel_id} has no stored config").without_stack()
    try:
        mapping = RecordMapping.model_validate(stored.config.get("records") or {})
    except ValidationError as exc:
        raise ExpectedFailure(
            f"channel {channel_id}: invalid records mapping: {exc.errors()[:3]}"
        ).without_stack() from None
    bucket = output_bucket.get_bucket(max_connections=4)
    files = pending_files(db.database, channel_id)
    result = load_files(
        db.database,
        bucket,
        files,
        channel_id=channel_id,
        source_type=stored.source_type,
        mapping=mapping,
        on_file=lambda key, c: context.log.info(
            f"{key}: {c.extracted} records, {c.inserted} new, {c.updated} updated, "
            f"{c.failed} failed"
        ),
    )
    counts = result.counts
    quality = channel_quality(db.database, channel_id)
    status = result.status
    return dg.MaterializeResult(
        metadata={
            "amazoniax_status": status,
            "files": result.files,
            "other_files": result.other,
            "unreadable_files": len(result.unreadable),
            "records_extracted": counts.extracted,
            "records_inserted": counts.inserted,
            "records_updated": counts.updated,
            "records_unchanged": counts.unchanged,
            "records_failed": counts.failed,
            "first_errors": dg.MetadataValue.md(
                "\n".join(f"- {e}" for e in [*result.unreadable, *counts.errors][:20]) or "none"
            ),
            "items_in_table": quality.items,
        },
        tags={"amazoniax_status": status},
        check_results=[
            dg.AssetCheckResult(
                check_name=ALL_LOADED,
                passed=counts.extracted == counts.loaded + counts.failed,
                metadata={
                    "extracted": counts.extracted,
                    "loaded": counts.loaded,
                    "failed": counts.failed,
                },
            ),
            dg.AssetCheckResult(
                check_name=UNIQUE_IDS,
                passed=quality.duplicate_ids == 0,
                metadata={"duplicate_ids": quality.duplicate_ids},
            ),
            dg.AssetCheckResult(
                check_name=FIELDS_FOUND,
                passed=all(
                    quality.share(field) == 1.0
                    for field in mapping.required
                    if field in ("title", "published_at")
                ),
                severity=dg.AssetCheckSeverity.WARN,
                metadata={
                    "with_title": quality.share("title"),
                    "with_published_at": quality.share("published_at"),
                },
            ),
        ],
    )
