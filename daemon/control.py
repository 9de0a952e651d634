"""Operator actions end to end: the database change (``store.control``), then the wake-ups.

Used by the API client (:mod:`wgops.aclient`), and through it by the CLI and the console.
The database change is the action; the messages only tell the daemons sooner (a daemon that
misses one finds the change when it reconciles).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from wgops.daemon.broker import Broker, event
from wgops.daemon.protocol import Control
from wgops.daemon.submit import launch
from wgops.store import control as db_control
from wgops.store.config import Settings
from wgops.store.db import Store, in_thread
from wgops.store.models import Graph

logger = logging.getLogger(__name__)


class Controller:
    """Runs operator actions for one client (CLI invocation or console)."""

    def __init__(self, settings: Settings, store: Store, broker: Broker, actor: str = "cli"):
        self.settings = settings
        self.store = store
        self.broker = broker
        self.actor = actor
        self.names = broker.names

    async def _db(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await in_thread(self.store, fn, *args)

    async def tell_scheduler(self, sid: str | None, op: str, graph: int | None = None,
                             **args: Any) -> None:
        if sid:
            await self.broker.publish(self.names.scheduler(sid),
                                      Control(op=op, graph=graph, args=args), mandatory=False)

    async def tell_worker(self, wid: str, op: str, task: int | None = None, **args: Any) -> None:
        await self.broker.publish(self.names.worker(wid), Control(op=op, task=task, args=args),
                                  mandatory=False)

    async def launch(self, graph: Graph) -> None:
        await launch(self.broker, graph.id, graph.priority)

    async def _announce(self, graph: Graph, action: str) -> None:
        await self.broker.emit(event(f"graph.{graph.state}", graph=graph.id, name=graph.name,
                                     state=graph.state, data={"action": action,
                                                              "actor": self.actor}))

    async def pause(self, graph_id: int) -> Graph:
        graph = await self._db(db_control.pause, self.store, graph_id, self.actor)
        await self.tell_scheduler(graph.scheduler, "refresh", graph.id)
        await self._announce(graph, "pause")
        return graph

    async def play(self, graph_id: int) -> Graph:
        graph = await self._db(db_control.play, self.store, graph_id, self.actor)
        if graph.scheduler:
            await self.tell_scheduler(graph.scheduler, "refresh", graph.id)
        else:
            await self.launch(graph)
        await self._announce(graph, "play")
        return graph

    async def kill(self, graph_id: int) -> Graph:
        graph, running = await self._db(db_control.kill, self.store, graph_id, self.actor)
        for task_id, worker in running:
            await self.tell_worker(worker, "cancel", task_id)
        await self.tell_scheduler(graph.scheduler, "drop", graph.id)
        await self._announce(graph, "kill")
        return graph

    async def retry(self, graph_id: int) -> Graph:
        graph = await self._db(db_control.retry, self.store, graph_id, self.actor)
        await self.launch(graph)
        await self._announce(graph, "retry")
        return graph

    async def reassign(self, graph_id: int, to: str) -> Graph:
        graph, old = await self._db(db_control.reassign, self.store, graph_id, to,
                                    self.settings.stale_after, self.actor)
        await self.tell_scheduler(old, "drop", graph.id)
        await self.tell_scheduler(to, "adopt", graph.id)
        await self._announce(graph, "reassign")
        return graph

    async def priority(self, graph_id: int, priority: int) -> Graph:
        graph = await self._db(db_control.set_priority, self.store, graph_id, priority,
                               self.actor)
        await self.tell_scheduler(graph.scheduler, "refresh", graph.id)
        await self._announce(graph, "priority")
        return graph

    async def set_pool(self, name: str, max_running: int | None) -> Any:
        pool = await self._db(db_control.set_pool, self.store, name, max_running, self.actor)
        await self.broker.emit(event("pool.changed", data={"pool": name,
                                                          "max_running": max_running}))
        return pool
