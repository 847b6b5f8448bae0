"""What the operating commands share: settings from AMAZONIAX_* or --env-file, clients, exit
codes."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

if TYPE_CHECKING:
    from amazoniax_dagster.cli.settings import Settings
    from amazoniax_dagster.cli.submit import KafkaSubmitBackend
    from amazoniax_dagster.db.repository import FetcherDB


F = TypeVar("F", bound=Callable[..., Any])


EXIT_USAGE = 2  # invalid input or settings: nothing was done


def env_file_option(func: F) -> F:
    """``--env-file``; the command also keeps chatty libraries quiet unless ``-v``."""

    @functools.wraps(func)
    def quiet(*args: Any, **kwargs: Any) -> Any:
        if not _verbose():
            from amazoniax_dagster.clients.kafka import LIBRDKAFKA_LOGGER

            # kafka-python, librdkafka, botocore and alembic log every refused connection or
            # import at INFO/WARNING/ERROR; the commands report what matters themselves.
            for name in ("kafka", LIBRDKAFKA_LOGGER, "botocore", "urllib3", "alembic"):
                logging.getLogger(name).setLevel(logging.CRITICAL)
        return func(*args, **kwargs)

    return click.option(
        "--env-file",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=None,
        help="Read KEY=VALUE settings from this file (e.g. .amazoniax/stack/stack.env, "
        "written by `amazoniax stack up`); its values win over the environment.",
    )(quiet)  # type: ignore[return-value]


def _settings(env_file: Path | None) -> Settings:
    from amazoniax_dagster.cli.settings import load_settings
    from amazoniax_dagster.core.errors import ConfigError

    try:
        return load_settings(env_file)
    except ConfigError as exc:
        _fail(str(exc), EXIT_USAGE)


def _verbose() -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx and ctx.find_root().params.get("verbose"))


def _fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    raise SystemExit(code)


def _required(settings: Settings, name: str) -> str:
    from amazoniax_dagster.core.errors import ConfigError

    try:
        return settings.require(name)
    except ConfigError as exc:
        _fail(str(exc), EXIT_USAGE)


def open_fetcher_db(settings: Settings, *, needs_key: bool = False) -> FetcherDB:
    """The fetcher DB; commands that only read non-secret columns work without the key."""
    from amazoniax_dagster.core.errors import ConfigError
    from amazoniax_dagster.core.sealing import SecretCipher
    from amazoniax_dagster.db.repository import FetcherDB

    url = _required(settings, "database_url")
    key = _required(settings, "secret_key") if needs_key else settings.secret_key
    try:
        cipher = SecretCipher(key or SecretCipher.generate_key())
    except ConfigError as exc:
        _fail(str(exc), EXIT_USAGE)
    return FetcherDB(url, cipher, pool_size=1)


def open_submit_backend(settings: Settings, db: FetcherDB | None) -> KafkaSubmitBackend:
    """Kafka for the jobs and their statuses; the fetcher DB, when there is one, for
    ``running``. Tests replace this function."""
    from amazoniax_dagster.cli.submit import KafkaSubmitBackend
    from amazoniax_dagster.clients.kafka import KafkaBus, Topics

    bus = KafkaBus(_required(settings, "kafka_bootstrap"), client_id="amazoniax-submit")
    topics = Topics()
    return KafkaSubmitBackend(
        bus,
        fetcher_topic=topics.fetcher,
        status_topic=topics.status,
        job_states=db.job_statuses if db is not None else None,
    )
