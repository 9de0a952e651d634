"""Messages cannot be forged into work (DESIGN §13, invariant 9): published straight onto the
broker with aio-pika, as anyone with broker credentials could, against real daemons."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

import aio_pika

from tests.cluster import Cluster, wait_for

BROKER = "amqp://guest:guest@127.0.0.1:5672/"


async def _publish(queue: str, body: dict[str, Any], purge_first: bool = False,
                   headers: dict[str, Any] | None = None) -> None:
    connection = await aio_pika.connect(BROKER)
    try:
        channel = await connection.channel()
        if purge_first:
            declared = await channel.declare_queue(queue, passive=True)
            await declared.purge()
        await channel.default_exchange.publish(
            aio_pika.Message(json.dumps(body).encode(), headers=headers or {}),
            routing_key=queue)
    finally:
        await connection.close()


def publish(queue: str, body: dict[str, Any], **kw: Any) -> None:
    asyncio.run(_publish(queue, body, **kw))


def task_id(cluster: Cluster, gid: int, name: str) -> int:
    from wgops.store.models import Task

    return cluster.db(lambda: Task.get(Task.graph == gid, Task.name == name).id)


def test_a_forged_completion_finishes_nothing(cluster: Cluster) -> None:
    sched = cluster.scheduler()
    sid = cluster.wait_daemon("scheduler", sched.pid)
    cluster.worker(slots=1)
    gid = cluster.submit({"name": "forged", "tasks": {
        "held": {"run": "tests.tasks:noop", "pool": "nobody"},      # no worker serves it
        "after": {"run": "tests.tasks:noop", "after": ["held"]}}})
    wait_for(lambda: cluster.tasks(gid)["held"]["state"] == "queued", 20, what="held queued")
    ns = cluster.env["WGOPS_NAMESPACE"]
    held = task_id(cluster, gid, "held")
    for state in ("finished", "failed"):
        publish(f"{ns}.scheduler.{sid}", {"type": "done", "v": 1, "task": held, "graph": gid,
                                          "state": state, "attempt": 1, "worker": "w-forged"})
    publish(f"{ns}.scheduler.{sid}", {"type": "done_many", "v": 1, "items": [
        {"task": held, "graph": gid, "state": "finished", "attempt": 1}]})
    sent = time.time()
    cluster.wait_ticks("scheduler", 2, after=sent)          # it has read its inbox since
    tasks = cluster.tasks(gid)
    assert cluster.state(gid) == "running"
    assert tasks["held"]["state"] == "queued" and tasks["after"]["state"] == "waiting"
    doctor = json.loads(cluster.cli("doctor", "--json", check=False).stdout)
    assert not [f for f in doctor["findings"] if f["check"] == "dead_owner"]


def test_a_forged_run_task_runs_the_stored_target_and_arguments(cluster: Cluster,
                                                                tmp_path: Path) -> None:
    cluster.scheduler()
    real_log, forged_log = tmp_path / "real.log", tmp_path / "forged.log"
    gid = cluster.submit({"name": "stored", "tasks": {
        "t": {"run": "tests.tasks:record", "pool": "later",
              "args": {"log": str(real_log), "tag": "stored"}}}})
    wait_for(lambda: cluster.tasks(gid)["t"]["state"] == "queued", 20, what="t queued")
    ns = cluster.env["WGOPS_NAMESPACE"]
    publish(f"{ns}.tasks.later", {
        "type": "run", "v": 1, "task": task_id(cluster, gid, "t"), "graph": gid, "name": "t",
        "attempt": 0, "kind": "python", "target": "tests.tasks:sleep",
        "args": {"seconds": 0, "log": str(forged_log), "tag": "forged"}, "pool": "later"},
        purge_first=True)                      # only the forged message is left
    cluster.worker(slots=1, pools=("later",))
    shown = cluster.wait_graph(gid)
    assert shown["state"] == "finished"
    assert shown["tasks"][0]["result"] == "stored"
    assert real_log.read_text().split()[0] == "stored" and not forged_log.exists()


def test_a_shell_value_never_runs(cluster: Cluster, tmp_path: Path) -> None:
    cluster.scheduler()
    cluster.worker(slots=2)
    marker = tmp_path / "m"
    value = f'$(touch {marker})`touch {marker}`"; touch {marker}; "'
    gid = cluster.submit({"name": "shell", "inputs": {"x": value}, "tasks": {
        "quoted": {"shell": 'echo "x=${inputs.x}"'},
        "plain": {"shell": "printf %s ${inputs.x}"},
        "single": {"shell": "echo 'x=${inputs.x}'"},
        "heredoc": {"shell": "cat <<EOF\n${inputs.x}\nEOF"}}})
    shown = cluster.wait_graph(gid)
    assert shown["state"] == "finished", shown
    out = {t["name"]: t["result"]["stdout"] for t in shown["tasks"]}
    assert out == {"quoted": f"x={value}\n", "plain": value, "single": f"x={value}\n",
                   "heredoc": f"{value}\n"}
    assert not marker.exists()


async def _forge_terminal_events(exchange: str, gid: int, stop: threading.Event) -> None:
    connection = await aio_pika.connect(BROKER)
    try:
        channel = await connection.channel()
        events = await channel.get_exchange(exchange, ensure=False)
        while not stop.is_set():
            await events.publish(aio_pika.Message(json.dumps(
                {"graph": gid, "state": "finished", "type": "graph"}).encode()),
                routing_key="graph.finished")
            await asyncio.sleep(0.02)
    finally:
        await connection.close()


def test_submit_wait_after_a_contradicted_terminal_event_keeps_its_timeout(
        cluster: Cluster) -> None:
    """A forged `graph.finished` makes `--wait` read the database again, which still says
    running: it waits on, gives up at `--timeout` (exit 1, the state it read), and does not spin."""
    import os
    import subprocess
    import sys

    cluster.scheduler()
    doc = cluster.write_doc({"name": "contradicted", "tasks": {
        "held": {"run": "tests.tasks:noop", "pool": "nobody"}}})   # no worker serves it
    ns = cluster.env["WGOPS_NAMESPACE"]
    proc = subprocess.Popen([sys.executable, "-m", "wgops", "graph", "submit", doc, "--json",
                             "--wait", "--timeout", "4"], env=cluster.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stop = threading.Event()
    killer = threading.Timer(0, lambda: None)
    try:
        wait_for(lambda: cluster.db(_latest_graph) is not None, 20, what="graph stored")
        gid = cluster.db(_latest_graph)
        forger = threading.Thread(target=asyncio.run, args=(
            _forge_terminal_events(f"{ns}.events", gid, stop),), daemon=True)
        forger.start()
        killer = threading.Timer(40, proc.kill)           # a wait that never ends fails, not hangs
        killer.start()
        _, status, usage = os.wait4(proc.pid, 0)         # the subprocess's own CPU time
        proc.returncode = os.waitstatus_to_exitcode(status)
        out = proc.stdout.read()
    finally:
        stop.set()
        killer.cancel()
        if proc.returncode is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == 1, out
    assert json.loads(out)["state"] in ("running", "queued")
    assert cluster.state(gid) == "running"
    # measured: 0.46 s (interpreter start-up, mostly); re-reading in a loop: 2.9 s
    assert usage.ru_utime + usage.ru_stime < 1.5


def _latest_graph() -> int | None:
    from wgops.store.models import Graph

    row = Graph.select(Graph.id).order_by(Graph.id.desc()).first()
    return None if row is None else row.id
