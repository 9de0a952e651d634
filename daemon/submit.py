"""Submitting a graph (store, then publish the launch) and following it on ``{ns}.events``."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from wgops.daemon.broker import Broker
from wgops.daemon.protocol import LaunchGraph
from wgops.store.config import Settings
from wgops.store.db import Store, in_thread, open_store
from wgops.store.errors import Unreachable
from wgops.store.graphs import create_graph
from wgops.store.migrations import migrate
from wgops.store.models import GRAPH_TERMINAL, Graph, loads


class GraphFollower:
    """Follows graph transitions on ``{ns}.events`` through an exclusive auto-delete queue."""

    def __init__(self, broker: Broker):
        self.broker = broker
        self.states: dict[int, str] = {}
        self.changed = asyncio.Event()

    async def start(self) -> "GraphFollower":
        channel = await self.broker.new_channel(prefetch=100)
        queue = await channel.declare_queue("", exclusive=True, auto_delete=True,
                                            arguments={"x-max-length": 10_000})
        assert self.broker.events is not None
        await queue.bind(self.broker.names.events, routing_key="graph.*")
        await queue.consume(self._on_message, no_ack=True)
        return self

    async def _on_message(self, message: Any) -> None:
        try:
            data = json.loads(message.body)
            gid, state = data.get("graph"), data.get("state")
        except ValueError:
            return
        if isinstance(gid, int) and isinstance(state, str):
            self.states[gid] = state
            self.changed.set()

    async def wait(self, graph_id: int, store: Store, timeout: float | None) -> str:
        """Wait until the graph is terminal (events, with a slow database check as backstop)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            state = await in_thread(store, lambda: Graph.get_by_id(graph_id).state)
            if state in GRAPH_TERMINAL:
                return state
            while self.states.get(graph_id) not in GRAPH_TERMINAL:
                left = 2.0 if deadline is None else min(2.0, deadline - time.monotonic())
                if left <= 0:
                    return state
                self.changed.clear()
                try:
                    await asyncio.wait_for(self.changed.wait(), left)
                except TimeoutError:
                    break


async def submit_graph(settings: Settings, doc: dict[str, Any], priority: int | None = None,
                       wait: bool = False, timeout: float | None = None) -> dict[str, Any]:
    """Store ``doc`` and publish its launch; return ``{"id", "name", "state"}`` (+ outputs)."""
    store = open_store(settings.db_url)
    await in_thread(store, migrate, store)
    broker = await Broker(settings, "wgops-submit").connect()
    try:
        follower = await GraphFollower(broker).start() if wait else None

        def insert() -> Graph:
            with store.write():
                return create_graph(doc, priority=priority)

        graph = await in_thread(store, insert)
        try:
            await broker.ensure(broker.names.graphs)
            await broker.publish(broker.names.graphs, LaunchGraph(graph=graph.id),
                                 priority=graph.priority)
        except Exception as exc:
            await in_thread(store, lambda: Graph.delete().where(Graph.id == graph.id).execute())
            raise Unreachable(f"broker refused the launch message; graph not submitted ({exc})") \
                from None
        result: dict[str, Any] = {"id": graph.id, "name": graph.name, "state": graph.state}
        if follower is not None:
            result["state"] = await follower.wait(graph.id, store, timeout)
            final = await in_thread(store, Graph.get_by_id, graph.id)
            result["outputs"] = loads(final.outputs)
            if final.error:
                result["error"] = loads(final.error)
        return result
    finally:
        await broker.close()
