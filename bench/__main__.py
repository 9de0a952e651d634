"""``python -m bench`` (``make bench``): every scenario on SQLite and PostgreSQL, several runs
each, with the bare aio-pika loop measured alongside; writes ``bench/results/latest.json``
and prints a table.

    python -m bench                      # 3 runs of everything, both databases
    python -m bench --quick              # 1 run
    python -m bench --only latency --only throughput --db sqlite
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import psutil

from bench import limit
from bench.harness import ROOT, SERVICE_ERRORS, BenchError, Installation, pg_available, wait_broker
from bench.report import FIGURES, TARGETS, render
from bench.scenarios import SCENARIOS, NotMeasured, by_name
from wgops.daemon import eventloop

RESULTS = Path(__file__).resolve().parent / "results"


def summarise(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "runs": len(values)}


def collect(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """[{figure: value or [values]}] -> {figure: {median, min, max, runs}}."""
    values: dict[str, list[float]] = {}
    for run in runs:
        for key, value in run.items():
            values.setdefault(key, []).extend(value if isinstance(value, list) else [value])
    return {key: summarise(v) for key, v in values.items()}


# round trips pipelined, round trips one at a time: the bare loop measured before each run of a
# paired scenario (smaller than the suite's own measurement: it runs many times)
PAIRED = (1000, 200)


def with_ratios(scenario: str, figures: dict[str, Any], bare: dict[str, float] | None) \
        -> dict[str, Any]:
    """Add ``{figure}_x_bare`` for each figure compared with the bare loop, against the loop
    measured just before this run (the machine's speed drifts between runs)."""
    if bare is None:
        return figures
    out = dict(figures, bare_throughput=bare["throughput"], bare_rtt_p50_ms=bare["rtt_p50_ms"],
               bare_one_way=bare["one_way"])
    for name, figure, *_, kind in FIGURES:
        if name == scenario and kind and figure in figures:
            base = bare["throughput"] if kind == "throughput" else bare["rtt_p50_ms"]
            values = figures[figure] if isinstance(figures[figure], list) else [figures[figure]]
            out[f"{figure}_x_bare"] = [v / base for v in values] if base else []
            if kind == "throughput" and bare["one_way"]:
                out[f"{figure}_x_one_way"] = [v / bare["one_way"] for v in values]
    return out


def measure_limit(runs: int) -> dict[str, Any]:
    samples = [eventloop.run(limit.measure()) for _ in range(runs)]
    return collect(samples)


def run_scenario(scenario: Any, db: str, runs: int, share: float | None) -> dict[str, Any]:
    """Set up, then run ``runs`` times; after the first run, only while the scenario stays
    within ``share`` seconds (the time budget). A broker or database that goes away (another
    user restarting it) costs one retry in a fresh installation, time permitting."""
    started = time.monotonic()
    outcome = _attempt(scenario, db, runs, share)
    if outcome.get("retry") and (share is None or time.monotonic() - started < share):
        print(f"({outcome['error'].splitlines()[0]}: retrying)", end=" ", flush=True)
        wait_broker(180)
        outcome = _attempt(scenario, db, runs, share)
    outcome.pop("retry", None)
    return outcome


def _attempt(scenario: Any, db: str, runs: int, share: float | None) -> dict[str, Any]:
    inst = Installation(db)
    started = time.monotonic()
    try:
        scenario.setup(inst)
        if scenario.name == "scale":
            figures = [scenario.run(inst, runs)]
        else:
            figures = []
            for i in range(scenario.runs or runs):
                t0 = time.monotonic()
                bare = eventloop.run(limit.measure(*PAIRED)) if scenario.paired else None
                figures.append(with_ratios(scenario.name, scenario.run(inst, i), bare))
                took = time.monotonic() - t0
                if share is not None and time.monotonic() - started + took > share:
                    break
        out: dict[str, Any] = {"figures": collect(figures), "seconds": time.monotonic() - started}
        if scenario.name != "scale" and len(figures) < (scenario.runs or runs):
            out["notes"] = [f"{len(figures)} of {scenario.runs or runs} runs (time budget)"]
        return out
    except NotMeasured as exc:
        return {"not_measured": str(exc), "seconds": time.monotonic() - started}
    except BenchError as exc:
        return {"error": str(exc), "seconds": time.monotonic() - started}
    except Exception as exc:  # noqa: BLE001 - one broken scenario must not lose the others
        traceback.print_exc()
        return {"error": f"{type(exc).__name__}: {exc}", "seconds": time.monotonic() - started,
                "retry": isinstance(exc, SERVICE_ERRORS)}
    finally:
        inst.close()


def machine() -> dict[str, Any]:
    def version(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return "?"
    return {"python": platform.python_version(), "platform": platform.platform(),
            "cpus": psutil.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30,
                                                           1),
            "load_avg_at_start": [round(x, 2) for x in psutil.getloadavg()],
            "event_loop": eventloop.name(),
            "commit": version(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one run per scenario")
    parser.add_argument("--runs", type=int, default=None, help="runs per scenario (default 3)")
    parser.add_argument("--only", action="append", metavar="NAME",
                        help="run only this scenario (repeatable): " +
                        ", ".join(s.name for s in SCENARIOS))
    parser.add_argument("--db", action="append", choices=("sqlite", "postgres"),
                        help="only this database (repeatable; default both)")
    parser.add_argument("--output", type=Path, default=RESULTS / "latest.json")
    parser.add_argument("--budget", type=float, default=480.0, metavar="SECONDS",
                        help="time budget: heavy scenarios get fewer runs to stay within it "
                        "(0: none; default 480)")
    parser.add_argument("--peers", action="store_true",
                        help="also run Celery (prefork 2; redis and rpc result backends) on "
                        "the throughput and chain shapes, in a venv of its own (bench/peers.py)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    runs = args.runs or (1 if args.quick else 3)
    try:
        scenarios = by_name(args.only)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    dbs = args.db or ["sqlite", "postgres"]
    skipped: dict[str, str] = {}
    if "postgres" in dbs:
        reason = pg_available()
        if reason:
            skipped["postgres"] = f"PostgreSQL unreachable: {reason}"
            dbs = [d for d in dbs if d != "postgres"]
    started = time.monotonic()
    doc: dict[str, Any] = {"started": time.time(), "runs": runs, "machine": machine(),
                           "targets": TARGETS, "skipped": skipped, "results": {}}
    print(f"bare aio-pika loop ({runs} runs) ...", flush=True)
    doc["limit"] = measure_limit(runs)
    # each scenario on every database before the next scenario: the two figures of a
    # PostgreSQL : SQLite ratio are taken a minute apart, not the length of a whole block
    # (the VM's speed drifts within minutes), and both get the same share of the budget
    plan = [(db, s) for s in scenarios for db in dbs if db in s.databases]
    for k, (db, scenario) in enumerate(plan):
        doc["results"].setdefault(db, {})
        share = None
        if args.budget:
            left = started + args.budget - time.monotonic()
            share = max(0.0, left) * scenario.weight / sum(s.weight for _, s in plan[k:])
        print(f"{db:8} {scenario.name:12} ...", end=" ", flush=True)
        outcome = run_scenario(scenario, db, runs, share)
        doc["results"][db][scenario.name] = outcome
        print(f"{outcome['seconds']:.1f}s" + (f"  ERROR {outcome['error']}"
                                               if "error" in outcome else ""), flush=True)
    if args.peers:
        from bench import peers

        print("celery peers ...", end=" ", flush=True)
        t_peers = time.monotonic()
        doc["peers"] = peers.measure()
        print(f"{time.monotonic() - t_peers:.1f}s", flush=True)
    doc["seconds"] = time.monotonic() - started
    doc["machine"]["load_avg_at_end"] = [round(x, 2) for x in psutil.getloadavg()]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(doc, indent=2) + "\n")
    print()
    print(render(doc))
    print(f"\nwritten to {args.output} in {doc['seconds']:.0f}s")
    failed = any("error" in r for by_db in doc["results"].values() for r in by_db.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
