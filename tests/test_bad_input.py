"""Bad input is refused with a clear reason and nothing runs that should not: malformed and
hostile messages on every queue, allow-list bypass attempts (in documents and in forged
RunTask messages), oversized results, and credentials that must never be shown.

Real daemons, a real broker. ``tests/test_engine.py`` covers the basic malformed bodies.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aio_pika
import pytest

from tests.cluster import Cluster, wait_for
from tests.test_reliability import delete_queues, queue_depth, task_rows


@pytest.fixture(autouse=True)
def drop_queues(namespace: str) -> Iterator[None]:
    yield
    delete_queues(namespace)


def publish(env: dict[str, str], queue: str, *bodies: bytes) -> None:
    async def go() -> None:
        conn = await aio_pika.connect(env["WGOPS_BROKER_URL"])
        try:
            channel = await conn.channel()
            for body in bodies:
                await channel.default_exchange.publish(aio_pika.Message(body),
                                                       routing_key=queue)
        finally:
            await conn.close()
    asyncio.run(go())


def purge(env: dict[str, str], name: str) -> None:
    async def go() -> None:
        conn = await aio_pika.connect(env["WGOPS_BROKER_URL"])
        try:
            queue = await (await conn.channel()).declare_queue(name, passive=True)
            await queue.purge()
        finally:
            await conn.close()
    asyncio.run(go())


def dead_letters(cluster: Cluster) -> list[dict[str, Any]]:
    return json.loads(cluster.cli("dead", "list", "--json", "--limit", "1000").stdout)


def msg(type_: str, **fields: Any) -> bytes:
    return json.dumps({"type": type_, "v": 1, **fields}).encode()


RUN = {"task": 1, "graph": 1, "name": "a", "attempt": 0, "kind": "python",
       "target": "tests.tasks:noop"}

# (queue, body, words the dead letter's reason must contain)
BAD = {
    "graphs": [
        (msg("launch", graph="1"), "LaunchGraph.graph: expected"),
        (msg("launch", graph=2 ** 70), "out of range"),
        (json.dumps({"type": "launch", "v": 0, "graph": 1}).encode(), "version 0"),
        (msg("run", **RUN), "unexpected message type 'run'"),
        (b"\xff\xfe\x00garbage", "not JSON"),
        (b"[" * 15_000, "nested too deeply"),
    ],
    "tasks": [
        (msg("run", **{**RUN, "kind": "graph"}), "unknown kind 'graph'"),
        (msg("run", **{**RUN, "args": [1, 2]}), "RunTask.args: expected"),
        (msg("run", task=1), "missing field"),
        (msg("run", **{**RUN, "timeout": float("nan")}), "not a finite number"),
        (msg("run", **{**RUN, "task": 2 ** 64}), "out of range"),
        (msg("run", **{**RUN, "evil": 1}), "unknown field 'evil'"),
        (msg("launch", graph=1), "unexpected message type 'launch'"),
    ],
    "scheduler": [
        (msg("control", op="explode"), "unknown op 'explode'"),
        (msg("control", op="refresh"), "needs graph"),
        (msg("control", op="cancel", task=1), "unknown op 'cancel'"),
        (msg("done", task=1, graph=1, state="exploded", attempt=1), "unknown state"),
        (msg("done", task="1", graph=1, state="finished", attempt=1), "TaskDone.task"),
        (msg("done_many", items=[]), "0 items"),
        (msg("done_many", items={"task": 1}), "TasksDone.items: expected"),
        (msg("done_many", items=[1]), "items[0]: expected an object"),
        (msg("done_many", items=[{"task": 1, "graph": 1, "state": "finished", "attempt": 1},
                                 {"task": 2, "graph": 1}]), "items[1]: missing field 'state'"),
        (msg("done_many", items=[{"task": 1, "graph": 1, "state": "lost", "attempt": 1}]),
         "unknown state"),
        (msg("run", **RUN), "unexpected message type 'run'"),
    ],
    "worker": [
        (msg("control", op="refresh", graph=1), "unknown op 'refresh'"),
        (msg("control", op="cancel"), "needs task"),
        (msg("control", op="ping", args=[]), "Control.args: expected"),
        (msg("done", task=1, graph=1, state="finished", attempt=1), "unexpected message type"),
        (msg("done_many", items=[{"task": 1, "graph": 1, "state": "finished", "attempt": 1}]),
         "unexpected message type"),
    ],
    "oversized": [(b'{"type":"launch","v":1,"graph":1,"pad":"' + b"x" * 30_000 + b'"}',
                   "over the 20000-byte limit")],
}


def test_hostile_messages_on_every_queue_are_dead_lettered_with_a_reason(
        cluster: Cluster) -> None:
    cluster.env["WGOPS_MAX_MESSAGE_BYTES"] = "20000"
    s = cluster.scheduler()
    w = cluster.worker(slots=1)
    sid = cluster.wait_daemon("scheduler", s.pid)
    wid = cluster.wait_daemon("worker", w.pid)
    ns = cluster.env["WGOPS_NAMESPACE"]
    queues = {"graphs": f"{ns}.graphs", "tasks": f"{ns}.tasks.default",
              "scheduler": f"{ns}.scheduler.{sid}", "worker": f"{ns}.worker.{wid}"}
    expected: list[tuple[str, str]] = []
    for kind, cases in BAD.items():
        targets = list(queues.values()) if kind == "oversized" else [queues[kind]]
        for queue in targets:
            publish(cluster.env, queue, *(body for body, _ in cases))
            expected += [(queue, words) for _, words in cases]
    def all_refused() -> list[dict[str, Any]] | None:
        rows = dead_letters(cluster)
        return rows if len(rows) >= len(expected) else None
    rows = wait_for(all_refused, 30, 0.2, f"{len(expected)} dead letters")
    assert len(rows) == len(expected), rows
    for queue, words in expected:
        assert any(r["queue"] == queue and words in r["reason"] for r in rows), (queue, words)
    assert all(r["daemon"] in (sid, wid) for r in rows)
    # each also went to {ns}.dead, and every daemon is still alive and working
    wait_for(lambda: queue_depth(cluster.env, f"{ns}.dead") == len(expected), 20, 0.2,
             "the {ns}.dead messages")
    assert s.poll() is None and w.poll() is None
    gid = cluster.submit({"name": "after", "tasks": {"a": {"run": "tests.tasks:noop"}}})
    assert cluster.wait_graph(gid)["state"] == "finished"
    text = cluster.cli("dead", "list").stdout
    assert "unknown op 'explode'" in text and "QUEUE" in text


def test_taskdone_for_unknown_graph_and_task_changes_nothing(cluster: Cluster) -> None:
    s = cluster.scheduler()
    sid = cluster.wait_daemon("scheduler", s.pid)
    gid = cluster.submit({"name": "waiting", "tasks": {"a": {"run": "tests.tasks:noop"},
                                                       "b": {"run": "tests.tasks:noop",
                                                             "after": ["a"]}}})
    wait_for(lambda: task_rows(cluster, gid)["a"].state == "queued", 20, 0.1, "a queued")
    a, b = task_rows(cluster, gid)["a"].id, task_rows(cluster, gid)["b"].id
    ns = cluster.env["WGOPS_NAMESPACE"]
    publish(cluster.env, f"{ns}.scheduler.{sid}",
            msg("done", task=99_999, graph=99_999, state="finished", attempt=1),
            msg("done", task=99_999, graph=gid, state="finished", attempt=1),
            msg("control", op="refresh", graph=99_999),
            msg("control", op="drop", graph=99_999))
    # a refresh of the real graph afterwards is handled: the inbox is alive and in order
    publish(cluster.env, f"{ns}.scheduler.{sid}", msg("control", op="refresh", graph=gid))
    wait_for(lambda: queue_depth(cluster.env, f"{ns}.scheduler.{sid}") == 0, 20, 0.1,
             "the inbox drained")
    assert dead_letters(cluster) == []
    rows = task_rows(cluster, gid)
    assert rows["a"].state == "queued" and rows["b"].state == "waiting"
    assert (rows["a"].id, rows["b"].id) == (a, b)
    assert s.poll() is None
    cluster.worker(slots=1)
    assert cluster.wait_graph(gid)["state"] == "finished"


# -- the allow-list -------------------------------------------------------------------------------

REFUSED_BY_VALIDATION = ["acc.x:__class__", ".relative:func", "wgops.examples.tasks:__import__",
                         "tests.tasks:_private", "os:", "a b:c"]
REFUSED_BY_WORKERS = ["builtins:eval", "os:system", "subprocess:run", "sneaky:run",
                      "importlib:import_module", "tests.tasks:Path"]


def sneaky_module(tmp_path: Path) -> tuple[Path, Path]:
    """A module outside the task path whose import leaves a mark."""
    code = tmp_path / "code"
    code.mkdir()
    mark = tmp_path / "imported"
    (code / "sneaky.py").write_text(f"open({str(mark)!r}, 'w').write('x')\n"
                                    "def run(**kw):\n    return 'ran'\n")
    return code, mark


@pytest.mark.parametrize("target", REFUSED_BY_VALIDATION)
def test_bad_targets_are_refused_at_validation(cluster: Cluster, target: str) -> None:
    doc = cluster.write_doc({"name": "bypass", "tasks": {"a": {"run": target}}})
    for args in (("graph", "validate", doc), ("graph", "submit", doc)):
        out = cluster.cli(*args, check=False)
        assert out.returncode == 2, out
        assert "run must be 'module:function'" in out.stderr
        assert "Traceback" not in out.stderr
    assert json.loads(cluster.cli("graph", "list", "--json").stdout) == []


def test_off_allow_list_targets_in_documents_never_run(cluster: Cluster,
                                                       tmp_path: Path) -> None:
    code, mark = sneaky_module(tmp_path)
    cluster.env["WGOPS_ALLOW"] += ",sneaky:*,builtins:*,os:*,subprocess:*,importlib:*,tests:*"
    cluster.scheduler()
    cluster.worker(slots=2)
    touched = tmp_path / "touched"
    args = {"builtins:eval": {"source": f"open({str(touched)!r}, 'w')"},
            "os:system": {"command": f"touch {touched}"},
            "subprocess:run": {"args": ["touch", str(touched)]},
            "importlib:import_module": {"name": "sneaky"}}
    gid = cluster.submit({"name": "bypass", "tasks": {
        f"t{i}": {"run": target, "args": args.get(target, {})}
        for i, target in enumerate(REFUSED_BY_WORKERS)}})
    shown = cluster.wait_graph(gid)
    assert shown["state"] == "failed"
    for t in shown["tasks"]:
        assert t["state"] == "failed" and t["error"]["type"] == "NotAllowed", t
    assert not touched.exists() and not mark.exists()
    assert code.exists()


def test_forged_run_messages_bypassing_validation_never_run(cluster: Cluster,
                                                            tmp_path: Path) -> None:
    """RunTask messages published straight to the task queue, for real task rows (so the
    start compare-and-set succeeds) but with hostile targets and arguments: the worker runs
    what the task's row stores (here a no-op), never what a message says."""
    code, mark = sneaky_module(tmp_path)
    touched = tmp_path / "touched"
    cluster.env["WGOPS_ALLOW"] += ",sneaky:*"           # allowed by pattern, off the task path
    cluster.env["WGOPS_SHELL"] = "off"
    ns = cluster.env["WGOPS_NAMESPACE"]
    cluster.scheduler()
    forged = [("python", "builtins:eval", {"source": f"open({str(touched)!r}, 'w')"}),
              ("python", "os:system", {"command": f"touch {touched}"}),
              ("python", "subprocess:run", {"args": ["touch", str(touched)]}),
              ("python", "acc.x:__class__", {}), ("python", ".relative:func", {}),
              ("python", "wgops.examples.tasks:__import__", {"name": "os"}),
              ("python", "sneaky:run", {}), ("python", "tests.tasks:_private", {}),
              ("shell", f"touch {touched}", {})]
    gid = cluster.submit({"name": "forged", "tasks": {
        f"t{i}": {"run": "tests.tasks:noop"} for i in range(len(forged))}})
    wait_for(lambda: queue_depth(cluster.env, f"{ns}.tasks.default") == len(forged), 20, 0.1,
             "all queued")
    purge(cluster.env, f"{ns}.tasks.default")
    rows = task_rows(cluster, gid)
    log = tmp_path / "ran.log"
    publish(cluster.env, f"{ns}.tasks.default", *(
        msg("run", task=rows[f"t{i}"].id, graph=gid, name=f"t{i}", attempt=0, kind=kind,
            target=target, args=args) for i, (kind, target, args) in enumerate(forged)),
        # an allowed target for a task that does not exist: dropped, never run
        msg("run", task=424_242, graph=gid, name="ghost", attempt=0, kind="python",
            target="tests.tasks:record", args={"log": str(log)}))
    cluster.worker(slots=2, extra_env={"WGOPS_TASK_PATH": ""})
    shown = cluster.wait_graph(gid)
    tasks = {t["name"]: t for t in shown["tasks"]}
    assert shown["state"] == "finished", shown
    for i, (_, target, _) in enumerate(forged):
        t = tasks[f"t{i}"]
        assert t["state"] == "finished" and t["result"] is None, (target, t)
    assert not touched.exists() and not mark.exists() and not log.exists()
    assert code.exists()


