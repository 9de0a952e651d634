"""``wgops metrics``: the Prometheus exporter in the foreground (what circus runs for
``wgops daemon start --metrics-port P``)."""

from __future__ import annotations

import click

from wgops.console.cli.base import AppContext, cli
from wgops.daemon.circus_config import METRICS_HOST, METRICS_PORT


@cli.command()
@click.option("--host", default=METRICS_HOST, show_default=True,
              help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=METRICS_PORT, show_default=True,
              help="Port of the /metrics endpoint.")
@click.pass_obj
def metrics(app: AppContext, host: str, port: int) -> None:
    """Serve Prometheus metrics on http://HOST:PORT/metrics until SIGTERM or Ctrl-C."""
    from wgops.daemon.metrics import serve
    from wgops.daemon.runner import configure_logging

    configure_logging(app.debug)
    serve(app.settings, host=host, port=port)
