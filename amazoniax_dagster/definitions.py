"""The one ``Definitions`` of the amazoniax code location. It only assembles."""

from __future__ import annotations

import dagster as dg

from assets import channel_files, channel_records, fetcher_code
from assets.asset_jobs import channel_files_job, fetcher_code_job
from resources import (
    BedrockResource,
    CodegenSettingsResource,
    FetcherDBResource,
    FetcherRepoResource,
    FetchSettings,
    KafkaResource,
    OutputBucketResource,
    PythonFetchersResource,
)
from sensors import (
    component_alert_job,
    dead_letters_asset,
    health_alert_sensor,
    kafka_fetcher_sensor,
    records_automation,
    status_on_cancel,
    status_on_failure,
    status_on_success,
    stored_channels_sensor,
)

defs = dg.Definitions(
    assets=[channel_files, channel_records, fetcher_code, dead_letters_asset],
    jobs=[channel_files_job, fetcher_code_job, component_alert_job],
    sensors=[
        kafka_fetcher_sensor,
        stored_channels_sensor,
        status_on_success,
        status_on_failure,
        status_on_cancel,
        records_automation,
        health_alert_sensor,
    ],
    resources={
        "fetcher_db": FetcherDBResource(
            database_url=dg.EnvVar("AMAZONIAX_DATABASE_URL"),
            secret_key=dg.EnvVar("AMAZONIAX_SECRET_KEY"),
        ),
        # Endpoint, keys, region and KMS key: AMAZONIAX_S3_* when set; no keys = the AWS chain.
        "output_bucket": OutputBucketResource(bucket=dg.EnvVar("AMAZONIAX_OUTPUT_BUCKET")),
        "kafka": KafkaResource(bootstrap_servers=dg.EnvVar("AMAZONIAX_KAFKA_BOOTSTRAP")),
        "fetcher_repo": FetcherRepoResource(
            repo_path=dg.EnvVar("AMAZONIAX_FETCHERS_REPO_PATH"),
            remote_url=dg.EnvVar("AMAZONIAX_FETCHERS_REMOTE_URL"),
        ),
        "codegen_settings": CodegenSettingsResource(),
        "python_fetchers": PythonFetchersResource(),
        # Off unless AMAZONIAX_BEDROCK_MODEL_ID names a model; credentials: the AWS chain (IRSA).
        "bedrock": BedrockResource(),
        # Empty (nothing extra allowed) is the production default: AMAZONIAX_ALLOWED_NETWORKS.
        "fetch_settings": FetchSettings(),
    },
)
