"""The scheduler's epoch fence check against a real store (both databases): it looks at a
bounded slice of the root graphs it holds per check, in turn, and drops every one another
scheduler took over within one turn of the slices."""

from __future__ import annotations

import time
from typing import Any

import pytest

from wgops.daemon import watchdog
from wgops.daemon.graphrun import GraphRun
from wgops.store import loading
from wgops.store.config import Settings
from wgops.store.db import AsyncStore, Store
from wgops.store.document import normalise
from wgops.store.graphs import create_graph
from wgops.store.migrations import migrate
from wgops.store.models import Graph, Task

DOC = normalise({"name": "fenced", "tasks": {"a": {"run": "tests.tasks:noop"}}}, "test")


class Fenced(watchdog.Watchdog):
    """The watchdog part of a scheduler, with its graphs held as a scheduler holds them."""

    def __init__(self, db: AsyncStore, runs: dict[int, GraphRun]):
        self.id = "s1"
        self.db = db
        self.runs = runs
        self.settings = Settings.load(env={})
        self._start_watchdog()

        self.served: set[str] = {"default"}
        self.applied: list[tuple[int, str]] = []

    def _forget_tree(self, graph_id: int) -> None:
        self.runs.pop(graph_id, None)

    async def _apply_row(self, run: GraphRun, node: Any, state: str, attempts: int,
                         not_before: float | None, now: float) -> None:
        self.applied.append((node.id, state))      # what the graph's life would settle

    def _release_retries(self, now: float) -> None:
        pass


def _held(db_url: str, docs: list[dict[str, Any]], now: float) -> dict[int, GraphRun]:
    setup = Store(db_url).connect()
    migrate(setup)
    with setup.write():
        ids = [create_graph(doc).id for doc in docs]
        for gid in ids:
            assert loading.claim(gid, "s1", now)
    runs = {}
    for gid in ids:
        [row] = loading.load_tree(gid, "s1")
        runs[gid] = GraphRun(row, now)
    setup.close()
    return runs


async def test_the_stall_check_asks_about_served_pools_only(db_url: str) -> None:
    """In-flight tasks with no news are looked up in the database, except those queued on a
    pool no live worker serves (they can bring none): their graph backs off all the same."""
    now = time.time()
    served = normalise({"name": "served", "tasks": {"a": {"run": "tests.tasks:noop"}}}, "t")
    parked = normalise({"name": "parked", "tasks": {"a": {"run": "tests.tasks:noop",
                                                          "pool": "nobody"}}}, "t")
    runs = _held(db_url, [served, parked], now)
    for run in runs.values():
        for node in run.nodes.values():
            node.state = "queued"                 # dispatched; the rows say finished:
    setup = Store(db_url).connect()
    with setup.write():
        Task.update(state="finished").execute()   # their ends were never heard of
    setup.close()
    db = AsyncStore(Store(db_url))
    db.start()
    try:
        dog: Any = Fenced(db, runs)
        later = now + 10 * watchdog.STALL_AFTER
        await dog._check_stalled(later)
        [(served_id, parked_id)] = [tuple(next(iter(r.nodes)) for r in runs.values())]
        assert dog.applied == [(served_id, "finished")]
        assert all(r.quiet_checks == 1 and r.last_activity == later for r in runs.values())
        dog.served.add("nobody")                  # a worker of that pool came up
        await dog._check_stalled(later + 100 * watchdog.STALL_AFTER)
        assert (parked_id, "finished") in dog.applied
    finally:
        await db.stop()


async def test_the_fence_check_takes_slices_in_turn_and_misses_nobody(
        db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    now = time.time()
    runs = _held(db_url, [DOC] * 7, now)
    ids = list(runs)
    taken = ids[1::2]                                     # another scheduler took these over
    setup = Store(db_url).connect()
    with setup.write():
        Graph.update(scheduler="s2", epoch=Graph.epoch + 1).where(
            Graph.id.in_(taken)).execute()
    setup.close()

    monkeypatch.setattr(watchdog, "FENCE_SLICE", 3)
    db = AsyncStore(Store(db_url))
    db.start()
    try:
        dog: Any = Fenced(db, runs)
        held = []
        for _ in range(3):                                # 7 graphs, 3 per check: one turn
            await dog._drop_lost(now)
            held.append(sorted(dog.runs))
        assert held[0] != held[-1]                        # not all dropped by the first check
        assert held[-1] == sorted(set(ids) - set(taken))
        await dog._drop_lost(now)                         # the next turn: nothing more to drop
        assert sorted(dog.runs) == sorted(set(ids) - set(taken))
    finally:
        await db.stop()
