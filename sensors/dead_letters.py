"""``fetcher_dead_letters``: the job messages intake refused, where an operator sees them.

The dead-letter topic is an asset the Kafka sensor writes to. Each sensor tick that
dead-letters messages records an observation of it: how many this tick, how many since the
sensor's cursor began, the latest reason, and a table of the letters (no secrets: reasons are
redacted and the original message stays on the topic). The asset page shows the latest at a
glance and plots the counts over time; the tick's cursor carries the running total too.
"""

from typing import TYPE_CHECKING

import dagster as dg

from amazoniax_dagster.sync.wording import count

if TYPE_CHECKING:
    from amazoniax_dagster.core.messages import DeadLetter

DEAD_LETTERS = dg.AssetKey("fetcher_dead_letters")
#: rows kept in one observation's table (a tick reads a bounded batch anyway)
MAX_ROWS = 100

dead_letters_asset = dg.AssetSpec(
    DEAD_LETTERS,
    group_name="fetching",
    kinds={"kafka"},
    description=(
        "Job messages refused at intake (invalid, unsafe or unknown), as sent to the "
        "dead-letter topic amazoniax_fetcher_dlq; kafka_fetcher_sensor records an observation "
        "for every tick that refused any."
    ),
)

_COLUMNS = dg.TableSchema(
    columns=[
        dg.TableColumn("offset", "string", description="partition:offset on the job topic"),
        dg.TableColumn("job_id", "string"),
        dg.TableColumn("channel_id", "string"),
        dg.TableColumn("error_class", "string"),
        dg.TableColumn("reason", "string"),
    ]
)


def describe(letters: "list[DeadLetter]") -> str:
    """``2 messages dead-lettered; latest: <reason>``."""
    return f"{count(len(letters), 'message')} dead-lettered; latest: {letters[-1].reason}"


def dead_letters_observation(
    letters: "list[DeadLetter]", *, total: int, topic: str
) -> dg.AssetObservation:
    """What one tick dead-lettered to ``topic``, for the asset's page (``letters`` is not
    empty); ``total`` counts since the sensor's cursor began."""
    rows = [
        dg.TableRecord(
            {
                "offset": f"{letter.partition}:{letter.offset}",
                "job_id": letter.job_id or "?",
                "channel_id": letter.channel_id or "?",
                "error_class": letter.error_class,
                "reason": letter.reason,
            }
        )
        for letter in letters[-MAX_ROWS:]
    ]
    return dg.AssetObservation(
        asset_key=DEAD_LETTERS,
        description=describe(letters),
        metadata={
            "dead_lettered": len(letters),
            "dead_letters_total": total,
            "topic": topic,
            "latest_reason": letters[-1].reason,
            "dead_letters": dg.MetadataValue.table(rows, schema=_COLUMNS),
        },
    )
