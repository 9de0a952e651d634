"""``wgops pool``, ``wgops dead`` and ``wgops doctor``."""

from __future__ import annotations

import click

from wgops.console.cli.base import AppContext, cli
from wgops.console.cli.output import echo_json, table


@cli.group()
def pool() -> None:
    """Resource pools: caps on how many tasks of a pool run at once."""


@pool.command(name="list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def pool_list(app: AppContext, as_json: bool) -> None:
    """Pools with their cap and how many tasks run and wait in them."""
    rows = app.client().pools()
    if as_json:
        echo_json(rows)
        return
    click.echo(table(["pool", "max_running", "running", "queued"],
                     [[r["name"], "unlimited" if r["max_running"] is None else r["max_running"],
                       r["running"], r["queued"]] for r in rows]))


@pool.command(name="set")
@click.argument("name")
@click.option("--max-running", required=True, metavar="N|unlimited",
              help="Cap on running tasks; 'unlimited' removes it.")
@click.pass_obj
def pool_set(app: AppContext, name: str, max_running: str) -> None:
    """Set a pool's cap; it takes effect at once."""
    from wgops.store.document import POOL_RE

    if not POOL_RE.fullmatch(name):
        raise click.BadParameter(f"bad pool name {name!r}", param_hint="NAME")
    if max_running.lower() in ("unlimited", "none", "-"):
        cap = None
    elif max_running.isdigit():
        cap = int(max_running)
    else:
        raise click.BadParameter("a whole number or 'unlimited'", param_hint="--max-running")
    app.client().set_pool(name, cap)
    click.echo(f"pool {name}: max_running {'unlimited' if cap is None else cap}")
