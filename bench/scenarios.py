"""The scenarios. Each starts its daemons in a fresh installation (``setup``), then measures
one run (``run``) as many times as asked; a run returns named figures.

Figures are wall-clock seconds from the moment the graphs are stored (the submitter's clock)
to the ``finished`` time the scheduler records on the last graph, or differences of the
``started``/``finished`` times that workers record on task rows: the daemons and the
benchmark share one machine and one clock.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from bench.harness import ROOT, BenchError, Installation, wait_for

NOOP = "bench.tasks:noop"


class NotMeasured(Exception):
    """A scenario that cannot run here, with the reason (reported, not an error)."""


@dataclass
class Scenario:
    name: str
    title: str
    setup: Callable[[Installation], None]
    run: Callable[[Installation, int], dict[str, float]]
    runs: int | None = None                       # None: the suite's --runs
    headline: str = ""                            # the figure the table shows first
    databases: tuple[str, ...] = ("sqlite", "postgres")
    weight: float = 1.0                           # its share of the time budget
    paired: bool = False                          # each run gets a bare loop just before it
    notes: list[str] = field(default_factory=list)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _elapsed(inst: Installation, ids: list[int], t0: float) -> float:
    return max(f for _, f in inst.graph_times(ids) if f is not None) - t0


def _warm_up(inst: Installation) -> None:
    """A small graph through every daemon: imports, slot processes and caches are warm."""
    ids, _ = inst.submit([{"name": "warm-up", "tasks": {
        f"w{i}": {"run": NOOP} for i in range(16)}}])
    inst.wait_graphs(ids, 60)


def _standard(slots: int = 8) -> Callable[[Installation], None]:
    def setup(inst: Installation) -> None:
        inst.scheduler()
        inst.worker(slots)
        inst.wait_up()
        _warm_up(inst)
    return setup


# -- 1 throughput --------------------------------------------------------------------------

def run_throughput(inst: Installation, i: int, n: int = 1000) -> dict[str, float]:
    ids, t0 = inst.submit([{"name": f"throughput-{i}", "tasks": {
        f"t{k}": {"run": NOOP} for k in range(n)}}])
    inst.wait_graphs(ids, 120)
    seconds = _elapsed(inst, ids, t0)
    return {"tasks_per_s": n / seconds, "seconds": seconds}


# -- 2 latency -----------------------------------------------------------------------------

def run_latency(inst: Installation, i: int, n: int = 200) -> dict[str, float]:
    tasks: dict[str, Any] = {"c0": {"run": NOOP}}
    for k in range(1, n):
        tasks[f"c{k}"] = {"run": NOOP, "after": [f"c{k - 1}"]}
    ids, _ = inst.submit([{"name": f"chain-{i}", "tasks": tasks}])
    inst.wait_graphs(ids, 120)
    times = inst.task_times(ids[0])
    hops = [1000 * (times[f"c{k}"][0] - times[f"c{k - 1}"][1]) for k in range(1, n)]
    return {"hop_p50_ms": statistics.median(hops), "hop_p99_ms": _percentile(hops, 0.99),
            "hop_mean_ms": statistics.fmean(hops),
            # as a user sees it (and as the peers are measured): the tasks' run time included
            "hop_user_ms": 1000 * (times[f"c{n - 1}"][1] - times["c0"][0]) / (n - 1)}


# -- 3 fan-out / fan-in -------------------------------------------------------------------

def run_fanout(inst: Installation, i: int, n: int = 500) -> dict[str, float]:
    tasks: dict[str, Any] = {f"f{k}": {"run": "bench.tasks:one"} for k in range(n)}
    tasks["reduce"] = {"run": "bench.tasks:total",
                       "args": {"values": [f"${{f{k}}}" for k in range(n)]}}
    ids, t0 = inst.submit([{"name": f"fan-{i}", "tasks": tasks}])
    inst.wait_graphs(ids, 120)
    times = inst.task_times(ids[0])
    last_leaf = max(times[f"f{k}"][1] for k in range(n))
    seconds = _elapsed(inst, ids, t0)
    return {"seconds": seconds, "tasks_per_s": (n + 1) / seconds,
            "reduce_hop_ms": 1000 * (times["reduce"][0] - last_leaf)}


# -- 4 many graphs -------------------------------------------------------------------------

def run_many(inst: Installation, i: int, graphs: int = 1000, size: int = 10) \
        -> dict[str, float]:
    docs = [{"name": f"many-{i}-{g}", "tasks": {f"t{k}": {"run": NOOP} for k in range(size)}}
            for g in range(graphs)]
    ids, t0 = inst.submit(docs)
    inst.wait_graphs(ids, 300)
    seconds = _elapsed(inst, ids, t0)
    one = run_throughput(inst, i)["tasks_per_s"]          # the same tasks in one graph
    return {"graphs_per_s": graphs / seconds, "tasks_per_s": graphs * size / seconds,
            "seconds": seconds, "one_graph_tasks_per_s": one,
            "tasks_vs_one_graph": graphs * size / seconds / one}


# -- 5 nesting -------------------------------------------------------------------------------

def _nested_doc(name: str) -> dict[str, Any]:
    leaf = {"name": "grandchild", "tasks": {"leaf": {"run": NOOP}}}
    child = {"name": "child", "tasks": {"inner": {"graph": leaf}}}
    return {"name": name, "tasks": {"outer": {"graph": child}}}


def run_nesting(inst: Installation, i: int, graphs: int = 100) -> dict[str, float]:
    ids, t0 = inst.submit([_nested_doc(f"nest-{i}-{g}") for g in range(graphs)])
    inst.wait_graphs(ids, 120)
    return {"seconds": _elapsed(inst, ids, t0)}


# -- 6 scale of one scheduler ----------------------------------------------------------------

PARKED = "parked"


def _parked_doc(name: str) -> dict[str, Any]:
    """Ten tasks; the first a long sleep on a pool nobody serves, so the graph stays active
    with one task queued and nine waiting: all a scheduler holds, and no work."""
    tasks: dict[str, Any] = {"p0": {"run": "bench.tasks:sleep", "pool": PARKED}}
    for k in range(1, 10):
        tasks[f"p{k}"] = {"run": NOOP, "after": ["p0"]}
    return {"name": name, "tasks": tasks}


def _park(inst: Installation, total: int, chunk: int = 1000) -> None:
    from wgops.store.models import Task

    have = inst.db(lambda: Task.select().where(Task.pool == PARKED).count())
    while have < total:
        step = min(chunk, total - have)
        inst.submit([_parked_doc(f"parked-{have + g}") for g in range(step)])
        have += step
    wait_for(lambda: inst.db(lambda: Task.select().where(
        Task.pool == PARKED, Task.state == "queued").count()) >= total, 600,
        f"{total} parked graphs to be active", 0.25)


def _settle(proc: psutil.Process, window: float = 1.0, limit: float = 60) -> None:
    """Wait until the process uses less than a fifth of a core."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = cpu_seconds(proc)
        time.sleep(window)
        if cpu_seconds(proc) - before < 0.2 * window:
            return


