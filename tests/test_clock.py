"""Liveness by one clock (DESIGN §13, invariant 7): the database's time decides who is alive.

Two layers:

* in-process, on SQLite and PostgreSQL: with this process's ``time.time`` 90 s ahead or
  behind, the liveness rule and everything that asks it (heartbeats, adoption, the doctor's
  queries, pools, ``submit --scheduler``, the metrics, ``daemon status``) give the answers of
  the true clock: nothing in it reads the local clock;
* real daemons under libfaketime (Debian ``faketime``), a scheduler and a worker 90 s ahead or
  behind beside a normal pair, on PostgreSQL: the skewed scheduler steals nothing, loses
  nothing, and a dead daemon, skewed or not, is still seen dead. On SQLite this layer skips:
  SQLite has no clock of its own (its ``julianday('now')`` is the calling process's clock, so a
  per-process skew, which one host never has, moves the database's time with it); several
  hosts share only a PostgreSQL database.
"""

from __future__ import annotations

import glob
import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.cluster import Cluster, wait_for
from wgops.store import liveness
from wgops.store.counts import read_counts
from wgops.store.db import Store
from wgops.store.errors import Conflict
from wgops.store.migrations import migrate
from wgops.store.models import Graph, LogEntry, Scheduler, Worker

OFFSETS = (90.0, -90.0)
FAKETIME_LIB = next(iter(sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))), None)


def skew_local_clock(monkeypatch: pytest.MonkeyPatch, offset: float) -> None:
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + offset)


# -- the rule reads no local clock (both databases) -------------------------------------------


@pytest.mark.parametrize("offset", OFFSETS)
def test_heartbeats_and_the_rule_use_the_database_clock(
        store: Store, monkeypatch: pytest.MonkeyPatch, offset: float) -> None:
    true_now = time.time()
    Scheduler.create(id="old", host="h", pid=1, state="running", heartbeat=true_now - 30)
    Graph.create(name="g", state="running", scheduler="old", created=true_now)
    skew_local_clock(monkeypatch, offset)
    with store.write():
        liveness.heartbeat_scheduler("me", 2, 0)
        liveness.heartbeat_worker("w", 3, 2, ["default", "io"], [])
    db_time = liveness.database_time()
    assert abs(db_time - true_now) < 10
    for model, rid in ((Scheduler, "me"), (Worker, "w")):
        assert abs(model.get_by_id(rid).heartbeat - db_time) < 10
    stale = 5.0
    assert liveness.scheduler_alive("me", stale) and liveness.worker_alive("w", stale)
    assert not liveness.scheduler_alive("old", stale)
    assert liveness.dead_schedulers("me", stale) == ["old"]
    assert list(liveness.dead_owners(stale)) == ["old"]
    assert liveness.live_pools(stale)[1] == {"default", "io"}
    assert liveness.accepting_scheduler("me", stale).id == "me"
    with pytest.raises(Conflict, match="not alive"):
        liveness.accepting_scheduler("old", stale)
    counts = read_counts(stale)
    assert (counts.schedulers, counts.workers) == (1, 1)
    with store.write():
        liveness.release("me")
    assert abs(Scheduler.get_by_id("me").heartbeat - db_time) < 10


@pytest.mark.parametrize("offset", OFFSETS)
def test_daemon_status_judges_heartbeats_by_the_database_clock(
        db_url: str, wgops_env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
        offset: float) -> None:
    from wgops.daemon.status import collect_status
    from wgops.store.config import Settings

    monkeypatch.setenv("WGOPS_DB_URL", db_url)
    s = Store(db_url).connect()
    migrate(s)
    with s.write():
        liveness.heartbeat_scheduler("remote", 1, 0)
        Scheduler.update(host="elsewhere").where(Scheduler.id == "remote").execute()
    s.close()
    skew_local_clock(monkeypatch, offset)
    status = collect_status(Settings.load(), queues=False)
    [row] = status["schedulers"]
    assert row["id"] == "remote" and row["alive"] and abs(row["heartbeat_age"]) < 10


# -- real daemons with a skewed clock (libfaketime) --------------------------------------------


def skewed(offset: float) -> dict[str, str]:
    assert FAKETIME_LIB
    # not FAKETIME_DONT_FAKE_MONOTONIC=1: with it, libfaketime 0.9.10 makes every
    # time.sleep fail with EINVAL; a faked monotonic clock is still steady, which is all
    # asyncio needs
    return {"LD_PRELOAD": FAKETIME_LIB, "FAKETIME": f"{offset:+.0f}s"}


