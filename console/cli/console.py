"""``wgops console``: the Textual operations console."""

from __future__ import annotations

import click

from wgops.console.cli.base import AppContext, cli


@cli.command(name="console")
@click.option("--readonly", is_flag=True, help="Show everything, allow no action.")
@click.pass_obj
def console_(app: AppContext, readonly: bool) -> None:
    """The operations console: daemons, queues, slots, graphs and events, live."""
    from wgops.console.app import WgopsApp
    from wgops.console.data.backend import LiveBackend

    store = app.store()
    store.close()
    WgopsApp(LiveBackend(app.settings, store), readonly=readonly).run()
    click.echo("console closed; the daemons keep running (wgops daemon status / "
               "wgops daemon stop)")
