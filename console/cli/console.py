"""``wgops console``: the Textual operations console, in the terminal or (``--web``) served to
browsers behind an access token."""

from __future__ import annotations

import os

import click

from wgops.console.cli.base import AppContext, cli


@cli.command(name="console")
@click.option("--readonly", is_flag=True, help="Show everything, allow no action.")
@click.option("--web", is_flag=True,
              help="Serve the console to browsers (each tab its own console) behind a token.")
@click.option("--host", default="127.0.0.1", show_default=True, help="With --web: address.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="With --web: port.")
@click.pass_obj
def console_(app: AppContext, readonly: bool, web: bool, host: str, port: int) -> None:
    """The operations console: daemons, queues, slots, graphs and events, live."""
    if web:
        _web(app, readonly, host, port)
        return
    from wgops.console.app import WgopsApp
    from wgops.console.data.backend import LiveBackend

    store = app.store()
    store.close()
    WgopsApp(LiveBackend(app.settings, store), readonly=readonly).run()
    if not os.environ.get("TEXTUAL_DRIVER"):       # served to a browser: stdout is the wire
        click.echo("console closed; the daemons keep running (wgops daemon status / "
                   "wgops daemon stop)")


def _web(app: AppContext, readonly: bool, host: str, port: int) -> None:
    from wgops.console.web import TOKEN_ENV, address, listen, make_token, serve

    token, made = make_token()
    app.store().close()                 # the database answers (and is migrated) before serving
    sock = listen(host, port)
    url = address(sock)
    shown = f"{url}?token={token}" if made else f"{url}?token=${TOKEN_ENV}"
    mode = " read-only" if readonly else ""
    click.echo(f"wgops console --web{mode}: open {shown}", err=False)
    click.echo("each browser tab runs its own console; Ctrl-C stops the server and them")
    serve(app.settings, sock, token, readonly)
