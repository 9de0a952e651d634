"""Operator actions from the console: graphs through the API client (the CLI's path too,
:class:`wgops.AsyncClient`, actor ``console``), daemons through circus supervision."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from wgops.aclient import AsyncClient
from wgops.console.data import supervision
from wgops.store.config import Settings
from wgops.store.db import Store
from wgops.store.errors import Conflict, NotFound

GRAPH_ACTIONS = {"pause": "pause", "play": "play", "kill": "kill", "retry": "retry",
                 "reassign": "reassign", "priority": "set_priority", "delete": "delete"}


class Actions:
    """Runs actions for one console; the client connects to the broker on first use."""

    def __init__(self, settings: Settings, store: Store):
        self.settings = settings
        self.store = store
        self.client = AsyncClient(settings=settings, actor="console")

    async def graph(self, action: str, graph_id: int, *args: Any) -> str:
        """Run a graph action; return the line to show (errors raise ``WgopsError``)."""
        if action not in GRAPH_ACTIONS:
            raise ValueError(action)
        result = await getattr(self.client, GRAPH_ACTIONS[action])(graph_id, *args)
        graph = result[0] if isinstance(result, list) else result
        if action == "reassign":
            return f"graph {graph['id']} ({graph['name']}) now owned by {graph['scheduler']}"
        if action == "priority":
            return f"graph {graph['id']} ({graph['name']}) priority {graph['priority']}"
        if action == "delete":
            return (f"deleted graph {graph_id}: {graph['graphs']} graph rows and "
                    f"{graph['tasks']} tasks")
        return f"graph {graph['id']} ({graph['name']}) {graph['state']}"

    async def graphs(self, action: str, graph_ids: list[int]) -> str:
        """Run ``action`` (pause, play, kill, retry, delete) on each graph; those it cannot
        apply to are passed over and counted. Return the line to show."""
        if action not in ("pause", "play", "kill", "retry", "delete"):
            raise ValueError(action)
        done, refused = 0, []
        for gid in graph_ids:
            try:
                await getattr(self.client, action)(gid)
                done += 1
            except (Conflict, NotFound) as exc:
                refused.append(str(exc))
        past = {"pause": "paused", "play": "played", "kill": "killed", "retry": "retried",
                "delete": "deleted"}
        line = f"{past[action]} {done} graph{'s' if done != 1 else ''}"
        if refused:
            line += f"; {len(refused)} refused ({refused[0]}" + \
                    (", ..." if len(refused) > 1 else "") + ")"
        return line

    async def validate(self, path: str) -> dict[str, Any]:
        return await self.client.validate(Path(path).expanduser())

    async def submit(self, path: str, priority: int | None = None) -> str:
        result = await self.client.submit(Path(path).expanduser(), priority=priority)
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
        await self.client.close()