@pytest.fixture
def skew_cluster(db_url: str, cluster: Cluster) -> Cluster:
    if not FAKETIME_LIB:
        pytest.skip("libfaketime is not installed (Debian faketime; scripts/ensure-faketime.sh)")
    if db_url.startswith("sqlite"):
        pytest.skip("SQLite's clock is the calling process's: a per-process skew moves it too "
                    "(several hosts share only PostgreSQL)")
    cluster.env["WGOPS_DB_URL"] = db_url
    cluster.cli("init")
    return cluster


def gated(name: str, gate: Path) -> dict[str, Any]:
    return {"name": name, "tasks": {
        "hold": {"run": "tests.tasks:gate", "args": {"path": str(gate)}},
        "after": {"run": "tests.tasks:add", "args": {"a": 1, "b": 2}, "after": ["hold"]}}}


def adopted(cluster: Cluster) -> list[tuple[int | None, str | None]]:
    return cluster.db(lambda: [(e.graph_id, e.actor) for e in LogEntry.select().where(
        LogEntry.kind == "graph.adopted")])


def status(cluster: Cluster, env: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    saved = cluster.env
    cluster.env = {**saved, **(env or {})}
    try:
        doc = json.loads(cluster.cli("daemon", "status", "--json", "--all").stdout)
    finally:
        cluster.env = saved
    return {d["id"]: d for d in doc["schedulers"] + doc["workers"]}


def doctor_findings(cluster: Cluster, env: dict[str, str] | None = None) -> list[str]:
    saved = cluster.env
    cluster.env = {**saved, **(env or {})}
    try:
        out = cluster.cli("doctor", "--json", "--min-age", "60", check=False)
    finally:
        cluster.env = saved
    return [f["check"] for f in json.loads(out.stdout)["findings"]]


@pytest.mark.parametrize("offset", OFFSETS)
def test_a_skewed_scheduler_and_worker_steal_nothing_lose_nothing_and_see_the_dead(
        skew_cluster: Cluster, tmp_path: Path, offset: float) -> None:
    cluster, gate, skew = skew_cluster, tmp_path / "open", skewed(offset)
    normal = cluster.scheduler()
    sid = cluster.wait_daemon("scheduler", normal.pid)
    odd = cluster.scheduler(extra_env=skew)
    odd_id = cluster.wait_daemon("scheduler", odd.pid)
    cluster.worker(slots=2)
    odd_worker = cluster.worker(slots=2, extra_env=skew)
    wid = cluster.wait_daemon("worker", odd_worker.pid)
    mine = cluster.submit(gated("normal's", gate), "--scheduler", sid)
    theirs = cluster.submit(gated("skewed's", gate), "--scheduler", odd_id)
    wait_for(lambda: all(cluster.tasks(g)["hold"]["state"] == "running"
                         for g in (mine, theirs)), 30, 0.1, "both gates running")

    # several times stale_after of heartbeats and adoption checks on both sides
    cluster.wait_ticks("scheduler", 12, time.time(), timeout=60)
    assert (cluster.owner(mine), cluster.owner(theirs)) == (sid, odd_id)
    assert adopted(cluster) == []
    for env in (None, skew):            # the status and the doctor, on either clock
        rows = status(cluster, env)
        assert all(rows[d]["alive"] for d in (sid, odd_id, wid)), rows
        assert abs(rows[odd_id]["heartbeat_age"]) < 10, rows
        assert doctor_findings(cluster, env) == []

    # a dead normal scheduler is seen dead by the skewed one, which adopts its graph
    cluster.kill9(normal)
    wait_for(lambda: cluster.owner(mine) == odd_id, 30, 0.1, "the skewed scheduler adopts")
    assert not status(cluster, skew).get(sid, {}).get("alive")
    # a dead skewed scheduler is seen dead by a normal one
    second = cluster.scheduler()
    sid2 = cluster.wait_daemon("scheduler", second.pid)
    cluster.kill9(odd)
    wait_for(lambda: cluster.owner(mine) == cluster.owner(theirs) == sid2, 30, 0.1,
             "the normal scheduler adopts both")
    assert not status(cluster).get(odd_id, {}).get("alive")
    gate.touch()
    for g in (mine, theirs):
        shown = cluster.wait_graph(g)
        assert shown["state"] == "finished", shown
        assert all(t["attempts"] == 1 for t in shown["tasks"]), shown


@pytest.mark.parametrize("offset", OFFSETS)
def test_a_lease_is_timed_by_the_database_clock(
        store: Store, monkeypatch: pytest.MonkeyPatch, offset: float) -> None:
    from wgops.store import leases

    with store.write():
        assert leases.take("retention", "normal", 30)
    skew_local_clock(monkeypatch, offset)
    with store.write():
        assert not leases.take("retention", "skewed", 30)    # not lapsed, whatever clock
    assert leases.holder("retention") == "normal"
