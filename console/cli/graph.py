"""``wgops graph``: validate, submit, list, show, and the operator actions - a thin shell over
the API client (:class:`wgops.Client`), so the CLI, the console and programs cannot drift
apart: this module parses arguments and prints; the client does the work."""

from __future__ import annotations

import time
from pathlib import Path

import click

from wgops.console.cli.base import AppContext, cli
from wgops.console.cli.output import age, duration, echo_json, printable, short, table
from wgops.store.document import parse_overrides
from wgops.store.models import GRAPH_STATES


@cli.group()
def graph() -> None:
    """Validate, submit, inspect and control graphs."""


@graph.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--set", "overrides", multiple=True, metavar="K=V", help="Override an input.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def validate(app: AppContext, file: Path, overrides: tuple[str, ...], as_json: bool) -> None:
    """Check a graph document without storing it."""
    from wgops.graph import validate as check

    result = check(file, parse_overrides(overrides), app.settings.max_document_bytes)
    if as_json:
        echo_json(result)
    else:
        click.echo(f"{file}: valid graph {result['name']!r} with {result['tasks']} tasks")


@graph.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--priority", type=click.IntRange(0, 9), help="0..9, 9 runs first.")
@click.option("--set", "overrides", multiple=True, metavar="K=V", help="Override an input.")
@click.option("--scheduler", metavar="ID", help="Hand it to this live scheduler instead of "
              "the graphs queue.")
@click.option("--wait", is_flag=True, help="Follow the graph until it ends.")
@click.option("--timeout", type=float, help="With --wait: give up after this many seconds.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def submit(app: AppContext, file: Path, priority: int | None, overrides: tuple[str, ...],
           scheduler: str | None, wait: bool, timeout: float | None, as_json: bool) -> None:
    """Store a graph and put it on the graphs queue (or a scheduler's own queue)."""
    from wgops.store.errors import WaitTimeout

    client = app.client()
    result = client.submit(file, inputs=parse_overrides(overrides), priority=priority,
                           scheduler=scheduler)
    if wait:
        try:
            shown = client.wait(result["id"], timeout=timeout)
        except WaitTimeout:
            shown = client.show(result["id"])
        result["state"] = shown["state"]
        result["outputs"] = shown["outputs"]
        if shown["error"]:
            result["error"] = shown["error"]
    if as_json:
        echo_json(result)
    else:
        line = f"graph {result['id']} ({result['name']}) {result['state']}"
        if wait and result.get("outputs") is not None:
            line += f"  outputs: {short(result['outputs'], 100)}"
        click.echo(line)
    if wait and result["state"] != "finished":
        raise click.exceptions.Exit(1)


@graph.command(name="list")
@click.option("--state", type=click.Choice(GRAPH_STATES))
@click.option("--all", "include_nested", is_flag=True, help="Include nested graphs.")
@click.option("--limit", type=click.IntRange(1), default=None)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def list_(app: AppContext, state: str | None, include_nested: bool, limit: int | None,
          as_json: bool) -> None:
    """List graphs, newest first."""
    rows = app.client().list(state, limit=limit, nested=include_nested)
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no graphs")
        return
    click.echo(table(["id", "name", "state", "prio", "done", "scheduler"],
                     [[r["id"], r["name"], r["state"], r["priority"],
                       f"{r['tasks_done']}/{r['tasks_total']}", r["scheduler"] or "-"]
                      for r in rows]))


@graph.command()
@click.argument("graph_id", type=int)
@click.option("--copies", "all_copies", is_flag=True,
              help="List every copy of a mapped task (by default: its progress).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def show(app: AppContext, graph_id: int, all_copies: bool, as_json: bool) -> None:
    """Show a graph and its tasks (why each waiting task waits)."""
    data = app.client().show(graph_id)
    if as_json:
        echo_json(data)
        return
    click.echo(f"graph {data['id']}  {printable(data['name'])}  {data['state']}  priority "
               f"{data['priority']}  scheduler {data['scheduler'] or '-'}"
               + (f"  parent {data['parent']}" if data["parent"] else ""))
    rows = []
    for t in data["tasks"]:
        if t.get("copy_of") and not all_copies:
            continue
        took = (t["finished"] or time.time()) - t["started"] if t["started"] else None
        note = t["waiting_for"] or (t["error"]["message"] if t["error"] else "")
        if t.get("copies"):
            c = t["copies"]
            note = f"{c['done']}/{c['total']} copies done" + (
                f", {c['failed']} failed" if c["failed"] else "") + (f"; {note}" if note else "")
        if t["child"]:
            what = "built graph" if t.get("kind") == "build" else "nested graph"
            note = f"{what} {t['child']}" + (f"; {note}" if note else "")
        rows.append([t["name"], t["state"], t["attempts"], t["worker"] or "-", duration(took),
                     short(note, 60)])
    click.echo(table(["task", "state", "att", "worker", "took", "note"], rows))
    if data["outputs"] is not None:
        click.echo(f"outputs: {short(data['outputs'], 200)}")
    if data["error"]:
        click.echo(f"error: {data['error'].get('message')}")
    click.echo(f"created {age(data['created'])} ago")


def _bulk(action: str, help_text: str) -> None:
    @graph.command(name=action, help=help_text + "\n\nGraphs: IDs, or those in --state (several "
                   "allowed), whose name matches --name (fnmatch), or --all.")
    @click.argument("graph_ids", type=int, nargs=-1)
    @click.option("--state", "states", multiple=True, type=click.Choice(GRAPH_STATES))
    @click.option("--name", metavar="GLOB", help="Graphs whose name matches (fnmatch).")
    @click.option("--all", "all_", is_flag=True, help="Every top-level graph it applies to.")
    @click.option("--json", "as_json", is_flag=True, help='[{"id", "state"}] acted on.')
    @click.pass_obj
    def command(app: AppContext, graph_ids: tuple[int, ...], states: tuple[str, ...],
                name: str | None, all_: bool, as_json: bool) -> None:
        if not (graph_ids or states or name is not None or all_):
            raise click.UsageError(f"{action}: name graph IDs, --state, --name or --all")
        acted = getattr(app.client(), action)(*graph_ids, state=states, name=name,
                                                    all=all_)
        if as_json:
            echo_json([{"id": g["id"], "state": g["state"]} for g in acted])
            return
        for g in acted:
            click.echo(f"graph {g['id']} ({printable(g['name'])}) {g['state']}")
        if not graph_ids:
            click.echo(f"{len(acted)} graph{'s' if len(acted) != 1 else ''}")


_bulk("pause", "Stop dispatching new tasks (running tasks finish).")
_bulk("play", "Resume paused graphs.")
_bulk("kill", "Cancel running tasks and mark the rest killed (works without a scheduler).")
_bulk("retry", "Re-queue the failed, skipped and killed tasks of failed or killed graphs.")


@graph.command()
@click.argument("graph_id", type=int)
@click.option("--to", "to", required=True, metavar="SCHEDULER_ID")
@click.pass_obj
def reassign(app: AppContext, graph_id: int, to: str) -> None:
    """Move a live graph to another scheduler."""
    g = app.client().reassign(graph_id, to)
    click.echo(f"graph {g['id']} ({g['name']}) now owned by {g['scheduler']}")


@graph.command()
@click.argument("graph_id", type=int)
@click.argument("priority", type=click.IntRange(0, 9))
@click.pass_obj
def priority(app: AppContext, graph_id: int, priority: int) -> None:
    """Change a graph's priority (0..9, 9 first), nested graphs included."""
    g = app.client().set_priority(graph_id, priority)
    click.echo(f"graph {g['id']} ({g['name']}) priority {g['priority']}")
