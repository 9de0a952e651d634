"""A deterministic scene: a seeded SQLite store with fixed timestamps, a fixed status and a
fixed events tail. Screenshots and snapshot tests render the console over it; no broker, no
daemons, no clock.

    backend = SceneBackend.create(tmp_dir)      # writes tmp_dir/scene.db
    app = WgopsApp(backend, live=False)
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from wgops.console.data.backend import Backend
from wgops.console.data.model import (
    Connection,
    DaemonRow,
    EventBatch,
    EventRow,
    PoolRow,
    QueueRow,
    SlotRow,
    Status,
)
from wgops.store.config import Settings
from wgops.store.db import Store
from wgops.store.document import load_document
from wgops.store.errors import WgopsError
from wgops.store.graphs import create_graph
from wgops.store.migrations import migrate
from wgops.store.models import Graph, Pool, Task, TaskLog, dumps
from wgops.store.shapes import copy_spec

NOW = 1_750_000_000.0                      # 2025-06-15 15:06:40 UTC
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TRACEBACK = '''Traceback (most recent call last):
  File "/srv/wgops/daemon/executors.py", line 88, in run_python
    result = func(**args)
  File "/srv/wgops/examples/tasks.py", line 61, in relax
    forces = _forces(structure, lattice, steps)
  File "/srv/wgops/examples/tasks.py", line 47, in _forces
    raise ValueError(f"SCF did not converge for {name} after {steps} steps")
ValueError: SCF did not converge for InP after 12 steps
'''


def use_utc() -> None:
    """Clock times in the scene are shown in UTC, whatever the machine's zone."""
    os.environ["TZ"] = "UTC"
    time.tzset()


def _set(graph: Graph, name: str, state: str, start: float | None = None,
         took: float | None = None, **fields: Any) -> None:
    values: dict[str, Any] = {"state": state, **fields}
    if start is not None:
        values.update(started=start, attempts=fields.get("attempts", 1))
        if took is not None:
            values["finished"] = start + took
    for key in ("result", "args", "error"):
        if key in values and not isinstance(values[key], str):
            values[key] = dumps(values[key])
    Task.update(**values).where(Task.graph == graph.id, Task.name == name).execute()


def _graph(doc: dict[str, Any], state: str, created: float, owner: str | None,
           priority: int = 0, **fields: Any) -> Graph:
    graph = create_graph(doc, priority=priority, owner=owner)
    Graph.update(state=state, created=created, started=fields.pop("started", created + 0.4),
                 **fields).where(Graph.id == graph.id).execute()
    return Graph.get_by_id(graph.id)


