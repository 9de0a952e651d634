"""``wgops graph``: validate, submit, list, show, and the operator actions."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import click

from wgops.console.cli.base import AppContext, cli, fail
from wgops.console.cli.output import age, duration, echo_json, printable, short, table
from wgops.store.document import load_document, parse_overrides
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
    doc = load_document(file, parse_overrides(overrides), app.settings.max_document_bytes)
    if as_json:
        echo_json({"name": doc["name"], "valid": True, "tasks": len(doc["tasks"])})
    else:
        click.echo(f"{file}: valid graph {doc['name']!r} with {len(doc['tasks'])} tasks")


@graph.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--priority", type=click.IntRange(0, 9), help="0..9, 9 runs first.")
@click.option("--set", "overrides", multiple=True, metavar="K=V", help="Override an input.")
@click.option("--wait", is_flag=True, help="Follow the graph until it ends.")
@click.option("--timeout", type=float, help="With --wait: give up after this many seconds.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def submit(app: AppContext, file: Path, priority: int | None, overrides: tuple[str, ...],
           wait: bool, timeout: float | None, as_json: bool) -> None:
    """Store a graph and put it on the graphs queue."""
    from wgops.daemon.submit import submit_graph

    doc = load_document(file, parse_overrides(overrides), app.settings.max_document_bytes)
    result = app.run(submit_graph(app.settings, doc, priority=priority, wait=wait,
                                  timeout=timeout))
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
    from wgops.store.graphs import list_graphs

    app.store()
    rows = list_graphs(state=state, limit=limit, include_nested=include_nested)
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
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def show(app: AppContext, graph_id: int, as_json: bool) -> None:
    """Show a graph and its tasks (why each waiting task waits)."""
    from wgops.store.graphs import show_graph

    app.store()
    data = show_graph(graph_id)
    if as_json:
        echo_json(data)
        return
    click.echo(f"graph {data['id']}  {printable(data['name'])}  {data['state']}  priority "
               f"{data['priority']}  scheduler {data['scheduler'] or '-'}"
               + (f"  parent {data['parent']}" if data["parent"] else ""))
    rows = []
    for t in data["tasks"]:
        took = (t["finished"] or time.time()) - t["started"] if t["started"] else None
        note = t["waiting_for"] or (t["error"]["message"] if t["error"] else "")
        if t["child"]:
            note = f"nested graph {t['child']}" + (f"; {note}" if note else "")
        rows.append([t["name"], t["state"], t["attempts"], t["worker"] or "-", duration(took),
                     short(note, 60)])
    click.echo(table(["task", "state", "att", "worker", "took", "note"], rows))
    if data["outputs"] is not None:
        click.echo(f"outputs: {short(data['outputs'], 200)}")
    if data["error"]:
        click.echo(f"error: {data['error'].get('message')}")
    click.echo(f"created {age(data['created'])} ago")


def _action(app: AppContext, method: str, *args: Any) -> Any:
    from wgops.daemon.broker import Broker
    from wgops.daemon.control import Controller

    async def go() -> Any:
        store = app.store()
        broker = await Broker(app.settings, "wgops-cli").connect()
        try:
            return await getattr(Controller(app.settings, store, broker), method)(*args)
        finally:
            await broker.close()

    return app.run(go())


def _simple(name: str, help_text: str) -> None:
    @graph.command(name=name, help=help_text)
    @click.argument("graph_ids", type=int, nargs=-1, required=True)
    @click.pass_obj
    def command(app: AppContext, graph_ids: tuple[int, ...]) -> None:
        for gid in graph_ids:
            g = _action(app, name, gid)
            click.echo(f"graph {g.id} ({g.name}) {g.state}")


_simple("pause", "Stop dispatching new tasks (running tasks finish).")
_simple("play", "Resume a paused graph.")
_simple("kill", "Cancel running tasks and mark the rest killed (works without a scheduler).")


@graph.command()
@click.argument("graph_id", type=int)
@click.pass_obj
def retry(app: AppContext, graph_id: int) -> None:
    """Re-queue the failed, skipped and killed tasks of a graph."""
    g = _action(app, "retry", graph_id)
    click.echo(f"graph {g.id} ({g.name}) {g.state}")


@graph.command()
@click.argument("graph_id", type=int)
@click.option("--to", "to", required=True, metavar="SCHEDULER_ID")
@click.pass_obj
def reassign(app: AppContext, graph_id: int, to: str) -> None:
    """Move a live graph to another scheduler."""
    g = _action(app, "reassign", graph_id, to)
    click.echo(f"graph {g.id} ({g.name}) now owned by {g.scheduler}")


@graph.command()
@click.argument("graph_id", type=int)
@click.argument("priority", type=click.IntRange(0, 9))
@click.pass_obj
def priority(app: AppContext, graph_id: int, priority: int) -> None:
    """Change a graph's priority (0..9, 9 first), nested graphs included."""
    g = _action(app, "priority", graph_id, priority)
    click.echo(f"graph {g.id} ({g.name}) priority {g.priority}")


__all__ = ["graph", "fail", "asyncio"]
