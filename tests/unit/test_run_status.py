"""Which finished runs publish an amazoniax_status message."""

import dagster as dg
import pytest

from sensors.run_status import is_channel_run


@pytest.mark.parametrize(
    ("run", "reported"),
    [
        # started by the Kafka or schedule sensor
        (dg.DagsterRun(job_name="channel_files_job", tags={"amazoniax/channel_id": "c"}), True),
        # launched from the Jobs page (a partition, no tags)
        (dg.DagsterRun(job_name="channel_files_job", tags={"dagster/partition": "c"}), True),
        # launched or backfilled from the asset page: Dagster's own asset job
        (
            dg.DagsterRun(
                job_name="__ASSET_JOB",
                tags={"dagster/partition": "c"},
                asset_selection=frozenset({dg.AssetKey("channel_files")}),
            ),
            True,
        ),
        # another partitioned asset (e.g. per site) is not a channel run
        (
            dg.DagsterRun(
                job_name="__ASSET_JOB",
                tags={"dagster/partition": "example.com"},
                asset_selection=frozenset({dg.AssetKey("fetcher_code")}),
            ),
            False,
        ),
    ],
)
def test_which_runs_are_channel_runs(run: dg.DagsterRun, reported: bool) -> None:
    assert is_channel_run(run) is reported
