"""Sandboxed Python fetchers in a Dagster run: the sandbox command through Dagster Pipes.

The core (``amazoniax_dagster.fetchers.python_runtime``) builds the sandbox command and reads
the outcome; this resource only picks the Pipes client that launches it. Locally that is
``PipesSubprocessClient``: the child's Pipes logs land in the run's event log. On Kubernetes a
``PipesK8sClient`` launcher can take its place with the same command and the pod settings of
``deploy/python-fetcher-pods.yaml``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
from pydantic import Field

if TYPE_CHECKING:
    from amazoniax_dagster.fetchers.base import FetchContext, FetchReport
    from amazoniax_dagster.fetchers.python_runtime import SandboxCommand
    from amazoniax_dagster.fetchers.sandbox import SandboxLimits


class DagsterPipesLauncher:
    """Runs a sandbox command with ``dagster.PipesSubprocessClient`` in the current step."""

    def __init__(
        self,
        context: dg.AssetExecutionContext | dg.OpExecutionContext,
        client: dg.PipesSubprocessClient | None = None,
    ) -> None:
        self._context = context
        # Termination is forwarded as SIGINT: the supervisor then kills the whole sandbox.
        self._client = client or dg.PipesSubprocessClient(forward_stdio=True)

    def launch(self, command: SandboxCommand) -> list[Any]:
        from amazoniax_dagster.core.errors import AmazoniaxError, InfrastructureError

        try:
            invocation = self._client.run(
                context=self._context,
                command=list(command.argv),
                env=dict(command.env),
                cwd=str(command.cwd),
                extras=dict(command.extras),
            )
        except AmazoniaxError:
            raise
        except Exception as exc:  # the client's error class is private to dagster
            raise InfrastructureError(
                f"the sandbox supervisor failed: {command.redact(str(exc))}"
            ) from exc
        return list(invocation.get_custom_messages())


class PythonFetchersResource(dg.ConfigurableResource):
    """Limits of the sandbox every Python fetcher runs in (per run of one fetcher)."""

    cpu_seconds: int = Field(default=120, ge=1, description="CPU time per process (RLIMIT_CPU)")
    memory_mb: int = Field(
        default=1024, ge=64, description="address space per process (RLIMIT_AS), in MiB"
    )
    wall_seconds: float = Field(
        default=600.0, gt=0, description="wall-clock limit of the whole sandbox"
    )
    hidden_paths: list[str] = Field(
        default=["/run/secrets", "/var/run/secrets"],
        description="trees a fetcher may not even read (secret mounts); all else is readable",
    )
    allow_unconfined: bool = Field(
        default=False,
        description=(
            "run even where Linux Landlock is missing (development only: the fetcher could "
            "then write anywhere the process may)"
        ),
    )

    def limits(self) -> SandboxLimits:
        from amazoniax_dagster.fetchers.sandbox import SandboxLimits

        return SandboxLimits(
            cpu_seconds=self.cpu_seconds,
            memory_bytes=self.memory_mb * 1024**2,
            wall_seconds=self.wall_seconds,
            hidden_paths=tuple(self.hidden_paths),
            allow_unconfined=self.allow_unconfined,
        )

    def launcher(
        self, context: dg.AssetExecutionContext | dg.OpExecutionContext
    ) -> DagsterPipesLauncher:
        """Python fetchers of this step start through Dagster Pipes (their logs join the run)."""
        return DagsterPipesLauncher(context)

    def run(
        self,
        context: dg.AssetExecutionContext | dg.OpExecutionContext,
        code_path: Path,
        fetch_ctx: FetchContext,
    ) -> FetchReport:
        """Run ``code_path``'s ``fetch`` sandboxed, through Pipes in this step."""
        from amazoniax_dagster.fetchers.python_runtime import run_python_fetcher

        return run_python_fetcher(
            code_path, fetch_ctx, self.limits(), launcher=DagsterPipesLauncher(context)
        )