def cpu_seconds(proc: psutil.Process) -> float:
    """CPU time a process used so far, every thread: from the scheduler's nanosecond counters
    (``/proc/PID/task/*/schedstat``) where Linux has them, else ``cpu_times`` (whose 10 ms
    ticks are an eighth of what a scheduler spends on a 500-task flow)."""
    total = 0
    try:
        for task in Path(f"/proc/{proc.pid}/task").iterdir():
            try:
                total += int((task / "schedstat").read_text().split()[0])
            except (FileNotFoundError, ProcessLookupError):
                continue                       # a thread that just ended
        return total / 1e9
    except (FileNotFoundError, PermissionError, ValueError, IndexError):
        return sum(proc.cpu_times()[:2])


EVENT_FLOWS = 5      # flows measured at each level (the median is taken): the VM's speed drifts
FLOW_TASKS = 500


def _events(inst: Installation, proc: psutil.Process, i: int, tag: str,
            n: int = FLOW_TASKS) -> tuple[float, float]:
    """(scheduler CPU ms per task, wall seconds) while ``n`` independent no-ops flow."""
    before = cpu_seconds(proc)
    ids, t0 = inst.submit([{"name": f"events-{tag}-{i}", "tasks": {
        f"e{k}": {"run": NOOP} for k in range(n)}}])
    inst.wait_graphs(ids, 120)
    cpu = cpu_seconds(proc) - before
    return 1000 * cpu / n, time.time() - t0