def seed(store: Store) -> None:
    """Write the scene's graphs (ids 1..N in a fresh database)."""
    bands = load_document(EXAMPLES / "bands.yaml")
    fanout = load_document(EXAMPLES / "fanout.yaml")
    hello = load_document(EXAMPLES / "hello.json")
    shell = load_document(EXAMPLES / "shell_job.yaml")
    with store.write():
        Pool.insert(name="gpu", max_running=2).on_conflict_ignore().execute()
        # 1..14: finished and killed history
        for i in range(14):
            doc = (hello, fanout, shell, bands)[i % 4]
            state = "killed" if i == 6 else "finished"
            g = _graph(doc, state, NOW - 4000 + i * 200, None, finished=NOW - 3900 + i * 200)
            Task.update(state="killed" if state == "killed" else "finished",
                        attempts=1).where(Task.graph == g.id).execute()
        # 15: bands, running, its nested graph half done
        g = _graph(bands, "running", NOW - 95, "sched-a1", priority=5)
        _set(g, "relax", "finished", NOW - 94, 11.2, worker="worker-1",
             args={"structure": "Si", "steps": 12},
             result={"structure": {"formula": "Si", "a": 5.4307}, "energy": -158.4})
        _set(g, "scf", "finished", NOW - 82, 20.5, worker="worker-2",
             args={"structure": {"formula": "Si", "a": 5.4307}, "ecut": 30},
             result={"energy": -158.91, "density": [1.02, 0.98, 1.0, 1.01],
                     "iterations": 14})
        _set(g, "report", "finished", NOW - 61, 0.04, worker="worker-1",
             result={"stdout": "structure=Si energy=-158.91 iterations=14\n", "stderr": "",
                     "returncode": 0})
        _set(g, "bands", "running", NOW - 60)
        parent = Task.get(Task.graph == g.id, Task.name == "bands")
        child = create_graph(bands["tasks"]["bands"]["graph"], parent_task=parent, root=g.id,
                             depth=1, owner="sched-a1", state="running",
                             inputs={"density": [1.02, 0.98, 1.0, 1.01], "lattice": "fcc"})
        Graph.update(created=NOW - 60, started=NOW - 60).where(Graph.id == child.id).execute()
        _set(child, "path", "finished", NOW - 59, 0.8, worker="worker-3",
             result={"kpoints": 16, "labels": ["L", "G", "X"]})
        _set(child, "bands", "running", NOW - 58, worker="worker-2",
             args={"kpoints": 16, "nbands": 4})
        # 17: fanout, running, four branches in flight
        g = _graph(fanout, "running", NOW - 40, "sched-b2", priority=3)
        _set(g, "split", "finished", NOW - 39, 0.2, worker="worker-3",
             result={"chunks": [[0, 1], [2, 3], [4, 5], [6, 7]]})
        for i, state in enumerate(("finished", "running", "running", "queued")):
            _set(g, f"fetch{i}", state, NOW - 38 + i if state != "queued" else None,
                 2.1 if state == "finished" else None,
                 worker=f"worker-{1 + i % 3}" if state != "queued" else None,
                 waiting_for="pool default: all 12 slots busy" if state == "queued" else None)
        _set(g, "square0", "running", NOW - 35, worker="worker-1")
        # 18: bands on InP, failed in relax after its retries
        g = _graph({**bands, "inputs": {**bands["inputs"], "structure": "InP"}}, "failed",
                   NOW - 700, None, finished=NOW - 640,
                   error=dumps({"type": "TaskFailed", "message": "task relax failed"}))
        _set(g, "relax", "failed", NOW - 699, 5.0, attempts=3, worker="worker-2",
             args={"structure": "InP", "steps": 12},
             error={"type": "ValueError",
                    "message": "SCF did not converge for InP after 12 steps",
                    "traceback": TRACEBACK})
        for name in ("scf", "report", "bands"):
            _set(g, name, "skipped")
        # 19: paused; 20: queued (no scheduler yet)
        g = _graph(shell, "paused", NOW - 300, "sched-b2", priority=1)
        _set(g, "hello", "finished", NOW - 299, 0.02, worker="worker-3",
             result={"stdout": "hello, world", "stderr": "", "returncode": 0})
        _graph(hello, "queued", NOW - 5, None, priority=9, started=None)
        # 21: sweep, its mapped task half way through its nine copies
        _sweep(load_document(EXAMPLES / "sweep.yaml"))
        _logs()


def _stamp(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}"


