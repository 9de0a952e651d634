"""Operator actions from the console: the CLI's control path (``daemon.control.Controller``)
for graphs, circus supervision for daemons, ``daemon.submit`` for new graphs."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from wgops.console.data import supervision
from wgops.daemon.broker import Broker
from wgops.daemon.control import Controller
from wgops.daemon.submit import submit_graph
from wgops.store.config import Settings
from wgops.store.db import Store
from wgops.store.document import load_document

GRAPH_ACTIONS = ("pause", "play", "kill", "retry", "reassign", "priority")


class Actions:
    """Runs actions for one console; the broker connection is opened on first use."""

    def __init__(self, settings: Settings, store: Store):
        self.settings = settings
        self.store = store
        self._broker: Broker | None = None
        self._lock = asyncio.Lock()

    async def _controller(self) -> Controller:
        async with self._lock:
            if self._broker is None or self._broker.connection is None or \
                    self._broker.connection.is_closed:
                self._broker = await Broker(self.settings, "wgops-console-actions").connect()
        return Controller(self.settings, self.store, self._broker, actor="console")

    async def graph(self, action: str, graph_id: int, *args: Any) -> str:
        """Run a graph action; return the line to show (errors raise ``WgopsError``)."""
        if action not in GRAPH_ACTIONS:
            raise ValueError(action)
        controller = await self._controller()
        graph = await getattr(controller, action)(graph_id, *args)
        if action == "reassign":
            return f"graph {graph.id} ({graph.name}) now owned by {graph.scheduler}"
        if action == "priority":
            return f"graph {graph.id} ({graph.name}) priority {graph.priority}"
        return f"graph {graph.id} ({graph.name}) {graph.state}"

    async def validate(self, path: str) -> dict[str, Any]:
        return await asyncio.to_thread(load_document, Path(path).expanduser(), None,
                                       self.settings.max_document_bytes)

    async def submit(self, path: str, priority: int | None = None) -> str:
        doc = await self.validate(path)
        result = await submit_graph(self.settings, doc, priority=priority)
        return f"submitted graph {result['id']} ({result['name']}) {result['state']}"

    async def daemons(self, action: str, kind: str = "", n: int = 1) -> str:
        """``start`` | ``stop`` | ``incr`` | ``decr`` (``kind`` scheduler or worker)."""
        if action == "start":
            return await asyncio.to_thread(supervision.start, self.settings)
        if action == "stop":
            return await asyncio.to_thread(supervision.stop, self.settings)
        if action in ("incr", "decr"):
            delta = n if action == "incr" else -n
            return await asyncio.to_thread(supervision.scale, self.settings, kind, delta)
        raise ValueError(action)

    async def close(self) -> None:
        if self._broker is not None:
            await self._broker.close()
            self._broker = None