def _idle_cpu(proc: psutil.Process, seconds: float = 3.0) -> float:
    """Scheduler CPU ms per second of wall time with no events (periodic work only)."""
    before = cpu_seconds(proc)
    time.sleep(seconds)
    return 1000 * (cpu_seconds(proc) - before) / seconds


def run_scale(inst: Installation, runs: int, small: int = 100, large: int = 10_000) \
        -> dict[str, Any]:
    """Memory: the scheduler's growth from ``small`` to ``large`` held graphs. CPU per event:
    flows through a second installation holding ``small`` graphs and through this one
    holding ``large``, taken in turn, seconds apart: the VM's speed, which drifts by half
    within minutes, moves both of a pair alike; the ratio is each pair's (the report takes
    their median)."""
    proc = psutil.Process(inst.pid_of("scheduler"))
    out: dict[str, Any] = {}
    rss: dict[int, float] = {}
    for level in (small, large):
        t_park = time.monotonic()
        _park(inst, level)
        out[f"park_seconds_{level}"] = time.monotonic() - t_park
        _settle(proc)
        rss[level] = proc.memory_info().rss
        out[f"rss_mb_{level}"] = rss[level] / 2**20
    out["kb_per_graph"] = (rss[large] - rss[small]) / (large - small) / 1024
    beside = Installation(inst.kind)
    try:
        setup_scale(beside)
        _park(beside, small)
        held = {small: (beside, psutil.Process(beside.pid_of("scheduler"))), large: (inst, proc)}
        for level, (_, scheduler) in held.items():
            _settle(scheduler)
            out[f"idle_cpu_ms_per_s_{level}"] = _idle_cpu(scheduler)
        for level in held:
            out[f"cpu_ms_per_event_{level}"], out[f"net_cpu_ms_per_event_{level}"] = [], []
        for k in range(max(runs, EVENT_FLOWS)):
            for level, (where, scheduler) in held.items():
                cost, wall = _events(where, scheduler, k, str(level))
                out[f"cpu_ms_per_event_{level}"].append(cost)
                # less the periodic work (heartbeat, stall check) done meanwhile: reported on
                # its own as idle CPU, it grows with the active graphs by design
                out[f"net_cpu_ms_per_event_{level}"].append(
                    cost - out[f"idle_cpu_ms_per_s_{level}"] * wall / FLOW_TASKS)
    finally:
        beside.close()
    for prefix in ("", "net_"):
        pairs = zip(out[f"{prefix}cpu_ms_per_event_{large}"],
                    out[f"{prefix}cpu_ms_per_event_{small}"])
        out[f"{prefix}cost_ratio"] = [big / little for big, little in pairs]
    return out


def setup_scale(inst: Installation) -> None:
    inst.use_pool(PARKED)
    inst.scheduler()
    inst.worker(8)
    inst.wait_up()
    _warm_up(inst)


# -- 7 console ----------------------------------------------------------------------------------

def setup_console(inst: Installation) -> None:
    from bench.console_load import seed

    try:
        import wgops.console.app  # noqa: F401
    except ImportError as exc:
        raise NotMeasured(f"the console cannot be imported ({exc})") from None
    store = inst.store()
    with store.write():
        seed()


def run_console(inst: Installation, i: int) -> dict[str, float]:
    proc = subprocess.run([sys.executable, "-m", "bench.console_load"], env=inst.env,
                          capture_output=True, text=True, timeout=180, cwd=str(ROOT))
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise BenchError(f"console measurement failed: {tail}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"key_to_screen_ms": data["key_to_screen_ms"],
            "key_to_screen_p95_ms": data["key_to_screen_p95_ms"], "rss_mb": data["rss_mb"],
            "rss_growth_mb": data["rss_growth_mb"],
            "events_per_s_received": data["events_received"] / 12.0}