def _logs() -> None:
    """What the failed relax of graph 18 printed in its last attempt, and what the running
    bands of the nested graph 16 has printed so far."""
    start = NOW - 699
    relax = [f"{_stamp(start + 0.012)} INFO wgops.examples.tasks: relaxing InP: 12 steps, "
             "lattice fcc, a0 5.8687"]
    for step in range(1, 13):
        relax.append(f"step {step:2d}  energy {-151.2 - 0.31 * step + 0.02 * step ** 1.5:.4f}"
                     f"  max force {0.84 / step ** 0.5:.4f}")
    relax += [f"{_stamp(start + 4.871)} WARNING wgops.examples.tasks: forces still above "
              "0.05 eV/A after 12 steps",
              f"{_stamp(start + 4.902)} ERROR wgops.examples.tasks: SCF did not converge for "
              "InP; giving up"]
    bands = [f"{_stamp(NOW - 57.6)} INFO wgops.examples.tasks: 16 k-points, 4 bands"]
    for k in range(11):
        bands.append(f"k-point {k + 1:2d}/16  e = " + " ".join(
            f"{-5.1 + 2.3 * b + 0.07 * k:7.3f}" for b in range(4)))
        bands.append(f"  davidson: {6 + k % 4} iterations, residual {3.1e-7 / (k + 1):.2e}")
        if k % 4 == 3:
            bands.append(f"{_stamp(NOW - 57.6 + 4.1 * k)} INFO wgops.examples.tasks: "
                         f"{k + 1} of 16 k-points done")
    for gid, name, attempt, lines, complete in ((18, "relax", 3, relax, True),
                                                (16, "bands", 1, bands, False)):
        task = Task.get(Task.graph == gid, Task.name == name)
        TaskLog.create(task=task, attempt=attempt, text="\n".join(lines) + "\n", dropped=0,
                       complete=complete, updated=NOW)


def _sweep(doc: dict[str, Any]) -> None:
    g = _graph({**doc, "inputs": {**doc["inputs"], "points": 9}}, "running", NOW - 30,
               "sched-a1", priority=2)
    points = [round(5.214 + i * 0.0543, 4) for i in range(9)]
    _set(g, "grid", "finished", NOW - 29, 1.9, worker="worker-2",
         result={"points": points, "n": 9})
    _set(g, "energy", "running", NOW - 27)
    energy = Task.get(Task.graph == g.id, Task.name == "energy")
    Task.insert_many([{"graph": g.id, "name": f"energy[{i}]", "kind": "python",
                       "spec": dumps(copy_spec(doc["tasks"]["energy"], a, i)), "deps": "[]",
                       "pool": "default", "state": "waiting", "map_of": energy.id,
                       "map_index": i} for i, a in enumerate(points)]).execute()
    for i, a in enumerate(points):
        state = "finished" if i < 5 else "running" if i < 7 else "queued"
        _set(g, f"energy[{i}]", state, NOW - 27 + 3 * (i % 5) if state != "queued" else None,
             4.1 if state == "finished" else None,
             worker=f"worker-{1 + i % 3}" if state != "queued" else None,
             args={"a": a, "structure": "Si"},
             result={"a": a, "energy": round(-4 + 2.5 * (a - 5.43) ** 2, 6)}
             if state == "finished" else None)


def scene_status() -> Status:
    def d(kind: str, name: str, pid: int, state: str, up: float | None, cpu: float | None,
          mem: int | None, graphs: int | None = None) -> DaemonRow:
        return DaemonRow(kind, name, pid, state, up, cpu, mem, graphs)

    mb = 1024 * 1024
    return Status(
        broker=Connection(True, "amqp://guest:***@127.0.0.1:5672/"),
        database=Connection(True, "sqlite:///scene.db"),
        daemons=(d("arbiter", "circus arbiter", 4101, "running", 7260, 0.3, 38 * mb),
                 d("scheduler", "sched-a1", 4120, "running", 7258, 4.1, 71 * mb, 2),
                 d("scheduler", "sched-b2", 4121, "running", 7258, 2.7, 69 * mb, 2),
                 d("worker", "worker-1", 4130, "running", 7257, 38.5, 112 * mb),
                 d("worker", "worker-2", 4131, "running", 7257, 41.0, 118 * mb),
                 d("worker", "worker-3", 4132, "running", 1200, 12.2, 97 * mb),
                 d("worker", "worker-4", 4133, "flapping", None, None, None)),
        queues=(QueueRow("demo.graphs", 1, 2, 0.2, 0.2, (0, 1, 2, 1, 0, 0, 1, 3, 2, 1, 1, 1)),
                QueueRow("demo.tasks.default", 7, 3, 14.5, 12.0,
                         (2, 4, 6, 9, 12, 10, 8, 7, 9, 11, 8, 7)),
                QueueRow("demo.tasks.gpu", 0, 1, 0.0, 0.0, (3, 2, 1, 0, 0, 0, 0, 0)),
                QueueRow("demo.dead", 2, 0, 0.0, 0.0, (2, 2, 2, 2, 2, 2))),
        slots=(SlotRow("worker-1", 4, 4, 0, ("default",)),
               SlotRow("worker-2", 4, 3, 1, ("default", "gpu")),
               SlotRow("worker-3", 4, 1, 0, ("default",)),
               SlotRow("worker-4", 4, 0, 0, ("default",), alive=False)),
        pools=(PoolRow("default", 8, 1, None), PoolRow("gpu", 1, 0, 2)),
        supervised=True, at=NOW)


