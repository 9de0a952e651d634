"""Where a chain hop's time goes, from the times the daemons write on the rows.

    .venv/bin/python -m bench.hops [--db sqlite] [--tasks 200] [--runs 3]

Runs the latency scenario's chain (one scheduler, one worker with 8 slots) and splits each
hop (task n finished -> task n+1 started) into three stretches, each between two clocks
that the daemons write anyway:

- ``worker finish``: the task's ``finished`` time (worker, before its commit) to the
  ``task.finished`` row of the event log (written inside that commit): the hand-off to the
  worker's database thread;
- ``commit, notify, scheduler``: that row to the next task's ``queued_at`` (the scheduler's
  clock as it starts the dispatch): the commit, the notification through the broker and the
  scheduler's handling;
- ``dispatch, broker, worker``: ``queued_at`` to the next task's ``started`` (the worker's
  clock as it asks for the start): the dispatch transaction, the publish and the delivery;
- ``start, run``: a task's ``started`` to its ``finished``: the start compare-and-set (a
  commit), the call in a slot process and its reply. A chain's hop as a user sees it (first
  start to last finish, divided by the hops) is ``hop`` plus this.

Prints the median and p90 of each stretch per run.
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any

from bench.harness import Installation
from bench.scenarios import NOOP, _percentile, _standard


def chain(inst: Installation, n: int, i: int) -> dict[str, list[float]]:
    from wgops.store.models import LogEntry, Task

    tasks: dict[str, Any] = {"c0": {"run": NOOP}}
    for k in range(1, n):
        tasks[f"c{k}"] = {"run": NOOP, "after": [f"c{k - 1}"]}
    ids, _ = inst.submit([{"name": f"hops-{i}", "tasks": tasks}])
    inst.wait_graphs(ids, 120)
    rows = inst.db(lambda: {name: (tid, queued, started, finished) for tid, name, queued,
                            started, finished in Task.select(
                                Task.id, Task.name, Task.queued_at, Task.started,
                                Task.finished).where(Task.graph == ids[0]).tuples()})
    logged = inst.db(lambda: dict(LogEntry.select(LogEntry.task, LogEntry.ts).where(
        LogEntry.graph == ids[0], LogEntry.kind == "task.finished").tuples()))
    out: dict[str, list[float]] = {"hop": [], "worker finish": [],
                                   "commit, notify, scheduler": [],
                                   "dispatch, broker, worker": [], "start, run": []}
    for k in range(1, n):
        tid, _, _, finished = rows[f"c{k - 1}"]
        _, queued, started, _ = rows[f"c{k}"]
        out["hop"].append(1000 * (started - finished))
        out["worker finish"].append(1000 * (logged[tid] - finished))
        out["commit, notify, scheduler"].append(1000 * (queued - logged[tid]))
        out["dispatch, broker, worker"].append(1000 * (started - queued))
        out["start, run"].append(1000 * (rows[f"c{k}"][3] - started))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="sqlite", choices=("sqlite", "postgres"))
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    inst = Installation(args.db)
    try:
        _standard(8)(inst)
        for i in range(args.runs):
            parts = chain(inst, args.tasks, i)
            print(f"run {i + 1} ({args.db}), ms: " + "; ".join(
                f"{name} p50 {statistics.median(v):.2f} p90 {_percentile(v, 0.9):.2f}"
                for name, v in parts.items()))
    finally:
        inst.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
