"""``amazoniax``: the command line.

amazoniax dev          the whole product on the embedded local stack, with a demo channel
amazoniax stack up     only the local stack (Kafka, S3, PostgreSQL), until Ctrl-C
amazoniax db upgrade   apply the fetcher DB migrations
amazoniax secret-key   print a new key for AMAZONIAX_SECRET_KEY

Operating a deployment (settings from AMAZONIAX_* or --env-file):

amazoniax submit FILE       send a batch of jobs and follow them to the end
amazoniax channels import   store channels from a registry file (secrets sealed)
amazoniax channels list     the stored channels (ids and source types only)
amazoniax channels checkpoint ID [--reset]   a channel's incremental checkpoint
amazoniax doctor            is every service reachable and set up?
amazoniax status            jobs by state and the most recent failures
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

import click

from amazoniax_dagster.cli.checkpoints import checkpoint
from amazoniax_dagster.cli.local_stack import dev, stack
from amazoniax_dagster.cli.options import (
    EXIT_USAGE,
    _fail,
    _settings,
    env_file_option,
    open_fetcher_db,
    open_submit_backend,
)

log = logging.getLogger("amazoniax_dagster.cli.main")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log debug details.")
def main(verbose: bool) -> None:
    """amazoniax: fetch channel files, de-duplicate them, hand them to parsers."""
    # A shell that starts us in the background leaves SIGINT ignored, and children inherit
    # that: restore it so Ctrl-C / SIGINT always stops the stack and dagster dev.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )


main.add_command(dev)
main.add_command(stack)


@main.group()
def db() -> None:
    """The fetcher DB."""


@db.command("upgrade")
@click.option("--database-url", envvar="AMAZONIAX_DATABASE_URL", required=True)
def db_upgrade(database_url: str) -> None:
    """Apply the migrations (AMAZONIAX_DATABASE_URL)."""
    from amazoniax_dagster.db import migrate

    migrate.upgrade_database(database_url)
    click.echo("fetcher DB is at the latest migration")


@main.command("secret-key")
def secret_key() -> None:
    """Print a new Fernet key for AMAZONIAX_SECRET_KEY."""
    from amazoniax_dagster.core.sealing import SecretCipher

    click.echo(SecretCipher.generate_key())


# --------------------------------------------------------------------------- operating


@main.command(short_help="Send a batch of jobs and follow them to the end.")
@click.argument("batch_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--max-workers",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Jobs in flight at once; the next is sent when one of them reported its status.",
)
@click.option(
    "--wait/--no-wait",
    default=True,
    show_default=True,
    help="Follow the jobs until each reported its status, or return once all are sent.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="SECONDS",
    help="Stop waiting after this long (exit code 3). Default: no limit.",
)
@env_file_option
def submit(
    batch_file: Path,
    max_workers: int,
    wait: bool,
    timeout: float | None,
    env_file: Path | None,
) -> None:
    """Send a batch of jobs to amazoniax_fetcher and follow them to the end.

    BATCH_FILE is JSON: a list of job messages, as on the topic, or an object with a "jobs"
    list whose entries may name the channel by "service_id" and leave out source_type and
    config (they come from the channel registry, see `amazoniax channels import`). A job
    without job_id gets batch-<timestamp>-<n>. Every job is validated before the first one
    is sent.

    \b
    Exit codes:
      0  every job succeeded (or, with --no-wait, every job was sent)
      1  a job failed, or Kafka failed while sending or following
      2  invalid batch or settings: nothing was sent
      3  --timeout passed before every job reported its status
    """
    from amazoniax_dagster.cli.batch_file import (
        BatchError,
        batch_redactor,
        prepare_batch,
        read_batch_file,
    )
    from amazoniax_dagster.cli.output import SubmitProgress, make_console, summary_table
    from amazoniax_dagster.cli.submit import EXIT_INVALID, submit_jobs
    from amazoniax_dagster.core.errors import AmazoniaxError

    settings = _settings(env_file)
    db = open_fetcher_db(settings) if settings.database_url else None
    try:
        try:
            jobs = prepare_batch(
                read_batch_file(batch_file),
                source_types=db.channel_source_types if db is not None else None,
                known_jobs=db.job_statuses if db is not None else None,
            )
        except BatchError as exc:
            click.echo("error: the batch was not sent:", err=True)
            lines = [str(e) for e in exc.errors] or [str(exc)]
            for line in lines:
                click.echo(f"  {line}", err=True)
            raise SystemExit(EXIT_INVALID) from None
        except AmazoniaxError as exc:  # the fetcher DB could not be read
            _fail(f"the batch was not sent: {exc}", EXIT_INVALID)
        console = make_console()
        redact = batch_redactor(jobs)
        backend = open_submit_backend(settings, db)
        try:
            if wait or len(jobs) > max_workers:
                backend.start()
        except AmazoniaxError as exc:
            _fail(f"the batch was not sent: {redact(str(exc))}", 1)
        console.print(f"submitting {len(jobs)} job(s) from {batch_file.name}", markup=False)
        with SubmitProgress(console, len(jobs)) as progress:
            report = submit_jobs(
                jobs, backend, max_workers=max_workers, wait=wait, timeout=timeout,
                on_update=progress,
            )  # fmt: skip
        if wait or report.error:
            console.print(summary_table(report, redact, width=console.width))
        else:
            sent = report.counts().submitted
            console.print(f"sent {sent} job(s): {', '.join(j.job_id for j in report.jobs)}")
        if report.error:
            click.echo(f"error: {redact(report.error)}", err=True)
        elif report.timed_out:
            click.echo(f"error: timed out after {timeout:g} s", err=True)
        raise SystemExit(report.exit_code)
    finally:
        if db is not None:
            db.close()


@main.group()
def channels() -> None:
    """The channel registry in the fetcher DB."""


channels.add_command(checkpoint)


@channels.command("import", short_help="Store channels from a registry file (secrets sealed).")
@click.argument("registry_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--skip-invalid",
    is_flag=True,
    help="Store the valid channels even when others are invalid (they are listed).",
)
@click.option("--dry-run", is_flag=True, help="Validate only; store nothing.")
@env_file_option
def channels_import(
    registry_file: Path, skip_invalid: bool, dry_run: bool, env_file: Path | None
) -> None:
    """Store the channels of a registry file (YAML or JSON), secrets sealed.

    \b
    channels:
      s3_financial_data:
        source_type: s3
        config: {bucket: ..., remote_path: ..., access_key: ..., secret_access_key: ...}

    Every entry is validated with its source type's config model first; nothing is stored
    when one is invalid, unless --skip-invalid. Exit code 2 when entries are invalid.
    """
    from amazoniax_dagster.cli.channel_registry import (
        RegistryError,
        import_registry,
        parse_registry,
        read_registry_file,
    )
    from amazoniax_dagster.core.errors import AmazoniaxError

    settings = _settings(env_file)
    try:
        registry = parse_registry(read_registry_file(registry_file))
    except RegistryError as exc:
        _fail(str(exc), EXIT_USAGE)
    for issue in registry.issues:
        click.echo(f"invalid: {issue}", err=True)
    if registry.issues and not skip_invalid:
        _fail(f"{len(registry.issues)} invalid channel(s); nothing was stored", EXIT_USAGE)
    if dry_run:
        click.echo(f"{len(registry.entries)} valid channel(s); nothing stored (--dry-run)")
        raise SystemExit(EXIT_USAGE if registry.issues else 0)
    db = open_fetcher_db(settings, needs_key=True)
    try:
        result = import_registry(registry, db, skip_invalid=skip_invalid)
    except AmazoniaxError as exc:
        _fail(str(exc))
    finally:
        db.close()
    click.echo(
        f"created {len(result.created)}, updated {len(result.updated)}"
        + (f", skipped {len(result.skipped)} invalid" if result.skipped else "")
    )
    raise SystemExit(EXIT_USAGE if result.skipped else 0)


@channels.command("list", short_help="The stored channels: ids and source types.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@env_file_option
def channels_list(as_json: bool, env_file: Path | None) -> None:
    """The stored channels: ids and source types (configs are never shown)."""
    import json

    from amazoniax_dagster.core.errors import AmazoniaxError

    db = open_fetcher_db(_settings(env_file))
    try:
        found = db.list_channels()
    except AmazoniaxError as exc:
        _fail(str(exc))
    finally:
        db.close()
    if as_json:
        rows = [
            {
                "channel_id": c.channel_id,
                "source_type": c.source_type,
                "updated_at": c.updated_at.isoformat(),
            }
            for c in found
        ]
        click.echo(json.dumps(rows, indent=2))
        return
    width = max((len(c.channel_id) for c in found), default=10)
    for c in found:
        stamp = c.updated_at.strftime("%Y-%m-%d %H:%M")
        click.echo(f"{c.channel_id:<{width}}  {c.source_type:<5}  updated {stamp}")
    click.echo(f"{len(found)} channel(s)")


@main.command(short_help="Serve the read API: /health, /data, /stats, /metrics, /docs.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@env_file_option
def api(host: str, port: int, env_file: Path | None) -> None:
    """Serve the read API (FastAPI on uvicorn). A bearer token is required on everything but
    /health and the docs when AMAZONIAX_API_TOKEN is set."""
    import uvicorn

    from amazoniax_dagster.clients.output_bucket import OutputSettings
    from amazoniax_dagster.records.api.app import ApiSettings, create_app

    settings = _settings(env_file)
    token = os.environ.get("AMAZONIAX_API_TOKEN", "").strip() or None
    output = (
        OutputSettings(
            bucket=settings.output_bucket,
            endpoint_url=settings.s3_endpoint_url,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key,
            region=settings.s3_region,
        )
        if settings.output_bucket
        else None
    )
    app = create_app(
        ApiSettings(
            database_url=settings.require("database_url"),
            kafka_bootstrap=settings.kafka_bootstrap,
            output=output,
            token=token,
        )
    )
    click.echo(f"read API: http://{host}:{port}/docs")
    uvicorn.run(app, host=host, port=port, log_level="warning")


@main.command(short_help="Check that every service is reachable and set up.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of lines.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1, max=5.0),
    default=5.0,
    show_default=True,
    metavar="SECONDS",
    help="Time each check may take (at most 5 s).",
)
@env_file_option
def doctor(as_json: bool, timeout: float, env_file: Path | None) -> None:
    """Check that every service the fetcher needs is reachable and set up.

    \b
    kafka             metadata, and the four amazoniax_* topics exist
    s3 output bucket  one key listed, with the product's S3 client and credentials
    fetcher db        connects, and the migrations are at head
    secret key        AMAZONIAX_SECRET_KEY is a valid Fernet key
    bedrock           reachable, when AMAZONIAX_BEDROCK_* is set
    fetchers repo     git answers, when AMAZONIAX_FETCHERS_REMOTE_URL is set
    ftp/sftp hosts    TCP connect to each server of the stored channels

    Exit code 1 when a check fails.
    """
    import json

    from amazoniax_dagster.cli.doctor import run_doctor
    from amazoniax_dagster.cli.output import doctor_lines

    report = run_doctor(_settings(env_file), timeout=timeout)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        for line in doctor_lines(report):
            click.echo(line)
    raise SystemExit(0 if report.ok else 1)


@main.command(short_help="Jobs by state, queue size and the recent failures.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.option(
    "--failures",
    type=click.IntRange(min=0, max=1000),
    default=10,
    show_default=True,
    help="How many recent failures to list.",
)
@env_file_option
def status(as_json: bool, failures: int, env_file: Path | None) -> None:
    """Jobs by state (queued, running, success, failed, requires_human_review), the queue
    size and the most recent failures, from the fetcher DB."""
    import json

    from amazoniax_dagster.cli.job_status import jobs_overview
    from amazoniax_dagster.cli.output import (
        dead_letters_table,
        failures_table,
        make_console,
        status_table,
    )
    from amazoniax_dagster.core.errors import AmazoniaxError

    db = open_fetcher_db(_settings(env_file))
    try:
        overview = jobs_overview(db, failures=failures)
    except AmazoniaxError as exc:
        _fail(str(exc))
    finally:
        db.close()
    if as_json:
        click.echo(json.dumps(overview.to_json(), indent=2))
        return
    console = make_console()
    console.print(status_table(overview))
    console.print(f"queue size: {overview.queue_size}")
    if overview.recent_failures:
        console.print(failures_table(overview))
    else:
        console.print("no failed jobs")
    if overview.dead_letters:
        console.print(dead_letters_table(overview))
    else:
        console.print("no refused messages")


if __name__ == "__main__":
    main()