def scene_events() -> tuple[EventRow, ...]:
    rows = [("graph.running", 15, None, "bands", "running", {}),
            ("task.finished", 15, "relax", "relax", "finished", {"worker": "worker-1"}),
            ("task.finished", 15, "scf", "scf", "finished", {"worker": "worker-2"}),
            ("graph.failed", 18, None, "bands", "failed", {}),
            ("graph.paused", 19, None, "shell_job", "paused", {"actor": "console"}),
            ("task.running", 16, "bands", "bands", "running", {"worker": "worker-2"}),
            ("task.queued", 17, "fetch3", "fetch3", "queued", {}),
            ("task.running", 17, "square0", "square0", "running", {"worker": "worker-1"}),
            ("daemon.heartbeat", None, None, None, None, {"id": "worker-3", "busy": 1})]
    return tuple(EventRow(NOW - 9 + i, topic, graph, None, name, state, data)
                 for i, (topic, graph, _task, name, state, data) in enumerate(rows))


class SceneActions:
    """Actions in the scene change nothing: they say so."""

    async def graph(self, action: str, graph_id: int, *args: Any) -> str:
        raise WgopsError(f"the scene is a picture: {action} of graph {graph_id} not sent")

    async def graphs(self, action: str, graph_ids: list[int]) -> str:
        raise WgopsError(f"the scene is a picture: {action} of {len(graph_ids)} graphs not "
                         "sent")

    async def daemons(self, action: str, kind: str = "", n: int = 1) -> str:
        raise WgopsError(f"the scene is a picture: daemons {action} not sent")

    async def validate(self, path: str) -> dict[str, Any]:
        return load_document(Path(path))

    async def submit(self, path: str, priority: int | None = None) -> str:
        raise WgopsError("the scene is a picture: nothing submitted")

    async def close(self) -> None:
        pass


class SceneBackend(Backend):
    """The console's backend over the scene: fixed now, fixed status, events once."""

    live = False

    def __init__(self, settings: Settings, store: Store):
        super().__init__(settings, store)
        self.actions = SceneActions()  # type: ignore[assignment]
        self._events: tuple[EventRow, ...] = scene_events()

    @classmethod
    def create(cls, directory: Path) -> "SceneBackend":
        directory.mkdir(parents=True, exist_ok=True)
        db = directory / "scene.db"
        for path in directory.glob("scene.db*"):
            path.unlink()
        settings = Settings(home=directory, db_url=f"sqlite:///{db}", namespace="demo")
        store = Store(settings.db_url).connect()
        migrate(store)
        seed(store)
        store.close()
        return cls(settings, store)

    def now(self) -> float:
        return NOW

    def describe(self) -> str:
        return "demo · sqlite:///scene.db"

    async def status(self) -> Status:
        return scene_status()

    def drain_events(self) -> EventBatch:
        events, self._events = self._events, ()
        return EventBatch(events, frozenset(e.graph for e in events if e.graph), 0, len(events))
