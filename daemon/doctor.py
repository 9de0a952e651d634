"""``wgops doctor``: an online consistency check between the database and the broker.

The daemons keep running; the doctor reads the store (:mod:`store.doctor`), looks at queue
depths (passive declares), and with ``repair`` fixes what it found through the daemons' own
paths: a launch message for a graph nobody drives, a re-queue (compare-and-set) for a task
whose worker is gone, and a ``refresh`` to the owning scheduler, which reloads the graph from
the database and re-publishes its queued tasks (settling what it finds over: a mapped task
whose copies all ended, a built graph never started, a nested graph that ended). Duplicate
messages are harmless: a worker's start is a compare-and-set on the attempt, so a second copy
is dropped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from wgops.daemon.broker import Broker
from wgops.daemon.protocol import Control, LaunchGraph
from wgops.store import doctor as checks
from wgops.store import execution, liveness, loading
from wgops.store.config import Settings
from wgops.store.db import Store, in_thread

MIN_AGE = 5.0      # seconds a row must have been in its state before it counts as stuck


class Doctor:
    def __init__(self, settings: Settings, store: Store, broker: Broker,
                 min_age: float = MIN_AGE):
        self.settings = settings
        self.store = store
        self.broker = broker
        self.names = broker.names
        self.min_age = min_age
        self.findings: list[checks.Finding] = []

    async def _read(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await in_thread(self.store, fn, *args)

    async def _write(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await in_thread(self.store, fn, *args, write=True)

    async def _empty(self, queue: str) -> bool:
        depth = await self.broker.depth(queue)
        return depth is None or depth[0] == 0

    async def examine(self, repair: bool) -> dict[str, Any]:
        now = time.time()
        stale_after = self.settings.stale_after
        owners = await self._read(liveness.dead_owners, stale_after)
        lost = await self._read(liveness.dead_worker_tasks, stale_after)
        queued = await self._read(checks.queued_tasks, now - self.min_age, now)
        unclaimed = await self._read(liveness.orphans, self.min_age)
        unsettled = await self._read(checks.unsettled_tasks, now - self.min_age)
        released = {gid for roots in owners.values() for gid in roots}
        launch: dict[int, int] = {}
        refresh: set[int] = set()

        for owner, roots in owners.items():
            for gid in roots:
                self._found("dead_owner", f"graph {gid} belongs to scheduler {owner}, which "
                            "is gone", graph=gid, daemon=owner)
            if repair:
                for gid, priority in await self._write(liveness.release, owner, checks.ACTOR,
                                                       f"owner {owner} is gone"):
                    launch[gid] = priority
                    self._repaired(graph=gid, check="dead_owner")
        for task_id, graph_id, attempts, worker in lost:
            finding = self._found("dead_worker", f"task {task_id} is running on worker "
                                  f"{worker}, which is gone", graph=graph_id, task=task_id,
                                  daemon=worker)
            if repair:
                verdict = await self._write(execution.requeue_lost, task_id, attempts, worker,
                                            self.settings.max_lost, now, checks.ACTOR, False)
                finding.repaired = verdict != "raced"
                finding.extra["outcome"] = verdict
                refresh.add(graph_id)
        for pool, tasks in queued.items():
            if not await self._empty(self.names.tasks(pool)):
                continue
            for task_id, graph_id in tasks:
                finding = self._found("queued_without_message", f"task {task_id} is queued "
                                      f"but {self.names.tasks(pool)} is empty", graph=graph_id,
                                      task=task_id)
                if repair:
                    refresh.add(graph_id)
                    finding.repaired = True
        for task_id, graph_id, why in unsettled:
            if graph_id in released:
                continue
            finding = self._found("unsettled_task", f"task {task_id} is running but {why}",
                                  graph=graph_id, task=task_id)
            if repair:
                refresh.add(graph_id)
                finding.repaired = True
        if unclaimed and await self._empty(self.names.graphs):
            for gid, priority in unclaimed:
                if gid in released:
                    continue
                finding = self._found("unlaunched_graph", f"graph {gid} has no scheduler and "
                                      f"{self.names.graphs} is empty", graph=gid)
                if repair:
                    launch[gid] = priority
                    finding.repaired = True
        if repair:
            await self._launch(launch)
            await self._refresh(refresh - set(launch), now)
        return {"ok": all(f.repaired for f in self.findings) if repair else not self.findings,
                "repair": repair, "findings": [f.to_dict() for f in self.findings]}

    def _found(self, check: str, message: str, **fields: Any) -> checks.Finding:
        finding = checks.Finding(check, message, **fields)
        self.findings.append(finding)
        return finding

    def _repaired(self, graph: int, check: str) -> None:
        for finding in self.findings:
            if finding.graph == graph and finding.check == check:
                finding.repaired = True

    async def _launch(self, graphs: dict[int, int]) -> None:
        if graphs:
            await self.broker.ensure(self.names.graphs)
        for gid, priority in graphs.items():
            await self.broker.publish(self.names.graphs, LaunchGraph(graph=gid),
                                      priority=priority)

    async def _refresh(self, graphs: set[int], now: float) -> None:
        """Ask each graph's owner to reload it from the database (re-publishing its queued
        tasks); a graph whose owner is gone is launched instead."""
        for gid in sorted(graphs):
            owner = await self._read(loading.current_owner, gid)
            if await self._read(liveness.scheduler_alive, owner, self.settings.stale_after):
                await self.broker.publish(self.names.scheduler(owner),
                                          Control(op="refresh", graph=gid), mandatory=False)


async def run_doctor(settings: Settings, store: Store, repair: bool,
                     min_age: float = MIN_AGE) -> dict[str, Any]:
    broker = Broker(settings, "wgops-doctor")
    await broker.connect()
    try:
        return await Doctor(settings, store, broker, min_age).examine(repair)
    finally:
        await broker.close()
