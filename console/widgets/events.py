"""The events tail: a bounded log, filterable, fed in batches."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import RichLog

from wgops.console.data.model import EventRow
from wgops.console.widgets import fmt


def event_line(event: EventRow) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(time.strftime("%H:%M:%S", time.localtime(event.ts)), style="dim")
    text.append(f".{int(event.ts * 1000) % 1000:03d} ", style="dim")
    text.append(f"{event.topic:<18} ", style="bold")
    if event.graph is not None:
        text.append(f"graph {event.graph:<6} ", style="#5fafff")
    if event.name:
        text.append(f"{event.name} ")
    if event.state:
        text.append_text(fmt.state(event.state))
        text.append(" ")
    if event.data:
        text.append(" ".join(f"{k}={fmt.short(v, 40)}" for k, v in sorted(event.data.items())),
                    style="dim")
    return text


def matches(event: EventRow, needle: str) -> bool:
    """Does the event pass the filter? Heartbeats (one a second per daemon) only show when
    the filter asks for them (``/heartbeat``): they would drown the transitions."""
    if event.topic == "daemon.heartbeat" and "heartbeat" not in needle.lower():
        return False
    return not needle or all(part in event.text().lower() for part in needle.lower().split())


class EventTail(RichLog):
    """Shows events; :meth:`add` appends a batch, :attr:`filter_text` narrows and replays."""

    filter_text: reactive[str] = reactive("")

    def __init__(self, max_lines: int = 400, **kwargs: Any) -> None:
        super().__init__(max_lines=max_lines, wrap=False, markup=False, auto_scroll=True,
                         **kwargs)
        self.history: tuple[EventRow, ...] = ()

    def add(self, events: Iterable[EventRow], limit: int | None = None) -> None:
        """Append the matching events; with ``limit``, only the newest ``limit`` of them (a
        burst is coalesced: the lines scrolled out at once are never rendered)."""
        shown = [e for e in events if matches(e, self.filter_text)]
        if limit is not None and len(shown) > limit:
            skipped = len(shown) - limit
            shown = shown[-limit:]
            self.write(Text(f"… {skipped} more events", style="dim italic"))
        for event in shown:
            self.write(event_line(event))

    def replay(self, history: Iterable[EventRow]) -> None:
        self.clear()
        self.add(list(history)[-(self.max_lines or 400):])

    def watch_filter_text(self, _text: str) -> None:
        self.replay(self.history)
