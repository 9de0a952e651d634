"""A real installation for tests: scheduler and worker daemons as subprocesses.

Every process is started here and stopped here by PID (SIGTERM, then SIGKILL), including on
test failure. Waits are on conditions with deadlines, never fixed sleeps.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent


def wait_for(condition: Callable[[], Any], timeout: float = 30, interval: float = 0.05,
             what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class Cluster:
    def __init__(self, env: dict[str, str], tmp: Path):
        self.env = dict(env)
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: dict[int, Path] = {}

    # -- processes ------------------------------------------------------------------------

    def _spawn(self, args: list[str], extra_env: dict[str, str] | None = None) \
            -> subprocess.Popen[bytes]:
        log = self.tmp / f"daemon-{len(self.procs)}.log"
        env = {**self.env, **(extra_env or {})}
        with open(log, "wb") as fh:
            proc = subprocess.Popen([sys.executable, "-m", "wgops", *args], env=env,
                                    stdout=fh, stderr=subprocess.STDOUT, cwd=str(ROOT))
        self.procs.append(proc)
        self.logs[proc.pid] = log
        return proc

    def scheduler(self, wait: bool = True, extra_env: dict[str, str] | None = None) \
            -> subprocess.Popen[bytes]:
        proc = self._spawn(["daemon", "run", "scheduler"], extra_env)
        if wait:
            self.wait_daemon("scheduler", proc.pid)
        return proc

    def worker(self, slots: int = 4, pools: tuple[str, ...] = (), wait: bool = True,
               extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        args = ["daemon", "run", "worker", "--slots", str(slots)]
        for pool in pools:
            args += ["--pool", pool]
        proc = self._spawn(args, extra_env)
        if wait:
            self.wait_daemon("worker", proc.pid)
        return proc

    def wait_daemon(self, kind: str, pid: int, timeout: float = 30) -> str:
        from wgops.store.models import Scheduler, Worker

        model = Scheduler if kind == "scheduler" else Worker

        def up() -> str | None:
            proc = next(p for p in self.procs if p.pid == pid)
            if proc.poll() is not None:
                raise AssertionError(f"{kind} {pid} exited {proc.returncode}:\n{self.log(pid)}")
            row = self.db(lambda: model.get_or_none(model.pid == pid, model.state == "running"))
            return row.id if row else None
        return wait_for(up, timeout, 0.1, f"{kind} {pid} to announce itself")

    def wait_ticks(self, kind: str, count: int, after: float, timeout: float = 30) -> None:
        """Wait until every live daemon of ``kind`` has written ``count`` heartbeats since
        ``after`` (a daemon's heartbeat closes a turn of its periodic work): what it was going
        to do by then, it has done."""
        from wgops.store.models import Scheduler, Worker

        model = Scheduler if kind == "scheduler" else Worker
        beat = float(self.env.get("WGOPS_HEARTBEAT", "1.0"))

        def done() -> bool:
            rows = self.db(lambda: list(model.select().where(model.state == "running")))
            return bool(rows) and all(r.heartbeat >= after + count * beat for r in rows)
        wait_for(done, timeout, 0.1, f"{count} {kind} heartbeats")

    def log(self, pid: int) -> str:
        return self.logs[pid].read_text(errors="replace")[-5000:]

    def kill9(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL the daemon first (so it cannot record anything), then its children."""
        children = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        for child in children:
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 30) -> int:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill9(proc)
        return proc.returncode

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    children = psutil.Process(proc.pid).children(recursive=True)
                except psutil.NoSuchProcess:
                    children = []
                self.stop(proc, 15)
                for child in children:
                    if child.is_running():
                        child.kill()

    # -- the store and the CLI -----------------------------------------------------------

    def db(self, fn: Callable[[], Any]) -> Any:
        from wgops.store.config import Settings
        from wgops.store.db import open_store
        from wgops.store.migrations import migrate

        settings = Settings.load(env=self.env)
        store = open_store(settings.db_url).connect()
        try:
            migrate(store)
            return fn()
        finally:
            store.close()

    def cli(self, *args: str, timeout: float = 60, check: bool = True) \
            -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([sys.executable, "-m", "wgops", *args], env=self.env,
                              capture_output=True, text=True, timeout=timeout, cwd=str(ROOT))
        if check and proc.returncode != 0:
            raise AssertionError(f"wgops {' '.join(args)} exited {proc.returncode}:\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc

    def submit(self, doc: dict[str, Any] | str, *args: str) -> int:
        path = doc if isinstance(doc, str) else self.write_doc(doc)
        out = self.cli("graph", "submit", path, "--json", *args)
        return json.loads(out.stdout)["id"]

    def write_doc(self, doc: dict[str, Any], name: str | None = None) -> str:
        path = self.tmp / (name or f"doc-{time.monotonic_ns()}.json")
        path.write_text(json.dumps(doc))
        return str(path)

    def show(self, graph_id: int) -> dict[str, Any]:
        return json.loads(self.cli("graph", "show", str(graph_id), "--json").stdout)

    def state(self, graph_id: int) -> str:
        from wgops.store.models import Graph

        return self.db(lambda: Graph.get_by_id(graph_id).state)

    def wait_graph(self, graph_id: int, timeout: float = 60,
                   states: tuple[str, ...] = ("finished", "failed", "killed")) -> dict[str, Any]:
        wait_for(lambda: self.state(graph_id) in states, timeout, 0.1,
                 f"graph {graph_id} to reach {states}")
        return self.show(graph_id)

    def tasks(self, graph_id: int) -> dict[str, dict[str, Any]]:
        """The graph's tasks as ``wgops graph show --json`` gives them, read in-process (fast
        enough to poll, unlike a CLI subprocess on a loaded machine)."""
        from wgops.store.graphs import show_graph

        return {t["name"]: t for t in self.db(lambda: show_graph(graph_id))["tasks"]}

    def owner(self, graph_id: int) -> str | None:
        from wgops.store.models import Graph

        return self.db(lambda: Graph.get_by_id(graph_id).scheduler)