# -- 8 metrics ----------------------------------------------------------------------------------

SCRAPES = 40


def setup_metrics(inst: Installation) -> None:
    """10,000 active graphs (100,000 task rows), a scheduler, a worker and the exporter."""
    setup_scale(inst)
    _park(inst, 10_000)
    inst.exporter_port = _free_port()
    inst.spawn(["metrics", "--port", str(inst.exporter_port)])
    wait_for(lambda: _scrape(inst.exporter_port) is not None, 60, "the exporter", 0.2)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _scrape(port: int) -> str | None:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
            return reply.read().decode()
    except (urllib.error.URLError, ConnectionError):
        return None


def run_metrics(inst: Installation, i: int) -> dict[str, float]:
    """Wall time of a whole scrape over HTTP (the store's group-bys and the queue depths)."""
    times = []
    for _ in range(SCRAPES):
        t0 = time.perf_counter()
        text = _scrape(inst.exporter_port)
        times.append(1000 * (time.perf_counter() - t0))
        if text is None or 'wgops_up{component="database"} 1.0' not in text:
            raise BenchError(f"a scrape failed or saw no database: {(text or '')[:200]}")
    return {"scrape_ms": statistics.median(times), "scrape_p95_ms": _percentile(times, 0.95),
            "scrape_max_ms": max(times)}


# -- 9 run-time shapes ---------------------------------------------------------------------------

MAP_COPIES = 10_000
STATIC_FANOUT = 1000
LOOP_DEPTH = 50


def _mapped_doc(name: str, n: int, pool: str | None = None) -> dict[str, Any]:
    copy: dict[str, Any] = {"map": "${source}", "run": NOOP, "args": {"i": "${item}"}}
    if pool:
        copy["pool"] = pool
    return {"name": name, "tasks": {"source": {"run": "bench.tasks:indices", "args": {"n": n}},
                                    "copy": copy}}


def _copy_times(inst: Installation, graph_id: int) -> list[tuple[float, float, float]]:
    """(queued_at, started, finished) of every copy of the graph's mapped task."""
    from wgops.store.models import Task

    return inst.db(lambda: list(Task.select(Task.queued_at, Task.started, Task.finished).where(
        Task.graph == graph_id, Task.map_of.is_null(False)).tuples()))


def _source_finished(inst: Installation, graph_id: int) -> float:
    from wgops.store.models import Task

    return float(inst.db(lambda: Task.get(Task.graph == graph_id, Task.name == "source")
                         .finished))


def _map_memory(inst: Installation, n: int) -> float:
    """Scheduler RSS growth per copy (KB) while a map's ``n`` copies are held, queued on a
    pool nobody serves; the graph is killed afterwards. Measured once, first: memory the
    other runs freed would be reused and hide the cost."""
    from wgops.store.models import Task

    proc = psutil.Process(inst.pid_of("scheduler"))
    _settle(proc)
    before = proc.memory_info().rss
    ids, _ = inst.submit([_mapped_doc("map-memory", n, PARKED)])
    wait_for(lambda: inst.db(lambda: Task.select().where(
        Task.graph == ids[0], Task.map_of.is_null(False), Task.state == "queued").count()) >= n,
        300, f"{n} parked copies", 0.25)
    _settle(proc)
    grown = proc.memory_info().rss - before
    inst.cli("graph", "kill", str(ids[0]))
    return grown / n / 1024


def _static_fanout(inst: Installation, name: str) -> float:
    """Tasks/s of one graph of STATIC_FANOUT independent no-ops, submit to last finish."""
    ids, t0 = inst.submit([{"name": name, "tasks": {
        f"t{k}": {"run": NOOP} for k in range(STATIC_FANOUT)}}])
    inst.wait_graphs(ids, 120)
    return STATIC_FANOUT / _elapsed(inst, ids, t0)


