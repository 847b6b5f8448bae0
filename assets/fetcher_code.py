"""``fetcher_code``: a site's fetcher, generated from a browser capture, published to Git only
when it passes validation on every channel mapped to the site.

    capture ─► synthesize ─► validate ─► publish ─► fetch_for_job

New sites and heal requests arrive as runs of this asset (the Kafka sensor routes them here,
tagged with the triggering job); the last op then runs that job's channel with the new
version, so one job ends with one status. Launched from the UI it regenerates the site's
fetcher without running any channel. Outputs between ops hold names and paths only, never
a channel's config: each op reads secrets from the fetcher DB itself.
"""

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import dagster as dg

from amazoniax_dagster.core import run_tags
from assets.channel_files import job_failure, job_metadata
from assets.checks import ASSET_KEY as CHANNEL_FILES
from assets.checks import check_evaluations, failing_channels
from assets.failures import ExpectedFailure
from assets.job_services import job_services
from assets.partitions import sites_partitions
from resources import (
    BedrockResource,
    CodegenSettingsResource,
    FetcherDBResource,
    FetcherRepoResource,
    FetchSettings,
    KafkaResource,
    OutputBucketResource,
    PythonFetchersResource,
)

REPRODUCES_CAPTURE = dg.AssetCheckSpec(
    "reproduces_capture",
    asset="fetcher_code",
    description="Run at once, the candidate fetched every record value the capture saw.",
)
VALIDATED = dg.AssetCheckSpec(
    "validated_on_mapped_channels",
    asset="fetcher_code",
    description=(
        "The candidate ran for every channel mapped to the site and matched each channel's "
        "recent history (count, names, structure); the share passing reached min_success_rate."
    ),
)


def _trigger(context: dg.OpExecutionContext) -> dict[str, str] | None:
    """The job that asked for this run (new site or heal request), if any."""
    tags = context.run.tags
    if run_tags.JOB_ID not in tags or run_tags.CHANNEL_ID not in tags:
        return None
    return {
        "job_id": tags[run_tags.JOB_ID],
        "channel_id": tags[run_tags.CHANNEL_ID],
        "source_type": tags.get(run_tags.SOURCE_TYPE, "html"),
        "flow": tags.get(run_tags.FLOW, "new"),
    }


@contextmanager
def _step(context: dg.OpExecutionContext, fetcher_db: FetcherDBResource) -> Iterator[Any]:
    """Core logs into the run (redacted); an error fails the triggering job in the DB with its
    class, and the op with a redacted text (nothing secret chained into the event log)."""
    from amazoniax_dagster.core.errors import AmazoniaxError
    from amazoniax_dagster.core.logs import forwarded_logs, redacted_log_records
    from amazoniax_dagster.core.redaction import Redactor

    redactor = Redactor()
    trigger = _trigger(context)
    error: tuple[str, str] | None = None
    with ExitStack() as stack:
        stack.enter_context(redacted_log_records(redactor))
        stack.enter_context(forwarded_logs(context.log.log))
        stack.enter_context(forwarded_logs(context.log.log, logger_name="fetcher_codegen"))
        try:
            yield redactor
        except AmazoniaxError as exc:
            error = (exc.error_class, redactor(f"{exc.error_class} error: {exc}"))
    if error is not None:
        error_class, text = error
        if trigger is not None:
            fetcher_db.get_db().finish_job(
                trigger["job_id"],
                status="failed",
                message=text,
                metadata={"error_class": error_class, "site": context.partition_key},
            )
        raise ExpectedFailure(text, {"error_class": error_class}).without_stack()


