"""``wgops graph logs ID TASK``: what an attempt of a task printed (stdout, stderr, logging
records), a thin shell over :meth:`wgops.Client.logs`."""

from __future__ import annotations

import click

from wgops.console.cli.base import AppContext
from wgops.console.cli.graph import graph
from wgops.console.cli.output import echo_json


@graph.command()
@click.argument("graph_id", type=int)
@click.argument("task")
@click.option("--attempt", type=click.IntRange(1), default=None,
              help="Which attempt (1 is the first; default: the last).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def logs(app: AppContext, graph_id: int, task: str, attempt: int | None,
         as_json: bool) -> None:
    """Show what a task printed: its stdout, stderr and logging records (a mapped task's
    copy is TASK[i]). Kept per attempt, up to max_log_bytes (the tail)."""
    data = app.client().logs(graph_id, task, attempt)
    if as_json:
        echo_json(data)
        return
    if data["attempt"] == 0:
        click.echo(f"wgops: note: task {task!r} of graph {graph_id} has not run yet", err=True)
        return
    if data["dropped"]:
        click.echo(f"wgops: note: attempt {data['attempt']}: the first {data['dropped']:,} "
                   "characters were not kept (max_log_bytes)", err=True)
    text = data["text"]
    click.echo(text, nl=bool(text) and not text.endswith("\n"))
    if data["running"]:
        click.echo(f"wgops: note: attempt {data['attempt']} is still running (its output so "
                   "far)", err=True)
