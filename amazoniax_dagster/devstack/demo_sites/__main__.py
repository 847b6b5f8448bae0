"""``python -m amazoniax_dagster.devstack.demo_sites [NAME ...] [--variant v2]``: serve demo sites
until Ctrl-C, logging each one's channel URL.

Demo passwords and client secrets are not logged (nothing secret-shaped is); they are the
``USERNAME``/``PASSWORD``/``CLIENT_SECRET`` constants of the site modules.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from amazoniax_dagster.devstack.demo_sites.base import VARIANTS
from amazoniax_dagster.devstack.demo_sites.catalog import CATALOG
from amazoniax_dagster.devstack.demo_sites.server import serve_all

log = logging.getLogger("amazoniax.demo_sites")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m amazoniax_dagster.devstack.demo_sites", description="Serve the demo sites."
    )
    parser.add_argument("sites", nargs="*", metavar="NAME", help=f"any of: {', '.join(CATALOG)}")
    parser.add_argument("--variant", choices=VARIANTS, default="v1")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.sites) - set(CATALOG))
    if unknown:
        parser.error(f"unknown site(s) {', '.join(unknown)}; known: {', '.join(CATALOG)}")
    # As the CLI does: a shell that starts us in the background leaves SIGINT ignored, and
    # "Ctrl-C stops" must hold for SIGINT from any parent.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("uvicorn").setLevel(logging.WARNING)
    names: list[str] = args.sites or list(CATALOG)
    with serve_all(names) as running:
        for name, site in running.items():
            site.variant = args.variant
            config = site.channel_config()
            extras = []
            if "login_credentials" in config:
                extras.append(f"login as {config['login_credentials']['username']}")
            if "auth_keys" in config:
                extras.append(f"client_id {config['auth_keys']['client_id']}")
            log.info(
                "%-16s %-4s %-40s %s%s",
                name,
                CATALOG[name].source_type,
                config["url"],
                CATALOG[name].description,
                f" ({'; '.join(extras)})" if extras else "",
            )
        log.info("serving %d demo site(s), variant %s; Ctrl-C stops", len(running), args.variant)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            log.info("stopping")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
