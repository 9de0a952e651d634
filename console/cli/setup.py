"""``wgops init`` and ``wgops demo``."""

from __future__ import annotations

import click

from wgops.console.cli.base import AppContext, cli
from wgops.store.config import default_config_text, mask_url


@cli.command()
@click.pass_obj
def init(app: AppContext) -> None:
    """Create $WGOPS_HOME, config.toml and the database (idempotent)."""
    from wgops.store.migrations import current_version, migrate

    settings = app.settings
    settings.home.mkdir(parents=True, exist_ok=True)
    settings.logs_dir.mkdir(exist_ok=True)
    if not settings.config_file.exists():
        settings.config_file.write_text(default_config_text(settings))
    store = app.store(migrate=False)
    applied = migrate(store)
    click.echo(f"home      {settings.home}")
    click.echo(f"config    {settings.config_file}")
    click.echo(f"database  {mask_url(settings.db_url)} (schema v{current_version(store)}"
               + (f", applied {', '.join(map(str, applied))})" if applied else ", up to date)"))
    click.echo(f"broker    {mask_url(settings.broker_url)}  namespace {settings.namespace}")
