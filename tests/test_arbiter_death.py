"""An arbiter that dies takes its daemons along (DESIGN §13, invariant 8's first step).

Real circus: the arbiter is SIGKILLed by its pid. Its daemons notice (their parent is gone)
and stop gracefully: the scheduler hands its graphs back, the worker lets its unfinished task
be redelivered; the next arbiter's daemons finish the graph. A daemon that does not notice
(``WGOPS_WATCH_PARENT=0``) is an orphan: ``daemon status`` says so, ``daemon start`` stops it
before starting a new set, and ``daemon stop`` stops it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.cluster import wait_for
from tests.test_daemon_mode import Installation, alive

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def installation(wgops_env: dict[str, str]) -> Iterator[Installation]:
    inst = Installation({**wgops_env, "WGOPS_GRACE": "3"})
    inst.run("init", check=True)
    try:
        yield inst
    finally:
        inst.teardown()


def daemons(inst: Installation) -> dict[int, dict[str, Any]]:
    """Live daemons by pid, with the status's per-daemon details."""
    data = inst.status(full=True)
    return {d["pid"]: d for d in data["schedulers"] + data["workers"] if d["alive"]}


def kill_arbiter(inst: Installation) -> list[psutil.Process]:
    """SIGKILL the arbiter alone; return the daemons it ran."""
    pid = inst.arbiter_pid()
    assert pid is not None
    arbiter = psutil.Process(pid)
    below = arbiter.children(recursive=True)
    inst.seen.update(below)
    ran = [p for p in below if p.cmdline()[-4:-2] == ["daemon", "run"]
           or "run" in p.cmdline() and "daemon" in p.cmdline()]
    arbiter.kill()
    arbiter.wait(10)
    return ran


def graph(inst: Installation, gid: int) -> dict[str, Any]:
    return json.loads(inst.run("graph", "show", str(gid), "--json", check=True).stdout)


def submit_gated(inst: Installation, tmp_path: Path, gate: Path) -> int:
    doc = tmp_path / "gated.json"
    doc.write_text(json.dumps({"name": "held", "tasks": {
        "hold": {"run": "tests.tasks:gate", "args": {"path": str(gate)}},
        "then": {"run": "tests.tasks:add", "args": {"a": 1, "b": 2}, "after": ["hold"]}}}))
    return int(json.loads(inst.run("graph", "submit", str(doc), "--json",
                                   check=True).stdout)["id"])


def events(inst: Installation, gid: int) -> list[str]:
    from wgops.daemon.probes import db_session
    from wgops.store.config import Settings
    from wgops.store.models import LogEntry

    with db_session(Settings.load(env=inst.env)):
        return [e.kind for e in LogEntry.select().where(LogEntry.graph == gid)]


def test_killed_arbiter_takes_its_daemons_along_and_the_graph_finishes_later(
        installation: Installation, tmp_path: Path) -> None:
    gate = tmp_path / "open"
    installation.start("--schedulers", "1", "--workers", "1", "--slots", "2")
    gid = submit_gated(installation, tmp_path, gate)
    wait_for(lambda: graph(installation, gid)["tasks"][0]["state"] == "running", 60, 0.2,
             "the gate task running")
    old = kill_arbiter(installation)
    assert len(old) == 2
    wait_for(lambda: not any(alive(p) for p in old), 60, 0.1,
             "the daemons to stop after their arbiter")
    wait_for(lambda: not any(alive(p) for p in installation.seen), 30, 0.1,
             "every process of the dead arbiter (its plugin too) to exit")
    assert graph(installation, gid)["scheduler"] is None       # handed back, not abandoned
    assert "graph.released" in events(installation, gid)
    assert daemons(installation) == {}

    installation.start("--schedulers", "1", "--workers", "1", "--slots", "2")
    gate.touch()
    wait_for(lambda: graph(installation, gid)["state"] == "finished", 90, 0.2,
             "the graph to finish under the new arbiter")


def test_orphans_are_reported_and_stopped_by_start_and_by_stop(
        installation: Installation) -> None:
    installation.env["WGOPS_WATCH_PARENT"] = "0"      # daemons that do not notice
    installation.start("--schedulers", "1", "--workers", "1")
    first = kill_arbiter(installation)
    assert len(first) == 2 and all(alive(p) for p in first)
    orphans = daemons(installation)
    assert {p.pid for p in first} <= set(orphans)
    assert all(orphans[p.pid]["orphan"] and not orphans[p.pid]["managed"] for p in first)
    text = installation.run("daemon", "status", check=True).stdout
    assert "orphans   2 daemons" in text and "outside any arbiter" in text, text

    installation.start("--schedulers", "1", "--workers", "1")     # stops them first
    assert not any(alive(p) for p in first)
    now = daemons(installation)
    arbiter = psutil.Process(installation.arbiter_pid() or 0)
    children = {p.pid for p in arbiter.children(recursive=True)}
    assert len(now) == 2 and set(now) <= children            # one set, under the arbiter
    assert not any(d["orphan"] for d in now.values())

    second = kill_arbiter(installation)
    assert all(alive(p) for p in second)
    stop = installation.run("daemon", "stop", "--timeout", "30", check=True)
    assert "outside" in stop.stdout and all(str(p.pid) in stop.stdout for p in second), \
        stop.stdout
    assert not any(alive(p) for p in second)
    assert daemons(installation) == {}


def test_an_orphan_is_recognised_by_its_process_never_by_name(
        wgops_env: dict[str, str], tmp_path: Path) -> None:
    """A process that looks like a daemon (its command line ends ``-m wgops daemon run
    scheduler``) is this installation's only with the row's start time and this
    installation's home and namespace in its environment."""
    import subprocess
    import sys

    from wgops.daemon.orphans import daemon_process
    from wgops.store.config import Settings

    settings = Settings.load(env=wgops_env)
    look_alike = [sys.executable, "-c", "import time; time.sleep(120)", "-m", "wgops", "daemon",
                  "run", "scheduler"]
    ours = subprocess.Popen(look_alike, env=wgops_env)
    other = subprocess.Popen(look_alike, env={**wgops_env, "WGOPS_HOME": str(tmp_path / "x")})
    try:
        started = psutil.Process(ours.pid).create_time()
        assert daemon_process(settings, "scheduler", ours.pid, started) is not None
        assert daemon_process(settings, "worker", ours.pid, started) is None
        assert daemon_process(settings, "scheduler", ours.pid, started - 10) is None  # reused
        assert daemon_process(settings, "scheduler", other.pid,
                              psutil.Process(other.pid).create_time()) is None
    finally:
        for proc in (ours, other):
            proc.kill()
            proc.wait(10)


def test_the_console_shows_an_orphan_as_such() -> None:
    from wgops.console.data.status import status_daemons

    doc = {"schedulers": [{"id": "s-1", "pid": 1, "state": "running", "alive": True,
                           "orphan": True},
                          {"id": "s-2", "pid": 2, "state": "running", "alive": True,
                           "orphan": False}]}
    assert [d.state for d in status_daemons(doc, 0.0)] == ["orphan", "running"]
