"""Pools (caps across graphs and schedulers), priorities and "why is it waiting"."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cluster import Cluster, wait_for


def spans(log: Path) -> list[tuple[str, float, float]]:
    out = []
    for line in log.read_text().splitlines():
        tag, start, end = line.split()
        out.append((tag, float(start), float(end)))
    return out


def max_concurrency(intervals: list[tuple[str, float, float]]) -> int:
    points = sorted([(s, 1) for _, s, _ in intervals] + [(e, -1) for _, _, e in intervals])
    best = current = 0
    for _, delta in points:
        current += delta
        best = max(best, current)
    return best


def test_pool_cap_holds_across_graphs_and_schedulers(cluster: Cluster, tmp_path: Path) -> None:
    cluster.cli("pool", "set", "licence", "--max-running", "0")     # hold everything first
    sids = [cluster.wait_daemon("scheduler", cluster.scheduler().pid) for _ in range(2)]
    cluster.worker(slots=10, pools=("default", "licence"))
    log = tmp_path / "spans.log"
    ids = []
    for g in range(3):
        ids.append(cluster.submit({"name": f"lic{g}", "tasks": {
            f"t{i}": {"run": "tests.tasks:sleep", "pool": "licence",
                      "args": {"seconds": 1, "log": str(log), "tag": f"{g}.{i}"}}
            for i in range(2)}}))

    def all_held() -> bool:
        return all(t["state"] == "waiting" and t["waiting_for"] ==
                   "pool licence at its cap (0/0 running or queued)"
                   for gid in ids for t in cluster.tasks(gid).values())
    wait_for(all_held, 30, 0.1, "every task held by the pool cap, saying so")
    if len({cluster.owner(gid) for gid in ids}) == 1:     # make sure both schedulers hold some
        other = next(s for s in sids if s != cluster.owner(ids[0]))
        cluster.cli("graph", "reassign", str(ids[0]), "--to", other)
        wait_for(all_held, 30, 0.1, "the reassigned graph held too")
    owners = {cluster.owner(gid) for gid in ids}
    assert len(owners) == 2
    cluster.cli("pool", "set", "licence", "--max-running", "2")

    def some_held_at_two() -> bool:
        return any(t["waiting_for"] == "pool licence at its cap (2/2 running or queued)"
                   for gid in ids for t in cluster.tasks(gid).values())
    wait_for(some_held_at_two, 20, 0.1, "the reason with the new cap")
    pools = {p["name"]: p for p in json.loads(cluster.cli("pool", "list", "--json").stdout)}
    assert pools["licence"]["max_running"] == 2
    assert pools["licence"]["running"] + pools["licence"]["queued"] <= 2
    for gid in ids:
        assert cluster.wait_graph(gid, timeout=60)["state"] == "finished"
    intervals = spans(log)
    assert len(intervals) == 6
    assert max_concurrency(intervals) == 2


def test_raising_the_cap_live_starts_the_rest(cluster: Cluster, tmp_path: Path) -> None:
    """The tasks run until the test opens their gate, so the four held back can only start
    because the cap was raised; the heartbeat is longer than the wait, so it is the raise
    that wakes the scheduler, not a periodic pass."""
    cluster.env.update({"WGOPS_HEARTBEAT": "30", "WGOPS_STALE_AFTER": "120"})
    cluster.cli("pool", "set", "gpu", "--max-running", "2")
    cluster.scheduler()
    cluster.worker(slots=10, pools=("gpu",))
    log, gate = tmp_path / "spans.log", tmp_path / "open"
    gid = cluster.submit({"name": "gpu", "tasks": {
        f"t{i}": {"run": "tests.tasks:gate", "pool": "gpu",
                  "args": {"path": str(gate), "log": str(log), "tag": str(i)}}
        for i in range(6)}})

    def running() -> int:
        return sum(t["state"] == "running" for t in cluster.tasks(gid).values())
    wait_for(lambda: running() == 2, 20, 0.1, "two running")
    cluster.cli("pool", "set", "gpu", "--max-running", "6")
    wait_for(lambda: running() == 6, 20, 0.1, "all six running, none finished")
    gate.touch()
    assert cluster.wait_graph(gid, timeout=60)["state"] == "finished"
    assert max_concurrency(spans(log)) == 6


def test_task_whose_pool_no_worker_serves_says_so(cluster: Cluster) -> None:
    cluster.scheduler()
    cluster.worker(slots=1)
    gid = cluster.submit({"name": "orphan-pool", "tasks": {
        "t": {"run": "tests.tasks:noop", "pool": "nobody"}}})
    wait_for(lambda: cluster.tasks(gid)["t"]["waiting_for"] ==
             "no live worker serves pool nobody", 20, 0.1, "the reason")
    assert cluster.show(gid)["tasks"][0]["state"] == "queued"
    # a worker for that pool appears: the task runs
    cluster.worker(slots=1, pools=("nobody",))
    assert cluster.wait_graph(gid)["state"] == "finished"


def test_priority_9_runs_next_on_a_busy_slot(cluster: Cluster, tmp_path: Path) -> None:
    cluster.scheduler()
    cluster.worker(slots=1)
    log = tmp_path / "order.log"
    blocker = cluster.submit({"name": "blocker", "tasks": {
        "b": {"run": "tests.tasks:sleep", "args": {"seconds": 60}}}})
    wait_for(lambda: cluster.tasks(blocker)["b"]["state"] == "running", 20, 0.1,
             "the slot busy")
    low = [cluster.submit({"name": f"low{i}", "tasks": {"r": {
        "run": "tests.tasks:record", "args": {"log": str(log), "tag": f"low{i}"}}}})
        for i in range(10)]
    wait_for(lambda: all(cluster.tasks(g)["r"]["state"] == "queued" for g in low), 20,
             0.1, "low-priority tasks queued")
    high = cluster.submit({"name": "high", "tasks": {"r": {
        "run": "tests.tasks:record", "args": {"log": str(log), "tag": "high"}}}},
        "--priority", "9")
    show = cluster.show(high)
    assert show["priority"] == 9
    wait_for(lambda: cluster.tasks(high)["r"]["state"] == "queued", 20, 0.1, "queued")
    cluster.cli("graph", "kill", str(blocker))      # frees the one slot now
    for gid in low + [high]:
        assert cluster.wait_graph(gid)["state"] == "finished"
    order = [line.split()[0] for line in log.read_text().splitlines()]
    assert order[0] == "high", order
    assert order[1:] == [f"low{i}" for i in range(10)], "FIFO within a priority"


def test_reasons_and_live_priority_change(cluster: Cluster) -> None:
    cluster.scheduler()
    cluster.worker(slots=1)
    gid = cluster.submit({"name": "reasons", "tasks": {
        "a": {"run": "tests.tasks:sleep", "args": {"seconds": 3}},
        "b": {"run": "tests.tasks:sleep", "args": {"seconds": 3}},
        "c": {"run": "tests.tasks:noop", "after": ["a", "b"]}}})
    wait_for(lambda: "running" in {cluster.tasks(gid)[n]["state"] for n in "ab"}, 20, 0.05,
             "a or b running")
    tasks = cluster.tasks(gid)
    queued = [t for t in tasks.values() if t["state"] == "queued"]
    assert queued and queued[0]["waiting_for"] == "queued for a free slot in pool default"
    assert tasks["c"]["waiting_for"].startswith("waiting for ")
    assert tasks["c"]["state"] == "waiting"
    out = cluster.cli("graph", "priority", str(gid), "7")
    assert "priority 7" in out.stdout
    assert cluster.show(gid)["priority"] == 7
    assert cluster.wait_graph(gid)["state"] == "finished"
    bad = cluster.cli("graph", "priority", str(gid), "12", check=False)
    assert bad.returncode == 2


def test_a_worker_that_just_came_up_counts_as_serving(cluster: Cluster) -> None:
    """The scheduler's picture of live workers is refreshed by its tick; a worker that came up
    since must not make queued work say "no live worker" (the scheduler ticks rarely here)."""
    cluster.scheduler(extra_env={"WGOPS_HEARTBEAT": "20", "WGOPS_STALE_AFTER": "60"})
    cluster.worker(slots=1)
    gid = cluster.submit({"name": "fresh", "tasks": {
        "a": {"run": "tests.tasks:sleep", "args": {"seconds": 2}},
        "b": {"run": "tests.tasks:sleep", "args": {"seconds": 2}}}})
    wait_for(lambda: "running" in {t["state"] for t in cluster.tasks(gid).values()}, 20, 0.05,
             "a task running")
    queued = [t for t in cluster.tasks(gid).values() if t["state"] == "queued"]
    assert queued and queued[0]["waiting_for"] == "queued for a free slot in pool default"
    assert cluster.wait_graph(gid)["state"] == "finished"


async def test_task_events_name_their_pool(cluster: Cluster) -> None:
    """The console's per-queue rates count task events by pool."""
    import aio_pika

    cluster.scheduler()
    cluster.worker(slots=1, pools=("gpu",))
    conn = await aio_pika.connect(cluster.env["WGOPS_BROKER_URL"])
    try:
        channel = await conn.channel()
        exchange = await channel.declare_exchange(f"{cluster.env['WGOPS_NAMESPACE']}.events",
                                                  aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue("", exclusive=True)
        await queue.bind(exchange, routing_key="task.*")
        gid = cluster.submit({"name": "gpu-events", "tasks": {
            "t": {"run": "tests.tasks:noop", "pool": "gpu"}}})
        assert cluster.wait_graph(gid)["state"] == "finished"
        seen: dict[str, str] = {}
        while len(seen) < 3:
            message = await queue.get(timeout=10, fail=False)
            if message is None:
                break
            body = json.loads(message.body)
            seen[body["topic"]] = body["data"].get("pool")
            await message.ack()
    finally:
        await conn.close()
    assert seen == {"task.queued": "gpu", "task.running": "gpu", "task.finished": "gpu"}
