"""The demo channel of ``amazoniax dev``: a source bucket with sample files and one job message.

The demo channel reads a bucket of the local S3 server with the stack's "customer" identity,
as a real channel would with its own credentials.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from amazoniax_dagster import s3util
from amazoniax_dagster.kafka import KafkaBus, Topics
from amazoniax_dagster.local_stack import StackEndpoints

DEMO_BUCKET = "demo-source"
DEMO_CHANNEL = "demo-s3-channel"

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


def send_demo_message(stack: StackEndpoints, topics: Topics | None = None) -> str:
    message = demo_message(stack)
    bus = KafkaBus(stack.kafka_bootstrap, client_id="amazoniax-demo")
    try:
        topic = (topics or Topics()).fetcher
        bus.publish(topic, json.dumps(message).encode(), key=DEMO_CHANNEL.encode())
    finally:
        bus.close()
    return str(message["job_id"])
