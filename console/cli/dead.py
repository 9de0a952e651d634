"""``wgops dead list``: what was refused or quarantined (the ``DeadLetter`` table).

Rows come from two places: messages a daemon refused on receipt (malformed, unknown version,
oversized...), which also went to ``{ns}.dead``; and tasks quarantined after losing their
worker ``max_lost`` times (queue ``quarantine``).
"""

from __future__ import annotations

import time

import click

from wgops.console.cli.base import AppContext, cli
from wgops.console.cli.output import echo_json, short, table

BODY_WIDTH = 60


@cli.group()
def dead() -> None:
    """Dead letters: refused messages and quarantined tasks."""


@dead.command(name="list")
@click.option("--json", "as_json", is_flag=True)
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True,
              help="Newest N rows.")
@click.pass_obj
def dead_list(app: AppContext, as_json: bool, limit: int) -> None:
    """Newest dead letters first: time, queue, reason, daemon and a short body. Past
    max_dead_letters the oldest are dropped; how many is said on stderr."""
    from wgops.store import deadletters

    app.store()
    rows = deadletters.newest(limit)
    dropped = deadletters.dropped()
    if dropped:
        click.echo(f"{dropped} older dead letters were dropped (max_dead_letters "
                   f"{app.settings.max_dead_letters})", err=True)
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no dead letters")
        return
    click.echo(table(["time", "queue", "reason", "daemon", "body"],
                     [[time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["ts"])), r["queue"],
                       short(r["reason"], 70), r["daemon"] or "-",
                       short(r["body"].replace("\n", " "), BODY_WIDTH)] for r in rows]))
