"""Task functions of the chaos soak (``bench.soak``): each run is recorded in one log.

Every function takes ``log`` and ``key`` (unique per task, or per mapped copy) and appends
``start KEY PID TIME`` when it begins, then ``end KEY PID TIME`` when it returns or
``fail KEY PID TIME`` when it raises: the soak counts from these lines how often each task ran.
Lines are short single ``write`` s to a file opened for appending, so runs of many processes
never interleave within a line.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any


def ref(name: str) -> str:
    """A reference to ``name``'s result in a graph document."""
    return "${" + name + "}"


def _note(log: str, what: str, key: str) -> None:
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{what} {key} {os.getpid()} {time.time():.6f}\n".encode())
    finally:
        os.close(fd)


def _work(seconds: float) -> None:
    if seconds > 0:
        time.sleep(seconds)


def step(log: str, key: str, x: float, seconds: float = 0.0) -> float:
    """x + 1, after ``seconds``."""
    _note(log, "start", key)
    _work(seconds)
    _note(log, "end", key)
    return x + 1


def flaky(log: str, key: str, x: float, marker: str) -> float:
    """Fails its first run (``marker`` does not exist yet), then is ``step``."""
    _note(log, "start", key)
    if not os.path.exists(marker):
        Path(marker).touch()
        _note(log, "fail", key)
        raise RuntimeError("a planned failure (retried)")
    _note(log, "end", key)
    return x + 1


def total(log: str, key: str, xs: list[float]) -> float:
    _note(log, "start", key)
    _note(log, "end", key)
    return sum(xs)


def parts(log: str, key: str, n: int) -> dict[str, Any]:
    """{"xs": [0, ..., n - 1]}: a list known only at run time."""
    _note(log, "start", key)
    _note(log, "end", key)
    return {"xs": list(range(n))}


def square(log: str, key: str, x: int) -> int:
    """x * x; recorded as ``KEY.x`` (one key per mapped copy)."""
    _note(log, "start", f"{key}.{x}")
    _note(log, "end", f"{key}.{x}")
    return x * x


def check(log: str, key: str, x: int) -> dict[str, Any]:
    _note(log, "start", key)
    _note(log, "end", key)
    return {"big": x % 2 == 0, "value": x}


def chain_graph(log: str, key: str, x: int, n: int) -> dict[str, Any]:
    """A builder: a chain of ``n`` steps from ``x``; its output ``v`` is x + n."""
    _note(log, "start", key)
    tasks: dict[str, Any] = {}
    prev: str | None = None
    for i in range(n):
        tasks[f"s{i}"] = {"run": "bench.soak_tasks:step", "args": {
            "log": log, "key": f"{key}.s{i}", "x": ref(prev) if prev else x}}
        prev = f"s{i}"
    _note(log, "end", key)
    return {"name": "built-chain", "tasks": tasks, "outputs": {"v": ref(prev)}}
