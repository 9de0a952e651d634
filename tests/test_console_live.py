"""The console driving a real installation: real broker, real daemons, real database.

Each action is pressed in the console and checked through the command line
(``wgops graph show --json``, ``wgops daemon status --json``), never through the console.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.cluster import Cluster
from wgops.console.app import WgopsApp
from wgops.console.data.backend import LiveBackend
from wgops.console.screens.dialogs import ConfirmScreen, PickScreen
from wgops.console.screens.main import MainScreen
from wgops.console.widgets.graphs import GraphsTable
from wgops.store.config import Settings
from wgops.store.db import Store

SIZE = (160, 46)


async def until(pilot: Any, condition: Callable[[], Any], what: str, timeout: float = 20) -> Any:
    """Wait (letting the app run) until ``condition()`` is true."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await pilot.pause(0.1)


async def until_cli(pilot: Any, cluster: Cluster, args: tuple[str, ...],
                    check: Callable[[Any], bool], what: str, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        out = await asyncio.to_thread(cluster.cli, *args)
        doc = json.loads(out.stdout)
        if check(doc):
            return doc
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}: {doc}")
        await pilot.pause(0.2)


def live_app(cluster: Cluster, readonly: bool = False) -> WgopsApp:
    settings = Settings.load(env=cluster.env)
    return WgopsApp(LiveBackend(settings, Store(settings.db_url)), readonly=readonly)


async def select(pilot: Any, gid: int) -> None:
    table = pilot.app.screen.query_one(GraphsTable)
    await until(pilot, lambda: str(gid) in {k.value for k in table.rows}, f"graph {gid} shown")
    table.move_cursor(row=table.get_row_index(str(gid)))
    await pilot.pause()


def chain(n: int, seconds: float) -> dict[str, Any]:
    return {"name": "chain", "tasks": {
        f"t{i}": {"run": "tests.tasks:sleep", "args": {"seconds": seconds},
                  **({"after": [f"t{i - 1}"]} if i else {})} for i in range(n)}}


async def test_pause_play_reassign_kill_from_the_console(cluster: Cluster,
                                                       tmp_path: Path) -> None:
    s1 = cluster.scheduler()
    sid1 = cluster.wait_daemon("scheduler", s1.pid)
    cluster.worker(slots=1)
    doc = chain(5, 0.1)        # its first task runs until it is killed: never ends by itself
    doc["tasks"]["t0"] = {"run": "tests.tasks:gate", "args": {"path": str(tmp_path / "never")}}
    gid = cluster.submit(doc)
    s2 = cluster.scheduler()
    sid2 = cluster.wait_daemon("scheduler", s2.pid)
    show = ("graph", "show", str(gid), "--json")
    app = live_app(cluster)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.status is not None and app.status.broker.ok,
                    "the broker indicator")
        await select(pilot, gid)
        owner = (await until_cli(pilot, cluster, show, lambda d: d["scheduler"], "claimed"))[
            "scheduler"]
        assert owner in (sid1, sid2)
        other = sid2 if owner == sid1 else sid1

        await pilot.press("p")
        await until_cli(pilot, cluster, show, lambda d: d["state"] == "paused", "paused")
        await pilot.press("P")
        await until_cli(pilot, cluster, show, lambda d: d["state"] == "running", "running")

        await until(pilot, lambda: sum(1 for d in app.status.daemons
                                       if d.kind == "scheduler" and d.state == "running") == 2,
                    "both schedulers in the daemons panel")
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, PickScreen), "the scheduler list")
        assert [v for v, _ in app.screen.options] == [other]
        await pilot.press("enter")
        await until_cli(pilot, cluster, show, lambda d: d["scheduler"] == other, "reassigned")

        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        await pilot.press("y")
        done = await until_cli(pilot, cluster, show, lambda d: d["state"] == "killed", "killed")
        assert any(t["state"] == "killed" for t in done["tasks"])
        # the table catches up from the events / the database
        table = app.screen.query_one(GraphsTable)
        await until(pilot, lambda: (table.shown_row(gid) or table).state == "killed",
                    "the table to show killed")
        assert isinstance(app.screen, MainScreen)


async def test_readonly_console_changes_nothing(cluster: Cluster) -> None:
    cluster.scheduler()
    gid = cluster.submit(chain(3, 5))
    app = live_app(cluster, readonly=True)
    async with app.run_test(size=SIZE) as pilot:
        await select(pilot, gid)
        await pilot.press("p", "x", "y", "plus")
        await pilot.pause(0.5)
        assert isinstance(app.screen, MainScreen)
    assert cluster.show(gid)["state"] in ("queued", "running")


@pytest.mark.slow
async def test_scale_workers_through_circus(cluster: Cluster) -> None:
    cluster.cli("daemon", "start", "--schedulers", "1", "--workers", "1", timeout=90)
    try:
        status = ("daemon", "status", "--json")
        app = live_app(cluster)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.status is not None and app.status.supervised,
                        "circus in the top bar", 30)
            await pilot.press("plus")
            await until_cli(pilot, cluster, status,
                            lambda d: sum(w["alive"] for w in d["workers"]) == 2,
                            "a second worker", 60)
            await pilot.press("minus")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "confirmation")
            await pilot.press("y")
            await until_cli(pilot, cluster, status,
                            lambda d: sum(w["alive"] for w in d["workers"]) == 1,
                            "back to one worker", 60)
    finally:
        cluster.cli("daemon", "stop", timeout=120, check=False)


async def test_kill_the_marked_graphs_with_one_confirmation(cluster: Cluster,
                                                           tmp_path: Path) -> None:
    cluster.scheduler()
    cluster.worker(slots=4)
    held = {"name": "held", "tasks": {"hold": {"run": "tests.tasks:gate",
                                               "args": {"path": str(tmp_path / "never")}}}}
    marked = [cluster.submit(held) for _ in range(2)]
    spared = cluster.submit(held)
    app = live_app(cluster)
    async with app.run_test(size=SIZE) as pilot:
        for gid in marked:
            await select(pilot, gid)
            await pilot.press("space")
        table = app.screen.query_one(GraphsTable)
        assert sorted(table.marked_ids()) == sorted(marked)
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        assert app.screen.question == "Kill 2 graphs?"
        await pilot.press("y")
        for gid in marked:
            await until_cli(pilot, cluster, ("graph", "show", str(gid), "--json"),
                            lambda doc: doc["state"] == "killed", f"graph {gid} killed")
    assert cluster.state(spared) in ("queued", "running")
    cluster.cli("graph", "kill", str(spared))


async def test_delete_the_marked_graphs_with_one_confirmation(cluster: Cluster) -> None:
    cluster.scheduler()
    cluster.worker(slots=2)
    doc = {"name": "done", "tasks": {"t": {"run": "tests.tasks:noop"}}}
    doomed = [cluster.submit(doc) for _ in range(2)]
    spared = cluster.submit(doc)
    for gid in (*doomed, spared):
        cluster.wait_graph(gid)
    app = live_app(cluster)
    async with app.run_test(size=SIZE) as pilot:
        for gid in doomed:
            await select(pilot, gid)
            await pilot.press("space")
        await pilot.press("X")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        assert app.screen.question == "Delete 2 graphs?"
        await pilot.press("y")
        for gid in doomed:
            await until_cli(pilot, cluster, ("graph", "list", "--all", "--json"),
                            lambda rows, gid=gid: gid not in {r["id"] for r in rows},
                            f"graph {gid} deleted")
    assert cluster.state(spared) == "finished"
