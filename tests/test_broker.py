"""The broker connection against the real RabbitMQ: corked writes, confirmed publishes."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aio_pika
import aiormq
import pytest

from wgops.daemon.broker import Broker
from wgops.daemon.protocol import RunTask
from wgops.store.config import Settings


def _task(i: int) -> RunTask:
    return RunTask(task=i, graph=1, name=f"t{i}", attempt=0, kind="python", target="m:f",
                   args={"i": i}, timeout=None, retries=0, retry_delay=0.0, pool="default",
                   owner="s")


@pytest.fixture
async def broker(wgops_env: dict[str, str]) -> Any:
    b = await Broker(Settings.load(env=wgops_env), "test-broker").connect()
    yield b
    await b.close()


async def _drain(broker: Broker, queue: str, count: int) -> list[int]:
    channel = await broker.new_channel(prefetch=1000)
    q = await channel.declare_queue(queue, passive=True)
    seen: list[int] = []
    done = asyncio.Event()

    async def on_message(message: Any) -> None:
        seen.append(json.loads(message.body)["task"])
        await message.ack()
        if len(seen) == count:
            done.set()
    tag = await q.consume(on_message)
    await asyncio.wait_for(done.wait(), 30)
    await q.cancel(tag)
    await channel.close()
    return seen


async def test_a_batch_of_publishes_is_joined_into_few_writes_in_order(broker: Broker) -> None:
    queue = broker.names.tasks("default")
    await broker.declare(queue)
    assert broker.connection is not None
    frames0, sends0 = broker.connection.wire_stats()
    await broker.publish_many([(queue, _task(i), 0, None) for i in range(500)])
    frames, sends = broker.connection.wire_stats()
    assert sends - sends0 <= 3, (frames - frames0, sends - sends0)     # not 500
    assert await _drain(broker, queue, 500) == list(range(500))


async def test_acks_of_many_deliveries_share_writes(broker: Broker) -> None:
    queue = broker.names.tasks("default")
    await broker.declare(queue)
    await broker.publish_many([(queue, _task(i), 0, None) for i in range(300)])
    assert broker.connection is not None
    frames0, sends0 = broker.connection.wire_stats()
    assert sorted(await _drain(broker, queue, 300)) == list(range(300))
    frames, sends = broker.connection.wire_stats()
    assert frames - frames0 >= 300                      # the acks (and the consume rpc)
    assert sends - sends0 < (frames - frames0) / 2, (frames - frames0, sends - sends0)
    depth = await broker.depth(queue)
    assert depth is not None and depth[0] == 0         # every ack reached the broker


async def test_unroutable_mandatory_publish_and_closed_channel(broker: Broker) -> None:
    """A wake-up to a queue that does not exist is dropped (mandatory=False) without error;
    a publish on a closed channel raises instead of hanging."""
    await broker.publish(broker.names.scheduler("gone"), _task(1), mandatory=False)
    assert broker.channel is not None
    await broker.channel.close()
    with pytest.raises(aiormq.exceptions.ChannelInvalidStateError):
        await broker.publish(broker.names.tasks("default"), _task(2))


async def test_events_are_written_in_batches_in_order_with_their_topics(broker: Broker) -> None:
    """More events than one batch, and one larger than a frame: all arrive, in order, each
    under its own routing key, and one socket write carries many of them."""
    from wgops.daemon.broker import EVENT_BATCH, event

    channel = await broker.new_channel(prefetch=2000)
    queue = await channel.declare_queue("", exclusive=True)
    await queue.bind(broker.names.events, routing_key="#")
    got: list[tuple[str, int, int]] = []
    total = EVENT_BATCH * 2 + 50
    done = asyncio.Event()

    async def on_message(message: Any) -> None:
        body = json.loads(message.body)
        got.append((message.routing_key, body["task"], len(body["data"].get("blob", ""))))
        if len(got) == total:
            done.set()
    await queue.consume(on_message, no_ack=True)        # only the events use this connection
    assert broker.connection is not None
    frames0, sends0 = broker.connection.wire_stats()
    for i in range(total):
        topic = "task.finished" if i % 2 else "task.running"
        blob = "x" * 300_000 if i == 7 else ""        # over the 128 KiB frame size
        await broker.emit(event(topic, graph=1, task=i, data={"blob": blob} if blob else {}))
    await asyncio.wait_for(done.wait(), 30)
    frames, sends = broker.connection.wire_stats()
    assert [t for _, t, _ in got] == list(range(total))
    assert all(key == ("task.finished" if t % 2 else "task.running") for key, t, _ in got)
    assert got[7][2] == 300_000
    assert sends - sends0 < total / 20, (frames - frames0, sends - sends0)
    assert broker.events_dropped == 0
    await channel.close()


async def test_task_ends_of_one_loop_turn_travel_as_one_message(broker: Broker) -> None:
    """The notifier joins the completions of a turn per owner; a lone one stays a TaskDone;
    each waiter returns once its message is confirmed; a failed publish fails its waiters.
    Notifications are wake-ups: transient (their confirm does not wait for a disk write)."""
    from wgops.daemon.notify import Notifier
    from wgops.daemon.protocol import TaskDone, TasksDone, decode

    owners = {o: broker.names.scheduler(o) for o in ("s1", "s2")}
    for queue in owners.values():
        await broker.declare(queue)
    notifier = Notifier(broker)

    def done(i: int) -> TaskDone:
        return TaskDone(task=i, graph=1, state="finished", attempt=1, worker="w")
    await asyncio.gather(*(notifier.send("s1", done(i)) for i in range(5)),
                         notifier.send("s2", done(99)))
    await notifier.send("s1", done(6))             # a later turn: a message of its own
    assert (notifier.messages, notifier.notified) == (3, 7)

    channel = await broker.new_channel()
    got: dict[str, list[Any]] = {}
    for owner, queue in owners.items():
        q = await channel.declare_queue(queue, passive=True)
        while (message := await q.get(fail=False)) is not None:
            got.setdefault(owner, []).append(decode(message.body))
            assert message.delivery_mode == aio_pika.DeliveryMode.NOT_PERSISTENT
            await message.ack()
    first, second = got["s1"]
    assert isinstance(first, TasksDone) and [d.task for d in first.done] == [0, 1, 2, 3, 4]
    assert isinstance(second, TaskDone) and second.task == 6
    assert [type(m) for m in got["s2"]] == [TaskDone] and got["s2"][0].task == 99

    await broker.channel.close()                   # the broker refuses: every waiter hears it
    results = await asyncio.gather(notifier.send("s1", done(7)), notifier.send("s1", done(8)),
                                   return_exceptions=True)
    assert all(isinstance(r, Exception) for r in results), results
    await channel.close()


def test_a_batch_of_task_ends_has_a_size_limit_and_round_trips() -> None:
    from wgops.daemon.protocol import MAX_DONE_ITEMS, TaskDone, TasksDone, decode
    from wgops.store.errors import ProtocolError

    ends = [TaskDone(task=i, graph=2, state="queued" if i % 2 else "finished", attempt=1,
                     worker="w", not_before=5.0 if i % 2 else None) for i in range(3)]
    back = decode(TasksDone.of(ends).encode(), (TasksDone,))
    assert list(back.done) == ends                 # type: ignore[attr-defined]
    item = {"task": 1, "graph": 1, "state": "finished", "attempt": 1}
    with pytest.raises(ProtocolError, match=f"{MAX_DONE_ITEMS + 1} items"):
        decode(json.dumps({"type": "done_many", "v": 1,
                           "items": [item] * (MAX_DONE_ITEMS + 1)}).encode())


def test_event_frames_are_the_bytes_pamqp_makes() -> None:
    """The hand-built publish frames of events equal pamqp's marshalling, frame for frame:
    short and long (split) bodies, non-ASCII routing keys, another channel number."""
    import pamqp.frame
    from pamqp import commands
    from pamqp.body import ContentBody
    from pamqp.header import ContentHeader

    from wgops.daemon.broker import EVENT_PROPERTIES
    from wgops.daemon.transport import publish_frames

    items = [("task.finished", b'{"type":"event"}'), ("graph.fini\u00e9", b"x" * 2500),
             ("a" * 255, b"")]
    for number, max_body in ((1, 131064), (7, 1000)):
        expected = b""
        for key, body in items:
            expected += pamqp.frame.marshal(commands.Basic.Publish(
                exchange="wgops.events", routing_key=key), number)
            expected += pamqp.frame.marshal(ContentHeader(properties=EVENT_PROPERTIES,
                                                          body_size=len(body)), number)
            for start in range(0, len(body), max_body):
                expected += pamqp.frame.marshal(ContentBody(body[start:start + max_body]),
                                                number)
        assert publish_frames(number, max_body, "wgops.events", items,
                              EVENT_PROPERTIES) == expected
    with pytest.raises(ValueError, match="over 255 bytes"):
        publish_frames(1, 1000, "wgops.events", [("k" * 256, b"{}")], EVENT_PROPERTIES)


def test_confirmed_publish_frames_are_the_bytes_pamqp_makes() -> None:
    """Task messages' frames (mandatory, properties marshalled once per kind) equal pamqp's."""
    import pamqp.frame
    from pamqp import commands
    from pamqp.header import ContentHeader

    from wgops.daemon.transport import frames_of, marshal_properties

    props = commands.Basic.Properties(content_type="application/json", delivery_mode=2,
                                      priority=7, message_type="RunTask",
                                      headers={"x-wgops-sig": "ab"})
    body = _task(3).encode()
    expected = pamqp.frame.marshal(commands.Basic.Publish(
        exchange="", routing_key="ns.tasks.default", mandatory=True), 3)
    expected += pamqp.frame.marshal(ContentHeader(properties=props, body_size=len(body)), 3)
    expected += pamqp.frame.marshal(pamqp.body.ContentBody(body), 3)
    assert frames_of(3, 131064, "", [("ns.tasks.default", body, marshal_properties(props))],
                     mandatory=True) == expected


async def test_batched_confirmed_publishes_keep_step_with_single_ones(broker: Broker) -> None:
    """Batches written as one entry and single ``publish`` calls interleaved on the same
    channel: every confirm lands on its own message (delivery tags in step), properties
    (priority, type) arrive as sent, and a batch on a closed channel raises."""
    queue = broker.names.tasks("default")
    await broker.declare(queue)
    batches = [broker.publish_many([(queue, _task(100 * b + i), b % 3, None) for i in range(50)])
               for b in range(4)]
    singles = [broker.publish(queue, _task(1000 + i), priority=1) for i in range(20)]
    mixed = [x for pair in zip(batches, singles[:4]) for x in pair] + singles[4:]
    await asyncio.wait_for(asyncio.gather(*mixed), 30)
    assert broker.channel is not None
    underlay = await broker.channel.get_underlay_channel()
    assert not underlay.confirmations                      # every one confirmed, none left

    channel = await broker.new_channel()
    q = await channel.declare_queue(queue, passive=True)
    got = {}
    while (message := await q.get(fail=False)) is not None:
        got[json.loads(message.body)["task"]] = (message.priority, message.type,
                                                 message.delivery_mode)
        await message.ack()
    await channel.close()
    assert len(got) == 220
    assert got[205] == (2, "run", aio_pika.DeliveryMode.PERSISTENT)
    assert got[1003] == (1, "run", aio_pika.DeliveryMode.PERSISTENT)

    await broker.channel.close()
    with pytest.raises(aiormq.exceptions.ChannelInvalidStateError):
        await broker.publish_many([(queue, _task(1), 0, None)])


def _close_connection_named(name: str) -> None:
    """Close, from the broker's side, the connection this test opened (found by its name)."""
    from tests.test_reliability import rabbitmqctl

    out = rabbitmqctl("list_connections", "pid", "client_properties", "-q", "--no-table-headers")
    pids = [line.split("\t")[0] for line in out.splitlines() if f'"{name}"' in line]
    assert pids, f"no connection named {name!r}: {out}"
    for pid in pids:
        rabbitmqctl("close_connection", pid, "test: cut off")


