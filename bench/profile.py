"""Profile the daemons under the throughput scenario with py-spy.

    .venv/bin/python -m bench.profile [--db sqlite] [--tasks 3000] [--graphs 1] [--out DIR]
                                      [--no-spy | --wall]

Starts a fresh installation (one scheduler, one worker with 8 slots), warms it up, then runs
``--tasks`` no-ops (in one graph, or spread over ``--graphs`` graphs submitted at once, the
shape of the many-graphs scenario) while ``py-spy record`` samples the scheduler and the worker
(their slot processes too). Writes ``profile-scheduler.txt`` and ``profile-worker.txt``
(collapsed stacks, for flamegraph tools or ``sort -k2``) and prints the top functions by own
time and the CPU seconds each process used per task. ``--wall`` samples every thread, waiting
included, and prints each thread's share and where it waits. Needs ``py-spy`` (``pip install
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


def by_thread(collapsed: Path, n: int = 8) -> list[tuple[str, float, list[tuple[float, str]]]]:
    """Per thread (the first frame py-spy's ``--threads`` writes), its share of the samples
    and its leaf frames' shares of its own samples, largest first."""
    threads: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        threads[frames[0]][frames[-1]] += int(count)
        total += int(count)
    result = []
    for thread, own in sorted(threads.items(), key=lambda kv: -sum(kv[1].values())):
        mine = sum(own.values())
        result.append((thread, 100 * mine / max(1, total),
                       [(100 * c / mine, frame) for frame, c in own.most_common(n)]))
    return result


# the server's counters bench.profile reads per task: (view, the column naming a row or None
# for the database's own row, {column: the figure's name})
PG_COUNTERS = (
    ("pg_stat_database", None, {c: c for c in ("xact_commit", "tup_returned", "tup_fetched",
                                               "tup_inserted", "tup_updated", "tup_deleted")}),
    ("pg_stat_user_tables", "relname", {
        "seq_scan": "seq_scan", "seq_tup_read": "seq_tup_read", "idx_scan": "idx_scan",
        "idx_tup_fetch": "idx_tup_fetch", "n_tup_ins": "ins", "n_tup_upd": "upd"}),
    ("pg_stat_user_indexes", "indexrelname", {
        "idx_scan": "scan", "idx_tup_read": "read", "idx_tup_fetch": "fetch"}),
)


def _pg_counts(inst: Installation) -> dict[str, int]:
    """The installation's database's transaction, row and index counters (PostgreSQL only),
    as ``figure`` (the database's) or ``table.figure`` / ``index.figure``."""
    if not inst.pg_name:
        return {}
    counts: dict[str, int] = {}
    for view, key, columns in PG_COUNTERS:
        where = "WHERE datname = %s" if key is None else ""
        sql = f"SELECT {key or 'NULL'}, {', '.join(columns)} FROM {view} {where}"
        rows = inst.db(lambda sql=sql, where=where: inst.store().db.execute_sql(
            sql, (inst.pg_name,) if where else ()).fetchall())
        for name, *figures in rows:
            for figure, value in zip(columns.values(), figures):
                counts[figure if name is None else f"{name}.{figure}"] = value or 0
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="sqlite", choices=("sqlite", "postgres"))
    parser.add_argument("--tasks", type=int, default=3000)
    parser.add_argument("--graphs", type=int, default=1,
                        help="spread the tasks over this many graphs")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument("--no-spy", action="store_true",
                        help="only the CPU time per task of each process, without py-spy")
    parser.add_argument("--wall", action="store_true",
                        help="sample every thread, waiting included (wall-clock time, per "
                             "thread), instead of the thread holding the GIL")
    args = parser.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not args.no_spy and not Path(spy).exists():
        print("py-spy is not installed: pip install py-spy", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    inst = Installation(args.db)
    try:
        _standard(8)(inst)
        daemons = {"scheduler": inst.procs[0], "worker": inst.procs[1]}
        ps = {name: psutil.Process(p.pid) for name, p in daemons.items()}

        broker = [p for p in psutil.process_iter(["name"]) if p.info["name"] == "beam.smp"]
        if broker:
            ps["rabbitmq (whole node)"] = broker[0]
        if args.db == "postgres":       # the server: its postmaster and the backends under it
            server = [p for p in psutil.process_iter(["name", "ppid"])
                      if p.info["name"] in ("postgres", "postmaster")
                      and psutil.Process(p.info["ppid"]).name() not in ("postgres", "postmaster")]
            if server:
                ps["postgresql (server)"] = server[0]

        def cpu(name: str) -> tuple[float, float, float]:
            """(own, own in the kernel, children's) CPU seconds"""
            def used(p: psutil.Process) -> float:
                return p.cpu_times().user + p.cpu_times().system
            times = ps[name].cpu_times()
            return (times.user + times.system, times.system,
                    sum(used(c) for c in ps[name].children(recursive=True)))

        spies = {name: subprocess.Popen(
            [spy, "record", "--pid", str(p.pid), "--nonblocking",
             "--format", "raw", "--rate", "500",
             *(["--idle", "--threads"] if args.wall else ["--gil"]),
             "--output", str(args.out / f"profile-{name}.txt")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for name, p in daemons.items() if not args.no_spy}
        time.sleep(1.5)
        before = {name: cpu(name) for name in ps}
        pg_before = _pg_counts(inst)
        size = max(1, args.tasks // max(1, args.graphs))
        ids, t0 = inst.submit([{"name": f"profile-{g}", "tasks": {
            f"t{k}": {"run": NOOP} for k in range(size)}} for g in range(max(1, args.graphs))])
        args.tasks = size * len(ids)
        inst.wait_graphs(ids, 600)
        seconds = max(f for _, f in inst.graph_times(ids) if f is not None) - t0
        after = {name: cpu(name) for name in ps}
        time.sleep(1.2)                 # PostgreSQL flushes a backend's counters each second
        pg_after = _pg_counts(inst)
        for proc in spies.values():
            proc.send_signal(2)
            proc.wait(30)
        print(f"{args.tasks} tasks in {len(ids)} graphs in {seconds:.2f}s: "
              f"{args.tasks / seconds:.0f} tasks/s")
        for name in ps:
            own, kernel, kids = (1000 * (a - b) / args.tasks
                                 for a, b in zip(after[name], before[name]))
            print(f"{name}: {own:.3f} ms CPU per task ({kernel:.3f} in the kernel)"
                  + (f" (+ {kids:.3f} its children)" if kids else ""))
        if pg_before and pg_after:
            print("postgresql, per task: " + ", ".join(
                f"{(pg_after[k] - pg_before[k]) / args.tasks:.2f} {k}" for k in pg_before
                if pg_after[k] != pg_before[k]))
        for name in daemons if spies else ():
            collapsed = args.out / f"profile-{name}.txt"
            if args.wall:
                print(f"\n{name}, wall-clock time by thread, then by function within each:")
                for thread, share, frames in by_thread(collapsed):
                    print(f"  {share:5.1f}%  {thread}")
                    for frame_share, frame in frames:
                        print(f"      {frame_share:5.1f}%  {frame}")
                continue
            print(f"\n{name}, own time by function:")
            for share, frame in top(collapsed):
                print(f"  {share:5.1f}%  {frame}")
        for proc in daemons.values():       # stop them here to read what they say on exit
            proc.send_signal(15)
            proc.wait(30)
        for name, proc in daemons.items():
            lines = inst.log(proc.pid).splitlines()
            for what in ("socket writes", "on the event loop"):
                said = [line for line in lines if what in line]
                if said:
                    print(f"{name}: {said[-1].split(' ', 3)[-1]}")
    finally:
        inst.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
