"""The console's broker link: the events subscription and queue depths, with reconnection.

The console never backs up the broker: it reads ``{ns}.events`` through its own exclusive,
auto-deleting queue capped with ``x-max-length`` and ``x-overflow: drop-head`` (a slow console
loses the oldest events, the broker keeps nothing for it). Received events are coalesced: the
UI drains a bounded batch a few times a second plus the set of graph ids they touched.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

from wgops.console.data.model import Connection, EventBatch, EventRow
from wgops.daemon.protocol import Names
from wgops.daemon.subscription import EventSubscription
from wgops.store.config import Settings, mask_url

logger = logging.getLogger(__name__)

QUEUE_MAX = 2000            # x-max-length of the console's own events queue
KEEP = 500                  # events kept per drain (the rest are counted as dropped)
RATE_WINDOW = 10            # seconds of per-topic counts kept for rates
DEPTH_TIMEOUT = 2.0         # seconds a queue depth may take


def parse_event(body: bytes) -> EventRow | None:
    """An ``Event`` message body as an :class:`EventRow`, or None if it is not one."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("topic"), str):
        return None
    graph, task = data.get("graph"), data.get("task")
    extra = data.get("data")
    ts = data.get("ts")
    return EventRow(ts=float(ts) if isinstance(ts, (int, float)) else time.time(),
                    topic=data["topic"], graph=graph if isinstance(graph, int) else None,
                    task=task if isinstance(task, int) else None,
                    name=data.get("name") if isinstance(data.get("name"), str) else None,
                    state=data.get("state") if isinstance(data.get("state"), str) else None,
                    data=extra if isinstance(extra, dict) else {})


class EventBuffer:
    """Coalesces events between drains: bounded memory whatever the rate."""

    def __init__(self, keep: int = KEEP, clock: Callable[[], float] = time.monotonic):
        self.keep = keep
        self.clock = clock
        self._events: deque[EventRow] = deque(maxlen=keep)
        self._graphs: set[int] = set()
        self._pending = 0
        self.total = 0
        self._rates: deque[tuple[int, Counter[str]]] = deque(maxlen=RATE_WINDOW + 1)
        self._lock = threading.Lock()          # the link adds on its thread, the UI drains
        self.heartbeats: dict[str, dict[str, Any]] = {}     # daemon id -> last heartbeat data

    def add(self, event: EventRow) -> None:
        with self._lock:
            self._add(event)

    def _add(self, event: EventRow) -> None:
        self._events.append(event)
        self._pending += 1
        self.total += 1
        if event.graph is not None and len(self._graphs) < 10_000:
            self._graphs.add(event.graph)
        if event.topic == "daemon.heartbeat" and isinstance(event.data.get("id"), str):
            if len(self.heartbeats) < 1000 or event.data["id"] in self.heartbeats:
                self.heartbeats[event.data["id"]] = event.data
        second = int(self.clock())
        if not self._rates or self._rates[-1][0] != second:
            self._rates.append((second, Counter()))
        key = event.topic
        if event.topic.startswith("task.") and event.data.get("pool"):
            key = f"{event.topic}@{event.data['pool']}"
        self._rates[-1][1][key] += 1

    def drain(self) -> EventBatch:
        with self._lock:
            return self._drain()

    def _drain(self) -> EventBatch:
        batch = EventBatch(tuple(self._events), frozenset(self._graphs),
                           max(0, self._pending - len(self._events)), self.total)
        self._events.clear()
        self._graphs.clear()
        self._pending = 0
        return batch

    def rate(self, *topics: str) -> float:
        """Events per second over the last complete seconds, summed over ``topics``."""
        now = int(self.clock())
        total, seconds = 0, 0
        with self._lock:
            rates = list(self._rates)
        for second, counts in rates:
            if second >= now or second < now - RATE_WINDOW:
                continue
            seconds = max(seconds, now - second)
            total += sum(counts[t] for t in topics)
        return total / seconds if seconds else 0.0


class BrokerLink:
    """The console's broker link: a :class:`~wgops.daemon.subscription.EventSubscription`
    (its own thread and event loop, a robust connection, the capped exclusive queue, queue
    depths by passive declare) feeding the :class:`EventBuffer` the UI drains.

    Every (re)connection bumps :attr:`generation`, so the UI catches up from the database;
    decoding hundreds of messages a second happens on the subscription's thread, never on the
    UI's loop."""

    def __init__(self, settings: Settings, buffer: EventBuffer | None = None,
                 queue_max: int = QUEUE_MAX):
        self.settings = settings
        self.names = Names(settings.namespace)
        self.buffer = buffer or EventBuffer()
        self.subscription = EventSubscription(settings, "console", self._on_body,
                                              queue_max=queue_max)
        self._stop = threading.Event()
        self._url = mask_url(settings.broker_url)

    @property
    def queue_name(self) -> str:
        return self.subscription.queue_name

    @property
    def generation(self) -> int:
        return self.subscription.generation

    @property
    def state(self) -> Connection:
        sub = self.subscription
        return Connection(sub.connected, self._url, "" if sub.connected else sub.error)

    def _on_body(self, body: bytes) -> None:
        event = parse_event(body)
        if event is not None:
            self.buffer.add(event)

    async def run_in_thread(self) -> None:
        """Run the subscription until the calling task is cancelled (or :attr:`_stop` set)."""
        await asyncio.to_thread(self.subscription.start)
        try:
            await asyncio.to_thread(self._stop.wait)
        finally:
            self._stop.set()
            await asyncio.to_thread(self.subscription.stop)

    async def depth_from(self, queue: str) -> tuple[int, int] | None:
        """(messages, consumers) of ``queue``; None if it does not exist or the broker does
        not answer."""
        depths = await asyncio.to_thread(self.subscription.depths, [queue], DEPTH_TIMEOUT)
        return None if depths is None else depths.get(queue)
