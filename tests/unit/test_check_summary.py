"""Each check result of ``channel_files`` names its channel and the other channels the check
fails for, so the asset's latest result does not hide a failing channel."""

import dagster as dg

from amazoniax_dagster.sync.engine import Classification
from assets.checks import (
    ASSET_KEY,
    CHECK_SPECS,
    FILES_WELL_FORMED,
    NOT_EMPTY_WHERE_HISTORY_HAS_DATA,
    check_evaluations,
    failing_channels,
)
from assets.partitions import CHANNELS, channels_partitions
from tests.unit.test_wording import result_of


def by_name(evaluations: list[dg.AssetCheckEvaluation]) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in evaluations}


def test_a_channel_alone_says_so_in_the_same_words() -> None:
    one_bad = result_of([("a.json", Classification.NEW, True, False)])
    one_bad.history_files = 4
    checks = by_name(check_evaluations(one_bad, channel_id="ch", policy="flag"))
    well_formed = checks[FILES_WELL_FORMED]
    assert well_formed.description == "ch: 1 of 1 checked file invalid; no other channel failing"
    assert well_formed.metadata["failing_channels"].value == "ch"
    assert well_formed.metadata["channels_failing"].value == 1
    not_empty = checks[NOT_EMPTY_WHERE_HISTORY_HAS_DATA]
    assert not_empty.description == (
        "ch: 1 file listed, 4 files delivered before; no other channel failing"
    )
    assert not_empty.metadata["failing_channels"].value == "(none)"


def test_a_passing_channel_names_the_channels_that_still_fail() -> None:
    good = result_of([("a.csv", Classification.UNCHANGED, False, False)])
    failing = {FILES_WELL_FORMED: ["north", "south"], NOT_EMPTY_WHERE_HISTORY_HAS_DATA: []}
    checks = by_name(check_evaluations(good, channel_id="north", policy="flag", failing=failing))
    well_formed = checks[FILES_WELL_FORMED]
    assert well_formed.passed
    # north passes now: only south is still failing.
    assert well_formed.description == (
        "north: 0 checked files well formed; 1 other channel failing: south"
    )
    assert well_formed.metadata["failing_channels"].value == "south"
    assert checks[NOT_EMPTY_WHERE_HISTORY_HAS_DATA].metadata["channels_failing"].value == 0


def test_a_long_list_of_failing_channels_is_counted_in_full_and_named_in_part() -> None:
    good = result_of([])
    failing = {FILES_WELL_FORMED: [f"c{i:02d}" for i in range(25)]}
    well_formed = by_name(check_evaluations(good, channel_id="x", policy="flag", failing=failing))[
        FILES_WELL_FORMED
    ]
    assert well_formed.metadata["channels_failing"].value == 25
    assert well_formed.metadata["failing_channels"].value.endswith("c19 and 5 more")
    assert "25 other channels failing: c00, c01" in (well_formed.description or "")


def test_failing_channels_reads_each_channels_latest_result_from_the_instance() -> None:
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(CHANNELS, ["north", "south", "west"])
    passes: dict[str, bool] = {}

    @dg.asset(name=ASSET_KEY.path[-1], partitions_def=channels_partitions, check_specs=CHECK_SPECS)
    def stand_in(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        passed = passes[context.partition_key]
        return dg.MaterializeResult(
            check_results=[
                dg.AssetCheckResult(check_name=FILES_WELL_FORMED, passed=passed),
                dg.AssetCheckResult(check_name=NOT_EMPTY_WHERE_HISTORY_HAS_DATA, passed=True),
            ]
        )

    for channel, passed in [("south", False), ("west", False), ("north", True), ("west", True)]:
        passes[channel] = passed  # west fails, then is fixed
        assert dg.materialize([stand_in], instance=instance, partition_key=channel).success
    assert failing_channels(instance) == {
        FILES_WELL_FORMED: ["south"],
        NOT_EMPTY_WHERE_HISTORY_HAS_DATA: [],
    }