# -- results --------------------------------------------------------------------------------------

def test_results_over_the_limit_fail_the_task_clearly(cluster: Cluster) -> None:
    cluster.env["WGOPS_MAX_RESULT_BYTES"] = "2000"
    cluster.scheduler()
    cluster.worker(slots=2)
    gid = cluster.submit({"name": "big", "tasks": {
        "sync": {"run": "tests.tasks:big_result", "args": {"size": 5000}},
        "async": {"run": "tests.tasks:async_big_result", "args": {"size": 5000}},
        "shell": {"shell": "head -c 5000 /dev/zero | tr '\\0' x"},
        "small": {"run": "tests.tasks:big_result", "args": {"size": 100}},
        "after": {"run": "tests.tasks:noop", "after": ["sync"]}}})
    shown = cluster.wait_graph(gid)
    tasks = {t["name"]: t for t in shown["tasks"]}
    assert shown["state"] == "failed"
    for name in ("sync", "async", "shell"):
        t = tasks[name]
        assert t["state"] == "failed" and t["error"]["type"] == "ResultTooLarge", t
        assert "over the 2000-byte limit" in t["error"]["message"]
        assert t["result"] is None or name == "shell"
    assert tasks["small"]["state"] == "finished" and tasks["small"]["result"] == "x" * 100
    assert tasks["after"]["state"] == "skipped"