@dg.op(description="Open the site in Chromium as its channel would; record a HAR and screenshots.")
def capture(
    context: dg.OpExecutionContext,
    fetcher_db: FetcherDBResource,
    fetch_settings: FetchSettings,
    codegen_settings: CodegenSettingsResource,
    bedrock: BedrockResource,
) -> dict[str, Any]:
    from fetcher_codegen import generator

    db = fetcher_db.get_db()
    trigger = _trigger(context)
    if trigger is not None:
        db.start_job(
            job_id=trigger["job_id"],
            channel_id=trigger["channel_id"],
            source_type=trigger["source_type"],
            flow=trigger["flow"],
            run_id=context.run.run_id,
        )
    with _step(context, fetcher_db) as redactor:
        channel_id, config = generator.capture_channel(
            db, context.partition_key, trigger["channel_id"] if trigger else None
        )
        redactor.add(*generator.secret_values(config))
        captured = generator.capture(
            config,
            policy=fetch_settings.network_policy(),
            settings=codegen_settings.settings(),
            llm=bedrock.get_client() if bedrock.settings().enabled else None,
        )
        context.log.info(
            f"captured {len(captured.steps)} steps of {context.partition_key} "
            f"(driven by the {captured.driver})"
        )
        # The capture object holds paths and redacted URLs; its HAR stays on local disk.
        return {"channel_id": channel_id, "capture": captured}


@dg.op(
    out={
        "candidate": dg.Out(dict),
        REPRODUCES_CAPTURE.get_python_identifier(): dg.Out(dg.Nothing),
    },
    description="Write a recipe from the capture (Bedrock first when configured), and prove it.",
)
def synthesize(
    context: dg.OpExecutionContext,
    captured: dict[str, Any],
    fetcher_db: FetcherDBResource,
    fetch_settings: FetchSettings,
    codegen_settings: CodegenSettingsResource,
    bedrock: BedrockResource,
) -> Iterator[Any]:
    from fetcher_codegen import generator

    db = fetcher_db.get_db()
    with _step(context, fetcher_db) as redactor:
        config = generator.channel_config(db, captured["channel_id"])
        redactor.add(*generator.secret_values(config))
        candidate = generator.synthesize(
            context.partition_key,
            config,
            captured["capture"],
            policy=fetch_settings.network_policy(),
            settings=codegen_settings.settings(),
            llm=bedrock.get_client() if bedrock.settings().enabled else None,
        )
        proof = candidate.provenance.get("proof", {})
        driver = candidate.provenance.get("capture", {}).get("driver", "explorer")
        yield dg.AssetCheckResult(
            check_name=REPRODUCES_CAPTURE.name,
            passed=bool(proof.get("ok")),
            metadata={
                "method": candidate.provenance.get("method", "deterministic"),
                "capture_driver": driver,
                "kind": candidate.kind,
                # The names ProofResult.describe() writes.
                "record_values_checked": proof.get("values_checked", 0),
                "record_values_missing": proof.get("values_missing", 0),
                "attempts": candidate.provenance.get("attempts", 1),
            },
        )
        if not candidate.proved:
            generator.fail_proof(candidate)
        yield dg.Output(candidate.to_dict(), "candidate")


@dg.op(
    out={"validated": dg.Out(dict), VALIDATED.get_python_identifier(): dg.Out(dg.Nothing)},
    description="Run the candidate for every channel of the site and compare with their history.",
)
def validate(
    context: dg.OpExecutionContext,
    candidate: dict[str, Any],
    fetcher_db: FetcherDBResource,
    output_bucket: OutputBucketResource,
    fetcher_repo: FetcherRepoResource,
    fetch_settings: FetchSettings,
    codegen_settings: CodegenSettingsResource,
) -> Iterator[Any]:
    from fetcher_codegen import generator

    db = fetcher_db.get_db()
    trigger = _trigger(context)
    with _step(context, fetcher_db):
        found = generator.Candidate.from_dict(candidate)
        report = generator.validate(
            found,
            db=db,
            output=output_bucket.get_bucket(),
            trigger_channel=trigger["channel_id"] if trigger else None,
            policy=fetch_settings.network_policy(),
            settings=codegen_settings.settings(),
        )
        yield dg.AssetCheckResult(
            check_name=VALIDATED.name,
            passed=report.passed,
            metadata={
                "success_rate": report.success_rate,
                "min_success_rate": report.min_success_rate,
                "channels": len(report.verdicts),
                "per_channel": dg.MetadataValue.md(report.table()),
            },
        )
        if not report.passed:
            kept = generator.reject(found, report, db=db, repo=fetcher_repo.get_repo())
            generator.fail_validation(found, report, kept)
        yield dg.Output(found.with_validation(report).to_dict(), "validated")


