"""``wgops graph delete`` and ``wgops graph prune``: removing terminal graphs with everything
under them (DESIGN §12); the client does the work (:meth:`wgops.Client.delete`,
:meth:`wgops.Client.prune`)."""

from __future__ import annotations

import click

from wgops.console.cli.base import AppContext
from wgops.console.cli.graph import graph
from wgops.console.cli.output import echo_json
from wgops.store.config import AGE_FORMS, parse_age
from wgops.store.errors import ConfigError
from wgops.store.models import GRAPH_TERMINAL


def _said(counts: dict[str, int], verb: str) -> str:
    return f"{verb} {counts['graphs']} graphs and {counts['tasks']} tasks"


@graph.command()
@click.argument("graph_ids", type=int, nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help='{"graphs": N, "tasks": M} removed.')
@click.pass_obj
def delete(app: AppContext, graph_ids: tuple[int, ...], as_json: bool) -> None:
    """Delete finished, failed or killed graphs with everything under them (nested graphs,
    tasks, event-log rows). One that is not terminal: nothing is deleted."""
    counts = app.client().delete(*graph_ids)
    if as_json:
        echo_json(counts)
    else:
        click.echo(_said(counts, "deleted") + " (nested graphs counted)")


def _age(ctx: click.Context, param: click.Parameter, value: str) -> float:
    try:
        return parse_age(value, "--older-than")
    except ConfigError:
        raise click.BadParameter(f"{value!r} is not an age; accepted forms: {AGE_FORMS}") \
            from None


@graph.command()
@click.option("--older-than", "older_than", required=True, metavar="AGE", callback=_age,
              help=f"Graphs that ended longer ago than this ({AGE_FORMS}).")
@click.option("--state", "states", multiple=True, type=click.Choice(GRAPH_TERMINAL),
              help="Only graphs that ended so (default: finished, failed and killed).")
@click.option("--dry-run", is_flag=True, help="Count what would go; delete nothing.")
@click.option("--json", "as_json", is_flag=True, help='{"graphs": N, "tasks": M}.')
@click.pass_obj
def prune(app: AppContext, older_than: float, states: tuple[str, ...], dry_run: bool,
          as_json: bool) -> None:
    """Delete terminal graphs that ended longer ago than AGE, with everything under them,
    in batches that keep the daemons running."""
    counts = app.client().prune(older_than, states=states or None, dry_run=dry_run)
    if as_json:
        echo_json(counts)
    else:
        click.echo(_said(counts, "would delete" if dry_run else "deleted")
                   + " (nested graphs counted)")