def run_shapes(inst: Installation, i: int) -> dict[str, float]:
    out: dict[str, float] = {}
    if i == 0:
        out["kb_per_copy"] = _map_memory(inst, MAP_COPIES)
    before = _static_fanout(inst, f"static-{i}-before")
    ids, _ = inst.submit([_mapped_doc(f"map-{i}", MAP_COPIES)])
    inst.wait_graphs(ids, 600)
    source = _source_finished(inst, ids[0])
    copies = _copy_times(inst, ids[0])
    if len(copies) != MAP_COPIES:
        raise BenchError(f"{len(copies)} copies instead of {MAP_COPIES}")
    out["expand_to_queued_s"] = max(q for q, _, _ in copies) - source
    out["copies_per_s"] = MAP_COPIES / (max(f for _, _, f in copies) - source)
    after = _static_fanout(inst, f"static-{i}-after")
    # the static figure brackets the map (once before it, once after): the VM's speed drifts
    # within minutes, and a ratio of two figures taken one after the other follows it
    static = (before + after) / 2
    out["static_before_per_s"], out["static_after_per_s"] = before, after
    out["static_tasks_per_s"] = static
    out["copies_vs_static"] = out["copies_per_s"] / static

    ids, t0 = inst.submit([{"name": f"loop-{i}", "tasks": {"loop": {
        "build": "bench.tasks:loop_level", "args": {"n": LOOP_DEPTH - 1}}}}])
    inst.wait_graphs(ids, 300)
    out["loop_level_ms"] = 1000 * _elapsed(inst, ids, t0) / LOOP_DEPTH
    return out


def setup_shapes(inst: Installation) -> None:
    inst.use_pool(PARKED)
    _standard(8)(inst)


# -- 10 retention ----------------------------------------------------------------------------
# Tiny graphs flow at a steady rate through schedulers with ``retention`` on; the store's size
# is sampled as they go. Defaults fit the suite's time budget; the issue's full shape is
#   WGOPS_BENCH_RETENTION_GRAPHS=100000 WGOPS_BENCH_RETENTION=60s python -m bench --only retention

RETENTION_GRAPHS = 8000        # graphs submitted (WGOPS_BENCH_RETENTION_GRAPHS)
RETENTION_RATE = 80.0          # graphs submitted per second (WGOPS_BENCH_RETENTION_RATE)
RETENTION_AGE = "20s"          # the schedulers' retention (WGOPS_BENCH_RETENTION)
SAMPLE_EVERY = 2.0             # seconds between two size samples


def _retention_params() -> tuple[int, float, str]:
    import os

    return (int(os.environ.get("WGOPS_BENCH_RETENTION_GRAPHS", RETENTION_GRAPHS)),
            float(os.environ.get("WGOPS_BENCH_RETENTION_RATE", RETENTION_RATE)),
            os.environ.get("WGOPS_BENCH_RETENTION", RETENTION_AGE))


def _store_bytes(inst: Installation) -> float:
    """SQLite: the database file and its WAL; PostgreSQL: the graph, task, event and task_log
    tables with their indexes and TOAST."""
    if inst.kind == "sqlite":
        path = inst.home / "wgops.db"
        return float(sum(p.stat().st_size for p in (path, path.with_name("wgops.db-wal"))
                         if p.exists()))
    from wgops.store.models import Graph, LogEntry, Task, TaskLog

    def size() -> float:
        db = Graph._meta.database
        total = 0.0
        for model in (Graph, Task, LogEntry, TaskLog):
            total += db.execute_sql("SELECT pg_total_relation_size(%s)",
                                    (model._meta.table_name,)).fetchone()[0]
        return total
    return inst.db(size)


def setup_retention(inst: Installation) -> None:
    inst.env["WGOPS_RETENTION"] = _retention_params()[2]
    inst.scheduler()
    inst.scheduler()
    inst.worker(8)
    inst.wait_up()
    _warm_up(inst)


