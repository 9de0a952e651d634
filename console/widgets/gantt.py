"""A graph's tasks on a time axis, like a Gantt chart: pure layout, no Textual.

Each task that has started gets a bar from its start to its end (now, for a task still
running) on a shared axis from the first start to the last end; tasks that have not started
get none. Columns are whole cells: every started task shows at least one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Bar:
    label: str
    state: str
    start: int | None          # first column of the bar; None: not started
    end: int | None            # last column (inclusive)
    open: bool = False         # still running: the bar ends now


@dataclass(frozen=True)
class Chart:
    t0: float                  # time of column 0
    span: float                # seconds the axis covers
    width: int                 # columns of the axis
    bars: tuple[Bar, ...]

    def column(self, t: float) -> int:
        if self.span <= 0:
            return 0
        return min(self.width - 1, max(0, int((t - self.t0) / self.span * self.width)))

    def ticks(self, every: int = 16) -> list[tuple[int, float]]:
        """(column, seconds from the start) for labels along the axis, about ``every``
        columns apart, on round numbers of seconds."""
        if self.span <= 0 or self.width <= 0:
            return [(0, 0.0)]
        rough = self.span * every / self.width
        step = _round_step(rough)
        out, t = [], 0.0
        while t <= self.span + 1e-9:
            out.append((min(self.width - 1, int(t / self.span * self.width)), t))
            t += step
        return out


STEPS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120,
         300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400)


def _round_step(seconds: float) -> float:
    for step in STEPS:
        if step >= seconds:
            return float(step)
    return float(86400 * math.ceil(seconds / 86400))


def chart(rows: list[dict[str, Any]], now: float, width: int) -> Chart:
    """Bars of ``rows`` (``label``, ``state``, ``started``, ``finished``) on ``width``
    columns."""
    width = max(1, width)
    starts = [r["started"] for r in rows if r.get("started") is not None]
    if not starts:
        return Chart(now, 0.0, width, tuple(Bar(r["label"], r["state"], None, None)
                                            for r in rows))
    t0 = min(starts)
    t1 = max(max((r.get("finished") or now) for r in rows if r.get("started") is not None),
             t0)
    base = Chart(t0, t1 - t0, width, ())
    bars = []
    for r in rows:
        if r.get("started") is None:
            bars.append(Bar(r["label"], r["state"], None, None))
            continue
        end = r.get("finished")
        first = base.column(r["started"])
        last = max(first, base.column(end if end is not None else now) if t1 > t0 else first)
        if t1 > t0 and (end if end is not None else now) >= t1:
            last = width - 1
        bars.append(Bar(r["label"], r["state"], first, last, open=end is None))
    return Chart(t0, t1 - t0, width, tuple(bars))
