"""The limit: a bare aio-pika publish -> consume -> reply loop over the same broker.

What one wgops task costs on the wire is two persistent, confirmed messages (RunTask from the
scheduler to a worker, TaskDone back), each consumed and acked by a process of its own. The
bare loop does exactly that and nothing else: a driver (this process) publishes persistent
requests with publisher confirms; a responder (a subprocess, so that both cores work as with
wgops' scheduler and worker) consumes them with prefetch 100, publishes a persistent confirmed
reply and acks; the driver consumes the replies.

* throughput: ``count`` round trips pipelined (all requests in flight at once, confirms awaited
  together, prefetch 100 on both consumers): round trips per second;
* round trip: ``samples`` requests one at a time, each waiting for its reply: p50 and p99;
* one-way: ``count`` persistent messages published with pipelined confirms and consumed (acked,
  no reply) by the responder: messages per second from the first publish to the last
  delivery (the responder reports when that was). A wgops task needs one such message to be
  dispatched; its completion travels batched.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time
import uuid
from typing import Any

import aio_pika

from bench.harness import BROKER_URL, ROOT
from wgops.daemon import eventloop


async def _responder(request_queue: str) -> None:
    conn = await aio_pika.connect_robust(BROKER_URL, client_properties={
        "connection_name": "wgops-bench-limit-responder"})
    publish_channel = await conn.channel(publisher_confirms=True)
    channel = await conn.channel()
    await channel.set_qos(prefetch_count=100)
    queue = await channel.declare_queue(request_queue, durable=True)
    stop = asyncio.Event()
    pending: set[asyncio.Task[Any]] = set()

    last_one_way = 0.0

    async def reply(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        nonlocal last_one_way
        if message.body.startswith(b"o"):           # one-way: consumed, no reply
            last_one_way = time.time()
            await message.ack()
            return
        if message.body == b"report":               # after the one-way burst, in queue order
            body = repr(last_one_way).encode()
            await publish_channel.default_exchange.publish(
                aio_pika.Message(body, correlation_id="report"),
                routing_key=message.reply_to or "")
            await message.ack()
            return
        if message.body == b"stop":
            await message.ack()
            stop.set()
            return
        await publish_channel.default_exchange.publish(
            aio_pika.Message(message.body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=message.reply_to or "")
        await message.ack()

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        task = asyncio.get_running_loop().create_task(reply(message))
        pending.add(task)
        task.add_done_callback(pending.discard)

    await queue.consume(on_message)
    print("ready", flush=True)
    await stop.wait()
    await conn.close()


class Driver:
    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:8]
        self.requests = f"wgops-bench-limit.{tag}.requests"
        self.replies = f"wgops-bench-limit.{tag}.replies"
        self.waiters: dict[bytes, asyncio.Future[float]] = {}

    async def __aenter__(self) -> "Driver":
        self.conn = await aio_pika.connect_robust(BROKER_URL, client_properties={
            "connection_name": "wgops-bench-limit-driver"})
        self.channel = await self.conn.channel(publisher_confirms=True)
        await self.channel.declare_queue(self.requests, durable=True)
        consume_channel = await self.conn.channel()
        await consume_channel.set_qos(prefetch_count=100)
        self.reply_queue = await consume_channel.declare_queue(self.replies, durable=True)
        self.reply_tag = await self.reply_queue.consume(self._on_reply)
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.limit", self.requests],
                                     stdout=subprocess.PIPE, cwd=str(ROOT))
        assert self.proc.stdout is not None
        line = await asyncio.to_thread(self.proc.stdout.readline)
        if line.strip() != b"ready":
            raise RuntimeError("the bare-loop responder did not start")
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._send(b"stop")
        try:
            await asyncio.to_thread(self.proc.wait, 10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        await self.reply_queue.cancel(self.reply_tag)
        for name in (self.requests, self.replies):
            await self.channel.queue_delete(name)
        await self.conn.close()

    async def _on_reply(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        now = time.perf_counter()
        await message.ack()
        if message.correlation_id == "report":
            waiter = self.waiters.pop(b"report", None)
            if waiter is not None and not waiter.done():
                waiter.set_result(float(message.body))
            return
        waiter = self.waiters.pop(message.body, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(now)

    async def _send(self, body: bytes) -> None:
        await self.channel.default_exchange.publish(
            aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                             reply_to=self.replies), routing_key=self.requests)

    async def round_trip(self, body: bytes) -> float:
        waiter = asyncio.get_running_loop().create_future()
        self.waiters[body] = waiter
        start = time.perf_counter()
        await self._send(body)
        return await waiter - start

    async def pipelined(self, count: int) -> float:
        """Round trips per second with ``count`` requests in flight."""
        loop = asyncio.get_running_loop()
        bodies = [f"p{i}".encode() for i in range(count)]
        waiters = [loop.create_future() for _ in bodies]
        self.waiters.update(zip(bodies, waiters))
        start = time.perf_counter()
        await asyncio.gather(*(self._send(b) for b in bodies))
        done = await asyncio.gather(*waiters)
        return count / (max(done) - start)


    async def one_way(self, count: int) -> float:
        """Messages per second, first publish to last delivery, ``count`` in flight."""
        bodies = [f"o{i}".encode() for i in range(count)]
        start = time.time()
        await asyncio.gather(*(self._send(b) for b in bodies))
        report = asyncio.get_running_loop().create_future()
        self.waiters[b"report"] = report
        await self._send(b"report")
        return count / (await report - start)


async def measure(count: int = 2000, samples: int = 300) -> dict[str, float]:
    async with Driver() as driver:
        for i in range(20):                      # warm up
            await driver.round_trip(f"w{i}".encode())
        rate = await driver.pipelined(count)
        one_way = await driver.one_way(count)
        trips = sorted([await driver.round_trip(f"r{i}".encode()) for i in range(samples)])
    return {"throughput": rate, "one_way": one_way, "rtt_p50_ms": 1000 * statistics.median(trips),
            "rtt_p99_ms": 1000 * trips[min(len(trips) - 1, int(0.99 * len(trips)))]}


if __name__ == "__main__":
    eventloop.run(_responder(sys.argv[1]))
