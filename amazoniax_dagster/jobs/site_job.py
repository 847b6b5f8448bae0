"""An html/api job: choose the site's fetcher, run it into the job's folder, then sync that
folder like any other source (hash, de-duplicate, validate, upload, record, announce).

Transient failures retry the same fetcher (the channel's ``max_simple_retries``); a changed
site or a broken fetcher fails the job, and the failure status requests heal mode
(``heal.after_failure``). A fetch that finds nothing for a channel whose history has files
(or only pages without records), or one far below what the channel's recent jobs fetched,
is a changed site too: a working fetcher of a live site does not come back empty or short.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from amazoniax_dagster.core.checkpoints import Checkpoint
from amazoniax_dagster.core.errors import SiteChangedError
from amazoniax_dagster.core.messages import SourceType, WebSourceConfig
from amazoniax_dagster.core.sites import structure_id
from amazoniax_dagster.fetchers.base import FetchContext, FetchReport, LoadedFetcher
from amazoniax_dagster.fetchers.routing import GenerationRequest, choose_fetcher
from amazoniax_dagster.jobs.file_job import retry_policy, sync_source
from amazoniax_dagster.jobs.services import JobRequest, JobServices
from amazoniax_dagster.sources.folder import FolderSource
from amazoniax_dagster.sync.engine import SyncResult
from amazoniax_dagster.sync.wording import count

log = logging.getLogger(__name__)

#: A fetch below this share of the least the channel fetched recently is a changed site.
SHRINK_LIMIT = 0.5
HISTORY_WEEKS = 2


def fetch_site(
    request: JobRequest, source_type: SourceType, config: WebSourceConfig, services: JobServices
) -> SyncResult:
    services.policy.check_url(config.url)
    site = structure_id(config.url)
    wanted = GenerationRequest(
        site=site,
        channel_id=request.channel_id,
        job_id=request.job_id,
        source_type=source_type,
        config=config,
    )
    loaded = choose_fetcher(
        wanted, request.flow, services.catalog(), services.generator, services.policy
    )
    log.info("site %s: running %s (%s, %s)", site, loaded.name, loaded.fetcher.kind, loaded.how)
    policy = retry_policy(request, services)
    checkpoint = services.db.checkpoint(request.channel_id)
    with tempfile.TemporaryDirectory(prefix=f"fetch-{request.job_id}-") as tmp:
        out_dir = Path(tmp)
        context = FetchContext(
            config=config,
            out_dir=out_dir,
            policy=services.policy,
            limits=services.fetch_limits,
            max_retries=policy.retries,
            retry_delay_seconds=policy.delay_seconds,
            python_launcher=services.python_launcher,
            python_limits=services.python_limits,
            checkpoint=checkpoint,
        )
        if loaded.fetcher.kind == "recipe":  # the recipe engine retries each request itself
            report = _fetch_fresh(loaded, context)
        else:
            report = policy.call(
                lambda: _fetch_fresh(loaded, context), what=f"run {loaded.name} on {site}"
            )
        if report.records is None:
            report.records = csv_rows(out_dir)
        if not report.incremental:  # after a checkpoint, a short fetch is a quiet day
            _check_against_history(request, report, services, loaded)
        result = sync_source(
            request,
            FolderSource(out_dir),
            services,
            policy,
            config,
            trust_listing=False,  # fetched files are always hashed: no listing to trust
            extra={
                "site": site,
                "fetcher": loaded.name,
                "fetcher_kind": loaded.fetcher.kind,
                "fetcher_how": loaded.how,
                "requests": report.requests,
                "pages": report.pages,
                "records": report.records,
                "fetch_warnings": len(report.warnings),
            }
            | checkpoint_metadata(checkpoint, report),
            # Stored with the job's success, never by a failed or killed job.
            checkpoint=report.checkpoint if report.checkpoint != checkpoint else None,
        )
    return result


def checkpoint_metadata(before: Checkpoint | None, report: FetchReport) -> dict[str, str]:
    """The checkpoint the fetch started after and the one stored when the job succeeds."""
    if report.checkpoint is None and before is None:
        return {}
    after = report.checkpoint or before
    return {
        "checkpoint_started_after": before.value if before else "(none)",
        "checkpoint": after.value if after else "(none)",
    }


def _fetch_fresh(loaded: LoadedFetcher, context: FetchContext) -> FetchReport:
    """One attempt into an empty folder, so a retry never mixes two attempts' files."""
    for child in context.out_dir.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    return loaded.fetcher.fetch(context)


def _check_against_history(
    request: JobRequest, report: FetchReport, services: JobServices, loaded: LoadedFetcher
) -> None:
    """A fetch far below what the channel's recent jobs fetched is a changed site, not a
    quiet day: an endpoint that ignores the old page parameter returns page 1 forever, which
    the paginator ends as a repeated page, and the job would deliver a fraction silently."""
    recent = services.db.recent_outputs(
        request.channel_id,
        since=datetime.now(UTC) - timedelta(weeks=HISTORY_WEEKS),
        max_files=1,  # only whether the channel delivered anything: counts come from its jobs
    )
    files = [c for c in recent.file_counts if c]
    if not files and not recent.files:
        return  # a new channel: nothing to compare with
    fetched = len(report.files)
    if not fetched or report.records == 0:
        what = "no files" if not fetched else "no records"
        raise SiteChangedError(
            f"{loaded.name} fetched {what}, but channel {request.channel_id} has "
            "delivered files before: the site has probably changed"
        )
    if files and fetched < min(files) * SHRINK_LIMIT:
        raise SiteChangedError(
            f"{loaded.name} fetched {count(fetched, 'file')} where the channel's recent jobs "
            f"fetched {min(files)} or more: the site has probably changed"
        )
    records = [c for c in recent.record_counts if c]
    if report.records is not None and records and report.records < min(records) * SHRINK_LIMIT:
        raise SiteChangedError(
            f"{loaded.name} found {count(report.records, 'record')} where the channel's recent "
            f"jobs found {min(records)} or more: the site has probably changed"
        )


def csv_rows(folder: Path) -> int | None:
    """Data rows of the CSV/TSV files below ``folder`` (header lines not counted); None when
    there is none. Downloaded files carry no record count of their own, and a report page
    of header-only CSVs is as empty as a JSON page without records."""
    rows, found = 0, False
    for path in folder.rglob("*"):
        if path.suffix.lower() in (".csv", ".tsv") and path.is_file() and not path.is_symlink():
            found = True
            with path.open("rb") as f:
                lines = sum(1 for line in f if line.strip())
            rows += max(lines - 1, 0)
    return rows if found else None
