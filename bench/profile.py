"""Profile the daemons under the throughput scenario with py-spy.

    .venv/bin/python -m bench.profile [--db sqlite] [--tasks 3000] [--out bench/results]

Starts a fresh installation (one scheduler, one worker with 8 slots), warms it up, then runs
one graph of ``--tasks`` no-ops while ``py-spy record`` samples the scheduler and the worker
(their slot processes too). Writes ``profile-scheduler.txt`` and ``profile-worker.txt``
(collapsed stacks, for flamegraph tools or ``sort -k2``) and prints the top functions by own
time and the CPU seconds each process used per task. Needs ``py-spy`` (``pip install
py-spy``) and permission to ptrace the daemons (root, or ``ptrace_scope`` 0).
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil

from bench.harness import Installation
from bench.scenarios import NOOP, _standard


def top(collapsed: Path, n: int = 25) -> list[tuple[float, str]]:
    """Own-time share of the leaf frames of a collapsed-stack file."""
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        own[stack.split(";")[-1]] += int(count)
        total += int(count)
    return [(100 * c / max(1, total), frame) for frame, c in own.most_common(n)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="sqlite", choices=("sqlite", "postgres"))
    parser.add_argument("--tasks", type=int, default=3000)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        print("py-spy is not installed: pip install py-spy", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    inst = Installation(args.db)
    try:
        _standard(8)(inst)
        daemons = {"scheduler": inst.procs[0], "worker": inst.procs[1]}
        ps = {name: psutil.Process(p.pid) for name, p in daemons.items()}

        def cpu(name: str) -> float:
            procs = [ps[name], *ps[name].children(recursive=True)]
            return sum(p.cpu_times().user + p.cpu_times().system for p in procs)

        spies = {name: subprocess.Popen(
            [spy, "record", "--pid", str(p.pid), "--nonblocking",
             "--format", "raw", "--rate", "500",
             "--output", str(args.out / f"profile-{name}.txt")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for name, p in daemons.items()}
        time.sleep(1.5)
        before = {name: cpu(name) for name in daemons}
        ids, t0 = inst.submit([{"name": "profile", "tasks": {
            f"t{k}": {"run": NOOP} for k in range(args.tasks)}}])
        inst.wait_graphs(ids, 600)
        seconds = max(f for _, f in inst.graph_times(ids) if f is not None) - t0
        after = {name: cpu(name) for name in daemons}
        for proc in spies.values():
            proc.send_signal(2)
            proc.wait(30)
        print(f"{args.tasks} tasks in {seconds:.2f}s: {args.tasks / seconds:.0f} tasks/s")
        for name in daemons:
            used = after[name] - before[name]
            print(f"\n{name}: {1000 * used / args.tasks:.3f} ms CPU per task")
            for share, frame in top(args.out / f"profile-{name}.txt"):
                print(f"  {share:5.1f}%  {frame}")
    finally:
        inst.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
