"""The scheduler's liveness checks: what it does on its heartbeat besides beating.

Each check runs on a named interval of the scheduler's clock (:class:`Every`):

* every heartbeat, the graphs of dead schedulers are adopted (the one liveness rule of
  :mod:`wgops.store.liveness`) and reconciled from the database;
* every ``FENCE_CHECK`` heartbeats, the root graphs held in memory are checked against their
  rows (``FENCE_SLICE`` of them per check, in turn): one that another scheduler took over (a
  newer epoch: this one was cut off or paused longer than ``stale_after``) is dropped, with a
  log line, and no longer driven;
* every ``STALL_CHECK`` heartbeats, in-flight tasks that sent no news for a while are looked
  up in the database (their completion message may be lost; a task queued on a pool that no
  live worker serves is not: it can have none), and detached tasks whose worker
  died are queued again (no redelivery will bring them back);
* every ``ORPHAN_SWEEP`` heartbeats, graphs that no scheduler claimed long after they were
  submitted are launched again (their launch message may be lost).

:class:`Watchdog` is a part of :class:`~wgops.daemon.scheduler.SchedulerDaemon` (a mixin): the
checks act through the scheduler's own graph-life methods.
"""

from __future__ import annotations

import collections
import logging
from typing import TYPE_CHECKING, Any

from wgops.daemon.protocol import LaunchGraph
from wgops.store import execution, liveness, loading

if TYPE_CHECKING:
    from wgops.daemon.broker import Broker
    from wgops.daemon.graphrun import GraphRun, Node
    from wgops.store.config import Settings
    from wgops.store.db import AsyncStore

logger = logging.getLogger(__name__)

STALL_AFTER = 5.0          # seconds without news before in-flight tasks are checked in the DB
STALL_CHECK = 3            # heartbeats between stall (and detached task) checks
FENCE_CHECK = 2            # heartbeats between checks that the graphs held are still ours
FENCE_SLICE = 2000         # root graphs looked at per fence check (in turn)
ORPHAN_SWEEP = 10          # heartbeats between sweeps for unclaimed graphs
ORPHAN_AGE = 10            # stale_after multiples a graph stays unclaimed before it is relaunched
MAX_STALL_IDS = 5000       # tasks looked up per stall check


