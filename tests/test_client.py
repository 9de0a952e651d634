"""The API clients against the real system: a real broker, real SQLite and PostgreSQL, real
scheduler and worker processes. Every method, blocking and async; bad input gives the
documented exception and stores nothing; two installations in one process; the Python twins
of the examples run to the end."""

from __future__ import annotations

import asyncio
import importlib
import json
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

import wgops
from tests import tasks
from tests.cluster import Cluster
from tests.conftest import ROOT
from tests.test_graph_builder import TWINS, yaml_of
from wgops.store.models import Graph, LogEntry, Scheduler

LIST_KEYS = {"id", "name", "state", "priority", "scheduler", "tasks_total", "tasks_done"}
SHOW_KEYS = {"id", "name", "state", "priority", "scheduler", "parent", "outputs", "tasks"}
ACTION_KEYS = {"id", "name", "state", "priority", "scheduler"}


class Api:
    """One scenario for both clients: a call through the blocking client runs on a thread
    (as a program's would), through the async one on this event loop."""

    def __init__(self, client: wgops.Client | wgops.AsyncClient):
        self.client = client
        self.blocking = isinstance(client, wgops.Client)

    async def __call__(self, method: str, *args: Any, **kwargs: Any) -> Any:
        fn = getattr(self.client, method)
        if self.blocking:
            return await asyncio.to_thread(fn, *args, **kwargs)
        return await fn(*args, **kwargs)


async def until(condition: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)
    return value


def diamond() -> wgops.Graph:
    g = wgops.Graph("diamond", inputs={"x": 3})
    a = g.task("a", tasks.double, {"x": g.inputs["x"]})
    b = g.task("b", tasks.add, {"a": a["value"], "b": 1})
    return g.outputs(total=b, half=a["half"])


def graphs(cluster: Cluster) -> int:
    return cluster.db(lambda: Graph.select().count())


@pytest.fixture
def system(db_url: str, cluster: Cluster, monkeypatch: pytest.MonkeyPatch) \
        -> tuple[Cluster, str, str]:
    """An installation on ``db_url`` with two schedulers and a worker; this process's
    environment names it, so ``wgops.Client()`` finds it as the CLI would."""
    cluster.env["WGOPS_DB_URL"] = db_url
    monkeypatch.setenv("WGOPS_DB_URL", db_url)
    first, second = cluster.scheduler(wait=False), cluster.scheduler(wait=False)
    s1 = cluster.wait_daemon("scheduler", first.pid)
    s2 = cluster.wait_daemon("scheduler", second.pid)
    cluster.worker(slots=2)
    return cluster, s1, s2


