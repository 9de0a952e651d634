"""What an installation holds right now, in numbers: the gauges of ``wgops metrics``.

Each number is one part of one statement (a round trip): a group-by of the graphs by state (the
graph rows are narrow: their documents are a table of their own), running tasks by pool on the
``(state, worker)`` index, the daemon and pool tables; never a scan of all tasks. Daemons
count when they are alive by the one liveness rule (:func:`wgops.store.liveness.alive`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import peewee
from peewee import fn

from wgops.store.db import Statement, param
from wgops.store.liveness import alive
from wgops.store.models import GRAPH_STATES, Graph, Pool, Scheduler, Task, Worker, loads


@dataclass
class Counts:
    """One reading of the store."""

    graphs: dict[str, int] = field(default_factory=dict)        # every state, nested included
    schedulers: int = 0                                          # alive
    workers: int = 0                                             # alive
    slots_busy: int = 0                                          # of alive workers
    slots_free: int = 0
    pool_running: dict[str, int] = field(default_factory=dict)   # leaf tasks running, by pool
    pool_max_running: dict[str, int] = field(default_factory=dict)   # capped pools only
    pools: set[str] = field(default_factory=set)                 # every pool known


def _gauges() -> peewee.SelectQuery:
    """Every number of a reading in one statement, one round trip: rows of (part, key, a, b)
    — graphs by state, live schedulers, each live worker (pools, slots, busy), running leaf
    tasks by pool, and the pools with their caps."""
    stale = param("stale_after")
    no_key, no_b = peewee.SQL("CAST(NULL AS TEXT)"), peewee.SQL("CAST(NULL AS INTEGER)")

    def part(name: str) -> peewee.Node:
        return peewee.SQL(f"'{name}'")

    return (Graph.select(part("g").alias("part"), Graph.state.alias("key"),
                         fn.COUNT(Graph.id).alias("a"), no_b.alias("b"))
            .group_by(Graph.state)
            .union_all(Scheduler.select(part("s"), no_key, fn.COUNT(Scheduler.id), no_b)
                       .where(alive(Scheduler, stale)))
            .union_all(Worker.select(part("w"), Worker.pools, Worker.slots, Worker.busy)
                       .where(alive(Worker, stale)))
            .union_all(Task.select(part("r"), Task.pool, fn.COUNT(Task.id), no_b)
                       .where(Task.state == "running", Task.kind != "graph")
                       .group_by(Task.pool))
            .union_all(Pool.select(part("p"), Pool.name, Pool.max_running, no_b)))


_GAUGES = Statement(_gauges)


def read_counts(stale_after: float) -> Counts:
    """The gauges, read in one statement (run inside a connection)."""
    counts = Counts()
    counts.pools = {"default"}
    by_state: dict[str, int] = {}
    for part, key, a, b in _GAUGES.execute(stale_after=stale_after).fetchall():
        if part == "g":
            by_state[key] = int(a)
        elif part == "s":
            counts.schedulers = int(a)
        elif part == "w":
            slots = int(a or 0)
            busy = min(int(b or 0), slots)
            counts.workers += 1
            counts.slots_busy += busy
            counts.slots_free += slots - busy
            counts.pools.update(str(p) for p in (loads(key) or []))
        elif part == "r":
            counts.pool_running[str(key)] = int(a)
        else:
            counts.pools.add(key)
            if a is not None:
                counts.pool_max_running[key] = int(a)
    counts.graphs = {state: by_state.get(state, 0) for state in GRAPH_STATES}
    counts.pools.update(counts.pool_running)
    for pool in counts.pools:
        counts.pool_running.setdefault(pool, 0)
    return counts
