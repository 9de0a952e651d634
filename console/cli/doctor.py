"""``wgops doctor [--repair] [--json]``: is the database consistent with the broker?"""

from __future__ import annotations

import click

from wgops.console.cli.base import AppContext, cli
from wgops.console.cli.output import echo_json, table


@cli.command()
@click.option("--repair", is_flag=True,
              help="Fix what is found (re-launch, re-queue, re-publish); daemons keep running.")
@click.option("--min-age", type=click.FloatRange(0), default=5.0, show_default=True,
              help="Seconds a task or graph must have been stuck before it counts.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def doctor(app: AppContext, repair: bool, min_age: float, as_json: bool) -> None:
    """Check graphs owned by dead schedulers, tasks running on dead workers, queued tasks
    whose queue is empty and unclaimed graphs with no launch message.

    Exit code 0: consistent (or everything found was repaired); 1: inconsistencies remain."""
    from wgops.daemon.doctor import run_doctor

    store = app.store()
    report = app.run(run_doctor(app.settings, store, repair, min_age))
    if as_json:
        echo_json(report)
    elif not report["findings"]:
        click.echo("consistent: nothing to repair")
    else:
        click.echo(table(["check", "graph", "task", "daemon", "repaired", "what"],
                         [[f["check"], f["graph"], f["task"], f["daemon"] or "-",
                           "yes" if f["repaired"] else "no", f["message"]]
                          for f in report["findings"]]))
        if not repair:
            click.echo("run `wgops doctor --repair` to fix these")
    if not report["ok"]:
        raise click.exceptions.Exit(1)
