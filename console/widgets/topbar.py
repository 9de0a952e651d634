"""The top line: installation, connection indicators, and a short summary."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from wgops.console.data.model import Connection, Status


def indicator(label: str, conn: Connection | None) -> Text:
    text = Text()
    if conn is None:
        text.append(f"● {label} …", style="#8a8a8a")
        return text
    if conn.ok:
        text.append("● ", style="bold #5faf5f")
        text.append(label)
    else:
        text.append("✖ ", style="bold #ff5f5f")
        text.append(f"{label} lost", style="bold #ff5f5f")
        if conn.detail:
            text.append(f" ({conn.detail})", style="#ff8787")
    return text


class TopBar(Static):
    """Receives :attr:`status`; shows broker and database state and what is being shown."""

    status: reactive[Status | None] = reactive(None, always_update=True)
    title: reactive[str] = reactive("wgops")
    readonly: reactive[bool] = reactive(False)

    def render(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(" wgops ", style="bold reverse #5fafff")
        text.append(f" {self.title} ", style="bold")
        if self.readonly:
            text.append(" READ-ONLY ", style="bold reverse #d7af5f")
            text.append(" ")
        status = self.status
        text.append_text(indicator("broker", status.broker if status else None))
        text.append("  ")
        text.append_text(indicator("database", status.database if status else None))
        text.append("  ")
        if status is not None:
            if status.supervised:
                text.append("● ", style="bold #5faf5f")
                text.append("circus  ")
            else:
                text.append("○ circus not running  ", style="#8a8a8a")
            alive = sum(1 for d in status.daemons if d.state == "running")
            text.append(f"daemons {alive}/{len(status.daemons)}", style="dim")
        return text
