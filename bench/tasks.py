"""Task functions of the benchmark (allowed with ``WGOPS_ALLOW=bench.tasks:*``)."""

from __future__ import annotations

import time
from typing import Any


def noop(**_: Any) -> None:
    """Nothing: the benchmark measures the engine, not the work."""
    return None


def one(**_: Any) -> int:
    """The number 1 (a fan-out leaf whose result the reducer reads)."""
    return 1


def total(values: list[int]) -> int:
    """The reducer of the fan-out/fan-in scenario."""
    return sum(values)


def sleep(seconds: float = 3600.0) -> None:
    """A long task (the scale scenario parks one per graph on a pool no worker serves)."""
    time.sleep(seconds)


def indices(n: int) -> list[int]:
    """0 .. n-1: the run-time list the map scenario's copies are made from."""
    return list(range(n))


def loop_level(n: int) -> dict[str, Any]:
    """A builder: the graph of one level of a loop, whose only task builds the next level
    until ``n`` reaches 0 (the builder-loop figure of the shapes scenario)."""
    if n <= 0:
        return {"name": "level-0", "tasks": {"done": {"run": "bench.tasks:noop"}}}
    return {"name": f"level-{n}", "tasks": {"next": {"build": "bench.tasks:loop_level",
                                                     "args": {"n": n - 1}}}}
