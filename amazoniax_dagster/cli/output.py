"""How the operator commands show things: a live progress display for ``submit`` (rich), the
summary and status tables, and ``doctor``'s lines. On a terminal the display is live; when
stdout is a pipe or a file it degrades to one plain line per change."""

from __future__ import annotations

import os
from collections.abc import Sequence
from types import TracebackType

from rich.console import Console, Group, RenderableType
from rich.padding import Padding
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from amazoniax_dagster.cli.doctor import CheckResult, DoctorReport
from amazoniax_dagster.cli.job_status import JobsOverview
from amazoniax_dagster.cli.submit import Counts, JobProgress, SubmitReport, count
from amazoniax_dagster.core.redaction import Redactor

PLAIN_WIDTH = 160
#: narrower than this, ``submit``'s summary is one block per job instead of a table
TABLE_MIN_WIDTH = 120
STATUS_STYLES = {"success": "green", "failed": "red", "requires_human_review": "yellow"}


def make_console() -> Console:
    """A console on the current stdout; when it is not a terminal (logs, CI), ``COLUMNS`` wide
    if set, else wide enough for one line per table row."""
    console = Console(highlight=False, soft_wrap=False)
    if not console.is_terminal:
        width = None if os.environ.get("COLUMNS") else PLAIN_WIDTH
        console = Console(highlight=False, width=width, no_color=True)
    return console


def describe_counts(c: Counts) -> str:
    text = (
        f"submitted {c.submitted}/{c.total} · queued {c.queued} · running {c.running} · "
        f"succeeded {c.succeeded} · failed {c.failed}"
    )
    if c.waiting:
        text += f" · waiting {c.waiting}"
    return text


class SubmitProgress:
    """``on_update`` callback for :func:`amazoniax_dagster.cli.submit.submit_jobs`."""

    def __init__(self, console: Console, total: int) -> None:
        self.console = console
        self.total = total
        self._last: Counts | None = None
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        if console.is_terminal:
            self._progress = Progress(
                BarColumn(bar_width=16),
                TextColumn("{task.fields[counts]}"),
                TimeElapsedColumn(),
                console=console,
                transient=False,
            )

    def __enter__(self) -> SubmitProgress:
        if self._progress is not None:
            self._progress.start()
            self._task = self._progress.add_task("jobs", total=self.total, counts="")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def __call__(self, jobs: Sequence[JobProgress]) -> None:
        counts = count(jobs)
        if counts == self._last:
            return
        self._last = counts
        if self._progress is not None and self._task is not None:
            self._progress.update(
                self._task, completed=counts.finished, counts=describe_counts(counts)
            )
        else:
            self.console.print(describe_counts(counts), markup=False)


def submit_summary(report: SubmitReport, redact: Redactor, width: int) -> RenderableType:
    """The jobs' ends: a table when it fits, else one block per job, so that a job id is never
    split and a message wraps between words (e.g. at 80 columns)."""
    if width >= TABLE_MIN_WIDTH:
        return summary_table(report, redact)
    blocks: list[RenderableType] = [Text("jobs", style="italic")]
    for job in report.jobs:
        head = Text.assemble(
            (job.job_id, "bold"), "  ", (job.state, STATUS_STYLES.get(job.state, ""))
        )
        if job.files is not None:
            head.append(f"  {job.files} files")
        if job.seconds is not None:
            head.append(f"  {job.seconds:.1f} s")
        head.no_wrap, head.overflow = True, "ellipsis"
        detail = Text(f"channel {job.channel_id}")
        if job.message:
            detail.append(f" · {redact(job.message)}")
        blocks += [head, Padding(detail, (0, 0, 0, 2))]
    return Group(*blocks)


def summary_table(report: SubmitReport, redact: Redactor) -> Table:
    table = Table(title="jobs", title_justify="left")
    table.add_column("job_id", overflow="fold")
    table.add_column("channel", overflow="fold")
    table.add_column("status", no_wrap=True)
    table.add_column("files", justify="right", no_wrap=True)
    table.add_column("seconds", justify="right", no_wrap=True)
    table.add_column("message", overflow="fold", min_width=24)
    for job in report.jobs:
        status = job.state
        table.add_row(
            job.job_id,
            job.channel_id,
            f"[{STATUS_STYLES[status]}]{status}[/]" if status in STATUS_STYLES else status,
            "" if job.files is None else str(job.files),
            "" if job.seconds is None else f"{job.seconds:.1f}",
            _escape(redact(job.message)),
        )
    return table


def status_table(overview: JobsOverview) -> Table:
    table = Table(title="jobs by state", title_justify="left")
    table.add_column("state")
    table.add_column("jobs", justify="right")
    for state, number in overview.counts.items():
        table.add_row(state, str(number))
    table.add_row("[bold]total[/]", f"[bold]{overview.total}[/]")
    return table


def failures_table(overview: JobsOverview) -> Table:
    redact = Redactor()
    table = Table(title="most recent failures", title_justify="left")
    table.add_column("job_id", overflow="fold")
    table.add_column("channel", overflow="fold")
    table.add_column("status", no_wrap=True)
    table.add_column("time (UTC)", no_wrap=True)
    table.add_column("message", overflow="fold", min_width=24)
    for f in overview.recent_failures:
        table.add_row(
            f.job_id,
            f.channel_id,
            f.status,
            f.at.strftime("%Y-%m-%d %H:%M:%S"),
            _escape(redact(f.message or "")),
        )
    return table


def dead_letters_table(overview: JobsOverview) -> Table:
    redact = Redactor()
    table = Table(
        title=f"messages refused (dead-lettered): {overview.dead_letters}, latest first",
        title_justify="left",
    )
    table.add_column("job_id", overflow="fold")
    table.add_column("channel", overflow="fold")
    table.add_column("error", no_wrap=True)
    table.add_column("time (UTC)", no_wrap=True)
    table.add_column("reason", overflow="fold", min_width=24)
    for d in overview.recent_dead_letters:
        table.add_row(
            d.job_id or "?",
            d.channel_id or "?",
            d.error_class,
            d.at.strftime("%Y-%m-%d %H:%M:%S"),
            _escape(redact(d.reason)),
        )
    return table


def doctor_line(result: CheckResult, width: int) -> str:
    mark = {"ok": "✓", "failed": "✗", "skipped": "-"}[result.status]
    latency = "" if result.latency_ms is None else f"{result.latency_ms:.0f} ms"
    return f"{mark} {result.component:<{width}} {latency:>8}  {result.detail}"


def doctor_lines(report: DoctorReport) -> list[str]:
    width = max((len(c.component) for c in report.checks), default=10)
    return [doctor_line(c, width) for c in report.checks]


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
