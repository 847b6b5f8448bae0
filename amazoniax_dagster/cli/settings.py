"""Connection settings of the operator commands (``submit``, ``doctor``, ``status``, ``channels``).

They come from the same ``AMAZONIAX_*`` variables as the product, read when a command runs
(never at import). ``--env-file`` adds ``KEY=VALUE`` lines such as the local stack's
``.amazoniax/stack/stack.env``; a value in the file wins over the process environment, since
naming the file is the more explicit choice.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from amazoniax_dagster.core.errors import ConfigError


@dataclass(frozen=True)
class Settings:
    kafka_bootstrap: str | None = None
    database_url: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    output_bucket: str | None = None
    s3_endpoint_url: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = field(default=None, repr=False)
    s3_region: str | None = None
    bedrock_endpoint_url: str | None = None
    bedrock_model_id: str | None = None
    bedrock_region: str | None = None
    fetchers_repo: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        return cls(
            kafka_bootstrap=get("AMAZONIAX_KAFKA_BOOTSTRAP"),
            database_url=get("AMAZONIAX_DATABASE_URL"),
            secret_key=get("AMAZONIAX_SECRET_KEY"),
            output_bucket=get("AMAZONIAX_OUTPUT_BUCKET"),
            s3_endpoint_url=get("AMAZONIAX_S3_ENDPOINT_URL"),
            s3_access_key_id=get("AMAZONIAX_S3_ACCESS_KEY_ID"),
            s3_secret_access_key=get("AMAZONIAX_S3_SECRET_ACCESS_KEY"),
            s3_region=get("AMAZONIAX_S3_REGION"),
            bedrock_endpoint_url=get("AMAZONIAX_BEDROCK_ENDPOINT_URL"),
            bedrock_model_id=get("AMAZONIAX_BEDROCK_MODEL_ID"),
            bedrock_region=get("AMAZONIAX_BEDROCK_REGION") or get("AWS_REGION"),
            fetchers_repo=get("AMAZONIAX_FETCHERS_REMOTE_URL"),
        )

    def require(self, name: str) -> str:
        """The value of field ``name`` or a ConfigError naming its environment variable."""
        value = getattr(self, name)
        if not value:
            raise ConfigError(f"{ENV_NAMES[name]} is not set (or pass --env-file)")
        return str(value)


ENV_NAMES = {
    "kafka_bootstrap": "AMAZONIAX_KAFKA_BOOTSTRAP",
    "database_url": "AMAZONIAX_DATABASE_URL",
    "secret_key": "AMAZONIAX_SECRET_KEY",
    "output_bucket": "AMAZONIAX_OUTPUT_BUCKET",
}


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines; blank lines, ``#`` comments and an ``export`` prefix are allowed."""
    values: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the env file {path}: {exc.strerror}") from exc
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{path}:{number}: expected KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def load_settings(
    env_file: Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    env = dict(os.environ if environ is None else environ)
    if env_file is not None:
        env.update(read_env_file(env_file))
    return Settings.from_env(env)