async def test_a_task_queue_delivers_light_messages_and_keeps_doing_so_after_a_reconnect(
        wgops_env: dict[str, str], namespace: str) -> None:
    """The worker's task queues are consumed through :func:`daemon.delivery.consume`: each
    delivery is a :class:`Delivery` (no aio-pika message built) with the body, headers,
    routing key and redelivered flag of what was sent; ack and nack settle it once. After the
    broker cuts the connection, aio-pika's restore subscribes again and the deliveries go on:
    the first through aio-pika's path, which puts the light one back for those after it."""
    from aio_pika.exceptions import MessageProcessError

    from wgops.daemon.delivery import consume

    name = f"test-delivery-{namespace}"
    broker = await Broker(Settings.load(env=wgops_env), name).connect()
    try:
        queue_name = broker.names.tasks("default")
        channel = await broker.new_channel(prefetch=8)
        queue = await broker.declare(queue_name, channel)
        got: list[tuple[str, int, bool, str | None]] = []
        arrived = asyncio.Event()
        twice: list[str] = []

        async def on_task(message: Any) -> None:
            task = json.loads(message.body)["task"]
            got.append((type(message).__name__, task, bool(message.redelivered),
                        message.routing_key))
            if task == 2 and not message.redelivered:
                await message.nack(requeue=True)          # handed back: comes again
            else:
                await message.ack()
                try:
                    await message.ack()
                except MessageProcessError:
                    twice.append(type(message).__name__)
            arrived.set()

        async def wait_for(count: int) -> None:
            while len(got) < count:
                arrived.clear()
                await asyncio.wait_for(arrived.wait(), 30)

        tag = await consume(queue, on_task)
        await broker.publish_many([(queue_name, _task(i), 0, None) for i in range(3)])
        await wait_for(4)
        assert sorted(got) == sorted([("Delivery", 0, False, queue_name),
                                      ("Delivery", 1, False, queue_name),
                                      ("Delivery", 2, False, queue_name),
                                      ("Delivery", 2, True, queue_name)])
        assert twice == ["Delivery"] * 3                 # a second ack is refused

        got.clear()
        await asyncio.to_thread(_close_connection_named, name)
        for attempt in range(100):                       # the robust connection comes back
            try:
                await broker.publish(queue_name, _task(10 + attempt))
                break
            except Exception:  # noqa: BLE001 - not reconnected yet
                await asyncio.sleep(0.2)
        await wait_for(1)
        await asyncio.sleep(0.2)
        await broker.publish(queue_name, _task(99))
        while not any(task == 99 for _, task, _, _ in got):
            await wait_for(len(got) + 1)
        kinds = [kind for kind, _, _, _ in got]
        assert kinds[0] == "IncomingMessage", got        # restored by aio-pika's path
        assert kinds[-1] == "Delivery", got              # and the light one is back
        depth = await broker.depth(queue_name)
        assert depth is not None and depth[0] == 0       # every delivery was acked
        await queue.cancel(tag)
        await channel.close()
    finally:
        await broker.close()