async def scenario(api: Api, cluster: Cluster, s1: str, s2: str, tmp: Path) -> None:
    tag = "sync" if api.blocking else "async"
    # submit a Graph (inputs, priority), wait for it, show it, list it
    g = diamond()
    submitted = await api("submit", g, inputs={"x": 4}, priority=5)
    assert set(submitted) == {"id", "name", "state"} and submitted["state"] == "queued"
    done = await api("wait", submitted["id"], timeout=60)
    assert done["state"] == "finished" and done["outputs"] == {"total": 9, "half": 2.0}
    assert SHOW_KEYS <= set(done) and (done["priority"], done["inputs"]) == (5, {"x": 4})
    assert await api("show", submitted["id"]) == done
    rows = {r["id"]: r for r in await api("list")}
    assert set(rows[submitted["id"]]) == LIST_KEYS
    assert rows[submitted["id"]]["tasks_done"] == rows[submitted["id"]]["tasks_total"] == 2
    assert {r["state"] for r in await api("list", "finished")} == {"finished"}
    assert len(await api("list", limit=1)) == 1
    assert await api("validate", g) == {"name": "diamond", "valid": True, "tasks": 2}

    # a path and a dict, the dict handed to one named scheduler (it claims it)
    path = tmp / f"{tag}.yaml"
    path.write_text(yaml.safe_dump(g.document()))
    by_path = await api("submit", path)
    named = await api("submit", g.document(), scheduler=s2)
    for gid in (by_path["id"], named["id"]):
        assert (await api("wait", gid, timeout=60))["state"] == "finished"
    claimed = cluster.db(lambda: LogEntry.get(LogEntry.graph == named["id"],
                                              LogEntry.kind == "graph.claimed").actor)
    assert claimed == s2

    # pause, play, priority, reassign and kill a graph while its first task runs
    slow = wgops.Graph("slow")
    first = slow.task("first", tasks.sleep, {"seconds": 30})
    slow.task("then", tasks.noop, after=first)
    gid = (await api("submit", slow))["id"]
    await until(lambda: cluster.tasks(gid)["first"]["state"] == "running", "the slow task")
    [paused] = await api("pause", gid)
    assert set(paused) == ACTION_KEYS and paused["state"] == "paused"
    [played] = await api("play", gid)
    assert played["state"] == "running"
    assert (await api("set_priority", gid, 7))["priority"] == 7
    owner = (await api("show", gid))["scheduler"]
    other = s1 if owner == s2 else s2
    assert (await api("reassign", gid, other))["scheduler"] == other
    [killed] = await api("kill", gid)
    assert killed["state"] == "killed"
    assert {t["state"] for t in (await api("show", gid))["tasks"]} == {"killed"}

    # retry a graph that failed once
    flaky = wgops.Graph("flaky")
    flaky.task("f", tasks.flaky, {"marker": str(tmp / f"{tag}-flaky"), "fail_times": 1})
    fid = (await api("submit", flaky))["id"]
    assert (await api("wait", fid, timeout=60))["state"] == "failed"
    [again] = await api("retry", fid)
    assert again["state"] == "queued"
    assert (await api("wait", fid, timeout=60))["tasks"][0]["result"] == "ok after 2"

    # pools
    assert await api("set_pool", f"{tag}-pool", 2) == {"name": f"{tag}-pool", "max_running": 2}
    assert {"name": f"{tag}-pool", "max_running": 2, "running": 0, "queued": 0} in \
        await api("pools")

    # a wait that times out (no worker serves the pool): a TimeoutError, the graph goes on
    stuck = wgops.Graph("stuck")
    stuck.task("t", tasks.noop, pool="nowhere")
    sid = (await api("submit", stuck))["id"]
    with pytest.raises(TimeoutError) as timeout:
        await api("wait", sid, timeout=0.5)
    assert isinstance(timeout.value, wgops.WaitTimeout) and timeout.value.state in (
        "queued", "running")
    await api("kill", sid)

    # bad input: the documented exception, and nothing changes
    before = graphs(cluster)
    cyclic = {"name": "cyc", "tasks": {"a": {"run": "tests.tasks:add", "args": {"a": "${b}"}},
                                       "b": {"run": "tests.tasks:add", "args": {"a": "${a}"}}}}
    with pytest.raises(wgops.InvalidDocument, match="cycle between tasks: a -> b -> a"):
        await api("submit", cyclic)
    with pytest.raises(wgops.InvalidDocument, match="a function is not a JSON value"):
        await api("submit", {"name": "l", "tasks": {"a": {"run": lambda: 1}}})
    with pytest.raises(wgops.InvalidDocument, match="no such file"):
        await api("submit", tmp / "gone.yaml")
    with pytest.raises(wgops.InvalidDocument, match="priority"):
        await api("submit", g, priority=12)
    with pytest.raises(wgops.NotFound, match="no scheduler 'nobody'"):
        await api("submit", g, scheduler="nobody")
    ghost = f"ghost-{tag}"
    cluster.db(lambda: Scheduler.create(id=ghost, host="elsewhere", pid=1, state="running",
                                        started=0, heartbeat=time.time() - 3600))
    with pytest.raises(wgops.Conflict, match=f"scheduler {ghost} is not alive"):
        await api("submit", g, scheduler=ghost)
    for method, args in [("show", (99999,)), ("wait", (99999,)), ("pause", (99999,)),
                         ("retry", (99999,)), ("set_priority", (99999, 3))]:
        with pytest.raises(wgops.NotFound, match="no graph 99999"):
            await api(method, *args)
    with pytest.raises(wgops.Conflict, match="already finished"):
        await api("kill", submitted["id"])
    with pytest.raises(wgops.Conflict, match="only a live graph"):
        await api("reassign", submitted["id"], s1)
    assert graphs(cluster) == before


async def test_every_method_of_both_clients(system: tuple[Cluster, str, str],
                                            tmp_path: Path) -> None:
    cluster, s1, s2 = system
    with wgops.Client() as client:
        await scenario(Api(client), cluster, s1, s2, tmp_path)
    async with wgops.AsyncClient() as aclient:
        await scenario(Api(aclient), cluster, s1, s2, tmp_path)
    # the CLI goes the same way, --scheduler included
    path = cluster.write_doc(diamond().document())
    out = cluster.cli("graph", "submit", path, "--scheduler", s1, "--wait", "--json")
    assert json.loads(out.stdout)["outputs"] == {"total": 7, "half": 1.5}
    before = graphs(cluster)
    refused = cluster.cli("graph", "submit", path, "--scheduler", "nobody", check=False)
    assert refused.returncode == 2 and "no scheduler 'nobody'" in refused.stderr
    assert "Traceback" not in refused.stderr and graphs(cluster) == before


def test_unreachable_broker_or_database_is_one_clear_error(wgops_env: dict[str, str]) -> None:
    graph = diamond()
    with wgops.Client(broker_url="amqp://guest:secretpw@127.0.0.1:1/") as client:
        with pytest.raises(wgops.Unreachable) as info:
            client.submit(graph)
        assert "secretpw" not in str(info.value) and "guest:***@127.0.0.1:1" in str(info.value)
        assert client.list() == []                # the database alone answers: nothing stored
        with pytest.raises(wgops.Unreachable):
            client.kill(1)

    async def database_gone() -> None:
        async with wgops.AsyncClient(db_url="postgresql://pg:dbsecret@127.0.0.1:1/x") as client:
            for call in (client.list(), client.show(1), client.submit(graph)):
                with pytest.raises(wgops.Unreachable) as info:
                    await call
                assert "dbsecret" not in str(info.value) and "pg:***@127.0.0.1:1" in \
                    str(info.value)
    asyncio.run(database_gone())
    with pytest.raises(wgops.ConfigError, match="WGOPS_BROKER_URL"):
        wgops.Client(broker_url="http://nope")