@dg.op(description="Push the candidate to Git as the next version and map every channel to it.")
def publish(
    context: dg.OpExecutionContext,
    validated: dict[str, Any],
    fetcher_db: FetcherDBResource,
    fetcher_repo: FetcherRepoResource,
) -> dict[str, Any]:
    from fetcher_codegen import generator

    with _step(context, fetcher_db):
        version = generator.publish(
            generator.Candidate.from_dict(validated),
            db=fetcher_db.get_db(),
            repo=fetcher_repo.get_repo(),
        )
        context.log.info(f"published {version.fetcher_name}")
        return {"fetcher_name": version.fetcher_name, "version": version.version}


@dg.op(description="Run the job that asked for this fetcher, with the new version.")
def fetch_for_job(
    context: dg.OpExecutionContext,
    published: dict[str, Any],
    fetcher_db: FetcherDBResource,
    output_bucket: OutputBucketResource,
    kafka: KafkaResource,
    fetch_settings: FetchSettings,
    fetcher_repo: FetcherRepoResource,
    python_fetchers: PythonFetchersResource,
) -> dg.Output[dict[str, Any]]:
    trigger = _trigger(context)
    metadata: dict[str, Any] = {
        "fetcher": published["fetcher_name"],
        "version": published["version"],
    }
    if trigger is None:
        return dg.Output(published, metadata=metadata)

    from amazoniax_dagster.core.messages import Flow
    from amazoniax_dagster.jobs.channel_job import execute
    from amazoniax_dagster.jobs.services import JobRequest

    request = JobRequest(
        job_id=trigger["job_id"],
        channel_id=trigger["channel_id"],
        flow=Flow.EXISTING,  # the channel is mapped to the new version now
        run_id=context.run.run_id,
    )
    services = job_services(
        context,
        fetcher_db=fetcher_db,
        output_bucket=output_bucket,
        kafka=kafka,
        fetch_settings=fetch_settings,
        fetcher_repo=fetcher_repo,
        python_fetchers=python_fetchers,
    )
    outcome = execute(request, services, emit=context.log.log)
    if outcome.result is None:
        raise job_failure(outcome)
    # The channel's files are materialized by this run too: the same metadata and checks as a
    # run of channel_files itself.
    context.log_event(
        dg.AssetMaterialization(
            asset_key=CHANNEL_FILES,
            partition=request.channel_id,
            metadata=job_metadata(outcome) | {"fetcher": published["fetcher_name"]},
        )
    )
    for evaluation in check_evaluations(
        outcome.result,
        channel_id=request.channel_id,
        policy=outcome.result.invalid_files_policy,
        failing=failing_channels(context.instance),
    ):
        # log_event handles check evaluations at runtime; its UserEvent hint predates them.
        context.log_event(evaluation)  # type: ignore[arg-type]
    return dg.Output(published, metadata=metadata | {"job_id": trigger["job_id"]})


@dg.graph_asset(
    partitions_def=sites_partitions,
    check_specs=[REPRODUCES_CAPTURE, VALIDATED],
    group_name="fetchers",
    kinds={"python", "git"},
    description=(
        "A site's fetcher: captured in Chromium, written as a recipe (deterministically, or "
        "with Bedrock when configured), validated on every channel of the site against "
        "their history, and published to Git as <site>_fetcher_vN."
    ),
)
def fetcher_code() -> Any:
    candidate, reproduced = synthesize(capture())
    validated, checked = validate(candidate)
    return {
        "result": fetch_for_job(publish(validated)),
        REPRODUCES_CAPTURE.get_python_identifier(): reproduced,
        VALIDATED.get_python_identifier(): checked,
    }
