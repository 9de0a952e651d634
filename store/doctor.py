"""``wgops doctor``, the database half: where the rows say something the daemons no longer do.

Each check is a read; each repair is a compare-and-set in the caller's write transaction, so
running the doctor next to live daemons is safe (a repair that loses a race changes nothing).
Dead owners and tasks on dead workers are found by the one liveness rule
(:mod:`wgops.store.liveness`); the broker half (queue depths, re-publishing) is
:mod:`wgops.daemon.doctor`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from wgops.store.models import Graph, Task

ACTOR = "doctor"


@dataclass
class Finding:
    """One inconsistency; ``repaired`` says whether ``--repair`` fixed it."""

    check: str           # dead_owner | dead_worker | queued_without_message | unlaunched_graph
    message: str
    graph: int | None = None
    task: int | None = None
    daemon: str | None = None
    repaired: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def queued_tasks(older_than: float, now: float) -> dict[str, list[tuple[int, int]]]:
    """{pool: [(task, graph)]}: tasks queued (not waiting for a retry delay) for a while, in
    graphs that are running. Whether their message exists is the broker's half."""
    out: dict[str, list[tuple[int, int]]] = {}
    query = (Task.select(Task.id, Task.graph, Task.pool).join(Graph)
             .where(Task.state == "queued", Task.kind != "graph", Graph.state == "running",
                    Task.queued_at < older_than,
                    Task.not_before.is_null() | (Task.not_before <= now)))
    for tid, gid, pool in query.tuples():
        out.setdefault(pool, []).append((tid, gid))
    return out
