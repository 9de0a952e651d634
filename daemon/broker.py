"""The broker connection: topology, confirmed publishing, events and dead letters.

One robust connection per process, one channel for confirmed publishes, one for events
(fire-and-forget), and one channel per consumer (opened by the daemons with their own
``set_qos``). Never a channel per graph or per message.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import time
from collections.abc import Iterable
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractQueue,
    AbstractRobustConnection,
)

from wgops.daemon.delivery import Incoming
from wgops.daemon.protocol import MAX_PRIORITY, Event, Message, Names, decode
from wgops.daemon.signing import Signer
from wgops.daemon.transport import (
    CorkedRobustConnection,
    marshal_properties,
    publish_confirmed,
    publish_unconfirmed,
)
from wgops.store.config import Settings, mask_url
from wgops.store.deadletters import BODY_LIMIT, record_dead_letter
from wgops.store.errors import Unreachable

logger = logging.getLogger(__name__)

PRIORITY_ARGS = {"x-max-priority": MAX_PRIORITY}
INBOX_ARGS = {"x-expires": 600_000}   # a dead daemon's queue disappears after 10 minutes
RECONNECT_INTERVAL = 1.0   # seconds between reconnection attempts after the broker went away
EVENT_BUFFER = 10_000      # events waiting to be written; past this, new ones are dropped
EVENT_BATCH = 500          # events written as one entry of the connection's write queue
EVENT_PROPERTIES = aiormq.spec.Basic.Properties(content_type="application/json", delivery_mode=1)
PUBLISH_BATCH = 1000       # confirmed publishes written as one entry of the write queue
EVENT_FLUSH = 2.0          # seconds ``close`` waits for the waiting events to be written
CONNECT_ERRORS = (ConnectionError, OSError, asyncio.TimeoutError, aiormq.exceptions.AMQPError)
# what a handler may meet while the broker is away (a retry or a redelivery will do)
BROKER_ERRORS = (*CONNECT_ERRORS, aiormq.exceptions.ChannelInvalidStateError)


class Broker:
    """A daemon's or a command's connection to RabbitMQ."""

    def __init__(self, settings: Settings, name: str):
        self.settings = settings
        self.names = Names(settings.namespace)
        self.name = name
        self.connection: AbstractRobustConnection | None = None
        self.channel: AbstractChannel | None = None          # confirmed publishes
        self.events_channel: AbstractChannel | None = None
        self.events: AbstractExchange | None = None
        self._declared: set[str] = set()
        self._marshalled: dict[tuple[str, int, bool], bytes] = {}   # see _frames
        # events: emitted without waiting, written in order by one background task
        self._outbox: collections.deque[tuple[str, bytes]] = collections.deque()
        self._wake: asyncio.Event | None = None
        self._drainer: asyncio.Task[None] | None = None
        self._writing = False
        self.events_dropped = 0     # buffer full, or the write failed (broker away)
        self.signer = Signer(settings.message_key)

    async def connect(self, timeout: float = 5.0) -> "Broker":
        url = self.settings.broker_url
        try:
            self.connection = await aio_pika.connect_robust(
                url, timeout=timeout, reconnect_interval=RECONNECT_INTERVAL,
                client_properties={"connection_name": self.name},
                connection_class=CorkedRobustConnection)
            self.channel = await self.connection.channel(publisher_confirms=True)
            self.events_channel = await self.connection.channel(publisher_confirms=False)
            self.events = await self.events_channel.declare_exchange(
                self.names.events, aio_pika.ExchangeType.TOPIC, durable=True)
        except CONNECT_ERRORS as exc:
            await self.close()
            raise Unreachable(f"broker {mask_url(url)} unreachable: {exc or type(exc).__name__}") \
                from None
        return self

    async def connect_retrying(self, max_delay: float = 10.0) -> "Broker":
        """``connect``, retried with back-off while the broker is unreachable (a daemon waits
        for its broker instead of exiting, so a supervisor does not see a crash loop)."""
        delay = 0.5
        while True:
            try:
                return await self.connect()
            except Unreachable as exc:
                logger.warning("%s; retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, max_delay)

    async def close(self) -> None:
        await self._flush_events()
        if isinstance(self.connection, CorkedRobustConnection):
            frames, sends = self.connection.wire_stats()
            logger.info("%s wrote %d frames in %d socket writes", self.name, frames, sends)
        if self.connection is not None:
            try:
                await self.connection.close()
            except Exception:  # noqa: BLE001 - closing a broken connection
                logger.debug("closing broker connection", exc_info=True)
        self.connection = None

    async def new_channel(self, prefetch: int = 0) -> AbstractChannel:
        assert self.connection is not None
        channel = await self.connection.channel(publisher_confirms=False)
        if prefetch:
            await channel.set_qos(prefetch_count=prefetch)
        return channel

    # -- topology ---------------------------------------------------------------------------

    async def declare(self, name: str, channel: AbstractChannel | None = None) -> AbstractQueue:
        """Declare one of the wgops queues with its fixed arguments."""
        channel = channel or self.channel
        assert channel is not None
        if name == self.names.graphs or self.names.is_task_queue(name):
            queue = await channel.declare_queue(name, durable=True, arguments=PRIORITY_ARGS)
        elif name.startswith((f"{self.names.ns}.scheduler.", f"{self.names.ns}.worker.")):
            queue = await channel.declare_queue(name, durable=True, arguments=INBOX_ARGS)
        elif name == self.names.dead:
            queue = await self._declare_dead()
        else:
            queue = await channel.declare_queue(name, durable=True)
        self._declared.add(name)
        return queue

    async def _declare_dead(self) -> AbstractQueue:
        """``{ns}.dead``, capped at ``max_dead_letters`` (the oldest dropped). A queue declared
        without the cap by an older wgops cannot be given one by a declare (the broker refuses
        it, closing the channel): it is used as it is, with a warning."""
        assert self.connection is not None
        args = {"x-max-length": self.settings.max_dead_letters, "x-overflow": "drop-head"}
        channel = await self.connection.channel(publisher_confirms=False)
        try:
            return await channel.declare_queue(self.names.dead, durable=True, arguments=args,
                                               robust=False)
        except aio_pika.exceptions.ChannelPreconditionFailed:
            logger.warning("%s exists with other arguments (an older wgops, or another "
                           "max_dead_letters): it is not capped; delete it to have it "
                           "recreated (rabbitmqctl delete_queue %s)", self.names.dead,
                           self.names.dead)
            channel = await self.connection.channel(publisher_confirms=False)
            return await channel.declare_queue(self.names.dead, passive=True, robust=False)

    async def ensure(self, name: str) -> None:
        if name not in self._declared:
            await self.declare(name)

    async def depth(self, name: str) -> tuple[int, int] | None:
        """(messages, consumers) of a queue by passive declare, or None if it does not exist."""
        assert self.connection is not None
        channel = await self.connection.channel()
        try:
            queue = await channel.declare_queue(name, passive=True)
            result = queue.declaration_result
            return result.message_count or 0, result.consumer_count or 0
        except aio_pika.exceptions.ChannelClosed:
            return None
        finally:
            if not channel.is_closed:
                await channel.close()

    # -- publishing -------------------------------------------------------------------------

    def _properties(self, body: bytes, msg: Message, priority: int = 0,
                    reply_to: str | None = None,
                    persistent: bool = True) -> aiormq.spec.Basic.Properties:
        return aiormq.spec.Basic.Properties(
            content_type="application/json", delivery_mode=2 if persistent else 1,
            priority=max(0, min(MAX_PRIORITY, priority)), reply_to=reply_to,
            message_type=msg.TYPE, headers=self.signer.headers(body))

    def _frames(self, queue: str, msg: Message, priority: int, reply_to: str | None,
                persistent: bool) -> tuple[str, bytes, bytes]:
        """(queue, body, marshalled properties) of one publish. Properties are marshalled
        once per kind of message (type, priority, persistence), or per message when it is
        signed or carries a reply queue."""
        body = msg.encode()
        if self.signer.enabled or reply_to is not None:
            return queue, body, marshal_properties(
                self._properties(body, msg, priority, reply_to, persistent))
        key = (msg.TYPE, priority, persistent)
        props = self._marshalled.get(key)
        if props is None:
            props = self._marshalled[key] = marshal_properties(
                self._properties(body, msg, priority, None, persistent))
        return queue, body, props

    async def _confirmed(self, frames: list[tuple[str, bytes, bytes]], mandatory: bool) -> None:
        """Confirmed publishes through the default exchange, written together
        (:func:`daemon.transport.publish_confirmed`: one entry of the connection's write
        queue per ``PUBLISH_BATCH``, aiormq's per-publish bookkeeping done once); returns when
        the broker confirmed them all, raises as soon as one is refused or the channel
        closes."""
        if not frames:
            return
        channel = self.channel
        if channel is None or channel.is_closed:
            raise aiormq.exceptions.ChannelInvalidStateError("broker channel closed")
        underlay = await channel.get_underlay_channel()
        confirms = []
        for start in range(0, len(frames), PUBLISH_BATCH):
            confirms += await publish_confirmed(underlay, "", frames[start:start + PUBLISH_BATCH],
                                                mandatory)
        await asyncio.gather(*confirms)

    async def publish(self, queue: str, msg: Message, priority: int = 0,
                      reply_to: str | None = None, persistent: bool = True,
                      mandatory: bool = True) -> None:
        """Publish to a queue through the default exchange and wait for the confirm.

        ``mandatory=False`` for wake-ups to a daemon that may be gone: they are dropped."""
        await self._confirmed([self._frames(queue, msg, priority, reply_to, persistent)],
                              mandatory)

    async def publish_many(self, items: Iterable[tuple[str, Message, int, str | None]]) -> None:
        """Persistent confirmed publishes of ``(queue, message, priority, reply_to)``, written
        together; returns when all are confirmed."""
        await self._confirmed([self._frames(q, m, p, r, True) for q, m, p, r in items], True)

    def decode(self, message: Incoming,
               expect: tuple[type[Message], ...]) -> Message:
        """A received message, its signature checked (when ``message_key`` is set) before a
        byte of it is parsed; raises ProtocolError (the caller dead-letters it)."""
        self.signer.verify(message.body, message.headers)
        return decode(message.body, expect, self.settings.max_message_bytes)

    async def emit(self, event: Event) -> None:
        """Publish an event on ``{ns}.events``. Events are informative: this never waits for
        the broker and never raises. The event is encoded now and written, in the order of
        the ``emit`` calls, by one background task; past ``EVENT_BUFFER`` waiting events, or
        when the write fails (broker away), it is dropped and counted in ``events_dropped``."""
        if self.events is None:
            return
        if len(self._outbox) >= EVENT_BUFFER:
            self._dropped(event.topic, "buffer full")
            return
        try:
            self._outbox.append((event.topic, event.encode()))
        except Exception:  # noqa: BLE001 - events must never stop the work
            self._dropped(event.topic, "could not encode")
            return
        loop = asyncio.get_running_loop()
        if self._drainer is None or self._drainer.done() or self._drainer.get_loop() is not loop:
            self._wake = asyncio.Event()
            self._drainer = loop.create_task(self._drain_events())
        else:
            assert self._wake is not None
            self._wake.set()

    def _dropped(self, topic: str, why: str) -> None:
        self.events_dropped += 1
        if self.events_dropped == 1 or self.events_dropped % 1000 == 0:
            logger.warning("dropped event %s (%s); %d dropped so far", topic, why,
                           self.events_dropped)

    async def _drain_events(self) -> None:
        """The one writer of events, in order. What is waiting is written in batches of up to
        ``EVENT_BATCH``, each as one entry of the connection's write queue (see
        :func:`daemon.transport.publish_unconfirmed`), waiting until it is written: at most
        ``EVENT_BUFFER`` events are held here and ``EVENT_BATCH`` in the connection."""
        assert self._wake is not None
        outbox, wake = self._outbox, self._wake
        while True:
            while outbox:
                self._writing = True
                batch = [outbox.popleft() for _ in range(min(EVENT_BATCH, len(outbox)))]
                try:
                    assert self.events is not None and self.events_channel is not None
                    channel = await self.events_channel.get_underlay_channel()
                    await publish_unconfirmed(
                        channel, self.events.name, batch, EVENT_PROPERTIES,
                        sign=self.signer.headers if self.signer.enabled else None)
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001 - events must never stop the work
                    logger.debug("could not emit events", exc_info=True)
                    for topic, _ in batch:
                        self._dropped(topic, "broker unavailable")
                finally:
                    self._writing = False
            wake.clear()
            await wake.wait()

    async def _flush_events(self) -> None:
        """Give the waiting events a bounded time to be written, then stop the writer."""
        drainer, self._drainer = self._drainer, None
        if drainer is None or drainer.get_loop() is not asyncio.get_running_loop():
            return
        deadline = time.monotonic() + EVENT_FLUSH
        while (self._outbox or self._writing) and not drainer.done() \
                and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        drainer.cancel()
        await asyncio.wait({drainer})
        self._writing = False
        if self._outbox:
            for topic, _ in self._outbox:
                self._dropped(topic, "closing")
            self._outbox.clear()

    async def dead_letter(self, queue: str, reason: str, body: bytes, daemon: str = "") -> None:
        """Park a refused message on ``{ns}.dead`` with its reason."""
        assert self.channel is not None
        await self.ensure(self.names.dead)
        text = body[:20_000].decode("utf-8", "replace")
        wrapped = json.dumps({"queue": queue, "reason": reason, "daemon": daemon,
                              "ts": time.time(), "body": text}).encode()
        await self.channel.default_exchange.publish(
            aio_pika.Message(wrapped, content_type="application/json",
                             delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                             headers={"x-wgops-reason": reason[:200], "x-wgops-queue": queue}),
            routing_key=self.names.dead)


async def refuse(broker: Broker, db: Any, queue: str, reason: str, body: bytes, daemon: str,
                 now: float) -> None:
    """A message that failed validation: logged, parked on ``{ns}.dead`` and recorded in the
    store's dead letters (``db`` is the daemon's AsyncStore). The caller acks it."""
    logger.warning("dead-lettering a message on %s: %s", queue, reason)
    # queued before the first await: messages of one burst are handled concurrently, and the
    # table's cap drops by id, so ids must follow the order the messages arrived in
    recorded = db.queue_write(record_dead_letter, queue, reason,
                              body[:BODY_LIMIT].decode("utf-8", "replace"), daemon, now,
                              broker.settings.max_dead_letters)
    await broker.dead_letter(queue, reason, body, daemon)
    await recorded


def event(topic: str, **fields: Any) -> Event:
    return Event(topic=topic, ts=time.time(), **fields)
