"""The graphs of the chaos soak: mixed shapes, each with the outputs it must end with.

:func:`make` turns a seeded random choice into a graph document and its expected outputs:
chains, fan-outs into a fan-in, nested graphs, mapped tasks (``map:``), conditions
(``when:``), builders (``build:``) and retried tasks (``retries:``). Every task is a
:mod:`bench.soak_tasks` function recording its runs under a key of the graph's own prefix.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from bench.soak_tasks import ref

T = "bench.soak_tasks:"
SHAPES = ("chain", "fanout", "nested", "mapped", "condition", "builder", "retry")


@dataclass
class Planned:
    shape: str
    doc: dict[str, Any]
    outputs: dict[str, Any]
    skipped: list[str] = field(default_factory=list)     # keys that must never run


def _step(log: str, key: str, x: Any, seconds: float = 0.0, **more: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"log": log, "key": key, "x": x}
    if seconds:
        args["seconds"] = seconds
    return {"run": T + "step", "args": args, **more}


def make(rng: random.Random, prefix: str, log: str, markers: str) -> Planned:
    """One graph: shape chosen by ``rng``; keys ``prefix.*``; ``markers`` a directory."""
    shape = rng.choice(SHAPES)
    x = rng.randint(0, 100)
    sec = rng.choice((0.0, 0.0, 0.05, 0.2, 1.0))
    k = prefix
    if shape == "chain":
        n = rng.randint(3, 6)
        tasks = {"s0": _step(log, f"{k}.s0", x, sec)}
        for i in range(1, n):
            tasks[f"s{i}"] = _step(log, f"{k}.s{i}", ref(f"s{i - 1}"), sec)
        return Planned(shape, {"name": "chain", "tasks": tasks,
                               "outputs": {"v": ref(f"s{n - 1}")}}, {"v": x + n})
    if shape == "fanout":
        n = rng.randint(3, 8)
        tasks = {f"p{i}": _step(log, f"{k}.p{i}", x + i, sec) for i in range(n)}
        tasks["sum"] = {"run": T + "total", "args": {
            "log": log, "key": f"{k}.sum", "xs": [ref(f"p{i}") for i in range(n)]}}
        return Planned(shape, {"name": "fanout", "tasks": tasks, "outputs": {"v": ref("sum")}},
                       {"v": sum(x + i + 1 for i in range(n))})
    if shape == "nested":
        child = {"name": "child", "inputs": {"x": 0}, "tasks": {
            "a": _step(log, f"{k}.c.a", "${inputs.x}", sec),
            "b": _step(log, f"{k}.c.b", ref("a"))}, "outputs": {"v": ref("b")}}
        tasks = {"first": _step(log, f"{k}.first", x),
                 "child": {"graph": child, "args": {"x": ref("first")}},
                 "last": _step(log, f"{k}.last", ref("child.v"))}
        return Planned(shape, {"name": "nested", "tasks": tasks, "outputs": {"v": ref("last")}},
                       {"v": x + 4})
    if shape == "mapped":
        n = rng.randint(0, 6)
        tasks = {"parts": {"run": T + "parts", "args": {"log": log, "key": f"{k}.parts",
                                                        "n": n}},
                 "sq": {"map": ref("parts.xs"), "run": T + "square",
                        "args": {"log": log, "key": f"{k}.sq", "x": "${item}"}},
                 "sum": {"run": T + "total", "args": {"log": log, "key": f"{k}.sum",
                                                      "xs": ref("sq")}}}
        return Planned(shape, {"name": "mapped", "tasks": tasks, "outputs": {"v": ref("sum")}},
                       {"v": sum(i * i for i in range(n))})
    if shape == "condition":
        tasks = {"check": {"run": T + "check", "args": {"log": log, "key": f"{k}.check",
                                                        "x": x}},
                 "extra": _step(log, f"{k}.extra", ref("check.value"), when=ref("check.big")),
                 "after": _step(log, f"{k}.after", ref("check.value"), after=["extra"])}
        return Planned(shape, {"name": "condition", "tasks": tasks,
                               "outputs": {"v": ref("after")}}, {"v": x + 1},
                       [] if x % 2 == 0 else [f"{k}.extra"])
    if shape == "builder":
        n = rng.randint(1, 4)
        tasks = {"b": {"build": T + "chain_graph", "args": {"log": log, "key": f"{k}.b",
                                                           "x": x, "n": n}},
                 "last": _step(log, f"{k}.last", ref("b.v"))}
        return Planned(shape, {"name": "builder", "tasks": tasks,
                               "outputs": {"v": ref("last")}}, {"v": x + n + 1})
    tasks = {"a": _step(log, f"{k}.a", x),
             "f": {"run": T + "flaky", "retries": 2, "args": {
                 "log": log, "key": f"{k}.f", "x": ref("a"), "marker": f"{markers}/{k}"}},
             "b": _step(log, f"{k}.b", ref("f"))}
    return Planned("retry", {"name": "retry", "tasks": tasks, "outputs": {"v": ref("b")}},
                   {"v": x + 3})