# -- credentials ----------------------------------------------------------------------------------

SECRET = "S3cretPw"
USER = "wgops_secret_user"


@pytest.fixture
def secret_user() -> Iterator[str]:
    def ctl(*args: str) -> None:
        subprocess.run(["rabbitmqctl", *args], capture_output=True, timeout=60, check=True)

    subprocess.run(["rabbitmqctl", "delete_user", USER], capture_output=True, timeout=60,
                   check=False)
    ctl("add_user", USER, SECRET)
    try:
        ctl("set_permissions", "-p", "/", USER, ".*", ".*", ".*")
        yield f"amqp://{USER}:{SECRET}@127.0.0.1:5672/"
    finally:
        subprocess.run(["rabbitmqctl", "delete_user", USER], capture_output=True, timeout=60,
                       check=False)


def collect_events(url: str, exchange: str, into: list[bytes]) -> tuple[Any, Any]:
    """Start a background consumer of every {ns}.events message; returns (loop, stop)."""
    import threading

    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop: asyncio.Event | None = None

    async def consume() -> None:
        nonlocal stop
        stop = asyncio.Event()
        conn = await aio_pika.connect(url)
        channel = await conn.channel()
        ex = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC,
                                            durable=True)
        queue = await channel.declare_queue("", exclusive=True, auto_delete=True)
        await queue.bind(ex, routing_key="#")
        async def on_message(message: Any) -> None:
            into.append(message.body)
        await queue.consume(on_message, no_ack=True)
        ready.set()
        await stop.wait()
        await conn.close()

    thread = threading.Thread(target=loop.run_until_complete, args=(consume(),), daemon=True)
    thread.start()
    ready.wait(20)

    def finish() -> None:
        assert stop is not None
        loop.call_soon_threadsafe(stop.set)
        thread.join(20)
        loop.close()
    return loop, finish


