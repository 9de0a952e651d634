"""What an installation holds right now, in numbers: the gauges of ``wgops metrics``.

Each number is one index-backed group-by (graphs by state on the state index, running tasks by
pool on the ``(state, worker)`` index, the daemon and pool tables), never a scan of all tasks:
a scrape costs the same with 100 graphs or with 10,000 active ones. Daemons count when they
are alive by the one liveness rule (:func:`wgops.store.liveness.alive`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from peewee import fn

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


def read_counts(stale_after: float) -> Counts:
    """The gauges, read in a handful of small queries (run inside a connection)."""
    counts = Counts()
    by_state = dict(Graph.select(Graph.state, fn.COUNT(Graph.id)).group_by(Graph.state)
                    .tuples())
    counts.graphs = {state: int(by_state.get(state, 0)) for state in GRAPH_STATES}
    counts.schedulers = Scheduler.select().where(
        alive(Scheduler, stale_after)).count()
    counts.pools = {"default"}
    for slots, busy, pools in Worker.select(Worker.slots, Worker.busy, Worker.pools).where(
            alive(Worker, stale_after)).tuples():
        counts.workers += 1
        busy = min(int(busy or 0), int(slots or 0))
        counts.slots_busy += busy
        counts.slots_free += int(slots or 0) - busy
        counts.pools.update(str(p) for p in (loads(pools) or []))
    running = (Task.select(Task.pool, fn.COUNT(Task.id))
               .where(Task.state == "running", Task.kind != "graph").group_by(Task.pool))
    counts.pool_running = {str(pool): int(n) for pool, n in running.tuples()}
    for name, cap in Pool.select(Pool.name, Pool.max_running).tuples():
        counts.pools.add(name)
        if cap is not None:
            counts.pool_max_running[name] = int(cap)
    counts.pools.update(counts.pool_running)
    for pool in counts.pools:
        counts.pool_running.setdefault(pool, 0)
    return counts
