"""Local demo websites for the fetchers, the generator and the benchmark.

Small, realistic sites (see ``CATALOG`` and each module's docstring for its URL layout),
served by uvicorn on 127.0.0.1 and a free port. Each can be switched at run time, at the same
address, between ``"v1"``, ``"v2"`` (a realistic redesign) and ``"broken"`` (the data is gone),
can fail its next requests on demand, logs every request, and tells the records it serves::

    with serve("json_pages") as site:
        config = CATALOG["json_pages"].channel_config(site)   # what a user would send
        ...                                                     # fetch with v1
        site.variant = "v2"                                     # same URL, new endpoint
        site.fail_next(3, status=503, retry_after="1")          # a fault storm
        expected = site.ground_truth()                          # [{"id": ..., ...}, ...]

``python -m amazoniax_dagster.devstack.demo_sites`` serves them all for a human to explore.
"""

from amazoniax_dagster.devstack.demo_sites.base import VARIANTS, DemoSite, Record, Variant
from amazoniax_dagster.devstack.demo_sites.catalog import CATALOG, SiteFactory, SiteSpec
from amazoniax_dagster.devstack.demo_sites.server import (
    RunningSite,
    serve,
    serve_all,
    start,
    stop_all,
)

__all__ = [
    "CATALOG",
    "VARIANTS",
    "DemoSite",
    "Record",
    "RunningSite",
    "SiteFactory",
    "SiteSpec",
    "Variant",
    "serve",
    "serve_all",
    "start",
    "stop_all",
]