def test_credentials_never_appear_in_logs_status_cli_events_or_store(
        cluster: Cluster, secret_user: str, tmp_path: Path) -> None:
    cluster.env["WGOPS_BROKER_URL"] = secret_user
    ns = cluster.env["WGOPS_NAMESPACE"]
    seen: list[bytes] = []
    _, finish = collect_events(secret_user, f"{ns}.events", seen)
    outputs: list[str] = []
    try:
        s = cluster.scheduler()
        w = cluster.worker(slots=2)
        sid = cluster.wait_daemon("scheduler", s.pid)
        gid = cluster.submit({"name": "secret", "tasks": {
            "ok": {"run": "tests.tasks:add", "args": {"a": 1, "b": 2}},
            "bad": {"run": "tests.tasks:boom"},
            "sh": {"shell": "echo hello"}}})
        shown = cluster.wait_graph(gid)
        assert shown["state"] == "failed"
        publish(cluster.env, f"{ns}.scheduler.{sid}", b"not json at all")
        wait_for(lambda: dead_letters(cluster), 20, 0.2, "a dead letter")
        for args in (("graph", "show", str(gid), "--json"), ("graph", "list"),
                     ("daemon", "status", "--json"), ("daemon", "status"), ("dead", "list"),
                     ("doctor", "--json"), ("graph", "show", str(gid))):
            out = cluster.cli(*args, check=False)
            outputs.append(f"{args}: {out.stdout}{out.stderr}")
        status = json.loads(cluster.cli("daemon", "status", "--json").stdout)
        assert status["broker"]["url"] == f"amqp://{USER}:***@127.0.0.1:5672/"
        # an unreachable broker: the error names the URL, masked
        bad = dict(cluster.env, WGOPS_BROKER_URL=f"amqp://{USER}:{SECRET}@127.0.0.1:5999/")
        doc = cluster.write_doc({"name": "x", "tasks": {"a": {"run": "tests.tasks:noop"}}})
        for args in (("graph", "submit", doc), ("doctor",), ("--debug", "graph", "list")):
            out = subprocess.run([*_wgops(), *args], env=bad, capture_output=True, text=True,
                                 timeout=60, cwd=str(Path(__file__).parent.parent))
            outputs.append(f"{args}: {out.stdout}{out.stderr}")
        assert any("127.0.0.1:5999" in o and "***" in o for o in outputs[-3:]), outputs[-3:]
        cluster.stop(w)
        cluster.stop(s)
    finally:
        finish()
    from wgops.store.models import DeadLetter, Graph, LogEntry, Scheduler, Task, Worker

    def stored() -> list[str]:
        texts: list[str] = []
        for model in (LogEntry, DeadLetter, Graph, Task, Scheduler, Worker):
            texts += [json.dumps(row, default=str) for row in model.select().dicts()]
        return texts
    rows = cluster.db(stored)
    logs = [path.read_text(errors="replace") for path in cluster.logs.values()]
    assert len(seen) > 10 and logs and rows
    for where, texts in (("daemon logs", logs), ("CLI output", outputs),
                         ("{ns}.events messages", [b.decode("utf-8", "replace") for b in seen]),
                         ("database rows", rows)):
        leaks = [t for t in texts if SECRET in t]
        assert not leaks, f"the password appears in {where}: {leaks[0][:2000]}"
    assert any(USER in log for log in logs)        # the URL is there, masked


def _wgops() -> list[str]:
    import sys

    return [sys.executable, "-m", "wgops"]


def test_dead_letters_are_capped_and_the_drop_is_counted(cluster: Cluster) -> None:
    cluster.env["WGOPS_MAX_DEAD_LETTERS"] = "5"
    sched = cluster.scheduler()
    sid = cluster.wait_daemon("scheduler", sched.pid)
    ns = cluster.env["WGOPS_NAMESPACE"]
    publish(cluster.env, f"{ns}.scheduler.{sid}", *(f"garbage {i}".encode() for i in range(9)))
    wait_for(lambda: "4 older dead letters were dropped" in cluster.cli("dead", "list").stderr,
             30, 0.2, "the drop counted")
    rows = json.loads(cluster.cli("dead", "list", "--json").stdout)
    # the five newest are kept, newest first: a burst's messages are handled concurrently,
    # yet recorded in the order they arrived (the cap drops by that order)
    assert [r["body"] for r in rows] == [f"garbage {i}" for i in range(8, 3, -1)]
    assert queue_depth(cluster.env, f"{ns}.dead") == 5
