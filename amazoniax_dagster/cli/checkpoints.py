"""``amazoniax channels checkpoint CHANNEL``: show or reset a channel's incremental checkpoint."""

from __future__ import annotations

from pathlib import Path

import click

from amazoniax_dagster.cli.options import _fail, _settings, env_file_option, open_fetcher_db


@click.command("checkpoint", short_help="Show or reset a channel's incremental checkpoint.")
@click.argument("channel_id")
@click.option("--reset", is_flag=True, help="Forget it: the next job starts from the beginning.")
@env_file_option
def checkpoint(channel_id: str, reset: bool, env_file: Path | None) -> None:
    """Show CHANNEL_ID's checkpoint: the cursor value its next job starts after (stored by its
    last successful job). With --reset, forget it, so the next job fetches everything again
    (or from the recipe's initial_value)."""
    from amazoniax_dagster.core.errors import AmazoniaxError

    db = open_fetcher_db(_settings(env_file))
    try:
        if reset:
            forgot = db.reset_checkpoint(channel_id)
            click.echo(f"{channel_id}: " + ("checkpoint reset" if forgot else "no checkpoint"))
            return
        found = db.checkpoint(channel_id)
    except AmazoniaxError as exc:
        _fail(str(exc))
    finally:
        db.close()
    if found is None:
        click.echo(f"{channel_id}: no checkpoint (the next job fetches from the start)")
    else:
        click.echo(f"{channel_id}: {found.cursor_type} {found.value}")
