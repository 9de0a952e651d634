"""Load for the console: an event publisher (run as a separate process) and 10,000 graphs
seeded in bulk. Shared by ``make bench`` (scenario 7) and ``tests/test_console_load.py``."""

from __future__ import annotations

import time

GRAPHS = 10_000
RATE = 500
PUBLISHER = """
import asyncio, json, random, sys, time
import aio_pika

async def main(url, exchange, rate, seconds, graphs):
    conn = await aio_pika.connect(url)
    ch = await conn.channel(publisher_confirms=False)
    ex = await ch.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    start = time.monotonic()
    sent = 0
    topics = ["task.running", "task.finished", "task.queued", "graph.running"]
    while time.monotonic() - start < seconds:
        due = int((time.monotonic() - start) * rate)
        while sent < due:
            topic = topics[sent % 4]
            body = json.dumps({"type": "event", "v": 1, "topic": topic, "ts": time.time(),
                               "graph": random.randint(1, graphs), "name": "t%d" % (sent % 3),
                               "state": topic.split(".")[1], "data": {}}).encode()
            await ex.publish(aio_pika.Message(body), routing_key=topic)
            sent += 1
        await asyncio.sleep(0.01)
    await conn.close()
    print(sent)

asyncio.run(main(*sys.argv[1:3], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])))
"""


def seed(n: int = GRAPHS) -> None:
    """``n`` graphs of three tasks in mixed states, inserted in bulk (no scheduler loads them:
    they have no documents)."""
    from wgops.store.models import Graph, Task

    now = time.time()
    for start in range(0, n, 1000):
        Graph.insert_many([{"name": f"load-{i}", "state": ("running", "finished", "queued")[i % 3],
                            "priority": i % 10, "created": now - n + i,
                            "scheduler": "sched-x" if i % 3 == 0 else None}
                           for i in range(start, min(n, start + 1000))]).execute()
    Graph.update(root=Graph.id).execute()
    ids = [g.id for g in Graph.select(Graph.id)]
    for start in range(0, len(ids), 300):
        Task.insert_many([{"graph": gid, "name": f"t{k}", "kind": "python", "spec": "{}",
                           "state": ("finished", "running", "waiting")[k]}
                          for gid in ids[start:start + 300] for k in range(3)]).execute()
