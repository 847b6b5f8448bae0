"""What one recipe run shares: the client, auth, template values, spool and output folder.

Credentials (auth and the recipe's ``headers``) only go to trusted hosts: the channel URL's,
the hosts the recipe's own requests name, and ``auth.hosts``; never to a host that only a
response named (a file link, a next URL, a feed enclosure).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from pydantic import ValidationError

from amazoniax_dagster.core.errors import ConfigError
from amazoniax_dagster.core.redaction import Redactor
from amazoniax_dagster.fetchers.base import FetchContext, FetchedFile, FetchReport
from amazoniax_dagster.fetchers.recipe.auth import AuthStrategy, make_auth
from amazoniax_dagster.fetchers.recipe.date_range import DateRange
from amazoniax_dagster.fetchers.recipe.files import (
    OutputFolder,
    extension_for,
    is_safe_name,
    server_file_name,
)
from amazoniax_dagster.fetchers.recipe.http import (
    CredentialsRefusedError,
    HostBreakers,
    Page,
    PreparedRequest,
    SafeClient,
    host_of,
)
from amazoniax_dagster.fetchers.recipe.incremental import Cursor
from amazoniax_dagster.fetchers.recipe.paginators import Paginator
from amazoniax_dagster.fetchers.recipe.schema import (
    FeedRecipe,
    HttpRecipe,
    RequestSpec,
    describe_errors,
)
from amazoniax_dagster.fetchers.recipe.templating import (
    DateWindow,
    Scope,
    render,
    render_data,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClientSettings:
    """Retry settings from the channel (``max_simple_retries``, ``retry_delay_seconds``)."""

    max_retries: int = 3
    retry_delay_seconds: float = 30.0
    breakers: HostBreakers | None = None  # share one to keep breaker state across runs


class Session:
    """One run: open it with :meth:`open` (which logs in), send, save, then :meth:`finish`."""

    def __init__(
        self, recipe: HttpRecipe | FeedRecipe, ctx: FetchContext, settings: ClientSettings
    ) -> None:
        config = ctx.config
        secrets = {**(config.login_credentials or {}), **(config.auth_keys or {})}
        self.ctx = ctx
        self.redactor = Redactor(secret.get_secret_value() for secret in secrets.values())
        self.extracts: dict[str, Any] = {}
        self._base = Scope(
            url=config.url,
            channel_name=config.channel_name,
            secrets=secrets,
            window=_window(recipe, ctx),
            run_date=ctx.run_date,
        )
        self.headers = {name: render(value, self._base) for name, value in recipe.headers.items()}
        self.client = SafeClient(
            ctx.policy,
            ctx.limits,
            rate_limit=recipe.rate_limit,
            max_retries=settings.max_retries,
            retry_delay_seconds=settings.retry_delay_seconds,
            breakers=settings.breakers,
            redactor=self.redactor,
        )
        self.auth: AuthStrategy[Any] = make_auth(recipe.auth)
        self.trusted_hosts = {host_of(config.url), *(recipe.auth.hosts if recipe.auth else ())}
        ctx.out_dir.mkdir(parents=True, exist_ok=True)
        self.output = OutputFolder(ctx.out_dir)
        # Bodies land here first, on the output's file system, so saving one is a rename.
        self._spool = Path(tempfile.mkdtemp(prefix=".recipe-spool-", dir=ctx.out_dir))
        self._spooled = 0
        self.report = FetchReport(files=self.output.files, metadata={"recipe": recipe.name})
        self.cursor = _cursor(recipe, ctx, self._base)

    @classmethod
    @contextmanager
    def open(
        cls, recipe: HttpRecipe | FeedRecipe, ctx: FetchContext, settings: ClientSettings
    ) -> Iterator[Session]:
        """A logged-in session; the client and the spool are cleaned up on the way out."""
        session = cls(recipe, ctx, settings)
        try:
            session.auth.login(session)
            yield session
        finally:
            session.client.close()
            shutil.rmtree(session._spool, ignore_errors=True)

    def scope(self, **variables: Any) -> Scope:
        return replace(self._base, extracts=dict(self.extracts), variables=variables)

    def absolute(self, url: str) -> str:
        """A recipe URL resolved against the channel URL."""
        return urljoin(self.ctx.config.url, url)

    def trust(self, url: str) -> str:
        """Let credentials go to ``url``'s host (the recipe itself names it)."""
        self.trusted_hosts.add(host_of(url))
        return url

    def render_request(self, spec: RequestSpec, scope: Scope) -> PreparedRequest:
        return PreparedRequest(
            method=spec.method,
            url=self.trust(self.absolute(render(spec.url, scope))),
            headers={name: render(value, scope) for name, value in spec.headers.items()},
            params={name: render(value, scope) for name, value in spec.query.items()},
            json=render_data(spec.json_body, scope),
            form={k: render(v, scope) for k, v in spec.form.items()} if spec.form else None,
        )

    def send(self, request: PreparedRequest, *, authenticate: bool = True) -> Page:
        """Fetch ``request`` into the spool; after a 401, let auth refresh once and retry."""
        trusted = host_of(request.url) in self.trusted_hosts
        if trusted:
            request = replace(request, headers={**self.headers, **request.headers})
        if not (trusted and authenticate):
            return self.client.fetch(request, self.spool_path())
        try:
            return self.client.fetch(self.auth.apply(request), self.spool_path())
        except CredentialsRefusedError as exc:
            if exc.status != 401 or not self.auth.refresh(self):
                raise
        log.info("credentials renewed after HTTP 401; trying %s once more", request.method)
        return self.client.fetch(self.auth.apply(request), self.spool_path())

    def save(self, page: Page, name: str) -> FetchedFile:
        """Move ``page``'s body into the output folder as ``name``."""
        saved = self.output.add(name, page.path, source_url=page.shown_url)
        page.path = self.output.out_dir / saved.relative_path
        return saved

    def download(self, url: str, *, label: str) -> FetchedFile:
        """GET a file and keep it under the server's name (``<label>_file_<n>.<ext>`` if none)."""
        page = self.send(PreparedRequest("GET", url))
        name = server_file_name(page.headers, page.url)
        if name is None or not is_safe_name(name):
            name = f"{label}_file_{len(self.output.files) + 1}.{extension_for(page.content_type)}"
        return self.save(page, name)

    def release(self, page: Page) -> None:
        """Drop a page's spooled body unless it was saved."""
        if page.path.parent == self._spool:
            page.path.unlink(missing_ok=True)

    def step_done(
        self, step: str, paginator: Paginator[Any], more: list[str] | None = None
    ) -> None:
        """Count the step's pages; ``more``: signs of data after its last page, unfollowed."""
        self.report.pages += paginator.pages
        steps = self.report.metadata.setdefault("steps", {})
        steps[step] = {"pages": paginator.pages, "stopped": paginator.stop_reason}
        if more:
            steps[step]["more"] = more
        if paginator.guard_hit:
            self.warn(
                f"step {step!r} stopped at the max_pages guard after {paginator.pages} pages; "
                "later pages were not fetched"
            )

    def warn(self, message: str) -> None:
        message = self.redactor(message)
        log.warning("%s", message)
        self.report.warnings.append(message)

    def finish(self) -> FetchReport:
        if self.cursor is not None:
            self.report.checkpoint = self.cursor.checkpoint()
            self.report.incremental = self.cursor.from_checkpoint
            self.report.metadata["incremental"] = self.cursor.metadata()
            if self.cursor.ignored_checkpoint:
                self.warn("the stored checkpoint has another cursor type: started afresh")
        self.report.requests = self.client.requests
        self.report.metadata["requests"] = self.client.requests
        self.report.metadata["files"] = len(self.report.files)
        return self.report

    def spool_path(self) -> Path:
        """A fresh file name in the spool (removed with the session unless saved)."""
        self._spooled += 1
        return self._spool / f"{self._spooled}.part"


def _cursor(recipe: HttpRecipe | FeedRecipe, ctx: FetchContext, base: Scope) -> Cursor | None:
    """The run's incremental cursor, from the channel's checkpoint or the initial value."""
    if isinstance(recipe, FeedRecipe):
        spec = recipe.incremental
    else:
        spec = next((step.incremental for step in recipe.steps if step.incremental), None)
    if spec is None:
        return None
    initial = render(spec.initial_value, base) if spec.initial_value else None
    return Cursor(spec, ctx.checkpoint, initial)


def _window(recipe: HttpRecipe | FeedRecipe, ctx: FetchContext) -> DateWindow | None:
    """The channel's ``navigation_details.date_range``, else the recipe's ``date_range``."""
    raw = (ctx.config.navigation_details or {}).get("date_range")
    if raw is None:
        return recipe.date_range.window(ctx.run_date) if recipe.date_range else None
    try:
        return DateRange.model_validate(raw).window(ctx.run_date)
    except ValidationError as exc:
        raise ConfigError(
            f"navigation_details.date_range: {describe_errors(exc)} "
            '(expected e.g. {"last_days": 7} or {"from": "2026-01-01", "to": "2026-01-31"})'
        ) from None


__all__ = ["ClientSettings", "Session"]
