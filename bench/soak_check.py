"""The chaos soak's verdict: every graph against its expected outputs, every run counted.

A task's runs are read from the soak's run log (:mod:`bench.soak_tasks`). Two consecutive runs
of one task where the first did not fail (a failure is followed by a planned retry) are a
**duplicate**; a duplicate is "in flight at a fault" when a fault's window — from the moment
it was injected until the system had recovered from it — overlaps the time between the two
starts, and a **finished task run twice** otherwise (nothing could have lost the first run: a
bug). Keys that must never run (a condition that was false) and ran are counted too.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Fault:
    kind: str                 # kill-scheduler, kill-worker, kill-arbiter, cut-all, ...
    host: int | None
    start: float
    end: float = 0.0          # the fault is over (a restart done, a cut healed, a kill done)
    recovered: float | None = None    # every host whole again and work going on

    @property
    def recovery(self) -> float | None:
        return None if self.recovered is None else self.recovered - self.end


@dataclass
class Run:
    start: float
    outcome: str = "open"     # end, fail, or open (its process died first)
    end: float | None = None


def read_runs(log: Path) -> dict[str, list[Run]]:
    """Each key's runs, in order of start (start and end matched by key and process)."""
    runs: dict[str, list[Run]] = defaultdict(list)
    open_: dict[tuple[str, str], Run] = {}
    if not log.exists():
        return runs
    for line in log.read_text().splitlines():
        parts = line.split()
        if len(parts) != 4:
            continue
        what, key, pid, t = parts
        if what == "start":
            run = Run(float(t))
            runs[key].append(run)
            open_[(key, pid)] = run
        elif (key, pid) in open_:
            run = open_.pop((key, pid))
            run.outcome, run.end = what, float(t)
    for key in runs:
        runs[key].sort(key=lambda r: r.start)
    return runs


@dataclass
class Verdict:
    graphs: int = 0
    finished_right: int = 0
    lost: list[int] = field(default_factory=list)         # not finished at the end
    wrong: list[int] = field(default_factory=list)        # finished with other outputs
    runs: int = 0
    duplicates_at_fault: list[str] = field(default_factory=list)
    finished_twice: list[str] = field(default_factory=list)
    ran_but_skipped: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"graphs": self.graphs, "finished_right": self.finished_right,
                "graphs_lost": len(self.lost), "lost_ids": self.lost[:50],
                "wrong_outputs": len(self.wrong), "wrong_ids": self.wrong[:50],
                "task_runs": self.runs, "finished_tasks_run_twice": len(self.finished_twice),
                "finished_twice_keys": self.finished_twice[:50],
                "run_twice_in_flight_at_a_fault": len(self.duplicates_at_fault),
                "ran_though_condition_false": len(self.ran_but_skipped)}


def _overlaps(faults: list[Fault], a: float, b: float) -> bool:
    for f in faults:
        until = f.recovered if f.recovered is not None else f.end + 120
        if f.start <= b and until >= a:
            return True
    return False


def judge(shows: dict[int, dict[str, Any] | None], expected: dict[int, dict[str, Any]],
          skipped: list[str], log: Path, faults: list[Fault]) -> Verdict:
    v = Verdict(graphs=len(expected))
    for gid, outputs in expected.items():
        show = shows.get(gid)
        if show is None or show.get("state") != "finished":
            v.lost.append(gid)
        elif show.get("outputs") != outputs:
            v.wrong.append(gid)
        else:
            v.finished_right += 1
    runs = read_runs(log)
    never = set(skipped)
    for key, rs in runs.items():
        v.runs += len(rs)
        if key in never:
            v.ran_but_skipped.append(key)
        for first, second in zip(rs, rs[1:], strict=False):
            if first.outcome == "fail":
                continue                      # a planned failure, then its retry
            if _overlaps(faults, first.start, second.start):
                v.duplicates_at_fault.append(key)
            else:
                v.finished_twice.append(key)
    return v


def render(v: Verdict, faults: list[Fault], doctor: dict[str, Any] | None, seconds: float,
           seed: int) -> str:
    by_kind: dict[str, int] = defaultdict(int)
    for f in faults:
        by_kind[f.kind] += 1
    recoveries = [(f.recovery, f) for f in faults if f.recovery is not None]
    longest = max(recoveries, key=lambda x: x[0]) if recoveries else None
    unrecovered = sum(1 for f in faults if f.recovered is None)
    lines = [
        f"chaos soak: seed {seed}, {seconds / 60:.1f} min, {v.graphs} graphs, {v.runs} task runs",
        "faults: " + (", ".join(f"{k} {n}" for k, n in sorted(by_kind.items())) or "none"),
        f"graphs finished with the expected outputs: {v.finished_right} / {v.graphs}",
        f"graphs lost (not finished): {len(v.lost)}" + (f" {v.lost[:10]}" if v.lost else ""),
        f"graphs finished with other outputs: {len(v.wrong)}"
        + (f" {v.wrong[:10]}" if v.wrong else ""),
        f"finished tasks run twice: {len(v.finished_twice)}"
        + (f" {v.finished_twice[:10]}" if v.finished_twice else ""),
        f"tasks run twice that were in flight at a fault: {len(v.duplicates_at_fault)}",
        f"tasks run though their condition was false: {len(v.ran_but_skipped)}",
        "longest recovery: " + (f"{longest[0]:.1f} s ({longest[1].kind}"
                                f"{'' if longest[1].host is None else f' host {longest[1].host}'})"
                                if longest else "n/a")
        + (f"; {unrecovered} faults not recovered within the bound" if unrecovered else ""),
    ]
    if doctor is None:
        lines.append("doctor: did not run")
    else:
        findings = doctor.get("findings", doctor.get("problems", []))
        lines.append(f"doctor (database/broker consistency): "
                     f"{'consistent' if doctor.get('ok', not findings) else 'INCONSISTENT'}"
                     f", {len(findings)} findings")
    return "\n".join(lines)
