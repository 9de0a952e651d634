"""Two hosts on one PostgreSQL and one RabbitMQ, and a network that fails between them.

Each test runs two installations ("hosts", :mod:`tests.hosts`) in network namespaces of its
own. Host A owns a graph whose middle task is held running on A's worker; host B then starts,
and A is cut off — from everything, from the broker only, or from the database only — and
healed. What every cut must keep: the graph finishes, no finished task runs again, a task in
flight at the cut starts at most twice (once more where the broker redelivered it), the cut
daemons neither crash nor write past the fence, and they reconnect (after the heal, with B
stopped, A alone runs a new graph to the end).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster import wait_for
from tests.hosts import Host, Net, network, unavailable

REASON = unavailable()
pytestmark = [pytest.mark.skipif(REASON is not None, reason=REASON or ""), pytest.mark.slow]


@pytest.fixture
def net(pg_url: str, wgops_env: dict[str, str], tmp_path: Path) -> Iterator[Net]:
    with network(wgops_env, pg_url, tmp_path) as n:
        yield n


def _doc(log: Path, gate: Path) -> dict[str, Any]:
    return {"name": "across-a-cut", "tasks": {
        "a": {"run": "tests.tasks:record", "args": {"log": str(log), "tag": "a"}},
        "h": {"run": "tests.tasks:held", "args": {"path": str(gate), "log": str(log),
                                                   "tag": "h"}, "after": ["a"]},
        "b": {"run": "tests.tasks:record", "args": {"log": str(log), "tag": "b"},
              "after": ["h"]}},
        "outputs": {"h": "${h}"}}


def _count(log: Path, line: str) -> int:
    if not log.exists():
        return 0
    want = line.split()
    return sum(1 for ln in log.read_text().splitlines() if ln.split()[:len(want)] == want)


class Pair:
    """Host A with a graph held mid-run on its worker, and host B beside it."""

    def __init__(self, net: Net, tmp: Path):
        self.tmp = tmp
        self.a, self.b = net.host(), net.host()
        self.log, self.gate = tmp / "runs.log", tmp / "gate"
        for host in (self.a, self.b):
            host.cli("init")
        self.a_sched, self.a_sid = self._daemon(self.a, "scheduler")
        self.a_work, self.a_wid = self._daemon(self.a, "worker")
        self.graph = self.a.submit(_doc(self.log, self.gate))
        wait_for(lambda: _count(self.log, "start h") == 1, 60, 0.1, "h to run on host A")
        assert self.a.owner(self.graph) == self.a_sid
        self.b_sched, self.b_sid = self._daemon(self.b, "scheduler")
        self.b_work, self.b_wid = self._daemon(self.b, "worker")

    @staticmethod
    def _daemon(host: Host, kind: str) -> tuple[Any, str]:
        proc = host.scheduler(wait=False) if kind == "scheduler" else host.worker(2, wait=False)
        return proc, host.wait_daemon(kind, proc.pid, 60)

    def task(self, name: str) -> dict[str, Any]:
        return self.a.tasks(self.graph)[name]

    def heartbeat(self, kind: str, did: str) -> float:
        from wgops.store.models import Scheduler, Worker

        model = Scheduler if kind == "scheduler" else Worker
        return self.a.db(lambda: model.get_by_id(did).heartbeat)

    def after_heal(self) -> None:
        """What every cut keeps, checked once the graph finished and A is healed."""
        healed = time.time()
        for proc in (self.a_sched, self.a_work):
            assert proc.poll() is None, self.a.log(proc.pid)
        # reconnected to the database: both of A's daemons beat again
        wait_for(lambda: self.heartbeat("scheduler", self.a_sid) > healed
                 and self.heartbeat("worker", self.a_wid) > healed, 60, 0.2,
                 "host A's daemons to beat again")
        show = self.a.show(self.graph)
        assert show["state"] == "finished", show
        assert show["outputs"] == {"h": "h"}
        assert _count(self.log, "a") == 1 and _count(self.log, "b") == 1   # finished: once
        assert 1 <= _count(self.log, "start h") <= 2
        # and to the broker: with B stopped, A alone runs a new graph to the end
        self.b.stop(self.b_work)
        self.b.stop(self.b_sched)
        after = self.tmp / "after.log"
        gid = self.a.submit({"name": "after", "tasks": {
            "x": {"run": "tests.tasks:record", "args": {"log": str(after), "tag": "x"}},
            "y": {"run": "tests.tasks:record", "args": {"log": str(after), "tag": "y"},
                  "after": ["x"]}}})
        assert self.a.wait_graph(gid, 60)["state"] == "finished"
        assert self.a.owner(gid) is None or self.a.owner(gid) == self.a_sid
        assert _count(after, "x") == 1 and _count(after, "y") == 1
        for proc in (self.a_sched, self.a_work):
            assert proc.poll() is None, self.a.log(proc.pid)


def test_host_cut_from_everything_loses_its_graph_and_is_fenced_on_return(
        net: Net, tmp_path: Path) -> None:
    p = Pair(net, tmp_path)
    p.a.cut("all")
    wait_for(lambda: p.b.owner(p.graph) == p.b_sid, 60, 0.2, "host B to adopt the graph")
    # the broker requeued h when A's connection went; B's worker took it over (A's worker
    # is silent in the database too): started once more, and only once
    wait_for(lambda: _count(p.log, "start h") == 2, 60, 0.1, "h to be redelivered to B")
    p.gate.touch()
    assert p.b.wait_graph(p.graph, 60)["state"] == "finished"
    task = p.task("h")
    assert (task["attempts"], task["worker"]) == (2, p.b_wid)
    p.a.heal()
    # A's scheduler still held the graph: the fence check drops it and says so
    wait_for(lambda: "is no longer ours (epoch fence" in p.a.log(p.a_sched.pid), 60, 0.2,
             "host A's scheduler to log the fence")
    # A's worker ended attempt 1 during the cut; its result is refused, not written
    wait_for(lambda: "was superseded" in p.a.log(p.a_work.pid), 60, 0.2,
             "host A's worker to have its stale result refused")
    task = p.task("h")
    assert (task["attempts"], task["worker"]) == (2, p.b_wid)
    assert p.a.owner(p.graph) == p.b_sid
    p.after_heal()


def test_host_cut_from_the_broker_only_keeps_its_graph(net: Net, tmp_path: Path) -> None:
    p = Pair(net, tmp_path)
    cut = time.time()
    p.a.cut("broker")
    stale = float(p.a.env["WGOPS_STALE_AFTER"])
    # A still beats in the database: it is alive, nobody adopts its graph
    wait_for(lambda: p.heartbeat("scheduler", p.a_sid) > cut + 2 * stale, 60, 0.2,
             "host A's scheduler to beat through the cut")
    assert p.a.owner(p.graph) == p.a_sid
    # h ends on A during the cut: its result is committed (the database is reachable)
    p.gate.touch()
    wait_for(lambda: p.task("h")["state"] == "finished", 60, 0.2, "h to be committed")
    assert p.task("b")["state"] == "waiting"     # nobody can tell A's scheduler yet
    p.a.heal()
    assert p.a.wait_graph(p.graph, 60)["state"] == "finished"
    assert p.task("h")["worker"] == p.a_wid
    assert p.a.owner(p.graph) is None or p.a.owner(p.graph) == p.a_sid
    p.after_heal()


def test_host_cut_from_the_database_only_loses_its_graph_and_is_fenced(
        net: Net, tmp_path: Path) -> None:
    p = Pair(net, tmp_path)
    p.a.cut("db")
    wait_for(lambda: p.b.owner(p.graph) == p.b_sid, 60, 0.2, "host B to adopt the graph")
    # the broker did not see A's worker go: h stays with it, and ends there during the cut
    p.gate.touch()
    wait_for(lambda: _count(p.log, "end h") == 1, 60, 0.1, "h to end on host A")
    assert p.task("h")["state"] == "running"      # its result waits for the database
    p.a.heal()
    assert p.b.wait_graph(p.graph, 60)["state"] == "finished"
    wait_for(lambda: "is no longer ours (epoch fence" in p.a.log(p.a_sched.pid), 60, 0.2,
             "host A's scheduler to log the fence")
    task = p.task("h")
    assert (task["attempts"], task["worker"]) == (1, p.a_wid)
    assert p.a.owner(p.graph) == p.b_sid
    assert _count(p.log, "start h") == 1
    p.after_heal()