def run_retention(inst: Installation, i: int) -> dict[str, float]:
    from wgops.store.config import parse_age
    from wgops.store.models import Graph

    graphs, rate, age = _retention_params()
    retention = parse_age(age)
    samples: list[tuple[float, float, int]] = []          # (seconds in, bytes, graph rows)
    t0 = time.monotonic()
    submitted, next_sample = 0, 0.0
    while submitted < graphs:
        now = time.monotonic() - t0
        due = min(graphs, int(now * rate) + 1)
        if due > submitted:
            inst.submit([{"name": f"ret-{i}-{k}", "tasks": {"t": {"run": NOOP}}}
                         for k in range(submitted, due)])
            submitted = due
        if now >= next_sample:
            inst.check_alive()
            samples.append((now, _store_bytes(inst), inst.db(lambda: Graph.select().count())))
            next_sample = now + SAMPLE_EVERY
        time.sleep(max(0.0, min(next_sample, submitted / rate) - (time.monotonic() - t0)))
    duration = time.monotonic() - t0
    samples.append((duration, _store_bytes(inst), inst.db(lambda: Graph.select().count())))
    (ROOT / "bench" / "results" / f"retention-{inst.kind}.json").write_text(json.dumps(
        {"graphs": graphs, "rate": rate, "retention": age, "samples": [
            {"s": round(t, 1), "mb": round(b / 2**20, 3), "graphs": n} for t, b, n in samples]},
        indent=1) + "\n")
    # graphs a retention old, a pass, a vacuum (PostgreSQL, every retention at most), margin
    steady_at = 3 * retention + 10
    later = [s for s in samples if s[0] >= steady_at]
    if duration < steady_at + 3 * SAMPLE_EVERY or len(later) < 3:
        raise NotMeasured(f"{graphs} graphs at {rate:g}/s take {duration:.0f}s: too short for "
                          f"a retention of {age} (raise WGOPS_BENCH_RETENTION_GRAPHS)")
    steady = later[0]
    growth_before = samples[-1][1] / samples[len(samples) // 4][1] \
        if samples[len(samples) // 4][1] else 0.0
    return {"graphs": float(graphs), "graphs_per_s": submitted / duration,
            "steady_at_s": steady[0], "steady_mb": steady[1] / 2**20,
            "later_max_mb": max(s[1] for s in later) / 2**20, "end_mb": samples[-1][1] / 2**20,
            "growth_after_steady": max(s[1] for s in later) / steady[1],
            "graphs_kept_steady": float(steady[2]), "graphs_kept_end": float(samples[-1][2]),
            "graphs_kept_max": float(max(s[2] for s in later)),
            "growth_whole_run": growth_before}


# -- the list --------------------------------------------------------------------------------

SCENARIOS: list[Scenario] = [
    Scenario("throughput", "1,000 independent no-ops, 8 slots", _standard(8), run_throughput,
             headline="tasks_per_s", paired=True),
    Scenario("latency", "chain of 200 no-ops: finish -> next start", _standard(8), run_latency,
             headline="hop_p50_ms", paired=True),
    Scenario("fanout", "500 tasks -> 1 reducer of their 500 results", _standard(8), run_fanout,
             headline="seconds", paired=True),
    Scenario("many_graphs", "1,000 graphs x 10 no-ops submitted at once", _standard(8),
             run_many, headline="graphs_per_s", weight=5, paired=True),
    Scenario("nesting", "100 graphs nested 2 deep, 1 worker slot", _standard(1), run_nesting,
             headline="seconds"),
    Scenario("scale", "10,000 active graphs on one scheduler", setup_scale,
             run_scale, headline="kb_per_graph", weight=4),  # type: ignore[arg-type]
    Scenario("console", "console: 10,000 graphs stored, 500 events/s", setup_console,
             run_console, headline="key_to_screen_ms", databases=("sqlite",), weight=2),
    Scenario("metrics", "a /metrics scrape at 10,000 active graphs", setup_metrics,
             run_metrics, headline="scrape_ms", weight=2),
    Scenario("shapes", "a 10,000-copy map of no-ops; a builder loop 50 deep", setup_shapes,
             run_shapes, headline="copies_vs_static", weight=3),
    Scenario("retention", "tiny graphs at a steady rate through a retention (default 8,000 "
             "at 80/s, 20s)", setup_retention, run_retention, runs=1,
             headline="growth_after_steady", weight=3),
]


def by_name(names: list[str] | None) -> list[Scenario]:
    if not names:
        return SCENARIOS
    known = {s.name: s for s in SCENARIOS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise BenchError(f"unknown scenario {unknown[0]!r}; known: {', '.join(known)}")
    return [known[n] for n in names if n in known]
