"""Plain-text rendering for the command line (tables, durations, JSON).

Text that came from users or their tasks (names, errors, outputs) never reaches the terminal
raw: control characters (an escape sequence could recolour or rewrite the screen) are shown
escaped (:func:`printable`). JSON output is JSON, escaped by its encoder."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import click


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


_CONTROL = {i: f"\\x{i:02x}" for i in (*range(0x20), 0x7F)} | {0x09: " "}


def printable(text: str) -> str:
    """``text`` with every control character escaped (``\\x1b``), a tab as a space."""
    return text.translate(_CONTROL) if not text.isprintable() else text


def one_line(text: str) -> str:
    """An error message as one printable line."""
    return printable(" ".join(text.splitlines()))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[("" if c is None else printable(str(c))) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths)).rstrip()]
    for row in cells:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    return "\n".join(lines)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def age(ts: float | None, now: float | None = None) -> str:
    return "-" if ts is None else duration((now or time.time()) - ts)


def short(value: Any, width: int = 40) -> str:
    text = printable(value if isinstance(value, str) else json.dumps(value))
    return text if len(text) <= width else text[: width - 1] + "…"
