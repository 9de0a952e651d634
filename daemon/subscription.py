"""A process's own read-only view of the broker: a capped subscription to ``{ns}.events`` and
queue depths, on a thread of its own.

Whoever only watches (the metrics exporter) must never back up the broker: the events arrive
through an exclusive, auto-deleting queue capped with ``x-max-length`` and
``x-overflow: drop-head`` (a slow reader loses the oldest events, the broker keeps nothing for
it once the reader is gone). The connection is aio-pika's robust one: after the first
connection (retried with back-off) it reconnects by itself and restores the queue, its
bindings and the consumer. It runs on a dedicated thread with its own event loop, so
synchronous callers (an HTTP handler) ask it questions with a timeout and never wait for a
reconnection.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection

from wgops.daemon.protocol import Names
from wgops.daemon.signing import Signer
from wgops.store.config import Settings
from wgops.store.errors import ProtocolError

logger = logging.getLogger(__name__)

QUEUE_MAX = 10_000          # x-max-length of the subscriber's own queue
RECONNECT_INTERVAL = 1.0
ERRORS = (ConnectionError, OSError, asyncio.TimeoutError, aiormq.exceptions.AMQPError,
          aio_pika.exceptions.AMQPException)


class EventSubscription:
    """Events of ``{ns}.events`` matching ``bindings``, handed to ``on_event(body)`` on the
    subscription's thread, and queue depths on request.

    ``on_event`` must be quick and must not raise (it runs on the broker loop).
    :attr:`connected` is true while the connection is up."""

    def __init__(self, settings: Settings, role: str, on_event: Callable[[bytes], None],
                 bindings: Iterable[str] = ("#",), queue_max: int = QUEUE_MAX):
        self.settings = settings
        self.names = Names(settings.namespace)
        self.on_event = on_event
        self.bindings = tuple(bindings)
        self.queue_max = queue_max
        self.role = role
        host = socket.gethostname().split(".")[0]
        self.queue_name = f"{self.names.ns}.{role}.{host}.{os.getpid()}"
        self.connected = False
        self.error = "connecting"
        self.generation = 0         # bumped on every (re)connection: readers catch up
        self.signer = Signer(settings.message_key)
        self._connection: AbstractRobustConnection | None = None
        self._depth_channel: AbstractChannel | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle, from any thread ------------------------------------------------------

    def start(self) -> None:
        ready = threading.Event()

        def main() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._stop = asyncio.Event()
            ready.set()
            try:
                loop.run_until_complete(self._run())
            finally:
                loop.close()

        self._thread = threading.Thread(target=main, name=f"{self.role}-broker", daemon=True)
        self._thread.start()
        ready.wait()

    def stop(self, timeout: float = 10.0) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(timeout)

    def depths(self, queues: list[str], timeout: float) -> dict[str, tuple[int, int]] | None:
        """{queue: (messages, consumers)} of those that exist; None when the broker cannot
        answer within ``timeout`` seconds."""
        loop = self._loop
        if loop is None or loop.is_closed() or not self.connected:
            return None
        future = asyncio.run_coroutine_threadsafe(self._depths(queues, timeout), loop)
        try:
            return future.result(timeout + 0.5)
        except (concurrent.futures.TimeoutError, *ERRORS):
            future.cancel()
            return None

    # -- on the subscription's loop -------------------------------------------------------

    async def _run(self, max_delay: float = 10.0) -> None:
        assert self._stop is not None
        delay = 0.5
        try:
            while self._connection is None and not self._stop.is_set():
                try:
                    await self._connect()
                except ERRORS as exc:
                    await self._close()
                    detail = f"{type(exc).__name__}: {exc}".strip(": ")[:120]
                    retry_at = time.strftime("%H:%M:%S", time.localtime(time.time() + delay))
                    self.error = f"{detail}; retry at {retry_at}"
                    try:
                        await asyncio.wait_for(self._stop.wait(), delay)
                    except TimeoutError:
                        pass
                    delay = min(max_delay, delay * 2)
            await self._stop.wait()
        finally:
            await self._close()

    async def _connect(self) -> None:
        connection = await aio_pika.connect_robust(
            self.settings.broker_url, timeout=5, reconnect_interval=RECONNECT_INTERVAL,
            client_properties={"connection_name": f"wgops-{self.role}-{os.getpid()}"})
        self._connection = connection
        connection.close_callbacks.add(self._lost)
        connection.reconnect_callbacks.add(self._back)
        channel = await connection.channel()
        exchange = await channel.declare_exchange(self.names.events, aio_pika.ExchangeType.TOPIC,
                                                  durable=True)
        queue = await channel.declare_queue(
            self.queue_name, exclusive=True, auto_delete=True,
            arguments={"x-max-length": self.queue_max, "x-overflow": "drop-head"})
        for key in self.bindings:
            await queue.bind(exchange, routing_key=key)
        await queue.consume(self._message, no_ack=True)
        self._back()

    def _lost(self, *_: object) -> None:
        self.connected = False
        self._depth_channel = None
        self.error = f"connection lost; reconnecting every {RECONNECT_INTERVAL:.0f}s"

    def _back(self, *_: object) -> None:
        self.generation += 1
        self.connected = True
        self.error = ""

    async def _message(self, message: AbstractIncomingMessage) -> None:
        try:
            self.signer.verify(message.body, message.headers)
        except ProtocolError:
            return                  # not from this installation's processes (message_key)
        try:
            self.on_event(message.body)
        except Exception:  # noqa: BLE001 - loop boundary: one bad event never stops the rest
            logger.exception("handling an event")

    async def _depths(self, queues: list[str], timeout: float) -> dict[str, tuple[int, int]]:
        async with asyncio.timeout(timeout):
            out: dict[str, tuple[int, int]] = {}
            for name in queues:     # one channel; a missing queue (404) closes it
                depth = await self._depth(name)
                if depth is not None:
                    out[name] = depth
            return out

    async def _depth(self, name: str) -> tuple[int, int] | None:
        if self._connection is None:
            raise ConnectionError("not connected")
        if self._depth_channel is None or self._depth_channel.is_closed:
            self._depth_channel = await self._connection.channel()
        try:
            # not robust: a passive declare is a question, not something to restore
            queue = await self._depth_channel.declare_queue(name, passive=True, robust=False)
        except aio_pika.exceptions.ChannelClosed:
            self._depth_channel = None
            return None
        result = queue.declaration_result
        return result.message_count or 0, result.consumer_count or 0

    async def _close(self) -> None:
        connection, self._connection = self._connection, None
        self.connected = False
        self._depth_channel = None
        if connection is not None and not connection.is_closed:
            try:
                await connection.close()
            except Exception:  # noqa: BLE001 - closing a broken connection
                logger.debug("closing the %s connection", self.role, exc_info=True)
