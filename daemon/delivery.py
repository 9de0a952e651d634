"""Deliveries of a busy queue taken from aiormq directly, without aio-pika's message object.

aio-pika hands each delivery to a consumer as an ``IncomingMessage``: it converts every
property of the message on arrival (~20 µs on this machine), runs the callback in a task of
its own, and its ``ack`` waits until the frame is written. The daemons' busy queues (a
worker's task queues, a scheduler's inbox and the graphs queue) use a handful of those
properties, so :func:`consume` subscribes through
aio-pika (which keeps the subscription across reconnects, restoring it on each new channel)
and then puts :class:`Delivery`'s lighter path in place of aio-pika's on the channel it got:
aiormq calls it with the raw delivery, and it builds only what the worker reads.

aio-pika's restore after a reconnect subscribes again with its own path on the new channel;
the first delivery that comes that way (an ``IncomingMessage``, which the callback handles
just as well) puts the lighter one back. Either way the callback gets an object with
``body``, ``headers``, ``reply_to``, ``delivery_tag``, ``redelivered``, ``routing_key``,
``processed``, ``ack()`` and ``nack(requeue)``.

The callback runs in the task aiormq starts for the delivery, as aio-pika's would (aio-pika
awaits its own task from it, so a channel that closes cancels both alike); a handler that
must outlive its channel (a worker's task) starts a task of its own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aio_pika.abc import AbstractIncomingMessage, AbstractQueue
from aio_pika.exceptions import MessageProcessError
from aiormq.abc import DeliveredMessage


class Delivery:
    """One delivery as aiormq gave it: what a task handler reads, acked or handed back on
    its channel without waiting for the frame to be written (an ack or a nack has no reply;
    the write queue keeps it in order with what follows)."""

    __slots__ = ("channel", "body", "headers", "reply_to", "delivery_tag", "redelivered",
                 "routing_key", "processed")

    def __init__(self, message: DeliveredMessage):
        self.channel = message.channel
        self.body = message.body
        properties = message.header.properties
        self.headers = properties.headers
        self.reply_to = properties.reply_to
        delivery = message.delivery
        self.delivery_tag = delivery.delivery_tag
        self.redelivered = delivery.redelivered
        self.routing_key = delivery.routing_key
        self.processed = False

    async def ack(self) -> None:
        self._unsettled()
        await self.channel.basic_ack(self.delivery_tag, wait=False)
        self.processed = True          # (as aio-pika: not if the channel refused it)

    async def nack(self, requeue: bool = True) -> None:
        self._unsettled()
        await self.channel.basic_nack(self.delivery_tag, requeue=requeue, wait=False)
        self.processed = True

    def _unsettled(self) -> None:
        if self.processed:
            raise MessageProcessError("Message already processed", self)


Incoming = AbstractIncomingMessage | Delivery      # what a :func:`consume` callback gets
Handler = Callable[[Incoming], Awaitable[None]]


async def consume(queue: AbstractQueue, callback: Handler) -> str:
    """Subscribe ``callback`` to ``queue`` (through aio-pika, which restores the subscription
    after a reconnect); its deliveries come as :class:`Delivery` on this channel, and as
    ``IncomingMessage`` on a restored one until its first delivery puts the lighter path
    back. Returns the consumer tag (for ``queue.cancel``)."""
    tag = ""                   # (until the subscription is made: no consumer to replace)

    async def light(message: DeliveredMessage) -> None:
        await callback(Delivery(message))

    def lighten(consumers: dict) -> None:
        """On an aiormq channel's consumers: this subscription's callback is ``light``."""
        if tag in consumers:
            consumers[tag] = light

    async def through_aio_pika(message: AbstractIncomingMessage) -> None:
        lighten(message.channel.consumers)              # the aiormq channel it came on
        await callback(message)

    tag = await queue.consume(through_aio_pika)
    lighten((await queue.channel.get_underlay_channel()).consumers)
    return tag
