"""The demo channels of ``amazoniax dev``: an S3 bucket and an FTP folder with sample files, two
local demo websites (a login-gated page of CSV downloads, whose fetcher is generated on the
first job; a JSON API with an OpenAPI document, served by the generic API fetcher), and one
job message for each.

The S3 demo reads a bucket of the local S3 server with the stack's "customer" identity, and the
FTP demo a local FTP server (pyftpdlib on 127.0.0.1) with its own user, as real channels would
with their own credentials.
"""

from __future__ import annotations

import json
import logging
import secrets
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from amazoniax_dagster.clients import s3 as s3util
from amazoniax_dagster.clients.kafka import KafkaBus, Topics
from amazoniax_dagster.devstack.ftp import LocalFtpServer
from amazoniax_dagster.devstack.local_stack import StackEndpoints

if TYPE_CHECKING:
    from amazoniax_dagster.devstack.demo_sites import RunningSite

DEMO_BUCKET = "demo-source"
DEMO_CHANNEL = "demo-s3-channel"
DEMO_FTP_CHANNEL = "demo-ftp-channel"
DEMO_FTP_USER = "demo"
#: channel_id -> the demo site it fetches (amazoniax_dagster.devstack.demo_sites)
DEMO_WEB_CHANNELS = {"demo-web-channel": "csv_links", "demo-api-channel": "json_pages"}

SAMPLE_FILES: dict[str, bytes] = {
    "orders/2026-11-20.csv": b"order_id,sku,quantity\n1001,A-17,2\n1002,B-03,1\n",
    "orders/2026-11-21.csv": b"order_id,sku,quantity\n1003,A-17,5\n",
    "catalog/products.json": json.dumps(
        [{"sku": "A-17", "name": "kettle"}, {"sku": "B-03", "name": "teapot"}]
    ).encode(),
    "README.txt": b"not matched by the demo pattern\n",
}


def seed_demo_bucket(stack: StackEndpoints) -> None:
    admin = s3util.make_client(
        endpoint_url=stack.s3_endpoint_url,
        access_key_id=stack.s3_access_key_id,
        secret_access_key=stack.s3_secret_access_key,
        region=stack.s3_region,
    )
    if DEMO_BUCKET not in {b["Name"] for b in admin.list_buckets().get("Buckets", [])}:
        admin.create_bucket(Bucket=DEMO_BUCKET)
    customer = s3util.make_client(
        endpoint_url=stack.s3_endpoint_url,
        access_key_id=stack.channel_s3_access_key_id,
        secret_access_key=stack.channel_s3_secret_access_key,
        region=stack.s3_region,
    )
    for key, body in SAMPLE_FILES.items():
        customer.put_object(Bucket=DEMO_BUCKET, Key=f"exports/{key}", Body=body)


def demo_message(stack: StackEndpoints, *, job_id: str | None = None) -> dict[str, object]:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return {
        "job_id": job_id or f"demo-{stamp}-{uuid.uuid4().hex[:6]}",
        "channel_id": DEMO_CHANNEL,
        "source_type": "s3",
        "is_new": True,
        "heal_mode": False,
        "config": {
            "bucket": DEMO_BUCKET,
            "remote_path": "/exports/",
            "file_pattern": "**/*.{csv,json}",
            "endpoint_url": stack.s3_endpoint_url,
            "region": stack.s3_region,
            "access_key": stack.channel_s3_access_key_id,
            "secret_access_key": stack.channel_s3_secret_access_key,
        },
    }


def send_messages(stack: StackEndpoints, messages: list[dict[str, object]]) -> list[str]:
    """Produce job messages to the fetcher topic; their job_ids, in order."""
    bus = KafkaBus(stack.kafka_bootstrap, client_id="amazoniax-demo")
    try:
        for message in messages:
            key = str(message["channel_id"]).encode()
            bus.publish(Topics().fetcher, json.dumps(message).encode(), key=key)
    finally:
        bus.close()
    return [str(m["job_id"]) for m in messages]


class DemoFtpServer(LocalFtpServer):
    """A local FTP server with the sample files, for the FTP demo channel."""

    def __init__(self, root: Path) -> None:
        from pyftpdlib.authorizers import DummyAuthorizer
        from pyftpdlib.handlers import FTPHandler

        logging.getLogger("pyftpdlib").setLevel(logging.WARNING)
        for name, body in SAMPLE_FILES.items():
            path = root / "outbox" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)
        self.password = secrets.token_urlsafe(16)
        authorizer = DummyAuthorizer()
        authorizer.add_user(DEMO_FTP_USER, self.password, homedir=str(root), perm="elr")
        super().__init__(
            type("DemoFtpHandler", (FTPHandler,), {"authorizer": authorizer}), name="demo-ftp"
        )

    def message(self) -> dict[str, object]:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        return {
            "job_id": f"demo-ftp-{stamp}-{uuid.uuid4().hex[:6]}",
            "channel_id": DEMO_FTP_CHANNEL,
            "source_type": "ftp",
            "is_new": True,
            "heal_mode": False,
            "config": {
                "host": "127.0.0.1",
                "port": self.port,
                "username": DEMO_FTP_USER,
                "password": self.password,
                "remote_path": "/outbox",
                "file_pattern": "**/*.{csv,json}",
            },
        }


def web_message(channel_id: str, site: RunningSite) -> dict[str, object]:
    """A job for a demo website: html channels get a fetcher generated on their first job."""
    from amazoniax_dagster.devstack.demo_sites import CATALOG

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return {
        "job_id": f"demo-{site.name}-{stamp}-{uuid.uuid4().hex[:6]}",
        "channel_id": channel_id,
        "source_type": CATALOG[site.name].source_type,
        "is_new": True,
        "heal_mode": False,
        "config": site.channel_config(),
    }