class Every:
    """A named interval on the caller's clock: ``due(now)`` is true at most once per
    ``seconds`` (the first call is due)."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self._next: float | None = None

    def due(self, now: float) -> bool:
        if self._next is not None and now < self._next:
            return False
        self._next = now + self.seconds
        return True


class Watchdog:
    """The scheduler's periodic liveness checks (see the module's docstring)."""

    id: str
    settings: Settings
    db: AsyncStore
    broker: Broker
    runs: dict[int, GraphRun]
    served: set[str]                  # pools some live worker serves (the scheduler's)

    def _start_watchdog(self) -> None:
        beat = self.settings.heartbeat
        self._stall_check = Every(STALL_CHECK * beat)
        self._orphan_sweep = Every(ORPHAN_SWEEP * beat)
        self._fence_check = Every(FENCE_CHECK * beat)
        self._fence_turn: collections.deque[int] = collections.deque()   # roots not yet seen

    async def watch(self, now: float) -> None:
        await self._adopt_dead(now)
        if self._fence_check.due(now):
            await self._drop_lost(now)
        if self._stall_check.due(now):
            await self._check_stalled(now)
            await self._check_detached(now)
        if self._orphan_sweep.due(now):
            await self._sweep_orphans(now)

    if TYPE_CHECKING:  # the scheduler's graph life, which the checks act through
        async def _load(self, root_id: int, now: float) -> None: ...

        async def _settle(self, run: GraphRun, node: Node, state: str, now: float) -> None: ...

        async def _apply_row(self, run: GraphRun, node: Node, state: str, attempts: int,
                             not_before: float | None, now: float) -> None: ...

        def _queue(self, run: GraphRun, node: Node) -> None: ...

        def _schedule_flush(self) -> None: ...

        def _forget_tree(self, graph_id: int) -> None: ...

    async def _adopt_dead(self, now: float) -> None:
        for dead in await self.db.read(liveness.dead_schedulers, self.id,
                                       self.settings.stale_after):
            roots = await self.db.write(liveness.adopt, dead, self.id)
            if roots:
                logger.warning("adopting %d graphs of dead scheduler %s", len(roots), dead)
            for gid in roots:
                await self._load(gid, now)

    async def _drop_lost(self, now: float) -> None:
        """Stop driving the root graphs whose rows say they are no longer ours (the epoch
        fence: every write of ours to them would be refused anyway). Each check looks at up
        to ``FENCE_SLICE`` of them, in turn: a check's cost is bounded, and with 10,000
        graphs held each is looked at every 5 checks."""
        if not self._fence_turn:
            self._fence_turn.extend(gid for gid, run in self.runs.items()
                                    if run.parent_task is None)
        held: dict[int, int] = {}
        while self._fence_turn and len(held) < FENCE_SLICE:
            run = self.runs.get(self._fence_turn.popleft())
            if run is not None:                 # still held (the turn holds roots only)
                held[run.id] = run.epoch
        for gid, owner, epoch, state in await self.db.read(loading.lost_roots, self.id, held):
            if gid not in self.runs or self.runs[gid].epoch != held[gid]:
                continue                    # reloaded meanwhile
            logger.warning("graph %s is no longer ours (epoch fence: held at epoch %d, now "
                           "epoch %d, owner %s, %s): stopped driving it", gid, held[gid], epoch,
                           owner or "none", state)
            self._forget_tree(gid)

    async def _sweep_orphans(self, now: float) -> None:
        min_age = ORPHAN_AGE * self.settings.stale_after
        for gid, priority in await self.db.read(liveness.orphans, min_age):
            await self.broker.publish(self.broker.names.graphs, LaunchGraph(graph=gid),
                                      priority=priority)

    async def _check_detached(self, now: float) -> None:
        """A detached task (its message acked early, near the broker's consumer_timeout)
        whose worker died has no message to be redelivered: queue it again (lost + 1), or
        quarantine it at ``max_lost``."""
        lost = await self.db.read(liveness.dead_worker_tasks, self.settings.stale_after,
                                  self.id, True)
        for task_id, graph_id, attempts, worker in lost:
            verdict = await self.db.write(execution.requeue_lost, task_id, attempts, worker,
                                          self.settings.max_lost, now)
            run = self.runs.get(graph_id)
            node = run.nodes.get(task_id) if run is not None else None
            if verdict == "raced" or run is None or node is None:
                continue
            logger.warning("detached task %s lost its worker %s: %s", task_id, worker, verdict)
            if verdict == "queued":
                node.attempt, node.state = attempts, "queued"
                self._queue(run, node)
            else:
                await self._settle(run, node, "failed", now)

    async def _check_stalled(self, now: float) -> None:
        """In-flight tasks with no news for a while: ask the database (a lost message)."""
        due: list[GraphRun] = []
        ids: list[int] = []
        for run in self.runs.values():
            if run.stall_due(now, STALL_AFTER):
                flying = run.in_flight()
                # a task queued on a pool no live worker serves can bring no news: asking
                # for it would cost a lookup per parked task, for nothing
                nodes = [n.id for n in flying if n.state != "queued" or n.pool in self.served]
                if nodes:
                    due.append(run)
                    ids.extend(nodes)
                elif flying:
                    run.quiet_checks += 1          # nothing to ask: checked, backing off
                    run.last_activity = now
            if len(ids) > MAX_STALL_IDS:
                break
        if not ids:
            return
        states: dict[int, Any] = await self.db.read(loading.task_states, ids)
        for run in due:
            if run.id not in self.runs:
                continue
            run.quiet_checks += 1
            run.last_activity = now
            for node in run.in_flight():
                row = states.get(node.id)
                if row is None or run.id not in self.runs:
                    continue
                if row[0] != node.state:
                    logger.info("task %s %s while nobody listened", node.id, row[0])
                await self._apply_row(run, node, *row, now)
        self._release_retries(now)
