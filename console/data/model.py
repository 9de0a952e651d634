"""Value types shown by the console. Immutable, cheap to compare (the UI diffs them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SORT_KEYS = ("id", "name", "state", "priority", "scheduler", "age")
PAGE_SIZE = 200


@dataclass(frozen=True)
class GraphQuery:
    """What the graphs table asks for: a filter, a sort and a bounded page."""

    text: str = ""
    sort: str = "id"
    descending: bool = True
    limit: int = PAGE_SIZE

    def next_sort(self) -> "GraphQuery":
        i = SORT_KEYS.index(self.sort) if self.sort in SORT_KEYS else 0
        key = SORT_KEYS[(i + 1) % len(SORT_KEYS)]
        return GraphQuery(self.text, key, key in ("id", "priority", "age"), self.limit)


@dataclass(frozen=True)
class GraphRow:
    id: int
    name: str
    state: str
    done: int
    total: int
    scheduler: str | None
    priority: int
    created: float


@dataclass(frozen=True)
class GraphsPage:
    rows: tuple[GraphRow, ...]
    matched: int                      # rows matching the filter (the page shows <= limit)
    counts: dict[str, int]            # top-level graphs per state, unfiltered
    query: GraphQuery


@dataclass(frozen=True)
class DaemonRow:
    kind: str                         # arbiter | scheduler | worker
    id: str
    pid: int | None
    state: str                        # running | stopped | flapping | dead
    uptime: float | None
    cpu: float | None
    memory: int | None                # bytes
    graphs: int | None = None


@dataclass(frozen=True)
class QueueRow:
    name: str
    messages: int | None
    consumers: int | None
    rate_in: float | None = None
    rate_out: float | None = None
    history: tuple[int, ...] = ()


@dataclass(frozen=True)
class SlotRow:
    worker: str
    slots: int
    executing: int
    reserved: int
    pools: tuple[str, ...] = ()
    alive: bool = True


@dataclass(frozen=True)
class PoolRow:
    name: str
    running: int
    queued: int
    cap: int | None


@dataclass(frozen=True)
class Connection:
    ok: bool
    url: str
    detail: str = ""                  # why it is down / when it retries


@dataclass(frozen=True)
class Status:
    broker: Connection
    database: Connection
    daemons: tuple[DaemonRow, ...] = ()
    queues: tuple[QueueRow, ...] = ()
    slots: tuple[SlotRow, ...] = ()
    pools: tuple[PoolRow, ...] = ()
    supervised: bool = False          # a circus arbiter answers
    at: float = 0.0


@dataclass(frozen=True)
class EventRow:
    ts: float
    topic: str
    graph: int | None = None
    task: int | None = None
    name: str | None = None
    state: str | None = None
    data: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def text(self) -> str:
        """The searchable one-line form (what the events filter matches)."""
        parts = [self.topic]
        if self.graph is not None:
            parts.append(f"graph={self.graph}")
        if self.name:
            parts.append(self.name)
        if self.state:
            parts.append(self.state)
        for key, value in sorted(self.data.items()):
            parts.append(f"{key}={value}")
        return " ".join(str(p) for p in parts)


@dataclass(frozen=True)
class EventBatch:
    """What one drain of the events feed yields: the new events (bounded) and what they touch."""

    events: tuple[EventRow, ...]
    graphs: frozenset[int]            # graph ids named by the batch
    dropped: int                      # events not kept (more than the batch bound)
    total: int                        # events received since start