def test_each_thread_works_on_its_own_store(tmp_path: Path, pg_url: str) -> None:
    """Two databases of different dialects, used at once from several threads: each thread
    reads its own rows and sees its own capabilities (the per-thread proxy)."""
    from wgops.store.db import Store, capabilities
    from wgops.store.migrations import migrate

    stores = {"sqlite": Store.of(f"sqlite:///{tmp_path / 'one.db'}"), "postgresql":
              Store.of(pg_url)}
    for name, store in stores.items():
        with store.bound():
            store.connect()
            migrate(store)
            Graph.create(name=name)
            store.close()
    barrier = threading.Barrier(6)
    seen: list[tuple[str, str, list[str]]] = []

    def work(name: str) -> None:
        store = stores[name].connect()
        barrier.wait(10)                          # all six threads query at once
        try:
            for _ in range(20):
                seen.append((name, capabilities().name,
                             [g.name for g in Graph.select(Graph.name)]))
        finally:
            store.close()

    threads = [threading.Thread(target=work, args=(name,)) for name in list(stores) * 3]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(seen) == 120
    assert all(caps == name and rows == [name] for name, caps, rows in seen)


def test_two_installations_in_one_process(tmp_path: Path, pg_url: str,
                                          wgops_env: dict[str, str]) -> None:
    from tests.broker_cleanup import USED

    other_ns = "t" + uuid.uuid4().hex[:10]
    USED.add(other_ns)
    homes = {"a": Path(wgops_env["WGOPS_HOME"]), "b": tmp_path / "home-b"}
    envs = {"a": wgops_env, "b": {**wgops_env, "WGOPS_HOME": str(homes["b"]),
                                  "WGOPS_NAMESPACE": other_ns, "WGOPS_DB_URL": pg_url}}
    clusters = {k: Cluster(env, tmp_path / f"logs-{k}") for k, env in envs.items()}
    try:
        for c in clusters.values():
            (c.tmp).mkdir()
            c.cli("init")
            c.scheduler()
            c.worker(slots=2)
        schedulers = {k: set(c.db(lambda: [s.id for s in Scheduler.select()]))
                      for k, c in clusters.items()}
        a = wgops.Client(home=str(homes["a"]))
        b = wgops.Client(home=str(homes["b"]), namespace=other_ns, db_url=pg_url)
        with a, b:
            results: dict[str, dict[str, Any]] = {}

            def run(key: str, client: wgops.Client, x: int) -> None:
                gid = client.submit(diamond(), inputs={"x": x})["id"]
                results[key] = client.wait(gid, timeout=60)

            threads = [threading.Thread(target=run, args=("a", a, 1)),
                       threading.Thread(target=run, args=("b", b, 10))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(90)
            assert results["a"]["outputs"] == {"total": 3, "half": 0.5}
            assert results["b"]["outputs"] == {"total": 21, "half": 5.0}
            for key in "ab":
                assert results[key]["scheduler"] in schedulers[key]
            b.submit(diamond())
            assert [len(a.list()), len(b.list())] == [1, 2]

        async def interleaved() -> None:
            async with wgops.AsyncClient(home=str(homes["a"])) as x, \
                    wgops.AsyncClient(home=str(homes["b"]), namespace=other_ns,
                                      db_url=pg_url) as y:
                counts = await asyncio.gather(*(c.list() for _ in range(10) for c in (x, y)))
                assert [len(rows) for rows in counts] == [1, 2] * 10
                gid = (await y.submit(diamond(), inputs={"x": 2}))["id"]
                done, shown = await asyncio.gather(y.wait(gid, timeout=60), x.show(1))
                assert done["outputs"]["total"] == 5 and shown["inputs"] == {"x": 1}
        asyncio.run(interleaved())
    finally:
        for c in clusters.values():
            c.close()


def test_the_python_twins_run_end_to_end(cluster: Cluster,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    from wgops.examples import from_python

    cluster.scheduler()
    cluster.worker(slots=4)
    with wgops.Client() as client:
        ids = {name: client.submit(importlib.import_module(f"wgops.examples.{name}").graph())
               ["id"] for name in TWINS}
        for name, gid in ids.items():
            done = client.wait(gid, timeout=120)
            assert done["state"] == "finished", (name, done["error"])
            assert set(done["outputs"]) == set(yaml_of(TWINS[name])["outputs"])
    assert from_python.main(["Si", "Ge"]) == 0
    printed = capsys.readouterr().out
    assert "finished" in printed and "Ge" in printed and "gap" in printed
    assert (ROOT / "examples" / "from_python.py").exists()
