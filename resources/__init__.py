"""Dagster resources: thin, typed clients over the Dagster-free core."""

from resources.bedrock import BedrockResource
from resources.codegen import CodegenSettingsResource
from resources.fetch_settings import FetchSettings
from resources.fetcher_db import FetcherDBResource
from resources.git import FetcherRepoResource
from resources.kafka import KafkaResource
from resources.python_fetchers import PythonFetchersResource
from resources.s3 import OutputBucketResource

__all__ = [
    "BedrockResource",
    "CodegenSettingsResource",
    "FetchSettings",
    "FetcherDBResource",
    "FetcherRepoResource",
    "KafkaResource",
    "OutputBucketResource",
    "PythonFetchersResource",
]
