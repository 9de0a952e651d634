"""The engine end to end: real RabbitMQ, real SQLite, real scheduler and worker processes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import aio_pika
import pytest

from tests.cluster import Cluster, wait_for


def test_diamond_passes_data_async_and_shell(cluster: Cluster) -> None:
    cluster.scheduler()
    cluster.worker(slots=4)
    gid = cluster.submit({
        "name": "diamond", "inputs": {"x": 3},
        "tasks": {
            "a": {"run": "tests.tasks:double", "args": {"x": "${inputs.x}"}},
            "b": {"run": "tests.tasks:add", "args": {"a": "${a.value}", "b": 1}},
            "c": {"run": "tests.tasks:async_add", "args": {"a": "${a.half}", "b": 10}},
            "d": {"run": "tests.tasks:combine", "args": {"left": "${b}", "right": "${c}"}},
            "e": {"shell": "echo total=${d.total} name=${inputs.name}"},
        },
        "outputs": {"total": "${d.total}", "echo": "${e.stdout}"},
    }, "--set", "x=4", "--set", "name=it's; rm -rf /")
    shown = cluster.wait_graph(gid)
    assert shown["state"] == "finished", shown
    # x=4: a = {value 8, half 2}; b = 9; c = 12; d = 21
    assert shown["outputs"]["total"] == 21
    assert shown["outputs"]["echo"] == "total=21.0 name=it's; rm -rf /\n"
    tasks = {t["name"]: t for t in shown["tasks"]}
    assert tasks["c"]["result"] == 12
    assert all(t["attempts"] == 1 and t["worker"] for t in tasks.values())
    assert all(t["started"] <= t["finished"] for t in tasks.values())


def test_submit_wait_exit_codes_and_outputs(cluster: Cluster) -> None:
    cluster.scheduler()
    cluster.worker(slots=2)
    ok = cluster.write_doc({"name": "ok", "tasks": {"a": {"run": "tests.tasks:add",
                                                          "args": {"a": 1, "b": 2}}},
                            "outputs": {"sum": "${a}"}})
    out = cluster.cli("graph", "submit", ok, "--wait", "--json", timeout=60)
    assert json.loads(out.stdout) == {"id": 1, "name": "ok", "state": "finished",
                                      "outputs": {"sum": 3}}
    bad = cluster.write_doc({"name": "bad", "tasks": {"a": {"run": "tests.tasks:boom"}}})
    out = cluster.cli("graph", "submit", bad, "--wait", "--json", check=False)
    assert out.returncode == 1, out.stderr
    assert json.loads(out.stdout)["state"] == "failed"


def test_retries_then_success(cluster: Cluster, tmp_path: Path) -> None:
    cluster.scheduler()
    cluster.worker(slots=2)
    marker = tmp_path / "flaky"
    gid = cluster.submit({"name": "retry", "tasks": {"f": {
        "run": "tests.tasks:flaky", "args": {"marker": str(marker), "fail_times": 2},
        "retries": 2, "retry_delay": 0.3}}})
    shown = cluster.wait_graph(gid)
    f = shown["tasks"][0]
    assert shown["state"] == "finished"
    assert f["attempts"] == 3 and f["result"] == "ok after 3"


def test_failure_skips_dependents_and_independent_branch_finishes(cluster: Cluster) -> None:
    cluster.scheduler()
    cluster.worker(slots=2)
    gid = cluster.submit({"name": "fail", "tasks": {
        "bad": {"run": "tests.tasks:boom", "args": {"message": "bad input"}},
        "after_bad": {"run": "tests.tasks:add", "args": {"a": "${bad}", "b": 1}},
        "after_after": {"run": "tests.tasks:noop", "after": ["after_bad"]},
        "free": {"run": "tests.tasks:sleep", "args": {"seconds": 0.3}},
        "after_free": {"run": "tests.tasks:noop", "after": ["free"]},
    }})
    shown = cluster.wait_graph(gid)
    tasks = {t["name"]: t for t in shown["tasks"]}
    assert shown["state"] == "failed"
    assert tasks["bad"]["state"] == "failed"
    assert tasks["bad"]["error"]["type"] == "ValueError"
    assert tasks["bad"]["error"]["message"] == "bad input"
    assert "Traceback" in tasks["bad"]["error"]["traceback"]
    assert tasks["after_bad"]["state"] == "skipped"
    assert tasks["after_after"]["state"] == "skipped"
    assert tasks["free"]["state"] == "finished"
    assert tasks["after_free"]["state"] == "finished"


def test_nested_graphs_two_levels(cluster: Cluster, tmp_path: Path) -> None:
    cluster.scheduler()
    cluster.worker(slots=1)
    (tmp_path / "inner.yaml").write_text(
        "name: inner\ntasks:\n  dbl: {run: 'tests.tasks:double', args: {x: '${inputs.v}'}}\n"
        "outputs: {value: '${dbl.value}'}\n")
    (tmp_path / "middle.yaml").write_text(
        "name: middle\ntasks:\n"
        "  pre: {run: 'tests.tasks:add', args: {a: '${inputs.n}', b: 1}}\n"
        "  deeper: {graph: inner.yaml, args: {v: '${pre}'}}\n"
        "outputs: {out: '${deeper.value}'}\n")
    (tmp_path / "outer.yaml").write_text(
        "name: outer\ninputs: {start: 1}\ntasks:\n"
        "  mid: {graph: middle.yaml, args: {n: '${inputs.start}'}}\n"
        "  last: {run: 'tests.tasks:add', args: {a: '${mid.out}', b: 100}}\n"
        "outputs: {final: '${last}'}\n")
    gid = cluster.submit(str(tmp_path / "outer.yaml"), "--set", "start=5")
    shown = cluster.wait_graph(gid)
    assert shown["state"] == "finished", shown
    assert shown["outputs"] == {"final": 112}      # (5+1)*2 + 100
    mid = next(t for t in shown["tasks"] if t["name"] == "mid")
    child = cluster.show(mid["child"])
    assert child["parent"] == gid and child["outputs"] == {"out": 12}
    grandchild = cluster.show(next(t for t in child["tasks"] if t["name"] == "deeper")["child"])
    assert grandchild["parent"] == child["id"] and grandchild["state"] == "finished"


def test_shell_failure_non_json_and_off_allow_list(cluster: Cluster, tmp_path: Path) -> None:
    (tmp_path / "sneaky.py").write_text(
        f"open({str(tmp_path / 'imported')!r}, 'w').write('x')\n"
        "def run():\n    return 'ran'\n")
    cluster.env["WGOPS_TASK_PATH"] = str(tmp_path)
    cluster.scheduler()
    cluster.worker(slots=2)
    gid = cluster.submit({"name": "bad-things", "tasks": {
        "shell_fail": {"shell": "echo out; echo oops >&2; exit 3"},
        "not_json": {"run": "tests.tasks:not_json"},
        "forbidden": {"run": "sneaky:run"},
        "eval": {"run": "builtins:eval", "args": {"source": "1"}},
        "system": {"run": "os:system", "args": {"command": "touch /tmp/never"}},
    }})
    tasks = {t["name"]: t for t in cluster.wait_graph(gid)["tasks"]}
    assert tasks["shell_fail"]["state"] == "failed"
    assert tasks["shell_fail"]["result"] == {"stdout": "out\n", "stderr": "oops\n",
                                             "returncode": 3}
    assert "exited with code 3" in tasks["shell_fail"]["error"]["message"]
    assert tasks["not_json"]["error"]["type"] == "TypeError"
    assert "not JSON-serialisable" in tasks["not_json"]["error"]["message"]
    for name in ("forbidden", "eval", "system"):
        assert tasks[name]["state"] == "failed"
        assert tasks[name]["error"]["type"] == "NotAllowed"
        assert "not allowed on worker w-" in tasks[name]["error"]["message"]
    assert not (tmp_path / "imported").exists(), "an off-allow-list module was imported"


def test_shell_tasks_refused_where_shell_is_off(cluster: Cluster) -> None:
    cluster.env["WGOPS_SHELL"] = "off"
    cluster.scheduler()
    cluster.worker(slots=1)
    gid = cluster.submit({"name": "sh", "tasks": {"s": {"shell": "echo hi"}}})
    task = cluster.wait_graph(gid)["tasks"][0]
    assert task["state"] == "failed" and "WGOPS_SHELL is off" in task["error"]["message"]


def test_100_nested_graphs_on_a_single_worker_slot(cluster: Cluster, tmp_path: Path) -> None:
    """The deadlock test: graph logic never waits inside a worker slot."""
    cluster.scheduler()
    cluster.worker(slots=1)
    (tmp_path / "leaf.yaml").write_text(
        "name: leaf\ntasks:\n  a: {run: 'tests.tasks:add', args: {a: '${inputs.i}', b: 1}}\n"
        "outputs: {v: '${a}'}\n")
    (tmp_path / "mid.yaml").write_text(
        "name: mid\ntasks:\n  inner: {graph: leaf.yaml, args: {i: '${inputs.i}'}}\n"
        "outputs: {v: '${inner.v}'}\n")
    tasks = {f"n{i}": {"graph": "mid.yaml", "args": {"i": i}} for i in range(100)}
    (tmp_path / "top.yaml").write_text(json.dumps({
        "name": "hundred", "tasks": tasks,
        "outputs": {"first": "${n0.v}", "last": "${n99.v}"}}))
    gid = cluster.submit(str(tmp_path / "top.yaml"))
    shown = cluster.wait_graph(gid, timeout=120)
    assert shown["state"] == "finished", shown
    assert shown["outputs"] == {"first": 1, "last": 100}


def test_pause_and_play(cluster: Cluster) -> None:
    cluster.scheduler()
    cluster.worker(slots=1)
    gid = cluster.submit({"name": "chain", "tasks": {
        "a": {"run": "tests.tasks:sleep", "args": {"seconds": 3}},
        "b": {"run": "tests.tasks:noop", "after": ["a"]},
        "c": {"run": "tests.tasks:noop", "after": ["b"]}}})
    wait_for(lambda: cluster.tasks(gid)["a"]["state"] == "running", 20, what="a running")
    cluster.cli("graph", "pause", str(gid))
    assert cluster.state(gid) == "paused"
    wait_for(lambda: cluster.tasks(gid)["a"]["state"] == "finished", 20, what="a finished")
    tasks = cluster.tasks(gid)
    assert tasks["b"]["state"] == "waiting" and tasks["b"]["waiting_for"] == "graph paused"
    assert tasks["c"]["waiting_for"] == "waiting for b"
    # it stays paused: b does not start, though the scheduler has heard that a finished and
    # has been through two more heartbeats since
    cluster.wait_ticks("scheduler", 2, after=tasks["a"]["finished"])
    assert cluster.tasks(gid)["b"]["state"] == "waiting"
    cluster.cli("graph", "play", str(gid))
    assert cluster.wait_graph(gid)["state"] == "finished"


def test_kill_a_graph_whose_scheduler_is_dead(cluster: Cluster, tmp_path: Path) -> None:
    sched = cluster.scheduler()
    cluster.worker(slots=2)
    log = tmp_path / "ran.log"
    gid = cluster.submit({"name": "long", "tasks": {
        "long": {"run": "tests.tasks:sleep", "args": {"seconds": 30}},
        "never": {"run": "tests.tasks:record", "args": {"log": str(log)}, "after": ["long"]}}})
    wait_for(lambda: cluster.tasks(gid)["long"]["state"] == "running", 20, what="running")
    cluster.kill9(sched)
    out = cluster.cli("graph", "kill", str(gid))
    assert "killed" in out.stdout
    shown = cluster.show(gid)
    assert shown["state"] == "killed"
    assert {t["state"] for t in shown["tasks"]} == {"killed"}
    # the running task is cancelled on its worker (its slot is free again quickly)
    from wgops.store.models import Worker

    wait_for(lambda: cluster.db(lambda: Worker.get().busy) == 0, 10, what="slot freed")
    # a late result changes nothing
    assert cluster.show(gid)["tasks"][0]["state"] == "killed"
    assert not log.exists()


def test_reassign_between_live_schedulers(cluster: Cluster, tmp_path: Path) -> None:
    """t1 runs until the test opens its gate: the graph is surely mid-run when reassigned."""
    gate = tmp_path / "open"
    s1 = cluster.scheduler()
    sid1 = cluster.wait_daemon("scheduler", s1.pid)
    cluster.worker(slots=1)
    tasks = {f"t{i}": {"run": "tests.tasks:noop", **({"after": [f"t{i - 1}"]} if i else {})}
             for i in range(10)}
    tasks["t1"] = {"run": "tests.tasks:gate", "args": {"path": str(gate)}, "after": ["t0"]}
    gid = cluster.submit({"name": "chain", "tasks": tasks})
    wait_for(lambda: cluster.owner(gid) == sid1, 20, what="claimed by s1")
    s2 = cluster.scheduler()
    sid2 = cluster.wait_daemon("scheduler", s2.pid)
    wait_for(lambda: cluster.tasks(gid)["t1"]["state"] == "running", 20, what="t1 started")
    cluster.cli("graph", "reassign", str(gid), "--to", sid2)
    assert cluster.show(gid)["scheduler"] == sid2
    gate.touch()
    shown = cluster.wait_graph(gid)
    assert shown["state"] == "finished" and shown["scheduler"] == sid2
    assert all(t["attempts"] == 1 for t in shown["tasks"])
    from wgops.store.models import LogEntry

    kinds = cluster.db(lambda: [e.kind for e in LogEntry.select().where(LogEntry.graph == gid)])
    assert "graph.reassigned" in kinds
    bad = cluster.cli("graph", "reassign", str(gid), "--to", "nobody", check=False)
    assert bad.returncode == 2 and "finished" in bad.stderr


def test_kill9_scheduler_mid_run_is_adopted(cluster: Cluster, tmp_path: Path) -> None:
    """Each chain's second task runs until the test opens its gate: the graphs are surely
    mid-run when their scheduler is killed."""
    gate = tmp_path / "open"
    s1 = cluster.scheduler()
    cluster.wait_daemon("scheduler", s1.pid)
    cluster.worker(slots=3)
    ids = [cluster.submit({"name": f"g{n}", "tasks": {
        f"t{i}": ({"run": "tests.tasks:gate", "args": {"path": str(gate)}} if i == 1 else
                  {"run": "tests.tasks:sleep", "args": {"seconds": 0.1}})
        | ({"after": [f"t{i - 1}"]} if i else {}) for i in range(10)}})
        for n in range(3)]
    wait_for(lambda: all(cluster.owner(g) for g in ids), 20, what="claimed")
    s2 = cluster.scheduler()
    sid2 = cluster.wait_daemon("scheduler", s2.pid)
    wait_for(lambda: all(cluster.tasks(g)["t1"]["state"] == "running" for g in ids), 20,
             what="progress")
    assert all(cluster.state(g) == "running" for g in ids)
    cluster.kill9(s1)
    wait_for(lambda: all(cluster.owner(g) == sid2 for g in ids), 15, 0.1, "adoption")
    gate.touch()
    for g in ids:
        shown = cluster.wait_graph(g)
        assert shown["state"] == "finished", shown


def test_kill9_worker_mid_task_runs_again_elsewhere(cluster: Cluster, tmp_path: Path) -> None:
    cluster.scheduler()
    w1 = cluster.worker(slots=1)
    log, gate = tmp_path / "runs.log", tmp_path / "open"
    gid = cluster.submit({"name": "survive", "tasks": {
        "first": {"run": "tests.tasks:record", "args": {"log": str(log), "tag": "first"}},
        "slow": {"run": "tests.tasks:gate", "args": {"path": str(gate), "log": str(log),
                                                    "tag": "slow"}, "after": ["first"]}}})
    wait_for(lambda: cluster.tasks(gid)["slow"]["state"] == "running", 20, what="slow running")
    w2 = cluster.worker(slots=1)
    cluster.wait_daemon("worker", w2.pid)
    cluster.kill9(w1)
    gate.touch()
    shown = cluster.wait_graph(gid, timeout=60)
    tasks = {t["name"]: t for t in shown["tasks"]}
    assert shown["state"] == "finished"
    assert tasks["slow"]["attempts"] == 2
    w2_id = cluster.wait_daemon("worker", w2.pid)
    assert tasks["slow"]["worker"] == w2_id
    lines = log.read_text().splitlines()
    assert sum(1 for line in lines if line.startswith("first")) == 1, lines
    assert tasks["first"]["attempts"] == 1


async def _publish_raw(env: dict[str, str], queue: str, body: bytes) -> None:
    conn = await aio_pika.connect(env["WGOPS_BROKER_URL"])
    try:
        channel = await conn.channel()
        await channel.default_exchange.publish(aio_pika.Message(body), routing_key=queue)
    finally:
        await conn.close()


def test_a_listed_daemon_already_has_its_queues(cluster: Cluster) -> None:
    """A daemon is listed (its first heartbeat) only once its inbox and task queues exist:
    what a client sends it from then on waits for it instead of going unrouted (a message to
    a queue that does not exist yet is dropped by the broker). The rows are watched closely
    (every few milliseconds) so that a daemon listed before it declared is caught."""
    from tests.test_reliability import queue_depth
    from wgops.store.models import Scheduler, Worker

    ns = cluster.env["WGOPS_NAMESPACE"]
    for kind, start, model in (("scheduler", cluster.scheduler, Scheduler),
                               ("worker", lambda: cluster.worker(slots=1), Worker)):
        proc = start()

        def listed(model: type = model, pid: int = proc.pid) -> str | None:
            row = cluster.db(lambda: model.get_or_none(model.pid == pid))
            return row.id if row else None
        did = wait_for(listed, 30, 0.002, f"the {kind} to be listed")
        queues = [f"{ns}.scheduler.{did}"] if kind == "scheduler" else \
            [f"{ns}.worker.{did}", f"{ns}.tasks.default"]
        assert [q for q in queues if queue_depth(cluster.env, q) is None] == [], \
            f"{kind} {did} listed before its queues existed"


@pytest.mark.parametrize("body", [b"not json", b"[1,2]", b'{"type":"run","v":99}',
                                  b'{"type":"run","v":1,"task":"x"}', b'{"type":"nope","v":1}',
                                  b"x" * 5_000_001],
                         ids=["not-json", "not-object", "bad-version", "bad-type", "unknown",
                              "oversized"])
async def test_malformed_messages_are_dead_lettered(cluster: Cluster, body: bytes) -> None:
    s = cluster.scheduler()
    w = cluster.worker(slots=1)
    sid = cluster.wait_daemon("scheduler", s.pid)
    wid = cluster.wait_daemon("worker", w.pid)
    ns = cluster.env["WGOPS_NAMESPACE"]
    queues = [f"{ns}.graphs", f"{ns}.tasks.default", f"{ns}.scheduler.{sid}",
              f"{ns}.worker.{wid}"]
    for queue in queues:
        await _publish_raw(cluster.env, queue, body)
    from wgops.store.models import DeadLetter

    rows = wait_for(lambda: cluster.db(lambda: list(DeadLetter.select())) if cluster.db(
        lambda: DeadLetter.select().count()) >= len(queues) else None, 20, what="dead letters")
    assert {r.queue for r in rows} == set(queues)
    assert all(r.reason for r in rows)
    assert s.poll() is None and w.poll() is None
    # and they still work
    gid = cluster.submit({"name": "after", "tasks": {"a": {"run": "tests.tasks:noop"}}})
    assert cluster.wait_graph(gid)["state"] == "finished"


def test_python_tasks_use_several_processes(cluster: Cluster, tmp_path: Path) -> None:
    cluster.scheduler()
    cluster.worker(slots=2)
    log = tmp_path / "pids.log"
    gid = cluster.submit({"name": "procs", "tasks": {
        f"r{i}": {"run": "tests.tasks:sleep", "args": {"seconds": 0.4, "log": str(log),
                                                      "tag": str(i)}} for i in range(2)}})
    assert cluster.wait_graph(gid)["state"] == "finished"
    spans = [tuple(map(float, line.split()[1:])) for line in log.read_text().splitlines()]
    assert len(spans) == 2
    (s1, e1), (s2, e2) = spans
    assert s2 < e1 and s1 < e2, "the two sync tasks did not overlap"
    assert os.getpid()
