"""The overview's small panels: daemons, queues, slots and pools, the state counts."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual.binding import Binding
from textual.reactive import reactive
from textual.widgets import DataTable, Static

from wgops.console.data.model import DaemonRow, QueueRow, SlotRow, Status
from wgops.console.widgets import fmt

VI_KEYS = [Binding("j", "cursor_down", show=False), Binding("k", "cursor_up", show=False),
           Binding("g", "scroll_top", show=False), Binding("G", "scroll_bottom", show=False)]


class RowsTable(DataTable):
    """A DataTable refilled in place from keyed rows: cells change, rows are not rebuilt."""

    BINDINGS = VI_KEYS

    COLUMNS: tuple[tuple[str, str], ...] = ()

    def __init__(self, show_cursor: bool = False, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", show_cursor=show_cursor, **kwargs)
        self._shown: dict[str, tuple] = {}

    def on_mount(self) -> None:
        for key, label in self.COLUMNS:
            self.add_column(label, key=key)

    def selected_key(self) -> str | None:
        if not self.row_count:
            return None
        try:
            return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        except Exception:  # noqa: BLE001 - cursor outside the rows
            return None

    def set_rows(self, rows: list[tuple[str, tuple]]) -> None:
        """Show ``rows`` (key, cells): changed cells are updated in place; when rows come or
        go the table is rebuilt in the same frame, keeping the cursor on its row."""
        if [key for key, _ in rows] != list(self._shown):
            selected, scroll = self.selected_key(), self.scroll_y
            self.clear()
            self._shown = {}
            for key, values in rows:
                self.add_row(*values, key=key)
                self._shown[key] = values
            if selected in self._shown:
                self.move_cursor(row=self.get_row_index(selected), animate=False, scroll=False)
            self.scroll_to(y=scroll, animate=False)
            return
        for key, values in rows:
            old = self._shown[key]
            if old != values:
                for (column, _), new, was in zip(self.COLUMNS, values, old):
                    if new != was:
                        self.update_cell(key, column, new)
                self._shown[key] = values


class KeyedTable(RowsTable):
    """A :class:`RowsTable` fed with the installation :class:`Status`."""

    status: reactive[Status | None] = reactive(None, always_update=True)

    def rows_of(self, status: Status) -> list[tuple[str, tuple]]:
        raise NotImplementedError

    def watch_status(self, status: Status | None) -> None:
        if status is not None:
            self.set_rows(self.rows_of(status))


class DaemonsTable(KeyedTable):
    COLUMNS = (("id", "DAEMON"), ("pid", "PID"), ("state", "STATE"), ("uptime", "UPTIME"),
               ("cpu", "CPU%"), ("mem", "MEM"))

    def rows_of(self, status: Status) -> list[tuple[str, tuple]]:
        return [(d.id, self.values(d)) for d in status.daemons]

    @staticmethod
    def values(d: DaemonRow) -> tuple:
        return (d.id, Text(str(d.pid or "-"), justify="right"), fmt.state(d.state),
                Text(fmt.duration(d.uptime), justify="right"),
                Text(fmt.number(d.cpu), justify="right"), Text(fmt.size(d.memory),
                                                               justify="right"))


class QueuesTable(KeyedTable):
    COLUMNS = (("name", "QUEUE"), ("depth", "DEPTH"), ("consumers", "CONS"),
               ("in", "IN/s"), ("out", "OUT/s"), ("spark", "HISTORY"))

    def __init__(self, namespace: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.prefix = f"{namespace}." if namespace else ""

    def rows_of(self, status: Status) -> list[tuple[str, tuple]]:
        return [(q.name, self.values(q)) for q in status.queues]

    def values(self, q: QueueRow) -> tuple:
        name = q.name[len(self.prefix):] if q.name.startswith(self.prefix) else q.name
        depth = "-" if q.messages is None else str(q.messages)
        style = "bold #ff5f5f" if name == "dead" and q.messages else ""
        return (name, Text(depth, justify="right", style=style),
                Text("-" if q.consumers is None else str(q.consumers), justify="right"),
                Text(fmt.number(q.rate_in), justify="right"),
                Text(fmt.number(q.rate_out), justify="right"), fmt.sparkline(q.history))


class SlotsPanel(Static):
    """Per worker a gauge of executing / reserved / free slots, the totals, the pools."""

    status: reactive[Status | None] = reactive(None, always_update=True)

    def watch_status(self, status: Status | None) -> None:
        if status is not None:
            self.update(self.render_slots(status.slots, status))

    @staticmethod
    def render_slots(slots: tuple[SlotRow, ...], status: Status) -> Table:
        grid = Table.grid(padding=(0, 1))
        grid.add_column(no_wrap=True, max_width=22)
        grid.add_column(no_wrap=True)
        grid.add_column(no_wrap=True, justify="right")
        total = sum(s.slots for s in slots if s.alive)
        ex = sum(s.executing for s in slots if s.alive)
        rs = sum(s.reserved for s in slots if s.alive)
        for s in slots:
            name = Text(s.worker, style="" if s.alive else "dim strike")
            grid.add_row(name, fmt.gauge(s.executing, s.reserved, s.slots, 16),
                         f"{s.executing}/{s.reserved}/{s.slots - s.executing - s.reserved}")
        if not slots:
            grid.add_row(Text("no workers", style="dim"), "", "")
        grid.add_row(Text("total", style="bold"), fmt.gauge(ex, rs, total, 16),
                     Text(f"{ex}/{rs}/{total - ex - rs}", style="bold"))
        grid.add_row("", Text("exec/resv/free", style="dim"), "")
        for p in status.pools:
            cap = "∞" if p.cap is None else str(p.cap)
            used = fmt.gauge(p.running, 0, p.cap, 16) if p.cap else Text(
                "━" * min(16, p.running), style="#5faf5f")
            grid.add_row(Text(f"pool {p.name}", style="#af87ff"), used,
                         f"{p.running}/{cap} q{p.queued}")
        return grid


class StateCounts(Static):
    """``queued 3  running 12  paused 1 ...`` over all top-level graphs, plus the filter."""

    counts: reactive[dict[str, int]] = reactive(dict, always_update=True)
    filter_text: reactive[str] = reactive("")
    shown: reactive[tuple[int, int]] = reactive((0, 0))
    sort: reactive[str] = reactive("")
    marked: reactive[int] = reactive(0)

    def render(self) -> Text:
        text = Text()
        for name in ("queued", "running", "paused", "finished", "failed", "killed"):
            text.append(f"{name} ", style=fmt.STATE_STYLE.get(name, ""))
            text.append(f"{self.counts.get(name, 0)}  ")
        rows, matched = self.shown
        text.append(f"│  showing {rows} of {matched}", style="dim")
        if self.sort:
            text.append(f"  │  sort {self.sort}", style="dim")
        if self.filter_text:
            text.append("  │  filter ", style="dim")
            text.append(self.filter_text, style="bold #d7af5f")
        if self.marked:
            text.append("  │  ", style="dim")
            text.append(f"● {self.marked} marked", style=f"bold {fmt.MARK_STYLE}")
        return text
