"""How channel fetches behave in this deployment: parallelism and which networks URLs may reach."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field

if TYPE_CHECKING:
    from amazoniax_dagster.core.netpolicy import NetworkPolicy


class FetchSettings(dg.ConfigurableResource):
    max_workers: int = Field(default=16, description="files transferred in parallel per job")
    allowed_networks: str | None = Field(
        default=None,
        description=(
            "comma-separated CIDRs that config URLs may reach although private or loopback "
            "(the local stack allows 127.0.0.0/8); metadata addresses stay refused; default: "
            "$AMAZONIAX_ALLOWED_NETWORKS, read when a run or tick needs it, else nothing extra"
        ),
    )

    def network_policy(self) -> NetworkPolicy:
        from amazoniax_dagster.core.netpolicy import NetworkPolicy

        allowed = self.allowed_networks
        if allowed is None:
            allowed = os.environ.get("AMAZONIAX_ALLOWED_NETWORKS", "")
        return NetworkPolicy.from_env(allowed)
