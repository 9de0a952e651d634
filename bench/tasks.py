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
