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
import os
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection

from wgops.console.data.model import Connection, EventBatch, EventRow
from wgops.daemon.protocol import Names
from wgops.daemon.signing import Signer
from wgops.store.config import Settings, mask_url
from wgops.store.errors import ProtocolError

logger = logging.getLogger(__name__)

QUEUE_MAX = 2000            # x-max-length of the console's own events queue
KEEP = 500                  # events kept per drain (the rest are counted as dropped)
RATE_WINDOW = 10            # seconds of per-topic counts kept for rates
RECONNECT_INTERVAL = 1.0    # seconds between reconnection attempts once connected
DEPTH_TIMEOUT = 2.0         # seconds a queue depth may take
ERRORS = (ConnectionError, OSError, asyncio.TimeoutError, aiormq.exceptions.AMQPError,
          aio_pika.exceptions.AMQPException)


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
    """One robust AMQP connection for events and depths.

    The first connection is retried with back-off until the broker answers; from then on
    aio-pika's robust connection reconnects by itself and restores the console's queue, its
    binding and its consumer. Every (re)connection bumps :attr:`generation`, so the UI
    catches up from the database. It runs on its own thread with its own event loop
    (:meth:`run_in_thread`), so decoding hundreds of messages a second never delays a key
    press on the UI's loop; the UI reads the coalesced :class:`EventBuffer` and asks for
    depths through :meth:`depth_from`.
    """

    def __init__(self, settings: Settings, buffer: EventBuffer | None = None,
                 queue_max: int = QUEUE_MAX):
        self.settings = settings
        self.names = Names(settings.namespace)
        self.buffer = buffer or EventBuffer()
        self.queue_max = queue_max
        self.connection: AbstractRobustConnection | None = None
        self._depth_channel: AbstractChannel | None = None
        self.state = Connection(False, mask_url(settings.broker_url), "connecting")
        self.generation = 0            # bumped on every (re)connection: the UI catches up
        self.queue_name = f"{self.names.ns}.console.{socket.gethostname()}.{os.getpid()}"
        self.signer = Signer(settings.message_key)

    async def run(self, max_delay: float = 10.0) -> None:
        """Connect and subscribe (retrying with back-off), then follow until cancelled."""
        delay = 0.5
        try:
            while self.connection is None:
                try:
                    await self._connect()
                except ERRORS as exc:
                    await self.close()
                    detail = f"{type(exc).__name__}: {exc}".strip(": ")[:120]
                    retry_at = time.strftime("%H:%M:%S", time.localtime(time.time() + delay))
                    self.state = Connection(False, self.state.url,
                                            f"{detail}; retry at {retry_at}")
                    await asyncio.sleep(delay)
                    delay = min(max_delay, delay * 2)
            await asyncio.Event().wait()
        finally:
            await self.close()

    async def _connect(self) -> None:
        connection = await aio_pika.connect_robust(
            self.settings.broker_url, timeout=5, reconnect_interval=RECONNECT_INTERVAL,
            client_properties={"connection_name": f"wgops-console-{os.getpid()}"})
        self.connection = connection
        connection.close_callbacks.add(self._lost)
        connection.reconnect_callbacks.add(self._back)
        channel = await connection.channel()
        exchange = await channel.declare_exchange(self.names.events, aio_pika.ExchangeType.TOPIC,
                                                  durable=True)
        queue = await channel.declare_queue(
            self.queue_name, exclusive=True, auto_delete=True,
            arguments={"x-max-length": self.queue_max, "x-overflow": "drop-head"})
        await queue.bind(exchange, routing_key="#")
        await queue.consume(self._on_message, no_ack=True)
        self._back()

    def _lost(self, *_: Any) -> None:
        self._depth_channel = None
        self.state = Connection(False, self.state.url, "connection lost; reconnecting every "
                                f"{RECONNECT_INTERVAL:.0f}s")

    def _back(self, *_: Any) -> None:
        self.generation += 1
        self.state = Connection(True, self.state.url, "")

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        try:
            self.signer.verify(message.body, message.headers)
        except ProtocolError:
            return                            # not from this installation's daemons
        event = parse_event(message.body)
        if event is not None:
            self.buffer.add(event)

    async def run_in_thread(self) -> None:
        """Run :meth:`run` on a dedicated thread until the calling task is cancelled."""
        ready = threading.Event()

        def main() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            ready.set()
            try:
                loop.run_until_complete(self._until_stopped())
            finally:
                loop.close()

        self._stop = threading.Event()
        thread = threading.Thread(target=main, name="console-broker", daemon=True)
        thread.start()
        await asyncio.to_thread(ready.wait)
        try:
            await asyncio.to_thread(self._stop.wait)
        finally:
            self._stop.set()
            await asyncio.to_thread(thread.join, 10)

    async def _until_stopped(self) -> None:
        task = asyncio.ensure_future(self.run())
        while not self._stop.is_set():
            await asyncio.sleep(0.1)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass

    async def depth_from(self, queue: str) -> tuple[int, int] | None:
        """:meth:`depth`, called from another loop than the link's."""
        loop = getattr(self, "_loop", None)
        if loop is None or loop.is_closed():
            return None
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self.depth(queue),
                                                                          loop))

    async def depth(self, queue: str) -> tuple[int, int] | None:
        """(messages, consumers) by passive declare; None if the queue does not exist."""
        if self.connection is None or self.connection.is_closed or not self.state.ok:
            return None
        try:
            async with asyncio.timeout(DEPTH_TIMEOUT):
                if self._depth_channel is None or self._depth_channel.is_closed:
                    self._depth_channel = await self.connection.channel()
                # not robust: a passive declare is a question, not something to restore
                declared = await self._depth_channel.declare_queue(queue, passive=True,
                                                                   robust=False)
        except aio_pika.exceptions.ChannelClosed:
            self._depth_channel = None       # a 404 closes the channel
            return None
        result = declared.declaration_result
        return result.message_count or 0, result.consumer_count or 0

    async def close(self) -> None:
        connection, self.connection = self.connection, None
        self._depth_channel = None
        if connection is not None and not connection.is_closed:
            try:
                await connection.close()
            except Exception:  # noqa: BLE001 - closing a broken connection
                logger.debug("closing the console's broker connection", exc_info=True)
