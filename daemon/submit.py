"""Submitting a graph: store it, then publish its launch - to ``{ns}.graphs``, where exactly one
scheduler claims it, or to one named scheduler's inbox - and following graphs on
``{ns}.events``.

The API client (:mod:`wgops.aclient`) is the one caller that submits; it owns the
connections. Nothing stays stored when the launch cannot be published.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections.abc import Iterator
from typing import Any

from wgops.daemon.broker import Broker
from wgops.daemon.protocol import LaunchGraph
from wgops.store.config import Settings
from wgops.store.db import Store, in_thread
from wgops.store.errors import Conflict, Unreachable
from wgops.store.graphs import create_graph
from wgops.store.liveness import accepting_scheduler
from wgops.store.models import GRAPH_TERMINAL, Graph


async def launch(broker: Broker, graph_id: int, priority: int,
                 scheduler: str | None = None) -> None:
    """Publish a graph's launch message: on the graphs queue, or into ``scheduler``'s inbox
    (that scheduler claims it with the same compare-and-set; if it dies first, another
    scheduler's orphan sweep launches the graph again)."""
    if scheduler is None:
        await broker.ensure(broker.names.graphs)
        queue = broker.names.graphs
    else:
        queue = broker.names.scheduler(scheduler)
    await broker.publish(queue, LaunchGraph(graph=graph_id), priority=priority)


async def check_scheduler(settings: Settings, store: Store, broker: Broker, sid: str) -> None:
    """Refuse a scheduler that may not be handed a graph: ``NotFound`` when there is none by
    that id, ``Conflict`` when it is dead or stopping (the one liveness rule) or its inbox
    is gone from the broker."""
    await in_thread(store, accepting_scheduler, sid, settings.stale_after)
    if await broker.depth(broker.names.scheduler(sid)) is None:
        raise Conflict(f"scheduler {sid} has no inbox on the broker (is it running?)")


async def submit(settings: Settings, store: Store, broker: Broker, doc: dict[str, Any],
                 priority: int | None = None, scheduler: str | None = None) -> Graph:
    """Store a normalised document and publish its launch; return the graph's row.

    ``scheduler``: hand it to that live scheduler instead of the graphs queue (checked
    before anything is stored)."""
    if scheduler is not None:
        await check_scheduler(settings, store, broker, scheduler)
    graph = await in_thread(store, functools.partial(create_graph, doc, priority=priority),
                            write=True)
    try:
        await launch(broker, graph.id, graph.priority, scheduler)
    except Exception as exc:
        await in_thread(store, _delete_graph, graph.id, write=True)
        raise Unreachable(f"broker refused the launch message; graph not submitted ({exc})") \
            from None
    return graph


def _delete_graph(graph_id: int) -> None:
    Graph.delete().where(Graph.id == graph_id).execute()


class GraphFollower:
    """Follows graph transitions on ``{ns}.events`` through an exclusive, auto-deleted queue
    of its own: :meth:`watch` gives an ``asyncio.Event`` set when the graph's state is
    announced terminal (the database stays the truth: re-read it when the event is set)."""

    def __init__(self, broker: Broker):
        self.broker = broker
        self._watchers: dict[int, set[asyncio.Event]] = {}
        self._channel: Any = None

    async def start(self) -> "GraphFollower":
        self._channel = await self.broker.new_channel(prefetch=100)
        queue = await self._channel.declare_queue("", exclusive=True, auto_delete=True,
                                                  arguments={"x-max-length": 10_000})
        await queue.bind(self.broker.names.events, routing_key="graph.*")
        await queue.consume(self._on_message, no_ack=True)
        return self

    async def close(self) -> None:
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()
        self._channel = None

    @contextlib.contextmanager
    def watch(self, graph_id: int) -> Iterator[asyncio.Event]:
        event = asyncio.Event()
        self._watchers.setdefault(graph_id, set()).add(event)
        try:
            yield event
        finally:
            watchers = self._watchers.get(graph_id)
            if watchers is not None:
                watchers.discard(event)
                if not watchers:
                    del self._watchers[graph_id]

    async def _on_message(self, message: Any) -> None:
        try:
            data = json.loads(message.body)
            gid, state = data.get("graph"), data.get("state")
        except (ValueError, AttributeError):
            return
        if isinstance(gid, int) and state in GRAPH_TERMINAL:
            for event in self._watchers.get(gid, ()):
                event.set()
