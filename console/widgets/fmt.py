"""Plain formatting shared by the widgets: colours of states, durations, sizes, bars."""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text

STATE_STYLE = {
    "queued": "bold #d7af5f", "waiting": "#8a8a8a", "running": "bold #5fafff",
    "paused": "bold #af87ff", "finished": "#5faf5f", "failed": "bold #ff5f5f",
    "killed": "#d75f5f", "skipped": "#8a8a8a", "stopped": "#8a8a8a",
    "flapping": "bold #ff8700", "dead": "bold #ff5f5f", "starting": "#d7af5f",
    "stopping": "#d7af5f", "orphan": "bold #ff8700",
}
SPARKS = "▁▂▃▄▅▆"          # the top two levels would touch the next row


def state(text: str | None) -> Text:
    value = text or "-"
    return Text(value, style=STATE_STYLE.get(value, ""))


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = max(0.0, seconds)
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    if seconds < 86400:
        return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"
    return f"{int(seconds // 86400)}d{int(seconds % 86400 // 3600):02d}h"


def age(seconds: float) -> str:
    """A coarse age for tables: it changes at most once a minute, so a table of ages is not
    redrawn every second."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return "<1m"
    if seconds < 3600:
        return f"{int(seconds // 60)}m"
    return duration(seconds)


def size(n: int | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "K", "M", "G"):
        if value < 1024 or unit == "G":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return f"{value:.1f}G"


def number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def sparkline(values: tuple[int, ...] | list[int], width: int = 12) -> Text:
    data = list(values)[-width:]
    if not data:
        return Text("·" * 4, style="dim")
    top = max(data) or 1
    top_level = len(SPARKS) - 1
    chars = "".join(SPARKS[min(top_level, int(v * top_level / top + 0.5))] if v else " "
                    for v in data)
    return Text(chars.rjust(width), style="#5fafff")


def progress(done: int, total: int, width: int = 10) -> Text:
    """``███░░░ 3/6``: a tiny bar and the numbers."""
    filled = 0 if not total else round(width * done / total)
    text = Text()
    text.append("━" * filled, style="#5faf5f")
    text.append("━" * (width - filled), style="#3a3a3a")
    text.append(f" {done}/{total}")
    return text


def gauge(executing: int, reserved: int, slots: int, width: int = 20) -> Text:
    """One bar per worker: executing (green), reserved (yellow), free (dim)."""
    if slots <= 0:
        return Text("no slots", style="dim")
    scale = width / slots
    ex = round(executing * scale)
    rs = min(width - ex, round(reserved * scale))
    text = Text()
    text.append("━" * ex, style="#5faf5f")
    text.append("━" * rs, style="#d7af5f")
    text.append("━" * (width - ex - rs), style="#3a3a3a")
    return text


def short(value: Any, width: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


MARK_STYLE = "#ffd75f"          # a marked graph (the console's bulk selection)
