"""The one object the console app talks to. :class:`LiveBackend` reads a real installation;
``console.scene.SceneBackend`` replays a fixed picture for screenshots and snapshot tests."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from wgops.console.data.actions import Actions
from wgops.console.data.events import BrokerLink, EventBuffer
from wgops.console.data.model import EventBatch, GraphQuery, GraphsPage, Status
from wgops.console.data.status import StatusPoller
from wgops.console.data.store import StoreReader
from wgops.store.config import Settings, mask_url
from wgops.store.db import Store


class Backend:
    """Reads, the event feed, the status, and the actions, for one console."""

    live = True

    def __init__(self, settings: Settings, store: Store):
        self.settings = settings
        self.store = store
        self.reader = StoreReader(store)
        self.actions = Actions(settings, store)

    @property
    def namespace(self) -> str:
        return self.settings.namespace

    @property
    def generation(self) -> int:
        """Bumped on every broker (re)connection: the console then catches up from the DB."""
        return 0

    def now(self) -> float:
        return time.time()

    async def start(self) -> None:
        """Start background I/O (called from a worker)."""

    async def close(self) -> None:
        await self.actions.close()
        await asyncio.to_thread(self.reader.close)

    async def status(self) -> Status:
        raise NotImplementedError

    def drain_events(self) -> EventBatch:
        return EventBatch((), frozenset(), 0, 0)

    async def graphs_page(self, query: GraphQuery) -> GraphsPage:
        return await self.reader.graphs_page(query)

    async def graph_detail(self, graph_id: int,
                           expanded: frozenset[str] = frozenset()) -> dict[str, Any]:
        return await self.reader.graph_detail(graph_id, self.now(), expanded)

    async def task_detail(self, graph_id: int, name: str) -> dict[str, Any]:
        return await self.reader.task_detail(graph_id, name)

    def describe(self) -> str:
        return f"{self.namespace} · {mask_url(self.settings.db_url)}"


class LiveBackend(Backend):
    """A running installation: its database, its broker, its circus arbiter."""

    def __init__(self, settings: Settings, store: Store):
        super().__init__(settings, store)
        self.buffer = EventBuffer()
        self.link = BrokerLink(settings, self.buffer)
        self.poller = StatusPoller(settings, self.reader, self.link)

    @property
    def generation(self) -> int:
        return self.link.generation

    async def start(self) -> None:
        await self.link.run_in_thread()

    async def close(self) -> None:
        stop = getattr(self.link, "_stop", None)
        if stop is not None:
            stop.set()
        await super().close()

    async def status(self) -> Status:
        return await self.poller.poll()

    def drain_events(self) -> EventBatch:
        return self.buffer.drain()
